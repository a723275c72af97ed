"""Multi-worker training: two worker processes on localhost against one process."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfp_realnvp import cli, load_model
from tfp_realnvp.cli.backup_files import backup_dir, complete_epochs

COMMON = ["train", "--no-xla", "--quiet", "--batch-size", "64", "--seed", "3"]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


KILLER = str(Path(__file__).with_name("kill_at_epoch.py"))


def _job(argv: list[str], out, kill: dict[int, int] | None = None, timeout: float = 240):
    """Runs ``tfp-realnvp train ... --distribute multi-worker`` as two processes, one thread of
    compute each, worker ``i`` SIGKILLed as it would back up epoch ``kill[i]``; returns their
    exit codes and stderr. Both are killed if time runs out or the test fails."""
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2")
    argv = [*argv, "--out", str(out), "--distribute", "multi-worker"]
    procs = []
    try:
        for index in range(2):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            head = ["-m", "tfp_realnvp.cli"]
            if index in (kill or {}):
                head = [KILLER, str(kill[index])]
            procs.append(
                subprocess.Popen(
                    [sys.executable, *head, *argv],
                    env={**env, "TF_CONFIG": json.dumps(config)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        errors = [p.communicate(timeout=timeout)[1] for p in procs]
        return [p.returncode for p in procs], errors
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _two_workers(argv: list[str], out) -> list[str]:
    codes, errors = _job(argv, out)
    assert codes == [0, 0], errors[0][-2000:] + errors[1][-2000:]
    return errors


def _history(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _weights(run) -> list[np.ndarray]:
    return load_model(run / "model.keras").get_weights()


# 512 training rows: every global batch of 64 splits evenly, so the average of the two workers'
# mean losses is the mean over the global batch, up to float32 summation order.
VECTORS = [*COMMON, "--num-samples", "640", "--epochs", "3", "--couplings", "2", "--hidden", "8"]
VECTORS += ["--dropout", "0"]


@pytest.fixture(scope="module")
def two_workers_on_vectors(tmp_path_factory):
    """An uninterrupted two-worker run on vectors, shared by the tests that compare with it."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    _two_workers(VECTORS, out)
    # The chief alone wrote the run; the other worker's copy and both backups are gone.
    assert [p.name for p in out.parent.iterdir()] == ["run"]
    return out


def _compare(one, two, rtol):
    a, b = _history(one), _history(two)
    assert a["epochs"] == b["epochs"] == 3
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(b["history"][key], a["history"][key], rtol=rtol)
    np.testing.assert_allclose(b["test_nll"], a["test_nll"], rtol=rtol)


@pytest.mark.slow
def test_two_workers_follow_one_process_on_vectors(tmp_path, two_workers_on_vectors):
    assert cli.main([*VECTORS, "--out", str(tmp_path / "one")]) == 0
    _compare(tmp_path / "one", two_workers_on_vectors, rtol=1e-5)


