"""The README's multi-worker timing: one process against two workers on localhost.

Moons, the default 8-coupling 64-64 flow, 6,400 training rows (``--num-samples 8000``, 80%),
batch 256, 6 epochs, one compute thread per process (``TF_NUM_INTRAOP_THREADS=1``), without
XLA (no CPU collectives): the wall time of ``tfp-realnvp train`` as one process, and as a
two-worker job (``--distribute multi-worker``, TF_CONFIG on two localhost ports), each from
start to a published run. Results go to ``benchmarks/results_multiworker_timing.json``.

Usage: ``python benchmarks/multiworker_timing.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARGS = ["train", "--num-samples", "8000", "--batch-size", "256", "--epochs", "6", "--no-xla"]


def _ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "2"}
    command = [sys.executable, "-m", "tfp_realnvp.cli", *ARGS, "--quiet"]
    start = time.perf_counter()
    subprocess.run([*command, "--out", str(folder / "one")], env=env, check=True)
    one = time.perf_counter() - start
    workers = [f"localhost:{p}" for p in _ports(2)]
    start = time.perf_counter()
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        argv = [*command, "--out", str(folder / "two"), "--distribute", "multi-worker"]
        procs.append(subprocess.Popen(argv, env={**env, "TF_CONFIG": json.dumps(config)}))
    if any(p.wait() for p in procs):
        raise SystemExit("a worker failed")
    two = time.perf_counter() - start
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "tfp-realnvp " + " ".join(ARGS),
        "one_process_s": round(one, 1),
        "two_workers_s": round(two, 1),
    }
    print(results)
    (HERE / "results_multiworker_timing.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
