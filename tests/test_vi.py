"""Reverse-KL fitting, its diagnostics and NeuTra, against closed forms: unnormalised Gaussian
targets whose log Z and KL are known, Pareto tails of known index, exact transports."""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras, testing
from tfp_realnvp.vi import (
    Annealing,
    VIFitWarning,
    as_distribution,
    check_fit,
    diagnose,
    fit_vi,
    log_weights,
    pareto_k,
    sample_neutra,
    targets,
)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

tfb = tfp.bijectors

MU, SIGMA, C = np.array([1.0, -0.5]), np.array([0.7, 1.3]), 2.5


def gaussian(z):
    """``log p~`` of N(MU, diag SIGMA^2), shifted by C: log Z = C + sum log(SIGMA sqrt(2 pi))."""
    mu, sigma = tf.constant(MU, z.dtype), tf.constant(SIGMA, z.dtype)
    return C - 0.5 * tf.reduce_sum(((z - mu) / sigma) ** 2, -1)


LOG_Z = C + float(np.sum(np.log(SIGMA * np.sqrt(2 * np.pi))))


def test_fit_reaches_the_gaussian_and_diagnose_recovers_its_log_z(monkeypatch):
    """A Keras fit (callbacks, epochs) drives KL(q || p) to ~0, tracing its step once; the
    importance-sampled log Z agrees with the closed form within its standard error."""
    keras.utils.set_random_seed(0)
    model = trn.VIModel(trn.real_nvp([2], 2, [4]), gaussian, sample_size=32)
    model.compile(optimizer=keras.optimizers.Adam(0.03))
    original, traces = trn.VIModel.train_step, []
    monkeypatch.setattr(
        trn.VIModel, "train_step", lambda self, data: traces.append(1) or original(self, data)
    )
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))
    history = model.fit(epochs=3, steps_per_epoch=100, verbose=0, seed=1, callbacks=[callback])
    loss = history.history["loss"]
    assert seen == [0, 1, 2] and loss[-1] < loss[0] and len(traces) == 1
    d = diagnose(model, gaussian, num_samples=4000, seed=3)
    assert d.kl < 0.02 and d.elbo <= d.log_z, str(d)
    assert abs(d.log_z - LOG_Z) < max(4 * d.log_z_se, 1e-3), (d.log_z, LOG_Z, str(d))
    assert d.trustworthy and d.ess_fraction > 0.9


def test_diagnose_matches_the_closed_form_kl_between_gaussians():
    """q = N(0, I) (an identity flow) against the shifted Gaussian: ELBO = log Z - KL(q || p)
    with KL = sum(log SIGMA + (1 + MU^2) / (2 SIGMA^2) - 1/2)."""
    kl = float(np.sum(np.log(SIGMA) + (1 + MU**2) / (2 * SIGMA**2) - 0.5))
    d = diagnose(trn.planar_flow(2, 1, dtype=tf.float64), gaussian, num_samples=20000)
    assert abs(d.elbo - (LOG_Z - kl)) < 4 * d.elbo_se
    assert abs(d.log_z - LOG_Z) < 4 * d.log_z_se
    assert 0 < d.ess_fraction < 0.9 and d.pareto_k < 0.7


@pytest.mark.parametrize("k_true", [0.2, 0.5, 0.9])
def test_pareto_k_recovers_the_tail_index(k_true):
    """Weights with a Pareto tail P(w > t) = t^(-1/k) give shape k."""
    w = np.random.default_rng(0).pareto(1 / k_true, size=20000) + 1.0
    assert abs(pareto_k(np.log(w)) - k_true) < 0.1


def test_pareto_k_reads_light_tails_as_safe_and_refuses_too_few():
    log_w = np.random.default_rng(1).normal(0.0, 0.3, size=4000)  # lognormal: k ~ 0
    assert pareto_k(log_w) < 0.3
    with pytest.raises(ValueError, match="at least 25 values; got 10"):
        pareto_k(np.zeros(10))


def _flat(tensors) -> np.ndarray:
    """``tensors`` (gradients, variables) as one vector."""
    return np.concatenate([tf.reshape(t, [-1]).numpy() for t in tensors])


def _gradients(stick_the_landing, importance_samples, seed):
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([2], 2, [4], dtype=tf.float64)  # the identity: q = N(0, I) = p
    model = trn.VIModel(
        flow,
        lambda z: -0.5 * tf.reduce_sum(z**2, -1),
        stick_the_landing=stick_the_landing,
        importance_samples=importance_samples,
    )
    eps = tf.random.stateless_normal([importance_samples, 16, 2], [seed, 0], dtype=tf.float64)
    with tf.GradientTape() as tape:
        value, loss = model.losses_at(eps)
    np.testing.assert_allclose(value, loss)
    return _flat(tape.gradient(loss, model.trainable_variables))


