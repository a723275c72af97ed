"""Training under Keras' ``mixed_bfloat16`` policy on CPU, with and without XLA, against float32.

The issue 25 workload: D = 64, 8 affine couplings, 256-256 residual MLPs, batches of 512. Three
models in one process, each built under its policy, alternating round by round (each round one
`fit` epoch of the same cached batches), so the machine's load falls on all three alike:

- ``float32``: `compile()`'s defaults (XLA);
- ``bfloat16, auto``: `compile()`'s defaults under ``mixed_bfloat16`` (what a user gets);
- ``bfloat16, XLA``: ``compile(jit_compile=True)`` under ``mixed_bfloat16``.

    python benchmarks/bf16_fit.py --out benchmarks/results_bf16_fit.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=24, help="batches per round")
    parser.add_argument("--out", default="benchmarks/results_bf16_fit.json")
    args = parser.parse_args()

    import tensorflow as tf

    import tfp_realnvp as trn
    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(args.steps * 512, 64)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(x).batch(512).cache()
    settings = {
        "float32": ("float32", {}),
        "bfloat16, auto": ("mixed_bfloat16", {}),
        "bfloat16, XLA": ("mixed_bfloat16", {"jit_compile": True}),
    }
    models, jit = {}, {}
    for name, (policy, compile_args) in settings.items():
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = trn.FlowModel(trn.real_nvp([64], 8, [256, 256]))
            model.compile(keras.optimizers.Adam(1e-4), **compile_args)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        jit[name] = bool(model.jit_compile)
        model.fit(data, epochs=1, verbose=0)  # trace and compile
        models[name] = model
    steps_per_s: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            steps_per_s[name].append(args.steps / (time.perf_counter() - start))
    medians = {name: statistics.median(v) for name, v in steps_per_s.items()}
    ratios = {
        name: statistics.median(
            a / b for a, b in zip(steps_per_s[name], steps_per_s["float32"], strict=True)
        )
        for name in models
    }
    for name in models:
        print(
            f"{name:15s} XLA {jit[name]!s:5s} {medians[name]:6.1f} steps/s, "
            f"{ratios[name]:.2f}x float32 (median of per-round ratios)"
        )
    with open(args.out, "w") as f:
        json.dump(
            {
                "workload": "D=64, real_nvp 8 couplings, [256, 256], batch 512",
                "steps_per_round": args.steps,
                "xla": jit,
                "steps_per_s": steps_per_s,
                "median_steps_per_s": medians,
                "median_ratio_to_float32": ratios,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
