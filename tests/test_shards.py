"""Data bigger than memory: shard files streamed with tf.data (shards.py, sharded.py,
shard_training.py). Tiny shards in tmp_path; every check has an independent truth: the same rows
held in memory."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.data import DataError, random_split
from tfp_realnvp.shard_training import train_sharded_run
from tfp_realnvp.sharded import row_stream, shard_dataset
from tfp_realnvp.shards import inspect_shard, plan_shards
from tfp_realnvp.training import TrainConfig, train_run


def _write_csv(path, rows):
    np.savetxt(path, rows, delimiter=",", fmt="%.9g", header="a,b", comments="")


def _write_tfrecord(path, rows):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            feature = tf.train.Feature(float_list=tf.train.FloatList(value=row))
            example = tf.train.Example(features=tf.train.Features(feature={"x": feature}))
            writer.write(example.SerializeToString())


def test_shards_train_to_the_metrics_of_the_same_rows_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(80, 2)) * [1.0, 3.0] + [0.5, -1.0]).astype(np.float32)
    # Full-batch training: every epoch is one batch of all training rows, whatever their order,
    # so both paths take the same optimisation steps (up to float summation order).
    config = TrainConfig(
        couplings=2, hidden_units=(4,), epochs=3, batch_size=100, xla=False, verbose=0
    )
    in_memory = train_run(data, config, tmp_path / "memory")
    train, validation, test = random_split(data, [0.1, 0.1], config.seed)
    for i, part in enumerate(np.array_split(train, 3)):
        np.save(tmp_path / f"train-{i}.npy", part)
    _write_csv(tmp_path / "validation.csv", validation)
    _write_tfrecord(tmp_path / "test.tfrecord", test)
    plan = plan_shards(
        str(tmp_path / "train-*.npy"),
        str(tmp_path / "validation.csv"),
        str(tmp_path / "test.tfrecord"),
        0.1,
        0.1,
        config.seed,
    )
    (tmp_path / "shards").mkdir()
    streamed = train_sharded_run(plan, config, tmp_path / "shards")
    assert streamed["num_examples"] == in_memory["num_examples"]
    for key in ("train_nll", "validation_nll", "test_nll"):
        np.testing.assert_allclose(streamed[key], in_memory[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(
        streamed["history"]["val_loss"], in_memory["history"]["val_loss"], rtol=1e-5
    )
    assert (tmp_path / "shards" / "saved_model" / "saved_model.pb").is_file()
