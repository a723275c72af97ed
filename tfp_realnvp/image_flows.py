"""The multi-scale architecture of RealNVP (and Glow's steps) for ``[H, W, C]`` images."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import one_of, positive_int
from tfp_realnvp._checks import shape as check_shape
from tfp_realnvp.bijectors.actnorm import ActNorm
from tfp_realnvp.bijectors.base import unique_name
from tfp_realnvp.bijectors.coupling import AffineCoupling, Coupling
from tfp_realnvp.bijectors.linear import LULinear
from tfp_realnvp.bijectors.masks import channel_mask, checkerboard_mask
from tfp_realnvp.bijectors.multiscale import FactorOut, Squeeze
from tfp_realnvp.bijectors.preprocess import Dequantize, Logit
from tfp_realnvp.bijectors.spline import RationalQuadraticSpline
from tfp_realnvp.bijectors.transformers import check_scale, conditioner_outputs
from tfp_realnvp.networks import ResidualConvNet
from tfp_realnvp.stacks import layer_dtype as _layer_dtype

__all__ = ["multiscale_real_nvp", "preprocessed_image_flow"]

tfb = tfp.bijectors


def multiscale_real_nvp(
    image_shape: Sequence[int],
    num_scales: int = 2,
    couplings_per_stage: int = 3,
    hidden_channels: int = 32,
    num_blocks: int = 2,
    *,
    glow: bool = False,
    final_couplings: int = 4,
    scale: str | None = None,
    transformer: str = "affine",
    num_bins: int = 8,
    bound: float = 5.0,
    context_shape: Sequence[int] | None = None,
    dtype: tf.DType | str = tf.float32,
    name: str | None = None,
) -> tfb.Chain:
    """RealNVP's multi-scale flow for images, or Glow's with ``glow=True``.

    In the data -> latent direction, each scale but the last applies (RealNVP)
    ``couplings_per_stage`` checkerboard couplings, a `Squeeze` to ``[H/2, W/2, 4C]``,
    ``couplings_per_stage`` channel-wise couplings, and then factors out half the channels:
    they go to the base distribution, and the next scale models the rest. With ``glow=True``
    a scale is a `Squeeze` and ``couplings_per_stage`` Glow steps (`ActNorm` -> `LULinear`
    1x1 convolution -> channel-wise coupling) before the split. The last scale applies
    ``final_couplings`` checkerboard couplings (RealNVP) or Glow steps. Each squeeze is undone
    after its split, so the latent has the image's shape and the base is a standard normal
    over ``image_shape``. Every coupling starts as the identity.

    Args:
      image_shape: ``[H, W, C]``; ``H`` and ``W`` must be divisible by ``2**(num_scales-1)``.
      num_scales: number of scales.
      couplings_per_stage: couplings per stage (or Glow steps per scale).
      hidden_channels, num_blocks: the `ResidualConvNet` conditioners' width and depth.
      glow: use Glow's steps instead of RealNVP's stages.
      final_couplings: couplings (or steps) of the last scale.
      scale: the couplings' scale parameterisation (default ``"soft_clamp"``, or
        ``"sigmoid"`` with ``glow=True``); ``"none"`` makes additive couplings.
      transformer: ``"affine"`` (default) or ``"spline"``: rational-quadratic spline
        couplings (`tfp_realnvp.bijectors.RationalQuadraticSpline`) of ``num_bins`` bins on
        ``[-bound, bound]``, as in Neural Spline Flows.
      context_shape: shape of one example's context, for a conditional flow.
      dtype: float32 or float64.
      name: defaults to a unique ``multiscale_real_nvp_<n>``.

    Returns:
      A `tfb.Chain` usable in `FlowModel`, `flow_distribution` and plain TFP.

    #### Examples

    >>> import tensorflow as tf
    >>> from tfp_realnvp import flow_distribution
    >>> flow = multiscale_real_nvp([4, 4, 1], num_scales=2, hidden_channels=8, num_blocks=1)
    >>> flow_distribution(flow).log_prob(tf.zeros([2, 4, 4, 1])).shape
    TensorShape([2])

    #### References

    [1] Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
        ICLR 2017. https://arxiv.org/abs/1605.08803
    [2] Diederik P. Kingma, Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
        Convolutions. NeurIPS 2018. https://arxiv.org/abs/1807.03039
    """
    shape = check_shape(image_shape, "image_shape", rank=3)
    num_scales = positive_int(num_scales, "num_scales")
    couplings_per_stage = positive_int(couplings_per_stage, "couplings_per_stage")
    final_couplings = positive_int(final_couplings, "final_couplings")
    factor = 2 ** (num_scales - 1)
    if shape[0] % factor or shape[1] % factor:
        raise ValueError(
            f"an image of shape {shape} cannot be squeezed {num_scales - 1} times: height and "
            f"width must be divisible by {factor}."
        )
    if glow and shape[2] < 2 and num_scales == 1:
        raise ValueError("a one-scale Glow flow needs at least 2 channels.")
    dtype = tf.as_dtype(dtype)
    transformer = one_of(transformer, ("affine", "spline"), "transformer")
    if transformer == "spline":
        if scale is not None:
            raise ValueError(
                f"`scale` sets affine couplings; spline couplings take none (got scale={scale!r} "
                'with transformer="spline").'
            )
        spline_args = {"num_bins": num_bins, "bound": bound}
        param_shapes = RationalQuadraticSpline(**spline_args).unit_param_shapes
    scale = check_scale(scale or ("sigmoid" if glow else "soft_clamp"), 3.0)

    def coupling(mask, event_shape):
        if transformer == "spline":
            net = ResidualConvNet(
                event_shape[-1],
                hidden_channels,
                num_blocks,
                param_shapes=param_shapes,
                dtype=_layer_dtype(dtype),
            )
            spline = RationalQuadraticSpline(**spline_args)
            return Coupling(net, mask, spline, context_shape=context_shape, dtype=dtype)
        return AffineCoupling(
            ResidualConvNet(
                event_shape[-1],
                hidden_channels,
                num_blocks,
                num_outputs=conditioner_outputs(scale),
                dtype=_layer_dtype(dtype),
            ),
            mask,
            scale=scale,
            context_shape=context_shape,
            dtype=dtype,
        )

    def checkerboard(count, s):
        return [coupling(checkerboard_mask(*s, parity=k % 2), s) for k in range(count)]

    def glow_steps(count, s):
        steps = []
        for k in range(count):
            steps += [
                ActNorm(s, dtype=dtype),
                LULinear(s, seed=k, dtype=dtype),
                coupling(channel_mask(*s, parity=k % 2), s),
            ]
        return steps

    def block(s, level):
        h, w, c = s
        last = level == num_scales - 1
        if glow:
            squeeze = Squeeze(s)
            sq = (h // 2, w // 2, 4 * c)
            if last:
                return [squeeze, *glow_steps(final_couplings, sq), tfb.Invert(squeeze)]
            inner = tfb.Chain(block((h // 2, w // 2, 2 * c), level + 1), name=unique_name("scale"))
            steps = glow_steps(couplings_per_stage, sq)
            return [squeeze, *steps, FactorOut(inner, sq), tfb.Invert(squeeze)]
        if last:
            return checkerboard(final_couplings, s)
        squeeze = Squeeze(s)
        sq = (h // 2, w // 2, 4 * c)
        channelwise = [
            coupling(channel_mask(*sq, parity=k % 2), sq) for k in range(couplings_per_stage)
        ]
        inner = tfb.Chain(block((h // 2, w // 2, 2 * c), level + 1), name=unique_name("scale"))
        return [
            *checkerboard(couplings_per_stage, s),
            squeeze,
            *channelwise,
            FactorOut(inner, sq),
            tfb.Invert(squeeze),
        ]

    return tfb.Chain(block(shape, 0), name=name or unique_name("multiscale_real_nvp"))


def preprocessed_image_flow(flow: tfb.Bijector, num_levels: int, alpha: float = 0.05) -> tfb.Chain:
    """``flow`` behind RealNVP's preprocessing for dequantised grey levels in
    ``[0, num_levels)``: `Dequantize` to ``[0, 1)``, then `Logit` with ``alpha``. The
    log-dets of both count in the likelihood, so NLLs stay in grey-level units."""
    return tfb.Chain(
        [Dequantize(num_levels), Logit(alpha), flow], name=unique_name("preprocessed_flow")
    )
