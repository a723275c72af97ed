"""Performance II (issue 13): the drop-in route, the bfloat16 path and batch-size buckets,
timed paired in one process (configurations alternate round by round; medians of the rounds).

Parts (each a fresh process; all by default):

- ``dropin``: ``dist.log_prob(x)`` and ``dist.sample(n)`` inside the user's own `tf.function`,
  with and without ``jit_compile``, ours (``model.distribution``) against TFP's `tfb.RealNVP`;
  and the matmuls alone at the same shapes (the physical floor).
- ``lowp``: ``model.sample`` / ``model.log_prob`` in float32 (the default, XLA) against
  ``precision="bfloat16"``, after a short training run on a correlated Gaussian, with the
  accuracy cost: log-prob error in nats, and the energy distance of bfloat16 samples to float32
  samples against that of two float32 sample sets (the statistic's own noise).
- ``fit``: training steps/s in one process, round by round: ``fit`` with defaults, ``fit`` with
  a batch-watching callback (one step per call: the old default), our hand-written XLA step and
  TFP's; the fresh-process runs of bench_realnvp.py drift too much between processes here.
- ``buckets``: first-call cost of ``model.log_prob`` on a sequence of new batch sizes, through
  the bucketed path against the compiled function called on raw sizes (the old path).

Run:  python benchmarks/bench_perf2.py [--rounds 7] [--out benchmarks/results_perf2.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_realnvp import EVAL_POINTS, build

D = 64


def timed(fn, reps: int) -> float:
    """Seconds per call of ``fn`` (``reps`` calls, the last result fetched)."""
    import tensorflow as tf

    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn()
    tf.nest.flatten(out)[-1].numpy()
    return (time.perf_counter() - t0) / reps


def paired(fns: dict, rounds: int, reps: int = 5) -> dict:
    """Alternates the callables round by round; per name the median seconds per call."""
    import tensorflow as tf

    for fn in fns.values():
        tf.nest.flatten(fn())[-1].numpy()  # trace / compile
        tf.nest.flatten(fn())[-1].numpy()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, reps))
    return {name: statistics.median(t) for name, t in times.items()}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _matmuls(kernels):
    """A conditioner's matmuls alone (no bias, activation or skip): the matmul floor."""

    def run(h):
        for k in kernels:
            h = h @ (k.value if hasattr(k, "value") else k)
        return (h,)

    return run


def _in_sequence(h, nets):
    """Each net's first output's first columns feed the next, as couplings do."""
    width = h.shape[-1]
    for net in nets:
        h = net(h)[0][:, :width]
    return h


def part_dropin(rounds: int) -> dict:
    import tensorflow as tf

    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    x = tf.random.normal([EVAL_POINTS, D])
    ours = build("ours", D)
    tfp_dist = build("tfp", D)[1]
    for v in ours[2]:  # a flow that acts (ours starts as the identity)
        v.assign(tf.random.normal(v.shape, stddev=0.05))
    fns = {}
    for jit in (False, True):
        tag = "xla" if jit else "fn"
        for lib, dist in (("ours", ours[1]), ("tfp", tfp_dist)):
            lp = tf.function(dist.log_prob, jit_compile=jit)
            smp = tf.function(lambda dist=dist: dist.sample(EVAL_POINTS), jit_compile=jit)
            fns[f"{lib}-{tag}-log_prob"] = lambda lp=lp: lp(x)
            fns[f"{lib}-{tag}-sample"] = smp
    # The floor: the conditioners alone, and their matmuls alone, in sequence as in the flow.
    nets = [c.conditioner for c in ours[0].bijector.bijectors]
    kernels = [[w for w in net.weights if len(w.shape) == 2] for net in nets]
    h = tf.random.normal([EVAL_POINTS, D // 2])
    for jit in (False, True):
        tag = "xla" if jit else "fn"
        fns[f"mlps-{tag}"] = tf.function(lambda: _in_sequence(h, nets), jit_compile=jit)
        fns[f"matmuls-{tag}"] = tf.function(
            lambda: _in_sequence(h, [_matmuls(k) for k in kernels]), jit_compile=jit
        )
    seconds = paired(fns, rounds)
    out = {k: EVAL_POINTS / s for k, s in seconds.items()}
    for tag in ("fn", "xla"):
        for what in ("log_prob", "sample"):
            best_tfp = max(out[f"tfp-fn-{what}"], out[f"tfp-xla-{what}"])
            out[f"ratio-{tag}-{what}-vs-tfp-best"] = out[f"ours-{tag}-{what}"] / best_tfp
    out["ms"] = {k: 1e3 * s for k, s in seconds.items()}
    out["peak_rss_mb"] = peak_mb()
    return out


def _trained_model():
    import numpy as np
    import tensorflow as tf

    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(D, D)) / np.sqrt(D)
    data = (np.tanh(rng.normal(size=(20000, D))) * 2 @ mix).astype("float32")
    model = build("ours", D)[0]
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    ds = tf.data.Dataset.from_tensor_slices(data).shuffle(20000, seed=0).batch(512).repeat()
    model.fit(ds, epochs=1, steps_per_epoch=300, verbose=0)
    return model, data


def energy_distance(a, b) -> float:
    """The (V-statistic) energy distance between two samples."""
    import tensorflow as tf

    def mean_dist(p, q):
        sq = tf.reduce_sum(p**2, 1)[:, None] + tf.reduce_sum(q**2, 1)[None]
        d2 = sq - 2 * p @ tf.transpose(q)
        return float(tf.reduce_mean(tf.sqrt(tf.maximum(d2, 0.0))))

    return 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)


