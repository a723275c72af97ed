"""Builder of masked autoregressive flows (MAF) and inverse autoregressive flows (IAF)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import one_of, positive_int
from tfp_realnvp.bijectors import transformers
from tfp_realnvp.bijectors.autoregressive import MaskedAutoregressive
from tfp_realnvp.bijectors.base import unique_name
from tfp_realnvp.bijectors.spline import RationalQuadraticSpline
from tfp_realnvp.made import MADE
from tfp_realnvp.stacks import event_shape_of, layer_dtype, permutation_bijector

__all__ = ["TRANSFORMERS", "masked_autoregressive_flow"]

tfb = tfp.bijectors

AR_PERMUTATIONS = ("reverse", "random", "lu", "none")


def _affine(scale: str = "soft_clamp", clamp: float = 3.0) -> transformers.Transformer:
    scale = transformers.check_scale(scale, clamp)
    return transformers.Additive() if scale == "none" else transformers.Affine(scale, clamp)


# Name -> (factory of one layer's transformer, the builder's options it takes).
TRANSFORMERS: dict[str, tuple[Callable[..., transformers.Transformer], tuple[str, ...]]] = {
    "affine": (_affine, ("scale", "clamp")),
    "spline": (RationalQuadraticSpline, ("num_bins", "bound")),
}


def masked_autoregressive_flow(
    event_shape: Sequence[int] | int,
    num_layers: int = 4,
    hidden_units: Sequence[int] = (64, 64),
    *,
    transformer: str = "affine",
    inverse: bool = False,
    scale: str | None = None,
    clamp: float | None = None,
    num_bins: int | None = None,
    bound: float | None = None,
    permutation: str | None = "reverse",
    activation: str = "relu",
    residual: bool = False,
    dropout: float = 0.0,
    context_shape: Sequence[int] | None = None,
    dtype: tf.DType | str = tf.float32,
    seed: int = 0,
    validate_args: bool = False,
    name: str | None = None,
) -> tfb.Chain:
    """A masked autoregressive flow (MAF), or with ``inverse=True`` an inverse autoregressive
    flow (IAF): ``num_layers`` `MaskedAutoregressive` layers, each with its own `MADE`, and
    permutations between them.

    MAF evaluates densities in one MADE pass per layer and samples in ``D`` (fit it to data
    with `FlowModel`); IAF samples in one pass and evaluates densities in ``D`` (use it as a
    variational posterior, whose samples are scored with their own cached log-dets). The slow
    direction runs inside one `tf.while_loop` per layer; see `MaskedAutoregressive` for both
    directions' maps and log-dets. Every layer starts as the identity.

    Args:
      event_shape: ``[D]`` (or ``D``); only vector events.
      num_layers: number of autoregressive layers.
      hidden_units: widths of each MADE's hidden layers.
      transformer: ``"affine"`` (default) or ``"spline"`` (rational-quadratic).
      inverse: ``False`` for MAF, ``True`` for IAF.
      scale, clamp: ``"affine"`` only: the log-scale parameterisation and its bound (see
        `AffineCoupling`; ``scale="none"`` is shift only). Default ``"soft_clamp"``, 3.
      num_bins, bound: ``"spline"`` only: bins on ``[-bound, bound]``; the spline's defaults
        when omitted.
      permutation: between layers, ``"reverse"`` (default) or ``"random"`` `tfb.Permute`,
        ``"lu"`` for a learned `LULinear`, ``"none"`` (or ``None``).
      activation: activation of the MADEs' hidden layers.
      residual: residual connections between the MADEs' equal-width hidden layers.
      dropout: dropout rate in the MADEs' hidden layers during training.
      context_shape: shape of one example's context for a conditional flow.
      dtype: float32 or float64.
      seed: seed of random permutations.
      validate_args: passed to every bijector.
      name: name of the chain; defaults to a unique ``maf_flow_<n>`` / ``iaf_flow_<n>``.

    Returns:
      A `tfb.Chain`, usable wherever TFP takes a bijector (`flow_distribution`, `FlowModel`).

    Raises:
      ValueError: for an argument out of its range, naming it, what it takes and what came.

    #### Examples

    >>> import tensorflow as tf
    >>> import tfp_realnvp as trn
    >>> maf = masked_autoregressive_flow([3], num_layers=2, hidden_units=[8])
    >>> trn.flow_distribution(maf).log_prob(tf.zeros([4, 3])).shape
    TensorShape([4])
    >>> iaf = masked_autoregressive_flow([3], 2, [8], inverse=True)
    >>> [type(b).__name__ for b in iaf.bijectors]
    ['MaskedAutoregressive', 'Permute', 'MaskedAutoregressive']

    #### References

    [1] George Papamakarios, Theo Pavlakou, Iain Murray. Masked Autoregressive Flow for Density
        Estimation. NeurIPS 2017. https://arxiv.org/abs/1705.07057
    [2] Diederik P. Kingma, Tim Salimans, Rafal Jozefowicz, Xi Chen, Ilya Sutskever, Max
        Welling. Improved Variational Inference with Inverse Autoregressive Flow. NeurIPS 2016.
        https://arxiv.org/abs/1606.04934
    """
    event_shape = event_shape_of(event_shape)
    if len(event_shape) != 1:
        raise ValueError(
            f"`event_shape` must be [D]: autoregressive flows take vector events; got "
            f"{event_shape}. For images use multiscale_real_nvp (or flatten the images to "
            "vectors yourself)."
        )
    num_layers = positive_int(num_layers, "num_layers")
    permutation = one_of(
        "none" if permutation is None else permutation, AR_PERMUTATIONS, "permutation"
    )
    make_transformer = _transformer_factory(
        transformer, scale=scale, clamp=clamp, num_bins=num_bins, bound=bound
    )
    dtype = tf.as_dtype(dtype)
    bijectors = []
    for i in range(num_layers):
        layer_transformer = make_transformer()
        made = MADE(
            event_shape[0],
            hidden_units,
            param_shapes=[list(s) for s in layer_transformer.unit_param_shapes],
            activation=activation,
            residual=residual,
            dropout=dropout,
            dtype=layer_dtype(dtype),
        )
        bijectors.append(
            MaskedAutoregressive(
                made,
                layer_transformer,
                inverse=inverse,
                context_shape=context_shape,
                dtype=dtype,
                validate_args=validate_args,
            )
        )
        if i < num_layers - 1 and permutation != "none":
            bijectors.append(
                permutation_bijector(permutation, event_shape, seed + i, dtype, validate_args)
            )
    # tfb.Chain applies its list right to left in `forward`: the layers' inverses (data ->
    # noise) run in list order.
    default = unique_name("iaf_flow" if inverse else "maf_flow")
    return tfb.Chain(bijectors, validate_args=validate_args, name=name or default)


def _transformer_factory(name: str, **options) -> Callable[[], transformers.Transformer]:
    """A function making one layer's transformer ``name`` from the options that were given;
    an option meant for another transformer is refused."""
    one_of(name, tuple(TRANSFORMERS), "transformer")
    factory, takes = TRANSFORMERS[name]
    given = {k: v for k, v in options.items() if v is not None}
    foreign = sorted(set(given) - set(takes))
    if foreign:
        raise ValueError(
            f"`{foreign[0]}` does not apply to transformer={name!r}, which takes "
            f"{', '.join(takes)}; got {foreign[0]}={given[foreign[0]]!r}."
        )
    factory(**given)  # fails here, at the door, on a bad option
    return lambda: factory(**given)
