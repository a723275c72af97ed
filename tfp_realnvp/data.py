"""Datasets for the command-line trainer: bundled toy densities and the user's own files.

``load_data(spec)`` takes a name from ``DATASETS`` or a path to a ``.csv`` / ``.npy`` file and
returns a float32 array: ``[N, D]`` vectors or ``[N, H, W, C]`` images. The 2-D toy densities
are the standard ones of the flow literature (FFJORD, Grathwohl et al. 2018,
https://arxiv.org/abs/1810.01367), drawn with numpy and scaled to about ``[-4, 4]``.
``"digits"`` is scikit-learn's bundled 8x8 digits as raw grey levels 0..16; dequantisation and
rescaling happen in the trainer, not here.

Every problem with the input raises ``DataError``, a ``ValueError`` with a one-line message that
names the file and the problem, so the command line can print it instead of a traceback.

>>> make_dataset("8gaussians", num_samples=5).shape
(5, 2)
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tfp_realnvp._extras import missing_extra

__all__ = [
    "DATASETS",
    "DataError",
    "dequantized",
    "load_array",
    "load_data",
    "load_named_data",
    "load_table",
    "match_columns",
    "make_dataset",
    "random_split",
    "train_validation_split",
]


class DataError(ValueError):
    """Bad data: an unknown dataset name or a file that cannot be used, with a one-line reason."""


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


def _delimiter(lines: list[str]) -> str:
    # The first data line decides: commas, else semicolons, else tabs (else a single column).
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            return next((d for d in ",;\t" if d in line), ",")
    return ","


def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    delimiter = _delimiter(lines)
    named = {",": "comma", ";": "semicolon", "\t": "tab"}[delimiter]
    rows: list[list[float]] = []
    width = None
    header = None
    for line, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        # 1-based line numbers, as an editor shows them (quoted newlines are not numbers)
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue  # blank lines and '# comment' lines
        if width is not None and len(cells) != width:
            raise DataError(
                f"{path}: ragged rows: row {line} has {len(cells)} {named}-separated columns, "
                f"expected {width}"
            )
        numeric = [_is_number(cell) for cell in cells]
        if width is None and not any(numeric):
            width = len(cells)  # a header row of names
            header = [cell.strip() for cell in cells]
            continue
        if not all(numeric):
            col = numeric.index(False)
            cell = cells[col].strip()
            what = f"non-numeric cell {cell!r}" if cell else "empty cell"
            hint = ""
            if any(d in cell for d in ";\t") or (delimiter != "," and "," in cell):
                hint = f" (read as {named}-separated; decimal commas are not supported)"
            raise DataError(f"{path}: {what} at row {line}, column {col + 1}{hint}")
        rows.append([float(cell) for cell in cells])
        width = len(cells)
    if not rows:
        raise DataError(f"{path}: empty data: no numeric rows")
    return np.array(rows), header


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_npy(path: Path) -> np.ndarray:
    fmt = np.lib.format
    try:  # the header first: np.load would refuse an object array with a generic error
        with path.open("rb") as f:
            major, _ = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
        x = None if dtype.hasobject else np.load(path, allow_pickle=False)
    except (ValueError, EOFError):
        raise DataError(f"{path}: cannot read file: not a valid .npy file") from None
    if x is None:
        raise DataError(f"{path}: object dtype arrays are not supported; save a numeric array")
    real = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    if not (real or x.dtype == bool):
        raise DataError(f"{path}: unsupported dtype {x.dtype}; expected real numbers")
    if x.ndim not in (2, 4):
        hint = "; add a channel axis for greyscale images" if x.ndim == 3 else ""
        raise DataError(
            f"{path}: expected a 2-D [N, D] or 4-D [N, H, W, C] array, got "
            f"{x.ndim}-D with shape {shape}{hint}"
        )
    if x.size == 0:
        raise DataError(f"{path}: empty data: array of shape {shape}")
    return x


def load_array(path: str | os.PathLike) -> np.ndarray:
    """Reads a user's ``.csv`` or ``.npy`` file as float32 ``[N, D]`` (or ``[N, H, W, C]``: npy);
    `load_table` also gives the column names.

    A CSV holds numbers separated by commas (or semicolons or tabs, as its first data line
    shows), one sample a row, with at most one header row of names; blank lines and lines
    starting with ``#`` are skipped. Rows and columns in messages count from 1, as an editor
    shows them.

    Raises:
      DataError: naming the file and the problem: missing or unreadable file, unsupported
        extension, a non-numeric or empty cell (1-based row and column), ragged rows, NaN or inf
        (1-based row), no data, an array that is not 2-D or 4-D, or an object dtype.
    """
    return load_table(path)[0]


def load_table(path: str | os.PathLike) -> tuple[np.ndarray, list[str] | None]:
    """`load_array`'s array, and the names in a CSV's header row (``None``: no header row, or
    a ``.npy`` file).

    Raises:
      DataError: as `load_array`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path} is a directory; expected a .csv or .npy file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npy"):
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; expected .csv or .npy"
        )
    try:
        x, columns = _read_csv(path) if suffix == ".csv" else (_read_npy(path), None)
    except OSError as e:
        raise DataError(f"{path}: cannot read file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: cannot read file: not UTF-8 text") from None
    except csv.Error as e:
        raise DataError(f"{path}: cannot read file: not a valid CSV ({e})") from None
    with np.errstate(over="ignore"):  # reported below as too large for float32
        x32 = x.astype(np.float32)
    bad = ~np.isfinite(x32.reshape(len(x32), -1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        value = x.reshape(len(x), -1)[row, col]
        what = "NaN" if np.isnan(value) else "inf" if np.isinf(value) else f"{value:g} (> float32)"
        where = f"column {col + 1}" if x.ndim == 2 else f"flat index {col}"
        raise DataError(f"{path}: {what} at row {row + 1}, {where}")
    return x32, columns


def _listed(names: Sequence[str], most: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def match_columns(
    x: np.ndarray, names: Sequence[str] | None, expected: Sequence[str] | None, source: str
) -> tuple[np.ndarray, str | None]:
    """``x``'s columns in the order of ``expected`` (the names a model was trained on), and a
    note for the user when something was assumed or changed.

    The same names in another order are reordered by name; a table without a header row is
    taken to be in the model's order (with a note); no ``expected`` names (a model trained on
    a ``.npy`` file or a dataset) checks nothing.

    >>> x = np.array([[1.0, 2.0]])
    >>> match_columns(x, ["b", "a"], ["a", "b"], "--data t.csv")[0]
    array([[2., 1.]])

    Raises:
      DataError: naming ``source`` and the names missing from it, or those the model does not
        know, or a name given twice.
    """
    if expected is None or (names is not None and list(names) == list(expected)):
        return x, None
    if names is None:
        return x, (
            f"{source} has no header row; its columns are taken to be the model's, in "
            f"order: {_listed(expected)}"
        )
    missing = [n for n in expected if n not in names]
    unknown = [n for n in names if n not in expected]
    if missing or unknown:
        parts = [f"lacks {_listed(missing)}"] if missing else []
        parts += [f"has {_listed(unknown)}, which the model was not trained on"] if unknown else []
        raise DataError(
            f"{source}: its columns are not the model's: it {' and '.join(parts)} "
            f"(the model's columns: {_listed(expected)})"
        )
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice or len(names) != len(expected):
        raise DataError(f"{source}: column names given more than once: {_listed(twice)}")
    order = [list(names).index(n) for n in expected]
    return x[:, order], f"{source} has the model's columns in another order; reordered by name"


def load_data(spec: str, num_samples: int = 4096, seed: int = 0) -> np.ndarray:
    """Loads ``spec``: a name from ``DATASETS`` (``make_dataset``) or a path (``load_array``)."""
    return load_named_data(spec, num_samples, seed)[0]


def load_named_data(
    spec: str, num_samples: int = 4096, seed: int = 0
) -> tuple[np.ndarray, list[str] | None]:
    """`load_data`'s array and its column names (`load_table`; ``None`` for a dataset)."""
    if spec in DATASETS:
        return make_dataset(spec, num_samples=num_samples, seed=seed), None
    if not Path(spec).exists() and Path(spec).suffix.lower() not in (".csv", ".npy"):
        raise DataError(
            f"{spec!r} is neither a dataset ({', '.join(DATASETS)}) nor an "
            "existing .csv or .npy file"
        )
    return load_table(spec)


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
