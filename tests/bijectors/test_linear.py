"""The permutations and `LULinear` against NumPy: ``W = P L U`` built from its factors, the
map and both log-dets at every position, the seeded permutation, shared weights and the
config that rebuilds it; and which maps of the channels declare a constant Jacobian."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp.bijectors import LULinear, random_permutation, reverse_permutation


def test_reverse_permutation_reverses_the_last_axis():
    perm = reverse_permutation(4)
    assert perm.name.startswith("reverse") and reverse_permutation(4).name != perm.name
    np.testing.assert_array_equal(perm.permutation, [3, 2, 1, 0])
    np.testing.assert_array_equal(perm.forward(tf.constant([[0.0, 1.0, 2.0, 3.0]])), [[3, 2, 1, 0]])
    assert reverse_permutation(3, name="r").name == "r"


def test_random_permutation_is_numpys_draw_from_the_seed():
    perm = random_permutation(6, seed=7)
    np.testing.assert_array_equal(perm.permutation, np.random.default_rng(7).permutation(6))
    assert perm.name.startswith("random_permutation")
    assert random_permutation(6, 7, name="p").name == "p"


def _set_random_factors(lu, rng):
    lower, upper, log_diag = (v for v in lu.trainable_variables)
    for v in (lower, upper, log_diag):
        v.assign(rng.normal(0, 0.4, v.shape))
    c = lu.event_shape[-1]
    l_mat = np.tril(lower.numpy(), -1) + np.eye(c)
    u_mat = np.triu(upper.numpy(), 1) + np.diag(np.exp(log_diag.numpy()))
    return np.eye(c)[lu.permutation] @ l_mat @ u_mat, log_diag.numpy()


def test_lu_linear_is_w_equals_p_l_u_at_every_position():
    lu = LULinear([2, 2, 3], seed=4, dtype=tf.float64)
    assert [v.name.split("/")[-1].split(":")[0] for v in lu.trainable_variables] == [
        "lower",
        "upper",
        "log_diag",
    ]
    w, log_diag = _set_random_factors(lu, np.random.default_rng(0))
    z = np.random.default_rng(1).normal(size=(5, 2, 2, 3))
    x = z @ w.T
    np.testing.assert_allclose(lu.forward(tf.constant(z)), x, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(lu.inverse(tf.constant(x)), z, rtol=1e-12, atol=1e-13)
    log_det = np.log(abs(np.linalg.det(w)))
    np.testing.assert_allclose(log_det, log_diag.sum(), rtol=1e-12)
    np.testing.assert_allclose(lu.forward_log_det_jacobian(z, 3), [4 * log_det] * 5, rtol=1e-12)
    np.testing.assert_allclose(lu.inverse_log_det_jacobian(x, 3), [-4 * log_det] * 5, rtol=1e-12)
    assert all(v.dtype == tf.float64 for v in lu.variables)


def test_lu_linear_starts_as_the_permutation_drawn_from_its_seed():
    assert LULinear([5]).flow_dtype == tf.float32
    for seed, lu in ((0, LULinear([5])), (3, LULinear([5], seed=3))):
        assert lu.permutation == np.random.default_rng(seed).permutation(5).tolist()
        z = tf.reshape(tf.range(5.0), [1, 5])
        np.testing.assert_array_equal(lu.forward(z)[0], np.eye(5)[lu.permutation] @ np.arange(5))


def test_lu_linear_shares_weights_and_rebuilds_from_its_config(refusal):
    lu = LULinear([2, 3], seed=2)
    shared = LULinear([4, 3], weights=lu.layers[0])
    assert shared.layers[0] is lu.layers[0] and shared.trainable_variables == lu.trainable_variables
    assert refusal(ValueError, LULinear, [4], weights=lu.layers[0]) == (
        "`weights` act on 3 channels; the event has 4."
    )
    saved = LULinear([2, 4, 6], seed=2, dtype=tf.float64)
    config = saved.get_config()
    assert config == {
        "event_shape": [2, 4, 6],
        "dtype": "float64",
        "permutation": saved.permutation,
    }
    assert saved.permutation != LULinear([6]).permutation  # not the default seed's
    rebuilt = LULinear.from_config(config)
    assert (rebuilt.event_shape, rebuilt.flow_dtype, rebuilt.permutation) == (
        (2, 4, 6),
        tf.float64,
        saved.permutation,
    )
    assert all(v.dtype == tf.float64 for v in rebuilt.variables)
    assert rebuilt.layers[0] is not saved.layers[0]
    assert config["permutation"] == saved.permutation  # from_config left the caller's dict whole


@pytest.mark.parametrize("direction, arg", [("forward", "z"), ("inverse", "x")])
def test_lu_linear_names_the_argument_of_a_bad_input(refusal, direction, arg):
    lu = LULinear([3], name="lu")
    message = refusal(ValueError, getattr(lu, direction), tf.zeros([2, 4]))
    assert message == f"lu: `{arg}` must end in the event shape (3,); got shape (2, 4)."


def test_maps_of_the_channels_say_their_jacobian_is_constant_and_couplings_do_not():
    # TFP reads the flag (a constant log-det may be computed once and reused for any input).
    assert LULinear([4]).is_constant_jacobian and trn.ActNorm([2, 2, 3]).is_constant_jacobian
    assert trn.Whitening([0.0, 1.0], [[1.0, 0.0], [0.5, 2.0]]).is_constant_jacobian
    coupling = trn.AffineCoupling(trn.ResidualMLP(2, [4]), num_masked=2, event_shape=[4])
    assert not coupling.is_constant_jacobian
