"""Builders: a RealNVP `tfb.Chain`, its `tfd.TransformedDistribution`, and conditioning kwargs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.bases import LearnedBase, make_base, standard_normal
from tfp_realnvp.bijectors.base import unique_name
from tfp_realnvp.bijectors.coupling import AffineCoupling, Coupling
from tfp_realnvp.bijectors.spline import RationalQuadraticSpline
from tfp_realnvp.bijectors.transformers import check_scale, conditioner_outputs
from tfp_realnvp.stacks import coupling_stack, event_shape_of, stack_options
from tfp_realnvp.traversal import check_no_templates, conditional_kwargs, find, walk

__all__ = [
    "conditional_kwargs",
    "flow_distribution",
    "neural_spline_flow",
    "real_nvp",
    "walk",
]

tfb = tfp.bijectors
tfd = tfp.distributions


def real_nvp(
    event_shape: Sequence[int] | int,
    num_couplings: int = 4,
    hidden_units: Sequence[int] | None = None,
    *,
    hidden_channels: int | None = None,
    mask: str | None = None,
    permutation: str | None = "alternate",
    scale: str | None = "soft_clamp",
    clamp: float = 3.0,
    activation: str = "relu",
    context_shape: Sequence[int] | None = None,
    num_blocks: int = 2,
    dropout: float = 0.0,
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
      hidden_units: vectors only: widths of the `ResidualMLP` conditioners' hidden layers
        (default ``(64, 64)``).
      hidden_channels: images only: width of the `ResidualConvNet` conditioners' feature maps
        (default 64). Each of the two is refused for the other kind of event.
      mask: ``"half"`` (default) or ``"alternating"`` for vectors; ``"checkerboard"``
        (default) or ``"channel"`` for images.
      permutation: what happens between couplings. ``"alternate"`` (default) alternates the
        mask, so the units one coupling passes through the next transforms, at no cost;
        ``"reverse"`` and ``"random"`` insert a `tfb.Permute` of the last axis; ``"lu"`` a
        learned `LULinear`; ``"none"`` (or ``None``) keeps the same mask throughout.
      scale: the coupling's scale parameterisation (see `AffineCoupling`); ``"none"`` (or
        ``None``) makes NICE's additive, shift-only couplings.
      clamp: bound for ``scale="soft_clamp"``.
      activation: activation of the conditioners.
      context_shape: shape of one example's context for a conditional flow.
      num_blocks: residual blocks of each conv conditioner (images).
      dropout: dropout rate in the MLP conditioners' hidden layers during training (vectors;
        a regulariser for small data).
      dtype: float32 or float64.
      seed: seed of random permutations.
      validate_args: passed to every bijector.
      name: name of the chain; defaults to a unique ``real_nvp_<n>``.

    Returns:
      A `tfb.Chain`, usable wherever TFP takes a bijector.

    Raises:
      ValueError: for an argument out of its range, naming it, what it takes and what came.

    #### Examples

    >>> import tensorflow as tf
    >>> flow = real_nvp([4], num_couplings=2, hidden_units=[16])
    >>> dist = flow_distribution(flow)
    >>> dist.log_prob(tf.zeros([3, 4])).shape
    TensorShape([3])
    >>> nice = real_nvp([2, 2, 2], 2, hidden_channels=8, num_blocks=1, scale="none")
    >>> [c.scale for c in nice.bijectors]
    ['none', 'none']

    #### References

    [1] Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
        ICLR 2017. https://arxiv.org/abs/1605.08803
    [2] Laurent Dinh, David Krueger, Yoshua Bengio. NICE: Non-linear Independent Components
        Estimation. ICLR 2015 workshop. https://arxiv.org/abs/1410.8516
    """
    options = stack_options(locals())
    scale = check_scale(scale, clamp)
    dtype = tf.as_dtype(dtype)

    def coupling(conditioner, coupling_mask):
        return AffineCoupling(
            conditioner,
            coupling_mask,
            scale=scale,
            clamp=clamp,
            context_shape=context_shape,
            dtype=dtype,
            validate_args=validate_args,
        )

    bijectors = coupling_stack(
        event_shape, num_couplings, coupling, ((),) * conditioner_outputs(scale), **options
    )
    # tfb.Chain applies its list right to left in `forward`, so the couplings' inverses (data ->
    # noise) run in list order.
    return tfb.Chain(bijectors, validate_args=validate_args, name=name or unique_name("real_nvp"))


