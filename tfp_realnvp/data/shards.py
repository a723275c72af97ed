"""Data bigger than memory, before TensorFlow starts: which shard files a run reads, and the
cheap checks on each (type, header, width), in numpy and the standard library.

A shard set is a file or a glob (``data/part-*.npy``) of one kind:

- ``.npy``: a 2-D ``[N, D]`` numeric array; its header is read here, its rows later through a
  memory map, a block at a time;
- ``.csv``: numbers separated by commas (or semicolons or tabs, as the first data line shows),
  at most one header row of names, blank and ``#`` lines skipped; read line by line (plain cells:
  no quoting);
- ``.tfrecord``: one ``tf.train.Example`` per row with a ``float_list`` feature ``"x"`` of
  length D. Its width is checked as the records are read.

Values (non-numeric cells, NaN, inf, a row of the wrong width) are checked as
`tfp_realnvp.data.streaming` reads the rows, naming the file and the 1-based row (a CSV's line,
as an editor shows it; an npy's or TFRecord's row or record). Without ``--validation-data`` /
``--test-data``, whole shards are held out: `held_out` picks them by a permutation of the
sorted shard list drawn from the seed.

>>> sorted(p.name for p in held_out([Path(f"s{i}.npy") for i in range(10)], 0.2, seed=0)[1])
['s4.npy', 's6.npy']
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfp_realnvp.data.tables import DataError, csv_delimiter, is_number, read_npy_header

__all__ = ["KINDS", "Shard", "ShardPlan", "held_out", "is_pattern", "list_shards", "plan_shards"]

KINDS = {".npy": "npy", ".csv": "csv", ".tfrecord": "tfrecord", ".tfrecords": "tfrecord"}


@dataclass(frozen=True)
class Shard:
    """One shard file: its kind, its width D (``None``: a TFRecord, checked as read), the
    1-based line of a CSV's header row (0: none) and its delimiter."""

    path: Path
    kind: str
    width: int | None
    header_line: int = 0
    delimiter: str = ","


@dataclass(frozen=True)
class ShardPlan:
    """The shards of a run's training, validation and test sets, and their common width."""

    train: tuple[Shard, ...]
    validation: tuple[Shard, ...]
    test: tuple[Shard, ...]
    width: int | None

    def paths(self) -> list[Path]:
        return [s.path for s in (*self.train, *self.validation, *self.test)]


def is_pattern(spec: str) -> bool:
    """Whether ``spec`` is a glob or a TFRecord file: data the trainer streams."""
    return any(c in spec for c in "*?[") or Path(spec).suffix.lower() in (".tfrecord", ".tfrecords")


def list_shards(spec: str, arg: str = "--data") -> list[Path]:
    """The files ``spec`` names (a file or a glob), sorted; refuses none, directories, mixed or
    unsupported types."""
    paths = [Path(p) for p in sorted(glob.glob(spec))] if any(c in spec for c in "*?[") else []
    if not paths:
        if any(c in spec for c in "*?[") or not Path(spec).exists():
            raise DataError(f"{arg} {spec}: no such file" + (" matches" if "*" in spec else ""))
        paths = [Path(spec)]
    kinds = set()
    for p in paths:
        if p.is_dir():
            raise DataError(f"{arg} {spec}: {p} is a directory; expected shard files")
        if p.suffix.lower() not in KINDS:
            raise DataError(
                f"{arg} {spec}: {p} has unsupported type {p.suffix or '(none)'!r}; expected "
                ".npy, .csv or .tfrecord"
            )
        kinds.add(KINDS[p.suffix.lower()])
    if len(kinds) > 1:
        raise DataError(f"{arg} {spec}: mixes {' and '.join(sorted(kinds))} files; use one kind")
    return paths


def inspect_shard(path: Path) -> Shard:
    """The header of ``path``: type and width, without reading its rows."""
    kind = KINDS[path.suffix.lower()]
    try:
        if kind == "npy":
            return Shard(path, kind, _npy_width(path))
        if kind == "csv":
            return _csv_shard(path)
        if path.stat().st_size < 16:  # a TFRecord's first record has 16 bytes of framing
            raise DataError(f"{path}: empty data: no records")
        return Shard(path, kind, None)
    except OSError as e:
        raise DataError(f"{path}: cannot read file: {e.strerror or e}") from None


def _npy_width(path: Path) -> int:
    shape, dtype = read_npy_header(path)
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise DataError(f"{path}: unsupported dtype {dtype}; expected real numbers")
    if len(shape) != 2:
        raise DataError(
            f"{path}: expected a 2-D [N, D] array, got {len(shape)}-D with shape {shape} "
            "(shards hold vectors)"
        )
    if shape[0] == 0:
        raise DataError(f"{path}: empty data: array of shape {shape}")
    return int(shape[1])


