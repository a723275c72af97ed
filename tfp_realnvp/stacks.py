"""How the builders stack couplings: masks, conditioners and permutations, for any transformer."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import one_of, positive_int
from tfp_realnvp._checks import shape as check_shape
from tfp_realnvp.bijectors.linear import LULinear, random_permutation, reverse_permutation
from tfp_realnvp.bijectors.masks import (
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    half_mask,
)
from tfp_realnvp.networks import ResidualConvNet, ResidualMLP

tfb = tfp.bijectors

VECTOR_MASKS = ("half", "alternating")
IMAGE_MASKS = ("checkerboard", "channel")
PERMUTATIONS = ("alternate", "reverse", "random", "lu", "none")


# The builders' arguments that `coupling_stack` takes, passed on by name.
STACK_OPTIONS = (
    "hidden_units",
    "hidden_channels",
    "mask",
    "permutation",
    "activation",
    "num_blocks",
    "dropout",
    "dtype",
    "seed",
    "validate_args",
)


def stack_options(arguments: dict) -> dict:
    """The `STACK_OPTIONS` among a builder's ``arguments`` (its ``locals()``), dtype resolved."""
    options = {k: arguments[k] for k in STACK_OPTIONS}
    return {**options, "dtype": tf.as_dtype(options["dtype"])}


def coupling_stack(
    event_shape,
    num_couplings,
    make_coupling,
    param_shapes,
    *,
    hidden_units,
    hidden_channels,
    mask,
    permutation,
    activation,
    num_blocks,
    dropout,
    dtype,
    seed,
    validate_args,
) -> list:
    """``num_couplings`` couplings made by ``make_coupling(conditioner, mask)``, with
    conditioners returning ``param_shapes`` per unit, and the permutations between them."""
    event_shape = event_shape_of(event_shape)
    num_couplings = positive_int(num_couplings, "num_couplings")
    permutation = _permutation_kind(permutation)
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
            f"a coupling needs at least 2 units to split; event_shape is {event_shape}. For "
            "one dimension (a 1-D target, with or without a context) use "
            "masked_autoregressive_flow(event_shape, ..., transformer='spline'), which "
            "transforms every unit."
        )
    width = _conditioner_width(image, hidden_units, hidden_channels)
    if image and dropout:
        raise ValueError(
            "`dropout` applies to the MLP conditioners of vector events; got "
            f"dropout={dropout!r} for an image event {event_shape}."
        )
    bijectors = []
    for i in range(num_couplings):
        parity = i % 2 if permutation == "alternate" else 0
        coupling_mask = _make_mask(mask, event_shape, parity)
        if image:
            conditioner = ResidualConvNet(
                event_shape[-1],
                hidden_channels=width,
                num_blocks=num_blocks,
                param_shapes=param_shapes,
                activation=activation,
                dtype=layer_dtype(dtype),
            )
        else:
            conditioner = ResidualMLP(
                int((~coupling_mask).sum()),
                hidden_units=width,
                param_shapes=param_shapes,
                activation=activation,
                dropout=dropout,
                dtype=layer_dtype(dtype),
            )
        bijectors.append(make_coupling(conditioner, coupling_mask))
        if i < num_couplings - 1 and permutation not in ("alternate", "none"):
            bijectors.append(
                permutation_bijector(permutation, event_shape, seed + i, dtype, validate_args)
            )
    return bijectors


def event_shape_of(event_shape) -> tuple[int, ...]:
    return check_shape(event_shape, "event_shape")


def _permutation_kind(permutation: str | None) -> str:
    if permutation == "swap":  # its name until 0.2; it never permuted anything
        raise ValueError(
            '`permutation="swap"` is now called "alternate": it alternates the mask between '
            'couplings rather than permuting units; pass permutation="alternate".'
        )
    return one_of("none" if permutation is None else permutation, PERMUTATIONS, "permutation")


def _conditioner_width(image: bool, hidden_units, hidden_channels):
    """The MLP's hidden widths (vectors) or the conv net's channels (images); each argument
    belongs to one kind of event."""
    if image and hidden_units is not None:
        raise ValueError(
            "`hidden_units` sets the MLP conditioners of vector events; for an image event "
            f"[H, W, C] pass `hidden_channels` (the conv conditioners' width); got "
            f"hidden_units={hidden_units!r}."
        )
    if not image and hidden_channels is not None:
        raise ValueError(
            "`hidden_channels` sets the conv conditioners of image events [H, W, C]; for a "
            f"vector event pass `hidden_units` (the MLP's widths); got "
            f"hidden_channels={hidden_channels!r}."
        )
    if image:
        return positive_int(64 if hidden_channels is None else hidden_channels, "hidden_channels")
    return list((64, 64) if hidden_units is None else hidden_units)


def _make_mask(kind: str, event_shape, parity: int) -> np.ndarray:
    if kind == "half":
        mask = half_mask(event_shape[0])
        return mask if parity == 0 else ~mask
    if kind == "alternating":
        return alternating_mask(event_shape[0], parity)
    if kind == "checkerboard":
        return checkerboard_mask(*event_shape, parity=parity)
    return channel_mask(*event_shape, parity=parity)


def permutation_bijector(
    kind: str, event_shape, seed: int, dtype, validate_args: bool
) -> tfb.Bijector:
    if kind == "lu":
        return LULinear(event_shape, seed=seed, dtype=dtype, validate_args=validate_args)
    if kind == "reverse":
        return reverse_permutation(event_shape[-1])
    return random_permutation(event_shape[-1], seed)


def layer_dtype(dtype: tf.DType):
    """Keep the global (possibly mixed) Keras policy for float32 flows; force float64."""
    return None if dtype == tf.float32 else dtype.name
