"""ActNorm, Squeeze, FactorOut, Dequantize, Logit: closed forms, state, errors."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import ActNorm, Dequantize, FactorOut, Logit, Squeeze, keras

tfb = tfp.bijectors


def _images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal([3.0, -1.0], [2.0, 0.5], size=(n, 4, 4, 2)), tf.float32)


def test_actnorm_is_the_identity_and_changed_by_no_call_until_initialized():
    norm = ActNorm([4, 4, 2])
    x = _images()
    before = [v.numpy().copy() for v in norm.variables]
    np.testing.assert_array_equal(norm.forward(tf.identity(x)), x)
    np.testing.assert_array_equal(norm.inverse(tf.identity(x)), x)
    np.testing.assert_array_equal(norm.forward_log_det_jacobian(x, 3), 0.0)
    np.testing.assert_array_equal(norm.inverse_log_det_jacobian(x, 3), 0.0)
    assert not norm.is_initialized
    for want, v in zip(before, norm.variables, strict=True):
        np.testing.assert_array_equal(v.numpy(), want)


def test_actnorm_initialize_sets_moments_once():
    norm = ActNorm([4, 4, 2])
    x = _images()
    assert norm.initialize(x) and norm.is_initialized
    z = norm.inverse(tf.identity(x)).numpy()
    np.testing.assert_allclose(z.mean((0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std((0, 1, 2)), 1.0, rtol=1e-3)
    params = [v.numpy().copy() for v in norm.variables]
    assert not norm.initialize(_images(seed=1) * 10.0)  # a second batch changes nothing
    for before, v in zip(params, norm.variables, strict=True):
        np.testing.assert_array_equal(before, v.numpy())
    ildj = norm.inverse_log_det_jacobian(x, 3)
    want = 16 * -np.log(np.std(x.numpy(), (0, 1, 2))).sum()
    np.testing.assert_allclose(ildj, want, atol=1e-4)


def test_actnorm_initialize_errors():
    norm = ActNorm([3])
    with pytest.raises(RuntimeError) as caught:
        tf.function(norm.initialize)(tf.ones([4, 3]))
    # The last line, after TensorFlow's "in user code" trace of where it was raised:
    *_, last = str(caught.value).rstrip().split("\n")
    assert last.strip() == (
        f"RuntimeError: {norm.name}: `initialize` runs eagerly; call it before training or "
        "compiling, not inside a tf.function."
    )
    with pytest.raises(ValueError, match=r"at least 2 values per channel.*got shape \(1, 3\)"):
        norm.initialize(tf.ones([1, 3]))
    with pytest.raises(TypeError, match="`x` has dtype float64, but this bijector computes in"):
        norm.initialize(tf.ones([4, 3], tf.float64))
    assert not norm.is_initialized
    assert norm.initialize(np.arange(12.0).reshape(4, 3))  # NumPy input takes the dtype


@pytest.mark.tf_keras  # Keras layers built on first call
def test_fresh_glow_flow_is_one_function_whatever_is_called_first():
    # Issue 15: the first `inverse` used to initialise every ActNorm, so a `forward` before it
    # used other parameters than every call after it (round trip off by 0.93).
    flow = trn.multiscale_real_nvp([8, 8, 2], glow=True, dtype=tf.float64)
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, size=(4, 8, 8, 2)))
    y = flow.forward(tf.identity(x))
    np.testing.assert_allclose(flow.inverse(tf.identity(y)), x, atol=1e-12)
    np.testing.assert_allclose(
        -flow.inverse_log_det_jacobian(tf.identity(y), 3),
        flow.forward_log_det_jacobian(tf.identity(x), 3),
        atol=1e-12,
    )


@pytest.mark.tf_keras  # a Keras layer's non-trainable state
def test_actnorm_state_saved_and_restored(tmp_path):
    def make():
        return trn.FlowModel(tfb.Chain([ActNorm([2]), trn.real_nvp([2], 1, [4])]))

    model = make()
    x = np.random.default_rng(0).normal(4.0, 3.0, size=(128, 2)).astype("float32")
    assert len(model.initialize(x)) == 1
    model.save(str(tmp_path / "m.keras"))
    tf.train.Checkpoint(model=model).write(str(tmp_path / "ck"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    restored = make()
    tf.train.Checkpoint(model=restored).read(str(tmp_path / "ck")).assert_existing_objects_matched()
    uninitialized = tfp.distributions.MultivariateNormalDiag(tf.zeros(2)).log_prob(x[:5])
    for other in (loaded, restored):
        assert other.bijector.bijectors[0].is_initialized
        np.testing.assert_array_equal(other.log_prob(x[:5]), model.log_prob(x[:5]))
        assert not np.allclose(other.log_prob(x[:5]), uninitialized)  # the saved state counts


def test_squeeze_moves_2x2_blocks_into_channels():
    x = tf.reshape(tf.range(16, dtype=tf.float32), [1, 4, 4, 1])
    sq = Squeeze([4, 4, 1])
    z = sq.inverse(x)
    assert z.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(z[0, 0, 0], [0, 1, 4, 5])  # top-left block
    np.testing.assert_array_equal(sq.forward(tf.identity(z)), x)
    assert sq.forward_event_shape([2, 2, 4]) == [4, 4, 1]
    assert sq.inverse_event_shape([4, 4, 1]) == [2, 2, 4]
    with pytest.raises(ValueError, match="even height and width"):
        Squeeze([3, 4, 1])
    with pytest.raises(ValueError, match=r"`x` must end in the event shape \(4, 4, 1\)"):
        sq.inverse(tf.zeros([1, 4, 4, 2]))


def test_factor_out_leaves_the_factored_channels_alone():
    inner = tfb.Scale(2.0)
    fo = FactorOut(inner, [2, 2, 4])
    x = tf.random.normal([3, 2, 2, 4])
    z = fo.inverse(x)
    np.testing.assert_allclose(z[..., :2], x[..., :2] / 2.0)
    np.testing.assert_array_equal(z[..., 2:], x[..., 2:])
    np.testing.assert_allclose(fo.inverse_log_det_jacobian(x, 3), -8 * np.log(2.0), rtol=1e-6)
    with pytest.raises(ValueError, match="`num_kept` must be between 1 and 3"):
        FactorOut(inner, [2, 2, 4], num_kept=4)


def test_dequantize_and_logit_closed_forms():
    x = tf.constant([0.0, 3.5, 16.9], tf.float64)
    d = Dequantize(17)
    np.testing.assert_allclose(d.inverse(x), x / 17)
    np.testing.assert_allclose(d.inverse_log_det_jacobian(x, 1), -3 * np.log(17))
    u = tf.constant([0.0, 0.3, 1.0], tf.float64)
    logit = Logit(0.05)
    p = 0.05 + 0.9 * u.numpy()
    np.testing.assert_allclose(logit.inverse(u), np.log(p / (1 - p)))
    want = np.sum(np.log(0.9) - np.log(p) - np.log(1 - p))
    np.testing.assert_allclose(logit.inverse_log_det_jacobian(u, 1), want)
    assert np.all(np.isfinite(logit.inverse(u)))  # alpha keeps 0 and 1 finite
    with pytest.raises(ValueError, match=r"`alpha` must be in \[0, 0.5\)"):
        Logit(0.5)
    with pytest.raises(ValueError, match="`num_levels` must be an integer >= 2"):
        Dequantize(1)


def test_bits_per_dim_accounts_for_scaling():
    assert trn.bits_per_dim(64 * np.log(2), 64) == pytest.approx(1.0)
    # a model of x / 256 has NLL lower by D log 256 than the same model of x
    assert trn.bits_per_dim(100.0 - 64 * np.log(256), 64, scale=1 / 256) == pytest.approx(
        trn.bits_per_dim(100.0, 64)
    )
    with pytest.raises(ValueError, match="`scale` must be positive"):
        trn.bits_per_dim(1.0, 2, scale=0)


def test_multiscale_builder_errors():
    with pytest.raises(ValueError, match="divisible by 4"):
        trn.multiscale_real_nvp([6, 6, 1], num_scales=3)
    with pytest.raises(ValueError, match=r"must be \[H, W, C\]"):
        trn.multiscale_real_nvp([8, 8])
    with pytest.raises(ValueError, match="`couplings_per_stage` must be a positive integer"):
        trn.multiscale_real_nvp([8, 8, 1], couplings_per_stage=0)


def test_multiscale_latent_has_the_image_shape_and_starts_as_identity():
    flow = trn.multiscale_real_nvp([8, 8, 1], hidden_channels=8, num_blocks=1)
    x = tf.random.normal([2, 8, 8, 1])
    np.testing.assert_allclose(flow.inverse(x), x, atol=1e-6)
    kinds = [type(b).__name__ for b in flow.bijectors]
    assert kinds == ["AffineCoupling"] * 3 + ["Squeeze"] + ["AffineCoupling"] * 3 + [
        "FactorOut",
        "_Invert",
    ]


@pytest.mark.parametrize("make", [lambda s: ActNorm(s), lambda s: trn.LULinear(s)])
def test_event_shape_is_checked(make):
    with pytest.raises(ValueError, match=r"`event_shape` must be non-empty and positive; got"):
        make([])
    with pytest.raises(ValueError, match=r"`event_shape` must be non-empty and positive; got"):
        make([4, 0])


@pytest.mark.parametrize("kind", ["act_norm", "lu_linear"])
def test_channel_maps_log_det_is_per_position_times_positions(kind):
    shape = [2, 3, 4]
    if kind == "act_norm":
        bijector, key = trn.ActNorm(shape), "log_scale"
    else:
        bijector, key = trn.LULinear(shape, seed=1), "log_diag"
    assert bijector.positions == 6
    rng = np.random.default_rng(4)
    for v in bijector.trainable_variables:
        v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))
    (weight,) = [v for v in bijector.trainable_variables if key in v.name]
    per_position = np.sum(weight.numpy())
    want = 6 * per_position if kind == "act_norm" else -6 * per_position  # data -> latent
    x = tf.constant(rng.normal(size=(5, 7, *shape)), tf.float32)
    ildj = bijector.inverse_log_det_jacobian(x, event_ndims=3)
    np.testing.assert_allclose(ildj, np.full((5, 7), want), rtol=1e-5)
    np.testing.assert_array_equal(bijector.forward_log_det_jacobian(x, event_ndims=3), -ildj)
    config = bijector.get_config()
    extra = {"permutation"} if kind == "lu_linear" else set()
    assert set(config) == {"event_shape", "dtype", *extra}  # the keys of saved files


def test_actnorm_is_its_documented_affine_map_with_nonzero_parameters():
    """``z = (x + bias) exp(log_scale)`` and back, against NumPy, away from the identity
    where a sign or an exponent's direction shows."""
    norm = ActNorm([2, 2, 3], dtype=tf.float64)
    rng = np.random.default_rng(5)
    bias, log_scale = rng.normal(size=3), rng.normal(0, 0.5, size=3)
    norm.trainable_variables[0].assign(bias)
    norm.trainable_variables[1].assign(log_scale)
    assert [v.name.split("/")[-1].split(":")[0] for v in norm.trainable_variables[:2]] == [
        "bias",
        "log_scale",
    ]
    x = rng.normal(size=(4, 2, 2, 3))
    z = (x + bias) * np.exp(log_scale)
    np.testing.assert_allclose(norm.inverse(tf.constant(x)), z, rtol=1e-14)
    np.testing.assert_allclose(norm.forward(tf.constant(z)), x, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(norm.inverse_log_det_jacobian(x, 3), [4 * log_scale.sum()] * 4)
    np.testing.assert_allclose(norm.forward_log_det_jacobian(z, 3), [-4 * log_scale.sum()] * 4)


def test_actnorm_initializes_in_its_dtype_from_two_values_and_a_constant_channel(refusal):
    """The smallest batch it accepts (two values per channel, from one image of two
    positions), a float64 flow's parameters kept in float64, and a constant channel's
    variance floored at 1e-6 (no NaN)."""
    norm = ActNorm([1, 2, 2], dtype=tf.float64)
    assert all(v.dtype == tf.float64 for v in norm.variables)
    x = np.array([[[[1.0, 5.0], [3.0, 5.0]]]])
    assert norm.initialize(x)
    bias, log_scale = (v.numpy() for v in norm.trainable_variables)
    np.testing.assert_allclose(bias, [-2.0, -5.0])
    np.testing.assert_allclose(log_scale, -0.5 * np.log([1.0 + 1e-6, 1e-6]), rtol=1e-14)
    assert refusal(ValueError, ActNorm([2], name="a").initialize, np.ones([1, 2], "float32")) == (
        "a: `x` must hold at least 2 values per channel to estimate a scale; got shape (1, 2)."
    )


@pytest.mark.parametrize("make, kind", [(ActNorm, "act_norm"), (trn.LULinear, "lu_linear")])
def test_channel_maps_keep_their_name_and_checks(plumbing, make, kind):
    """The TFP plumbing (see the `plumbing` fixture), the weights' layer in ``parameters``, and
    the NaN check of each direction and log-det (``x`` for data, ``z`` for latent)."""
    bad = [[0.5, np.nan, 0.5]]
    checks = [("inverse", bad, "x"), ("forward", bad, "z")]
    checks += [("inverse_log_det_jacobian", bad, "x", 1), ("forward_log_det_jacobian", bad, "z", 1)]
    named = plumbing(lambda **kw: make([3], **kw), kind, checks)
    assert named.parameters["parameters_layer" if kind == "act_norm" else "weights"] in (
        named.layers
    )


def test_initialize_records_the_names_of_the_actnorms_it_set():
    """In data -> latent order: `tfb.Chain([a, b])` maps data through ``a.inverse`` first."""
    flow = tfb.Chain([ActNorm([2], name="data_side"), ActNorm([2], name="latent_side")])
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    assert trn.initialize(flow, x) == ["data_side", "latent_side"]
