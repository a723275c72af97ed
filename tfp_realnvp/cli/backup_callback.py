"""Training that survives being killed: the whole training state, backed up after every epoch.

`TrainingBackup` is a Keras callback that writes, after each epoch, everything the next epoch
depends on: the model's variables (weights, a learned base, and under Keras 3 the dropout
layers' seed states), the optimizer's (step count, moments, learning rate), the state of the
callbacks it watches (``ReduceLROnPlateau``'s and ``EarlyStopping``'s counters, best value and
best weights) and the history so far. `restore` puts it back before ``fit(initial_epoch=...)``.
The data stream must be a function of the epoch (as `tfp_realnvp.cli.run` builds it, with
stateless shuffles and noise keyed by ``(seed, epoch)``), so the resumed epochs see the very
batches the uninterrupted run saw and end with the same weights, bit for bit on one process.

Directories and markers are `tfp_realnvp.cli.backup_files`'s; each epoch is written to
``epoch-K.tmp`` and renamed whole, and the two newest epochs are kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfp_realnvp._keras import build_optimizer, keras

__all__ = ["TrainingBackup", "common_epoch", "restore"]

_WATCHED = ("wait", "best", "cooldown_counter", "best_epoch", "stopped_epoch")
_KEEP = 2


def _state_variables(model) -> list:
    """The model's and optimizer's variables, in an order fixed by how they were built."""
    seen, out = set(), []
    for v in [*model.variables, *model.optimizer.variables]:
        key = id(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _learning_rate(model) -> float:
    return float(np.array(model.optimizer.learning_rate))


class TrainingBackup(keras.callbacks.Callback):
    """Backs the training state up into ``path`` after every epoch (see the module).

    Args:
      path: a backup directory made by `tfp_realnvp.cli.backup_files.start_backup`.
      watched: callbacks whose state is saved and restored with the model's (give them to
        ``fit`` before this one).
      resumed: the state `restore` returned, to put back into ``watched`` when training starts.
    """

    def __init__(self, path: Path, watched=(), resumed: dict | None = None):
        super().__init__()
        self.path = Path(path)
        self.watched = list(watched)
        self.resumed = resumed
        self.history: dict[str, list[float]] = dict((resumed or {}).get("history", {}))

    def on_train_begin(self, logs=None):
        if not self.resumed:
            return
        arrays = self.resumed["arrays"]
        for i, (callback, state) in enumerate(
            zip(self.watched, self.resumed["callbacks"], strict=True)
        ):
            for name, value in state.items():
                setattr(callback, name, value)
            weights = sorted(k for k in arrays if k.startswith(f"cb{i}_"))
            if weights:
                callback.best_weights = [arrays[k] for k in weights]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.save(epoch + 1)

    def save(self, epochs_done: int) -> None:
        arrays = {
            f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(_state_variables(self.model))
        }
        callbacks = []
        for i, callback in enumerate(self.watched):
            state = {k: _plain(getattr(callback, k)) for k in _WATCHED if hasattr(callback, k)}
            callbacks.append(state)
            for j, w in enumerate(getattr(callback, "best_weights", None) or []):
                arrays[f"cb{i}_{j:05d}"] = np.asarray(w)
        record = {
            "epoch": epochs_done,
            "learning_rate": _learning_rate(self.model),
            "callbacks": callbacks,
            "history": self.history,
        }
        tmp = self.path / f"epoch-{epochs_done}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.savez(tmp / "state.npz", **arrays)
        (tmp / "state.json").write_text(json.dumps(record))
        tmp.rename(self.path / f"epoch-{epochs_done}")
        done = sorted(int(p.name[6:]) for p in self.path.glob("epoch-*") if p.name[6:].isdigit())
        for old in done[:-_KEEP]:
            shutil.rmtree(self.path / f"epoch-{old}", ignore_errors=True)


def _plain(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.item() if np.ndim(value) == 0 else value.tolist()
    if tf.is_tensor(value):
        return _plain(value.numpy())
    return value


def restore(model, path: Path, epochs_done: int) -> dict:
    """Loads the state saved after ``epochs_done`` epochs into a compiled ``model`` (built the
    same way as the one that saved it); returns it for `TrainingBackup(resumed=...)`.

    Raises:
      ValueError: if the backup does not fit the model (another flow or optimizer).
    """
    folder = Path(path) / f"epoch-{epochs_done}"
    record = json.loads((folder / "state.json").read_text())
    with np.load(folder / "state.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    build_optimizer(model)
    variables = _state_variables(model)
    values = [arrays[k] for k in sorted(k for k in arrays if k.startswith("v"))]
    shapes = [tuple(v.shape) for v in variables]
    if len(values) != len(variables) or shapes != [a.shape for a in values]:
        raise ValueError(
            f"the backup in {folder} holds {len(values)} variables that do not fit this model's "
            f"{len(variables)}; it is of another flow"
        )
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    model.optimizer.learning_rate = record["learning_rate"]
    record["arrays"] = {k: v for k, v in arrays.items() if k.startswith("cb")}
    return record


def common_epoch(strategy: tf.distribute.Strategy, complete: list[int]) -> int:
    """The newest epoch that every worker of ``strategy`` has backed up whole (0 if none), given
    this worker's whole epochs ``complete``; every worker must call it at the same point.

    The workers step in lockstep, but a job is killed one process at a time, so a worker may
    have backed up an epoch that another one did not finish writing. Each keeps its two newest
    epochs, so they share one whenever they are at most one epoch apart.
    """
    newest = sorted(complete)[-_KEEP:]
    if strategy.num_replicas_in_sync == 1:
        return max(newest, default=0)
    row = np.full([1, _KEEP], -1, np.int64)
    row[0, : len(newest)] = newest
    local = tf.constant(row)
    rows = strategy.gather(strategy.run(lambda: tf.identity(local)), axis=0).numpy()
    shared = set.intersection(*({int(e) for e in r if e > 0} for r in rows))
    return max(shared, default=0)
