"""Runs that survive being killed: backups beside the run, and resuming to the same weights."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfp_realnvp import cli, load_model
from tfp_realnvp.cli import backup_files
from tfp_realnvp.cli.backup_files import backup_dir

KILLER = str(Path(__file__).with_name("kill_at_epoch.py"))
ARGS = "train --no-xla --num-samples 300 --epochs 6 --couplings 2 --hidden 8 --quiet"
ARGS += " --learning-rate 0.05 --patience 2 --batch-size 64 --dropout 0.1"


def _weights(run):
    return load_model(run / "model.keras").get_weights()


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_to_the_same_weights(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli.main([*ARGS.split(), "--out", str(whole)]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    run = subprocess.run(
        [sys.executable, KILLER, "4", *ARGS.split(), "--out", str(killed)],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    saved = backup_dir(killed)
    assert not killed.exists() and backup_files.complete_epochs(saved) == [2, 3]
    # The stopping rule may change on --resume (it was refused): the same backup, resumed
    # with fewer epochs and another patience, trains the epochs it runs as the whole run did.
    shutil.copytree(saved, backup_dir(tmp_path / "short"))
    shorter = ["--epochs", "5", "--patience", "3", "--out", str(tmp_path / "short"), "--resume"]
    assert cli.main([*ARGS.split(), *shorter]) == 0
    short = json.loads((tmp_path / "short" / "metrics.json").read_text())["history"]
    assert cli.main([*ARGS.split(), "--out", str(killed), "--resume"]) == 0
    assert not saved.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed", "short", "whole"]
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (whole, killed))
    ran = min(len(a["history"]["loss"]), 5)
    assert len(short["loss"]) <= 5 and short["loss"][:ran] == a["history"]["loss"][:ran]
    # One process, the same batches, dropout masks and callback state: equal to the bit.
    assert a["history"] == b["history"] and a["test_nll"] == b["test_nll"]
    rates = a["history"].get("learning_rate", a["history"].get("lr"))
    assert rates[-1] < rates[0]  # ReduceLROnPlateau acted, so its state had to resume too
    for x, y in zip(_weights(whole), _weights(killed), strict=True):
        np.testing.assert_array_equal(x, y)


def _crashed_run(tmp_path, monkeypatch, data):
    """A train run that crashed after backing up epoch 1 (its backup stays, marked with the
    command's fingerprint)."""

    def crash(data, config, tmp, backup, *rest):
        (backup / "epoch-1").mkdir()
        raise RuntimeError("the machine went down")

    monkeypatch.setattr("tfp_realnvp.cli.run.train_run", crash)
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "3"]
    with pytest.raises(RuntimeError, match="went down"):
        cli.main([*argv, "--no-xla", "--quiet"])
    assert backup_files.complete_epochs(backup_dir(tmp_path / "run")) == [1]
    return argv


def test_a_backup_is_not_resumed_on_other_data_nor_with_force(tmp_path, monkeypatch, capsys):
    data = tmp_path / "t.csv"
    np.savetxt(data, np.random.default_rng(0).normal(size=(60, 2)), delimiter=",")
    argv = _crashed_run(tmp_path, monkeypatch, data)
    saved = backup_dir(tmp_path / "run")
    before = sorted(p.name for p in saved.iterdir())
    # The data file changed since: its size and time are part of the command's fingerprint.
    with data.open("a") as f:
        f.write("0.5,0.5\n")
    capsys.readouterr()
    assert cli.main([*argv, "--no-xla", "--quiet", "--resume"]) == 2
    assert "other settings (the data files differ); rerun" in capsys.readouterr().err
    # --force may discard a backup of ours, but --resume insists on resuming it: refused.
    assert cli.main([*argv, "--no-xla", "--quiet", "--resume", "--force"]) == 2
    assert "--resume: the backup at" in capsys.readouterr().err
    assert sorted(p.name for p in saved.iterdir()) == before  # nothing was touched