@pytest.mark.parametrize("importance_samples", [1, 3])
def test_sticking_the_landing_has_zero_variance_at_the_optimum(importance_samples):
    """Where q = p, every STL (DReG for K > 1) gradient is zero, draw after draw; the plain
    reparameterised gradient is not (zero only on average)."""
    for seed in (1, 2):
        stl = _gradients(True, importance_samples, seed)
        plain = _gradients(False, importance_samples, seed)
        assert np.max(np.abs(stl)) < 1e-12
        assert np.max(np.abs(plain)) > 1e-2


def test_fit_vi_and_the_importance_weighted_bound():
    keras.utils.set_random_seed(0)
    losses = fit_vi(trn.radial_flow(2, 2), gaussian, 80, importance_samples=4,
                    learning_rate=0.05, sample_size=16)  # fmt: skip
    assert losses.shape == (80,) and np.all(np.isfinite(losses))
    assert np.mean(losses[-20:]) < losses[0] - 0.5  # from q = N(0, I): KL 0.8 nats
    assert np.mean(losses[-20:]) > -LOG_Z - 0.1  # a bound on log Z


@pytest.mark.tf_keras  # VIModel's steps_per_execution
def test_fit_vi_runs_the_same_steps_however_many_go_into_one_call():
    """Several steps per compiled call (the last call partly filled) change nothing but speed:
    the same noise, the same updates, the same losses."""
    runs = []
    for steps_per_execution in (1, 4):
        keras.utils.set_random_seed(0)
        flow = trn.real_nvp([2], 2, [4])
        losses = fit_vi(flow, gaussian, 10, sample_size=16, steps_per_execution=steps_per_execution,
                        jit_compile=False, warn=False)  # fmt: skip
        runs.append((losses, [v.numpy() for v in trn.VIModel(flow, gaussian).trainable_variables]))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6)
    assert runs[0][0].shape == (10,) and np.ptp(runs[0][0]) > 0
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.tf_keras  # Keras weights seen by TFP
def test_tfp_fit_surrogate_posterior_trains_the_flow_unchanged():
    """TFP's own loop sees (and trains) the weights of a Keras-layer flow, under Keras 3 too."""
    keras.utils.set_random_seed(0)
    q = trn.flow_distribution(trn.planar_flow(2, 2))
    variables = q.trainable_variables
    assert len(variables) == 6  # w, u, b of each layer
    before = [v.numpy().copy() for v in variables]
    losses = tfp.vi.fit_surrogate_posterior(
        gaussian, q, optimizer=keras.optimizers.Adam(0.05), num_steps=60, sample_size=32,
        seed=(0, 1),
    )  # fmt: skip
    assert all(not np.allclose(a, v.numpy()) for a, v in zip(before, variables, strict=True))
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5


def test_neutra_samples_a_gaussian_through_an_exact_transport():
    """With the transport f(u) = MU + SIGMA u (and a planar layer at the identity), HMC in the
    latent space samples N(MU, SIGMA^2): the chains' moments come out right."""
    flow = tfb.Chain(
        [tfb.Shift(MU.astype("float32")), tfb.Scale(SIGMA.astype("float32")), trn.Planar([2])]
    )
    samples, trace = sample_neutra(
        flow, gaussian, 150, num_chains=8, num_burnin_steps=50, kind="hmc", seed=2, event_shape=[2]
    )
    assert samples.shape == (150, 8, 2)
    flat = samples.numpy().reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(0), MU, atol=0.15)
    np.testing.assert_allclose(flat.std(0), SIGMA, rtol=0.15)
    assert float(tf.reduce_mean(trace["accept_ratio"])) > 0.5
    assert trace["gradients"].shape == (8,)
    with pytest.raises(ValueError, match=r"`kind` must be one of \('nuts', 'hmc'\); got 'mala'"):
        trn.neutra_kernel(flow, gaussian, kind="mala")


