"""Multi-worker training: two worker processes on localhost against one process."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tfp_realnvp import cli

COMMON = ["train", "--no-xla", "--quiet", "--batch-size", "64", "--seed", "3"]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _two_workers(argv: list[str], out, timeout: float = 240) -> None:
    """Runs ``tfp-realnvp train ... --distribute multi-worker`` as two processes, one thread of
    compute each; kills both if either fails or time runs out."""
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2")
    command = [sys.executable, "-m", "tfp_realnvp.cli", *argv, "--out", str(out)]
    command += ["--distribute", "multi-worker"]
    procs = []
    try:
        for index in range(2):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            procs.append(
                subprocess.Popen(
                    command,
                    env={**env, "TF_CONFIG": json.dumps(config)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        errors = [p.communicate(timeout=timeout)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _compare(tmp_path, argv, rtol):
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli.main([*argv, "--out", str(one)]) == 0
    _two_workers(argv, two)
    # The chief alone wrote the run; the other worker's copy and both backups are gone.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data.npy") == ["one", "two"]
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (one, two))
    assert a["epochs"] == b["epochs"] == 3
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(b["history"][key], a["history"][key], rtol=rtol)
    np.testing.assert_allclose(b["test_nll"], a["test_nll"], rtol=rtol)


@pytest.mark.slow
def test_two_workers_follow_one_process_on_vectors(tmp_path):
    # 512 training rows: every global batch of 64 splits evenly, so the average of the two
    # workers' mean losses is the mean over the global batch, up to float32 summation order.
    argv = [*COMMON, "--num-samples", "640", "--epochs", "3", "--couplings", "2", "--hidden", "8"]
    _compare(tmp_path, [*argv, "--dropout", "0"], rtol=1e-5)


@pytest.mark.slow
def test_two_workers_follow_one_process_on_a_multiscale_image_flow(tmp_path):
    # Each replica dequantises its own half batch with its own uniform noise, so the losses
    # agree to the noise's effect on the mean of two batches an epoch (measured: 1.4%), not to
    # float32 rounding; the vector test shows the arithmetic itself is the same.
    images = np.random.default_rng(0).integers(0, 4, size=(160, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "data.npy", images)
    argv = [*COMMON, "--data", str(tmp_path / "data.npy"), "--epochs", "3"]
    _compare(tmp_path, [*argv, "--couplings", "1", "--hidden", "4"], rtol=3e-2)


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
