"""One training run on shard files (cli/sharded_run.py): what its checking pass refuses, and
what the run it then trains is made of. (tests/data/test_shards.py compares such a run with
the same rows held in memory.)"""

import numpy as np
import pytest

from tfp_realnvp import load_model
from tfp_realnvp.cli.backup_files import complete_epochs, start_backup
from tfp_realnvp.cli.run import TrainConfig
from tfp_realnvp.cli.sharded_run import train_sharded_run, training_batches
from tfp_realnvp.data import DataError
from tfp_realnvp.data.shards import plan_shards

QUICK = dict(couplings=1, hidden_units=(4,), epochs=1, batch_size=64, verbose=0, seed=3)


def _plan(tmp_path, *train_parts):
    """Training shards ``train-0.npy, ...`` and a validation and a test shard of 6 rows each."""
    rng = np.random.default_rng(0)
    for i, part in enumerate(train_parts):
        np.save(tmp_path / f"train-{i}.npy", np.asarray(part, np.float32))
    for name in ("validation", "test"):
        rows = np.column_stack([rng.poisson(3.0, 6), rng.normal(size=6)])
        np.save(tmp_path / f"{name}.npy", rows.astype(np.float32))
    spec = {name: str(tmp_path / f"{name}.npy") for name in ("validation", "test")}
    return plan_shards(str(tmp_path / "train-*.npy"), spec["validation"], spec["test"], 0, 0, 0)


def _held_out(tmp_path) -> list[str]:
    """A validation and a test shard of 4 rows of zeros (the tests of the training stream
    read neither)."""
    for name in ("validation", "test"):
        np.save(tmp_path / f"{name}.npy", np.zeros((4, 2), np.float32))
    return [str(tmp_path / f"{name}.npy") for name in ("validation", "test")]


def test_the_checking_pass_refuses_too_few_rows_and_constant_columns(tmp_path):
    rng = np.random.default_rng(1)
    counts, normal = rng.poisson(3.0, 12).astype(float), rng.normal(size=12)
    first = tmp_path / "train-0.npy"
    few = _plan(tmp_path, np.column_stack([counts, normal])[:4], np.ones((5, 2)) + normal[:5, None])
    with pytest.raises(DataError) as refused:
        train_sharded_run(few, TrainConfig(**QUICK), tmp_path / "out")
    assert str(refused.value) == f"{first}: 9 training rows; training needs at least 10"
    # A constant column has no density. Whole numbers are dequantised (the noise spreads them)
    # unless dequantize=False, and then a constant one is refused as well.
    flat = np.column_stack([counts, np.full(12, 0.5)])
    with pytest.raises(DataError) as refused:
        train_sharded_run(_plan(tmp_path, flat[:6], flat[6:]), TrainConfig(**QUICK), tmp_path)
    assert str(refused.value) == (
        f"{first}: column 2 of the training shards is constant: a constant has no density; drop it"
    )
    threes = np.column_stack([np.full(12, 3.0), np.full(12, 0.5)])
    plan = _plan(tmp_path, threes[:6], threes[6:])
    with pytest.raises(DataError) as refused:
        train_sharded_run(plan, TrainConfig(**QUICK), tmp_path, dequantize=False)
    assert str(refused.value) == (
        f"{first}: columns 1-2 of the training shards are constant: a constant has no density; "
        "drop them"
    )
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("*/model.keras"))


