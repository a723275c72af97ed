"""The README's digits table: each row's command, run with the same budget, and its numbers.

Runs ``tfp-realnvp train --data digits --epochs 60 --batch-size 64`` with each row's options
(80/10/10 split, Adam 2e-3 halved on plateaus, early stopping with patience 10, the defaults)
and records epochs run, wall time, test NLL (nats per image) and bits per dimension in
``benchmarks/results_digits_table.json``. About 10 minutes on 2 cores; wall times depend on
what else the machine runs.

Usage: ``python benchmarks/digits_table.py``
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = ["--data", "digits", "--epochs", "60", "--batch-size", "64"]
ROWS = {
    "multi-scale RealNVP (64 channels, 2 scales)": [],
    "Glow steps (same sizes)": ["--architecture", "glow"],
    "multi-scale spline flow (same sizes, 8-bin splines)": ["--flow", "spline"],
    "vector RealNVP with dropout 0.2 (the default below 5,000 rows)": ["--architecture", "vector"],
    "vector spline flow with dropout 0.2": ["--architecture", "vector", "--flow", "spline"],
}


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    results = {"date": time.strftime("%Y-%m-%d"), "rows": {}}
    for name, options in ROWS.items():
        out = folder / f"run{len(results['rows'])}"
        command = [sys.executable, "-m", "tfp_realnvp.cli", "train", *BASE, *options]
        start = time.perf_counter()
        done = subprocess.run([*command, "--out", str(out), "--quiet"], capture_output=True)
        if done.returncode:
            raise SystemExit(done.stderr.decode())
        metrics = json.loads((out / "metrics.json").read_text())
        results["rows"][name] = {
            "command": "tfp-realnvp train " + " ".join([*BASE, *options]),
            "epochs": metrics["epochs"],
            "best_epoch": metrics["best_epoch"],
            "wall_time_s": round(time.perf_counter() - start, 1),
            "test_nll": round(metrics["test_nll"], 2),
            "test_bits_per_dim": round(metrics["test_bits_per_dim"], 3),
        }
        print(name, results["rows"][name], flush=True)
    (HERE / "results_digits_table.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
