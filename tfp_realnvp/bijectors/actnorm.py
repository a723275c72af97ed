"""Glow's activation normalisation, initialised from a batch of data when asked to."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfp_realnvp._keras import aggregation, keras, register
from tfp_realnvp.bijectors.base import register_bijector, unique_name
from tfp_realnvp.bijectors.channel_map import ChannelMap
from tfp_realnvp.bijectors.data_init import initialization_record

__all__ = ["ActNorm", "ActNormParameters"]


@register
class ActNormParameters(keras.layers.Layer):
    """Per-channel ``bias`` and ``log_scale`` of `ActNorm`, and its ``initialized`` flag.

    The flag is a (non-trainable) weight, so the initialisation state is saved and restored
    with the model (``.keras`` files, checkpoints). Initialisation runs eagerly, outside any
    replica context, from one whole batch (`ActNorm.initialize`), so under a distribution
    strategy every replica starts from the same values.
    """

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        mean = aggregation("mean")
        self.bias = self.add_weight(
            name="bias", shape=(self.channels,), initializer="zeros", aggregation=mean
        )
        self.log_scale = self.add_weight(
            name="log_scale", shape=(self.channels,), initializer="zeros", aggregation=mean
        )
        self.initialized = self.add_weight(
            name="initialized", shape=(), initializer="zeros", trainable=False, aggregation=mean
        )
        self.built = True

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@register_bijector
class ActNorm(ChannelMap):
    """Per-channel affine normalisation (Glow), with explicit data-dependent initialisation.

    On an event of shape ``[..., C]`` with ``n`` positions (``H * W`` for images):

    - inverse (data -> latent): ``z = (x + bias) * exp(log_scale)``;
      ``inverse_log_det_jacobian = n * sum(log_scale)``;
    - forward (latent -> data): ``x = z * exp(-log_scale) - bias``;
      ``forward_log_det_jacobian = -n * sum(log_scale)``.

    It starts as the identity (``bias = log_scale = 0``) in both directions, and no call of
    ``forward``, ``inverse`` or a log-det ever changes its parameters. ``initialize(x)`` sets
    ``bias = -mean`` and ``log_scale = -log(std)`` per channel over the data-side batch
    ``x``, so that ``inverse(x)`` has zero mean and unit variance, and records that it did
    (once; later calls return ``False``). Inside a flow, `tfp_realnvp.initialize` does that for
    every ActNorm from the activations that reach it, and `FlowModel.fit` calls it on its
    first training batch. The state is saved with ``.keras`` files and checkpoints.

    Args:
      event_shape: the event's shape; the channels are its last axis.
      dtype: dtype of the parameters and data.
      parameters_layer: an existing `ActNormParameters` to share; made fresh by default.
      validate_args: check inputs for NaN and inf as well.
      name: defaults to a unique ``act_norm_<n>``.

    #### Examples

    >>> import numpy as np, tensorflow as tf
    >>> norm = ActNorm([3])
    >>> x = tf.constant(np.random.default_rng(0).normal(5.0, 2.0, size=(500, 3)), tf.float32)
    >>> bool(np.array_equal(norm.inverse(x), x))  # the identity until initialised
    True
    >>> norm.initialize(x), norm.is_initialized
    (True, True)
    >>> z = norm.inverse(tf.identity(x))
    >>> bool(np.allclose(np.mean(z, 0), 0.0, atol=1e-5)), bool(np.allclose(np.std(z, 0), 1.0))
    (True, True)
    >>> norm.initialize(x + 1.0)  # initialises once
    False

    #### References

    [1] Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
        Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        dtype: tf.DType | str = tf.float32,
        parameters_layer: ActNormParameters | None = None,
        validate_args: bool = False,
        name: str | None = None,
    ):
        parameters = dict(locals())
        self._set_event_shape_and_dtype(event_shape, dtype)
        if parameters_layer is None:
            parameters_layer = ActNormParameters(self._event_shape[-1], dtype=self._flow_dtype.name)
        self._params = parameters_layer
        name = name or unique_name("act_norm")
        self._finish(parameters_layer, parameters, "parameters_layer", validate_args, name)

    def _variable(self, weight):
        return tf.convert_to_tensor(weight)

    @property
    def is_initialized(self) -> bool:
        """Whether `initialize` has set the parameters (read eagerly)."""
        return bool(self._variable(self._params.initialized) > 0)

    def initialize(self, x) -> bool:
        """Sets ``bias = -mean(x)`` and ``log_scale = -log(std(x))`` per channel, over every
        batch member and position of the data-side batch ``x``, unless already initialised.

        Args:
          x: data, of shape ``[N, *event_shape]``, with at least 2 values per channel.

        Returns:
          ``True`` if this call initialised the parameters, ``False`` if they already were.

        Raises:
          RuntimeError: when called inside a `tf.function` (initialise eagerly, before
            compiling or training).
          ValueError / TypeError: for a batch of the wrong shape, dtype or size.
        """
        if not tf.executing_eagerly():
            raise RuntimeError(
                f"{self.name}: `initialize` runs eagerly; call it before training or compiling, "
                "not inside a tf.function."
            )
        x = tf.convert_to_tensor(x, dtype_hint=self._flow_dtype)
        x = self._check_input(x, "x", self._event_shape)
        count = int(np.prod(x.shape[:-1]))
        if count < 2:
            raise ValueError(
                f"{self.name}: `x` must hold at least 2 values per channel to estimate a scale; "
                f"got shape {tuple(x.shape)}."
            )
        if self.is_initialized:
            return False
        p = self._params
        mean, var = tf.nn.moments(x, list(range(x.shape.rank - 1)))
        p.bias.assign(tf.cast(-mean, p.bias.dtype))
        p.log_scale.assign(tf.cast(-0.5 * tf.math.log(var + 1e-6), p.log_scale.dtype))
        p.initialized.assign(tf.ones([], p.initialized.dtype))
        return True

    def _log_det_per_position(self, dtype):
        return tf.reduce_sum(tf.cast(self._variable(self._params.log_scale), dtype))

    def _augmented_inverse(self, x):
        x = self._check_input(x, "x", self._event_shape)
        record = initialization_record()  # open only inside tfp_realnvp.initialize
        if record is not None and self.initialize(x):
            record.append(self.name)
        bias = tf.cast(self._variable(self._params.bias), x.dtype)
        log_scale = tf.cast(self._variable(self._params.log_scale), x.dtype)
        z = (x + bias) * tf.exp(log_scale)
        ildj = self._log_det(x)
        return z, {"ildj": ildj, "fldj": -ildj}

    def _augmented_forward(self, z):
        z = self._check_input(z, "z", self._event_shape)
        bias = tf.cast(self._variable(self._params.bias), z.dtype)
        log_scale = tf.cast(self._variable(self._params.log_scale), z.dtype)
        fldj = -self._log_det(z)
        return z * tf.exp(-log_scale) - bias, {"fldj": fldj, "ildj": -fldj}

    def _inverse_log_det_jacobian(self, x):
        return self._log_det(self._check_input(x, "x", self._event_shape))

    def _forward_log_det_jacobian(self, z):
        return -self._log_det(self._check_input(z, "z", self._event_shape))
