"""What sticking the landing costs, computed two ways: `log_weights` as the package does it
now (``grad_z log q`` from the inverse pass and its backward pass to ``z`` alone), and as it
did before 2026-12-07 (``q``'s parameters differentiated through the inverse to cancel the
score term). Same estimator; one process, `fit_vi` on U3 with ``stick_the_landing=True``
(3000 steps, `real_nvp([2], 8, [64, 64])`, seed 0), the two alternating, wall time of the fit
with its compiling and end-of-fit check.

Run: python benchmarks/stl_gradient.py [--repeats 3] [--out benchmarks/results_stl_gradient.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import tfp_realnvp as trn  # noqa: E402
from tfp_realnvp import keras  # noqa: E402
from tfp_realnvp.vi import fit_vi, targets  # noqa: E402

trainer = importlib.import_module("tfp_realnvp.vi.trainer")
NOW = trainer.log_weights


def score_form(q, target_log_prob_fn, eps, stick_the_landing=False):
    """`log_weights` before 2026-12-07."""
    event_ndims = q.event_shape.rank
    z = q.bijector.forward(eps)
    log_q = q.distribution.log_prob(eps) - q.bijector.forward_log_det_jacobian(eps, event_ndims)
    log_w = target_log_prob_fn(z) - log_q
    if not stick_the_landing:
        return log_w, log_w
    score = q.log_prob(tf.stop_gradient(z))
    return log_w, log_w + (score - tf.stop_gradient(score))


def main(repeats: int, out: Path) -> dict:
    target = targets.rezende_energy("U3")
    seconds = {"now": [], "score_form": []}
    for _ in range(repeats):
        for name, fn in (("score_form", score_form), ("now", NOW)):
            trainer.log_weights = fn
            keras.utils.set_random_seed(0)
            flow = trn.real_nvp([2], 8, [64, 64], seed=0)
            t0 = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_vi(flow, target.log_prob, 3000, seed=0, stick_the_landing=True)
            seconds[name].append(time.time() - t0)
            print(name, f"{seconds[name][-1]:.2f} s", flush=True)
    trainer.log_weights = NOW
    ratio = float(np.median(seconds["now"]) / np.median(seconds["score_form"]))
    results = {"seconds": seconds, "median_ratio_now_to_score_form": ratio}
    out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    here = Path(__file__).resolve().parent
    parser.add_argument("--out", type=Path, default=here / "results_stl_gradient.json")
    args = parser.parse_args()
    print(main(args.repeats, args.out))