@pytest.mark.slow  # a whole run
def test_a_run_on_the_fewest_rows_it_takes_dequantises_counts_and_builds_what_it_was_asked(
    tmp_path,
):
    rng = np.random.default_rng(2)
    rows = np.column_stack([rng.poisson(3.0, 10), rng.normal(size=10)]).astype(np.float32)
    plan = _plan(tmp_path, rows[:4], rows[4:])  # 10 training rows: the least it trains on
    backup = start_backup(tmp_path / "run", {"command": "test"}, discard=False)
    (tmp_path / "run").mkdir()
    config = TrainConfig(base="diagonal", xla=True, **QUICK)
    metrics = train_sharded_run(plan, config, tmp_path / "run", backup=backup)
    assert metrics["num_examples"] == {"train": 10, "validation": 6, "test": 6}
    shards = {k: [str(tmp_path / f"{k}.npy")] for k in ("validation", "test")}
    shards["train"] = [str(tmp_path / f"train-{i}.npy") for i in (0, 1)]
    assert metrics["shards"] == shards
    # The test rows are drawn beside samples of the model (two columns: the density too).
    assert {"samples.png", "density.png"} <= {p.name for p in (tmp_path / "run").iterdir()}
    # The whole-number column was found and dequantised; the backup was kept after the epoch.
    assert metrics["model"]["dequantized_columns"] == [1]
    assert complete_epochs(backup) == [1]
    model = load_model(tmp_path / "run" / "model.keras")
    assert model.learned_base is not None  # the base asked for
    # The standardisation's scale is the training rows' spread, the counts' with the noise's
    # variance (1/12 for Uniform[-0.5, 0.5)) added.
    variance = rows.astype(np.float64).var(axis=0) + np.array([1 / 12, 0.0])
    np.testing.assert_allclose(model.bijector.bijectors[1].scale, np.sqrt(variance), rtol=1e-5)


def test_each_epoch_reads_the_shards_in_an_order_of_its_own(tmp_path, monkeypatch):
    # Rows mix only within a window of SHUFFLE_ROWS rows, so past one window the shards' order,
    # drawn anew each epoch, is what moves rows between windows. Windows of 4 rows here, and
    # 6 shards of 4 rows, each row holding its shard's number.
    from tfp_realnvp.cli import sharded_run

    monkeypatch.setattr(sharded_run, "SHUFFLE_ROWS", 4)
    for i in range(6):
        np.save(tmp_path / f"train-{i}.npy", np.full((4, 2), i, np.float32))
    plan = plan_shards(str(tmp_path / "train-*.npy"), *_held_out(tmp_path), 0, 0, 0)
    config = TrainConfig(epochs=4, batch_size=4, seed=0)
    batches = [b.numpy() for b in sharded_run.training_batches(plan, 2, config, 0, np.zeros(2))]
    epochs = np.split(np.stack([b[:, 0] for b in batches]), 4)  # 6 windows an epoch
    for epoch in epochs:
        assert sorted(epoch.ravel()) == sorted(list(range(6)) * 4)  # every row once an epoch
    # The first window holds rows of the first shards read: not the same ones every epoch.
    assert len({frozenset(epoch[0]) for epoch in epochs}) > 1, epochs


def test_tfrecord_shards_are_checked_at_the_width_of_their_first_record(tmp_path, write_tfrecord):
    # TFRecord headers hold no width: the run reads it from the first training record. One
    # training shard of 9 rows of 3 values, and held-out shards of the same width.
    rows = np.random.default_rng(3).normal(size=(9, 3))
    for name, part in (("train", rows), ("validation", rows[:3]), ("test", rows[3:6])):
        write_tfrecord(tmp_path / f"{name}.tfrecord", part)
    spec = {name: str(tmp_path / f"{name}.tfrecord") for name in ("train", "validation", "test")}
    plan = plan_shards(spec["train"], spec["validation"], spec["test"], 0, 0, 0)
    assert plan.width is None
    with pytest.raises(DataError) as refused:
        train_sharded_run(plan, TrainConfig(**QUICK), tmp_path / "out")
    assert str(refused.value) == f"{spec['train']}: 9 training rows; training needs at least 10"


class _Built(Exception):
    """Raised in place of building the flow: the checking pass is over."""


def test_a_constant_count_column_is_dequantised_not_refused(tmp_path, monkeypatch):
    # Dequantised, a column of one whole number is Uniform[2.5, 3.5): a density. The flow is
    # standardised by the noise's spread there, sqrt(1/12).
    from tfp_realnvp.cli import sharded_run

    def built(mean, std, config):
        raise _Built(mean, std, config)

    monkeypatch.setattr(sharded_run, "standardized_by", built)
    normal = np.random.default_rng(4).normal(size=12).astype(np.float32).astype(np.float64)
    threes = np.column_stack([normal, np.full(12, 3.0)])
    with pytest.raises(_Built) as caught:
        train_sharded_run(_plan(tmp_path, threes[:6], threes[6:]), TrainConfig(**QUICK), tmp_path)
    mean, std, config = caught.value.args
    assert config.dequantize_columns == (1,)
    np.testing.assert_allclose(mean, [normal.mean(), 3.0])
    np.testing.assert_allclose(std, [normal.std(), np.sqrt(1 / 12)])


