"""Batch shapes for XLA: compiled functions see a bounded set of shapes.

XLA compiles a function anew for every input shape, even when `tf.function` traces it once:
calling a compiled ``log_prob`` on batches of 1, 7, 1000 and 100000 points would compile four
times (0.3-2 s each). `run_bucketed` pads each batch to the next *bucket* (powers of two and
their midpoints, ``16, 24, 32, 48, ..., 12288, 16384``), cuts larger batches into chunks of
`MAX_BUCKET`, and slices the results: at most ``len(BUCKETS)`` (21) compilations for any mix of
sizes, at most a third of the work wasted on padding.

Padding repeats the batch's last row, so padded rows stay in the flow's domain (no NaN, no
failing check), and every row is computed independently of the others.

Training has one shape to offer: `filled_up` fills an epoch's short last batch up to the batch
size the same way, with weight 0 on the rows it repeats, and `padded_batches` batches arrays
into such batches. ``fit`` then compiles its step once, not once for the full batches and again
for the last one (``benchmarks/first_epoch.py`` measures what that saves).

>>> bucket(1), bucket(17), bucket(1000), bucket(16384)
(16, 24, 1024, 16384)
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

__all__ = [
    "BUCKETS",
    "MAX_BUCKET",
    "bucket",
    "filled_up",
    "fills_up_batches",
    "padded_batches",
    "run_bucketed",
]

MIN_BUCKET, MAX_BUCKET = 16, 16384


def _buckets() -> tuple[int, ...]:
    sizes, power = [], MIN_BUCKET
    while power <= MAX_BUCKET:
        sizes += [power, power * 3 // 2]
        power *= 2
    return tuple(s for s in sizes if s <= MAX_BUCKET)


BUCKETS = _buckets()


def bucket(n: int) -> int:
    """The smallest bucket holding ``n`` rows (``n`` at most `MAX_BUCKET`)."""
    return next(b for b in BUCKETS if b >= n)


def _last_row_repeated(start: int, rows: int, size: int) -> tf.Tensor:
    """Indices ``start .. start + rows - 1``, then the last of them until ``size`` indices."""
    return tf.minimum(tf.range(start, start + size), start + rows - 1)


def run_bucketed(fn: Callable, args: list[tf.Tensor]) -> tf.Tensor:
    """``fn(*args)`` for ``args`` of equal leading size ``N >= 1``, where ``fn`` maps rows to
    rows, called only on bucket-sized batches."""
    n = int(args[0].shape[0])
    outputs = []
    for start in range(0, n, MAX_BUCKET):
        rows = min(MAX_BUCKET, n - start)
        size = bucket(rows)
        if size == rows:
            chunk = [a[start : start + rows] if rows < n else a for a in args]
        else:  # pad by repeating the last row
            index = _last_row_repeated(start, rows, size)
            chunk = [tf.gather(a, index) for a in args]
        out = fn(*chunk)
        outputs.append(out if size == rows else out[:rows])
    return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=0)


def fills_up_batches(jit_compile: bool, strategy: tf.distribute.Strategy) -> bool:
    """Whether training batches are filled up to one shape: where XLA compiles the steps, on
    one replica (a replicated step runs without XLA on CPU, where shapes cost nothing)."""
    return bool(jit_compile) and strategy.num_replicas_in_sync == 1


def filled_up(batch, size: int) -> dict[str, tf.Tensor]:
    """A batch of 1 to ``size`` rows (``x``, ``(x, context)``, or a dict of ``"x"``, optionally
    ``"context"`` and ``"weight"``) as ``{"x", "context", "weight"}`` of exactly ``size`` rows,
    the shape a compiled step is traced for: the last row is repeated with weight 0, the
    batch's own rows keep weight 1 (or their ``"weight"``, as float32).

    >>> b = filled_up(tf.constant([[1.0], [2.0]]), 3)
    >>> b["x"][:, 0].numpy().tolist(), b["weight"].numpy().tolist()
    ([1.0, 2.0, 2.0], [1.0, 1.0, 0.0])
    """
    if isinstance(batch, tuple):
        batch = {"x": batch[0], "context": batch[1]}
    elif not isinstance(batch, dict):
        batch = {"x": batch}
    rows = tf.shape(batch["x"])[0]
    return _weighted(_gathered(batch, _last_row_repeated(0, rows, size)), rows, size)


def _gathered(columns: dict[str, tf.Tensor], index: tf.Tensor) -> dict[str, tf.Tensor]:
    return {name: tf.gather(a, index) for name, a in columns.items()}


def _weighted(batch: dict[str, tf.Tensor], rows, size: int) -> dict[str, tf.Tensor]:
    """``batch`` of ``size`` rows, its first ``rows`` real: weight 0 on the others (times the
    batch's own ``"weight"``, as float32, where it has one)."""
    real = tf.cast(tf.range(size) < rows, tf.float32)
    weight = batch.get("weight")
    batch["weight"] = real if weight is None else real * tf.cast(weight, tf.float32)
    return batch


def padded_batches(
    columns: dict[str, tf.Tensor], batch_size: int, shuffle: bool = False
) -> tf.data.Dataset:
    """The rows of ``columns`` (arrays of equal leading size ``N >= 1``, by name: ``"x"``,
    optionally ``"context"`` and ``"weight"``) in batches of one size, ``min(batch_size, N)``,
    as `filled_up` makes them: an epoch's short last batch is filled up with weight-0 rows.
    With ``shuffle`` the rows come in a new order on every pass over the dataset (under a
    global seed, the same orders in every run).

    >>> batches = padded_batches({"x": tf.range(5.0)[:, None]}, batch_size=2)
    >>> [(b["x"][:, 0].numpy().tolist(), b["weight"].numpy().tolist()) for b in batches]
    [([0.0, 1.0], [1.0, 1.0]), ([2.0, 3.0], [1.0, 1.0]), ([4.0, 4.0], [1.0, 0.0])]
    """
    tensors = {name: tf.convert_to_tensor(a) for name, a in columns.items()}
    n = int(tensors["x"].shape[0])
    size = min(int(batch_size), n)
    order = tf.data.Dataset.range(n)
    if shuffle:
        order = order.shuffle(n, reshuffle_each_iteration=True)

    def gather(index, data):  # the index is filled up, so the rows are gathered once
        rows = tf.shape(index)[0]
        whole = tf.gather(index, _last_row_repeated(0, rows, size))
        return _weighted(_gathered(data, whole), rows, size)

    # The arrays enter as one dataset element, not as constants of the map's graph (which
    # would copy them into the graph and fail past 2 GB).
    arrays = tf.data.Dataset.from_tensors(tensors).repeat()
    batches = tf.data.Dataset.zip((order.batch(size), arrays))
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
