"""Conditioner networks: Keras layers returning ``(shift, log_scale)`` for a coupling.

Both end in a zero-initialised layer, so a freshly built coupling is the identity (its log-det is
exactly 0) and a new flow's density is the base density.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence

import tensorflow as tf

from tfp_realnvp._checks import integer, positive_int
from tfp_realnvp._keras import keras, register

__all__ = ["ResidualConvNet", "ResidualMLP", "training_mode"]

_TRAINING = contextvars.ContextVar("tfp_realnvp_training", default=False)


@contextlib.contextmanager
def training_mode(training: bool = True) -> Iterator[None]:
    """Runs the conditioners inside in training mode (dropout on) when Keras does not say.

    A bijector calls its conditioner deep inside TFP, where Keras' own ``training`` flag does
    not reach; `FlowModel`'s training step enters this, and so can a hand-written loop::

        with training_mode():
            loss = -tf.reduce_mean(dist.log_prob(x))

    It acts while Python runs, so inside a `tf.function` it holds for what is traced in it.
    """
    token = _TRAINING.set(bool(training))
    try:
        yield
    finally:
        _TRAINING.reset(token)


def _param_shapes(param_shapes, num_outputs: int) -> tuple[tuple[int, ...], ...]:
    """Each output's shape per unit: ``param_shapes`` when given, else ``num_outputs`` scalars."""
    if param_shapes is None:
        return ((),) * positive_int(num_outputs, "num_outputs")
    shapes = tuple(tuple(int(d) for d in s) for s in param_shapes)
    if not shapes or any(d < 1 for s in shapes for d in s):
        raise ValueError(
            "`param_shapes` must list one shape of positive sizes per output, e.g. [[8], [8], "
            f"[7]] for a spline of 8 bins; got {param_shapes!r}."
        )
    return shapes


def _outputs(out, units: int, shapes: tuple[tuple[int, ...], ...]):
    """The output layer's values as one tensor per parameter, ``[..., units, *shape]``."""
    if all(s == () for s in shapes):  # scalars per unit: the output's consecutive blocks
        return out if len(shapes) == 1 else tuple(tf.split(out, len(shapes), axis=-1))
    sizes = [math.prod(s) for s in shapes]
    batch = tf.shape(out)[:-1]
    per_unit = tf.reshape(out, tf.concat([batch, [units, sum(sizes)]], 0))
    parts = tf.split(per_unit, sizes, axis=-1)
    return tuple(
        tf.reshape(p, tf.concat([batch, [units, *s]], 0))
        for p, s in zip(parts, shapes, strict=True)
    )