def test_a_column_is_whole_only_if_every_batch_of_the_checking_pass_says_so(tmp_path, monkeypatch):
    # The checking pass reads the rows in batches (4 here): a column of fractions whose last
    # batch happens to hold whole numbers is not a column of counts.
    from tfp_realnvp.cli import sharded_run

    def built(mean, std, config):
        raise _Built(config)

    monkeypatch.setattr(sharded_run, "_PASS_ROWS", 4)
    monkeypatch.setattr(sharded_run, "standardized_by", built)
    rng = np.random.default_rng(5)
    mixed = np.concatenate([rng.normal(size=8), [1.0, 2.0, 3.0, 4.0]])
    counts = rng.poisson(3.0, 12).astype(float)
    rows = np.column_stack([mixed, counts])
    with pytest.raises(_Built) as caught:
        train_sharded_run(_plan(tmp_path, rows), TrainConfig(**QUICK), tmp_path)  # one shard
    assert caught.value.args[0].dequantize_columns == (1,)


def test_few_rows_get_the_small_data_dropout_once_counted_unless_one_was_chosen(
    tmp_path, monkeypatch, capsys
):
    # The command line passes dropout=None for shards: the rows are counted by the checking
    # pass, after which a run of fewer than 5000 gets dropout 0.2 and says so, as in memory.
    from tfp_realnvp.cli import sharded_run

    def built(mean, std, config):
        raise _Built(config)

    monkeypatch.setattr(sharded_run, "standardized_by", built)
    rows = np.random.default_rng(6).normal(size=(12, 2))
    for dropout, want, note in ((None, 0.2, True), (0.1, 0.1, False), (0.0, 0.0, False)):
        config = TrainConfig(**{**QUICK, "dropout": dropout})
        with pytest.raises(_Built) as caught:
            train_sharded_run(_plan(tmp_path, rows[:6], rows[6:]), config, tmp_path)
        assert caught.value.args[0].dropout == want
        assert capsys.readouterr().err == (
            "tfp-realnvp: note: fewer than 5000 training rows: the conditioners use dropout "
            "0.2 against overfitting (--dropout 0 turns it off)\n"
            if note
            else ""
        )
    monkeypatch.setattr(sharded_run, "small_data_dropout", lambda rows: 0.0)  # many rows
    with pytest.raises(_Built) as caught:
        train_sharded_run(
            _plan(tmp_path, rows[:6], rows[6:]), TrainConfig(**{**QUICK, "dropout": None}), tmp_path
        )
    assert caught.value.args[0].dropout == 0.0 and capsys.readouterr().err == ""


def test_the_noise_on_whole_numbers_is_uniform_over_half_a_unit_each_side(tmp_path):
    # Column 0 is dequantised (mask 1), column 1 is not: 3s in both, 64 rows an epoch.
    for i in range(2):
        np.save(tmp_path / f"train-{i}.npy", np.full((32, 2), 3.0, np.float32))
    plan = plan_shards(str(tmp_path / "train-*.npy"), *_held_out(tmp_path), 0, 0, 0)
    config = TrainConfig(epochs=2, batch_size=64, seed=0)
    mask = np.array([1.0, 0.0], np.float32)
    batches = np.concatenate([b.numpy() for b in training_batches(plan, 2, config, 0, mask)])
    assert batches.shape == (128, 2) and np.all(batches[:, 1] == 3.0)
    noise = batches[:, 0] - 3.0
    assert noise.min() >= -0.5 and noise.max() < 0.5
    assert noise.min() < -0.4 and noise.max() > 0.4 and abs(noise.mean()) < 0.1
