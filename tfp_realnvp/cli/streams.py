"""Training batches as a pure function of ``(seed, epoch)``: resumable, and alike on every worker.

`epoch_batches` streams the epochs ``first_epoch .. epochs-1`` as one dataset, each epoch a
permutation of the rows drawn by a stateless op keyed by ``(seed, epoch)``, with uniform noise
on chosen columns keyed by ``(seed, epoch, batch)``. A run resumed at epoch ``k`` therefore sees
the very batches the uninterrupted run saw from epoch ``k`` on (a ``shuffle`` with
``reshuffle_each_iteration`` keeps its order in the process, which a restart loses), and every
worker of a multi-worker run builds the same stream, of which `tf.distribute` gives each replica
its share of every global batch (auto-sharding by data).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

__all__ = ["epoch_batches", "for_workers"]


def epoch_batches(
    x: np.ndarray,
    batch_size: int,
    seed: int,
    epochs: int,
    first_epoch: int = 0,
    noise_mask: np.ndarray | None = None,
) -> tuple[tf.data.Dataset, int]:
    """The batches of epochs ``first_epoch .. epochs-1`` of ``x`` and the steps per epoch.

    Args:
      x: the training rows (any event shape).
      batch_size: the global batch size; an epoch's last batch holds the remainder.
      seed: the run's seed.
      epochs: the run's number of epochs.
      first_epoch: the first epoch to stream (the epochs a backup already holds are skipped).
      noise_mask: 1 where a value gets fresh Uniform[-0.5, 0.5) noise in every batch, over one
        example's shape; ``None`` for none.

    Returns:
      ``(dataset, steps_per_epoch)``, to pass as ``fit(dataset, steps_per_epoch=steps,
      initial_epoch=first_epoch, epochs=epochs)``.
    """
    n = len(x)
    rows = tf.constant(x)
    mask = None if noise_mask is None else tf.constant(noise_mask, rows.dtype)
    base = tf.constant(seed, tf.int64)

    def one_epoch(epoch):
        key = tf.stack([base, epoch])
        order = tf.argsort(tf.random.stateless_uniform([n], seed=key))
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()

        def gather(i, index):
            batch = tf.gather(rows, index)
            if mask is None:
                return batch
            noise_key = tf.random.experimental.stateless_fold_in(key, i)
            return batch + mask * (tf.random.stateless_uniform(tf.shape(batch), noise_key) - 0.5)

        return batches.map(gather)

    stream = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return for_workers(stream).prefetch(tf.data.AUTOTUNE), math.ceil(n / batch_size)


def for_workers(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` sharded by data under a multi-worker strategy: every worker builds the same
    global batches and keeps its replicas' share of each."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
