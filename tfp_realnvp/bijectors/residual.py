"""What Rezende & Mohamed's planar and radial flows share: ``x = z + g(z)`` on vectors, with a
handful of weights held in one Keras layer, built to start as the identity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfp_realnvp._checks import shape as check_shape
from tfp_realnvp._keras import keras, register
from tfp_realnvp.bijectors.base import FlowBijector, unique_name

__all__ = ["ResidualFlow", "ResidualWeights"]


@register
class ResidualWeights(keras.layers.Layer):
    """The named weights of one `Planar` or `Radial` bijector, of the given shapes (zeros
    until the bijector sets their initial values)."""

    def __init__(self, shapes: dict[str, Sequence[int]], **kwargs):
        super().__init__(**kwargs)
        self.shapes = {k: [int(d) for d in s] for k, s in shapes.items()}
        for key, s in self.shapes.items():
            setattr(self, key, self.add_weight(name=key, shape=tuple(s), initializer="zeros"))
        self.built = True

    def tensors(self) -> dict[str, tf.Tensor]:
        """Each weight's current value, by name."""
        return {k: tf.convert_to_tensor(getattr(self, k)) for k in self.shapes}

    def get_config(self):
        return {**super().get_config(), "shapes": self.shapes}


class ResidualFlow(FlowBijector):
    """Base of `Planar` and `Radial`: the event is a vector ``[D]``; subclasses give the
    weights' shapes and initial values (`_initial`) and the math."""

    _kind = "residual"

    def __init__(
        self,
        event_shape: Sequence[int] | int,
        seed: int = 0,
        dtype: tf.DType | str = tf.float32,
        weights: ResidualWeights | None = None,
        validate_args: bool = False,
        name: str | None = None,
    ):
        parameters = dict(locals())
        event_shape = check_shape(event_shape, "event_shape", rank=1)
        self._set_event_shape_and_dtype(event_shape, dtype)
        self._seed = int(seed)
        dim = self._event_shape[0]
        if weights is None:
            initial = self._initial(dim, np.random.default_rng(self._seed))
            shapes = {k: np.shape(v) for k, v in initial.items()}
            weights = ResidualWeights(shapes, dtype=self._flow_dtype.name)
            for key, value in initial.items():
                getattr(weights, key).assign(np.asarray(value, self._flow_dtype.as_numpy_dtype))
        parameters["weights"] = weights  # distinct instances, distinct TFP caches
        self._weights = weights
        super().__init__(
            forward_min_event_ndims=1,
            validate_args=validate_args,
            parameters=parameters,
            name=name or unique_name(self._kind),
        )
        self._track_layers([weights])

    @staticmethod
    def _initial(dim: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"event_shape": list(self.event_shape), "seed": self._seed,
                "dtype": self.flow_dtype.name}  # fmt: skip

    def _params(self, dtype) -> dict[str, tf.Tensor]:
        return {k: tf.cast(v, dtype) for k, v in self._weights.tensors().items()}
