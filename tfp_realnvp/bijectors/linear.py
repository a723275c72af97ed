"""Permutations between couplings: fixed (reverse, seeded random) and learned (LU-parameterised)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._keras import keras, register
from tfp_realnvp.bijectors.base import register_bijector, unique_name
from tfp_realnvp.bijectors.channel_map import ChannelMap

__all__ = ["LULinear", "LUWeights", "random_permutation", "reverse_permutation"]

tfb = tfp.bijectors


def reverse_permutation(channels: int, name: str | None = None) -> tfb.Permute:
    """`tfb.Permute` reversing the last axis (RealNVP's swap of halves, for any split)."""
    return tfb.Permute(np.arange(channels)[::-1].copy(), name=name or unique_name("reverse"))


def random_permutation(channels: int, seed: int, name: str | None = None) -> tfb.Permute:
    """`tfb.Permute` by a random permutation of the last axis drawn from ``seed``."""
    perm = np.random.default_rng(seed).permutation(channels)
    return tfb.Permute(perm, name=name or unique_name("random_permutation"))


@register
class LUWeights(keras.layers.Layer):
    """The trainable factors of `LULinear`: ``W = P L U`` with ``P`` fixed, ``L`` unit lower
    triangular and ``U = triu(upper, 1) + diag(exp(log_diag))``."""

    def __init__(self, channels: int, permutation: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.permutation = [int(p) for p in permutation]
        if sorted(self.permutation) != list(range(self.channels)):
            raise ValueError(
                f"`permutation` must be a permutation of 0..{self.channels - 1}; got "
                f"{self.permutation}."
            )
        shape = (self.channels, self.channels)
        self.lower = self.add_weight(name="lower", shape=shape, initializer="zeros")
        self.upper = self.add_weight(name="upper", shape=shape, initializer="zeros")
        self.log_diag = self.add_weight(
            name="log_diag", shape=(self.channels,), initializer="zeros"
        )
        self.built = True

    def log_det(self):
        """``log|det W| = sum(log_diag)``."""
        return tf.reduce_sum(tf.convert_to_tensor(self.log_diag))

    def factors(self):
        """Returns ``(W, W^{-1})`` in the variables' dtype."""
        lower = tf.convert_to_tensor(self.lower)
        upper = tf.convert_to_tensor(self.upper)
        log_diag = tf.convert_to_tensor(self.log_diag)
        eye = tf.eye(self.channels, dtype=lower.dtype)
        p = tf.constant(np.eye(self.channels)[self.permutation], lower.dtype)
        l_mat = tf.linalg.band_part(lower, -1, 0) - tf.linalg.band_part(lower, 0, 0) + eye
        u_mat = tf.linalg.band_part(upper, 0, -1) - tf.linalg.band_part(upper, 0, 0)
        u_mat = u_mat + tf.linalg.diag(tf.exp(log_diag))
        w = p @ l_mat @ u_mat
        w_inv = tf.linalg.triangular_solve(
            u_mat, tf.linalg.triangular_solve(l_mat, tf.transpose(p), lower=True), lower=False
        )
        return w, w_inv

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "permutation": self.permutation}


@register_bijector
class LULinear(ChannelMap):
    """A learned invertible linear map of the last axis, LU-parameterised (Glow's 1x1 convolution).

    With ``W = P L U`` (``P`` a fixed permutation, ``L`` unit lower triangular, ``U`` upper
    triangular with diagonal ``exp(log_diag)``), acting on the last axis of every position of
    an event of shape ``[..., C]`` (``n`` positions):

    - forward (latent -> data): ``x = W z``; ``forward_log_det_jacobian = n * sum(log_diag)``;
    - inverse (data -> latent): ``z = W^{-1} x``;
      ``inverse_log_det_jacobian = -n * sum(log_diag)``.

    It starts as the permutation ``P`` drawn from ``seed``, so a fresh flow is still
    volume-preserving. For a vector event ``n = 1``; for an image ``[H, W, C]``, ``n = H * W``
    and the map is Glow's invertible 1x1 convolution.

    Args:
      event_shape: the event's shape; the map acts on its last axis.
      seed: seed of the initial permutation.
      dtype: dtype of the weights and data.
      weights: an existing `LUWeights` to share (as `copy()` does); made fresh by default.
      validate_args: check inputs for NaN and inf as well.
      name: defaults to a unique ``lu_linear_<n>``.

    #### Examples

    >>> import numpy as np, tensorflow as tf
    >>> lu = LULinear([3], seed=0)
    >>> x = tf.constant([[1.0, 2.0, 3.0]])
    >>> bool(np.allclose(lu.forward(lu.inverse(x)), x))
    True
    >>> float(lu.forward_log_det_jacobian(x, event_ndims=1)[0])
    0.0

    #### References

    [1] Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
        Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        seed: int = 0,
        dtype: tf.DType | str = tf.float32,
        weights: LUWeights | None = None,
        validate_args: bool = False,
        name: str | None = None,
    ):
        parameters = dict(locals())
        self._set_event_shape_and_dtype(event_shape, dtype)
        channels = self._event_shape[-1]
        if weights is None:
            perm = np.random.default_rng(seed).permutation(channels)
            weights = LUWeights(channels, perm, dtype=self._flow_dtype.name)
        elif weights.channels != channels:
            raise ValueError(
                f"`weights` act on {weights.channels} channels; the event has {channels}."
            )
        self._weights = weights
        self._finish(
            weights, parameters, "weights", validate_args, name or unique_name("lu_linear")
        )

    @property
    def permutation(self) -> list[int]:
        """The fixed permutation ``P`` of ``W = P L U``."""
        return list(self._weights.permutation)

    def get_config(self) -> dict:
        return {**super().get_config(), "permutation": self.permutation}

    @classmethod
    def from_config(cls, config: dict) -> LULinear:
        config = dict(config)
        channels = config["event_shape"][-1]
        weights = LUWeights(channels, config.pop("permutation"), dtype=config["dtype"])
        return cls(**config, weights=weights)

    def _apply(self, v, arg, inverse):
        v = self._check_input(v, arg, self._event_shape)
        w, w_inv = self._weights.factors()
        m = tf.cast(w_inv if inverse else w, v.dtype)
        return tf.tensordot(v, m, axes=[[-1], [1]])  # out[..., i] = sum_j m[i, j] v[..., j]

    def _forward(self, z):
        return self._apply(z, "z", inverse=False)

    def _inverse(self, x):
        return self._apply(x, "x", inverse=True)

    def _log_det_per_position(self, dtype):
        return tf.cast(self._weights.log_det(), dtype)

    def _forward_log_det_jacobian(self, z):
        return self._log_det(self._check_input(z, "z", self._event_shape))

    def _inverse_log_det_jacobian(self, x):
        return -self._log_det(self._check_input(x, "x", self._event_shape))
