"""Neal's funnel (D = 10, v ~ N(0, 3^2)): NeuTra HMC on a fitted real_nvp against plain HMC at
equal gradient evaluations, and NUTS both ways; effective sample size of v and its estimated
standard deviation against the true 3. Also: posterior means of the breast-cancer logistic
regression from the fitted q and from NeuTra against a long plain NUTS run.

Run: python benchmarks/vi_funnel.py [--out benchmarks/vi_funnel.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.vi import diagnose, fit_vi, sample_neutra, targets

tfb = tfp.bijectors
CHAINS, RESULTS, BURNIN, LEAPFROGS, TREE_DEPTH = 8, 1000, 500, 8, 6


def _summary(samples, trace, seconds) -> dict:
    v = samples[..., 0]
    ess = tfp.mcmc.effective_sample_size(v, cross_chain_dims=None).numpy()
    return {
        "ess_v": float(np.sum(ess)),
        "std_v": float(np.std(v.numpy())),
        "mean_v": float(np.mean(v.numpy())),
        "gradients_per_chain": float(np.mean(trace["gradients"])),
        "accept": float(np.mean(trace["accept_ratio"])),
        "seconds": seconds,
    }


def funnel(steps: int) -> dict:
    target = targets.funnel(10)
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([10], 8, [64, 64])
    t0 = time.time()
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps))
    # annealing=None: as measured, before annealing became fit_vi's default
    fit_vi(flow, target.log_prob, steps, sample_size=256, optimizer=optimizer, seed=1,
           annealing=None, warn=False)  # fmt: skip
    d = diagnose(flow, target.log_prob, num_samples=20000)
    out = {"fit_seconds": time.time() - t0, "diagnostics": str(d), "kl": -d.elbo}
    q_v = trn.flow_distribution(flow).sample(20000, seed=(1, 2))[:, 0].numpy()
    out["q_std_v"] = float(q_v.std())
    runs = {
        "neutra-hmc": (flow, "hmc", None),
        "hmc": (tfb.Identity(), "hmc", [10]),
        "neutra-nuts": (flow, "nuts", None),
        "nuts": (tfb.Identity(), "nuts", [10]),
    }
    for name, (bijector, kind, event_shape) in runs.items():
        t0 = time.time()
        samples, trace = sample_neutra(
            bijector, target.log_prob, RESULTS, num_chains=CHAINS, num_burnin_steps=BURNIN,
            kind=kind, num_leapfrog_steps=LEAPFROGS, seed=3, event_shape=event_shape,
            step_size=0.3, max_tree_depth=TREE_DEPTH,
        )  # fmt: skip
        out[name] = _summary(samples, trace, time.time() - t0)
        print(name, out[name], flush=True)
    return out


def logistic_regression(steps: int) -> dict:
    target = targets.breast_cancer_logistic_regression()
    dim = target.dim
    t0 = time.time()
    reference, _ = sample_neutra(
        tfb.Identity(), target.log_prob, 2000, num_chains=4, num_burnin_steps=1000,
        kind="nuts", seed=4, event_shape=[dim], step_size=0.05, max_tree_depth=8,
    )  # fmt: skip
    reference = reference.numpy().reshape(-1, dim)
    mean, sd = reference.mean(0), reference.std(0)
    out = {"reference": "plain NUTS, 4 chains x 2000 after 1000 burn-in",
           "reference_seconds": time.time() - t0}  # fmt: skip
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([dim], 4, [64, 64])
    t0 = time.time()
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps))
    fit_vi(flow, target.log_prob, steps, sample_size=128, optimizer=optimizer, seed=1,
           annealing=None, warn=False)  # fmt: skip
    out["fit_seconds"] = time.time() - t0
    out["diagnostics"] = str(diagnose(flow, target.log_prob, num_samples=10000))
    q = trn.flow_distribution(flow).sample(20000, seed=(5, 6)).numpy()
    neutra, _ = sample_neutra(flow, target.log_prob, 500, num_chains=4, num_burnin_steps=200,
                              kind="hmc", num_leapfrog_steps=4, seed=7)  # fmt: skip
    neutra = neutra.numpy().reshape(-1, dim)
    for name, draws in (("vi", q), ("neutra_hmc", neutra)):
        z = np.abs(draws.mean(0) - mean) / sd
        out[name] = {
            "max_abs_mean_error_in_sd": float(z.max()),
            "mean_abs_mean_error_in_sd": float(z.mean()),
            "sd_ratio_range": [float((draws.std(0) / sd).min()), float((draws.std(0) / sd).max())],
        }
        print(name, out[name], flush=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", default="benchmarks/vi_funnel.json")
    args = parser.parse_args()
    results = {"funnel": funnel(args.steps), "logistic_regression": logistic_regression(args.steps)}
    results["settings"] = {"chains": CHAINS, "results": RESULTS, "burnin": BURNIN,
                           "hmc_leapfrogs": LEAPFROGS, "nuts_max_tree_depth": TREE_DEPTH,
                           "fit_steps": args.steps}  # fmt: skip
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
