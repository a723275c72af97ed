"""tfp_realnvp: RealNVP normalizing flows as TensorFlow Probability bijectors.

``forward`` maps latent noise to data (sampling); ``inverse`` maps data to noise (density).
"""

from tfp_realnvp.bijectors import (
    ActNorm,
    AffineCoupling,
    Dequantize,
    FactorOut,
    Logit,
    LULinear,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    half_mask,
    random_permutation,
    reverse_permutation,
)
from tfp_realnvp.export import export_saved_model
from tfp_realnvp.flows import conditional_kwargs, flow_distribution, real_nvp, walk
from tfp_realnvp.image_flows import multiscale_real_nvp, preprocessed_image_flow
from tfp_realnvp.initialization import initialize
from tfp_realnvp.metrics import bits_per_dim
from tfp_realnvp.model import FlowModel
from tfp_realnvp.networks import ResidualConvNet, ResidualMLP

__version__ = "0.1.0"

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Dequantize",
    "FactorOut",
    "Logit",
    "Squeeze",
    "bits_per_dim",
    "multiscale_real_nvp",
    "preprocessed_image_flow",
    "FlowModel",
    "LULinear",
    "ResidualConvNet",
    "ResidualMLP",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "conditional_kwargs",
    "export_saved_model",
    "flow_distribution",
    "half_mask",
    "initialize",
    "random_permutation",
    "real_nvp",
    "reverse_permutation",
    "walk",
]
