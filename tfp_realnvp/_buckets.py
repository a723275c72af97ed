"""Batch-size buckets: compiled functions see a bounded set of shapes.

XLA compiles a function anew for every input shape, even when `tf.function` traces it once:
calling a compiled ``log_prob`` on batches of 1, 7, 1000 and 100000 points would compile four
times (0.3-2 s each). `run_bucketed` pads each batch to the next *bucket* (powers of two and
their midpoints, ``16, 24, 32, 48, ..., 12288, 16384``), cuts larger batches into chunks of
`MAX_BUCKET`, and slices the results: at most ``len(BUCKETS)`` (21) compilations for any mix of
sizes, at most a third of the work wasted on padding.

Padding repeats the batch's last row, so padded rows stay in the flow's domain (no NaN, no
failing check), and every row is computed independently of the others.

>>> bucket(1), bucket(17), bucket(1000), bucket(16384)
(16, 24, 1024, 16384)
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

__all__ = ["BUCKETS", "MAX_BUCKET", "bucket", "run_bucketed"]

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
            index = tf.minimum(tf.range(start, start + size), start + rows - 1)
            chunk = [tf.gather(a, index) for a in args]
        out = fn(*chunk)
        outputs.append(out if size == rows else out[:rows])
    return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=0)
