"""The bijectors of tfp_realnvp: couplings and their transformers, autoregressive layers, masks,
permutations and learned linear maps."""

from tfp_realnvp.bijectors.actnorm import ActNorm, ActNormParameters
from tfp_realnvp.bijectors.autoregressive import MaskedAutoregressive
from tfp_realnvp.bijectors.base import FlowBijector, register_bijector, registered_bijectors
from tfp_realnvp.bijectors.conditioned import ConditionedBijector
from tfp_realnvp.bijectors.coupling import AffineCoupling, Coupling
from tfp_realnvp.bijectors.linear import (
    LULinear,
    LUWeights,
    random_permutation,
    reverse_permutation,
)
from tfp_realnvp.bijectors.masks import (
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    half_mask,
    validate_mask,
)
from tfp_realnvp.bijectors.multiscale import FactorOut, Squeeze
from tfp_realnvp.bijectors.planar import Planar
from tfp_realnvp.bijectors.preprocess import Dequantize, Logit
from tfp_realnvp.bijectors.radial import Radial
from tfp_realnvp.bijectors.residual import ResidualWeights
from tfp_realnvp.bijectors.spline import RationalQuadraticSpline
from tfp_realnvp.bijectors.transformers import (
    SCALES,
    Additive,
    Affine,
    LearnedTanhScale,
    Transformer,
)
from tfp_realnvp.bijectors.whitening import Whitening

__all__ = [
    "SCALES",
    "ActNorm",
    "ActNormParameters",
    "Additive",
    "Affine",
    "AffineCoupling",
    "ConditionedBijector",
    "Coupling",
    "Dequantize",
    "FactorOut",
    "FlowBijector",
    "register_bijector",
    "registered_bijectors",
    "LULinear",
    "RationalQuadraticSpline",
    "LUWeights",
    "LearnedTanhScale",
    "Logit",
    "MaskedAutoregressive",
    "Planar",
    "Radial",
    "ResidualWeights",
    "Squeeze",
    "Transformer",
    "Whitening",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "half_mask",
    "random_permutation",
    "reverse_permutation",
    "validate_mask",
]
