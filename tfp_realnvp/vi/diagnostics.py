"""After fitting: how good is ``q``? ELBO, importance-sampled ``log Z``, the effective sample
size of the importance weights, and PSIS's Pareto-k."""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfp_realnvp._checks import integer
from tfp_realnvp.vi.objective import as_distribution, check_target, log_weights

__all__ = ["VIDiagnostics", "VIFitWarning", "check_fit", "diagnose", "pareto_k"]

K_TRUSTWORTHY = 0.7
# Kish ESS fractions: below the first the weights have collapsed onto a few draws (on U3/U4
# every fit with KL > 0.1 nats, 10 of 10, fell below it or under the Pareto-k rule, where 0.1
# let 2 through: benchmarks/vi_robust_before.json); at or above the second they barely vary
# (relative variance <= 0.11), whatever the shape of their tail.
ESS_COLLAPSED, ESS_FLAT = 0.3, 0.9
REMEDIES = (
    "stick_the_landing=True, fit_vi(..., restarts=3), more steps, a larger flow or "
    "neural_spline_flow, a larger sample_size, or a longer annealing "
    "(annealing=Annealing(fraction=...))"
)


class VIFitWarning(UserWarning):
    """`fit_vi` / `VIModel.fit` ended with a ``q`` that likely misses mass of ``p`` (see
    `VIDiagnostics.misses_mass`). Silence it with ``warn=False`` or `warnings.filterwarnings`."""


@dataclasses.dataclass(frozen=True)
class VIDiagnostics:
    """What `diagnose` found, from ``n`` samples of ``q``, in nats.

    Attributes:
      elbo, elbo_se: ``E_q[log p~ - log q]`` and its Monte-Carlo standard error.
      log_z, log_z_se: the importance-sampling estimate ``log mean(w)``, ``w = p~ / q``, and
        its standard error (delta method: ``std(w) / (mean(w) sqrt(n))``).
      kl: ``log_z - elbo``, an estimate of KL(q || p) (biased low when the weights are
        heavy-tailed).
      ess, ess_fraction: Kish's effective sample size ``(sum w)^2 / sum w^2``, and over ``n``.
      pareto_k: the shape of a generalized Pareto fitted to the largest weights (PSIS);
        ``k < 0.7`` reads as a trustworthy ``log Z`` and importance-sampled expectations,
        ``k < 0.5`` as a good ``q``; beyond 0.7 the weights' variance is too large for the
        estimates to be believed (Vehtari et al.).
      num_samples: ``n``.
    """

    elbo: float
    elbo_se: float
    log_z: float
    log_z_se: float
    kl: float
    ess: float
    ess_fraction: float
    pareto_k: float
    num_samples: int

    @property
    def trustworthy(self) -> bool:
        """``pareto_k < 0.7``."""
        return self.pareto_k < K_TRUSTWORTHY

    @property
    def misses_mass(self) -> bool:
        """What `check_fit` warns on: the weights have collapsed (ESS under 30% of the draws),
        or their tail is heavy (``pareto_k >= 0.7``) while they vary materially (ESS under
        90%): ``q`` is thin where ``p`` has mass, typically a mode it covers only with its
        tail. (Pareto-k alone flags near-perfect fits too: over weights equal to 0.1%, the
        shape of their tail is noise.)"""
        if self.ess_fraction < ESS_COLLAPSED:
            return True
        return not self.trustworthy and self.ess_fraction < ESS_FLAT

    def __str__(self) -> str:
        return (
            f"ELBO {self.elbo:.4f} ± {self.elbo_se:.4f}, log Z {self.log_z:.4f} ± "
            f"{self.log_z_se:.4f}, KL(q||p) ≈ {self.kl:.4f} nats, ESS {self.ess:.0f}/"
            f"{self.num_samples} ({100 * self.ess_fraction:.1f}%), {self.reading()}"
        )

    def reading(self) -> str:
        """What Pareto-k and the ESS say, against the thresholds the estimates need, and what
        to do."""
        k = f"Pareto k {self.pareto_k:.2f}"
        if not self.trustworthy:
            return (
                f"{k} ≥ {K_TRUSTWORTHY}: log Z and importance-weighted estimates are not "
                "reliable, and KL is biased low; q is thin where p has mass (it may miss a "
                f"mode). Try {REMEDIES}"
            )
        if self.misses_mass:
            return (
                f"{k} < {K_TRUSTWORTHY}, but the ESS is under {ESS_COLLAPSED:.0%} of the draws: "
                "q's draws fall unevenly on p (q too wide, too narrow, or missing part of it), "
                f"and importance-weighted estimates rest on few of them. Try {REMEDIES}"
            )
        return f"{k} < {K_TRUSTWORTHY}: log Z and importance-weighted estimates are reliable"


