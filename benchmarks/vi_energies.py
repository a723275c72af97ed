"""Reverse-KL fits of Rezende & Mohamed's energies U1-U4: KL(q || p) = log Z - ELBO reached by
real_nvp, neural_spline_flow, planar_flow and radial_flow at the same budget, with pictures.

log Z comes from grid quadrature (the targets' own envelope for U2-U4 is documented in
`tfp_realnvp.vi.targets.rezende_energy`); the ELBO from 20,000 draws of the fitted q
(`tfp_realnvp.vi.diagnose`, which also gives its standard error and PSIS's Pareto-k).

Run: python benchmarks/vi_energies.py [--steps 3000] [--out benchmarks/vi_energies.json]
     [--targets u3 u4] [--flows real_nvp] [--stl] [--figure ""]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.vi import diagnose, fit_vi, targets

FLOWS = {
    "real_nvp": lambda: trn.real_nvp([2], 8, [64, 64]),
    "planar_flow": lambda: trn.planar_flow(2, 32),
    "neural_spline_flow": lambda: trn.neural_spline_flow([2], 4, [64, 64], num_bins=8),
    "radial_flow": lambda: trn.radial_flow(2, 32),
}


def grid_log_z(target, step=0.01) -> float:
    """log of the integral over [-12, 12] x [-10, 10] (the envelope's 6 scales along z1)."""
    z1 = np.arange(-12, 12, step) + step / 2
    z2 = np.arange(-10, 10, step) + step / 2
    total = 0.0
    for chunk in np.array_split(z1, 16):
        pts = np.stack(np.meshgrid(chunk, z2, indexing="ij"), -1).reshape(-1, 2)
        log_p = target.log_prob(tf.constant(pts, tf.float64)).numpy()
        total += np.exp(log_p).sum() * step * step
    return float(np.log(total))


def main(steps, out, figure, kinds=("u1", "u2", "u3", "u4"), flows=tuple(FLOWS), stl=False):
    results = {"steps": steps, "sample_size": 256, "learning_rate": 1e-3, "targets": {},
               "stick_the_landing": stl}  # fmt: skip
    fitted = {}
    for kind in kinds:
        target = targets.rezende_energy(kind)
        log_z = grid_log_z(target)
        row = {"log_z_grid": log_z, "flows": {}}
        for name in flows:
            make = FLOWS[name]
            keras.utils.set_random_seed(0)
            flow = make()
            t0 = time.time()
            optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps))
            # annealing=None: as measured, before annealing became fit_vi's default
            fit_vi(flow, target.log_prob, steps, sample_size=256, optimizer=optimizer, seed=1,
                   stick_the_landing=stl, annealing=None, warn=False)  # fmt: skip
            seconds = time.time() - t0
            d = diagnose(flow, target.log_prob, num_samples=20000, seed=2)
            row["flows"][name] = {
                "kl": log_z - d.elbo,
                "elbo": d.elbo,
                "elbo_se": d.elbo_se,
                "is_log_z": d.log_z,
                "is_log_z_se": d.log_z_se,
                "pareto_k": d.pareto_k,
                "ess_fraction": d.ess_fraction,
                "seconds": seconds,
            }
            fitted[kind, name] = flow
            print(f"{kind} {name}: KL {log_z - d.elbo:.4f} nats ({seconds:.0f} s); {d}", flush=True)
        results["targets"][kind.upper()] = row
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    if figure:
        _pictures(fitted, figure)
    return results


def _pictures(fitted, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = np.linspace(-4, 4, 200)
    pts = tf.constant(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), tf.float32)
    fig, axes = plt.subplots(4, 1 + len(FLOWS), figsize=(3 * (1 + len(FLOWS)), 12))
    for i, kind in enumerate(("u1", "u2", "u3", "u4")):
        density = np.exp(targets.rezende_energy(kind).log_prob(pts).numpy())
        panels = [("target " + kind.upper(), density)]
        for name in FLOWS:  # the flows' exact densities (planar: through its root solve)
            q = trn.flow_distribution(fitted[kind, name])
            panels.append((name, np.exp(q.log_prob(pts).numpy())))
        for ax, (title, values) in zip(axes[i], panels, strict=True):
            ax.imshow(values.reshape(200, 200), origin="lower", extent=(-4, 4, -4, 4))
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--out", default="benchmarks/vi_energies.json")
    parser.add_argument("--figure", default="docs/vi_energies.png", help="'' for none")
    parser.add_argument("--targets", nargs="+", default=["u1", "u2", "u3", "u4"])
    parser.add_argument("--flows", nargs="+", default=list(FLOWS), choices=list(FLOWS))
    parser.add_argument("--stl", action="store_true", help="sticking-the-landing gradients")
    args = parser.parse_args()
    main(args.steps, args.out, args.figure, args.targets, args.flows, args.stl)
