"""What every bijector of this package shares: Keras-held weights visible to TFP, unique default
names, and input checks with messages that say which argument, what was expected and what came.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._keras import tf_variables

__all__ = ["KerasBijector", "unique_name"]

_COUNTERS: dict[str, itertools.count] = collections.defaultdict(itertools.count)


def unique_name(base: str) -> str:
    """``base_0``, ``base_1``, ...: default names never repeat, so `tfb.Chain` can route kwargs
    by name."""
    return f"{base}_{next(_COUNTERS[base])}"


class KerasBijector(tfp.bijectors.Bijector):
    """A `tfb.Bijector` whose trainable state lives in Keras layers.

    Subclasses call `_track_layers` once the layers are built. Under Keras 3 the layers are not
    `tf.Module`s, so their raw variables are also kept in an attribute that `tf.Module`'s
    variable walk finds: ``trainable_variables`` of the bijector, of any `tfb.Chain` holding it
    and of a `tfd.TransformedDistribution` over it then list every weight. They are kept as a
    non-checkpoint dependency, so checkpoints and SavedModels see each variable once, through
    its layer.
    """

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}  # no batched tensor parameters: the weights live in Keras layers

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The event shape this bijector acts on."""
        return self._event_shape

    def _set_event_shape_and_dtype(self, event_shape: Sequence[int], dtype) -> None:
        self._event_shape = tuple(int(d) for d in event_shape)
        if not self._event_shape or min(self._event_shape) < 1:
            raise ValueError(f"`event_shape` must be non-empty and positive; got {event_shape}.")
        self._flow_dtype = tf.as_dtype(dtype)

    def _track_layers(self, layers: Sequence) -> None:
        self._layers = tuple(layers)
        raw = [
            v for layer in layers if not isinstance(layer, tf.Module) for v in tf_variables(layer)
        ]
        self._keras_variables = self._no_dependency(tuple(raw))

    @property
    def layers(self) -> tuple:
        """The Keras layers (or `tf.Module`s) holding this bijector's weights."""
        return self._layers

    def _check_input(self, x: tf.Tensor, arg: str, event_shape: Sequence[int]) -> tf.Tensor:
        """Checks dtype and static event shape always, finiteness under ``validate_args``."""
        if x.dtype != self._flow_dtype:
            raise TypeError(
                f"{self.name}: `{arg}` has dtype {x.dtype.name}, but this bijector computes in "
                f"{self._flow_dtype.name}. Cast the input with tf.cast(..., "
                f"tf.{self._flow_dtype.name}) or build the flow with "
                f"dtype=tf.{x.dtype.name}."
            )
        rank = len(event_shape)
        shape = x.shape
        if shape.rank is not None and (
            shape.rank < rank
            or any(
                got is not None and got != want
                for got, want in zip(shape[shape.rank - rank :], event_shape, strict=False)
            )
        ):
            raise ValueError(
                f"{self.name}: `{arg}` must end in the event shape {tuple(event_shape)}; "
                f"got shape {tuple(shape)}."
            )
        if self.validate_args:
            x = tf.debugging.check_numerics(x, f"{self.name}: `{arg}` contains NaN or inf")
        return x
