"""Streaming shard files with `tf.data`: interleaved reads, a shuffling buffer, prefetch, and
every value checked as it is read (the file and 1-based row of the first bad one).

`shard_dataset` is the public door: a glob of ``.npy``, ``.csv`` or ``.tfrecord`` shards (see
`tfp_realnvp.data.shards` for the formats) as a dataset of float32 ``[batch, D]`` batches, for
`FlowModel.fit`. A ``.npy`` shard is memory-mapped and read a block of rows at a time, a CSV
line by line (`tf.data.TextLineDataset`), a TFRecord record by record; nothing is loaded whole.

>>> import tempfile, numpy as np
>>> folder = Path(tempfile.mkdtemp())
>>> for i in range(3):
...     np.save(folder / f"part-{i}.npy", np.full((5, 2), i, np.float32))
>>> batches = shard_dataset(str(folder / "part-*.npy"), batch_size=4, seed=0)
>>> sum(len(b) for b in batches), batches.element_spec.shape.as_list()
(15, [None, 2])
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfp_realnvp.data.shards import KINDS, Shard, inspect_shard, list_shards
from tfp_realnvp.data.tables import (
    DataError,
    cell_problem,
    position,
    ragged_problem,
    value_problem,
)

__all__ = ["bad_row_message", "row_stream", "shard_dataset"]

_BLOCK_ROWS = 4096  # rows of a memory-mapped .npy shard read at once
_NUMBER = r"\s*[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|(?i:nan|inf|infinity))\s*"
_MARK = "tfp-realnvp bad row"  # brackets the message of a failed check in TF's error text


def shard_dataset(
    pattern: str,
    batch_size: int,
    seed: int | None = 0,
    shuffle_buffer: int = 10000,
    cycle_length: int = 4,
) -> tf.data.Dataset:
    """The rows of the shards ``pattern`` names (a file or a glob) as float32 batches.

    Shards are read ``cycle_length`` at a time, interleaved row by row, through a shuffling
    buffer of ``shuffle_buffer`` rows (``seed=None``: no shuffling; rows come interleaved, in
    the same order every time), then batched and prefetched. One pass over the data;
    ``.repeat()`` it for more. Its length is
    unknown to TensorFlow (`tf.data.experimental.UNKNOWN_CARDINALITY`), which `FlowModel.fit`
    takes as it comes: an epoch ends when the stream does.

    Raises:
      DataError: at once for a bad file list or header (`tfp_realnvp.data.shards.list_shards`);
        a bad value stops the iteration with ``tf.errors.InvalidArgumentError`` naming the file
        and row (`bad_row_message` extracts that line).
    """
    shards = [inspect_shard(p) for p in list_shards(pattern)]
    rows = row_stream(shards, order=None, cycle_length=cycle_length).map(lambda x, i, r: x)
    if seed is not None:
        rows = rows.shuffle(shuffle_buffer, seed=seed)
    return rows.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def row_stream(
    shards: Sequence[Shard],
    order: tf.Tensor | None = None,
    cycle_length: int = 4,
    width: int | None = None,
) -> tf.data.Dataset:
    """``(x, shard_index, row)`` for every row of ``shards`` (read in ``order``, a permutation
    of their indices; default as given), each checked: the right width, numbers, finite."""
    width = width or next((s.width for s in shards if s.width is not None), None)
    if width is None:  # TFRecords: the first record of the first shard sets the width
        width = tfrecord_width(shards[0].path)
    names = tf.constant([str(s.path) for s in shards])
    kind = shards[0].kind
    indices = tf.range(len(shards), dtype=tf.int64) if order is None else order

    def read(i):
        path = tf.gather(names, i)
        if kind == "npy":
            rows = _npy_rows(path, width)
        elif kind == "csv":
            header = tf.gather(tf.constant([s.header_line for s in shards], tf.int64), i)
            delimiter = tf.gather(tf.constant([s.delimiter for s in shards]), i)
            rows = _csv_rows(path, header, delimiter, width)
        else:
            rows = _tfrecord_rows(path, width)
        return rows.map(lambda x, row, problem: (_checked(x, path, row, problem), i, row))

    return tf.data.Dataset.from_tensor_slices(indices).interleave(
        read,
        cycle_length=max(1, min(cycle_length, len(shards))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


# A row's check, in the graph: a problem code and the numbers and text that describe it. The
# message itself is written in Python (`bad_row_message`), by the rules `load_table` uses.
_OK, _CELL, _RAGGED, _VALUE = 0, 1, 2, 3


def _problem(code, column, count, cell, delimiter=","):
    """A row's problem fields: code, 1-based column, cells or values counted, the bad cell,
    the CSV's delimiter."""
    return tf.cast(code, tf.int64), tf.cast(column, tf.int64), count, cell, delimiter


@tf.autograph.experimental.do_not_convert
def _npy_rows(path, width: int) -> tf.data.Dataset:
    def blocks(name):
        array = np.load(name.decode(), mmap_mode="r")
        for start in range(0, len(array), _BLOCK_ROWS):
            yield np.asarray(array[start : start + _BLOCK_ROWS], np.float64), start

    spec = (tf.TensorSpec([None, width], tf.float64), tf.TensorSpec([], tf.int64))
    stream = tf.data.Dataset.from_generator(blocks, output_signature=spec, args=(path,))

    def rows(block, start):
        numbers = tf.range(tf.shape(block, out_type=tf.int64)[0]) + start + 1
        return tf.data.Dataset.from_tensor_slices((block, numbers))

    fine = _problem(_OK, 0, tf.constant(width, tf.int64), "")
    return stream.flat_map(rows).map(lambda x, row: (x, row, fine))


