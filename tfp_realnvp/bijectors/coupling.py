"""Coupling layers: a mask layout plus an element-wise transformer, as TFP bijectors.

`Coupling` takes any transformer of `tfp_realnvp.bijectors.transformers`; `AffineCoupling` is
RealNVP's affine coupling (and NICE's additive one) on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors.base import FlowBijector, register_bijector, unique_name
from tfp_realnvp.bijectors.layouts import layout_for
from tfp_realnvp.bijectors.lowering import lowered_conditioner
from tfp_realnvp.bijectors.masks import half_mask, validate_mask
from tfp_realnvp.bijectors.transformers import (
    Additive,
    Affine,
    Transformer,
    check_scale,
    transformer_class,
)

__all__ = ["AffineCoupling", "Coupling"]


@register_bijector
class Coupling(FlowBijector):
    """Coupling layer: the units a mask marks pass through and parameterise a map of the others.

    TFP's direction convention: ``forward`` maps latent ``z`` to data ``x`` (sampling) and
    ``inverse`` maps data to latent (density). A boolean ``mask`` splits an event into masked
    units ``x1`` (``True``: copied, and fed to the conditioner) and transformed units ``x2``,
    which the element-wise ``transformer`` ``T`` maps with parameters
    ``theta(x1) = T.params(conditioner(x1))``:

    - inverse (data -> latent): ``z1 = x1``, ``z2 = T.inverse(x2; theta(x1))``;
    - forward (latent -> data): ``x1 = z1``, ``x2 = T.forward(z2; theta(z1))``;
    - ``inverse_log_det_jacobian(x)``: the sum of ``T.inverse``'s element-wise log-dets;
    - ``forward_log_det_jacobian(z)``: the sum of ``T.forward``'s.

    The Jacobian is triangular, so these are exact. The conditioner runs once per call: the
    transformed values and the log-det come from the same pass, and TFP's cache hands the
    log-det to the ``*_log_det_jacobian`` call that follows (as for ``tfb.FFJORD``).

    The mask's rank picks the layout (`tfp_realnvp.bijectors.layouts`): vector events slice or
    gather the two parts, so the conditioner sees only ``x1`` and returns tensors of shape
    ``[batch, num_transformed]``; events of higher rank (images ``[H, W, C]`` with
    checkerboard or channel masks) use RealNVP's multiplicative form: the conditioner sees
    ``x * mask`` and returns tensors of the event's shape, whose masked entries are ignored.

    ``is_constant_jacobian`` is ``False`` even for a transformer with a constant log-det:
    the map is not affine, and TFP would otherwise compute a transformed distribution's mean
    and covariance as if it were.

    Args:
      conditioner: Keras layer or `tf.Module` called as ``conditioner(x1)`` (or
        ``conditioner(x1, context=context)`` when ``context_shape`` is set), returning
        ``transformer.num_params`` tensors (a tuple, or one tensor when it takes one). It is
        built here, on zeros, so that its weights exist (and are listed by
        ``trainable_variables``) at once.
      mask: boolean array with the event's shape; ``True`` marks the units passed through.
      transformer: a `Transformer` (`Affine`, `Additive`, or one of your own), owned by this
        coupling alone when it holds weights.
      context_shape: shape of one example's context for a conditional coupling, or ``None``.
      dtype: dtype of the data; defaults to the conditioner's variable dtype (Keras layers)
        or float32.
      validate_args: check inputs for NaN and inf as well (dtype, event shape, context and
        mask are always checked).
      name: name of the bijector; defaults to a unique ``coupling_<n>``, so that `tfb.Chain`
        routes conditioning kwargs unambiguously.

    Raises:
      ValueError / TypeError: naming the argument, the expectation and what came.

    #### Examples

    >>> import numpy as np, tensorflow as tf
    >>> from tfp_realnvp import ResidualConvNet, checkerboard_mask
    >>> from tfp_realnvp.bijectors import Affine, Coupling
    >>> mask = checkerboard_mask(4, 4, 1)
    >>> bij = Coupling(ResidualConvNet(1, 8, num_blocks=1), mask, Affine(scale="sigmoid"))
    >>> x = tf.random.stateless_normal([2, 4, 4, 1], seed=[1, 2])
    >>> bool(np.allclose(bij.forward(tf.identity(bij.inverse(x))), x, atol=1e-6))
    True
    >>> bij.inverse_log_det_jacobian(x, event_ndims=3).shape
    TensorShape([2])

    #### References

    [1] Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
        ICLR 2017. https://arxiv.org/abs/1605.08803
    [2] Conor Durkan, Artur Bekasov, Iain Murray, George Papamakarios. Neural Spline Flows.
        NeurIPS 2019. https://arxiv.org/abs/1906.04140
    """

    def __init__(
        self,
        conditioner,
        mask: np.ndarray | Sequence,
        transformer: Transformer,
        *,
        context_shape: Sequence[int] | None = None,
        dtype: tf.DType | str | None = None,
        validate_args: bool = False,
        name: str | None = None,
    ):
        parameters = dict(locals())
        self._setup(conditioner, validate_mask(mask), transformer, context_shape, dtype)
        self._finish(validate_args, parameters, name or unique_name("coupling"))

    def _setup(self, conditioner, mask, transformer, context_shape, dtype) -> None:
        if not callable(conditioner):
            raise TypeError(
                "`conditioner` must be a Keras layer or tf.Module mapping the masked units to "
                f"the transformer's parameters; got {type(conditioner).__name__}."
            )
        if not isinstance(transformer, Transformer):
            raise TypeError(
                "`transformer` must be a tfp_realnvp.bijectors.Transformer (Affine, Additive "
                f"or a subclass); got {type(transformer).__name__}."
            )
        self._conditioner = conditioner
        self._transformer = transformer
        self._layout = layout_for(mask)
        self._event_shape = self._layout.event_shape
        self._context_shape = (
            None if context_shape is None else tuple(int(d) for d in context_shape)
        )
        self._flow_dtype = tf.as_dtype(dtype or getattr(conditioner, "dtype", None) or tf.float32)
        if not self._flow_dtype.is_floating:
            raise TypeError(f"`dtype` must be a floating dtype; got {self._flow_dtype.name}.")
        transformer.build(self._layout.param_shape, self._flow_dtype.name)

    def _finish(self, validate_args: bool, parameters: dict, name: str) -> None:
        super().__init__(
            forward_min_event_ndims=len(self._event_shape),
            is_constant_jacobian=False,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )
        self._build_conditioner()
        self._track_layers([self._conditioner, *self._transformer.layers])

    # Public read-only views.
    @property
    def mask(self) -> np.ndarray:
        """Boolean mask over the event; ``True`` marks the units passed through."""
        return self._layout.mask.copy()

    @property
    def transformer(self) -> Transformer:
        """The element-wise map of the transformed units."""
        return self._transformer

    @property
    def context_shape(self) -> tuple[int, ...] | None:
        return self._context_shape

    @property
    def is_conditional(self) -> bool:
        return self._context_shape is not None

    @property
    def conditioner(self):
        return self._conditioner

    @property
    def conditioner_input_shape(self) -> tuple[int, ...]:
        """Shape of one example of the conditioner's input (the masked units, or the whole
        event times the mask for images)."""
        return self._layout.conditioner_input_shape

    def get_config(self) -> dict:
        return {
            "conditioner": self.conditioner,
            "mask": self.mask.tolist(),
            "transformer": {
                "class_name": type(self.transformer).__name__,
                "config": self.transformer.get_config(),
            },
            "context_shape": None if self.context_shape is None else list(self.context_shape),
            "dtype": self.flow_dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict) -> Coupling:
        described = config["transformer"]
        transformer = transformer_class(described["class_name"]).from_config(described["config"])
        return cls(**{**config, "transformer": transformer})

    # The math.
    def _augmented_inverse(self, x, context=None):
        x = self._check_input(x, "x", self._event_shape)
        z, ildj = self._pass("inverse", x, context)
        return z, {"ildj": ildj, "fldj": -ildj}

    def _augmented_forward(self, z, context=None):
        z = self._check_input(z, "z", self._event_shape)
        x, fldj = self._pass("forward", z, context)
        return x, {"fldj": fldj, "ildj": -fldj}

    # Pieces.
    def _flatten_batch(self, x):
        """Reshapes to ``[N, *event]``; returns it and the batch shape (static where known)."""
        rank = len(self._event_shape)
        batch = x.shape[: x.shape.rank - rank]
        batch_shape = batch.as_list() if batch.is_fully_defined() else tf.shape(x)[:-rank]
        return tf.reshape(x, (-1, *self._event_shape)), batch_shape

    def _pass(self, direction: str, x, context):
        """One conditioner pass in ``direction``: the output and one log-det per example."""
        flat, batch_shape = self._flatten_batch(x)
        x1, x2 = self._layout.split(flat)
        out = self._call_conditioner(x1, self._prepare_context(context, batch_shape))
        outputs = (out,) if self._transformer.num_params == 1 else tuple(out)
        y, ldj = self._transform(direction, x1, x2, outputs)
        return tf.reshape(y, tf.shape(x)), tf.reshape(ldj, batch_shape)

    def _transform(self, direction: str, x1, x2, outputs):
        """The transformer on ``x2`` with the conditioner's ``outputs`` (cast to the data dtype;
        those of copied entries set to the identity): the merged ``[N, *event]`` and the
        summed log-dets ``[N]``."""
        params = self._layout.keep(
            self._transformer.params(tuple(tf.cast(t, x2.dtype) for t in outputs))
        )
        y2, ldj = getattr(self._transformer, direction)(x2, params)
        ldj = tf.zeros(tf.shape(x2)[:1], x2.dtype) if ldj is None else self._layout.sum(ldj)
        return self._layout.merge(x1, y2), ldj

    def _call_conditioner(self, x1, context):
        conditioner = lowered_conditioner(self)  # a bfloat16 copy (bijectors.lowering)
        if conditioner is None:
            conditioner = self._conditioner
        else:
            x1 = tf.cast(x1, conditioner.compute_dtype)
            context = None if context is None else tf.cast(context, x1.dtype)
        if context is None:
            return conditioner(x1)
        return conditioner(x1, context=context)

    def _prepare_context(self, context, batch_shape):
        if self._context_shape is None:
            if context is not None:
                raise ValueError(
                    f"{self.name}: got `context`, but this coupling is unconditional (built "
                    "without `context_shape`)."
                )
            return None
        if context is None:
            raise ValueError(
                f"{self.name}: this coupling is conditional (context_shape="
                f"{self._context_shape}) and needs `context`; pass "
                "bijector_kwargs=tfp_realnvp.conditional_kwargs(flow, context)."
            )
        context = tf.convert_to_tensor(context, dtype_hint=self._flow_dtype)
        if context.dtype != self._flow_dtype:
            raise TypeError(
                f"{self.name}: `context` has dtype {context.dtype.name}, but this bijector "
                f"computes in {self._flow_dtype.name}."
            )
        rank = len(self._context_shape)
        shape = context.shape
        if shape.rank is not None and (
            shape.rank < rank or tuple(shape[shape.rank - rank :]) != self._context_shape
        ):
            raise ValueError(
                f"{self.name}: `context` must end in context_shape {self._context_shape}; got "
                f"shape {tuple(shape)}."
            )
        if isinstance(batch_shape, list):
            full = batch_shape + list(self._context_shape)
        else:
            full = tf.concat([batch_shape, self._context_shape], axis=0)
        context = tf.broadcast_to(context, full)
        return tf.reshape(context, (-1, *self._context_shape))

    def _build_conditioner(self):
        """Calls the conditioner once on zeros: creates its weights and checks its outputs."""
        x1 = tf.zeros((1, *self._layout.conditioner_input_shape), self._flow_dtype)
        context = None
        if self._context_shape is not None:
            context = tf.zeros((1, *self._context_shape), self._flow_dtype)
        out = self._call_conditioner(x1, context)
        transformer = self._transformer
        n = transformer.num_params
        wants = [(1, *self._layout.param_shape, *u) for u in transformer.unit_param_shapes]
        if n == 1:
            outputs = (out,) if tf.is_tensor(out) else None
        else:
            outputs = tuple(out) if isinstance(out, (tuple, list)) else None
        ok = (
            outputs is not None
            and len(outputs) == n
            and all(
                tf.is_tensor(t) and tuple(t.shape) == w for t, w in zip(outputs, wants, strict=True)
            )
        )
        if not ok:
            got = [tuple(t.shape) for t in out] if isinstance(out, (tuple, list)) else out
            got = tuple(out.shape) if tf.is_tensor(out) else got
            raise ValueError(
                f"{self.name}: `conditioner` must return "
                f"{_expected_outputs(transformer.param_names, wants)} for a batch of 1 with "
                f"this mask ({transformer!r}); got {got}. (Our conditioners take "
                f"num_outputs={n} for this transformer.)"
            )


@register_bijector
class AffineCoupling(Coupling):
    """Affine coupling layer of RealNVP; with ``scale="none"``, the additive coupling of NICE.

    A `Coupling` with the `Affine` transformer (`Additive` for ``scale="none"``); the
    directions, the single conditioner pass and the vector and image layouts are as there.
    The conditioner maps the masked units ``x1`` (and an optional ``context``) to ``(t, s)``,
    and ``log_scale = g(s)`` with ``g`` set by ``scale`` (bounded by default; see
    `tfp_realnvp.bijectors.transformers`):

    - inverse (data -> latent): ``z1 = x1``, ``z2 = x2 * exp(log_scale(x1)) + t(x1)``;
    - forward (latent -> data): ``x1 = z1``, ``x2 = (z2 - t(z1)) * exp(-log_scale(z1))``;
    - ``inverse_log_det_jacobian(x) = sum(log_scale(x1))`` over the transformed units;
    - ``forward_log_det_jacobian(z) = -sum(log_scale(z1))``.

    The additive coupling has a unit Jacobian determinant but is not an affine map, so
    ``is_constant_jacobian`` stays ``False`` (see `Coupling`).

    Args:
      conditioner: Keras layer or `tf.Module` called as ``conditioner(x1)`` (or
        ``conditioner(x1, context=context)`` when ``context_shape`` is set), returning
        ``(shift, log_scale_raw)``, or ``shift`` alone for ``scale="none"``. It is built here,
        on zeros, so that its weights exist (and are listed by ``trainable_variables``) at once.
      mask: boolean array with the event's shape; ``True`` marks the units passed through.
      num_masked: instead of ``mask``, the first ``num_masked`` units of a vector event are
        masked (default ``event_shape[0] // 2``). Needs ``event_shape``.
      event_shape: the event's shape; needed only without ``mask``.
      scale: ``"soft_clamp"`` (default), ``"tanh"``, ``"sigmoid"``, ``"exp"`` or ``"none"``.
      clamp: bound of ``"soft_clamp"``'s log-scale.
      context_shape: shape of one example's context for a conditional coupling, or ``None``.
      dtype: dtype of the data; defaults to the conditioner's variable dtype (Keras layers)
        or float32.
      validate_args: check inputs for NaN and inf as well (dtype, event shape, context and
        mask are always checked).
      name: name of the bijector; defaults to a unique ``affine_coupling_<n>``, so that
        `tfb.Chain` routes conditioning kwargs unambiguously.

    Raises:
      ValueError / TypeError: naming the argument, the expectation and what came.

    #### Examples

    >>> import numpy as np, tensorflow as tf
    >>> from tfp_realnvp import AffineCoupling, ResidualMLP
    >>> bij = AffineCoupling(ResidualMLP(2, hidden_units=[8]), num_masked=2, event_shape=[4])
    >>> x = tf.random.stateless_normal([3, 4], seed=[1, 2])
    >>> z = bij.inverse(x)
    >>> bool(np.allclose(bij.forward(tf.identity(z)), x, atol=1e-6))
    True
    >>> bij.inverse_log_det_jacobian(x, event_ndims=1).shape
    TensorShape([3])

    #### References

    [1] Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
        ICLR 2017. https://arxiv.org/abs/1605.08803
    [2] Laurent Dinh, David Krueger, Yoshua Bengio. NICE: Non-linear Independent Components
        Estimation. 2014. https://arxiv.org/abs/1410.8516
    [3] Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
        Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
    """

    def __init__(
        self,
        conditioner,
        mask: np.ndarray | Sequence | None = None,
        *,
        num_masked: int | None = None,
        event_shape: Sequence[int] | None = None,
        scale: str | None = "soft_clamp",
        clamp: float = 3.0,
        context_shape: Sequence[int] | None = None,
        dtype: tf.DType | str | None = None,
        validate_args: bool = False,
        name: str | None = None,
    ):
        parameters = dict(locals())
        mask = _resolve_mask(mask, num_masked, event_shape)
        self._scale = check_scale(scale, clamp)
        self._clamp = float(clamp)
        transformer = Additive() if self._scale == "none" else Affine(self._scale, clamp)
        self._setup(conditioner, mask, transformer, context_shape, dtype)
        self._finish(validate_args, parameters, name or unique_name("affine_coupling"))

    @property
    def scale(self) -> str:
        """The scale parameterisation; ``"none"`` for the additive coupling."""
        return self._scale

    @property
    def clamp(self) -> float:
        """Bound of ``"soft_clamp"``'s log-scale."""
        return self._clamp

    def get_config(self) -> dict:
        config = {k: v for k, v in super().get_config().items() if k != "transformer"}
        return {**config, "scale": self.scale, "clamp": self.clamp}

    @classmethod
    def from_config(cls, config: dict) -> AffineCoupling:
        return cls(**config)


def _expected_outputs(names: Sequence[str], wants: Sequence[tuple]) -> str:
    if len(names) == 1:
        return f"a {names[0]} tensor of shape {wants[0]}"
    if len(set(wants)) == 1:
        return f"({', '.join(names)}), each of shape {wants[0]}"
    return "(" + ", ".join(f"{n} of shape {w}" for n, w in zip(names, wants, strict=True)) + ")"


def _resolve_mask(mask, num_masked, event_shape) -> np.ndarray:
    if mask is not None:
        if num_masked is not None:
            raise ValueError("pass either `mask` or `num_masked`, not both.")
        return validate_mask(mask, event_shape)
    if event_shape is None:
        raise ValueError(
            "`event_shape` is needed when no `mask` is given (e.g. event_shape=[4] with "
            "num_masked=2)."
        )
    event_shape = tuple(event_shape)
    if len(event_shape) != 1:
        raise ValueError(
            "`num_masked` splits vector events only; for an event of shape "
            f"{event_shape} pass a `mask` (checkerboard_mask, channel_mask, ...)."
        )
    return half_mask(event_shape[0], num_masked)
