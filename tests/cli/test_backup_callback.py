"""The training state backed up after each epoch and put back (`tfp_realnvp.cli.backup_callback`),
in one process on a small Keras model: what a backup holds, and that a run resumed from one ends
as the uninterrupted run did, bit for bit. The command's kills and resumes are in test_resume.py."""

import json
import types

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp._keras import build_optimizer, keras
from tfp_realnvp.cli.backup_callback import (
    TrainingBackup,
    _plain,
    _state_variables,
    common_epoch,
    restore,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * RNG.normal(size=(32, 1))).astype(np.float32)


def _model(width: int = 4, initial=None):
    model = keras.Sequential(
        [keras.Input(shape=(3,)), keras.layers.Dense(width, "tanh"), keras.layers.Dense(1)]
    )
    if initial is not None:
        model.set_weights(initial)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", jit_compile=False)
    return model


def _watched():
    # The plateau is never left (min_delta), so the rate halves and cools down on a schedule;
    # the stopper's best epoch is the first (mode="max" on a falling loss): both carry state
    # across the restart that the resumed epochs depend on.
    return [
        keras.callbacks.ReduceLROnPlateau(
            "loss", factor=0.5, patience=1, cooldown=1, min_delta=1e9
        ),
        keras.callbacks.EarlyStopping("loss", mode="max", patience=100, restore_best_weights=True),
    ]


def _fit(model, path, epochs, initial_epoch=0, resumed=None):
    """Fits ``model`` with a backup into ``path``; returns the watched callbacks, the backup and
    the model's and optimizer's variables at each epoch's end, as the backup saw them (the
    stopper puts its best weights back when training ends). The backup's history is checked
    against Keras' own."""
    watched = _watched()
    backup = TrainingBackup(path, watched[:], resumed)
    ends = []
    seen = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: ends.append(
            [np.array(v) for v in [*model.variables, *model.optimizer.variables]]
        )
    )
    history = model.fit(
        X,
        Y,
        batch_size=8,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        callbacks=[*watched, backup, seen],
        verbose=0,
    ).history
    for key, values in history.items():  # the backup's history ends with this fit's epochs
        assert backup.history[key][-len(values) :] == [float(v) for v in values]
    return watched, backup, ends


def _state(model, watched) -> dict:
    plateau, stopper = watched
    return {
        "weights": model.get_weights(),
        "optimizer": [np.asarray(v) for v in model.optimizer.variables],
        "learning_rate": float(np.asarray(model.optimizer.learning_rate)),
        "plateau": [plateau.wait, plateau.best, plateau.cooldown_counter],
        "stopper": [stopper.wait, stopper.best, stopper.best_epoch],
        "best_weights": stopper.best_weights,
    }


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        left, right = a[key], b[key]
        if isinstance(left, list) and left and isinstance(left[0], np.ndarray):
            assert len(left) == len(right), key
            assert all(np.array_equal(u, v) for u, v in zip(left, right, strict=True)), key
        else:
            assert left == right, key


@pytest.mark.tf_keras  # Keras state restored
def test_a_run_resumed_from_its_backup_ends_as_the_uninterrupted_run(tmp_path):
    initial = _model().get_weights()
    whole = _model(initial=initial)
    (tmp_path / "whole").mkdir()
    watched, backup, _ = _fit(whole, tmp_path / "whole", epochs=5)
    expected = _state(whole, watched)
    assert expected["learning_rate"] < 0.05  # the plateau's schedule ran
    assert expected["stopper"][2] == 0  # the best epoch is before the restart

    (tmp_path / "cut").mkdir()
    _fit(_model(initial=initial), tmp_path / "cut", epochs=3)
    again = _model(initial=initial)
    resumed = restore(again, tmp_path / "cut", 3)
    watched_again, backup_again, _ = _fit(
        again, tmp_path / "cut", 5, initial_epoch=3, resumed=resumed
    )

    _assert_same(_state(again, watched_again), expected)
    assert backup_again.history == backup.history and len(backup.history["loss"]) == 5
    # Only the two newest whole epochs are kept, and nothing half-written.
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["epoch-4", "epoch-5"]


