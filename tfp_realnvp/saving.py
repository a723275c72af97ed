"""Loading a ``.keras`` file of a tfp_realnvp model, in any process.

Keras finds a saved custom class only if the module that registers it has been imported, and
``import tfp_realnvp`` imports nothing until a name is used (so that the command line answers
before TensorFlow starts). `load_model` imports every module that registers a class, then
loads: a model saved by ``FlowModel.save`` or by ``tfp-realnvp train`` (``model.keras``) comes
back whole in a fresh process.
"""

from __future__ import annotations

import importlib
from os import PathLike

__all__ = ["load_model"]

# Every module with a class registered with Keras; tests/test_model.py checks the list.
REGISTERING = ("tfp_realnvp.model", "tfp_realnvp.made", "tfp_realnvp.bases")


def register_all() -> None:
    """Imports every module that registers a class with Keras."""
    for module in REGISTERING:
        importlib.import_module(module)


def load_model(path: str | PathLike, **kwargs):
    """``keras.models.load_model(path, **kwargs)``, with this package's classes registered.

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import tfp_realnvp as trn
    >>> model = trn.FlowModel(trn.real_nvp(2, num_couplings=2, hidden_units=[4]))
    >>> _ = model(np.zeros([1, 2], np.float32))  # builds it
    >>> path = Path(tempfile.mkdtemp()) / "flow.keras"
    >>> model.save(path)
    >>> reloaded = trn.load_model(path)
    >>> bool(np.all(reloaded.log_prob(np.ones([3, 2])) == model.log_prob(np.ones([3, 2]))))
    True
    """
    from tfp_realnvp._keras import keras

    register_all()
    return keras.models.load_model(path, **kwargs)
