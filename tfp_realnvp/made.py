"""MADE: a masked MLP whose outputs for unit ``i`` depend only on the units before it.

The conditioner of `tfp_realnvp.bijectors.MaskedAutoregressive`. Every unit of every layer has
a degree (Germain et al., 2015): the inputs ``x_1..x_D`` have degrees ``1..D`` in the event's
own order, hidden units degrees spread evenly over ``1..D-1`` (the same for every layer of a
width, so residual connections keep the structure), and the outputs of unit ``i`` degree ``i``.
A hidden unit sees the units of the layer below whose degree is at most its own; an output sees
those of strictly smaller degree. So the parameters of unit ``i`` are a function of
``x_1..x_{i-1}`` alone, whatever the widths (a layer narrower than ``D`` only narrows what each
unit sees). Context inputs have degree 0: they reach every hidden unit and, through a direct
connection into the output layer, the parameters of every unit, the first one included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfp_realnvp._checks import positive_int
from tfp_realnvp._keras import keras, register
from tfp_realnvp.networks import dropout_rate, dropped

__all__ = ["MADE", "hidden_degrees"]


def hidden_degrees(width: int, event_size: int) -> np.ndarray:
    """Degrees of a hidden layer of ``width`` units: ``1..D-1`` spread evenly (each degree
    ``width / (D-1)`` times; every one of them if ``width >= D-1``). ``D = 1`` gives 1s."""
    top = max(event_size - 1, 1)
    return 1 + (np.arange(width) * top) // width


class _MaskedDense(keras.layers.Layer):
    """``act(x @ (W * M) + b)``: ``M[j, k] = 1`` where output ``k`` may see input ``j``.

    ``in_degrees`` cover the first inputs; any further ones (the context) get degree 0. A
    connection is kept where ``out_degree >= in_degree`` (hidden layers) or ``>`` (``strict``,
    the output layer). The mask is a constant, not a weight: nothing trains it.
    """

    def __init__(self, units, in_degrees, out_degrees, *, strict=False, activation=None, **kw):
        super().__init__(**kw)
        self.units = int(units)
        self.in_degrees = np.asarray(in_degrees)
        self.out_degrees = np.asarray(out_degrees)
        self.strict = strict
        self.activation = keras.activations.get(activation)
        self.initializer = "zeros" if strict else "glorot_uniform"  # a fresh output is 0

    def build(self, input_shape):
        extra = int(input_shape[-1]) - len(self.in_degrees)
        degrees = np.concatenate([self.in_degrees, np.zeros(extra, self.in_degrees.dtype)])
        above = self.out_degrees[None, :] - degrees[:, None]
        self.connections = (above > 0) if self.strict else (above >= 0)
        shape = (len(degrees), self.units)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=self.initializer)
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.built = True

    def call(self, inputs):
        kernel = tf.convert_to_tensor(self.kernel)
        kernel = kernel * self.connections.astype(kernel.dtype.as_numpy_dtype)
        return self.activation(tf.matmul(inputs, kernel) + tf.convert_to_tensor(self.bias))


@register
class MADE(keras.layers.Layer):
    """Masked autoencoder for distribution estimation: an autoregressive conditioner.

    Maps ``x`` of shape ``[N, D]`` (and an optional ``context`` ``[N, C]``) to one tensor per
    entry of ``param_shapes``, of shape ``[N, D, *param_shape]``, where the entries for unit
    ``i`` depend on ``x_1..x_{i-1}`` (and the context) only. The output layer starts at zero, so
    a fresh `MaskedAutoregressive` is the identity. See the module docstring for the degrees.

    Args:
      event_size: ``D``, the number of units.
      hidden_units: widths of the hidden layers (any widths; at least ``D - 1`` lets the last
        unit see every unit before it).
      param_shapes: each parameter's shape per unit, a transformer's ``unit_param_shapes``:
        ``[[], []]`` for `Affine` (shift, log-scale), ``[[K], [K], [K - 1]]`` for a spline.
      activation: Keras activation of the hidden layers.
      residual: add skip connections between hidden layers of equal width.
      dropout: dropout rate after each hidden layer, in training only (element-wise, so the
        autoregressive structure holds).

    Returns (when called):
      a tuple of ``len(param_shapes)`` tensors, or one tensor when there is one parameter (as
      the other conditioners do for `Additive`).

    #### Examples

    >>> import tensorflow as tf
    >>> made = MADE(3, hidden_units=[8], param_shapes=[[], []])
    >>> shift, log_scale = made(tf.ones([5, 3]))
    >>> shift.shape, float(tf.reduce_max(tf.abs(log_scale)))
    (TensorShape([5, 3]), 0.0)

    #### References

    [1] Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder
        for Distribution Estimation. ICML 2015. https://arxiv.org/abs/1502.03509
    """

    def __init__(
        self,
        event_size: int,
        hidden_units: Sequence[int] = (64, 64),
        param_shapes: Sequence[Sequence[int]] = ((), ()),
        activation: str = "relu",
        residual: bool = False,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.event_size = positive_int(event_size, "event_size")
        self.dropout = dropout_rate(dropout)
        self.drop = keras.layers.Dropout(self.dropout) if self.dropout else None
        self.hidden_units = [positive_int(h, "hidden_units") for h in hidden_units]
        self.param_shapes = [
            [positive_int(d, "param_shapes") for d in shape] for shape in param_shapes
        ]
        if not self.param_shapes:
            raise ValueError("`param_shapes` must list at least one parameter shape; got [].")
        self.activation = activation
        self.residual = bool(residual)
        self._sizes = [int(np.prod(s)) for s in self.param_shapes]
        degrees = np.arange(1, self.event_size + 1)
        hidden = []
        for i, width in enumerate(self.hidden_units):
            out = hidden_degrees(width, self.event_size)
            layer = _MaskedDense(
                width, degrees, out, activation=activation, **self._sub(f"hidden_{i}")
            )
            hidden.append(layer)
            degrees = out
        self.hidden = hidden
        # Unit-major: the outputs of unit i are the i-th block of sum(sizes) values.
        self.out = _MaskedDense(
            self.event_size * sum(self._sizes),
            degrees,
            np.repeat(np.arange(1, self.event_size + 1), sum(self._sizes)),
            strict=True,
            **self._sub("output"),
        )

    def _sub(self, name: str) -> dict:
        return {"name": name, "dtype": self.dtype_policy}

    def build(self, input_shape):
        # Sub-layers build on the first call, once the context's width is known too.
        self.built = True

    def call(self, inputs, context=None, training=None):
        if context is not None:
            context = tf.cast(context, inputs.dtype)
        h = inputs
        for i, layer in enumerate(self.hidden):
            new = layer(h if i > 0 or context is None else tf.concat([h, context], -1))
            new = dropped(self.drop, new, training)
            h = h + new if self.residual and i > 0 and new.shape[-1] == h.shape[-1] else new
        out = self.out(h if context is None else tf.concat([h, context], -1))
        out = tf.reshape(out, [-1, self.event_size, sum(self._sizes)])
        parts = tuple(
            tf.reshape(p, [-1, self.event_size, *s])
            for p, s in zip(tf.split(out, self._sizes, axis=-1), self.param_shapes, strict=True)
        )
        return parts[0] if len(parts) == 1 else parts

    def get_config(self):
        return {
            **super().get_config(),
            "event_size": self.event_size,
            "hidden_units": list(self.hidden_units),
            "param_shapes": [list(s) for s in self.param_shapes],
            "activation": self.activation,
            "residual": self.residual,
            **({"dropout": self.dropout} if self.dropout else {}),
        }
