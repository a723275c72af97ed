"""Bundled datasets: the toy 2-D densities and scikit-learn's digits, or a user's file.

``load_data(spec)`` takes a name from ``DATASETS`` or a path to a ``.csv`` / ``.npy`` file and
returns a float32 array: ``[N, D]`` vectors or ``[N, H, W, C]`` images. The 2-D toy densities
are the standard ones of the flow literature (FFJORD, Grathwohl et al. 2018,
https://arxiv.org/abs/1810.01367), drawn with numpy and scaled to about ``[-4, 4]``.
``"digits"`` is scikit-learn's bundled 8x8 digits as raw grey levels 0..16; dequantisation and
rescaling happen in the trainer, not here.

>>> make_dataset("8gaussians", num_samples=5).shape
(5, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfp_realnvp._extras import missing_extra
from tfp_realnvp.data.tables import DataError, Table, file_type, load_table

__all__ = ["DATASETS", "load_data", "load_named_data", "make_dataset"]


def _moons(rng: np.random.Generator, n: int) -> np.ndarray:
    # Two interleaved half circles (sklearn's make_moons, noise 0.1), scaled as in FFJORD.
    t = rng.uniform(0.0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1.0 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    points = np.stack([x, y], axis=1) + rng.normal(scale=0.1, size=(n, 2))
    return points * 2.0 + np.array([-1.0, -0.2])


def _8gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    angles = np.pi / 4 * rng.integers(0, 8, n)
    centers = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (centers + rng.normal(scale=0.5, size=(n, 2))) / 1.414


def _checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
    # Uniform on the 8 squares of a 4x4 board of side-2 squares where floor(x/2)+floor(y/2) is even.
    x = rng.uniform(-2.0, 2.0, n)
    y = rng.random(n) - 2.0 * rng.integers(0, 2, n) + np.floor(x) % 2
    return np.stack([x, y], axis=1) * 2.0


def _pinwheel(rng: np.random.Generator, n: int) -> np.ndarray:
    # Five arms; the angle grows with the radial coordinate, which bends each arm.
    arm = rng.integers(0, 5, n)
    features = rng.normal(size=(n, 2)) * np.array([0.3, 0.1]) + np.array([1.0, 0.0])
    angles = 2 * np.pi / 5 * arm + 0.25 * np.exp(features[:, 0])
    z = (features[:, 0] + 1j * features[:, 1]) * np.exp(1j * angles)  # rotate by `angles`
    return 2.0 * np.stack([z.real, z.imag], axis=1)


def _rings(rng: np.random.Generator, n: int) -> np.ndarray:
    radii = 0.75 * rng.integers(1, 5, n)
    angles = rng.uniform(0.0, 2 * np.pi, n)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return radii[:, None] * circle + rng.normal(scale=0.08, size=(n, 2))


def _2spirals(rng: np.random.Generator, n: int) -> np.ndarray:
    # Arm one is r * (cos(pi - r), sin(pi - r)) for r up to 3 pi; arm two is its point reflection.
    r = np.sqrt(rng.random(n)) * 3 * np.pi
    arm = np.stack([-np.cos(r) * r, np.sin(r) * r], axis=1) + rng.random((n, 2)) * 0.5
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
    return sign * arm / 3.0 + rng.normal(scale=0.1, size=(n, 2))


_TOY: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "moons": _moons,
    "8gaussians": _8gaussians,
    "checkerboard": _checkerboard,
    "pinwheel": _pinwheel,
    "rings": _rings,
    "2spirals": _2spirals,
}

DATASETS: tuple[str, ...] = (*_TOY, "digits")  # the first, "moons", is the trainer's default


def make_dataset(name: str, num_samples: int = 4096, seed: int = 0) -> np.ndarray:
    """Draws the dataset ``name`` (one of ``DATASETS``).

    Returns:
      float32 ``[num_samples, 2]`` points of a 2-D toy set, drawn by ``default_rng(seed)``; or, for
      ``"digits"``, all 1797 images as float32 ``[1797, 8, 8, 1]`` holding the raw integer grey
      levels 0..16 (``num_samples`` and ``seed`` are ignored).

    Raises:
      DataError: for an unknown name or a ``num_samples`` below 1.
      MissingExtra: (an ImportError) for ``"digits"`` without scikit-learn installed.
    """
    if name == "digits":
        if error := missing_extra("sklearn", 'the dataset "digits"'):
            raise error
        from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

        return load_digits().images[..., None].astype(np.float32)
    if name not in _TOY:
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")
    if not isinstance(num_samples, int | np.integer) or num_samples < 1:
        raise DataError(f"num_samples must be an integer >= 1; got {num_samples!r}")
    return _TOY[name](np.random.default_rng(seed), int(num_samples)).astype(np.float32)


def load_data(spec: str, num_samples: int = 4096, seed: int = 0) -> np.ndarray:
    """Loads ``spec``: a name from ``DATASETS`` (``make_dataset``) or a path (``load_array``)."""
    return load_named_data(spec, num_samples, seed).values


def load_named_data(spec: str, num_samples: int = 4096, seed: int = 0) -> Table:
    """`load_data`'s array as a `Table`, with the file's column names and lines
    (`load_table`; neither for a dataset)."""
    if spec in DATASETS:
        return Table(make_dataset(spec, num_samples=num_samples, seed=seed))
    if not Path(spec).exists() and file_type(Path(spec)) not in (".csv", ".csv.gz", ".npy"):
        raise DataError(
            f"{spec!r} is neither a dataset ({', '.join(DATASETS)}) nor an "
            "existing .csv, .csv.gz or .npy file"
        )
    return load_table(spec)