def test_targets_normalise_as_documented():
    """Banana and funnel integrate to 1 (grid quadrature); U1-U4 are finite and integrable;
    the logistic regression's log_prob is its JointDistribution's, pinned at the labels."""
    grid = np.linspace(-12, 12, 481)
    z = tf.constant(np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2), tf.float32)
    cell = (grid[1] - grid[0]) ** 2
    mass = float(tf.reduce_sum(tf.exp(targets.banana().log_prob(z)))) * cell
    assert abs(mass - 1.0) < 1e-3
    for kind in ("U1", "u2", "U3", "U4"):
        log_p = targets.rezende_energy(kind).log_prob(z).numpy()
        assert np.all(np.isfinite(log_p)) and np.exp(log_p).sum() * cell < 40
    with pytest.raises(ValueError, match="`kind` must be one of"):
        targets.rezende_energy("u5")
    funnel = targets.funnel()
    assert funnel.dim == 10 and funnel.log_prob(tf.zeros([3, 10])).shape == (3,)
    logreg = targets.breast_cancer_logistic_regression()
    w = tf.random.stateless_normal([3, logreg.dim], [0, 1]) * 0.1
    model, y = logreg.info["model"], tf.constant(logreg.info["labels"], tf.float32)
    want = [model.log_prob(w=w[i], y=y) for i in range(3)]
    np.testing.assert_allclose(logreg.log_prob(w), want, rtol=1e-5)


def test_bad_targets_and_flows_are_refused_at_the_door(refusal):
    flow = trn.planar_flow(2, 1)
    assert refusal(ValueError, trn.VIModel, flow, lambda z: tf.reduce_sum(z)) == (
        "`target_log_prob_fn` must return one log-density per sample: for z of shape (2, 2) it "
        "returned shape () (sum over the event axes only)."
    )
    wrong_dtype = lambda z: tf.cast(tf.reduce_sum(z, -1), tf.float64)  # noqa: E731
    assert refusal(TypeError, trn.diagnose, flow, wrong_dtype) == (
        "`target_log_prob_fn` returned float64 for float32 samples; compute in the flow's dtype."
    )
    assert refusal(TypeError, trn.VIModel, flow, 3.0) == (
        "`target_log_prob_fn` must be callable; got 3.0."
    )
    assert refusal(TypeError, trn.fit_vi, "real_nvp", gaussian) == (
        "`flow` must be a flow bijector, a tfd.TransformedDistribution or a model with a "
        "`distribution`; got str."
    )


def test_log_weights_are_log_p_minus_log_q_over_any_event_rank():
    """Against the closed form for q = N(0, 2^2 I) over events of shape [2, 3] (a TFP bijector,
    whose log-det is per element unless told the event rank), with a given event shape."""
    q = as_distribution(tfb.Scale(2.0), [2, 3])
    assert q.event_shape == [2, 3]
    eps = tf.random.stateless_normal([5, 2, 3], [0, 1])

    def target(z):  # N(1, I)
        return -0.5 * tf.reduce_sum((z - 1.0) ** 2, [-2, -1])

    e = eps.numpy().astype(np.float64)
    log_q = -0.5 * np.sum(e**2, (1, 2)) - 3 * np.log(2 * np.pi) - 6 * np.log(2.0)
    expected = -0.5 * np.sum((2 * e - 1.0) ** 2, (1, 2)) - log_q
    value, path = log_weights(q, target, eps)
    assert value.shape == (5,) and path is value
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    value, path = log_weights(q, target, eps, stick_the_landing=True)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    np.testing.assert_allclose(path, expected, rtol=1e-5)  # the value, another gradient


def test_each_target_is_the_density_its_numbers_were_measured_on():
    # A changed ring radius (U1) or wall (U2-U4) changes log Z, on which the committed KL
    # results rest: the grid integral must match the benchmark's, computed as it did.
    committed = json.loads((BENCHMARKS / "vi_energies.json").read_text())["targets"]
    step = 0.02
    z1 = np.arange(-12, 12, step) + step / 2
    z2 = np.arange(-10, 10, step) + step / 2
    points = tf.constant(np.stack(np.meshgrid(z1, z2, indexing="ij"), -1).reshape(-1, 2))
    for kind, row in committed.items():
        mass = np.exp(targets.rezende_energy(kind).log_prob(points).numpy()).sum() * step**2
        assert abs(np.log(mass) - row["log_z_grid"]) < 1e-3, kind


