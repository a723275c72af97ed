"""Planar and radial flows at the edges of their parameter spaces, and their builders."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import testing

# bijector math at parameter edges: the Keras version changes nothing here
pytestmark = pytest.mark.one_pass

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
