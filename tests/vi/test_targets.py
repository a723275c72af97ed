"""The VI test targets (`tfp_realnvp.vi.targets`) point by point against their published
formulas, written out again here in NumPy, over batches of any rank and in both float dtypes.
Their integrals, against the committed benchmark, are in test_vi.py."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.vi import targets

# Points over [-5, 5]^2 with batch shape [3, 50]: a reduction over the wrong axis shows.
Z = np.random.default_rng(0).uniform(-5, 5, size=(3, 50, 2))


def _gauss(t, scale):
    return -0.5 * (t / scale) ** 2


def _minus_u(kind: str, z: np.ndarray) -> np.ndarray:
    """``-U(z)`` of Rezende & Mohamed (2015), Table 1, times the envelope ``N(z1; 0, 2^2)``
    (unnormalised) for U2-U4."""
    z1, z2 = z[..., 0], z[..., 1]
    w1 = np.sin(2 * np.pi * z1 / 4)
    w2 = 3 * np.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + np.exp(-(z1 - 1) / 0.3))
    if kind == "U1":
        ring = _gauss(np.hypot(z1, z2) - 2, 0.4)
        return ring + np.logaddexp(_gauss(z1 - 2, 0.6), _gauss(z1 + 2, 0.6))
    terms = {
        "U2": [_gauss(z2 - w1, 0.4)],
        "U3": [_gauss(z2 - w1, 0.35), _gauss(z2 - w1 + w2, 0.35)],
        "U4": [_gauss(z2 - w1, 0.4), _gauss(z2 - w1 + w3, 0.35)],
    }[kind]
    return np.logaddexp.reduce(terms, axis=0) + _gauss(z1, 2.0)


@pytest.mark.parametrize("kind", ["U1", "U2", "U3", "U4"])
def test_each_energy_is_the_papers_formula(kind):
    target = targets.rezende_energy(kind.lower())
    assert (target.name, target.dim, target.log_z) == (kind, 2, None)
    assert target.info == {"envelope_scale": None if kind == "U1" else 2.0}
    for dtype, rtol in ((tf.float64, 1e-12), (tf.float32, 1e-5)):
        got = target.log_prob(tf.constant(Z, dtype)).numpy()
        assert got.shape == (3, 50) and got.dtype == dtype.as_numpy_dtype
        np.testing.assert_allclose(got, _minus_u(kind, Z), rtol=rtol, atol=rtol)


def test_the_banana_is_its_two_normals():
    target = targets.banana(scale=1.5, curvature=0.4, noise=0.3)
    assert (target.name, target.dim, target.log_z) == ("banana", 2, 0.0)
    z1, z2 = Z[..., 0], Z[..., 1]
    log_norm = -0.5 * np.log(2 * np.pi)
    want = (_gauss(z1, 1.5) + log_norm - np.log(1.5)) + (
        _gauss(z2 - 0.4 * z1**2, 0.3) + log_norm - np.log(0.3)
    )
    for dtype, rtol in ((tf.float64, 1e-12), (tf.float32, 1e-5)):  # float64 failed before
        got = target.log_prob(tf.constant(Z, dtype)).numpy()
        assert got.dtype == dtype.as_numpy_dtype
        np.testing.assert_allclose(got, want, rtol=rtol)


def test_the_funnel_is_its_normals():
    target = targets.funnel(dim=4, scale=2.5)
    assert (target.name, target.dim, target.log_z) == ("funnel", 4, 0.0)
    assert target.info == {"scale_of_v": 2.5}
    z = np.random.default_rng(1).normal(size=(3, 5, 4))
    v, x = z[..., 0], z[..., 1:]
    log_norm = -0.5 * np.log(2 * np.pi)
    want = _gauss(v, 2.5) + log_norm - np.log(2.5)
    want = want + np.sum(_gauss(x, np.exp(v / 2)[..., None]) + log_norm - v[..., None] / 2, -1)
    for dtype, rtol in ((tf.float64, 1e-12), (tf.float32, 1e-5)):
        got = target.log_prob(tf.constant(z, dtype)).numpy()
        assert got.dtype == dtype.as_numpy_dtype
        np.testing.assert_allclose(got, want, rtol=rtol)


def test_the_logistic_regression_is_its_prior_and_likelihood():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    x = np.concatenate([np.ones((len(x), 1)), x], 1)
    y = data.target
    target = targets.breast_cancer_logistic_regression(prior_scale=2.0, dtype=tf.float64)
    assert (target.name, target.dim, target.log_z) == (
        "breast_cancer_logistic_regression",
        31,
        None,
    )
    np.testing.assert_array_equal(target.info["features"], x)
    np.testing.assert_array_equal(target.info["labels"], y)
    w = np.random.default_rng(2).normal(size=(2, 3, 31)) * 0.2
    logits = np.einsum("nd,abd->abn", x, w)
    log_lik = np.sum(y * logits - np.logaddexp(0, logits), -1)
    log_prior = np.sum(_gauss(w, 2.0) - np.log(2.0) - 0.5 * np.log(2 * np.pi), -1)
    got = target.log_prob(tf.constant(w)).numpy()
    assert got.shape == (2, 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, log_prior + log_lik, rtol=1e-10)
    model = target.info["model"]
    drawn = model.sample(seed=(0, 1))
    assert drawn["w"].dtype == drawn["y"].dtype == tf.float64
    pinned = model.log_prob(w=tf.constant(w[0, 0]), y=tf.constant(y, tf.float64))
    np.testing.assert_allclose(pinned, got[0, 0], rtol=1e-10)


def test_the_documented_defaults():
    z = tf.constant(Z)
    np.testing.assert_array_equal(
        targets.banana().log_prob(z), targets.banana(2.0, 0.25, 0.5).log_prob(z)
    )
    funnel = targets.funnel()
    assert funnel.dim == 10 and funnel.info == {"scale_of_v": 3.0}
    w = tf.constant(np.random.default_rng(3).normal(size=(2, 31)) * 0.1, tf.float32)
    np.testing.assert_array_equal(
        targets.breast_cancer_logistic_regression().log_prob(w),
        targets.breast_cancer_logistic_regression(1.0, tf.float32).log_prob(w),
    )