def test_the_funnel_has_its_documented_spread():
    # x | v ~ N(0, e^v): E[x^2] = E[e^v] = exp(scale^2 / 2). With e^v as the scale instead
    # (exp(v) for exp(v / 2)) the density still integrates to 1, so its moment is checked.
    funnel = targets.funnel(dim=2, scale=1.0)
    v = np.linspace(-8, 8, 801)
    x = np.linspace(-60, 60, 4801)
    grid = np.stack(np.meshgrid(v, x, indexing="ij"), -1).reshape(-1, 2)
    density = np.exp(funnel.log_prob(tf.constant(grid)).numpy())
    cell = (v[1] - v[0]) * (x[1] - x[0])
    assert abs(density.sum() * cell - 1.0) < 1e-3
    second = (density * grid[:, 1] ** 2).sum() * cell
    np.testing.assert_allclose(second, np.exp(0.5), rtol=2e-3)


def _iwae_gradient(dreg: bool, eps):
    """The gradient of the K-sample bound's loss on the base noise ``eps`` ([K, S, 2]), for
    a perturbed flow against a Gaussian it does not match: DReG's, or the plain one."""

    def target(z):
        mean, scale = tf.constant([1.0, -0.5], tf.float64), tf.constant([0.7, 1.5], tf.float64)
        return -0.5 * tf.reduce_sum(((z - mean) / scale) ** 2, -1)

    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([2], 2, [4], dtype=tf.float64)
    testing.perturb_variables(flow, stddev=0.3)
    model = trn.VIModel(flow, target, stick_the_landing=dreg, importance_samples=len(eps))
    with tf.GradientTape() as tape:
        _, loss = model.losses_at(eps)
    return _flat(tape.gradient(loss, model.trainable_variables))


def test_dreg_estimates_the_importance_weighted_bounds_gradient_away_from_the_optimum():
    # Both are unbiased for the gradient of the K-sample bound, so on many draws they agree;
    # with DReG's squared weights replaced by plain ones (biased) they differed by 83%.
    eps = tf.random.stateless_normal([4, 40000, 2], [3, 0], dtype=tf.float64)
    dreg, plain = _iwae_gradient(True, eps), _iwae_gradient(False, eps)
    assert np.linalg.norm(plain) > 0.5  # far from the optimum, where both would be zero
    assert np.linalg.norm(dreg - plain) / np.linalg.norm(plain) < 0.05


def two_modes(z):
    """An equal mixture of N((-2, 0), I) and N((2, 0), I), unnormalised (log Z = log 2 pi)."""
    at = [tf.constant([m, 0.0], z.dtype) for m in (-2.0, 2.0)]
    return tf.reduce_logsumexp(tf.stack([-0.5 * tf.reduce_sum((z - m) ** 2, -1) for m in at]), 0)


def _one_component():
    """q = N((-2, 0), I): exactly one of `two_modes`' components (an identity RealNVP, shifted)."""
    keras.utils.set_random_seed(0)
    flow = tfb.Chain([tfb.Shift([-2.0, 0.0]), trn.real_nvp([2], 2, [4])])
    return trn.flow_distribution(flow, [2])


