"""One training run from a typed config (the command line's library side): what it promises
about training, checked by behaviour."""

import numpy as np
import pytest

import tfp_realnvp as trn
from tfp_realnvp.cli.run import TrainConfig, train_run

QUICK = dict(couplings=2, hidden_units=(8,), batch_size=100, xla=False, verbose=0)


def _learning_rates(history):
    return history.get("learning_rate", history.get("lr"))  # Keras 3 / tf-keras


@pytest.mark.slow  # a whole run
@pytest.mark.tf_keras  # EarlyStopping's restore differs by Keras
def test_a_validation_plateau_halves_the_learning_rate_then_stops_training(tmp_path):
    # A learning rate of 1e-12 cannot move float32 weights: the validation NLL stays exactly
    # where it started, which is a plateau from the first epoch on.
    data = np.random.default_rng(0).normal(size=(500, 2)).astype("float32")
    config = TrainConfig(epochs=50, learning_rate=1e-12, patience=4, **QUICK)
    metrics = train_run(data, config, tmp_path)
    history = metrics["history"]
    assert len(set(history["val_loss"])) == 1  # the plateau
    assert metrics["epochs"] == 5  # the first epoch, then `patience` without improvement
    # halved after patience // 2 epochs without improvement, and again after as many more
    np.testing.assert_allclose(_learning_rates(history), [1e-12] * 3 + [5e-13] * 2, rtol=1e-6)


@pytest.mark.slow  # a whole run
def test_dequantized_columns_get_fresh_noise_in_every_batch_of_every_epoch(tmp_path, monkeypatch):
    fed = []
    fit = trn.FlowModel.fit

    def recording_fit(self, x=None, *args, **kwargs):
        fed.append(x)
        return fit(self, x, *args, **kwargs)

    monkeypatch.setattr(trn.FlowModel, "fit", recording_fit)
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.poisson(3.0, 500), rng.normal(size=500)])  # float64 is taken
    config = TrainConfig(epochs=2, dequantize_columns=(0,), **QUICK)
    train_run(data, config, tmp_path)
    (dataset,) = fed  # the stream of both epochs, each a function of (seed, epoch)
    epochs = np.split(np.concatenate([b.numpy() for b in dataset]), 2)
    for rows in epochs:
        noise = rows[:, 0] - np.round(rows[:, 0])
        assert np.all(np.abs(noise) <= 0.5) and np.std(noise) > 0.25  # Uniform[-0.5, 0.5)
        assert np.isin(rows[:, 1], data[:, 1].astype("float32")).all()  # no noise there
    assert len(np.unique(epochs[0][:, 0])) == len(epochs[0]) == 400  # a fresh draw per row
    assert not np.isin(epochs[1][:, 0], epochs[0][:, 0]).any()  # and per epoch


def test_the_linear_gaussian_reference_is_the_closed_form():
    from tfp_realnvp.cli.run import linear_gaussian_nll

    rng = np.random.default_rng(0)
    c = rng.normal(size=(20000, 2))
    y = c @ [[2.0], [-1.0]] + 1.0 + 0.5 * rng.normal(size=(20000, 1))
    entropy = 0.5 * np.log(2 * np.pi * np.e * 0.25)  # of the noise: what is left given c
    assert abs(linear_gaussian_nll(y[:10000], c[:10000], y[10000:], c[10000:]) - entropy) < 0.02
    # Without a context: the Gaussian of y, whose variance is 4 + 1 + 0.25.
    alone = 0.5 * np.log(2 * np.pi * np.e * 5.25)
    assert abs(linear_gaussian_nll(y[:10000], None, y[10000:], None) - alone) < 0.02


@pytest.mark.slow  # a whole run
def test_with_xla_each_step_compiles_for_one_batch_shape_and_every_row_counts_once(
    tmp_path, monkeypatch
):
    shapes = {"train": [], "test": []}
    for kind in shapes:
        original = getattr(trn.FlowModel, f"{kind}_step")

        def recording(self, data, kind=kind, original=original):
            shapes[kind].append(tuple(data["x"].shape if isinstance(data, dict) else data.shape))
            return original(self, data)

        monkeypatch.setattr(trn.FlowModel, f"{kind}_step", recording)
    data = np.random.default_rng(1).normal(size=(250, 2)).astype("float32")
    # 200 training rows in batches of 64 (the last holds 8), 25 validation rows.
    config = TrainConfig(epochs=2, learning_rate=1e-12, **{**QUICK, "batch_size": 64, "xla": True})
    metrics = train_run(data, config, tmp_path)
    assert metrics["num_examples"]["train"] == 200
    assert set(shapes["train"]) == {(64, 2)} and set(shapes["test"]) == {(25, 2)}, shapes
    # The weights cannot move: each epoch's loss is the mean over the rows, each counted once.
    history = metrics["history"]
    np.testing.assert_allclose(history["loss"], [metrics["train_nll"]] * 2, rtol=1e-5)
    np.testing.assert_allclose(history["val_loss"], [metrics["validation_nll"]] * 2, rtol=1e-5)
