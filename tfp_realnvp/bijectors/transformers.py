"""Element-wise monotone maps that a `Coupling` applies to the units it transforms.

A transformer turns the conditioner's outputs into parameters (`Transformer.params`) and maps
each unit with its own parameters. Directions follow TFP and the coupling: ``inverse`` maps data
to latent (density), ``forward`` latent to data (sampling); each returns the element-wise
log-det of its own direction, or ``None`` where that is identically zero. For the affine
transformer:

- ``inverse``: ``z = x * exp(log_scale) + shift``, log-det ``log_scale``;
- ``forward``: ``x = (z - shift) * exp(-log_scale)``, log-det ``-log_scale``.

Zero parameters must map every unit to itself: on images, the coupling zeroes the parameters of
the units it copies (`tfp_realnvp.bijectors.layouts.MaskedLayout`).

`Affine` turns the conditioner's raw output ``s`` into a log-scale. An unbounded ``exp(s)``
lets one bad step of training overflow the density, so the default is bounded:

================  =================================  ==========================================
``scale``         log-scale                          notes
================  =================================  ==========================================
``"soft_clamp"``  ``clamp * tanh(s / clamp)``        default; identity near 0, bounded by clamp
``"tanh"``        ``a * tanh(s)``, ``a`` learned     RealNVP paper (Dinh et al., 2017)
``"sigmoid"``     ``log(sigmoid(s + 2))``            Glow (Kingma & Dhariwal, 2018); scale < 1
``"exp"``         ``s``                              the plain equations, unbounded
``"none"``        0                                  `Additive` (NICE) coupling, shift only
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

__all__ = [
    "SCALES",
    "Additive",
    "Affine",
    "LearnedTanhScale",
    "Transformer",
    "check_scale",
    "conditioner_outputs",
    "log_scale",
    "registered_transformers",
    "transformer_class",
]

SCALES = ("soft_clamp", "tanh", "sigmoid", "exp", "none")

Params = tuple[tf.Tensor, ...]
LogDet = tf.Tensor | None


_TRANSFORMERS: dict[str, type] = {}


def transformer_class(name: str) -> type:
    """The `Transformer` subclass called ``name`` (every subclass is known by its name).

    Raises:
      ValueError: for a name no subclass has (import the module defining it first).
    """
    if name not in _TRANSFORMERS:
        raise ValueError(
            f"unknown transformer {name!r}; known: {sorted(_TRANSFORMERS)}. Import the module "
            "that defines it before loading."
        )
    return _TRANSFORMERS[name]


def registered_transformers() -> dict[str, type]:
    """Every `Transformer` subclass defined so far, by name."""
    return dict(_TRANSFORMERS)


class Transformer:
    """Base of the element-wise maps a `Coupling` applies, with its defaults.

    A subclass sets ``param_names`` (one per tensor the conditioner returns) and defines
    ``forward`` and ``inverse``; it overrides ``params`` to constrain the raw outputs, ``build``
    and ``layers`` if it holds weights, and ``get_config`` if it takes arguments.
    """

    param_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _TRANSFORMERS[cls.__name__] = cls  # so a saved `Coupling` finds it by name

    @property
    def num_params(self) -> int:
        """How many tensors the conditioner returns for this transformer."""
        return len(self.param_names)

    @property
    def unit_param_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Each parameter's shape per transformed unit: ``()`` for one value per unit."""
        return ((),) * self.num_params

    @property
    def layers(self) -> tuple:
        """The Keras layers holding this transformer's weights (the coupling tracks them)."""
        return ()

    def build(self, units_shape: Sequence[int], dtype: str) -> None:
        """Creates any weights, for parameters of ``units_shape`` per example."""

    def params(self, outputs: Params) -> Params:
        """The parameters for the conditioner's ``outputs`` (zeros map units to themselves)."""
        return outputs

    def forward(self, z: tf.Tensor, params: Params) -> tuple[tf.Tensor, LogDet]:
        """Latent -> data, with the element-wise log-det (``None`` when identically 0)."""
        raise NotImplementedError

    def inverse(self, x: tf.Tensor, params: Params) -> tuple[tf.Tensor, LogDet]:
        """Data -> latent, with the element-wise log-det (``None`` when identically 0)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor's arguments."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Transformer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Affine(Transformer):
    """``z = x * exp(log_scale) + shift`` (inverse), with ``log_scale = g(s)`` set by ``scale``.

    The conditioner returns ``(shift, s)``; ``g`` is in the module's table. The inverse's
    log-det is ``log_scale`` per unit, the forward's ``-log_scale``.

    Args:
      scale: ``"soft_clamp"`` (default), ``"tanh"`` (learned factor, one per unit),
        ``"sigmoid"`` or ``"exp"``; `Additive` is the shift alone.
      clamp: bound of ``"soft_clamp"``'s log-scale.

    #### Examples

    >>> import tensorflow as tf
    >>> affine = Affine(scale="exp")
    >>> params = affine.params((tf.constant([1.0]), tf.math.log([2.0])))
    >>> z, log_det = affine.inverse(tf.constant([3.0]), params)
    >>> float(z[0]), round(float(log_det[0]), 4)
    (7.0, 0.6931)
    """

    param_names = ("shift", "log_scale")

    def __init__(self, scale: str = "soft_clamp", clamp: float = 3.0):
        self.scale = check_scale(scale, clamp)
        if self.scale == "none":
            raise ValueError("`scale` of Affine must not be 'none'; use Additive() for a shift.")
        self.clamp = float(clamp)
        self._learned = None

    @property
    def layers(self) -> tuple:
        return () if self._learned is None else (self._learned,)

    def build(self, units_shape: Sequence[int], dtype: str) -> None:
        if self.scale != "tanh":
            return
        if self._learned is not None:
            raise ValueError(
                "this Affine(scale='tanh') already holds the learned factors of another "
                "coupling; give each coupling its own transformer."
            )
        self._learned = LearnedTanhScale(units_shape, dtype=dtype)

    def params(self, outputs: Params) -> Params:
        shift, raw = outputs
        return shift, log_scale(raw, self.scale, self.clamp, self._learned)

    def inverse(self, x: tf.Tensor, params: Params) -> tuple[tf.Tensor, tf.Tensor]:
        shift, log_s = params
        return x * tf.exp(log_s) + shift, log_s

    def forward(self, z: tf.Tensor, params: Params) -> tuple[tf.Tensor, tf.Tensor]:
        shift, log_s = params
        neg_log_s = -log_s
        return (z - shift) * tf.exp(neg_log_s), neg_log_s

    def get_config(self) -> dict:
        return {"scale": self.scale, "clamp": self.clamp}


class Additive(Transformer):
    """``z = x + shift`` (inverse), NICE's additive coupling: unit Jacobian determinant.

    #### Examples

    >>> import tensorflow as tf
    >>> z, log_det = Additive().inverse(tf.constant([3.0]), (tf.constant([1.0]),))
    >>> float(z[0]), log_det
    (4.0, None)
    """

    param_names = ("shift",)

    def inverse(self, x: tf.Tensor, params: Params) -> tuple[tf.Tensor, None]:
        return x + params[0], None

    def forward(self, z: tf.Tensor, params: Params) -> tuple[tf.Tensor, None]:
        return z - params[0], None


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
