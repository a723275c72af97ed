"""The rational-quadratic spline transformer and `neural_spline_flow`: closed forms against
autodiff in float64 (inside bins, on knots, in the tails), exact identity at zero parameters,
argument checks, and a spline flow that learns."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import RationalQuadraticSpline, keras

F64 = tf.float64


def _params(spline, n, scale=1.5, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(
        tf.constant(rng.normal(size=(n, 1, *shape)) * scale) for shape in spline.unit_param_shapes
    )


def _knot_xs(spline, params):
    """Each row's data-axis knots, the edges between bins included."""
    knots_x = spline.knots(params)[0]
    return [knots_x[:, :, k] for k in range(knots_x.shape[-1])]


def _autodiff_log_slope(spline, x, params):
    with tf.GradientTape() as tape:
        tape.watch(x)
        z, _ = spline.inverse(x, params)
    return np.log(tape.gradient(z, x).numpy())


def test_log_dets_match_autodiff_inside_on_knots_and_in_the_tails():
    spline = RationalQuadraticSpline(num_bins=5, bound=2.0)
    n = 300
    params = _params(spline, n)
    rng = np.random.default_rng(1)
    inside = rng.uniform(-2, 2, size=(n, 1))
    tails = rng.choice([-1, 1], size=(n, 1)) * rng.uniform(2.0, 50.0, size=(n, 1))
    ends = np.where(rng.uniform(size=(n, 1)) < 0.5, -2.0, 2.0)
    for x in [inside, tails, ends, *(k.numpy() for k in _knot_xs(spline, params))]:
        x = tf.constant(x)
        z, log_det = spline.inverse(x, params)
        np.testing.assert_allclose(log_det, _autodiff_log_slope(spline, x, params), atol=1e-9)
        back, forward_log_det = spline.forward(tf.identity(z), params)
        np.testing.assert_allclose(back, x, atol=1e-9)
        np.testing.assert_allclose(forward_log_det, -log_det.numpy(), atol=1e-9)
    z, log_det = spline.inverse(tf.constant(tails), params)
    np.testing.assert_array_equal(z, tails)  # the tails are the identity, exactly
    np.testing.assert_array_equal(log_det, np.zeros_like(tails))


def test_spline_is_monotone_and_maps_the_interval_onto_itself():
    spline = RationalQuadraticSpline(num_bins=6, bound=3.0)
    params = tuple(tf.repeat(p[:1], 2001, axis=0) for p in _params(spline, 1, scale=3.0))
    x = tf.constant(np.linspace(-3, 3, 2001)[:, None])
    z, _ = spline.inverse(x, params)
    assert np.all(np.diff(z.numpy()[:, 0]) > 0)
    np.testing.assert_allclose(z.numpy()[[0, -1], 0], [-3.0, 3.0], atol=1e-12)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_zero_parameters_are_exactly_the_identity(dtype):
    spline = RationalQuadraticSpline(num_bins=7, bound=4.0)
    x = tf.constant(np.random.default_rng(2).normal(size=(500, 3)) * 3, dtype)
    zeros = tuple(tf.zeros([500, 3, *s], dtype) for s in spline.unit_param_shapes)
    for direction in (spline.inverse, spline.forward):
        y, log_det = direction(x, zeros)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(log_det, np.zeros(x.shape))


def test_a_fresh_spline_flow_is_exactly_the_identity():
    flow = trn.neural_spline_flow([4], 3, [8], num_bins=4, permutation="reverse")
    x = tf.constant(np.random.default_rng(3).normal(size=(64, 4)), tf.float32)
    np.testing.assert_array_equal(flow.inverse(x), x)
    np.testing.assert_array_equal(flow.inverse_log_det_jacobian(x, 1), np.zeros(64))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_bins": 1}, "`num_bins` must be at least 2; got 1."),
        ({"num_bins": 2.5}, "`num_bins` must be a positive integer; got 2.5."),
        ({"bound": 0}, "`bound` must be a positive number; got 0."),
        ({"bound": "5"}, "`bound` must be a positive number; got '5'."),
        ({"min_bin_size": 0.0}, "`min_bin_size` must be a positive number; got 0.0."),
        (
            {"num_bins": 10, "min_bin_size": 0.1},
            "`min_bin_size` * `num_bins` must be below 1 (the bins share the interval); got "
            "0.1 * 10.",
        ),
        ({"max_derivative": -3}, "`max_derivative` must be a positive number; got -3."),
        ({"max_derivative": 1.0}, "`max_derivative` must exceed 1; got 1.0."),
    ],
)
def test_bad_arguments_are_named(refusal, kwargs, message):
    assert refusal(ValueError, RationalQuadraticSpline, **kwargs) == message


def test_the_documented_defaults_and_the_smallest_valid_arguments_and_the_config():
    """The defaults the docstring gives (8 bins on [-5, 5], floor 1e-3, derivatives within
    1e3), the edges that are allowed (2 bins, a derivative bound just above 1), and a config
    that rebuilds the same spline."""
    assert RationalQuadraticSpline().get_config() == {
        "num_bins": 8, "bound": 5.0, "min_bin_size": 1e-3, "max_derivative": 1e3
    }  # fmt: skip
    edge = RationalQuadraticSpline(num_bins=2, bound=1.0, min_bin_size=0.25, max_derivative=1.5)
    assert edge.unit_param_shapes == ((2,), (2,), (1,))
    rebuilt = RationalQuadraticSpline(**edge.get_config())
    assert vars(rebuilt) == vars(edge)


