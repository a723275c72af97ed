"""Where a step of ``FlowModel.fit`` goes, next to the matmul limit (issue 25), on the
benchmark workload (D = 64, 8 affine couplings, 256-256 MLPs, batch 512, Adam).

One process; every configuration runs ``--steps`` steps a round, configurations alternate
within each round, and the table takes each one's best and median round (this shared machine
switches for seconds at a time into a mode 1.35-1.5x slower; see ``scaling.py``):

- ``fit``: ``FlowModel.fit`` with its defaults (XLA, several steps per compiled call);
- ``step``: our hand-written XLA step: the loss, its gradients and Adam's update;
- ``gradients``: the loss and its gradients, no update;
- ``loss``: the loss alone (``-mean log_prob``), no gradients;
- ``matmuls``: the step's matmuls alone at the step's shapes, in one XLA function: every
  layer's ``x @ W`` and the backward's ``dy @ W^T`` and ``x^T @ dy`` (2.215 GFLOP a step,
  ``matmul_limit.py``): what the step cannot go below at this CPU's matmul speed.

The differences are the parts: Adam = step - gradients; backward = gradients - loss; the
non-matmul work (bias, activations, the couplings' exp/clamp, log-dets) = gradients - matmuls;
Keras' own per-step work = fit - step.

Run:  python benchmarks/fit_breakdown.py [--rounds 9] [--steps 48]
          [--out benchmarks/results_fit_breakdown.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

D = 64


def _matmul_step(dims: int):
    """The step's matmuls alone: per coupling, the conditioner's layers forward, then the
    gradients with respect to the inputs and the weights, chained so none can be dropped."""
    import tensorflow as tf
    from bench_realnvp import BATCH, COUPLINGS, HIDDEN

    half = dims // 2
    widths = [half, *HIDDEN, 2 * (dims - half)]
    rng = tf.random.Generator.from_seed(0)
    kernels = [
        [tf.Variable(rng.normal([a, b]) * 0.05) for a, b in itertools.pairwise(widths)]
        for _ in range(COUPLINGS)
    ]
    x = rng.normal([BATCH, half])

    @tf.function(jit_compile=True)
    def run(x):
        weight_grads = []  # returned, so that XLA computes each whole
        for layer_kernels in kernels:
            acts = [x]
            for k in layer_kernels:
                acts.append(acts[-1] @ k)
            dy = acts[-1]
            for a, k in zip(reversed(acts[:-1]), reversed(layer_kernels), strict=True):
                weight_grads.append(tf.matmul(a, dy, transpose_a=True))
                dy = tf.matmul(dy, k, transpose_b=True)
            x = dy
        return (*weight_grads, x)

    return lambda: run(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--out", default=str(HERE / "results_fit_breakdown.json"))
    args = parser.parse_args()

    import tensorflow as tf
    from bench_perf2 import timed
    from bench_realnvp import BATCH, build
    from matmul_limit import step_flops

    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    data = tf.random.normal([8 * BATCH, D])
    ds = tf.data.Dataset.from_tensor_slices(data).batch(BATCH).repeat()
    model = build("ours", D)[0]
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    _, dist, variables = build("ours", D)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    batch = data[:BATCH]

    def loss_fn():
        return -tf.reduce_mean(dist.log_prob(batch))

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn()
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    @tf.function(jit_compile=True)
    def gradients():
        with tf.GradientTape() as tape:
            loss = loss_fn()
        return loss + tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, variables)])

    def fit():
        model.fit(ds, epochs=1, steps_per_epoch=args.steps, verbose=0)

    parts = {
        "fit": fit,
        "step": step,
        "gradients": gradients,
        "loss": tf.function(loss_fn, jit_compile=True),
        "matmuls": _matmul_step(D),
    }
    for name, fn in parts.items():  # trace and compile
        fn() if name == "fit" else timed(fn, 2)
    seconds = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, fn in parts.items():
            if name == "fit":
                t0 = time.perf_counter()
                fit()
                seconds[name].append((time.perf_counter() - t0) / args.steps)
            else:
                seconds[name].append(timed(fn, args.steps))
    flops = step_flops()
    results = {"rounds": args.rounds, "steps_per_round": args.steps, "matmul_gflop": flops / 1e9}
    for kind, pick in (("best", min), ("median", statistics.median)):
        ms = {name: 1e3 * pick(s) for name, s in seconds.items()}
        results[kind] = {
            "ms_per_step": ms,
            "parts_ms": {
                "keras (fit - step)": ms["fit"] - ms["step"],
                "adam (step - gradients)": ms["step"] - ms["gradients"],
                "not matmul (gradients - matmuls)": ms["gradients"] - ms["matmuls"],
                "matmuls": ms["matmuls"],
            },
            "matmul_gflop_per_s": flops / 1e6 / ms["matmuls"],
            "fit_share_of_matmul_floor": ms["matmuls"] / ms["fit"],
        }
        print(kind, json.dumps(results[kind], indent=1), flush=True)
    results["seconds_per_step"] = seconds
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
