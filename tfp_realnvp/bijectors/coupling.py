"""The RealNVP affine coupling (and NICE's additive coupling) as a TFP bijector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorflow_probability.python.internal import cache_util

from tfp_realnvp.bijectors.base import KerasBijector, register_bijector, unique_name
from tfp_realnvp.bijectors.masks import half_mask, validate_mask
from tfp_realnvp.bijectors.scales import (
    LearnedTanhScale,
    check_scale,
    conditioner_outputs,
    log_scale,
)

__all__ = ["AffineCoupling"]


@register_bijector
class AffineCoupling(KerasBijector):
    """Affine coupling layer of RealNVP; with ``scale="none"``, the additive coupling of NICE.

    TFP's direction convention: ``forward`` maps latent ``z`` to data ``x`` (sampling) and
    ``inverse`` maps data to latent (density). A boolean ``mask`` splits an event into masked
    units ``x1`` (``True``: copied, and fed to the conditioner) and transformed units ``x2``.
    The conditioner maps ``x1`` (and an optional ``context``) to ``(t, s)``, and
    ``log_scale = g(s)`` with ``g`` set by ``scale`` (bounded by default; see
    `tfp_realnvp.bijectors.scales`):

    - inverse (data -> latent): ``z1 = x1``, ``z2 = x2 * exp(log_scale(x1)) + t(x1)``;
    - forward (latent -> data): ``x1 = z1``, ``x2 = (z2 - t(z1)) * exp(-log_scale(z1))``;
    - ``inverse_log_det_jacobian(x) = sum(log_scale(x1))`` over the transformed units;
    - ``forward_log_det_jacobian(z) = -sum(log_scale(z1))``.

    The Jacobian is triangular, so these are exact. The conditioner runs once per call: the
    transformed values and the log-det come from the same pass, and TFP's cache hands the
    log-det to the ``*_log_det_jacobian`` call that follows (as for ``tfb.FFJORD``).

    Vector events (rank 1) gather the two parts, so the conditioner sees only ``x1`` and
    returns tensors of shape ``[batch, num_transformed]``. Events of higher rank (images
    ``[H, W, C]`` with checkerboard or channel masks) use RealNVP's multiplicative form: the
    conditioner sees ``x * mask`` and returns tensors of the event's shape, whose masked
    entries are ignored.

    Although an additive coupling has a unit Jacobian determinant, it is not an affine map, so
    ``is_constant_jacobian`` stays ``False`` (TFP would otherwise compute a transformed
    distribution's mean and covariance as if it were).

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

    _cache = cache_util.BijectorCacheWithGreedyAttrs(
        forward_name="_augmented_forward", inverse_name="_augmented_inverse"
    )

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
        if not callable(conditioner):
            raise TypeError(
                "`conditioner` must be a Keras layer or tf.Module mapping the masked units to "
                f"(shift, log_scale); got {type(conditioner).__name__}."
            )
        self._mask = _resolve_mask(mask, num_masked, event_shape)
        self._event_shape = tuple(self._mask.shape)
        self._scale = check_scale(scale, clamp)
        self._clamp = float(clamp)
        self._context_shape = (
            None if context_shape is None else tuple(int(d) for d in context_shape)
        )
        self._conditioner = conditioner
        self._flow_dtype = tf.as_dtype(dtype or getattr(conditioner, "dtype", None) or tf.float32)
        if not self._flow_dtype.is_floating:
            raise TypeError(f"`dtype` must be a floating dtype; got {self._flow_dtype.name}.")
        self._vector = len(self._event_shape) == 1
        if self._vector:
            self._masked_idx = np.flatnonzero(self._mask)
            self._transformed_idx = np.flatnonzero(~self._mask)
            order = np.concatenate([self._masked_idx, self._transformed_idx])
            self._merge_idx = np.argsort(order)
            self._layout = _vector_layout(self._mask)
            self._param_shape = (len(self._transformed_idx),)
        else:
            self._param_shape = self._event_shape
        self._learned_scale = (
            LearnedTanhScale(self._param_shape, dtype=self._flow_dtype.name)
            if self._scale == "tanh"
            else None
        )
        super().__init__(
            forward_min_event_ndims=len(self._event_shape),
            is_constant_jacobian=False,
            validate_args=validate_args,
            parameters=parameters,
            name=name or unique_name("affine_coupling"),
        )
        self._build_conditioner()
        layers = [conditioner] + ([self._learned_scale] if self._learned_scale else [])
        self._track_layers(layers)

    # Public read-only views.
    @property
    def mask(self) -> np.ndarray:
        """Boolean mask over the event; ``True`` marks the units passed through."""
        return self._mask.copy()

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
    def scale(self) -> str:
        return self._scale

    @property
    def clamp(self) -> float:
        """The bound of ``scale="soft_clamp"``'s log-scale."""
        return self._clamp

    def get_config(self) -> dict:
        return {
            "conditioner": self.conditioner,
            "mask": self.mask.tolist(),
            "scale": self.scale,
            "clamp": self.clamp,
            "context_shape": None if self.context_shape is None else list(self.context_shape),
            "dtype": self.flow_dtype.name,
        }

    # The math.
    def _augmented_inverse(self, x, context=None):
        x = self._check_input(x, "x", self._event_shape)
        flat, batch_shape = self._flatten_batch(x)
        x1, x2 = self._split(flat)
        shift, log_s = self._params(x1, context, batch_shape)
        z2 = x2 + shift if log_s is None else x2 * tf.exp(log_s) + shift
        z = tf.reshape(self._merge(x1, z2), tf.shape(x))
        ildj = self._sum_log_scale(log_s, flat, batch_shape)
        return z, {"ildj": ildj, "fldj": -ildj}

    def _augmented_forward(self, z, context=None):
        z = self._check_input(z, "z", self._event_shape)
        flat, batch_shape = self._flatten_batch(z)
        z1, z2 = self._split(flat)
        shift, log_s = self._params(z1, context, batch_shape)
        x2 = z2 - shift if log_s is None else (z2 - shift) * tf.exp(-log_s)
        x = tf.reshape(self._merge(z1, x2), tf.shape(z))
        fldj = -self._sum_log_scale(log_s, flat, batch_shape)
        return x, {"fldj": fldj, "ildj": -fldj}

    def _inverse(self, x, context=None):
        return self._augmented_inverse(x, context)[0]

    def _forward(self, z, context=None):
        return self._augmented_forward(z, context)[0]

    def _inverse_log_det_jacobian(self, x, context=None):
        x = self._check_input(x, "x", self._event_shape)
        flat, batch_shape = self._flatten_batch(x)
        _, log_s = self._params(self._split(flat)[0], context, batch_shape)
        return self._sum_log_scale(log_s, flat, batch_shape)

    def _forward_log_det_jacobian(self, z, context=None):
        z = self._check_input(z, "z", self._event_shape)
        flat, batch_shape = self._flatten_batch(z)
        _, log_s = self._params(self._split(flat)[0], context, batch_shape)
        return -self._sum_log_scale(log_s, flat, batch_shape)

    # Pieces.
    def _flatten_batch(self, x):
        """Reshapes to ``[N, *event]``; returns it and the batch shape (static where known)."""
        rank = len(self._event_shape)
        batch = x.shape[: x.shape.rank - rank]
        batch_shape = batch.as_list() if batch.is_fully_defined() else tf.shape(x)[:-rank]
        return tf.reshape(x, (-1, *self._event_shape)), batch_shape

    def _split(self, flat):
        if not self._vector:
            return flat * tf.constant(self._mask, flat.dtype), flat
        kind, k = self._layout
        if kind == "prefix":
            return flat[:, :k], flat[:, k:]
        if kind == "suffix":
            return flat[:, k:], flat[:, :k]
        return tf.gather(flat, self._masked_idx, axis=1), tf.gather(
            flat, self._transformed_idx, axis=1
        )

    def _merge(self, part1, part2):
        if not self._vector:
            return part2  # masked entries of part2 were left unchanged
        kind, _ = self._layout
        if kind == "prefix":
            return tf.concat([part1, part2], axis=1)
        if kind == "suffix":
            return tf.concat([part2, part1], axis=1)
        return tf.gather(tf.concat([part1, part2], axis=1), self._merge_idx, axis=1)

    def _params(self, x1, context, batch_shape):
        """One conditioner pass: ``(shift, log_scale)`` in the data dtype (log_scale ``None`` for
        additive couplings), zero on the masked entries of image events."""
        out = self._call_conditioner(x1, self._prepare_context(context, batch_shape))
        if self._scale == "none":
            shift, log_s = tf.cast(out, x1.dtype), None
        else:
            shift, raw = (tf.cast(t, x1.dtype) for t in out)
            log_s = log_scale(raw, self._scale, self._clamp, self._learned_scale)
        if not self._vector:
            keep = tf.constant(~self._mask, x1.dtype)
            shift = shift * keep
            log_s = None if log_s is None else log_s * keep
        return shift, log_s

    def _call_conditioner(self, x1, context):
        if context is None:
            return self._conditioner(x1)
        return self._conditioner(x1, context=context)

    def _sum_log_scale(self, log_s, flat, batch_shape):
        if log_s is None:
            ldj = tf.zeros(tf.shape(flat)[:1], flat.dtype)
        else:
            ldj = tf.reduce_sum(log_s, axis=list(range(1, len(self._param_shape) + 1)))
        return tf.reshape(ldj, batch_shape)

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
        n_in = (len(self._masked_idx),) if self._vector else self._event_shape
        x1 = tf.zeros((1, *n_in), self._flow_dtype)
        context = None
        if self._context_shape is not None:
            context = tf.zeros((1, *self._context_shape), self._flow_dtype)
        out = self._call_conditioner(x1, context)
        want = (1, *self._param_shape)
        if self._scale == "none":
            ok = tf.is_tensor(out) and tuple(out.shape) == want
            expected = f"a shift tensor of shape {want}"
        else:
            ok = (
                isinstance(out, (tuple, list))
                and len(out) == 2
                and all(tf.is_tensor(t) and tuple(t.shape) == want for t in out)
            )
            expected = f"(shift, log_scale), each of shape {want}"
        if not ok:
            got = [tuple(t.shape) for t in out] if isinstance(out, (tuple, list)) else out
            got = tuple(out.shape) if tf.is_tensor(out) else got
            raise ValueError(
                f"{self.name}: `conditioner` must return {expected} for a batch of 1 with this "
                f"mask (scale={self._scale!r}); got {got}. (Our conditioners take "
                f"num_outputs={conditioner_outputs(self._scale)} for this scale.)"
            )


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


def _vector_layout(mask: np.ndarray) -> tuple[str, int]:
    """A contiguous mask splits by slicing (cheaper than gather); any other by gathering."""
    k = int(mask.sum())
    if mask[:k].all():
        return "prefix", k
    if mask[len(mask) - k :].all():
        return "suffix", len(mask) - k
    return "gather", k
