"""Builders: a RealNVP `tfb.Chain`, its `tfd.TransformedDistribution`, and conditioning kwargs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.bijectors.base import unique_name
from tfp_realnvp.bijectors.coupling import AffineCoupling
from tfp_realnvp.bijectors.linear import LULinear, random_permutation, reverse_permutation
from tfp_realnvp.bijectors.masks import (
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    half_mask,
)
from tfp_realnvp.bijectors.scales import check_scale, conditioner_outputs
from tfp_realnvp.networks import ResidualConvNet, ResidualMLP
from tfp_realnvp.traversal import conditional_kwargs, find, walk

__all__ = ["conditional_kwargs", "flow_distribution", "real_nvp", "walk"]

tfb = tfp.bijectors
tfd = tfp.distributions

VECTOR_MASKS = ("half", "alternating")
IMAGE_MASKS = ("checkerboard", "channel")
PERMUTATIONS = ("swap", "reverse", "random", "lu", "none")


def real_nvp(
    event_shape: Sequence[int] | int,
    num_couplings: int = 4,
    hidden_units: Sequence[int] = (64, 64),
    *,
    mask: str | None = None,
    permutation: str | None = "swap",
    scale: str | None = "soft_clamp",
    clamp: float = 3.0,
    additive: bool = False,
    activation: str = "relu",
    context_shape: Sequence[int] | None = None,
    num_blocks: int = 2,
    dtype: tf.DType | str = tf.float32,
    seed: int = 0,
    validate_args: bool = False,
    name: str | None = None,
) -> tfb.Chain:
    """A RealNVP flow: ``num_couplings`` affine couplings with permutations between them.

    The chain's ``forward`` maps standard-normal noise to data; its ``inverse`` maps data to
    noise, applying the couplings in list order. Every coupling starts as the identity.

    Args:
      event_shape: ``[D]`` (or ``D``) for vectors, ``[H, W, C]`` for images.
      num_couplings: number of coupling layers.
      hidden_units: widths of the MLP conditioners' hidden layers (vectors); for images, the
        first entry is the conv net's hidden channels.
      mask: ``"half"`` (default) or ``"alternating"`` for vectors; ``"checkerboard"``
        (default) or ``"channel"`` for images.
      permutation: between couplings. ``"swap"`` (default) alternates which part is masked,
        at no cost; ``"reverse"`` and ``"random"`` insert `tfb.Permute` of the last axis;
        ``"lu"`` a learned `LULinear`; ``"none"`` keeps the same mask throughout.
      scale: the coupling's scale parameterisation (see `AffineCoupling`); ``"none"`` (or
        ``None``) makes additive couplings, as ``additive=True`` does.
      clamp: bound for ``scale="soft_clamp"``.
      additive: NICE's shift-only couplings (overrides ``scale``).
      activation: activation of the conditioners.
      context_shape: shape of one example's context for a conditional flow.
      num_blocks: residual blocks of each conv conditioner (images).
      dtype: float32 or float64.
      seed: seed of random permutations.
      validate_args: passed to every bijector.
      name: name of the chain; defaults to a unique ``real_nvp_<n>``.

    Returns:
      A `tfb.Chain`, usable wherever TFP takes a bijector.

    #### Examples

    >>> import tensorflow as tf
    >>> flow = real_nvp([4], num_couplings=2, hidden_units=[16])
    >>> dist = flow_distribution(flow)
    >>> dist.log_prob(tf.zeros([3, 4])).shape
    TensorShape([3])

    #### References

    [1] Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
        ICLR 2017. https://arxiv.org/abs/1605.08803
    """
    event_shape = _event_shape(event_shape)
    if isinstance(num_couplings, bool) or not isinstance(num_couplings, int) or num_couplings < 1:
        raise ValueError(f"`num_couplings` must be a positive integer; got {num_couplings!r}.")
    permutation = "none" if permutation is None else permutation
    if permutation not in PERMUTATIONS:
        raise ValueError(f"`permutation` must be one of {PERMUTATIONS}; got {permutation!r}.")
    scale = "none" if additive else check_scale(scale, clamp)
    dtype = tf.as_dtype(dtype)
    image = len(event_shape) == 3
    if len(event_shape) not in (1, 3):
        raise ValueError(
            f"`event_shape` must be [D] (vectors) or [H, W, C] (images); got {event_shape}."
        )
    mask = mask or ("checkerboard" if image else "half")
    allowed = IMAGE_MASKS if image else VECTOR_MASKS
    if mask not in allowed:
        kind = "image" if image else "vector"
        raise ValueError(f"`mask` for {kind} events must be one of {allowed}; got {mask!r}.")
    if event_shape[-1] < 2 and (not image or mask == "channel"):
        raise ValueError(
            f"a coupling needs at least 2 units to split; event_shape is {event_shape}."
        )
    hidden_units = list(hidden_units)
    bijectors = []
    for i in range(num_couplings):
        parity = i % 2 if permutation == "swap" else 0
        coupling_mask = _make_mask(mask, event_shape, parity)
        units = int((~coupling_mask).sum())
        num_outputs = conditioner_outputs(scale)
        if image:
            conditioner = ResidualConvNet(
                event_shape[-1],
                hidden_channels=hidden_units[0],
                num_blocks=num_blocks,
                num_outputs=num_outputs,
                activation=activation,
                dtype=_layer_dtype(dtype),
            )
        else:
            conditioner = ResidualMLP(
                units,
                hidden_units=hidden_units,
                num_outputs=num_outputs,
                activation=activation,
                dtype=_layer_dtype(dtype),
            )
        bijectors.append(
            AffineCoupling(
                conditioner,
                coupling_mask,
                scale=scale,
                clamp=clamp,
                context_shape=context_shape,
                dtype=dtype,
                validate_args=validate_args,
            )
        )
        if i < num_couplings - 1 and permutation not in ("swap", "none"):
            bijectors.append(_permutation(permutation, event_shape, seed + i, dtype, validate_args))
    # tfb.Chain applies its list right to left in `forward`, so the couplings' inverses (data ->
    # noise) run in list order.
    return tfb.Chain(bijectors, validate_args=validate_args, name=name or unique_name("real_nvp"))


def flow_distribution(
    bijector: tfb.Bijector,
    event_shape: Sequence[int] | int | None = None,
    *,
    dtype: tf.DType | str | None = None,
    name: str | None = None,
) -> tfd.TransformedDistribution:
    """The flow's density: ``bijector`` pushed over a standard normal of ``event_shape``.

    Args:
      bijector: a flow (``forward`` maps noise to data), e.g. from `real_nvp`.
      event_shape: the base's event shape; found from the flow's couplings when omitted.
      dtype: the base's dtype; found from the flow's couplings when omitted (else float32).
      name: the distribution's name; by default TFP's, which leaves JointDistributions free to
        name the component after the argument that refers to it.

    Returns:
      A `tfd.TransformedDistribution` whose ``trainable_variables`` are the flow's.
    """
    found = find(bijector, "event_shape")
    if event_shape is None:
        if found is None:
            raise ValueError(
                "`event_shape` is needed: the bijector holds no tfp_realnvp coupling to read "
                "it from."
            )
        event_shape = found
    event_shape = _event_shape(event_shape)
    if dtype is None:
        dtype = find(bijector, "flow_dtype") or tf.float32
    dtype = tf.as_dtype(dtype)
    base = tfd.Sample(tfd.Normal(tf.zeros([], dtype), tf.ones([], dtype)), sample_shape=event_shape)
    # No default name: JointDistributionSequential takes an explicit name for the component's
    # own and then refuses the lambda argument names that refer to it.
    return tfd.TransformedDistribution(base, bijector, **({"name": name} if name else {}))


def _event_shape(event_shape) -> tuple[int, ...]:
    if isinstance(event_shape, (int, np.integer)):
        event_shape = (event_shape,)
    shape = tuple(event_shape)
    if not shape or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in shape):
        raise ValueError(f"`event_shape` must be a non-empty list of positive ints; got {shape}.")
    return tuple(int(d) for d in shape)


def _make_mask(kind: str, event_shape, parity: int) -> np.ndarray:
    if kind == "half":
        mask = half_mask(event_shape[0])
        return mask if parity == 0 else ~mask
    if kind == "alternating":
        return alternating_mask(event_shape[0], parity)
    if kind == "checkerboard":
        return checkerboard_mask(*event_shape, parity=parity)
    return channel_mask(*event_shape, parity=parity)


def _permutation(kind: str, event_shape, seed: int, dtype, validate_args: bool) -> tfb.Bijector:
    if kind == "lu":
        return LULinear(event_shape, seed=seed, dtype=dtype, validate_args=validate_args)
    if kind == "reverse":
        return reverse_permutation(event_shape[-1])
    return random_permutation(event_shape[-1], seed)


def _layer_dtype(dtype: tf.DType):
    """Keep the global (possibly mixed) Keras policy for float32 flows; force float64."""
    return None if dtype == tf.float32 else dtype.name
