"""Planar and radial flows at the edges of their parameter spaces, and their builders."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import testing

F64 = tf.float64


def _planar(wu, b=0.2):
    """A planar layer with w.u = ``wu``, so ``w.u_hat = -1 + softplus(wu)``."""
    planar = trn.Planar([3], dtype=F64)
    weights = planar.layers[0]
    w = np.array([1.0, -0.5, 0.3])
    weights.w.assign(w)
    weights.u.assign(wu * w / np.sum(w**2))
    weights.b.assign(b)
    return planar


def _radial(beta_raw, alpha_raw=0.5):
    """A radial layer with ``beta = -alpha + softplus(beta_raw)``."""
    radial = trn.Radial([3], dtype=F64)
    weights = radial.layers[0]
    weights.z0.assign([0.1, 0.2, -0.3])
    weights.alpha_raw.assign(alpha_raw)
    weights.beta_raw.assign(beta_raw)
    return radial


def test_planar_conforms_near_the_invertibility_limit():
    testing.assert_conformant(_planar(-12.0), [3], jit_compile=False)  # w.u_hat = -1 + 6e-6


@pytest.mark.parametrize("beta_raw", [-12.0, 4.0])  # beta = -alpha + 6e-6; beta >> alpha
def test_radial_conforms_near_the_invertibility_limit_and_far_from_it(beta_raw):
    testing.assert_conformant(_radial(beta_raw), [3], jit_compile=False)


def test_planar_inverse_is_exact_where_the_map_flattens():
    """At w.u_hat = -1 + 6e-6 the forward map is nearly flat along w around w.z = -b: the
    inverse still returns the latent (far inside the root solve's bracket)."""
    planar = _planar(-12.0)
    w = np.array([1.0, -0.5, 0.3])
    z = tf.constant(np.outer([-0.2, -0.19, -0.21], w / np.sum(w**2)), F64)  # w.z near -b
    np.testing.assert_allclose(planar.inverse(planar.forward(tf.identity(z))), z, atol=1e-8)


def test_builders_start_as_the_identity_and_check_their_arguments():
    z = tf.constant(np.random.default_rng(0).normal(size=(4, 3)), F64)
    for build in (trn.planar_flow, trn.radial_flow):
        flow = build(3, 3, dtype=F64)
        assert len(flow.bijectors) == 3
        np.testing.assert_allclose(flow.forward(z), z, atol=1e-12)
        np.testing.assert_allclose(flow.forward_log_det_jacobian(z, 1), 0.0, atol=1e-12)
        with pytest.raises(ValueError, match=r"`num_layers` must be a positive integer; got 0"):
            build(3, 0)
        with pytest.raises(ValueError, match=r"`event_shape` must be a list of 1 positive"):
            build([2, 2], 1)


def test_inputs_of_the_wrong_shape_name_the_argument():
    with pytest.raises(ValueError, match=r"`x` must end in the event shape \(3,\)"):
        trn.Planar([3]).inverse(tf.zeros([2, 4]))
    with pytest.raises(TypeError, match=r"`z` has dtype float64"):
        trn.Radial([3]).forward(tf.zeros([2, 3], F64))
    for bijector in (trn.Planar([3]), trn.Radial([3])):
        with pytest.raises(ValueError, match=r"`z` must end in the event shape \(3,\)"):
            bijector.forward(tf.zeros([2, 4]))
        with pytest.raises(ValueError, match=r"`x` must end in the event shape \(3,\)"):
            bijector.inverse(tf.zeros([2, 4]))


def _softplus(a):
    return np.log1p(np.exp(a))


def _assert_maps(bijector, z, x, log_det):
    """``bijector`` maps ``z`` to ``x`` with ``log_det``, and back (the inverse by its solve)."""
    np.testing.assert_allclose(bijector.forward(tf.constant(z)), x, rtol=1e-12)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(tf.constant(z), 1), log_det,
                               rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(bijector.inverse(tf.constant(x)), z, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bijector.inverse_log_det_jacobian(tf.constant(x), 1), -log_det,
                               rtol=1e-10, atol=1e-12)  # fmt: skip


def test_planar_is_rezende_and_mohameds_map_in_closed_form():
    """``x = z + u_hat tanh(w.z + b)`` with ``u_hat = u + (m(w.u) - w.u) w / |w|^2``,
    ``m(a) = -1 + softplus(a)``; log-det ``log|1 + u_hat.w tanh'(w.z + b)|``, written out in
    NumPy (equations 10-12 and appendix A.1 of the paper); the inverse undoes it."""
    planar = trn.Planar([3], dtype=F64)
    weights = planar.layers[0]
    w, u, b = np.array([0.8, -0.5, 0.3]), np.array([1.5, 0.4, -0.7]), 0.3
    weights.w.assign(w)
    weights.u.assign(u)
    weights.b.assign(b)
    wu = w @ u
    u_hat = u + (-1 + _softplus(wu) - wu) * w / (w @ w)
    z = np.random.default_rng(1).normal(size=(2, 4, 3)) * 2  # a batch of rank 2
    a = z @ w + b
    x = z + u_hat * np.tanh(a)[..., None]
    log_det = np.log(np.abs(1 + (u_hat @ w) * (1 - np.tanh(a) ** 2)))
    _assert_maps(planar, z, x, log_det)


def test_radial_is_rezende_and_mohameds_map_in_closed_form():
    """``x = z + beta h(alpha, r) (z - z0)``, ``h = 1 / (alpha + r)``, ``r = |z - z0|``, with
    ``alpha = softplus(alpha_raw)``, ``beta = -alpha + softplus(beta_raw)``; log-det
    ``(D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r)`` (equations 14 and appendix
    A.2), in NumPy; the inverse undoes it."""
    radial = _radial(beta_raw=1.2, alpha_raw=-0.4)
    z0 = np.array([0.1, 0.2, -0.3])
    alpha = _softplus(-0.4)
    beta = -alpha + _softplus(1.2)
    z = np.random.default_rng(2).normal(size=(2, 4, 3)) * 2
    r = np.linalg.norm(z - z0, axis=-1)
    h = 1 / (alpha + r)
    x = z + (beta * h)[..., None] * (z - z0)
    log_det = 2 * np.log1p(beta * h) + np.log1p(beta * h - beta * h**2 * r)
    _assert_maps(radial, z, x, log_det)
    # Points nearer the centre than beta's reach take the other form of the quadratic's root.
    near = z0 + np.random.default_rng(3).normal(size=(5, 3)) * 0.01
    x_near = radial.forward(tf.constant(near))
    np.testing.assert_allclose(radial.inverse(x_near), near, rtol=1e-10, atol=1e-13)


def test_the_builders_start_from_their_documented_weights():
    planar = trn.Planar([4], seed=3, dtype=F64)
    w, u = planar.layers[0].w.numpy(), planar.layers[0].u.numpy()
    np.testing.assert_allclose(w, np.random.default_rng(3).normal(size=4) / 2, rtol=1e-12)
    assert -1 + _softplus(w @ u) == pytest.approx(0, abs=1e-12)  # u_hat = 0: the identity
    assert planar.layers[0].b.numpy() == 0
    radial = trn.Radial([4], seed=5, dtype=F64)
    np.testing.assert_allclose(radial.layers[0].z0.numpy(), np.random.default_rng(5).normal(size=4))
    assert radial.layers[0].alpha_raw.numpy() == radial.layers[0].beta_raw.numpy() == 0


@pytest.mark.parametrize("wu", [2.0, -1.5])  # w.u_hat = 1.13 and -0.80
def test_planar_root_solve_converges_in_a_few_newton_steps(monkeypatch, wu):
    """The solve runs a fixed 60 steps for the degenerate limit; away from it, Newton's
    quadratic convergence needs only a few: 6 steps must already give the root to 1e-12
    (bisection alone would leave an error of the bracket / 64)."""
    from tfp_realnvp.bijectors import planar as module

    monkeypatch.setattr(module, "_ITERATIONS", 6)
    planar = _planar(wu, b=0.4)
    w = np.array([1.0, -0.5, 0.3])
    z = tf.constant(np.random.default_rng(5).normal(size=(50, 3)) * 2 + w)
    x = tf.identity(planar.forward(z))
    np.testing.assert_allclose(planar.inverse(x), z, rtol=1e-12, atol=1e-12)


def test_planar_samples_and_their_density_need_no_root_solve(monkeypatch):
    """As documented: the density of the flow's own samples is closed form (the forward pass
    leaves both log-dets in the cache); only another point costs the solve."""
    from tfp_realnvp.bijectors import planar as module

    planar = _planar(1.0)
    z = tf.constant(np.random.default_rng(6).normal(size=(4, 3)))
    want_ildj = -planar.forward_log_det_jacobian(z, 1)
    x = planar.forward(z)

    def no_solve(*args):
        raise AssertionError("the root solve ran")

    monkeypatch.setattr(module, "_solve", no_solve)
    np.testing.assert_allclose(planar.inverse_log_det_jacobian(x, 1), want_ildj, rtol=1e-12)
    np.testing.assert_array_equal(planar.inverse(x), z)
    with pytest.raises(AssertionError, match="the root solve ran"):
        planar.inverse(tf.identity(x))  # a new tensor: not one the flow made


@pytest.mark.parametrize("cls, kind", [(trn.Planar, "planar"), (trn.Radial, "radial")])
def test_planar_and_radial_take_tfps_arguments_and_rebuild_from_their_config(plumbing, cls, kind):
    nan = [[np.nan, 0.0, 0.0]]
    named = plumbing(
        lambda **kw: cls([3], **kw), kind, [("forward", nan, "z"), ("inverse", nan, "x")]
    )
    # Each instance holds its own weights (TFP keys its cache on the parameters).
    assert named.parameters["weights"] is named.layers[0]
    assert cls([3]).parameters["weights"] is not cls([3]).parameters["weights"]
    # The seed (0 by default) draws the initial weights; the config rebuilds the same ones.
    weights = [v.numpy() for v in cls([3]).trainable_variables]
    same = [v.numpy() for v in cls([3], seed=0).trainable_variables]
    other = [v.numpy() for v in cls([3], seed=1).trainable_variables]
    assert all(np.array_equal(a, b) for a, b in zip(weights, same, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(weights, other, strict=True))
    flow = cls([3], seed=4, dtype=tf.float64)
    config = flow.get_config()
    assert config == {"event_shape": [3], "seed": 4, "dtype": "float64"}
    rebuilt = cls.from_config(config)
    for a, b in zip(flow.trainable_variables, rebuilt.trainable_variables, strict=True):
        assert a.dtype == b.dtype == tf.float64
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    layer = flow.layers[0]
    assert type(layer).from_config(layer.get_config()).shapes == layer.shapes
