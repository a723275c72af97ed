"""Side-by-side benchmark: our MAF / IAF against TFP's `tfb.MaskedAutoregressiveFlow`.

Workload (issue 10): two autoregressive layers with a reversal between them, each conditioned
by a MADE with 256-256 ReLU hidden layers and the plain affine map ``exp(log_scale)`` on both
sides (ours: ``masked_autoregressive_flow([D], 2, [256, 256], scale="exp")``; TFP's:
``tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(params=2, hidden_units=[256, 256]))``,
inverted for IAF), D = 8 and 64, batches 1024 and 8192, float32. Timed, each in `tf.function`
with and without ``jit_compile``:

- MAF density: ``log_prob(x)`` of the MAF distribution (one MADE pass per layer);
- IAF sampling: ``forward(z)`` of the IAF flow on noise drawn beforehand (one pass per layer);
- at D = 8 and batch 1024 also the slow directions (MAF ``forward``, IAF ``inverse``: D passes).

TFP's `AutoregressiveNetwork` is a tf-keras layer, so TFP's side runs under
``TF_USE_LEGACY_KERAS=1``; ours runs under Keras 3, TensorFlow's default. Every configuration
runs in a fresh process, interleaved within each repeat; medians over repeats. On a shared
machine single runs drift by 2-3x, so the ``paired-*`` configurations also build both
libraries in one tf-keras process and time them alternately, five rounds each: their ratio is
the steadier number.

Run:  nice python benchmarks/bench_autoregressive.py [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = ("ours-function", "tfp-function", "paired-function", "ours-xla", "tfp-xla", "paired-xla")
HIDDEN, LAYERS = [256, 256], 2
BATCHES = (1024, 8192)
SLOW = (8, 1024)  # (D, batch) at which the slow directions are timed too


def _flows(library: str, dims: int):
    """(MAF distribution, IAF bijector, MAF bijector)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfb, tfd = tfp.bijectors, tfp.distributions
    base = tfd.Sample(tfd.Normal(0.0, 1.0), [dims])
    if library == "ours":
        import tfp_realnvp as trn

        def flow(inverse):
            return trn.masked_autoregressive_flow(
                [dims], LAYERS, HIDDEN, scale="exp", inverse=inverse
            )

        maf, iaf = flow(False), flow(True)
    else:

        def layer():
            made = tfb.AutoregressiveNetwork(params=2, hidden_units=HIDDEN, activation="relu")
            return tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=made)

        def flow(inverse):
            parts = []
            for i in range(LAYERS):
                parts.append(tfb.Invert(layer()) if inverse else layer())
                if i < LAYERS - 1:
                    parts.append(tfb.Permute(np.arange(dims)[::-1].copy()))
            return tfb.Chain(parts)

        maf, iaf = flow(False), flow(True)
        x = tf.zeros([1, dims])
        maf.inverse(x), iaf.forward(x)  # build the networks' weights
    return tfd.TransformedDistribution(base, maf), iaf, maf


def _passes(library: str, dims: int, jit: bool) -> dict:
    """Name -> compiled function of the passes timed for ``library``, off the identity start."""
    import numpy as np
    import tensorflow as tf

    maf_dist, iaf, maf = _flows(library, dims)
    rng = np.random.default_rng(0)  # the same perturbation for both libraries
    for v in [*maf_dist.trainable_variables, *iaf.trainable_variables]:
        v.assign(rng.normal(0, 0.05, v.shape).astype("float32"))
    passes = {
        "maf_density": tf.function(maf_dist.log_prob, jit_compile=jit),
        "iaf_sampling": tf.function(iaf.forward, jit_compile=jit),
    }
    if dims == SLOW[0]:
        passes["maf_sampling"] = tf.function(maf.forward, jit_compile=jit)
        passes["iaf_density"] = tf.function(iaf.inverse, jit_compile=jit)
    return passes