def part_lowp(rounds: int) -> dict:
    import numpy as np
    import tensorflow as tf

    model, data = _trained_model()
    x = tf.constant(data[:EVAL_POINTS])
    fns = {
        "sample-f32": lambda: model.sample(EVAL_POINTS),
        "sample-bf16": lambda: model.sample(EVAL_POINTS, precision="bfloat16"),
        "log_prob-f32": lambda: model.log_prob(x),
        "log_prob-bf16": lambda: model.log_prob(x, precision="bfloat16"),
    }
    # Where the bfloat16 sampling time goes: its conditioners alone, and their matmuls alone,
    # each feeding the next as in the flow (in sequence: no overlap between couplings).
    lowered = model._lowered("bfloat16")
    for dtype, nets in (
        ("f32", [c.conditioner for c in lowered.couplings]),
        ("bf16", lowered.conditioners),
    ):
        h = tf.cast(tf.random.normal([EVAL_POINTS, D // 2]), nets[0].compute_dtype)
        kernels = [[w for w in net.weights if len(w.shape) == 2] for net in nets]
        fns[f"mlps-{dtype}"] = tf.function(lambda h=h, nets=nets: _in_sequence(h, nets))
        fns[f"matmuls-{dtype}"] = tf.function(
            lambda h=h, kernels=kernels: _in_sequence(h, [_matmuls(k) for k in kernels])
        )
    seconds = paired(fns, rounds)
    out = {f"{k}_per_s": EVAL_POINTS / s for k, s in seconds.items()}
    out["ms"] = {k: 1e3 * s for k, s in seconds.items()}
    out["sample_speedup"] = seconds["sample-f32"] / seconds["sample-bf16"]
    out["log_prob_speedup"] = seconds["log_prob-f32"] / seconds["log_prob-bf16"]
    check = tf.function(lowered._compare)
    check()
    out["staleness_check_ms"] = 1e3 * min(timed(lambda: check(), 20) for _ in range(3))
    # Accuracy: log-prob error in nats on held-out points, and sample quality.
    held = tf.constant(data[-4096:])
    f32, bf16 = model.log_prob(held).numpy(), model.log_prob(held, precision="bfloat16").numpy()
    err = np.abs(bf16 - f32)
    out.update(
        log_prob_mean_nats=float(-f32.mean()),
        log_prob_abs_err_mean=float(err.mean()),
        log_prob_abs_err_p99=float(np.quantile(err, 0.99)),
        log_prob_abs_err_max=float(err.max()),
        log_prob_mean_shift=float((bf16 - f32).mean()),
    )
    n = 2000
    a = model.sample(n, seed=1)
    same_noise = model.sample(n, seed=1, precision="bfloat16")
    out["sample_same_noise_abs_err_mean"] = float(np.mean(np.abs(a - same_noise)))
    out["sample_scale"] = float(np.mean(np.abs(a)))
    out["energy_f32_vs_f32"] = energy_distance(a, model.sample(n, seed=2))
    out["energy_f32_vs_bf16"] = energy_distance(a, model.sample(n, seed=2, precision="bfloat16"))
    out["casts"] = lowered.casts
    out["peak_rss_mb"] = peak_mb()
    return out


def _shapes(sizes) -> set[int]:
    """The batch sizes XLA sees through the bucketed path."""
    from tfp_realnvp._buckets import MAX_BUCKET, bucket

    return {bucket(min(MAX_BUCKET, n - s)) for n in sizes for s in range(0, n, MAX_BUCKET)}


def part_buckets(rounds: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    sizes = [1, 7, 1000, 100000] + [int(n) for n in rng.integers(1, 20000, size=16)]
    out = {
        "sizes": sizes,
        "raw_compiles": len(set(sizes)),
        "bucketed_compiles": len(_shapes(sizes)),
    }
    for name in ("raw", "bucketed"):  # a fresh model each: both pay the trace
        model = build("ours", D)[0]
        model.compile()
        # raw: the old path, the compiled function (XLA) on every size as it comes
        fn = model._compiled("log_prob") if name == "raw" else model.log_prob
        firsts, steady = [], []
        for n in sizes:
            x = rng.normal(size=(n, D)).astype("float32")
            t0 = time.perf_counter()
            fn(x).numpy()
            firsts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fn(x).numpy()
            steady.append(time.perf_counter() - t0)
        out[f"{name}_first_s"] = firsts
        out[f"{name}_steady_s"] = steady
        out[f"{name}_first_total_s"] = sum(firsts)
    out["peak_rss_mb"] = peak_mb()
    return out


def _step_loop(dist, variables, ds, steps: int):
    """A hand-written XLA train step, run ``steps`` times over ``ds``."""
    import tensorflow as tf

    from tfp_realnvp import keras

    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    def run():
        for x in ds.take(steps):
            loss = step(x)
        float(loss)

    return run


def part_fit(rounds: int, steps: int = 48) -> dict:
    """Training steps/s, all in one process, round by round: ``fit`` with defaults (several
    steps per call), ``fit`` with a callback that watches batches (one step per call), our
    hand-written XLA step, TFP's XLA step (each its own model: switching would retrace)."""
    import tensorflow as tf

    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    data = tf.random.normal([8 * 512, D])
    ds = tf.data.Dataset.from_tensor_slices(data).batch(512).repeat()
    watch = [keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)]
    runs = {}
    for name, callbacks in (("fit-default", []), ("fit-watched", watch)):
        model = build("ours", D)[0]
        model.compile(optimizer=keras.optimizers.Adam(1e-3))

        def run(model=model, callbacks=callbacks):
            model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)

        runs[name] = run
    for name, library in (("ours-step-xla", "ours"), ("tfp-step-xla", "tfp")):
        runs[name] = _step_loop(*build(library, D)[1:], ds, steps)
    for run in runs.values():
        run()  # trace / compile
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(steps / (time.perf_counter() - t0))
    out = {f"{k}_steps_per_s": statistics.median(v) for k, v in times.items()}
    out["all_steps_per_s"] = times
    base = out["tfp-step-xla_steps_per_s"]
    for k in runs:
        out[f"ratio-{k}-vs-tfp-xla"] = out[f"{k}_steps_per_s"] / base
    out["peak_rss_mb"] = peak_mb()
    return out


PARTS = {"dropin": part_dropin, "lowp": part_lowp, "buckets": part_buckets, "fit": part_fit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--out", default=None)
    parser.add_argument("--fit-steps", type=int, default=48, help="steps per round (fit part)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kwargs = {"steps": args.fit_steps} if args.worker == "fit" else {}
        print(json.dumps(PARTS[args.worker](args.rounds, **kwargs)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    results = {}
    for part in args.parts:
        cmd = [sys.executable, __file__, "--worker", part, "--rounds", str(args.rounds)]
        cmd += ["--fit-steps", str(args.fit_steps)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        results[part] = json.loads(out.stdout.strip().splitlines()[-1])
        print(part, json.dumps(results[part], indent=1), file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