def _csv_rows(path, header, delimiter, width: int) -> tf.data.Dataset:
    lines = tf.data.TextLineDataset(path).enumerate(start=1)

    def wanted(number, line):
        text = tf.strings.strip(line)
        return (number != header) & (tf.strings.length(text) > 0)

    def parse(number, line):
        line = tf.strings.regex_replace(line, "^\ufeff", "")
        cells = tf.strings.split(line, delimiter)
        count = tf.size(cells, out_type=tf.int64)
        numeric = tf.strings.regex_full_match(cells, _NUMBER)
        first_bad = tf.argmin(tf.cast(numeric, tf.int32), output_type=tf.int64)
        code = tf.where(tf.reduce_all(numeric), _OK, _CELL)
        code = tf.where(count != width, _RAGGED, code)
        problem = _problem(code, first_bad + 1, count, tf.gather(cells, first_bad), delimiter)
        safe = tf.where(numeric, cells, "0")
        x = tf.strings.to_number(safe, tf.float64)
        x = tf.pad(x, [[0, tf.maximum(tf.constant(0, tf.int64), width - count)]])[:width]
        return tf.ensure_shape(x, [width]), number, problem

    comment = lambda number, line: ~tf.strings.regex_full_match(line, r"\s*#.*")  # noqa: E731
    return lines.filter(wanted).filter(comment).map(parse)


def _tfrecord_rows(path, width: int | None) -> tf.data.Dataset:
    records = tf.data.TFRecordDataset(path).enumerate(start=1)

    def parse(number, record):
        x = tf.io.parse_single_example(record, {"x": tf.io.VarLenFeature(tf.float32)})["x"]
        x = tf.cast(tf.sparse.to_dense(x), tf.float64)
        count = tf.size(x, out_type=tf.int64)
        problem = _problem(tf.where(count != width, _RAGGED, _OK), 0, count, "")
        x = tf.pad(x, [[0, tf.maximum(tf.constant(0, tf.int64), width - count)]])[:width]
        return tf.ensure_shape(x, [width]), number, problem

    return records.map(parse)


def tfrecord_width(path: Path) -> int:
    """The length of feature ``"x"`` in the first record of the TFRecord file ``path``."""
    for record in tf.data.TFRecordDataset(str(path)).take(1):
        x = tf.io.parse_single_example(record, {"x": tf.io.VarLenFeature(tf.float32)})["x"]
        if (width := int(tf.size(x.values))) >= 2:
            return width
        raise DataError(f"{path}: record 1 has {width} values in feature 'x'; expected D >= 2")
    raise DataError(f"{path}: empty data: no records")


def _checked(x, path, row, problem):
    """``x`` as float32 once it passed: else an error whose text `bad_row_message` reads."""
    code, column, count, cell, delimiter = problem
    x32 = tf.cast(x, tf.float32)
    finite = tf.math.is_finite(x32)
    first = tf.argmin(tf.cast(finite, tf.int32), output_type=tf.int64)
    nonfinite = (code == _OK) & ~tf.reduce_all(finite)
    code = tf.where(nonfinite, tf.constant(_VALUE, tf.int64), code)
    column = tf.where(nonfinite, first + 1, column)
    value = tf.gather(x, first)
    # Base64 (web-safe) keeps the path and the cell's text, whatever they hold, from being
    # read as the fields' separators; %.17g keeps the float64 value exact.
    fields = [
        tf.strings.as_string(code),
        tf.strings.as_string(row),
        tf.strings.as_string(column),
        tf.strings.as_string(count),
        tf.strings.as_string(tf.size(x, out_type=tf.int64)),
        tf.strings.as_string(value, precision=17, scientific=True),
        tf.io.encode_base64(path),
        tf.io.encode_base64(cell),
        tf.io.encode_base64(delimiter),
    ]
    message = tf.strings.join([_MARK, "<", tf.strings.join(fields, " "), ">"])
    ok = code == _OK
    with tf.control_dependencies([tf.debugging.Assert(ok, [message], summarize=1)]):
        return tf.identity(x32)


def _decoded(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8", "replace")


def bad_row_message(error: Exception) -> str | None:
    """The one line ``file: problem at line L, column C`` of a failed row check in
    ``error``, written as `tfp_realnvp.data.tables` writes it for a whole file; or None."""
    # Any field may be empty (an empty cell's text; a TFRecord row has none), so \S*.
    found = re.search(re.escape(_MARK) + r"<((?:\S* ){8}\S*)>", str(error))
    if found is None:
        return None
    code, row, column, count, width, value, path, cell, delimiter = found.group(1).split(" ")
    code, row, column, count, width = (int(v) for v in (code, row, column, count, width))
    path, cell, delimiter = _decoded(path), _decoded(cell), _decoded(delimiter)
    kind = KINDS[Path(path).suffix.lower()]
    if int(code) == _RAGGED:
        return f"{path}: {ragged_problem(kind, row, count, width, delimiter)}"
    problem = cell_problem(cell) if code == _CELL else value_problem(float(value))
    return f"{path}: {problem} at {position(kind, row, column)}"


def raise_bad_rows(error: Exception) -> None:
    """Re-raises a failed row check as `DataError` with its one line (else does nothing)."""
    if (message := bad_row_message(error)) is not None:
        raise DataError(message) from None
