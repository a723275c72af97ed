"""Where a spline coupling's training step goes, against an affine coupling's (issue 25's
target: the spline step at most 1.6x the affine one).

One coupling of each on D = 64 with the 256-256 residual MLPs of ``bench_spline.py``; each
slice below is the loss of that much of the coupling and its gradients with respect to the
coupling's weights, compiled with XLA:

- ``affine``: the whole affine coupling (``z``, its log-det);
- ``spline_conditioner``: the spline coupling's conditioner alone (23 outputs a unit: 8
  widths, 8 heights, 7 derivatives, where the affine's has 2);
- ``spline_knots``: the conditioner and the knots (two softmaxes and cumulative sums over
  the bins, the derivatives' ``exp(c tanh(u / c))``);
- ``spline``: the whole spline coupling (the knots, each entry's bin, the rational
  quadratic and its log-det).

So the conditioner's larger output layer costs ``spline_conditioner - affine``, the knots
``spline_knots - spline_conditioner``, the rest of the spline ``spline - spline_knots``. The
slices alternate within each round; best and median rounds are reported (this shared host
drops to a slower mode for seconds at a time, see ``scaling.py``).

Run:  python benchmarks/spline_parts.py [--rounds 9] [--reps 40] [--batches 256 1024]
          [--out benchmarks/results_spline_parts.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

D, HIDDEN = 64, [256, 256]


def _slices(batch: int) -> dict:
    import tensorflow as tf

    import tfp_realnvp as trn

    affine = trn.real_nvp([D], 1, HIDDEN).bijectors[0]
    spline = trn.neural_spline_flow([D], 1, HIDDEN, num_bins=8).bijectors[0]
    x = tf.random.stateless_normal([batch, D], seed=[0, 1])
    for coupling in (affine, spline):
        coupling.inverse(x)  # builds the conditioner

    def params():
        x1, _ = spline._layout.split(x)
        return spline._transformer_params(x1, None, x.dtype)

    def squares(tensors) -> tf.Tensor:
        return tf.add_n([tf.reduce_sum(tf.square(t)) for t in tensors])

    losses = {
        "affine": lambda: squares([affine.inverse(x), affine.inverse_log_det_jacobian(x, 1)]),
        "spline_conditioner": lambda: squares(params()),
        "spline_knots": lambda: squares(spline.transformer.knots(params())),
        "spline": lambda: squares([spline.inverse(x), spline.inverse_log_det_jacobian(x, 1)]),
    }

    def step(loss, variables):
        @tf.function(jit_compile=True)
        def run():
            with tf.GradientTape() as tape:
                value = loss()
            return tape.gradient(value, variables)

        return run

    return {
        name: step(loss, (affine if name == "affine" else spline).trainable_variables)
        for name, loss in losses.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--reps", type=int, default=40, help="calls of a slice a round")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--out", default=str(HERE / "results_spline_parts.json"))
    args = parser.parse_args()
    import tensorflow as tf
    from bench_perf2 import timed

    tf.get_logger().setLevel("ERROR")  # one tf.function per slice: TF's retracing notice
    results = {"dims": D, "hidden": HIDDEN, "bins": 8, "rounds": args.rounds, "batches": {}}
    for batch in args.batches:
        slices = _slices(batch)
        for run in slices.values():
            tf.nest.flatten(run())[-1].numpy()  # trace and compile
        times = {name: [] for name in slices}
        for _ in range(args.rounds):
            for name, run in slices.items():
                times[name].append(1e3 * timed(run, args.reps))
        best = {name: min(t) for name, t in times.items()}
        median = {name: statistics.median(t) for name, t in times.items()}
        results["batches"][str(batch)] = {"ms": times, "best_ms": best, "median_ms": median}
        print(f"batch {batch}: ms per step, best (median); ratio to affine")
        for name in slices:
            print(
                f"  {name:19s} {best[name]:6.3f} ({median[name]:6.3f})"
                f"  {best[name] / best['affine']:.2f}x ({median[name] / median['affine']:.2f}x)"
            )
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