@pytest.mark.slow
def test_a_sharded_run_killed_after_its_best_epoch_resumes_to_the_same_weights(tmp_path):
    # Batches of 16 from shards of 64 rows: each epoch's order within and across shards must be
    # drawn again the same after a restart. The run is killed two epochs after its best one (by
    # validation NLL) and resumes from the epoch after it, so the best weights that early
    # stopping restores at the end were saved before the restart.
    rng = np.random.default_rng(1)
    for i in range(4):
        np.save(tmp_path / f"part{i}.npy", (rng.normal(size=(64, 2)) * [1, 3]).astype("float32"))
    np.savetxt(tmp_path / "val.csv", rng.normal(size=(32, 2)) * [1, 3], delimiter=",")
    args = ["train", "--data", str(tmp_path / "part*.npy"), "--validation-data"]
    args += [str(tmp_path / "val.csv"), "--no-xla", "--epochs", "8", "--patience", "3", "--quiet"]
    args += ["--couplings", "2", "--hidden", "8", "--batch-size", "16", "--dropout", "0"]
    args += ["--learning-rate", "0.05"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli.main([*args, "--out", str(whole)]) == 0
    a = json.loads((whole / "metrics.json").read_text())
    kill = a["best_epoch"] + 2
    assert kill <= len(a["history"]["loss"]) < 8, a  # stopped early, after the kill epoch
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    run = subprocess.run(
        [sys.executable, KILLER, str(kill), *args, "--out", str(killed)],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    assert backup_files.complete_epochs(backup_dir(killed)) == [kill - 2, kill - 1]
    assert cli.main([*args, "--out", str(killed), "--resume"]) == 0
    b = json.loads((killed / "metrics.json").read_text())
    assert a["history"] == b["history"] and a["test_nll"] == b["test_nll"]
    assert b["best_epoch"] == a["best_epoch"]
    for x, y in zip(_weights(whole), _weights(killed), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_backup_resumes_under_another_stopping_rule_and_output_settings(
    tmp_path, monkeypatch, capsys
):
    # The fingerprint leaves out what may change between a run and its resumption: the
    # stopping rule (--epochs, --patience) and what is printed (--quiet, --verbose); a
    # training setting (here the learning rate) may not change.
    data = tmp_path / "t.csv"
    np.savetxt(data, np.random.default_rng(0).normal(size=(60, 2)), delimiter=",")
    argv = _crashed_run(tmp_path, monkeypatch, data)
    resumed_from = []

    def resumed(data, config, tmp, backup, resume_from, *rest):
        resumed_from.append(resume_from)
        raise RuntimeError("stopped again")

    monkeypatch.setattr("tfp_realnvp.cli.run.train_run", resumed)
    changed = ["--epochs", "9", "--patience", "4", "--verbose", "--resume"]
    with pytest.raises(RuntimeError, match="stopped again"):
        cli.main([*argv, "--no-xla", *changed])
    assert resumed_from == [1]
    capsys.readouterr()
    assert cli.main([*argv, "--no-xla", "--quiet", "--learning-rate", "0.01"]) == 2
    assert "other settings (--learning-rate differ); rerun" in capsys.readouterr().err


def test_the_workers_resume_from_the_newest_epoch_they_all_backed_up(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import tensorflow as tf

    from tfp_realnvp.cli import backup_callback
    from tfp_realnvp.cli.cluster import Task
    from tfp_realnvp.cli.train import _agree_on_epoch

    out, one = tmp_path / "run", tf.distribute.get_strategy()
    saved = backup_files.start_backup(out, {"command": "test"}, discard=False)
    for epoch in (2, 3):
        (saved / f"epoch-{epoch}").mkdir()
    plain = SimpleNamespace(resume=False, verbose=False)
    insisting = SimpleNamespace(resume=True, verbose=False)
    # Alone, a worker resumes from its own newest epoch; a backup to discard stays discarded.
    assert _agree_on_epoch(plain, one, out, Task(0, 1), 3) == 3
    assert _agree_on_epoch(plain, one, out, Task(0, 1), -1) == -1
    assert backup_files.complete_epochs(saved) == [2, 3] and capsys.readouterr().err == ""
    # Another worker backed up epoch 2 only: this one rewinds to it, and says so.
    seen = []

    def other_has_two(strategy, mine):
        seen.append(mine)
        return 2

    monkeypatch.setattr(backup_callback, "common_epoch", other_has_two)
    assert _agree_on_epoch(plain, one, out, Task(0, 2), 3) == 2
    assert seen == [[2, 3]] and backup_files.complete_epochs(saved) == [2]
    assert capsys.readouterr().err == (
        "tfp-realnvp: note: epoch 2 is the newest one every worker backed up; resuming from there\n"
    )
    # --resume with no epoch shared by every worker is refused, naming this worker's epochs.
    monkeypatch.setattr(backup_callback, "common_epoch", lambda strategy, mine: 0)
    with pytest.raises(backup_files.BackupError) as refused:
        _agree_on_epoch(insisting, one, out, Task(0, 2), 2)
    assert str(refused.value) == (
        f"--resume: the workers' backups share no whole epoch (this worker has epochs [2] in "
        f"{saved}); restart the job without --resume to start over"
    )
    with pytest.raises(backup_files.BackupError, match=r"\(this worker has none in "):
        _agree_on_epoch(insisting, one, out, Task(0, 2), 0)
    assert _agree_on_epoch(plain, one, out, Task(0, 2), 0) == 0  # a fresh start needs none
