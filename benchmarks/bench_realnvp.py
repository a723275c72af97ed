"""Side-by-side benchmark: tfp_realnvp against TFP's own `tfb.RealNVP`.

Workload (issue 5): D=64, 8 affine couplings with 256-256 ReLU MLP conditioners, half split
with the halves swapped between couplings, batch 512, Adam 1e-3 (725,504 parameters); and the
same on D=2 (two-moons sized). Every configuration runs in a fresh process, the runs are
interleaved, and medians over repeats are reported, with ratios ours / TFP.

Run:  python benchmarks/bench_realnvp.py [--repeats 3] [--dims 64 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # name: (library, how the train step runs)
    "ours-fit": ("ours", "fit"),  # FlowModel.compile() defaults + model.fit
    # the same with a callback that watches every batch (fit then runs one step per call)
    "ours-fit-watched": ("ours", "fitw"),
    "ours-fit-spe8": ("ours", "fit8"),  # the same with compile(steps_per_execution=8)
    "ours-step": ("ours", "xla"),  # hand-written train step, jit_compile=True
    "tfp-function": ("tfp", "function"),
    "tfp-xla": ("tfp", "xla"),
}
BATCH, HIDDEN, COUPLINGS = 512, [256, 256], 8
EVAL_POINTS = 8192


def build(library: str, dims: int):
    """The benchmark flow: ``(model, dist, variables)``; ``model`` is our `FlowModel` (None
    for TFP, whose side is `tfb.RealNVP` with Keras MLPs and `tfb.Permute` between couplings)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp

    import tfp_realnvp as trn
    from tfp_realnvp import keras

    tfb, tfd = tfp.bijectors, tfp.distributions
    half = dims // 2
    if library == "ours":
        flow = trn.real_nvp([dims], COUPLINGS, HIDDEN, permutation="alternate")
        model = trn.FlowModel(flow)
        return model, model.distribution, model.trainable_variables

    def net(units_out):
        return keras.Sequential(
            [keras.layers.Dense(h, "relu") for h in HIDDEN] + [keras.layers.Dense(2 * units_out)]
        )

    bijectors, nets = [], []
    for i in range(COUPLINGS):
        mlp = net(dims - half)
        mlp.build((None, half))
        nets.append(mlp)

        def fn(x, output_units, mlp=mlp):
            return tf.split(mlp(x), 2, axis=-1)

        bijectors.append(tfb.RealNVP(num_masked=half, shift_and_log_scale_fn=fn))
        if i < COUPLINGS - 1:
            bijectors.append(tfb.Permute(np.roll(np.arange(dims), -half)))  # swap halves
    dist = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), [dims]), tfb.Chain(bijectors[::-1])
    )
    return None, dist, [v for m in nets for v in m.trainable_variables]


