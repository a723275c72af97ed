"""Argument checks shared by the builders, layers and bijectors, with one wording for each.

Each returns the checked value (as a plain Python type) or raises a `ValueError` that names the
argument, what was expected and what came.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np


def integer(value, name: str, *, minimum: int | None = None) -> int:
    """``value`` as an ``int``: a Python or NumPy integer (not a bool), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be {_integer_kind(minimum)}; got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be {_integer_kind(minimum)}; got {value!r}.")
    return int(value)


def positive_int(value, name: str) -> int:
    """``value`` as an ``int`` of at least 1."""
    return integer(value, name, minimum=1)


def shape(value, name: str, *, rank: int | None = None) -> tuple[int, ...]:
    """``value`` (an int, or a sequence of ints) as a tuple of positive ints, of ``rank`` dims
    when given."""
    if rank is None:
        expected = "a non-empty list of positive ints"
    elif rank == 3:
        expected = "[H, W, C] of positive ints"
    else:
        expected = f"a list of {rank} positive ints"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        dims = tuple(value)
    except TypeError:
        raise ValueError(f"`{name}` must be {expected}; got {value!r}.") from None
    wrong_rank = not dims or (rank is not None and len(dims) != rank)
    if wrong_rank or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in dims
    ):
        raise ValueError(f"`{name}` must be {expected}; got {dims}.")
    return tuple(int(d) for d in dims)


def one_of(value, choices: Sequence, name: str):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}; got {value!r}.")
    return value


def is_tf1_template(obj: Any) -> bool:
    """Whether ``obj`` is a TF1 template network (``tf.compat.v1.make_template``, and so
    ``tfb.real_nvp_default_template``): its variables appear on the first call, tracked by
    neither Keras nor TFP."""
    return any(
        c.__name__ == "Template" and c.__module__.endswith("ops.template")
        for c in type(obj).__mro__
    )


def conditioner(value, name: str) -> None:
    """Refuses a TFP ``shift_and_log_scale_fn(x, output_units)`` (a template, or a function
    with an ``output_units`` argument) given where a conditioner belongs.

    Raises:
      TypeError: naming ``name``, the difference and what to use instead.
    """
    try:
        takes_units = "output_units" in inspect.signature(value).parameters
    except (TypeError, ValueError):  # not introspectable: a Keras layer's __call__, a builtin
        takes_units = False
    if is_tf1_template(value) or (takes_units and not hasattr(value, "trainable_variables")):
        raise TypeError(
            f"`{name}` is a TFP shift_and_log_scale_fn(x, output_units) (such as "
            "tfb.real_nvp_default_template), not a conditioner: a conditioner is a Keras layer "
            "or tf.Module called as conditioner(x1) that returns (shift, log_scale), with its "
            "weights made at once. Use tfp_realnvp.ResidualMLP(output_units, hidden_units), or "
            "wrap a network of Keras layers (README: 'Coming from tfb.RealNVP')."
        )


def _integer_kind(minimum: int | None) -> str:
    if minimum is None:
        return "an integer"
    return "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