def test_a_missed_mode_warns_with_the_threshold_and_the_remedies(missed_mode_warnings):
    """q on one of two modes 4 standard deviations apart: its weights' tail is heavy (k >= 0.7),
    and fit_vi (a step too small to move it), VIModel.fit and check_fit all say so."""
    d = trn.diagnose(_one_component(), two_modes)
    assert d.pareto_k >= 0.7 and not d.trustworthy and d.misses_mass
    assert "≥ 0.7: log Z and importance-weighted estimates are not reliable" in str(d)
    assert "stick_the_landing=True" in str(d) and "annealing" in str(d)
    caught = missed_mode_warnings
    assert len(caught) == 3
    assert re.search(r"misses mass of p: .*Pareto k \d\.\d\d ≥ 0.7", str(caught[0].message))
    assert all("not reliable" in str(w.message) for w in caught[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("error", VIFitWarning)
        fit_vi(_one_component(), two_modes, 2, learning_rate=1e-9, warn=False, jit_compile=False)


@pytest.fixture(scope="module")
def missed_mode_warnings() -> list[warnings.WarningMessage]:
    """The VIFitWarnings of fit_vi (a step too small to move q), VIModel.fit and check_fit on
    q at one of `two_modes`, one call each, in that order."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VIFitWarning)
        fit_vi(_one_component(), two_modes, 2, learning_rate=1e-9, jit_compile=False)
        model = trn.VIModel(_one_component(), two_modes, annealing=None)
        model.compile(optimizer=keras.optimizers.Adam(1e-9))
        model.fit(epochs=1, steps_per_epoch=2, verbose=0)
        check_fit(model, two_modes)
    return [w for w in caught if issubclass(w.category, VIFitWarning)]


def test_each_warning_points_at_the_line_that_called_the_package(missed_mode_warnings):
    """(fit_vi's pointed into the package.) Kept apart from the test above: under mutmut a
    mutated function is called through mutmut's own wrapper, the caller's frame is that one,
    and tools/mutation.sh deselects this test alone."""
    assert [w.filename for w in missed_mode_warnings] == 3 * [__file__]


def test_a_good_fit_does_not_warn():
    """q = p (an identity flow against N(0, I)), moved only by a few steps of the defaults
    (annealing included): no warning, and the reading says the estimates are reliable. The same
    q against a narrower p has light-tailed weights (k < 0.7) that still collapse: it warns."""
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([2], 2, [4])
    normal = lambda z: -0.5 * tf.reduce_sum(z**2, -1)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error", VIFitWarning)
        fit_vi(flow, normal, 5, jit_compile=False)
        model = trn.VIModel(flow, normal)
        model.compile(optimizer="adam")
        model.fit(epochs=1, steps_per_epoch=3, verbose=0)
    d = check_fit(flow, normal)
    assert d.trustworthy and d.ess_fraction > 0.99 and not d.misses_mass
    assert "< 0.7: log Z and importance-weighted estimates are reliable" in str(d)
    narrow = lambda z: -0.5 * tf.reduce_sum((z / 0.3) ** 2, -1)  # noqa: E731
    with pytest.warns(VIFitWarning, match=r"Pareto k -?\d\.\d\d < 0.7, but the ESS is under 30%"):
        d = check_fit(flow, narrow)  # q = N(0, I) for p = N(0, 0.3^2 I): ESS 17%, bounded w
    assert d.trustworthy and d.ess_fraction < 0.3 and d.misses_mass


def test_a_heavy_tail_over_weights_that_barely_vary_does_not_warn():
    """p = 0.999 N(0, I) + 0.001 N(0, 3^2 I) against q = N(0, I): the weights 0.999 + 0.001 r
    have a Pareto tail (r ~ exp(0.44 |z|^2), k ~ 0.9) but vary by ~1%; Pareto-k alone flagged
    such fits (a banana fitted to KL 0.0006 read k 0.83)."""

    def target(z):
        sq = tf.reduce_sum(z**2, -1)
        wide = float(np.log(0.001 / 9)) - sq / 18
        return tf.reduce_logsumexp(tf.stack([float(np.log(0.999)) - sq / 2, wide]), 0)

    with warnings.catch_warnings():
        warnings.simplefilter("error", VIFitWarning)
        d = check_fit(trn.planar_flow(2, 1), target)
    assert d.pareto_k >= 0.7 and d.ess_fraction > 0.9 and not d.misses_mass, str(d)


def test_annealing_tempers_the_target_over_the_first_fit_only():
    """beta rises linearly over `fraction` of the first fit's steps, is 1 after, and the loss
    is that of the annealed target N(z; 0, 3^2 I)^(1 - beta) p~^beta (unnormalised) while the
    bound reported stays p~'s: for q = N(0, I) against log p~ = -|z|^2 / 2 the bound is
    log Z = log 2 pi, and the annealed one E[(1 - beta) (1 - 1/9) |z|^2 / 2] + log 2 pi =
    (1 - beta) 8/9 + log 2 pi."""
    schedule = Annealing(fraction=0.5, start=0.2)
    keras.utils.set_random_seed(0)
    normal = lambda z: -0.5 * tf.reduce_sum(z**2, -1)  # noqa: E731
    model = trn.VIModel(trn.real_nvp([2], 2, [4]), normal, annealing=schedule)
    model.compile(optimizer=keras.optimizers.Adam(1e-9))
    assert float(model.beta()) == 1.0  # nothing planned yet
    model.fit(epochs=2, steps_per_epoch=10, verbose=0, warn=False)  # 20 steps: ramp over 10
    assert float(model.beta()) == 1.0
    model.optimizer.iterations.assign(5)
    assert abs(float(model.beta()) - 0.6) < 1e-6
    eps = tf.random.stateless_normal([1, 20000, 2], [0, 1])
    value, loss = model.losses_at(eps, model.beta())
    assert abs(float(value) + np.log(2 * np.pi)) < 1e-5  # q = p: equal weights
    assert abs(float(loss) + 0.4 * 8 / 9 + np.log(2 * np.pi)) < 0.01  # se 0.0025
    model.optimizer.iterations.assign(20)
    model.fit(epochs=1, steps_per_epoch=10, verbose=0, warn=False)  # a second fit: beta 1
    model.optimizer.iterations.assign(22)
    assert float(model.beta()) == 1.0
    for bad in (dict(fraction=0.0), dict(start=1.5), dict(fraction=True)):
        with pytest.raises(ValueError, match=r"must be a number in \(0, 1\]"):
            Annealing(**bad)
    with pytest.raises(ValueError, match=r"`reference_scale` must be a number in \(0, inf\)"):
        Annealing(reference_scale=-1.0)
    with pytest.raises(TypeError, match=r"`annealing` must be an Annealing or None; got 0\.5"):
        trn.VIModel(trn.planar_flow(2, 1), normal, annealing=0.5)


def test_the_schedule_at_its_edges_and_the_reference_density():
    whole = Annealing(fraction=1.0, start=1.0)  # both ends of (0, 1] are allowed
    assert [float(whole.beta(t, 10)) for t in (0, 9)] == [1.0, 1.0]
    # A ramp shorter than one step: beta is 1 from the first step on.
    assert [float(Annealing(fraction=0.5, start=0.2).beta(t, 2)) for t in (0, 1)] == [
        pytest.approx(0.2),
        1.0,
    ]
    z = tf.constant(np.arange(12.0).reshape(2, 3, 2), tf.float32)
    reference = Annealing(reference_scale=2.0).log_reference(z, 1)
    np.testing.assert_allclose(reference, -0.5 * np.sum((z.numpy() / 2) ** 2, -1), rtol=1e-6)
    np.testing.assert_allclose(
        Annealing(reference_scale=2.0).log_reference(z, 2),
        -0.5 * np.sum((z.numpy() / 2) ** 2, (-2, -1)),
        rtol=1e-6,
    )


@pytest.mark.tf_keras  # a Keras model's method
def test_vi_model_samples_q():
    """`sample` pushes base draws through `forward`: seeded draws repeat, and match q's."""
    keras.utils.set_random_seed(0)
    flow = tfb.Chain([tfb.Shift([3.0, -1.0]), tfb.Scale([0.5, 2.0])])
    model = trn.VIModel(trn.flow_distribution(flow, [2]), gaussian)
    z = model.sample(20000, seed=4)
    assert z.shape == (20000, 2)
    np.testing.assert_allclose(z.numpy().mean(0), [3.0, -1.0], atol=0.05)
    np.testing.assert_allclose(z.numpy().std(0), [0.5, 2.0], rtol=0.03)
    np.testing.assert_array_equal(model.sample(5, seed=4), model.sample(5, seed=[0, 4]))
    assert not np.allclose(model.sample(5, seed=4), model.sample(5, seed=5))
    with pytest.raises(ValueError, match="`n` must be a non-negative integer; got -1"):
        model.sample(-1)


@pytest.mark.parametrize("flow", ["real_nvp", "planar"])
def test_sticking_the_landing_drops_exactly_the_score_term_away_from_the_optimum(flow):
    """Roeder et al.'s estimator is the total gradient of ``log p~(z) - log q(z)`` at
    ``z = forward(eps)`` plus the score ``grad_theta log q_theta(z)`` at ``z`` held: both
    computed here by plain autodiff of ``q.log_prob`` in float64, for a flow that does not
    fit its Gaussian target."""
    keras.utils.set_random_seed(0)
    if flow == "real_nvp":
        bijector = trn.real_nvp([2], 2, [4], dtype=tf.float64)
    else:
        bijector = trn.planar_flow(2, 2, dtype=tf.float64)
    testing.perturb_variables(bijector, stddev=0.3)
    q = as_distribution(bijector)
    eps = tf.random.stateless_normal([64, 2], [5, 0], dtype=tf.float64)

    def target(z):
        return -0.5 * tf.reduce_sum(((z - 1.0) / 0.5) ** 2, -1)

    variables = trn.VIModel(bijector, target).trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        z = bijector.forward(eps)
        total = tf.reduce_mean(target(z) - q.log_prob(z))
        score = tf.reduce_mean(q.log_prob(tf.stop_gradient(z)))
        path = tf.reduce_mean(log_weights(q, target, eps, stick_the_landing=True)[1])

    score_term = _flat(tape.gradient(score, variables))
    assert np.linalg.norm(score_term) > 0.1  # a term to drop
    expected = _flat(tape.gradient(total, variables)) + score_term
    np.testing.assert_allclose(_flat(tape.gradient(path, variables)), expected, atol=1e-10)