def _csv_shard(path: Path) -> Shard:
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            delimiter = csv_delimiter([line])
            cells = line.rstrip("\r\n").split(delimiter)
            header = not any(is_number(c) for c in cells)
            return Shard(path, "csv", len(cells), number if header else 0, delimiter)
    raise DataError(f"{path}: empty data: no numeric rows")


def held_out(paths: list[Path], fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """``(rest, held)``: ``max(1, round(len(paths) * fraction))`` whole shards held out, chosen
    by a permutation of ``paths`` drawn from ``seed``; both keep the given order."""
    count = max(1, round(len(paths) * fraction))
    chosen = set(np.random.default_rng(seed).permutation(len(paths))[:count].tolist())
    return (
        [p for i, p in enumerate(paths) if i not in chosen],
        [p for i, p in enumerate(paths) if i in chosen],
    )


def _first_shared(paths: list[Path], others: list[Path]) -> Path | None:
    """The first of ``paths`` that names the same file as one of ``others``, if any."""
    resolved = {p.resolve() for p in others}
    return next((p for p in paths if p.resolve() in resolved), None)


def _refuse_shared_shards(
    data: str, train: list[Path], sets: dict[str, list[Path]], specs: dict[str, str | None]
) -> None:
    """Refuses a file named both as a training shard and as a validation or test shard (its
    rows would be trained on, then scored as held out), or as both a validation and a test
    shard (the validation NLL picks the epoch kept, so a test NLL on the same rows is biased
    low)."""
    for arg, paths in sets.items():
        if (both := _first_shared(paths, train)) is not None:
            raise DataError(
                f"{arg} {specs[arg]}: {both} is a training shard too (--data {data}); a "
                f"held-out set must not be trained on: give --data a pattern without it, or "
                f"leave out {arg} to hold whole shards of --data out"
            )
    if (both := _first_shared(sets["--test-data"], sets["--validation-data"])) is not None:
        raise DataError(
            f"--test-data {specs['--test-data']}: {both} is a validation shard too "
            f"(--validation-data {specs['--validation-data']}); the validation NLL picks the "
            "epoch kept, so a test NLL on the same rows reads too well: give --test-data files "
            "of their own, or leave it out to hold whole shards of --data out"
        )


def plan_shards(
    data: str,
    validation: str | None,
    test: str | None,
    validation_split: float,
    test_split: float,
    seed: int,
) -> ShardPlan:
    """The run's shards, their headers checked: validation and test sets from their own files,
    or whole shards of ``data`` held out (validation first, then test, seeds ``seed`` and
    ``seed + 1``).

    Raises:
      DataError: naming the argument or file: no match, unsupported or mixed types, a bad
        header, differing widths, fewer than 2 columns, too few shards to hold out, a
        validation or test shard that is a training shard too, or a test shard that is a
        validation shard too.
    """
    train = list_shards(data)
    sets = {}
    for arg, spec, fraction, offset in (
        ("--validation-data", validation, validation_split, 0),
        ("--test-data", test, test_split, 1),
    ):
        if spec is not None:
            sets[arg] = list_shards(spec, arg)
            continue
        if len(train) < 2:
            raise DataError(
                f"--data {data}: {len(train)} shard left to hold out {arg[2:]} from; give "
                f"{arg} or more shards (whole shards are held out)"
            )
        train, sets[arg] = held_out(train, fraction, seed + offset)
    _refuse_shared_shards(data, train, sets, {"--validation-data": validation, "--test-data": test})
    shards = {
        name: tuple(inspect_shard(p) for p in paths)
        for name, paths in (("--data", train), *sets.items())
    }
    widths = {s.width for group in shards.values() for s in group} - {None}
    if len(widths) > 1:
        first = next(s for g in shards.values() for s in g if s.width is not None)
        odd = next(s for g in shards.values() for s in g if s.width not in (None, first.width))
        raise DataError(
            f"{odd.path}: {odd.width} columns, but {first.path} has {first.width}; every shard "
            "must have the same width"
        )
    width = widths.pop() if widths else None
    if width is not None and width < 2:
        raise DataError(f"{data}: one column: RealNVP couplings split the dimensions in two")
    return ShardPlan(shards["--data"], shards["--validation-data"], shards["--test-data"], width)


def default_name(spec: str) -> str:
    """A run directory's name for ``spec``: the file's stem, or a glob's folder."""
    if is_pattern(spec) and any(c in spec for c in "*?["):
        parent = Path(spec).parent
        return parent.name if parent.name else "shards"
    return Path(spec).stem


def steps(rows: int, batch_size: int) -> int:
    return math.ceil(rows / batch_size)
