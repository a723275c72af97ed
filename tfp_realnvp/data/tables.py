"""Tables from the user's files, read by one set of rules: ``.csv`` and ``.npy``.

A CSV holds numbers separated by commas (or semicolons or tabs, as its first data line shows),
one sample a row, with at most one header row of names; blank lines and lines starting with
``#`` are skipped. A ``.npy`` file holds a 2-D ``[N, D]`` or 4-D ``[N, H, W, C]`` real array.
Every problem raises `DataError`, a ``ValueError`` with a one-line message that names the file
and the problem, so the command line can print it instead of a traceback. numpy only: the
command line reads and checks its inputs before TensorFlow starts.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text("width,mass\n1,2\n3,4\n")
>>> x, names = load_table(path)
>>> x.shape, names
((2, 2), ['width', 'mass'])
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "cell_problem",
    "csv_delimiter",
    "is_number",
    "load_array",
    "load_table",
    "match_columns",
    "position",
    "ragged_problem",
    "read_npy_header",
    "value_problem",
]


class DataError(ValueError):
    """Bad data: an unknown dataset name or a file that cannot be used, with a one-line reason."""


# Where a value sits, by the kind of file: a CSV's line as an editor numbers it, counting
# the header, blank and comment lines; an .npy array's row; a TFRecord file's record.
_UNIT = {"csv": "line", "npy": "row", "tfrecord": "record"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


def position(kind: str, number: int, column: int | None = None) -> str:
    """Where a value is, as every message here says it: ``'line 7, column 2'`` for a CSV (the
    file's line, as an editor shows it), ``'row 3, column 2'`` for an ``.npy`` array,
    ``'record 4'`` for a TFRecord file; ``number`` and ``column`` count from 1."""
    where = f"{_UNIT[kind]} {number}"
    return where if column is None else f"{where}, column {column}"


def cell_problem(cell: str) -> str:
    """What is wrong with a CSV cell that is not a number."""
    cell = cell.strip()
    return f"non-numeric cell {cell!r}" if cell else "empty cell"


def ragged_problem(kind: str, number: int, count: int, width: int, delimiter: str = ",") -> str:
    """A row (or record) of another width than the rest."""
    if kind == "tfrecord":
        return f"{position(kind, number)} has {count} values in feature 'x', expected {width}"
    named = _SEPARATORS.get(delimiter, repr(delimiter))
    where = position(kind, number)
    return f"ragged rows: {where} has {count} {named}-separated columns, expected {width}"


def value_problem(value: float) -> str:
    """What is wrong with a number that float32 cannot hold."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"the value {value:g}, beyond float32's range (+-{_FLOAT32_MAX:.3g})"


def csv_delimiter(lines: list[str]) -> str:
    # The first data line decides: commas, else semicolons, else tabs (else a single column).
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            return next((d for d in ",;\t" if d in line), ",")
    return ","


def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    delimiter = csv_delimiter(lines)
    named = _SEPARATORS[delimiter]
    rows: list[list[float]] = []
    numbers: list[int] = []  # each row's line
    width = None
    header = None
    for line, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        # 1-based line numbers, as an editor shows them (quoted newlines are not numbers)
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue  # blank lines and '# comment' lines
        if width is not None and len(cells) != width:
            raise DataError(f"{path}: {ragged_problem('csv', line, len(cells), width, delimiter)}")
        numeric = [is_number(cell) for cell in cells]
        if width is None and not any(numeric):
            width = len(cells)  # a header row of names
            header = [cell.strip() for cell in cells]
            continue
        if not all(numeric):
            col = numeric.index(False)
            cell = cells[col].strip()
            hint = ""
            if any(d in cell for d in ";\t") or (delimiter != "," and "," in cell):
                hint = f" (read as {named}-separated; decimal commas are not supported)"
            where = position("csv", line, col + 1)
            raise DataError(f"{path}: {cell_problem(cell)} at {where}{hint}")
        rows.append([float(cell) for cell in cells])
        numbers.append(line)
        width = len(cells)
    if not rows:
        raise DataError(f"{path}: empty data: no numeric rows")
    x = np.array(rows)
    _check_finite(path, x, lambda row: position("csv", numbers[row]))
    return x, header


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of the ``.npy`` file at ``path``, read from its header alone.

    Raises:
      DataError: for a file that is not a valid ``.npy`` file.
      OSError: for a file that cannot be opened.
    """
    fmt = np.lib.format
    try:
        with path.open("rb") as f:
            major, _ = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
    except (ValueError, EOFError):
        raise DataError(f"{path}: cannot read file: not a valid .npy file") from None
    return shape, dtype


def _read_npy(path: Path) -> np.ndarray:
    # The header first: np.load would refuse an object array with a generic error.
    shape, dtype = read_npy_header(path)
    try:
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
    _check_finite(path, x, lambda row: position("npy", row + 1))
    return x


def _check_finite(path: Path, x: np.ndarray, where) -> None:
    """Refuses the first value of ``x`` that float32 cannot hold; ``where(row)`` (0-based)
    says where its row is in the file."""
    flat = x.reshape(len(x), -1)
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(flat.astype(np.float32))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        at = f"column {col + 1}" if x.ndim == 2 else f"flat index {col}"
        raise DataError(f"{path}: {value_problem(flat[row, col])} at {where(row)}, {at}")


def load_array(path: str | os.PathLike) -> np.ndarray:
    """Reads a user's ``.csv`` or ``.npy`` file as float32 ``[N, D]`` (or ``[N, H, W, C]``: npy);
    `load_table` also gives the column names.

    A CSV holds numbers separated by commas (or semicolons or tabs, as its first data line
    shows), one sample a row, with at most one header row of names; blank lines and lines
    starting with ``#`` are skipped. Messages say where a bad value is the same way everywhere
    (`position`): a CSV's line as an editor shows it (the header, blank and comment lines
    count), an ``.npy`` array's row, and the column, all counting from 1.

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
    return x.astype(np.float32), columns


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
