r"""Tables from the user's files, read by one set of rules: ``.csv`` and ``.npy``.

A CSV holds numbers separated by commas (or semicolons or tabs, as its first data line shows),
one sample a row, with at most one header row of names; blank lines and lines starting with
``#`` are skipped. A ``.npy`` file holds a 2-D ``[N, D]`` or 4-D ``[N, H, W, C]`` real array.
Every problem raises `DataError`, a ``ValueError`` with a one-line message that names the file
and the problem, so the command line can print it instead of a traceback. numpy only: the
command line reads and checks its inputs before TensorFlow starts.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_text("width,mass\n1,2\n3,4\n")
>>> table = load_table(path)
>>> table.values.shape, table.columns, table.where(1)
((2, 2), ['width', 'mass'], 'line 3')
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "Table",
    "describe_columns",
    "cell_problem",
    "csv_delimiter",
    "file_type",
    "index_column",
    "is_number",
    "load_array",
    "load_table",
    "match_columns",
    "position",
    "ragged_problem",
    "read_npy_header",
    "value_problem",
    "without_first_column",
]


class DataError(ValueError):
    """Bad data: an unknown dataset name or a file that cannot be used, with a one-line reason."""


@dataclass(frozen=True)
class Table:
    """A table as read: its values, its columns' names (``None``: no header row) and each
    row's line in its file (``None``: the rows are an array's own, counted from 1)."""

    values: np.ndarray
    columns: list[str] | None = None
    lines: np.ndarray | None = None

    def where(self, row: int) -> str:
        """Where the 0-based ``row`` is in the file: ``'line 7'`` (CSV) or ``'row 3'``."""
        if self.lines is None:
            return position("npy", row + 1)
        return position("csv", int(self.lines[row]))

    def describe(self, columns: Sequence[int]) -> str:
        """0-based ``columns`` as messages name them: ``'columns 5 (magnesium), 13 (proline)'``,
        or with runs shortened when there are no names: ``'columns 1-3, 6'``."""
        return describe_columns(columns, self.columns)


def index_column(table: Table) -> bool:
    """Whether the first column of ``table`` numbers or names its rows rather than holding a
    feature: R's ``write.csv`` and pandas' ``to_csv`` write one, under an empty name (``""``,
    or ``Unnamed: 0`` once pandas reads and writes it again); or, whatever its name, it holds
    the whole numbers 1..N (or 0..N-1) in order.

    >>> index_column(Table(np.array([[1.0, 0.3], [2.0, 0.1], [3.0, 0.7]])))
    True
    """
    x = table.values
    if x.ndim != 2 or x.shape[1] < 2 or len(x) < 3:
        return False
    if table.columns is not None and table.columns[0] in ("", "Unnamed: 0"):
        return True
    n = len(x)
    return bool(
        np.array_equal(x[:, 0], np.arange(1, n + 1)) or np.array_equal(x[:, 0], np.arange(n))
    )


def without_first_column(table: Table) -> Table:
    """``table`` less its first column (and that column's name)."""
    columns = None if table.columns is None else table.columns[1:]
    return Table(table.values[:, 1:], columns, table.lines)


def describe_columns(columns: Sequence[int], names: Sequence[str] | None = None) -> str:
    """1-based column numbers, with their names when known, else with runs shortened:
    ``(0, 1, 2, 5)`` -> ``'columns 1-3, 6'``; with names ``'columns 1 (a), 2 (b), ...'``.

    >>> describe_columns([4, 12], ["x"] * 4 + ["magnesium"] + ["y"] * 7 + ["proline"])
    'columns 5 (magnesium), 13 (proline)'
    """
    word = "column " if len(columns) == 1 else "columns "
    if names is not None:
        return word + ", ".join(f"{c + 1} ({names[c] or 'unnamed'})" for c in columns)
    runs: list[list[int]] = []
    for c in columns:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return word + ", ".join(f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in runs)


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


def _read_text(path: Path) -> str:
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8-sig") as f:
            return f.read()
    return path.read_text(encoding="utf-8-sig")


def _read_csv(path: Path) -> Table:
    lines = _read_text(path).splitlines()
    delimiter = csv_delimiter(lines)
    named = _SEPARATORS[delimiter]
    rows: list[list[float]] = []
    numbers: list[int] = []  # each row's line
    width = None
    header = None
    trailing = None
    for line, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        # 1-based line numbers, as an editor shows them (quoted newlines are not numbers)
        if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue  # blank lines and '# comment' lines
        if width is not None and len(cells) != width:
            raise DataError(f"{path}: {ragged_problem('csv', line, len(cells), width, delimiter)}")
        if trailing is None:  # the first row (a header, or data) ends in an empty cell
            trailing = len(cells) > 1 and not cells[-1].strip()
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
            elif not cell and col == len(cells) - 1 and trailing:
                hint = f" (the lines end with a {named}: remove the trailing separator)"
            where = position("csv", line, col + 1)
            raise DataError(f"{path}: {cell_problem(cell)} at {where}{hint}")
        rows.append([float(cell) for cell in cells])
        numbers.append(line)
        width = len(cells)
    if not rows:
        raise DataError(f"{path}: empty data: no numeric rows")
    table = Table(np.array(rows), header, np.array(numbers))
    _check_finite(path, table)
    return table


def file_type(path: Path) -> str:
    """``path``'s type as its name says, lower case: ``'.csv'``, ``'.csv.gz'``, ``'.npy'``..."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) > 1 and suffixes[-1] in (".gz", ".bz2", ".xz", ".zip"):
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ""


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
    _check_finite(path, Table(x))
    return x


def _check_finite(path: Path, table: Table) -> None:
    """Refuses the first value of ``table`` that float32 cannot hold."""
    x = table.values
    flat = x.reshape(len(x), -1)
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(flat.astype(np.float32))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        at = f"column {col + 1}" if x.ndim == 2 else f"flat index {col}"
        raise DataError(f"{path}: {value_problem(flat[row, col])} at {table.where(row)}, {at}")


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
    return load_table(path).values


def load_table(path: str | os.PathLike) -> Table:
    """`load_array`'s array as a `Table`: with the names in a CSV's header row (``None``: no
    header row, or a ``.npy`` file) and each row's line in the file.

    Raises:
      DataError: as `load_array`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path} is a directory; expected a .csv or .npy file")
    suffix = file_type(path)
    if suffix not in (".csv", ".csv.gz", ".npy"):
        hint = ""
        if suffix.endswith((".gz", ".bz2", ".xz", ".zip")):
            hint = " (of compressed files, .csv.gz is read as it is; decompress the others)"
        elif suffix in (".tfrecord", ".tfrecords"):
            hint = " (TFRecord files are streamed as shards by `train --data`, not read whole)"
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; expected .csv, .csv.gz or "
            f".npy{hint}"
        )
    try:
        table = Table(_read_npy(path)) if suffix == ".npy" else _read_csv(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: cannot read file: not UTF-8 text") from None
    except (gzip.BadGzipFile, EOFError):
        raise DataError(f"{path}: cannot read file: not a complete gzip file") from None
    except csv.Error as e:
        raise DataError(f"{path}: cannot read file: not a valid CSV ({e})") from None
    return Table(table.values.astype(np.float32), table.columns, table.lines)


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