def diagnose(
    flow, target_log_prob_fn: Callable, num_samples: int = 4096, seed: int = 0
) -> VIDiagnostics:
    """All diagnostics of `VIDiagnostics` for ``q`` (a flow bijector, its distribution or a
    `VIModel`) against the unnormalised ``target_log_prob_fn``, from ``num_samples`` draws.

    >>> import tensorflow as tf, tfp_realnvp as trn
    >>> flow = trn.planar_flow(2, 1)  # the identity: q = N(0, I)
    >>> d = diagnose(flow, lambda z: -0.5 * tf.reduce_sum(z**2, -1), num_samples=1000)
    >>> round(d.log_z, 4), abs(d.kl) < 1e-6, d.trustworthy  # log Z = log(2 pi) = 1.8379
    (1.8379, True, True)
    """
    q = as_distribution(flow)
    check_target(q, target_log_prob_fn)
    n = integer(num_samples, "num_samples", minimum=25)
    shape = (n, *[int(d) for d in q.event_shape])
    eps = tf.random.stateless_normal(shape, [int(seed), 7], dtype=q.dtype)
    log_w = np.asarray(log_weights(q, target_log_prob_fn, eps)[0], np.float64)
    if not np.all(np.isfinite(log_w)):
        bad = int(np.sum(~np.isfinite(log_w)))
        raise ValueError(f"{bad} of {n} log importance weights are not finite: check the target.")
    top = log_w.max()
    w = np.exp(log_w - top)
    mean_w = w.mean()
    elbo = float(log_w.mean())
    log_z = float(top + np.log(mean_w))
    return VIDiagnostics(
        elbo=elbo,
        elbo_se=float(log_w.std(ddof=1) / np.sqrt(n)),
        log_z=log_z,
        log_z_se=float(w.std(ddof=1) / (mean_w * np.sqrt(n))),
        kl=log_z - elbo,
        ess=float(w.sum() ** 2 / np.sum(w**2)),
        ess_fraction=float(w.sum() ** 2 / np.sum(w**2) / n),
        pareto_k=pareto_k(log_w),
        num_samples=n,
    )


def check_fit(
    flow, target_log_prob_fn: Callable, num_samples: int = 4096, seed: int = 0
) -> VIDiagnostics | None:
    """`diagnose`, warning (`VIFitWarning`) when `VIDiagnostics.misses_mass`, or when some
    log weights are not finite (then returns None instead of raising). What `fit_vi` and
    `VIModel.fit` run at their end; it costs ``num_samples`` draws of ``q`` and one call of the
    target on them.

    A mode that none of the draws of ``q`` reaches leaves no trace in its weights: no test on
    ``q``'s samples can see it. Pareto-k sees a mode that ``q`` covers thinly (its tail
    reaches it), which is how reverse KL usually leaves one.

    >>> import warnings, tensorflow as tf, tfp_realnvp as trn
    >>> flow = trn.planar_flow(2, 1)  # the identity: q = N(0, I), half of p's mass
    >>> def two_modes(z):
    ...     return tf.reduce_logsumexp(tf.stack([-0.5 * tf.reduce_sum((z - m) ** 2, -1)
    ...                                          for m in (0.0, 4.0)]), 0)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     d = check_fit(flow, two_modes)
    >>> [w.category.__name__ for w in caught], d.trustworthy, d.misses_mass
    (['VIFitWarning'], False, True)
    """
    try:
        d = diagnose(flow, target_log_prob_fn, num_samples, seed)
    except ValueError as error:  # weights that are not finite: a warning, not a lost fit
        _warn(f"after fitting, {error}")
        return None
    if d.misses_mass:
        _warn(f"after fitting, q likely misses mass of p: {d}.")
    return d


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _warn(message: str) -> None:
    """A `VIFitWarning` shown at the first line outside this package on the call stack: the
    user's call of `fit_vi`, `VIModel.fit` or `check_fit`, however deep the check ran."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, VIFitWarning, stacklevel=level)


def pareto_k(log_weights: np.ndarray) -> float:
    """PSIS's Pareto-k: the shape of a generalized Pareto distribution fitted (Zhang & Stephens
    2009, with Vehtari et al.'s weak prior) to the ``M = min(n / 5, 3 sqrt(n))`` largest
    importance weights' exceedances over the next one. A tail ``P(w > t) ~ t^(-a)`` gives
    ``k = 1 / a``; light tails give ``k <= 0``, and equal weights (``q = p``) ``-inf``.

    #### References

    [1] Aki Vehtari, Daniel Simpson, Andrew Gelman, Yuling Yao, Jonah Gabry. Pareto Smoothed
        Importance Sampling. https://arxiv.org/abs/1507.02646
    [2] Jin Zhang, Michael A. Stephens. A New and Efficient Estimation Method for the
        Generalized Pareto Distribution. Technometrics 51(3), 2009.
    """
    x = np.sort(np.asarray(log_weights, np.float64).ravel())
    n = x.size
    tail = int(np.ceil(min(0.2 * n, 3.0 * np.sqrt(n))))
    if n < 25:
        raise ValueError(f"`log_weights` must hold at least 25 values; got {n}.")
    x = x - x[-1]
    cutoff = x[-tail - 1]
    exceed = np.exp(x[-tail:]) - np.exp(cutoff)
    exceed = exceed[exceed > 0]
    if exceed.size <= 4:  # no tail: the largest weights equal the rest
        return float("-inf")
    return _gpd_shape(exceed)


def _gpd_shape(x: np.ndarray) -> float:
    """Zhang & Stephens' posterior-mean shape of a GPD for sorted positive exceedances ``x``,
    shrunk towards 0.5 as by a prior worth 10 observations (Vehtari et al.)."""
    n = x.size
    m = 30 + int(np.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    b = b / (3.0 * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k = np.log1p(-b[:, None] * x).mean(axis=1)
    profile = n * (np.log(-b / k) - k - 1.0)
    weights = 1.0 / np.exp(profile - profile[:, None]).sum(axis=1)
    keep = weights >= 10 * np.finfo(float).eps
    weights, b = weights[keep] / weights[keep].sum(), b[keep]
    k_post = np.log1p(-np.sum(b * weights) * x).mean()
    return float((n * k_post + 10 * 0.5) / (n + 10))
