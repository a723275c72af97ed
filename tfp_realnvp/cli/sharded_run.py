"""One training run on shard files (`tfp_realnvp.data.shards`): the rows stream, never loaded whole.

The run matches `tfp_realnvp.cli.run.train_run` on an array of the same rows: the same
standardised flow, callbacks, backup and metrics (NLL per example, averaged over all rows of
each set), but its sets are files: training shards, and validation and test shards given or held
out whole. First one checking pass reads every set (counts, per-column moments in float64,
whole-number columns, every value checked), so a bad row stops the run before training; then
each epoch streams the training shards in an order drawn from ``(seed, epoch)``, interleaved,
and shuffled within windows of `SHUFFLE_ROWS` rows by permutations keyed by ``(seed, epoch,
window)`` (tf.data's ``shuffle`` takes no seed computed in the stream): the batches are a pure
function of ``(seed, epoch)``, so resuming is exact, as with arrays (`tfp_realnvp.cli.streams`).
Vectors only (``[N, D]`` shards).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfp_realnvp._keras import keras
from tfp_realnvp.cli.parser import print_note
from tfp_realnvp.cli.run import (
    TrainConfig,
    fit_flow,
    gaussian_nlls,
    jitter_mask,
    model_record,
    one_shape,
    publish_model,
    run_metrics,
    standardized_by,
)
from tfp_realnvp.cli.screening import SMALL_DATA_NOTE, small_data_dropout
from tfp_realnvp.cli.streams import for_workers
from tfp_realnvp.data import DataError
from tfp_realnvp.data.shards import ShardPlan
from tfp_realnvp.data.streaming import raise_bad_rows, row_stream, tfrecord_width
from tfp_realnvp.data.tables import describe_columns
from tfp_realnvp.model import FlowModel

__all__ = ["SHUFFLE_ROWS", "train_sharded_run", "training_batches"]

SHUFFLE_ROWS = 10000  # rows of the training stream shuffled together
_PASS_ROWS = 8192  # rows per batch of the checking and scoring passes
_VALIDATION_BATCH = 32  # Keras' batch for validation arrays: val_loss then matches train_run's


def train_sharded_run(
    plan: ShardPlan,
    config: TrainConfig,
    out: Path,
    backup: Path | None = None,
    resume_from: int = 0,
    strategy: tf.distribute.Strategy | None = None,
    dequantize: bool = True,
) -> dict:
    """Trains on the shards of ``plan`` as ``config`` says and writes into ``out`` what
    `tfp_realnvp.cli.run.train_run` writes. Whole-number columns are found by the checking pass
    (and dequantised unless ``dequantize`` is false); ``config.dequantize_columns`` is ignored.

    Raises:
      DataError: naming the file and row of the first bad value (wrong width, non-numeric,
        NaN or inf), a constant column, or fewer than 10 training rows.
    """
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    try:
        return _run(plan, config, out, backup, resume_from, strategy, dequantize)
    except tf.errors.InvalidArgumentError as error:
        raise_bad_rows(error)
        raise


def _run(plan, config, out, backup, resume_from, strategy, dequantize):
    width = plan.width or tfrecord_width(plan.train[0].path)
    sets = {"train": plan.train, "validation": plan.validation, "test": plan.test}
    seen = {k: _moments(v, width, products=k == "train") for k, v in sets.items()}
    n, mean, var, whole, second = seen["train"]
    if n < 10:
        raise DataError(f"{plan.train[0].path}: {n} training rows; training needs at least 10")
    columns = tuple(int(c) for c in np.flatnonzero(whole)) if dequantize else ()
    constant = (var == 0) & ~np.isin(np.arange(width), columns)
    if constant.any():
        one = constant.sum() == 1
        raise DataError(
            f"{plan.train[0].path}: {describe_columns(list(np.flatnonzero(constant)))} of the "
            f"training shards {'is' if one else 'are'} constant: a constant has no density; "
            f"drop {'it' if one else 'them'}"
        )
    config = replace(config, dequantize_columns=columns)
    if config.dropout is None:  # the small-data default, now that the rows are counted
        config = replace(config, dropout=small_data_dropout(n))
        if config.dropout:
            print_note(SMALL_DATA_NOTE)
    mask = jitter_mask(width, columns)
    var = var + mask / 12.0  # the fixed noise of the scored rows, Uniform[-0.5, 0.5)
    with strategy.scope():
        model = FlowModel(standardized_by(mean, np.sqrt(var), config), base=config.base)
    scored = {k: _scored(v, width, mask, config.seed + i) for i, (k, v) in enumerate(sets.items())}
    validation = scored["validation"].unbatch().batch(_VALIDATION_BATCH)
    # Its length is known from the checking pass; said, Keras need not run into its end.
    count = math.ceil(seen["validation"][0] / _VALIDATION_BATCH)
    validation = validation.apply(tf.data.experimental.assert_cardinality(count))
    validation = one_shape(validation, _VALIDATION_BATCH, config, strategy)
    fit_data = training_batches(plan, width, config, resume_from, mask)
    steps = math.ceil(n / config.batch_size)
    history, best = fit_flow(
        model, fit_data, steps, validation, config, backup, resume_from, strategy
    )
    # The closed-form reference, as train_run's: the Gaussian of the scored training rows (their
    # noise, independent of the rows, adds its variance to the covariance's diagonal), scored
    # in the same pass over the test rows as the flow.
    cov = (second - np.outer(mean, mean)) * n / (n - 1) + np.diag(mask / 12.0)
    log_probs, gaussian = {}, []
    for name, stream in scored.items():
        parts = []
        for x in stream:
            parts.append(model.log_prob(x).numpy())
            if name == "test":
                gaussian.append(gaussian_nlls(x.numpy() - mean, cov))
        log_probs[name] = np.concatenate(parts)
    sizes = {k: v[0] for k, v in seen.items()}
    metrics = run_metrics(config, (width,), log_probs, sizes, history, best)
    metrics["test_nll_gaussian"] = float(np.mean(np.concatenate(gaussian)))
    metrics["shards"] = {k: [str(s.path) for s in v] for k, v in sets.items()}
    metrics["model"] = model_record(config, None, None)
    test = np.concatenate([x.numpy() for x in scored["test"].unbatch().batch(2000).take(1)])
    publish_model(model, history, test, (width,), False, out, config.seed)
    return metrics


def _moments(shards, width: int, products: bool = False):
    """Rows, per-column mean and variance, which columns hold whole numbers, and with
    ``products`` the mean of the rows' outer products ``x x^T`` (else None), in float64: one
    pass in file order, which checks every value."""
    count, total, squares = 0, np.zeros(width), np.zeros(width)
    whole, outer = np.ones(width, bool), np.zeros((width, width)) if products else None
    for x in row_stream(shards, width=width).map(lambda x, i, r: x).batch(_PASS_ROWS):
        x = x.numpy().astype(np.float64)
        count, total, squares = count + len(x), total + x.sum(0), squares + (x * x).sum(0)
        whole &= np.all(x == np.round(x), axis=0)
        if products:  # width^2 work a row: for the training rows' Gaussian only
            outer += x.T @ x
    mean = total / count
    second = outer / count if products else None
    return count, mean, np.maximum(squares / count - mean * mean, 0.0), whole, second


def _scored(shards, width: int, mask: np.ndarray, seed: int) -> tf.data.Dataset:
    """The rows in file order, batched, with one fixed draw of noise on ``mask``'s columns."""
    rows = row_stream(shards, width=width, cycle_length=1).map(lambda x, i, r: x)
    return _noisy(rows.batch(_PASS_ROWS), tf.constant([seed, 0], tf.int64), mask)


