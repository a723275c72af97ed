"""The Bayes floor of each bundled 2-D density: its differential entropy ``H = -E[log p(x)]``,
the test NLL an ideal model reaches.

``log p`` is the generator's exact density (see `tfp_realnvp.data`), computed as written next to
each; ``H`` is then the mean of ``-log p`` over a Monte Carlo sample of 200,000 points, whose
standard error is printed too (about 0.002-0.003 nats).

- moons: a uniform angle on one of two half circles, scaled by 2, plus N(0, 0.2^2) noise: a
  quadrature over the angle (4,000 points per half circle) of the Gaussian kernel.
- 8gaussians: a mixture of 8 Gaussians, in closed form.
- checkerboard: uniform on 8 squares of side 2, so H = log 32 exactly.
- pinwheel: five arms, each an injective map T of a Gaussian feature f, so
  H = log 5 + H(f) + E[log |det dT/df|] + 2 log 2 (the final scaling by 2), with
  |det dT/df| = |1 - 0.25 f_1 exp(f_0)|. Exact where the arms do not overlap; they meet only at
  the origin, where f_0 < 0.2 has probability 0.4%.
- rings: four radii with a uniform angle, plus N(0, 0.08^2): a quadrature over the angle.
- 2spirals: a radius with density 2r / (3 pi)^2, a uniform offset in a box and Gaussian noise;
  the box convolved with the Gaussian is a product of normal-CDF differences, and a quadrature
  over the radius (6,000 points) does the rest.

    python benchmarks/bayes_floor.py          # prints the table, writes bayes_floor.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tfp_realnvp.data import make_dataset

N = 200_000


def _logmeanexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.mean(np.exp(a - m), axis=axis, keepdims=True))).squeeze(axis)


def _gauss_log(x: np.ndarray, centers: np.ndarray, sigma: float) -> np.ndarray:
    """``log N(x_i; c_j, sigma^2 I)`` for 2-D points: ``[len(x), len(centers)]``."""
    d2 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    return -d2 / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)


def _chunked(fn, x: np.ndarray, size: int = 2000) -> np.ndarray:
    return np.concatenate([fn(x[i : i + size]) for i in range(0, len(x), size)])


def moons_log_p(x: np.ndarray) -> np.ndarray:
    t = (np.arange(4000) + 0.5) / 4000 * np.pi  # midpoint rule on [0, pi]
    upper = np.stack([np.cos(t), np.sin(t)], 1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
    centers = np.concatenate([upper, lower]) * 2.0 + np.array([-1.0, -0.2])
    return _chunked(lambda c: _logmeanexp(_gauss_log(c, centers, 0.2), 1), x)


def eight_gaussians_log_p(x: np.ndarray) -> np.ndarray:
    angles = np.pi / 4 * np.arange(8)
    centers = 4.0 * np.stack([np.cos(angles), np.sin(angles)], 1) / 1.414
    return _logmeanexp(_gauss_log(x, centers, 0.5 / 1.414), 1)


def rings_log_p(x: np.ndarray) -> np.ndarray:
    theta = (np.arange(2000) + 0.5) / 2000 * 2 * np.pi
    circle = np.stack([np.cos(theta), np.sin(theta)], 1)
    centers = np.concatenate([r * circle for r in 0.75 * np.arange(1, 5)])
    return _chunked(lambda c: _logmeanexp(_gauss_log(c, centers, 0.08), 1), x)


def two_spirals_log_p(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr  # scipy comes with scikit-learn

    r = (np.arange(6000) + 0.5) / 6000 * 3 * np.pi
    log_w = np.log(2 * r / (3 * np.pi) ** 2 * (3 * np.pi / 6000))  # density x step
    arm = np.stack([-np.cos(r) * r, np.sin(r) * r], 1) / 3.0
    sigma, width = 0.1, 0.5 / 3.0

    def one(c):
        terms = []
        for sign in (1.0, -1.0):
            mean = sign * arm  # the box sits at sign * [0, width) from the arm
            low = np.minimum(0.0, sign * width)
            v = c[:, None, :] - mean[None, :, :]
            cdf = ndtr((v - low) / sigma) - ndtr((v - low - width) / sigma)
            log_axis = np.log(np.maximum(cdf, 1e-300)) - math.log(width)
            terms.append(log_axis.sum(-1) + log_w[None, :])
        both = np.concatenate(terms, 1)
        m = both.max(1, keepdims=True)
        return (m + np.log(np.exp(both - m).sum(1, keepdims=True))).squeeze(1) - math.log(2)

    return _chunked(one, x, 500)


def pinwheel_entropy(seed: int = 1) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(N, 2)) * np.array([0.3, 0.1]) + np.array([1.0, 0.0])
    log_det = np.log(np.abs(1 - 0.25 * f[:, 1] * np.exp(f[:, 0])))
    h_f = math.log(2 * math.pi * math.e * 0.3 * 0.1)
    h = math.log(5) + h_f + log_det.mean() + 2 * math.log(2)
    return h, log_det.std() / math.sqrt(N)


LOG_P = {
    "moons": moons_log_p,
    "8gaussians": eight_gaussians_log_p,
    "rings": rings_log_p,
    "2spirals": two_spirals_log_p,
}


def floors() -> dict[str, dict[str, float]]:
    out = {}
    for name in ("moons", "8gaussians", "checkerboard", "pinwheel", "rings", "2spirals"):
        if name == "checkerboard":
            h, se = math.log(32.0), 0.0
        elif name == "pinwheel":
            h, se = pinwheel_entropy()
        else:
            x = make_dataset(name, N, seed=12345).astype(np.float64)
            nll = -LOG_P[name](x)
            h, se = float(nll.mean()), float(nll.std() / math.sqrt(N))
        out[name] = {"entropy": h, "standard_error": se}
        print(f"{name:13s} H = {h:.4f} +- {se:.4f} nats", flush=True)
    return out


if __name__ == "__main__":
    result = floors()
    path = Path(__file__).with_name("bayes_floor.json")
    path.write_text(json.dumps({"num_samples": N, "floors": result}, indent=1) + "\n")
