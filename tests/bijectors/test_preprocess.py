"""`Dequantize`, `Logit` and `Whitening` against their closed forms written out in NumPy, in
both directions and both log-dets, with their refusals compared whole."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.bijectors import Dequantize, Logit, Whitening

F64 = tf.float64


@pytest.mark.parametrize("levels", [2, 17, np.int64(256)])
def test_dequantize_scales_by_the_number_of_levels(levels):
    d = Dequantize(levels)
    x = np.array([[0.0, 1.25], [levels - 0.5, 0.7]])
    y = x / levels
    np.testing.assert_allclose(d.inverse(tf.constant(x)), y, rtol=1e-15)
    np.testing.assert_allclose(d.forward(tf.constant(y)), x, rtol=1e-15)
    np.testing.assert_allclose(d.inverse_log_det_jacobian(x, 0), np.full(x.shape, -np.log(levels)))
    np.testing.assert_allclose(d.forward_log_det_jacobian(y, 1), np.full(2, 2 * np.log(levels)))
    assert d.num_levels == levels and type(d.num_levels) is int
    assert d.get_config() == {"num_levels": int(levels)}
    assert d.inverse(tf.constant(x, tf.float32)).dtype == tf.float32


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.2])
def test_logit_is_realnvps_logit_transform(alpha):
    logit = Logit(alpha)
    x = np.array([[0.1, 0.5], [0.93, 0.37]])
    p = alpha + (1 - 2 * alpha) * x
    y = np.log(p) - np.log(1 - p)
    np.testing.assert_allclose(logit.inverse(tf.constant(x)), y, rtol=1e-13)
    np.testing.assert_allclose(logit.forward(tf.constant(y)), x, rtol=1e-13)
    ildj = np.log(1 - 2 * alpha) - np.log(p) - np.log(1 - p)
    np.testing.assert_allclose(logit.inverse_log_det_jacobian(x, 0), ildj, rtol=1e-13)
    sig = 1 / (1 + np.exp(-y))
    fldj = np.log(sig) + np.log(1 - sig) - np.log(1 - 2 * alpha)
    np.testing.assert_allclose(logit.forward_log_det_jacobian(y, 0), fldj, rtol=1e-12)
    assert logit.alpha == alpha and logit.get_config() == {"alpha": alpha}
    assert logit.inverse_domain == (0.0, 1.0)


def test_logit_default_is_the_papers_alpha():
    assert Logit().alpha == 0.05


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Dequantize(1), "`num_levels` must be an integer >= 2; got 1."),
        (lambda: Dequantize(2.0), "`num_levels` must be an integer >= 2; got 2.0."),
        (lambda: Logit(0.5), "`alpha` must be in [0, 0.5); got 0.5."),
        (lambda: Logit(-0.01), "`alpha` must be in [0, 0.5); got -0.01."),
        (lambda: Logit("0.1"), "`alpha` must be in [0, 0.5); got '0.1'."),
    ],
)
def test_bad_arguments_are_named(refusal, make, message):
    assert refusal(ValueError, make) == message


MEAN = np.array([1.0, -2.0, 0.5])
TRIL = np.array([[2.0, 0, 0], [0.7, 0.5, 0], [-1.2, 0.3, 1.5]])


@pytest.mark.parametrize("dtype", [tf.float32, F64])
def test_whitening_is_the_affine_map_of_its_factor(dtype):
    w = Whitening(MEAN, TRIL, dtype)
    z = np.random.default_rng(0).normal(size=(4, 3))
    x = MEAN + z @ TRIL.T
    tol = 1e-5 if dtype == tf.float32 else 1e-13
    np.testing.assert_allclose(w.forward(tf.constant(z, dtype)), x, rtol=tol, atol=tol)
    np.testing.assert_allclose(w.inverse(tf.constant(x, dtype)), z, rtol=tol, atol=tol)
    log_det = np.log(np.linalg.det(TRIL))
    np.testing.assert_allclose(w.forward_log_det_jacobian(z, 1), log_det, rtol=tol)
    np.testing.assert_allclose(w.inverse_log_det_jacobian(x, 1), -log_det, rtol=tol)
    assert w.forward(tf.constant(z, dtype)).dtype == dtype
    assert w.is_constant_jacobian
    config = w.get_config()
    assert config == {"mean": MEAN.tolist(), "scale_tril": TRIL.tolist(), "dtype": dtype.name}
    np.testing.assert_array_equal(Whitening(**config).scale_tril, TRIL)
    np.testing.assert_array_equal(w.mean, MEAN)


def test_whitening_fit_is_the_sample_gaussian_with_jitter_on_the_diagonal():
    x = np.random.default_rng(1).multivariate_normal([1.0, -2.0], [[4.0, 1.9], [1.9, 1.0]], 50)
    covariance = np.cov(x, rowvar=False)
    w = Whitening.fit(x, jitter=1e-3, dtype=F64)
    np.testing.assert_allclose(w.mean, x.mean(axis=0), rtol=1e-14)
    jittered = covariance + 1e-3 * np.trace(covariance) / 2 * np.eye(2)
    np.testing.assert_allclose(w.scale_tril @ w.scale_tril.T, jittered, rtol=1e-13)
    assert w.flow_dtype == F64
    default = Whitening.fit(x)
    want = covariance + 1e-9 * np.trace(covariance) / 2 * np.eye(2)
    np.testing.assert_allclose(default.scale_tril @ default.scale_tril.T, want, rtol=1e-14)
    assert default.flow_dtype == tf.float32
    # One column, and a constant one: still a positive diagonal.
    np.testing.assert_allclose(Whitening.fit(x[:, :1]).scale_tril, [[np.std(x[:, 0], ddof=1)]])
    assert Whitening.fit(np.ones((5, 2))).scale_tril[0, 0] == pytest.approx((1e-9 * 1e-12) ** 0.5)


@pytest.mark.parametrize(
    "mean, tril, message",
    [
        ([[1.0]], [[1.0]], "`mean` must be a vector [D]; got shape (1, 1)."),
        ([], np.zeros((0, 0)), "`mean` must be a vector [D]; got shape (0,)."),
        (
            [1.0, 2.0],
            [[1.0]],
            "`scale_tril` must be [D, D] = [2, 2] for a mean of 2; got shape [1, 1].",
        ),
        (
            [0.0, 0.0],
            [[1.0, 0.1], [0.0, 1.0]],
            "`scale_tril` must be lower triangular (a Cholesky factor).",
        ),
        (
            [0.0, 0.0],
            [[1.0, 0.0], [0.5, -2.0]],
            "`scale_tril` must be finite with a positive diagonal; the smallest diagonal entry "
            "is -2.",
        ),
        (
            [0.0, 0.0],
            [[1.0, 0.0], [np.inf, 1.0]],
            "`scale_tril` must be finite with a positive diagonal; the smallest diagonal entry "
            "is 1.",
        ),
    ],
)
def test_whitening_refusals_name_the_argument(refusal, mean, tril, message):
    assert refusal(ValueError, Whitening, mean, tril) == message


PLUMBED = [
    (lambda **kw: Dequantize(5, **kw), "dequantize", "y"),
    (lambda **kw: Logit(0.1, **kw), "logit", "y"),
    (lambda **kw: Whitening(MEAN, TRIL, **kw), "whitening", "z"),
]


@pytest.mark.parametrize("make, kind, forward_arg", PLUMBED)
def test_each_keeps_its_name_parameters_and_checks(refusal, plumbing, make, kind, forward_arg):
    """The TFP plumbing (see the `plumbing` fixture), the ``parameters`` that rebuild it, the
    dtype refusal naming the argument of the direction called, and no check by default."""
    bad = [[0.5, np.nan, 0.5]]
    directions = (("inverse", "x"), ("forward", forward_arg))
    named = plumbing(make, kind, [(method, bad, arg) for method, arg in directions])
    rebuilt = type(named)(**named.parameters)
    assert rebuilt.parameters.keys() == named.parameters.keys()
    for method, arg in directions:
        message = refusal(TypeError, getattr(named, method), tf.zeros([1, 3], tf.int32))
        assert f"m: `{arg}` " in message
    assert np.isnan(make().inverse(tf.constant(bad))[0, 1])  # unchecked by default


def test_whitening_keeps_its_mean_and_factor_in_float64_whatever_it_is_given(refusal):
    """Its docstring's promise: ``L^{-1}`` is computed once in float64, from float32 or
    integer arguments as well; a zero on the diagonal is refused."""
    w = Whitening(MEAN.astype(np.float32), TRIL.astype(np.float32))
    assert w.mean.dtype == w.scale_tril.dtype == np.float64
    ints = Whitening([1, 2], [[2, 0], [1, 1]])
    assert ints.mean.dtype == ints.scale_tril.dtype == np.float64
    x = np.random.default_rng(2).normal(size=(20, 2)).astype(np.float32)
    fitted = Whitening.fit(x)
    np.testing.assert_array_equal(fitted.mean, x.astype(np.float64).mean(axis=0))
    assert fitted.mean.dtype == np.float64
    assert refusal(ValueError, Whitening, [0.0, 0.0], [[1.0, 0.0], [0.5, 0.0]]) == (
        "`scale_tril` must be finite with a positive diagonal; the smallest diagonal entry is 0."
    )
