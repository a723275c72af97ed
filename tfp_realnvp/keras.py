"""The Keras that tfp_realnvp uses, for your own layers, optimizers and callbacks.

``tf.keras`` is Keras 3 unless ``TF_USE_LEGACY_KERAS=1``, in which case it is tf-keras; this
module follows the same switch, so layers you write and the package's always come from the same
Keras. Every attribute of that Keras is an attribute of this module (``keras.layers``,
``keras.optimizers``, ``keras.utils.set_random_seed``, ...), and two are added:

- ``register``: ``@register`` makes a Keras class of yours serialisable under the package
  ``"tfp_realnvp"``, so that a `FlowModel` holding it saves and loads as ``.keras``.
- ``LEGACY_KERAS``: true when this is tf-keras.

>>> from tfp_realnvp import keras
>>> keras.layers.Dense(3).units
3
>>> @keras.register
... class Doubling(keras.layers.Layer):
...     def call(self, x):
...         return 2.0 * x
>>> keras.saving.get_registered_name(Doubling)
'tfp_realnvp>Doubling'
"""

from __future__ import annotations

from typing import Any

from tfp_realnvp._keras import LEGACY_KERAS, register
from tfp_realnvp._keras import keras as _resolved

__all__ = ["LEGACY_KERAS", "register"]


def __getattr__(name: str) -> Any:
    return getattr(_resolved, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *dir(_resolved)})
