"""Data bigger than memory: shard files streamed with tf.data (shards.py, sharded.py,
shard_training.py). Tiny shards in tmp_path; every check has an independent truth: the same rows
held in memory."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.cli.run import TrainConfig, train_run
from tfp_realnvp.cli.sharded_run import train_sharded_run, training_batches
from tfp_realnvp.data import DataError, random_split
from tfp_realnvp.data.shards import inspect_shard, plan_shards
from tfp_realnvp.data.streaming import row_stream, shard_dataset


def _write_csv(path, rows):
    np.savetxt(path, rows, delimiter=",", fmt="%.9g", header="a,b", comments="")


@pytest.mark.slow  # two whole runs, one streamed and one in memory
def test_shards_train_to_the_metrics_of_the_same_rows_in_memory(tmp_path, write_tfrecord):
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
    write_tfrecord(tmp_path / "test.tfrecord", test)
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
    for key in ("train_nll", "validation_nll", "test_nll", "test_nll_gaussian"):
        np.testing.assert_allclose(streamed[key], in_memory[key], rtol=1e-5, err_msg=key)
    for key in ("loss", "val_loss"):  # every epoch, as early stopping sees it
        np.testing.assert_allclose(
            streamed["history"][key], in_memory["history"][key], rtol=1e-5, err_msg=key
        )
    assert (tmp_path / "shards" / "saved_model" / "saved_model.pb").is_file()


def test_fit_takes_a_dataset_of_unknown_length(tmp_path):
    from tfp_realnvp import FlowModel, real_nvp

    x = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(np.array_split(x, 4)), output_signature=tf.TensorSpec([None, 2], tf.float32)
    )
    assert dataset.cardinality() == tf.data.experimental.UNKNOWN_CARDINALITY
    model = FlowModel(real_nvp([2], num_couplings=2, hidden_units=[4]))
    model.compile(optimizer="adam", jit_compile=False)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize(
    "name, text, message",
    [
        (
            "cell.csv",
            "a,b\n1,2\n\n1,oops\n",
            "cell.csv: non-numeric cell 'oops' at line 4, column 2",
        ),
        (
            "short.csv",
            "1,2\n3\n",
            "short.csv: ragged rows: line 2 has 1 comma-separated columns, expected 2",
        ),
        ("nan.csv", "1,2\n# note\n3,nan\n", "nan.csv: NaN at line 3, column 2"),
        # The message was once parsed back with a pattern that stopped at the '>' of
        # "> float32", printing "part-1.csv: a value "; the whole line now comes through.
        (
            "big>.csv",
            "1,2\n3,1e39\n",
            "big>.csv: the value 1e+39, beyond float32's range (+-3.4e+38) at line 2, column 2",
        ),
        ("odd.csv", "1,2\n3,<4> x\n", "odd.csv: non-numeric cell '<4> x' at line 2, column 2"),
        # An empty cell (a trailing separator) once gave TensorFlow's traceback: the message's
        # fields were parsed back as non-empty, and the cell's text is.
        ("empty.csv", "1,2\n3,\n", "empty.csv: empty cell at line 2, column 2"),
        (
            "semi.csv",
            "1;2\n3;4;\n",
            "semi.csv: ragged rows: line 2 has 3 semicolon-separated columns, expected 2",
        ),
    ],
)
def test_a_bad_row_is_named_by_file_and_row(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        list(row_stream([inspect_shard(tmp_path / name)]))
    from tfp_realnvp.data.streaming import bad_row_message

    assert bad_row_message(caught.value) == f"{tmp_path / name}: {message.split(': ', 1)[1]}"


def test_headers_are_checked_before_reading_rows(tmp_path):
    np.save(tmp_path / "a-0.npy", np.zeros((4, 2), np.float32))
    np.save(tmp_path / "a-1.npy", np.zeros((4, 3), np.float32))
    for name in ("val", "test"):
        np.save(tmp_path / f"{name}.npy", np.zeros((4, 2), np.float32))
    held = [str(tmp_path / f"{name}.npy") for name in ("val", "test")]
    with pytest.raises(DataError, match=r"3 columns, but .*a-0\.npy has 2"):
        plan_shards(str(tmp_path / "a-*.npy"), *held, 0.1, 0.1, 0)
    with pytest.raises(DataError, match="no such file matches"):
        plan_shards(str(tmp_path / "b-*.npy"), None, None, 0.1, 0.1, 0)


def test_shard_dataset_streams_every_row_once(tmp_path):
    x = np.arange(30, dtype=np.float32).reshape(15, 2)
    for i, part in enumerate(np.array_split(x, 3)):
        np.save(tmp_path / f"p-{i}.npy", part)
    got = np.concatenate(list(shard_dataset(str(tmp_path / "p-*.npy"), 4, seed=3)))
    np.testing.assert_array_equal(np.sort(got, axis=0), x)


def test_each_epoch_is_its_own_permutation_and_a_restart_draws_it_again(tmp_path):
    # One training shard, so the order of the shards cannot hide a permutation that stays the
    # same from epoch to epoch.
    rows = np.arange(64 * 2, dtype=np.float32).reshape(64, 2)
    np.save(tmp_path / "train-0.npy", rows)
    for name in ("val", "test"):
        np.save(tmp_path / f"{name}.npy", rows[:8])
    held = [str(tmp_path / f"{name}.npy") for name in ("val", "test")]
    plan = plan_shards(str(tmp_path / "train-0.npy"), *held, 0.1, 0.1, 0)
    config = TrainConfig(epochs=3, batch_size=16)
    mask = np.zeros(2, bool)

    def epochs(first):
        batches = [b.numpy() for b in training_batches(plan, 2, config, first, mask)]
        assert all(len(b) == 16 for b in batches)
        return np.split(np.concatenate(batches)[:, 0] // 2, 3 - first)

    whole = epochs(0)
    for order in whole:  # every row once an epoch, shuffled
        assert sorted(order) == list(range(64)) and list(order) != sorted(order)
    assert not np.array_equal(whole[0], whole[1]) and not np.array_equal(whole[1], whole[2])
    resumed = epochs(2)  # a run resumed after two epochs
    np.testing.assert_array_equal(resumed[0], whole[2])


def test_a_ragged_record_is_named_by_file_and_record(tmp_path, write_tfrecord):
    from tfp_realnvp.data.streaming import bad_row_message

    write_tfrecord(tmp_path / "r.tfrecord", [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0, 7.0]])
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        list(row_stream([inspect_shard(tmp_path / "r.tfrecord")]))
    assert bad_row_message(caught.value) == (
        f"{tmp_path / 'r.tfrecord'}: record 3 has 3 values in feature 'x', expected 2"
    )


def test_tfrecords_stream_their_rows_with_the_width_of_the_first_record(tmp_path, write_tfrecord):
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    write_tfrecord(tmp_path / "a.tfrecord", rows[:3])
    got = np.concatenate(list(shard_dataset(str(tmp_path / "a.tfrecord"), 2, seed=None)))
    np.testing.assert_array_equal(got, rows[:3])
    write_tfrecord(tmp_path / "b.tfrecord", rows[3:])
    got = np.concatenate(list(shard_dataset(str(tmp_path / "*.tfrecord"), 8, seed=None)))
    np.testing.assert_array_equal(got, rows[[0, 3, 1, 2]])  # interleaved a, b, a, a
    write_tfrecord(tmp_path / "one.tfrecord", [[1.0]])
    (tmp_path / "none.tfrecord").write_bytes(b"")
    from tfp_realnvp.data.streaming import tfrecord_width

    with pytest.raises(DataError, match=r"one\.tfrecord: record 1 has 1 values in feature 'x'; "):
        tfrecord_width(tmp_path / "one.tfrecord")
    with pytest.raises(DataError, match=r"none\.tfrecord: empty data: no records"):
        tfrecord_width(tmp_path / "none.tfrecord")


def test_a_csv_that_starts_with_a_byte_order_mark_streams_its_numbers(tmp_path):
    (tmp_path / "bom.csv").write_text("\ufeff1,2\n3,4\n", encoding="utf-8")
    got = np.concatenate(list(shard_dataset(str(tmp_path / "bom.csv"), 4, seed=None)))
    np.testing.assert_array_equal(got, [[1, 2], [3, 4]])


def _five_shards(tmp_path) -> str:
    """Five shards of 3 rows; row r of shard s starts with 10 s + r."""
    for s in range(5):
        rows = np.stack([10 * s + np.arange(3), np.zeros(3)], axis=1).astype(np.float32)
        np.save(tmp_path / f"p-{s}.npy", rows)
    return str(tmp_path / "p-*.npy")


def _firsts(dataset) -> list[int]:
    return [int(x[0]) for batch in dataset for x in batch]


def test_unshuffled_streams_interleave_the_shards_in_a_fixed_order(tmp_path):
    pattern = _five_shards(tmp_path)
    # Four shards at a time by default, one row from each in turn, then the fifth.
    four = [0, 10, 20, 30, 1, 11, 21, 31, 2, 12, 22, 32, 40, 41, 42]
    assert _firsts(shard_dataset(pattern, 100, seed=None)) == four
    two = [0, 10, 1, 11, 2, 12, 20, 30, 21, 31, 22, 32, 40, 41, 42]
    assert _firsts(shard_dataset(pattern, 100, seed=None, cycle_length=2)) == two
    shards = [inspect_shard(p) for p in sorted(tmp_path.glob("p-*.npy"))]
    assert [int(x[0]) for x, _, _ in row_stream(shards)] == four
    # A given order of shards is read in that order; each row says where it came from.
    order = tf.constant([4, 0, 1, 2, 3], tf.int64)
    got = [(int(x[0]), int(i), int(r)) for x, i, r in row_stream(shards, order, cycle_length=1)]
    assert got[:4] == [(40, 4, 1), (41, 4, 2), (42, 4, 3), (0, 0, 1)]


def test_shuffled_streams_are_drawn_from_the_seed(tmp_path):
    pattern = _five_shards(tmp_path)
    default = _firsts(shard_dataset(pattern, 100))
    assert default == _firsts(shard_dataset(pattern, 100, seed=0))  # seed 0 by default
    assert default != _firsts(shard_dataset(pattern, 100, seed=None))  # shuffled
    assert _firsts(shard_dataset(pattern, 100, seed=5)) == _firsts(
        shard_dataset(pattern, 100, seed=5)
    )
    assert _firsts(shard_dataset(pattern, 100, seed=5)) != default
