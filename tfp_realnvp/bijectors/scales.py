"""The scale parameterisations of the affine coupling, kept importable from here: they live in
`tfp_realnvp.bijectors.transformers` beside the `Affine` transformer that uses them."""

from tfp_realnvp.bijectors.transformers import (
    SCALES,
    LearnedTanhScale,
    check_scale,
    conditioner_outputs,
    log_scale,
)

__all__ = ["SCALES", "LearnedTanhScale", "check_scale", "conditioner_outputs", "log_scale"]
