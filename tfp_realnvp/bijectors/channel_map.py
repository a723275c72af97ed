"""The base of `ActNorm` and `LULinear`: one affine map of the channels, the same at every
position of the event, so a Jacobian that does not depend on the input.

On an event of shape ``[..., C]`` with ``n`` positions (``H * W`` for an image, 1 for a
vector), the map acts on each position's ``C`` channels alike: its Jacobian is block-diagonal
with ``n`` equal ``C x C`` blocks, and each log-det is ``n`` times that of one block, the same
for every example of a batch. A subclass gives that per-position log-det (`_log_det_per_position`)
and the map; `ChannelMap` holds the weights' Keras layer, the count of positions, the
broadcast of the log-det over the batch and the config.

>>> import tensorflow as tf
>>> from tfp_realnvp.bijectors import ActNorm, LULinear
>>> lu = LULinear([4, 4, 3])
>>> lu.positions, ActNorm([5]).positions
(16, 1)
>>> lu.inverse_log_det_jacobian(tf.zeros([2, 7, 4, 4, 3]), event_ndims=3).shape
TensorShape([2, 7])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors.base import FlowBijector

__all__ = ["ChannelMap"]


class ChannelMap(FlowBijector):
    """Base of bijectors that apply one affine map to the channels (last axis) of every
    position of the event, with their weights in one Keras layer.

    A subclass's ``__init__`` calls `_set_event_shape_and_dtype`, builds or takes its layer
    and ends with `_finish`; it defines ``_log_det_per_position`` and the map.
    """

    def _finish(self, layer, parameters: dict, key: str, validate_args: bool, name: str) -> None:
        # The layer stands in ``parameters`` under ``key``: TFP keys its cache on them, and two
        # maps with distinct weights must never answer for each other.
        parameters[key] = layer
        self._positions = int(np.prod(self._event_shape[:-1], dtype=np.int64))
        self._init_for_event(parameters, validate_args, name, is_constant_jacobian=True)
        self._track_layers([layer])

    @property
    def positions(self) -> int:
        """How many positions share the map: the product of the event's axes but the last."""
        return self._positions

    def get_config(self) -> dict[str, Any]:
        return {"event_shape": list(self.event_shape), "dtype": self.flow_dtype.name}

    def _log_det_per_position(self, dtype: tf.DType) -> tf.Tensor:
        """The log-det of the map of one position's channels (its sign as the subclass uses it),
        a scalar in ``dtype``."""
        raise NotImplementedError

    def _log_det(self, v: tf.Tensor) -> tf.Tensor:
        """``positions`` times the per-position log-det, one per example of ``v``'s batch."""
        log_det = self._log_det_per_position(v.dtype) * self._positions
        batch = tf.shape(v)[: tf.rank(v) - len(self._event_shape)]
        return tf.broadcast_to(log_det, batch)
