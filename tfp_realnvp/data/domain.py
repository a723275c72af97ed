"""Whether data lie in a flow's domain, checked in numpy before a flow sees them."""

from __future__ import annotations

import numpy as np

from tfp_realnvp.data.tables import DataError

__all__ = ["check_in_domain"]


def check_in_domain(x: np.ndarray, low: float, high: float, source: str) -> None:
    """Refuses data with an element outside ``[low, high]`` (or NaN), where a flow with a
    bounded domain (`Logit`) would return NaN.

    Raises:
      DataError: naming the first offending example (1-based) and value.
    """
    flat = np.asarray(x).reshape(len(x), -1) if np.ndim(x) > 1 else np.asarray(x)[:, None]
    bad = ~((flat >= low) & (flat <= high))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{source}: example {row + 1} has the value {flat[row, col]:g} (flat index {col}), "
            f"outside the flow's domain [{low:g}, {high:g}], where its density is undefined; "
            f"{int(bad.any(axis=1).sum())} of {len(flat)} examples are outside"
        )