@pytest.mark.tf_keras  # Keras callbacks' state
def test_a_backup_holds_the_variables_the_callbacks_and_the_history(tmp_path):
    model = _model()
    watched, backup, ends = _fit(model, tmp_path, epochs=2)
    folder = tmp_path / "epoch-2"
    record = json.loads((folder / "state.json").read_text())
    plateau, stopper = watched
    assert record["epoch"] == 2
    assert record["learning_rate"] == float(np.asarray(model.optimizer.learning_rate))
    assert record["history"] == backup.history and len(record["history"]["loss"]) == 2
    assert record["callbacks"][0] == {
        "wait": plateau.wait,
        "best": plateau.best,
        "cooldown_counter": plateau.cooldown_counter,
    }
    assert {k: record["callbacks"][1][k] for k in ("wait", "best", "best_epoch")} == {
        "wait": stopper.wait,
        "best": stopper.best,
        "best_epoch": stopper.best_epoch,
    }
    with np.load(folder / "state.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    variables = sorted(k for k in arrays if k.startswith("v"))
    assert len(variables) == len(ends[-1])
    assert all(np.array_equal(arrays[k], v) for k, v in zip(variables, ends[-1], strict=True))
    assert not np.array_equal(ends[-1][0], ends[-2][0])  # the epochs differ
    best = [arrays[k] for k in sorted(k for k in arrays if k.startswith("cb1_"))]
    assert len(best) == len(stopper.best_weights) == 4
    assert all(np.array_equal(a, b) for a, b in zip(best, stopper.best_weights, strict=True))
    assert not any(k.startswith("cb0_") for k in arrays)  # the plateau has no weights


@pytest.mark.tf_keras  # Keras state restored
def test_restore_puts_every_variable_and_the_learning_rate_back(tmp_path):
    *_, ends = _fit(_model(), tmp_path, epochs=2)
    other = _model()
    record = restore(other, tmp_path, 2)
    _assert_same(
        {"all": [np.array(v) for v in [*other.variables, *other.optimizer.variables]]},
        {"all": ends[-1]},
    )
    assert float(np.asarray(other.optimizer.learning_rate)) == record["learning_rate"] < 0.05
    assert sorted(record["arrays"]) == [f"cb1_{j:05d}" for j in range(4)]


def test_a_backup_of_another_model_is_refused(tmp_path, refusal):
    *_, ends = _fit(_model(), tmp_path, epochs=1)
    n = len(ends[-1])  # same number, other shapes:
    assert refusal(ValueError, restore, _model(width=5), tmp_path, 1) == (
        f"the backup in {tmp_path / 'epoch-1'} holds {n} variables that do not fit this "
        f"model's {n}; it is of another flow"
    )
    smaller = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    smaller.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    (tmp_path / "other").mkdir()
    *_, other_ends = _fit(smaller, tmp_path / "other", epochs=1)
    with pytest.raises(ValueError, match=f"holds {n} variables .* model's {len(other_ends[-1])};"):
        restore(smaller, tmp_path, 1)


def test_an_epoch_left_half_written_is_written_again_whole(tmp_path):
    model = _model()
    backup = TrainingBackup(tmp_path)
    backup.set_model(model)
    build_optimizer(model)
    (tmp_path / "epoch-1.tmp").mkdir()
    (tmp_path / "epoch-1.tmp" / "junk").write_text("from a killed run")
    backup.save(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-1"]
    assert sorted(p.name for p in (tmp_path / "epoch-1").iterdir()) == ["state.json", "state.npz"]


def test_callback_state_is_saved_as_plain_json_values():
    assert _plain(np.float32(1.5)) == 1.5 and type(_plain(np.float32(1.5))) is float
    assert _plain(np.array([1, 2])) == [1, 2]
    assert _plain(tf.constant(3.0)) == 3.0 and _plain(tf.constant([1.0, 2.0])) == [1.0, 2.0]
    assert _plain("x") == "x" and _plain(None) is None


@pytest.mark.tf_keras  # Keras callbacks' state
def test_resumed_state_must_fit_the_watched_callbacks(tmp_path):
    model = _model()
    watched, _, _ = _fit(model, tmp_path, epochs=1)
    resumed = restore(_model(), tmp_path, 1)
    backup = TrainingBackup(tmp_path, watched[:1], resumed)  # one callback, two states
    backup.set_model(model)
    with pytest.raises(ValueError, match="zip"):
        backup.on_train_begin()


def test_a_variable_in_both_the_model_and_the_optimizer_is_saved_once():
    shared, own, step = tf.Variable(1.0), tf.Variable(2.0), tf.Variable(3.0)

    optimizer = types.SimpleNamespace(variables=[step, shared])
    model = types.SimpleNamespace(variables=[own, shared], optimizer=optimizer)
    assert _state_variables(model) == [own, shared, step]


class _Workers:
    """A stand-in for a two-worker strategy: ``gather`` stacks this worker's row of backed-up
    epochs with the other worker's ``row`` (``-1`` where it has fewer than two)."""

    num_replicas_in_sync = 2

    def __init__(self, row):
        self.row = row

    def run(self, fn):
        return fn()

    def gather(self, value, axis):
        return tf.concat([value, tf.constant([self.row], tf.int64)], axis)


@pytest.mark.parametrize(
    "mine, other, agreed",
    [
        ([2, 3, 4], [3, 4], 4),  # both wrote epoch 4 (each keeps its two newest)
        ([3, 4], [2, 3], 3),  # the other was killed while writing epoch 4
        ([1], [1, -1], 1),  # one epoch each
        ([3], [1, 2], 0),  # none in common: start again
        ([], [1, 2], 0),
    ],
)
def test_workers_resume_from_the_newest_epoch_they_all_hold(mine, other, agreed):
    assert common_epoch(_Workers(other), mine) == agreed


def test_one_process_resumes_from_its_newest_whole_epoch():
    strategy = tf.distribute.get_strategy()
    assert common_epoch(strategy, [2, 3]) == 3
    assert common_epoch(strategy, [3, 1, 2]) == 3
    assert common_epoch(strategy, []) == 0