def test_conditioner_of_the_wrong_shape_is_refused_with_the_expected_shapes():
    with pytest.raises(ValueError, match=r"\(widths of shape \(1, 2, 4\), heights"):
        trn.Coupling(trn.ResidualMLP(2, [4]), trn.half_mask(4), RationalQuadraticSpline(4))


def test_image_flow_takes_spline_couplings_and_refuses_an_affine_scale_for_them():
    flow = trn.multiscale_real_nvp([4, 4, 1], 2, 1, 4, 1, transformer="spline", num_bins=3)
    couplings = [b for b in trn.walk(flow) if isinstance(b, trn.Coupling)]
    assert couplings and all(
        isinstance(c.transformer, RationalQuadraticSpline) and c.transformer.num_bins == 3
        for c in couplings
    )
    with pytest.raises(ValueError, match="spline couplings take none"):
        trn.multiscale_real_nvp([4, 4, 1], transformer="spline", scale="exp")
    with pytest.raises(ValueError, match="`transformer` must be one of"):
        trn.multiscale_real_nvp([4, 4, 1], transformer="maf")


def test_builder_refuses_dropout_for_images_and_bad_rates():
    with pytest.raises(ValueError, match="`dropout` applies to the MLP conditioners"):
        trn.neural_spline_flow([4, 4, 1], 2, hidden_channels=4, dropout=0.1)
    with pytest.raises(ValueError, match=r"`dropout` must be a rate in \[0, 1\); got 1.5"):
        trn.neural_spline_flow([4], 2, [8], dropout=1.5)


def test_a_spline_flow_learns_a_bimodal_density_beyond_an_affine_one():
    """One coupling can bend a marginal into two modes; an affine coupling of the same size
    cannot. The spline's training loss ends below the affine's and below a Gaussian fit."""
    rng = np.random.default_rng(4)
    x1 = rng.normal(size=2048)
    x2 = np.where(rng.uniform(size=2048) < 0.5, -1.5, 1.5) + 0.3 * rng.normal(size=2048)
    data = np.stack([x1, x2], 1).astype("float32")
    losses = {}
    for kind, flow in {
        "spline": trn.neural_spline_flow([2], 1, [16], num_bins=8, bound=3.0),
        "affine": trn.real_nvp([2], 1, [16]),
    }.items():
        keras.utils.set_random_seed(0)
        model = trn.FlowModel(flow)
        model.compile(keras.optimizers.Adam(0.02))
        history = model.fit(data, epochs=8, batch_size=256, verbose=0)
        losses[kind] = history.history["loss"][-1]
    gaussian = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * np.cov(data.T)))
    assert losses["spline"] < losses["affine"] - 0.2, losses
    assert losses["spline"] < gaussian - 0.3, (losses, gaussian)


def _softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_the_spline_is_tfps_rational_quadratic_spline_on_the_documented_knots():
    """Knots from the documented parameterisation, in NumPy; on them, the map and its log-dets
    are those of TFP's own `tfb.RationalQuadraticSpline` (our ``inverse`` is its ``forward``),
    inside the interval and outside it."""
    import tensorflow_probability as tfp

    spline = RationalQuadraticSpline(num_bins=5, bound=2.5, min_bin_size=0.02, max_derivative=20.0)
    raw_w, raw_h, raw_d = (p.numpy() for p in _params(spline, 40, scale=1.5, seed=3))
    sizes = {
        name: 5.0 * (0.02 + (1 - 0.02 * 5) * _softmax(raw))
        for name, raw in (("w", raw_w), ("h", raw_h))
    }
    c = np.log(20.0)
    slopes = np.exp(c * np.tanh(raw_d / c))
    knots_x, knots_y, derivs = (
        k.numpy() for k in spline.knots(tuple(map(tf.constant, (raw_w, raw_h, raw_d))))
    )
    for knots, size in ((knots_x, sizes["w"]), (knots_y, sizes["h"])):
        want = np.concatenate([np.full(size[..., :1].shape, -2.5), -2.5 + np.cumsum(size, -1)], -1)
        np.testing.assert_allclose(knots, want, rtol=1e-12, atol=1e-12)
    ones = np.ones_like(slopes[..., :1])
    np.testing.assert_allclose(derivs, np.concatenate([ones, slopes, ones], -1), rtol=1e-12)

    theirs = tfp.bijectors.RationalQuadraticSpline(
        bin_widths=sizes["w"], bin_heights=sizes["h"], knot_slopes=slopes, range_min=-2.5
    )
    x = tf.constant(np.random.default_rng(4).uniform(-3.5, 3.5, size=(40, 1)))
    params = tuple(map(tf.constant, (raw_w, raw_h, raw_d)))
    z, inverse_log_det = spline.inverse(x, params)
    assert np.mean(np.abs(x.numpy()) > 2.5) > 0.1  # some points in the tails
    np.testing.assert_allclose(z, theirs.forward(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(inverse_log_det, theirs.forward_log_det_jacobian(x, 0),
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    x_back, forward_log_det = spline.forward(z, params)
    np.testing.assert_allclose(x_back, theirs.inverse(z), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(forward_log_det, theirs.inverse_log_det_jacobian(z, 0),
                               rtol=1e-9, atol=1e-12)  # fmt: skip