def _rate(fn, x) -> float:
    """Points per second over a few calls (after two untimed ones)."""
    reps = max(3, 40960 // int(x.shape[0]))
    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn(x)
    out.numpy()
    return reps * int(x.shape[0]) / (time.perf_counter() - t0)


def _worker(config: str, dims: int) -> dict:
    """``<lib>-<mode>``: one library in this process. ``paired-<mode>``: both libraries in this
    process (under tf-keras), timed alternately in 5 rounds: the steadier ratio."""
    import numpy as np
    import tensorflow as tf

    library, mode = config.split("-")
    libraries = ("ours", "tfp") if library == "paired" else (library,)
    passes = {lib: _passes(lib, dims, mode == "xla") for lib in libraries}
    rng = np.random.default_rng(1)
    result = {"config": config, "dims": dims}
    for name in passes[libraries[0]]:
        for batch in BATCHES if name in ("maf_density", "iaf_sampling") else SLOW[1:]:
            x = tf.constant(rng.normal(size=(batch, dims)), tf.float32)
            for lib in libraries:
                t0 = time.perf_counter()
                passes[lib][name](x).numpy()  # trace / compile
                result[f"{lib}_{name}_{batch}_first_s"] = time.perf_counter() - t0
                passes[lib][name](x).numpy()
            rates = {lib: [] for lib in libraries}
            for _ in range(5 if library == "paired" else 1):
                for lib in libraries:
                    rates[lib].append(_rate(passes[lib][name], x))
            for lib in libraries:
                result[f"{lib}_{name}_{batch}"] = statistics.median(rates[lib])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--out", default=None, help="write all raw results as JSON")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker[0], int(args.worker[1]))))
        return
    raw = []
    for rep in range(args.repeats):
        for dims in args.dims:
            for config in CONFIGS:  # interleaved, so drift hits every config alike
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
                env["TF_USE_LEGACY_KERAS"] = "0" if config.startswith("ours") else "1"
                cmd = [sys.executable, __file__, "--worker", config, str(dims)]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                raw.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"rep {rep} D={dims} {config}: {raw[-1]}", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(raw, f, indent=1)
    report(raw)


def report(raw: list[dict]) -> None:
    """One row per (pass, D, batch): points/s of each library, medians over the fresh
    processes, with ratios ours / TFP; then the ratios of the paired runs."""
    rows = sorted(
        {(k.split("_", 1)[1].rsplit("_", 1)[0], r["dims"], int(k.rsplit("_", 1)[1]))
         for r in raw for k in r if k.startswith("ours_") and not k.endswith("_first_s")},
        key=lambda row: (row[0] not in ("maf_density", "iaf_sampling"), row),
    )  # fmt: skip

    def median(config, lib, name, dims, batch):
        key = f"{lib}_{name}_{batch}"
        runs = [r[key] for r in raw if r["config"] == config and r["dims"] == dims and key in r]
        return statistics.median(runs) if runs else None

    print("\nPoints/s, medians of fresh processes (ours under Keras 3, TFP under tf-keras);")
    print("last two columns: ours/TFP timed alternately in one tf-keras process.\n")
    print("| pass | D | batch | ours fn | TFP fn | ours/TFP | ours XLA | TFP XLA | ours/TFP "
          "| paired fn | paired XLA |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, dims, batch in rows:
        cells = []
        for mode in ("function", "xla"):
            ours = median(f"ours-{mode}", "ours", name, dims, batch)
            tfp = median(f"tfp-{mode}", "tfp", name, dims, batch)
            if ours is None or tfp is None:
                cells += ["", "", ""]
            else:
                cells += [f"{ours:,.0f}", f"{tfp:,.0f}", f"{ours / tfp:.2f}"]
        for mode in ("function", "xla"):
            ours = median(f"paired-{mode}", "ours", name, dims, batch)
            tfp = median(f"paired-{mode}", "tfp", name, dims, batch)
            cells.append("" if ours is None or tfp is None else f"{ours / tfp:.2f}")
        print(f"| {name} | {dims} | {batch} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
