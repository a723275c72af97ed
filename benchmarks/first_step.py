"""Where the first training step's time goes: Python tracing against compiling (XLA or
TensorFlow's graph optimiser), ours against TFP's `tfb.RealNVP`, each in a fresh process.

The workload is bench_realnvp.py's (D = 64, 8 couplings, 256-256 MLPs, batch 512). For each
configuration a fresh process times ``train.get_concrete_function(x)`` (the trace alone), then
the first call (for XLA the compilation, otherwise grappler and the executor's set-up, plus one
step) and the median of 20 later steps. Configurations alternate within each repeat, so the
machine's drift hits them alike.

Run:  python benchmarks/first_step.py [--repeats 5] [--out benchmarks/results_first_step.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CONFIGS = {  # name: (library, jit_compile); "fit": FlowModel.fit's first call of 8 steps
    "ours-fit": ("fit", "auto"),
    "ours-fit-no-xla": ("fit", False),
    "ours-xla": ("ours", True),
    "ours-function": ("ours", False),
    "tfp-xla": ("tfp", True),
    "tfp-function": ("tfp", False),
}
BATCH, D = 512, 64


def _worker(config: str) -> dict:
    import numpy as np
    import tensorflow as tf
    from bench_realnvp import build

    from tfp_realnvp import keras

    library, jit = CONFIGS[config]
    keras.utils.set_random_seed(0)
    x = tf.constant(np.random.default_rng(0).normal(size=(BATCH, D)), tf.float32)
    t0 = time.perf_counter()
    model, dist, variables = build("ours" if library == "fit" else library, D)
    optimizer = keras.optimizers.Adam(1e-3)
    built = time.perf_counter() - t0
    if library == "fit":  # the trace, compilation and 8 steps in one call, as a user sees it
        model.compile(optimizer=optimizer, jit_compile=jit)
        data = tf.data.Dataset.from_tensors(x).repeat()
        t0 = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=8, verbose=0)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=160, verbose=0)
        step = (time.perf_counter() - t0) / 160
        return {
            "config": config,
            "build_s": built,
            "trace_s": float("nan"),
            "first_call_s": first,
            "trace_plus_first_s": first,
            "step_s": step,
        }

    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    optimizer.build(variables)  # outside the trace, or tf.function traces twice
    train = tf.function(step, jit_compile=jit)
    t0 = time.perf_counter()
    train.get_concrete_function(x)
    trace = time.perf_counter() - t0
    t0 = time.perf_counter()
    float(train(x))
    first = time.perf_counter() - t0
    steps = []
    for _ in range(20):
        t0 = time.perf_counter()
        float(train(x))
        steps.append(time.perf_counter() - t0)
    return {
        "config": config,
        "build_s": built,
        "trace_s": trace,
        "first_call_s": first,
        "trace_plus_first_s": trace + first,
        "step_s": statistics.median(steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default=None, help="write all raw results as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    raw = []
    for rep in range(args.repeats):
        for config in args.configs:
            cmd = [sys.executable, __file__, "--worker", config]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            raw.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"rep {rep}: {raw[-1]}", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(raw, f, indent=1)
    keys = ("build_s", "trace_s", "first_call_s", "trace_plus_first_s", "step_s")
    print("| config | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for config in args.configs:
        rows = [r for r in raw if r["config"] == config]
        cells = [f"{statistics.median(r[k] for r in rows):.3f}" for k in keys]
        print(f"| {config} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
