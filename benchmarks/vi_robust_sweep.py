"""The side-by-side sweep behind `fit_vi`'s defaults: one reverse-KL loop (as `fit_vi`'s, with
``beta`` held in a variable) on U3 and U4 with `real_nvp([2], 8, [64, 64])`, 3000 steps, a few
seeds each, varying one mechanism at a time: samples per step ``S``, Adam's learning rate,
cosine decay, annealing (``fraction`` of the steps, ``beta0``) of ``p~^beta`` itself or along
the geometric path from ``N(0, sigma^2 I)`` (``ref``), IWAE's ``K``, sticking the landing.
The seed sets Keras' (the flow's initial weights) and the noise's, as in `vi_robust.py`.

Each line of ``vi_robust_sweep.jsonl`` is one fit: KL(q || p) = grid log Z - ELBO (20,000
draws), Pareto-k and the seconds of the loop (2 shared CPU cores, one thread).

Run: python benchmarks/vi_robust_sweep.py '{"kinds": ["U3"], "seeds": [0, 1, 2], "steps": 3000,
     "S": 256, "lr": 0.003, "cosine": true, "anneal": 0.3, "beta0": 0.1, "ref": true, "sigma": 3}'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import tfp_realnvp as trn  # noqa: E402
from tfp_realnvp import keras  # noqa: E402
from tfp_realnvp.vi import VIModel, diagnose, targets  # noqa: E402

ENERGIES = json.loads((Path(__file__).resolve().parent / "vi_energies.json").read_text())
LOG_Z = {kind: row["log_z_grid"] for kind, row in ENERGIES["targets"].items()}


def run(kind, seed, steps, S, lr, cosine, anneal, beta0, K=1, stl=False, ref=False, sigma=1.0):
    target = targets.rezende_energy(kind)
    keras.utils.set_random_seed(seed)
    flow = trn.real_nvp([2], 8, [64, 64])
    beta = tf.Variable(1.0)

    def annealed(z):
        if ref:  # the geometric path from N(0, sigma^2 I) (up to its constant)
            reference = -0.5 * tf.reduce_sum((z / sigma) ** 2, -1)
            return reference + beta * (target.log_prob(z) - reference)
        return beta * target.log_prob(z)

    model = VIModel(flow, annealed, sample_size=S, importance_samples=K, stick_the_landing=stl,
                    annealing=None)  # fmt: skip
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps) if cosine else lr
    optimizer = keras.optimizers.Adam(schedule)
    variables = model.trainable_variables
    optimizer.build(variables)

    @tf.function(jit_compile=True)
    def step(eps):
        with tf.GradientTape() as tape:
            value, loss = model.losses_at(eps)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return value

    noise = iter(model.noise(seed))
    ramp = int(anneal * steps)
    t0 = time.time()
    for t in range(steps):
        if ramp:
            beta.assign(min(1.0, beta0 + (1 - beta0) * t / ramp))
        step(next(noise))
    seconds = time.time() - t0
    d = diagnose(flow, target.log_prob, num_samples=20000, seed=2)
    return LOG_Z[kind] - d.elbo, d.pareto_k, seconds


if __name__ == "__main__":
    cfg = json.loads(sys.argv[1])
    kinds, seeds = cfg.pop("kinds"), cfg.pop("seeds")
    for kind in kinds:
        for seed in seeds:
            kl, k, seconds = run(kind, seed, **cfg)
            row = {"cfg": cfg, "kind": kind, "seed": seed, "kl": round(kl, 4), "k": round(k, 2),
                   "sec": round(seconds, 1)}  # fmt: skip
            print(json.dumps(row), flush=True)