@pytest.mark.slow
def test_two_workers_follow_one_process_on_a_multiscale_image_flow(tmp_path):
    # Each replica dequantises its own half batch with its own uniform noise, so the losses
    # agree to the noise's effect on the mean of two batches an epoch (measured: 1.4%), not to
    # float32 rounding; the vector test shows the arithmetic itself is the same.
    images = np.random.default_rng(0).integers(0, 4, size=(160, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "data.npy", images)
    argv = [*COMMON, "--data", str(tmp_path / "data.npy"), "--epochs", "3"]
    argv += ["--couplings", "1", "--hidden", "4"]
    assert cli.main([*argv, "--out", str(tmp_path / "one")]) == 0
    _two_workers(argv, tmp_path / "two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy", "one", "two"]
    _compare(tmp_path / "one", tmp_path / "two", rtol=3e-2)


@pytest.mark.slow
def test_a_job_that_lost_a_worker_restarts_to_the_same_weights(tmp_path, two_workers_on_vectors):
    out = tmp_path / "run"
    # Worker 1 dies as it would back up epoch 2. The chief backs epoch 2 up, then TensorFlow
    # aborts its next all-reduce (worker 1 stopped sending heartbeats) and it stops in one line.
    codes, errors = _job(VECTORS, out, kill={1: 2})
    assert codes == [1, -signal.SIGKILL], errors[0][-2000:]
    assert errors[0].splitlines()[-1] == (
        "tfp-realnvp: error: worker 1 of the job stopped, so training cannot go on; restart "
        "every worker with the same command to resume from the backups"
    ), errors[0][-2000:]
    assert not out.exists()
    assert complete_epochs(backup_dir(out, 0)) == [1, 2]
    assert complete_epochs(backup_dir(out, 1)) == [1]
    # With worker 1's backup away, --resume is refused by both workers alike, changing nothing
    # (one refusing alone would leave the other waiting for it).
    away = tmp_path / "away"
    backup_dir(out, 1).rename(away)
    codes, errors = _job([*VECTORS, "--resume"], out)
    assert codes == [2, 2], errors[0][-2000:]
    assert [e.splitlines()[-1].startswith("tfp-realnvp: error: --resume: the workers' backups")
            for e in errors] == [True, True], errors  # fmt: skip
    assert complete_epochs(backup_dir(out, 0)) == [1, 2] and not backup_dir(out, 1).exists()
    away.rename(backup_dir(out, 1))
    # Restarted, the workers agree on epoch 1, the newest that both backed up.
    errors = _two_workers(VECTORS, out)
    assert "epoch 1 is the newest one every worker backed up" in errors[0], errors[0][-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    # Same global batches, same all-reduces: the same history and weights, to the bit.
    whole, resumed = _history(two_workers_on_vectors), _history(out)
    assert resumed["history"] == whole["history"]
    assert resumed["test_nll"] == whole["test_nll"]
    for x, y in zip(_weights(two_workers_on_vectors), _weights(out), strict=True):
        np.testing.assert_array_equal(x, y)


class _Strategy:
    def __init__(self, *devices):
        self.num_replicas_in_sync = len(devices)
        self.extended = type("Extended", (), {"worker_devices": devices})()


def test_xla_is_used_where_tf_can_compile_a_replicated_step():
    from tfp_realnvp.model import xla_allowed

    assert xla_allowed(_Strategy("/job:localhost/replica:0/task:0/device:CPU:0"))
    assert xla_allowed(_Strategy("/job:worker/task:0/device:GPU:0", "/job:worker/task:0/GPU:1"))
    # No XLA collectives on CPU; a logical-CPU mirror reads another device's variable.
    assert not xla_allowed(_Strategy("/job:worker/task:0/device:CPU:0", "/job:worker/task:1/CPU:0"))
    assert not xla_allowed(_Strategy("/device:GPU:0", "/device:CPU:0"))


def test_a_lost_worker_is_named_from_tensorflows_report():
    from tfp_realnvp.cli.cluster import lost_worker

    report = (
        "{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:0/device"
        ":CPU:0}} Collective ops is aborted by: Error reported from /job:worker/task:1: The "
        "following tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1"
        "\nThe tasks have crashed. [Op:CollectiveReduceV2]"
    )
    assert str(lost_worker(report)) == (
        "worker 1 of the job stopped, so training cannot go on; restart every worker with the "
        "same command to resume from the backups"
    )
    two = report.replace("task:1\nThe", "task:1\n/job:chief/replica:0/task:0\nThe")
    assert str(lost_worker(two)).startswith("chief 0, worker 1 of the job stopped, so training")
    assert str(lost_worker("Socket closed")).startswith("another worker of the job stopped")


def test_only_an_unavailable_peer_counts_as_a_lost_worker():
    import tensorflow as tf

    from tfp_realnvp.cli.train import _peer_stopped

    assert _peer_stopped(tf.errors.UnavailableError(None, None, "heartbeats stopped"))
    assert not _peer_stopped(tf.errors.InvalidArgumentError(None, None, "a bad value"))
    assert not _peer_stopped(KeyboardInterrupt())


def test_one_process_resumes_from_its_own_newest_epoch():
    import tensorflow as tf

    from tfp_realnvp.cli.backup_callback import common_epoch

    assert common_epoch(tf.distribute.get_strategy(), [2, 3]) == 3
    assert common_epoch(tf.distribute.get_strategy(), []) == 0
