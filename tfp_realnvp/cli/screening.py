"""Checks on training data before a flow sees it: what the data are, and what a flow cannot fit.

A flow is a density on real numbers. Four kinds of column defeat it silently, so the command
line looks for them first (in numpy, before TensorFlow starts):

- whole numbers only (counts, grey levels): their "density" is a set of spikes, and a flow
  chases them without end. They are dequantised: training adds uniform noise on
  ``[-0.5, 0.5)``, so the flow models a density whose mass on ``[k - 0.5, k + 0.5)`` is the
  probability of ``k`` (Theis et al. 2016, https://arxiv.org/abs/1511.01844);
- a few values that are not whole numbers (a category coded as -0.04 and 0.05, say): spikes
  too, which no noise of a fixed width fits; the command line says so and how to code them
  (as 0, 1, ..., which are dequantised);
- a constant column of other values: it has no density at all; refused;
- values so far from the rest (more than ``MAX_ROBUST_Z`` median absolute deviations) that
  after standardisation the other rows fall below float32's resolution; refused with the row.

>>> import numpy as np
>>> report = screen_vectors(np.array([[0.5, 1.0], [1.5, 2.0], [2.5, 4.0]]), "x.csv")
>>> report.integer_columns
(1,)
>>> screen_vectors(np.array([[0.1 * (i % 2), i] for i in range(20)]), "x").few_valued_columns
(0,)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfp_realnvp.data.tables import DataError, Table

__all__ = [
    "MAX_LEVELS",
    "MAX_ROBUST_Z",
    "SMALL_DATA_NOTE",
    "Screening",
    "small_data_dropout",
    "uses_image_flow",
    "screen_images",
    "screen_vectors",
]

# float32 resolves about 1 part in 1.7e7; past 1e6 scales the bulk of a standardised column
# collapses onto a few float32 values next to the outlier.
MAX_ROBUST_Z = 1e6

# A column of at most this many distinct values (and at least 5 rows a value) is discrete.
MAX_LEVELS = 10

# Below this many training rows, vector flows get dropout by default: on 1,437 digits as
# 64-vectors it kept the validation NLL from turning up (benchmarks/README.md, small data).
SMALL_DATA_ROWS = 5000
SMALL_DATA_DROPOUT = 0.2
SMALL_DATA_NOTE = (
    f"fewer than {SMALL_DATA_ROWS} training rows: the conditioners use dropout "
    f"{SMALL_DATA_DROPOUT} against overfitting (--dropout 0 turns it off)"
)


def small_data_dropout(train_rows: float) -> float:
    """The vector conditioners' dropout where the user chose none: `SMALL_DATA_DROPOUT` below
    `SMALL_DATA_ROWS` training rows, else none."""
    return SMALL_DATA_DROPOUT if train_rows < SMALL_DATA_ROWS else 0.0


@dataclass(frozen=True)
class Screening:
    """What `screen_vectors` found (0-based columns): those holding only whole numbers, and
    those of at most `MAX_LEVELS` other values, at least 5 rows each on average."""

    integer_columns: tuple[int, ...]
    few_valued_columns: tuple[int, ...]


def screen_vectors(
    x: np.ndarray, source: str, dequantize: bool = True, table: Table | None = None
) -> Screening:
    """Checks ``[N, D]`` training data.

    Args:
      x: the data.
      source: names the data in messages.
      dequantize: whole-number columns will be dequantised (else they count as continuous).
      table: the file ``x`` was read from, whose column names and lines messages then use.

    Returns:
      `Screening` with the whole-number columns and the few-valued others.

    Raises:
      DataError: fewer than 2 columns, a constant column that is not dequantised, or a value
        more than `MAX_ROBUST_Z` robust standard deviations from its column's median.
    """
    if x.shape[1] < 2:
        raise DataError(
            f"{source}: one column: RealNVP couplings split the dimensions in two, so they "
            "need at least 2; for a 1-D density use a kernel density estimate (scikit-learn's "
            "KernelDensity) or a Gaussian mixture (sklearn.mixture.GaussianMixture)"
        )
    table = table or Table(x)
    x = x.astype(np.float64)  # squares of large float32 values overflow
    integer = np.all(x == np.round(x), axis=0)
    deq = integer & dequantize
    constant = ~deq & (np.ptp(x, axis=0) == 0)
    if constant.any():
        cols = tuple(np.flatnonzero(constant))
        one = len(cols) == 1
        value = f" ({x[0, cols[0]]:g} in every row)" if one else ""
        raise DataError(
            f"{source}: {table.describe(cols)} {'is' if one else 'are'} constant{value}: a "
            f"constant has no density; drop {'it' if one else 'them'}"
        )
    median = np.median(x, axis=0)
    scale = 1.4826 * np.median(np.abs(x - median), axis=0)  # a normal's standard deviation
    scale = np.where(scale > 0, scale, x.std(axis=0))
    scale = np.where(deq, np.maximum(scale, 1.0), scale)  # the noise spreads whole numbers
    z = np.abs(x - median) / scale
    if z.max() > MAX_ROBUST_Z:
        row, col = np.unravel_index(np.argmax(z), z.shape)
        raise DataError(
            f"{source}: {table.where(row)}, {table.describe([col])} is {x[row, col]:g}, "
            f"{z[row, col]:.2g} "
            f"robust standard deviations from the column's median {median[col]:g}; a float32 "
            "flow cannot fit it with the other rows: remove the row or rescale the column"
        )
    levels = np.array([_levels(column) for column in x.T])
    few = ~integer & (levels <= MAX_LEVELS) & (5 * levels <= len(x))
    return Screening(
        tuple(int(c) for c in np.flatnonzero(deq)), tuple(int(c) for c in np.flatnonzero(few))
    )


def _levels(column: np.ndarray) -> int:
    """How many distinct values ``column`` holds, where that is at most `MAX_LEVELS` (else
    some number above it): a continuous column is told by its first rows."""
    head = len(np.unique(column[:1000]))
    return head if head > MAX_LEVELS else len(np.unique(column))


def uses_image_flow(data: np.ndarray, architecture: str) -> bool:
    """Whether training fits an image flow (multi-scale RealNVP or Glow) to ``data``: images
    ``[N, H, W, C]``, unless ``architecture == "vector"`` flattens them."""
    return data.ndim == 4 and architecture != "vector"


def screen_images(x: np.ndarray, source: str) -> int:
    """Checks ``[N, H, W, C]`` images of grey levels and returns their number ``K``.

    Raises:
      DataError: unless every value is a whole number in ``0 .. K-1`` with ``K >= 2``.
    """
    if x.min() < 0 or not np.all(x == np.round(x)) or x.max() < 1:
        raise DataError(
            f"{source}: images must hold whole grey levels 0, 1, ..., K-1 (K >= 2); got values "
            f"in [{x.min():g}, {x.max():g}]"
            + ("" if np.all(x == np.round(x)) else " that are not all whole numbers")
        )
    return int(x.max()) + 1
