"""Splits of a dataset in memory, and the fixed dequantisation noise of evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfp_realnvp.data.tables import DataError

__all__ = ["dequantized", "random_split", "train_validation_split"]


def random_split(
    x: np.ndarray, fractions: Sequence[float], seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Shuffles ``x`` along its first axis with ``seed`` and splits off one held-out part per
    fraction: returns ``(rest, *held_out)``, the i-th held-out part with
    ``max(1, round(len(x) * fractions[i]))`` examples.

    >>> train, validation, test = random_split(np.arange(10), [0.2, 0.1], seed=0)
    >>> len(train), len(validation), len(test)
    (7, 2, 1)

    Raises:
      DataError: if a fraction is not in (0, 1) or nothing would be left for the first part.
    """
    if not all(0.0 < f < 1.0 for f in fractions):
        raise DataError(f"fractions must each be in (0, 1); got {list(fractions)}")
    n = len(x)
    sizes = [max(1, round(n * f)) for f in fractions]
    if n - sum(sizes) < 1:
        raise DataError(
            f"cannot split {n} samples with fractions {list(fractions)}: the training set "
            "would be empty"
        )
    order = np.random.default_rng(seed).permutation(n)
    *held_out, rest = np.split(x[order], np.cumsum(sizes))
    return (rest, *held_out)


def train_validation_split(
    x: np.ndarray, validation_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffles ``x`` along its first axis with ``seed`` and splits off a validation part:
    `random_split` with one fraction, refusing one that rounds to no example.

    The validation part has ``round(len(x) * validation_fraction)`` samples.

    Raises:
      DataError: if ``validation_fraction`` is not in (0, 1) or either part would be empty.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise DataError(f"validation_fraction must be in (0, 1); got {validation_fraction}")
    if round(len(x) * validation_fraction) == 0:
        raise DataError(
            f"cannot split {len(x)} samples with validation_fraction="
            f"{validation_fraction}: the validation set would be empty"
        )
    train, validation = random_split(x, [validation_fraction], seed)
    return train, validation


def dequantized(data: np.ndarray, seed: int) -> np.ndarray:
    """Integer levels plus one fixed draw of ``Uniform[0, 1)`` noise from ``seed``, as float32:
    dequantised data for evaluation (`FlowModel` with ``dequantize=True`` draws fresh noise in
    training).

    >>> dequantized(np.array([0.0, 3.0]), seed=0).round(2)
    array([0.64, 3.27], dtype=float32)
    """
    return (data + np.random.default_rng(seed).uniform(size=data.shape)).astype(np.float32)
