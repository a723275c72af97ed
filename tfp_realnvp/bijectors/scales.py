"""Compatibility path: the scale parameterisations of the affine coupling live in
`tfp_realnvp.bijectors.transformers`, beside the `Affine` transformer that uses them; import
them from there. Kept for code that imports this module; nothing in tfp_realnvp does."""

from tfp_realnvp.bijectors.transformers import (
    SCALES,
    LearnedTanhScale,
    check_scale,
    conditioner_outputs,
    log_scale,
)

__all__ = ["SCALES", "LearnedTanhScale", "check_scale", "conditioner_outputs", "log_scale"]