@register
class ResidualMLP(keras.layers.Layer):
    """MLP conditioner with residual connections between equal-width hidden layers.

    ``h = act(W0 [x, context])``, then for each further hidden layer ``h = h + act(Wi h)`` (a
    plain layer where the width changes), and a zero-initialised output layer whose
    ``num_outputs * units`` values are split into ``num_outputs`` tensors of ``units``.

    Args:
      units: size of each output (the number of units the coupling transforms).
      hidden_units: widths of the hidden layers.
      num_outputs: 2 for ``(shift, log_scale)`` (affine), 1 for ``shift`` (additive).
      activation: Keras activation of the hidden layers.
      residual: add skip connections between hidden layers of equal width.
      param_shapes: instead of ``num_outputs``, each output's shape per unit, for
        transformers with several values per unit: outputs are then ``[batch, units, *shape]``
        (e.g. a spline's ``transformer.unit_param_shapes``).
      dropout: dropout rate after each hidden layer, in training only (a regulariser for
        small data).

    #### Examples

    >>> import tensorflow as tf
    >>> net = ResidualMLP(3, hidden_units=[16, 16])
    >>> shift, log_scale = net(tf.ones([5, 2]))
    >>> shift.shape, float(tf.reduce_max(tf.abs(log_scale)))
    (TensorShape([5, 3]), 0.0)
    """

    def __init__(
        self,
        units: int,
        hidden_units: Sequence[int] = (64, 64),
        num_outputs: int = 2,
        activation: str = "relu",
        residual: bool = True,
        param_shapes: Sequence[Sequence[int]] | None = None,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        self.hidden_units = [positive_int(h, "hidden_units") for h in hidden_units]
        if not self.hidden_units:
            raise ValueError("`hidden_units` must list at least one hidden layer width.")
        self.param_shapes = _param_shapes(param_shapes, num_outputs)
        self.num_outputs = len(self.param_shapes)
        self.activation = activation
        self.residual = bool(residual)
        self.dropout = dropout_rate(dropout)
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout else None
        self.hidden = [
            keras.layers.Dense(
                h, activation=activation, name=f"hidden_{i}", dtype=self.dtype_policy
            )
            for i, h in enumerate(self.hidden_units)
        ]
        self.out = keras.layers.Dense(
            units * sum(math.prod(s) for s in self.param_shapes),
            kernel_initializer="zeros",
            bias_initializer="zeros",
            name="output",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        # Sub-layers build on the first call, once the context's width is known too.
        self.built = True

    def call(self, inputs, context=None, training=None):
        h = inputs if context is None else tf.concat([inputs, tf.cast(context, inputs.dtype)], -1)
        h = self._dropped(self.hidden[0](h), training)
        for layer in self.hidden[1:]:
            new = self._dropped(layer(h), training)
            h = h + new if self.residual and new.shape[-1] == h.shape[-1] else new
        return _outputs(self.out(h), self.units, self.param_shapes)

    def _dropped(self, h, training):
        return dropped(self.drop, h, training)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "hidden_units": list(self.hidden_units),
            "activation": self.activation,
            "residual": self.residual,
            **_output_config(self.param_shapes),
            **({"dropout": self.dropout} if self.dropout else {}),
        }


@register
class ResidualConvNet(keras.layers.Layer):
    """Convolutional conditioner for ``[H, W, C]`` events: a 3x3 input convolution, residual
    blocks (conv-act-conv plus skip) and a zero-initialised 3x3 output convolution.

    A context vector, if given, is broadcast over the image and appended as channels.

    Args:
      channels: channels of each output (the event's channels).
      hidden_channels: width of the hidden feature maps.
      num_blocks: number of residual blocks.
      kernel_size: spatial size of the hidden convolutions.
      num_outputs: 2 for ``(shift, log_scale)``, 1 for ``shift``.
      activation: Keras activation.
      param_shapes: as for `ResidualMLP`: outputs are then ``[batch, H, W, channels, *shape]``.

    #### Examples

    >>> import tensorflow as tf
    >>> net = ResidualConvNet(2, hidden_channels=8, num_blocks=1)
    >>> [t.shape for t in net(tf.ones([1, 4, 4, 2]))]
    [TensorShape([1, 4, 4, 2]), TensorShape([1, 4, 4, 2])]
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int = 64,
        num_blocks: int = 2,
        kernel_size: int = 3,
        num_outputs: int = 2,
        activation: str = "relu",
        param_shapes: Sequence[Sequence[int]] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = positive_int(channels, "channels")
        self.param_shapes = _param_shapes(param_shapes, num_outputs)
        self.hidden_channels = positive_int(hidden_channels, "hidden_channels")
        self.num_blocks = integer(num_blocks, "num_blocks", minimum=0)
        self.kernel_size = positive_int(kernel_size, "kernel_size")
        self.num_outputs = len(self.param_shapes)
        self.activation = activation
        self.act = keras.activations.get(activation)

        def conv(filters, name, **kw):
            return keras.layers.Conv2D(
                filters, kernel_size, padding="same", name=name, dtype=self.dtype_policy, **kw
            )

        self.inp = conv(hidden_channels, "input")
        # Two flat lists: Keras 3 tracks layers in lists, not in tuples.
        self.blocks_a = [conv(hidden_channels, f"block_{i}_a") for i in range(self.num_blocks)]
        self.blocks_b = [conv(hidden_channels, f"block_{i}_b") for i in range(self.num_blocks)]
        self.out = conv(
            channels * sum(math.prod(s) for s in self.param_shapes),
            "output",
            kernel_initializer="zeros",
            bias_initializer="zeros",
        )

    def build(self, input_shape):
        # Sub-layers build on the first call, once the context's width is known too.
        self.built = True

    def call(self, inputs, context=None):
        h = inputs
        if context is not None:
            context = tf.cast(context, inputs.dtype)[:, None, None, :]
            shape = tf.concat([tf.shape(inputs)[:3], tf.shape(context)[3:]], 0)
            h = tf.concat([h, tf.broadcast_to(context, shape)], -1)
        h = self.act(self.inp(h))
        for conv_a, conv_b in zip(self.blocks_a, self.blocks_b, strict=False):
            h = h + conv_b(self.act(conv_a(h)))
            h = self.act(h)
        return _outputs(self.out(h), self.channels, self.param_shapes)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "hidden_channels": self.hidden_channels,
            "num_blocks": self.num_blocks,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            **_output_config(self.param_shapes),
        }


def _output_config(shapes: tuple[tuple[int, ...], ...]) -> dict:
    if all(s == () for s in shapes):
        return {"num_outputs": len(shapes)}
    return {"param_shapes": [list(s) for s in shapes]}


def dropped(drop, h, training):
    """``h`` through the Dropout layer ``drop`` (if any), in training mode when Keras says so
    or, when it does not, inside `training_mode`."""
    if drop is None:
        return h
    return drop(h, training=_TRAINING.get() if training is None else training)


def dropout_rate(dropout) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a rate in [0, 1); got {dropout!r}.")
    return float(dropout)
