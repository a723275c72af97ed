"""The command line on real tables: the README's whitened and conditional runs, with their numbers.

Writes scikit-learn's wine and diabetes tables as CSV files (with their column names), runs
``tfp-realnvp train`` on them as the README shows, with the defaults, and records each run's
test NLL beside the closed-form Gaussian reference the command prints:

- wine (178 x 13), per-column standardisation and ``--whiten``: the density of every column,
  against a Gaussian fitted to the same training rows;
- diabetes (442 x 11), ``--context`` the ten features: ``p(progression | features)``, against a
  linear regression with Gaussian noise.

Usage (about 3 minutes on 2 cores): ``python benchmarks/cli_tables.py [--out DIR]``; results go
to ``benchmarks/results_cli_tables.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes, load_wine

HERE = Path(__file__).resolve().parent
FEATURES = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"
RUNS = {
    "wine": ["--data", "wine.csv"],
    "wine --whiten": ["--data", "wine.csv", "--whiten"],
    "diabetes --context": ["--data", "diabetes.csv", "--context", FEATURES],
}


def write_tables(folder: Path) -> None:
    wine = load_wine()
    header = ",".join(wine.feature_names)
    np.savetxt(folder / "wine.csv", wine.data, delimiter=",", header=header, comments="")
    diabetes = load_diabetes(scaled=False)
    table = np.column_stack([diabetes.data, diabetes.target])
    header = ",".join([*diabetes.feature_names, "progression"])
    np.savetxt(folder / "diabetes.csv", table, delimiter=",", header=header, comments="", fmt="%g")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temporary)")
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    write_tables(folder)
    results = {}
    for name, argv in RUNS.items():
        out = f"runs/{name.replace(' --', '-')}"
        command = [sys.executable, "-m", "tfp_realnvp.cli", "train", *argv, "--out", out]
        done = subprocess.run([*command, "--quiet", "--force"], cwd=folder, capture_output=True)
        if done.returncode:
            raise SystemExit(done.stderr.decode())
        metrics = json.loads((folder / out / "metrics.json").read_text())
        reference = metrics.get("test_nll_gaussian", metrics.get("test_nll_linear_gaussian"))
        results[name] = {
            "command": "tfp-realnvp train " + " ".join(argv),
            "test_nll": round(metrics["test_nll"], 3),
            "gaussian_reference_test_nll": round(reference, 3),
            "epochs": metrics["epochs"],
            "best_epoch": metrics["best_epoch"],
            "terminal": done.stdout.decode().splitlines(),
        }
        print(name, results[name]["test_nll"], results[name]["gaussian_reference_test_nll"])
    (HERE / "results_cli_tables.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
