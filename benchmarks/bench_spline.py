"""Training-step time of spline couplings against affine couplings with the same conditioners.

Both flows are 8 couplings on D = 64 with 256-256 residual MLPs (the benchmark workload of
bench_realnvp.py); the spline's conditioners end in 23 outputs per unit (8 widths, 8 heights,
7 derivatives) where the affine's end in 2. One process holds both models, compiled with XLA
(`FlowModel.compile()`'s default), and times `fit` over the same 40 batches of 256, the two
alternating for 7 rounds after a warm-up; the ratio of medians is the figure.

    python benchmarks/bench_spline.py --out benchmarks/results_spline_speed.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results_spline_speed.json")
    args = parser.parse_args()

    import tensorflow as tf

    import tfp_realnvp as trn
    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(40 * 256, 64)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(x).batch(256).cache()
    models = {
        "affine": trn.FlowModel(trn.real_nvp([64], 8, [256, 256])),
        "spline": trn.FlowModel(trn.neural_spline_flow([64], 8, [256, 256], num_bins=args.bins)),
    }
    times = {k: [] for k in models}
    for model in models.values():
        model.compile(keras.optimizers.Adam(1e-4))
        model.fit(data, epochs=1, verbose=0)  # trace and compile
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            times[name].append((time.perf_counter() - start) / 40)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    ratio = medians["spline"] / medians["affine"]
    for name, m in medians.items():
        print(f"{name:7s} {1e3 * m:7.1f} ms per step")
    print(f"spline / affine: {ratio:.2f}x")
    result = {"step_seconds": times, "median_step_seconds": medians, "ratio": ratio}
    with open(args.out, "w") as f:
        json.dump(
            {
                "bins": args.bins,
                "threads": tf.config.threading.get_inter_op_parallelism_threads(),
                **result,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
