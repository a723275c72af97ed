"""Coupling layers: a mask layout plus an element-wise transformer, as TFP bijectors.

`Coupling` takes any transformer of `tfp_realnvp.bijectors.transformers`; `AffineCoupling` is
RealNVP's affine coupling (and NICE's additive one) on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors.base import register_bijector, unique_name
from tfp_realnvp.bijectors.conditioned import ConditionedBijector
from tfp_realnvp.bijectors.layouts import layout_for
from tfp_realnvp.bijectors.masks import half_mask, validate_mask
from tfp_realnvp.bijectors.transformers import (
    Additive,
    Affine,
    Transformer,
    check_scale,
)

__all__ = ["AffineCoupling", "Coupling"]


@register_bijector
class Coupling(ConditionedBijector):
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
        self._layout = layout_for(mask)
        self._set_conditioner(
            conditioner, transformer, self._layout.event_shape, context_shape, dtype
        )

    # Public read-only views.
    @property
    def mask(self) -> np.ndarray:
        """Boolean mask over the event; ``True`` marks the units passed through."""
        return self._layout.mask.copy()

    @property
    def conditioner_input_shape(self) -> tuple[int, ...]:
        """Shape of one example of the conditioner's input: the masked units (vector events),
        or the whole event times the mask (images)."""
        return self._layout.conditioner_input_shape

    @property
    def param_shape(self) -> tuple[int, ...]:
        """Shape of one example of each conditioner output: the transformed units (vector
        events), or the whole event (images)."""
        return self._layout.param_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mask": self.mask.tolist()}

    # The math.
    def _augmented_inverse(self, x, context=None):
        x = self._check_input(x, "x", self._event_shape)
        z, ildj = self._pass("inverse", x, context)
        return z, {"ildj": ildj, "fldj": -ildj}

    def _augmented_forward(self, z, context=None):
        z = self._check_input(z, "z", self._event_shape)
        x, fldj = self._pass("forward", z, context)
        return x, {"fldj": fldj, "ildj": -fldj}

    def _pass(self, direction: str, x, context):
        """One conditioner pass in ``direction``: the output and one log-det per example."""
        flat, batch_shape = self._flatten_batch(x)
        x1, x2 = self._layout.split(flat)
        context = self._prepare_context(context, batch_shape)
        params = self._layout.keep(self._transformer_params(x1, context, x2.dtype))
        y, ldj = self._transform(direction, x1, x2, params)
        return tf.reshape(y, tf.shape(x)), tf.reshape(ldj, batch_shape)

    def _transform(self, direction: str, x1, x2, params):
        """The transformer on ``x2`` with ``params`` (those of copied entries already the
        identity's): the merged ``[N, *event]`` and the summed log-dets ``[N]``."""
        y2, ldj = getattr(self._transformer, direction)(x2, params)
        ldj = tf.zeros(tf.shape(x2)[:1], x2.dtype) if ldj is None else self._layout.sum(ldj)
        return self._layout.merge(x1, y2), ldj

    def _conditioner_hint(self) -> str:
        n = self._transformer.num_params
        return (
            f"With this mask the conditioner sees inputs of shape "
            f"{(1, *self.conditioner_input_shape)}; our conditioners take num_outputs={n} for "
            "this transformer."
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