def neural_spline_flow(
    event_shape: Sequence[int] | int,
    num_couplings: int = 4,
    hidden_units: Sequence[int] | None = None,
    *,
    num_bins: int = 8,
    bound: float = 5.0,
    hidden_channels: int | None = None,
    mask: str | None = None,
    permutation: str | None = "alternate",
    activation: str = "relu",
    context_shape: Sequence[int] | None = None,
    num_blocks: int = 2,
    dropout: float = 0.0,
    dtype: tf.DType | str = tf.float32,
    seed: int = 0,
    validate_args: bool = False,
    name: str | None = None,
) -> tfb.Chain:
    """A neural spline flow: couplings with rational-quadratic spline transformers.

    As `real_nvp`, with each coupling's element-wise map a monotone rational-quadratic spline
    of ``num_bins`` bins on ``[-bound, bound]`` and the identity outside
    (`tfp_realnvp.bijectors.RationalQuadraticSpline`): for each transformed unit,

    - inverse (data -> latent): ``z2 = g(x2; theta(x1))``, log-det ``sum(log g'(x2))``;
    - forward (latent -> data): ``x2 = g^-1(z2; theta(z1))``, log-det ``-sum(log g'(x2))``.

    Both directions are closed forms, so sampling costs what density evaluation does. Data
    outside ``[-bound, bound]`` passes the couplings unchanged: standardise it first (the
    command line does), or raise ``bound``. Every coupling starts as the identity.

    Args:
      event_shape, num_couplings, hidden_units, hidden_channels, mask, permutation,
        activation, context_shape, num_blocks, dtype, seed, validate_args: as for `real_nvp`.
      num_bins: bins of each spline.
      bound: the splines act on ``[-bound, bound]``.
      dropout: dropout rate in the MLP conditioners' hidden layers during training.
      name: name of the chain; defaults to a unique ``neural_spline_flow_<n>``.

    Returns:
      A `tfb.Chain`, usable wherever TFP takes a bijector.

    Raises:
      ValueError: for an argument out of its range, naming it, what it takes and what came.

    #### Examples

    >>> import tensorflow as tf
    >>> flow = neural_spline_flow([2], num_couplings=2, hidden_units=[16], num_bins=4)
    >>> dist = flow_distribution(flow)
    >>> float(dist.log_prob(tf.zeros([1, 2]))[0])  # a fresh flow is the identity
    -1.8378770351409912

    #### References

    [1] Conor Durkan, Artur Bekasov, Iain Murray, George Papamakarios. Neural Spline Flows.
        NeurIPS 2019. https://arxiv.org/abs/1906.04140
    """
    options = stack_options(locals())
    spline_args = {"num_bins": num_bins, "bound": bound}
    param_shapes = RationalQuadraticSpline(**spline_args).unit_param_shapes
    dtype = tf.as_dtype(dtype)

    def coupling(conditioner, coupling_mask):
        return Coupling(
            conditioner,
            coupling_mask,
            RationalQuadraticSpline(**spline_args),
            context_shape=context_shape,
            dtype=dtype,
            validate_args=validate_args,
        )

    bijectors = coupling_stack(event_shape, num_couplings, coupling, param_shapes, **options)
    return tfb.Chain(
        bijectors, validate_args=validate_args, name=name or unique_name("neural_spline_flow")
    )


def flow_distribution(
    bijector: tfb.Bijector,
    event_shape: Sequence[int] | int | None = None,
    *,
    dtype: tf.DType | str | None = None,
    base: str | LearnedBase | tfd.Distribution | None = None,
    name: str | None = None,
) -> tfd.TransformedDistribution:
    """The flow's density: ``bijector`` pushed over a base distribution of ``event_shape``.

    Args:
      bijector: a flow (``forward`` maps noise to data), e.g. from `real_nvp`.
      event_shape: the base's event shape; found from the flow's couplings when omitted.
      dtype: the base's dtype; when omitted, the flow's couplings', else the bijector's own
        (a TFP bijector with float parameters), else float32.
      base: ``None`` or ``"normal"`` for a standard normal; ``"diagonal"``, ``"student_t"``
        or ``"mixture"`` for a base with learned parameters (`tfp_realnvp.bases`), or a
        `tfp_realnvp.bases.LearnedBase` layer, or any TFP distribution over ``event_shape``.
        A learned base's variables are the distribution's, so TFP's own fitting trains them;
        `FlowModel` also saves and exports them.
      name: the distribution's name; by default TFP's, which leaves JointDistributions free to
        name the component after the argument that refers to it.

    Returns:
      A `tfd.TransformedDistribution` whose ``trainable_variables`` are the flow's and the
      base's.

    #### Examples

    >>> import tensorflow as tf
    >>> dist = flow_distribution(real_nvp([2], 2, [8]), base="student_t")
    >>> type(dist.distribution.distribution).__name__, dist.log_prob(tf.zeros([3, 2])).shape
    ('StudentT', TensorShape([3]))
    """
    check_no_templates(bijector, "flow_distribution")
    found = find(bijector, "event_shape")
    if event_shape is None:
        if found is None:
            raise ValueError(
                "`event_shape` is needed: the bijector holds no tfp_realnvp coupling to read "
                "it from."
            )
        event_shape = found
    event_shape = event_shape_of(event_shape)
    if dtype is None:
        dtype = find(bijector, "flow_dtype") or bijector.dtype or tf.float32
    dtype = tf.as_dtype(dtype)
    if isinstance(base, tfd.Distribution):
        if tuple(base.event_shape) != event_shape or base.dtype != dtype:
            raise ValueError(
                f"`base` must be a distribution of {dtype.name} events of shape {event_shape}; "
                f"got {base.dtype.name} events of shape {tuple(base.event_shape)}."
            )
    else:
        learned = make_base(base, event_shape, dtype)
        base = standard_normal(event_shape, dtype) if learned is None else learned.distribution()
    # No default name: JointDistributionSequential takes an explicit name for the component's
    # own and then refuses the lambda argument names that refer to it.
    return tfd.TransformedDistribution(base, bijector, **({"name": name} if name else {}))


def sample_request(n, seed) -> tuple[int, tf.Tensor | None]:
    """``(n, seed)`` of a ``sample(n, seed)`` call (`FlowModel`, `VIModel`), checked: ``n`` a
    non-negative integer, ``seed`` an int or a shape-[2] stateless seed (as int32), or None."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"`n` must be a non-negative integer; got {n!r}.")
    if seed is not None:
        seed = tf.constant([0, seed] if np.ndim(seed) == 0 else seed, tf.int32)
    return int(n), seed
