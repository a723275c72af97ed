"""`tfp_realnvp.vi.diagnostics` on its own: every statistic of `diagnose` recomputed in NumPy from
the draws it made, PSIS's Pareto-k against ArviZ's, the readings and warnings word for word.
Fits that should or should not warn are in test_vi.py."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp.vi import VIDiagnostics, VIFitWarning, check_fit, diagnose, pareto_k

LOG_2PI = np.log(2 * np.pi)
SLOPE, SHIFT = 0.6, 1.5


def _tilted(seen: list):
    """``log p~ = log N(z; 0, I) + SLOPE z1 + SHIFT``: against q = N(0, I) (an identity flow)
    the log weights are ``SLOPE z1 + SHIFT`` exactly, and ``log Z = SHIFT + SLOPE^2 / 2``.
    Keeps the points it was called on in ``seen``."""

    def log_prob(z):
        seen.append(z.numpy())
        return -0.5 * tf.reduce_sum(z**2, -1) - LOG_2PI + SLOPE * z[..., 0] + SHIFT

    return log_prob


def _identity():
    return trn.planar_flow(2, 1, dtype=tf.float64)  # starts as the identity: q = N(0, I)


def test_every_statistic_is_its_formula_on_the_draws():
    seen: list = []
    d = diagnose(_identity(), _tilted(seen), num_samples=500, seed=4)
    z = seen[-1]
    assert z.shape == (500, 2)
    log_w = SLOPE * z[:, 0] + SHIFT
    w = np.exp(log_w)
    n = 500
    expected = {
        "elbo": log_w.mean(),
        "elbo_se": log_w.std(ddof=1) / np.sqrt(n),
        "log_z": np.log(w.mean()),
        "log_z_se": w.std(ddof=1) / (w.mean() * np.sqrt(n)),
        "kl": np.log(w.mean()) - log_w.mean(),
        "ess": w.sum() ** 2 / np.sum(w**2),
        "ess_fraction": w.sum() ** 2 / np.sum(w**2) / n,
        "pareto_k": pareto_k(log_w),
    }
    for name, value in expected.items():
        assert getattr(d, name) == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert d.num_samples == n
    # The estimates hold the closed form within their standard errors.
    assert abs(d.log_z - (SHIFT + SLOPE**2 / 2)) < 4 * d.log_z_se
    assert abs(d.elbo - SHIFT) < 4 * d.elbo_se
    # The same seed draws the same points; another seed others; 4096 draws by default.
    assert diagnose(_identity(), _tilted(seen), num_samples=500, seed=4) == d
    assert diagnose(_identity(), _tilted(seen), num_samples=500, seed=5).elbo != d.elbo
    default = diagnose(_identity(), _tilted(seen))
    assert default.num_samples == 4096 and default == diagnose(_identity(), _tilted(seen), seed=0)


def test_the_number_of_draws_is_checked(refusal):
    target = _tilted([])
    assert diagnose(_identity(), target, num_samples=25).num_samples == 25
    for bad in (24, 2.5):
        message = refusal(ValueError, diagnose, _identity(), target, num_samples=bad)
        assert message == f"`num_samples` must be an integer >= 25; got {bad!r}."


def _half_infinite(z):
    return tf.where(z[..., 0] > 0, tf.constant(np.inf, z.dtype), -0.5 * tf.reduce_sum(z**2, -1))


def test_weights_that_are_not_finite_are_counted_and_check_fit_warns_instead(refusal):
    seen: list = []

    def target(z):
        seen.append(z.numpy())
        return _half_infinite(z)

    refused = refusal(ValueError, diagnose, _identity(), target, num_samples=100, seed=1)
    bad = int(np.sum(seen[-1][:, 0] > 0))
    assert 30 < bad < 70
    message = f"{bad} of 100 log importance weights are not finite: check the target."
    assert refused == message
    with pytest.warns(VIFitWarning) as caught_warnings:
        assert check_fit(_identity(), target, num_samples=100, seed=1) is None
    assert [str(w.message) for w in caught_warnings] == [f"after fitting, {message}"]


def test_check_fit_is_diagnose_with_a_warning():
    seen: list = []
    quiet = _tilted(seen)  # weights e^(0.6 z1): ESS 70%, k about 0.3 -> no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = check_fit(_identity(), quiet, num_samples=300, seed=2)
    assert d == diagnose(_identity(), quiet, num_samples=300, seed=2) and not d.misses_mass
    assert check_fit(_identity(), quiet) == diagnose(_identity(), quiet)  # 4096 draws, seed 0

    def two_modes(z):
        return tf.reduce_logsumexp(
            tf.stack([-0.5 * tf.reduce_sum((z - m) ** 2, -1) for m in (0.0, 4.0)]), 0
        )

    model = trn.VIModel(_identity(), two_modes, annealing=None)
    model.compile(optimizer=trn.keras.optimizers.Adam(1e-12))
    with pytest.warns(VIFitWarning) as caught:
        model.fit(epochs=1, steps_per_epoch=1, verbose=0, seed=3)
    (warning,) = caught
    found = diagnose(model, two_modes, seed=3)
    assert found.misses_mass
    assert str(warning.message) == f"after fitting, q likely misses mass of p: {found}."
    # Where it points is checked in test_vi.py: mutmut's trampolines add frames to the stack.


def _diagnostics(**changes) -> VIDiagnostics:
    fields = dict(
        elbo=-1.25,
        elbo_se=0.01,
        log_z=-1.0,
        log_z_se=0.02,
        kl=0.25,
        ess=1800.0,
        ess_fraction=0.45,
        pareto_k=0.5,
        num_samples=4000,
    )
    return VIDiagnostics(**{**fields, **changes})


REMEDIES = (
    "stick_the_landing=True, fit_vi(..., restarts=3), more steps, a larger flow or "
    "neural_spline_flow, a larger sample_size, or a longer annealing "
    "(annealing=Annealing(fraction=...))"
)


def test_the_readings_word_for_word():
    good = _diagnostics()
    assert good.trustworthy and not good.misses_mass
    assert str(good) == (
        "ELBO -1.2500 ± 0.0100, log Z -1.0000 ± 0.0200, KL(q||p) ≈ 0.2500 nats, ESS 1800/4000 "
        "(45.0%), Pareto k 0.50 < 0.7: log Z and importance-weighted estimates are reliable"
    )
    heavy = _diagnostics(pareto_k=0.7)  # the threshold itself is not trustworthy
    assert not heavy.trustworthy and heavy.misses_mass
    assert heavy.reading() == (
        "Pareto k 0.70 ≥ 0.7: log Z and importance-weighted estimates are not reliable, and KL "
        "is biased low; q is thin where p has mass (it may miss a mode). Try " + REMEDIES
    )
    collapsed = _diagnostics(ess_fraction=0.29, ess=1160.0)
    assert collapsed.trustworthy and collapsed.misses_mass
    assert collapsed.reading() == (
        "Pareto k 0.50 < 0.7, but the ESS is under 30% of the draws: q's draws fall unevenly "
        "on p (q too wide, too narrow, or missing part of it), and importance-weighted "
        "estimates rest on few of them. Try " + REMEDIES
    )


def test_what_misses_mass_at_the_thresholds():
    assert not _diagnostics(ess_fraction=0.3).misses_mass  # not under 30%
    assert _diagnostics(ess_fraction=0.2999).misses_mass
    assert _diagnostics(pareto_k=0.9, ess_fraction=0.8999).misses_mass
    assert not _diagnostics(pareto_k=0.9, ess_fraction=0.9).misses_mass  # flat weights
    assert not _diagnostics(pareto_k=0.6999, ess_fraction=0.5).misses_mass


def _quantiles(n: int, f) -> np.ndarray:
    """``f`` at the ``n`` mid-quantiles, largest first (the order must not matter)."""
    return f((np.arange(n)[::-1] + 0.5) / n)


# Pareto-k from ArviZ 0.23.4, `arviz.psislw(log_weights)[1]`, on the same log weights
# (tools/pareto_k_reference.py prints them): its PSIS is an implementation of its own.
ARVIZ = [
    ("pareto_0.8_n1000", 1000, lambda u: -0.8 * np.log1p(-u), 0.7574598327160174),
    ("pareto_0.4_n4096", 4096, lambda u: -0.4 * np.log1p(-u), 0.40547203841556284),
    ("pareto_1.3_n200", 200, lambda u: -1.3 * np.log1p(-u), 1.0803027797900422),
    ("weibull_n500", 500, lambda u: np.sqrt(-np.log1p(-u)), 0.18492456963144624),
    ("bounded_n30", 30, lambda u: np.log(1 + u), 0.02755479603307176),
]


@pytest.mark.parametrize("name, n, f, k", ARVIZ, ids=[case[0] for case in ARVIZ])
def test_pareto_k_is_arviz(name, n, f, k):
    log_w = _quantiles(n, f)
    assert pareto_k(log_w) == pytest.approx(k, rel=1e-12)
    assert pareto_k(log_w + 800.0) == pytest.approx(k, rel=1e-9)  # e^800 overflows
    assert pareto_k(list(log_w.reshape(-1, 1))) == pytest.approx(k, rel=1e-12)  # any shape


def test_pareto_k_computes_in_float64_and_needs_a_tail_of_five(refusal):
    log_w = _quantiles(1000, lambda u: -0.8 * np.log1p(-u)).astype(np.float32)
    assert pareto_k(log_w) == pareto_k(log_w.astype(np.float64))
    # 25 weights: a tail of 5 exceedances is fitted (ArviZ alike); 4 are too few.
    log_w = _quantiles(25, lambda u: -0.5 * np.log1p(-u))
    assert np.isfinite(pareto_k(log_w))
    log_w[5] = log_w[4]  # the sixth largest equals the fifth: 4 exceed the cut
    assert pareto_k(np.sort(log_w)) == float("-inf")
    assert pareto_k(np.zeros(100)) == float("-inf")  # equal weights: q = p
    assert refusal(ValueError, pareto_k, np.zeros(24)) == (
        "`log_weights` must hold at least 25 values; got 24."
    )


def test_pareto_k_of_log_weights_spread_over_more_than_float64_can_exponentiate():
    log_w = _quantiles(300, lambda u: 800.0 * u)  # e^800 overflows; differences do not
    k = pareto_k(log_w)
    assert np.isfinite(k) and pareto_k(log_w - 5000.0) == pytest.approx(k, rel=1e-9)