def _worker(config: str, dims: int, steps: int) -> dict:
    import resource

    import numpy as np
    import tensorflow as tf

    from tfp_realnvp import keras

    library, mode = CONFIGS[config]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    batches = [tf.constant(rng.normal(size=(BATCH, dims)), tf.float32) for _ in range(8)]
    points = tf.constant(rng.normal(size=(EVAL_POINTS, dims)), tf.float32)
    model, dist, variables = build(library, dims)
    num_params = int(sum(np.prod(v.shape) for v in variables))
    optimizer = keras.optimizers.Adam(1e-3)
    jit = mode == "xla"

    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    result = {"config": config, "dims": dims, "params": num_params}
    if mode.startswith("fit"):
        model.compile(optimizer=optimizer, **({"steps_per_execution": 8} if mode == "fit8" else {}))
        watch = [keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)]
        callbacks = watch if mode == "fitw" else []
        ds = tf.data.Dataset.from_tensor_slices(tf.concat(batches, 0)).batch(BATCH).repeat()
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0, callbacks=callbacks)
        result["first_call_s"] = time.perf_counter() - t0
        model.fit(ds, epochs=1, steps_per_epoch=8, verbose=0, callbacks=callbacks)
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
        result["train_steps_per_s"] = steps / (time.perf_counter() - t0)
        log_prob, sample = model.log_prob, lambda n: model.sample(n)
    else:
        train = tf.function(step, jit_compile=jit)
        t0 = time.perf_counter()
        float(train(batches[0]))
        result["first_call_s"] = time.perf_counter() - t0
        for i in range(5):
            train(batches[i % 8])
        t0 = time.perf_counter()
        for i in range(steps):
            loss = train(batches[i % 8])
        float(loss)
        result["train_steps_per_s"] = steps / (time.perf_counter() - t0)
        log_prob = tf.function(dist.log_prob, jit_compile=jit)
        sample_fn = tf.function(lambda: dist.sample(EVAL_POINTS), jit_compile=jit)
        sample = lambda n: sample_fn()  # noqa: E731
        if library == "ours":  # our public API, as a user calls it
            log_prob, sample = model.log_prob, lambda n: model.sample(n)

    for name, fn, count in (
        ("log_prob_points_per_s", lambda: log_prob(points), EVAL_POINTS),
        ("sample_per_s", lambda: sample(EVAL_POINTS), EVAL_POINTS),
    ):
        fn().numpy()  # trace / compile
        fn().numpy()
        reps = 10 if dims > 2 else 30
        t0 = time.perf_counter()
        for _ in range(reps):
            out = fn()
        out.numpy()
        result[name] = reps * count / (time.perf_counter() - t0)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default=None, help="write all raw results as JSON")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker[0], int(args.worker[1]), args.steps)))
        return

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    raw = []
    for rep in range(args.repeats):
        for dims in args.dims:
            for config in args.configs:  # interleaved, so drift hits every config alike
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    config,
                    str(dims),
                    "--steps",
                    str(args.steps),
                ]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                raw.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"rep {rep} D={dims} {config}: {raw[-1]}", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(raw, f, indent=1)
    report(raw)


METRICS = (
    "train_steps_per_s",
    "log_prob_points_per_s",
    "sample_per_s",
    "first_call_s",
    "peak_rss_mb",
)


def report(raw: list[dict]) -> None:
    for dims in sorted({r["dims"] for r in raw}, reverse=True):
        rows = {}
        for config in CONFIGS:
            runs = [r for r in raw if r["dims"] == dims and r["config"] == config]
            if runs:
                rows[config] = {m: statistics.median(r[m] for r in runs) for m in METRICS}
        print(f"\nD = {dims} (medians of {len(runs)} fresh processes)")
        print("| config | train steps/s | log_prob points/s | sample /s | first call s | peak MB |")
        print("|---|---|---|---|---|---|")
        for config, m in rows.items():
            print(
                f"| {config} | {m['train_steps_per_s']:.1f} | {m['log_prob_points_per_s']:.0f} | "
                f"{m['sample_per_s']:.0f} | {m['first_call_s']:.2f} | {m['peak_rss_mb']:.0f} |"
            )
        if "tfp-xla" in rows and "tfp-function" in rows:
            for ours in ("ours-fit", "ours-fit-watched", "ours-fit-spe8", "ours-step"):
                if ours not in rows:
                    continue
                o, x, f = rows[ours], rows["tfp-xla"], rows["tfp-function"]

                def ratio(metric, other, o=o):
                    return o[metric] / other[metric]

                print(
                    f"{ours}: train x{ratio('train_steps_per_s', x):.2f} vs TFP-XLA; "
                    f"log_prob x{ratio('log_prob_points_per_s', x):.2f} vs TFP-XLA; "
                    f"sample x{ratio('sample_per_s', f):.2f} vs TFP tf.function; "
                    f"first call x{ratio('first_call_s', f):.2f} of TFP tf.function's "
                    "(lower is better)"
                )


if __name__ == "__main__":
    main()
