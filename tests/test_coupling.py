"""AffineCoupling against closed forms, and its errors."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import AffineCoupling, ResidualMLP, checkerboard_mask, flow_distribution

tfb = tfp.bijectors


class LinearConditioner(tf.Module):
    """shift = x1 @ a, raw log-scale = tanh(x1 @ b): a conditioner whose outputs we can
    compute independently in NumPy."""

    def __init__(self, a, b, dtype=tf.float64):
        super().__init__()
        self.a = tf.Variable(a, dtype=dtype)
        self.b = tf.Variable(b, dtype=dtype)

    def __call__(self, x1):
        return x1 @ self.a, tf.tanh(x1 @ self.b)


def _closed_form(x, mask, a, b):
    x1, x2 = x[:, mask], x[:, ~mask]
    s, t = np.tanh(x1 @ b), x1 @ a
    z = x.copy()
    z[:, ~mask] = x2 * np.exp(s) + t
    return z, s.sum(-1)


@pytest.mark.parametrize(
    "mask",
    [
        np.array([True, False, False]),  # prefix: sliced
        np.array([False, False, True]),  # suffix: sliced
        np.array([False, True, False, True]),  # gathered
    ],
)
def test_inverse_is_data_to_latent_with_exact_log_det(mask):
    rng = np.random.default_rng(0)
    k, n = mask.sum(), (~mask).sum()
    a, b = rng.normal(size=(k, n)), rng.normal(size=(k, n))
    bij = AffineCoupling(LinearConditioner(a, b), mask, scale="exp", dtype=tf.float64)
    x = rng.normal(size=(6, mask.size))
    z_want, ildj_want = _closed_form(x, mask, a, b)
    np.testing.assert_allclose(bij.inverse(x), z_want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bij.inverse_log_det_jacobian(x, 1), ildj_want, rtol=1e-12)
    z = tf.constant(z_want)
    np.testing.assert_allclose(bij.forward(z), x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bij.forward_log_det_jacobian(tf.identity(z), 1), -ildj_want)


@pytest.mark.parametrize(
    "scale, expected",
    [
        ("soft_clamp", lambda s: 3.0 * np.tanh(s / 3.0)),
        ("sigmoid", lambda s: -np.log1p(np.exp(-(s + 2.0)))),
        ("exp", lambda s: s),
        ("tanh", np.tanh),  # learned factor starts at 1
    ],
)
def test_scale_parameterisations(scale, expected):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 2)), 3 * rng.normal(size=(2, 2))

    class Raw(LinearConditioner):
        def __call__(self, x1):
            return x1 @ self.a, x1 @ self.b

    bij = AffineCoupling(Raw(a, b), num_masked=2, event_shape=[4], scale=scale, dtype=tf.float64)
    x = rng.normal(size=(5, 4))
    log_s = expected(x[:, :2] @ b)
    np.testing.assert_allclose(bij.inverse_log_det_jacobian(x, 1), log_s.sum(-1), rtol=1e-10)
    np.testing.assert_allclose(bij.inverse(x)[:, 2:], x[:, 2:] * np.exp(log_s) + x[:, :2] @ a)


def test_soft_clamp_bounds_a_huge_raw_scale():
    class Huge(tf.Module):
        def __call__(self, x1):
            return tf.zeros_like(x1), 1e4 * tf.ones_like(x1)

    bij = AffineCoupling(Huge(), num_masked=1, event_shape=[2], clamp=2.0)
    ildj = bij.inverse_log_det_jacobian(tf.ones([3, 2]), 1)
    np.testing.assert_allclose(ildj, 2.0)


def test_additive_coupling_is_volume_preserving_but_not_constant_jacobian():
    rng = np.random.default_rng(2)
    bij = AffineCoupling(
        ResidualMLP(2, [8], num_outputs=1), num_masked=2, event_shape=[4], scale="none"
    )
    for v in bij.trainable_variables:
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    x = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    assert not bij.is_constant_jacobian
    np.testing.assert_array_equal(bij.inverse_log_det_jacobian(x, 1), np.zeros(3))
    assert not np.allclose(bij.inverse(x)[:, 2:], x[:, 2:])
    # TFP would compute the mean as if the map were affine if the flag were set; it must not.
    with pytest.raises(NotImplementedError):
        flow_distribution(bij).mean()


def test_image_mask_leaves_masked_pixels_untouched():
    mask = checkerboard_mask(4, 4, 2)

    class Const(tf.Module):
        def __call__(self, x1):
            return tf.ones_like(x1), 0.5 * tf.ones_like(x1)

    bij = AffineCoupling(Const(), mask, scale="exp")
    x = tf.random.normal([2, 4, 4, 2])
    z = bij.inverse(x).numpy()
    np.testing.assert_array_equal(z[:, mask], x.numpy()[:, mask])
    np.testing.assert_allclose(z[:, ~mask], x.numpy()[:, ~mask] * np.exp(0.5) + 1, rtol=1e-6)
    np.testing.assert_allclose(bij.inverse_log_det_jacobian(x, 3), 0.5 * (~mask).sum())


def test_two_instances_never_share_the_bijector_cache():
    def make():
        return AffineCoupling(ResidualMLP(2, [4]), num_masked=2, event_shape=[4])

    b1, b2 = make(), make()
    b2.conditioner.trainable_variables[-1].assign(tf.ones([4]))  # output bias: shift 1, scale e
    assert b1 != b2
    x = tf.random.normal([3, 4])
    z1, z2 = b1.inverse(x), b2.inverse(x)  # the very same tensor
    np.testing.assert_allclose(z1, x)
    assert not np.allclose(z1, z2)
    assert not np.allclose(b1.inverse_log_det_jacobian(x, 1), b2.inverse_log_det_jacobian(x, 1))


def test_trainable_variables_list_every_keras_weight():
    bij = AffineCoupling(ResidualMLP(2, [8, 8]), num_masked=2, event_shape=[4], scale="tanh")
    # 3 Dense layers (kernel + bias) and the learned tanh factor.
    assert len(bij.trainable_variables) == 7
    chain = tfb.Chain([tfb.Shift(1.0), bij])
    dist = flow_distribution(chain, event_shape=[4])
    ids = {id(v) for v in bij.trainable_variables}
    assert {id(v) for v in chain.trainable_variables} == ids
    assert {id(v) for v in dist.trainable_variables} == ids


def test_float64_flow():
    bij = AffineCoupling(ResidualMLP(2, [8], dtype="float64"), num_masked=2, event_shape=[4])
    z = bij.inverse(tf.ones([2, 4], tf.float64))
    assert z.dtype == tf.float64


def test_dtype_mismatch_names_both_dtypes():
    bij = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    with pytest.raises(TypeError, match=r"`x` has dtype float64.*computes in float32"):
        bij.inverse(np.zeros([2, 4]))
    with pytest.raises(TypeError, match=r"`z` has dtype float64.*computes in float32"):
        bij.forward(tf.zeros([2, 4], tf.float64))


def test_wrong_event_size_is_named():
    bij = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    with pytest.raises(
        ValueError, match=r"`x` must end in the event shape \(4,\); got shape \(2, 5\)"
    ):
        bij.inverse(tf.zeros([2, 5]))
    with pytest.raises(ValueError, match=r"event shape \(4,\); got shape \(\)"):
        bij.forward(tf.zeros([]))


def test_non_finite_input_rejected_with_validate_args():
    bij = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4], validate_args=True)
    x = tf.constant([[0.0, np.nan, 1.0, 2.0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`x` contains NaN or inf"):
        bij.inverse(x)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`z` contains NaN or inf"):
        bij.forward_log_det_jacobian(tf.constant([[0.0, np.inf, 1.0, 2.0]]), 1)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(mask=[True, True, True]), ValueError, "masks every unit"),
        (dict(mask=[1, 0, 1]), ValueError, "must be a boolean array"),
        (dict(mask=[True, False], num_masked=1), ValueError, "either `mask` or `num_masked`"),
        (dict(num_masked=1), ValueError, "`event_shape` is needed"),
        (dict(num_masked=2, event_shape=[2, 2]), ValueError, "splits vector events only"),
        (dict(num_masked=1, event_shape=[4], scale="bogus"), ValueError, "`scale` must be one of"),
        (
            dict(num_masked=1, event_shape=[4], clamp=-1.0),
            ValueError,
            "`clamp` must be a positive number",
        ),
    ],
)
def test_bad_construction_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        AffineCoupling(ResidualMLP(3, [4]), **kwargs)


def test_conditioner_output_shape_checked_at_construction():
    with pytest.raises(
        ValueError, match=r"must return \(shift, log_scale\), each of shape \(1, 2\)"
    ):
        AffineCoupling(ResidualMLP(3, [4]), num_masked=2, event_shape=[4])
    with pytest.raises(ValueError, match=r"must return a shift tensor of shape \(1, 2\)"):
        AffineCoupling(ResidualMLP(2, [4]), num_masked=2, event_shape=[4], scale="none")
    with pytest.raises(TypeError, match=r"`conditioner` must be a Keras layer or tf.Module"):
        AffineCoupling("not a network", num_masked=2, event_shape=[4])


def test_context_errors():
    cond = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4], context_shape=[3])
    x = tf.zeros([5, 4])
    with pytest.raises(ValueError, match=r"is conditional \(context_shape=\(3,\)\) and needs"):
        cond.inverse(x)
    with pytest.raises(ValueError, match=r"`context` must end in context_shape \(3,\); got"):
        cond.inverse(x, context=tf.zeros([5, 2]))
    uncond = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    with pytest.raises(ValueError, match="this coupling is unconditional"):
        uncond.inverse(x, context=tf.zeros([5, 3]))
    # One context broadcasts over the batch.
    assert cond.inverse(x, context=tf.ones([3])).shape == (5, 4)
