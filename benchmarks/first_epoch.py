"""The first epoch of ``FlowModel.fit`` on arrays: what a short last batch costs under XLA.

XLA compiles a step anew for every input shape. Batching an array of N rows by B leaves a last
batch of ``N mod B`` rows, in training and again in validation: four compilations where two
would do. ``fit`` now fills that batch up to B with weight-0 rows (`_buckets.padded_batches`).

Configurations, each in a fresh process, interleaved within each repeat (medians reported):

- ``arrays``: ``fit(x, validation_split=0.1, batch_size=B)``, as the README's Keras example;
- ``keras``: the same call with the arrays left to Keras' own batching, short last batches
  kept: what ``fit`` did before (``FlowModel._one_shape`` patched to pass them through);
- ``no-xla``: ``arrays`` with ``compile(jit_compile=False)``.

Workloads: ``readme`` (two moons, 4096 rows, ``real_nvp([2], 8, [64, 64])``, B = 256) and
``wide`` (D = 64, 10000 rows, ``real_nvp([64], 8, [256, 256])``, B = 512, bench_realnvp's flow).
Timed: the first ``fit`` call of one epoch (trace, compile, run), then a call of 5 more epochs
(reported per epoch: the pipelines' steady cost).

Run:  python benchmarks/first_epoch.py [--repeats 3] [--out benchmarks/results_first_epoch.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CONFIGS = ("arrays", "keras", "no-xla")
WORKLOADS = {  # name: (rows, dims, couplings, hidden, batch)
    "readme": (4096, 2, 8, [64, 64], 256),
    "wide": (10000, 64, 8, [256, 256], 512),
}


def _worker(config: str, workload: str) -> dict:
    import numpy as np

    import tfp_realnvp as trn
    from tfp_realnvp import keras

    rows, dims, couplings, hidden, batch = WORKLOADS[workload]
    keras.utils.set_random_seed(0)
    if dims == 2:
        x = trn.data.make_dataset("moons", num_samples=rows)
    else:
        x = np.random.default_rng(0).normal(size=(rows, dims)).astype("float32")
    model = trn.FlowModel(trn.real_nvp([dims], couplings, hidden))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=config != "no-xla")
    if config == "keras":
        trn.FlowModel._one_shape = lambda self, x, y, kwargs, steps: (x, y)
    times = []
    for first, last in ((0, 1), (1, 6)):
        t0 = time.perf_counter()
        model.fit(
            x, validation_split=0.1, batch_size=batch, initial_epoch=first, epochs=last, verbose=0
        )
        times.append(time.perf_counter() - t0)
    return {"config": config, "workload": workload, "first_s": times[0], "epoch_s": times[1] / 5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return
    runs = []
    for repeat in range(args.repeats):
        for workload in WORKLOADS:
            for config in CONFIGS:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", config, workload],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append({"repeat": repeat, **json.loads(out.stdout.splitlines()[-1])})
                print(runs[-1], file=sys.stderr)
    print("| workload | config | first epoch s | later epochs, s each |\n|---|---|---|---|")
    for workload in WORKLOADS:
        for config in CONFIGS:
            mine = [r for r in runs if r["config"] == config and r["workload"] == workload]
            first = statistics.median(r["first_s"] for r in mine)
            second = statistics.median(r["epoch_s"] for r in mine)
            print(f"| {workload} | {config} | {first:.2f} | {second:.2f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