def _noisy(batches: tf.data.Dataset, key, mask: np.ndarray) -> tf.data.Dataset:
    """Uniform[-0.5, 0.5) noise on ``mask``'s columns, keyed by ``key`` and the batch's index."""
    if not mask.any():
        return batches
    mask = tf.constant(mask)

    def add(i, batch):
        noise_key = tf.random.experimental.stateless_fold_in(key, i)
        return batch + mask * (tf.random.stateless_uniform(tf.shape(batch), noise_key) - 0.5)

    return batches.enumerate().map(add)


def training_batches(
    plan: ShardPlan, width: int, config: TrainConfig, first_epoch: int, mask: np.ndarray
) -> tf.data.Dataset:
    """Epochs ``first_epoch .. epochs-1`` of training batches (of ``config.batch_size`` rows,
    noise added on ``mask``'s columns), each a function of ``(config.seed, epoch)`` alone: a
    run resumed at an epoch sees the batches the uninterrupted run saw from it."""
    base = tf.constant(config.seed, tf.int64)
    count = len(plan.train)

    def one_epoch(epoch):
        key = tf.stack([base, epoch])
        order = tf.argsort(tf.random.stateless_uniform([count], seed=key))
        rows = row_stream(plan.train, tf.cast(order, tf.int64), width=width)
        windows = rows.map(lambda x, i, r: x).batch(SHUFFLE_ROWS).enumerate()

        def permuted(w, window):  # a stateless shuffle: the same after a restart
            window_key = tf.random.experimental.stateless_fold_in(key, -1 - w)
            noise = tf.random.stateless_uniform(tf.shape(window)[:1], seed=window_key)
            return tf.data.Dataset.from_tensor_slices(tf.gather(window, tf.argsort(noise)))

        rows = windows.flat_map(permuted)
        return _noisy(rows.batch(config.batch_size), key, mask)

    stream = tf.data.Dataset.range(first_epoch, config.epochs).flat_map(one_epoch)
    return for_workers(stream).prefetch(tf.data.AUTOTUNE)
