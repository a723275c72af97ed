"""How a coupling turns the conditioner's raw output ``s`` into a log-scale.

The coupling multiplies the transformed units by ``exp(log_scale)``. An unbounded ``exp(s)``
lets one bad step of training overflow the density, so the default is bounded:

================  =================================  ==========================================
``scale``         log-scale                          notes
================  =================================  ==========================================
``"soft_clamp"``  ``clamp * tanh(s / clamp)``        default; identity near 0, bounded by clamp
``"tanh"``        ``a * tanh(s)``, ``a`` learned     RealNVP paper (Dinh et al., 2017)
``"sigmoid"``     ``log(sigmoid(s + 2))``            Glow (Kingma & Dhariwal, 2018); scale < 1
``"exp"``         ``s``                              the plain equations, unbounded
``"none"``        0                                  additive (NICE) coupling, shift only
================  =================================  ==========================================

Bounded log-scales keep a stack of couplings bijective and finite in float64 far from the data:
``"soft_clamp"``, ``"tanh"`` and ``"none"`` pass the edge checks of tests/test_builder_grid.py
at inputs of magnitude 100. ``"sigmoid"`` divides by a sigmoid in ``forward`` and ``"exp"`` is
unbounded both ways, so far out stacked couplings overflow or lose the round trip; those tests
hold them to magnitudes 10 and 3 (with random weights of scale 0.1, a small Glow flow failed at
latents of magnitude 100, and a three-coupling ``"exp"`` flow at inputs of magnitude 10).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfp_realnvp._keras import keras, register

__all__ = ["SCALES", "LearnedTanhScale", "check_scale", "conditioner_outputs", "log_scale"]

SCALES = ("soft_clamp", "tanh", "sigmoid", "exp", "none")


def check_scale(scale: str | None, clamp: float) -> str:
    """Normalises ``scale`` (``None`` means ``"none"``) and validates ``clamp``."""
    scale = "none" if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}; got {scale!r}.")
    if scale == "soft_clamp" and not (isinstance(clamp, (int, float)) and clamp > 0):
        raise ValueError(f"`clamp` must be a positive number; got {clamp!r}.")
    return scale


def conditioner_outputs(scale: str) -> int:
    """How many tensors a coupling's conditioner returns for ``scale``: the shift alone for
    ``"none"`` (additive), ``(shift, s)`` otherwise."""
    return 1 if scale == "none" else 2


def log_scale(raw: tf.Tensor, scale: str, clamp: float, learned=None) -> tf.Tensor:
    """The log-scale for raw conditioner output ``raw`` (see the module table)."""
    if scale == "soft_clamp":
        return clamp * tf.tanh(raw / clamp)
    if scale == "tanh":
        return learned(raw)
    if scale == "sigmoid":
        return tf.math.log_sigmoid(raw + 2.0)
    if scale == "exp":
        return raw
    raise ValueError(f"scale {scale!r} has no log-scale")


@register
class LearnedTanhScale(keras.layers.Layer):
    """``a * tanh(s)`` with a learned per-unit ``a`` (initialised to 1), as in RealNVP.

    Args:
      units_shape: shape of ``s`` without batch dimensions.
    """

    def __init__(self, units_shape: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.units_shape = tuple(int(d) for d in units_shape)
        self.scale = self.add_weight(
            name="scale", shape=self.units_shape, initializer="ones", trainable=True
        )
        self.built = True

    def call(self, raw):
        return tf.cast(self.scale, raw.dtype) * tf.tanh(raw)

    def get_config(self):
        return {**super().get_config(), "units_shape": list(self.units_shape)}
