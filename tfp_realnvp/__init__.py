"""tfp_realnvp: RealNVP normalizing flows as TensorFlow Probability bijectors.

``forward`` maps latent noise to data (sampling); ``inverse`` maps data to noise (density).

The public names load on first use (PEP 562), so ``import tfp_realnvp`` and the command line's
argument checks do not pay TensorFlow's start-up; ``tfp_realnvp.real_nvp`` and
``from tfp_realnvp import real_nvp`` import what they need.
"""

from __future__ import annotations

import importlib
from typing import Any

from tfp_realnvp import _moved

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "ActNorm": "tfp_realnvp.bijectors",
    "AffineCoupling": "tfp_realnvp.bijectors",
    "Coupling": "tfp_realnvp.bijectors",
    "Affine": "tfp_realnvp.bijectors",
    "Additive": "tfp_realnvp.bijectors",
    "Dequantize": "tfp_realnvp.bijectors",
    "FactorOut": "tfp_realnvp.bijectors",
    "Logit": "tfp_realnvp.bijectors",
    "LULinear": "tfp_realnvp.bijectors",
    "Planar": "tfp_realnvp.bijectors",
    "Radial": "tfp_realnvp.bijectors",
    "Squeeze": "tfp_realnvp.bijectors",
    "Whitening": "tfp_realnvp.bijectors",
    "alternating_mask": "tfp_realnvp.bijectors",
    "channel_mask": "tfp_realnvp.bijectors",
    "checkerboard_mask": "tfp_realnvp.bijectors",
    "half_mask": "tfp_realnvp.bijectors",
    "random_permutation": "tfp_realnvp.bijectors",
    "reverse_permutation": "tfp_realnvp.bijectors",
    "export_saved_model": "tfp_realnvp.export",
    "shard_dataset": "tfp_realnvp.data.streaming",
    "export_tflite": "tfp_realnvp.tflite",
    "conditional_kwargs": "tfp_realnvp.traversal",
    "flow_distribution": "tfp_realnvp.flows",
    "real_nvp": "tfp_realnvp.flows",
    "neural_spline_flow": "tfp_realnvp.flows",
    "RationalQuadraticSpline": "tfp_realnvp.bijectors",
    "planar_flow": "tfp_realnvp.planar_radial_flows",
    "radial_flow": "tfp_realnvp.planar_radial_flows",
    "walk": "tfp_realnvp.traversal",
    "FlowBijector": "tfp_realnvp.bijectors.base",
    "register_bijector": "tfp_realnvp.bijectors.base",
    "initialize": "tfp_realnvp.initialization",
    "multiscale_real_nvp": "tfp_realnvp.image_flows",
    "preprocessed_image_flow": "tfp_realnvp.image_flows",
    "bits_per_dim": "tfp_realnvp.units",
    "FlowModel": "tfp_realnvp.model",
    "load_model": "tfp_realnvp.saving",
    "ResidualConvNet": "tfp_realnvp.networks",
    "ResidualMLP": "tfp_realnvp.networks",
    "training_mode": "tfp_realnvp.networks",
    "MADE": "tfp_realnvp.made",
    "MaskedAutoregressive": "tfp_realnvp.bijectors",
    "masked_autoregressive_flow": "tfp_realnvp.autoregressive_flows",
    "VIModel": "tfp_realnvp.vi",
    "fit_vi": "tfp_realnvp.vi",
    "diagnose": "tfp_realnvp.vi",
    "sample_neutra": "tfp_realnvp.vi",
    "neutra_kernel": "tfp_realnvp.vi",
}

__all__ = sorted(_EXPORTS)


_SUBMODULES = {"bijectors", "data", "export", "flows", "image_flows", "units", "model"}
_SUBMODULES |= {"initialization", "networks", "serialization", "keras", "testing", "tflite"}
_SUBMODULES |= {"autoregressive_flows", "bases", "made", "planar_radial_flows", "stacks", "vi"}
_SUBMODULES |= {"traversal", "precision", "saving", "verification", "cli"}

_moved.install()  # tfp_realnvp.training and the other paths of 0.1.0 that moved


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # tfp_realnvp.data, tfp_realnvp.testing, ...
        return importlib.import_module(f"tfp_realnvp.{name}")
    if f"tfp_realnvp.{name}" in _moved.MOVED:
        return _moved.resolve(f"tfp_realnvp.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tfp_realnvp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
