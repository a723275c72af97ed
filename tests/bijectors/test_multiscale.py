"""`Squeeze` and `FactorOut` against NumPy: the 2x2 block order, the channels kept and passed
on, the inner bijector's conditioning kwargs and log-dets, and their TFP plumbing."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.bijectors import FactorOut, Squeeze

tfb = tfp.bijectors


def _space_to_depth(x):
    """``z[..., i, j, (2a + b) C + c] = x[..., 2i + a, 2j + b, c]``."""
    *batch, h, w, c = x.shape
    blocks = x.reshape(*batch, h // 2, 2, w // 2, 2, c)
    order = (*range(len(batch)), -5, -3, -4, -2, -1)
    return blocks.transpose(order).reshape(*batch, h // 2, w // 2, 4 * c)


def test_squeeze_moves_each_2x2_block_into_channels_in_numpys_order():
    squeeze = Squeeze([4, 6, 2])
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 6, 2))
    z = squeeze.inverse(tf.constant(x))
    np.testing.assert_array_equal(z, _space_to_depth(x))
    np.testing.assert_array_equal(squeeze.forward(z), x)  # from the cache of the inverse
    np.testing.assert_array_equal(squeeze.forward(tf.constant(_space_to_depth(x))), x)  # computed
    for log_det in (squeeze.inverse_log_det_jacobian(x, 3), squeeze.forward_log_det_jacobian(z, 3)):
        assert log_det.dtype == tf.float64
        np.testing.assert_array_equal(log_det, 0.0)
    assert squeeze.is_constant_jacobian
    assert (squeeze.forward_min_event_ndims, squeeze.inverse_min_event_ndims) == (3, 3)
    np.testing.assert_array_equal(squeeze.inverse_event_shape_tensor([4, 6, 2]), [2, 3, 8])
    np.testing.assert_array_equal(squeeze.forward_event_shape_tensor([2, 3, 8]), [4, 6, 2])
    assert squeeze.inverse_event_shape([4, 6, 2]) == [2, 3, 8]
    assert squeeze.forward_event_shape([2, 3, 8]) == [4, 6, 2]
    assert squeeze.get_config() == {"event_shape": [4, 6, 2]}


class ScaleBy(tfb.Bijector):
    """``x exp(log_scale)``, with ``log_scale`` a call's kwarg: a conditioned inner bijector."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=0, name="scale_by")

    def _forward(self, x, log_scale):
        return x * tf.exp(log_scale)

    def _inverse(self, y, log_scale):
        return y * tf.exp(-log_scale)

    def _forward_log_det_jacobian(self, x, log_scale):
        return log_scale * tf.ones_like(x)


HALF = tf.constant(0.5, tf.float64)


@pytest.mark.parametrize("num_kept", [None, 1, 3])
def test_factor_out_maps_the_kept_channels_and_passes_the_call_on(num_kept):
    """``z = [inner.inverse(x_kept), x_out]``; the log-dets are the inner bijector's over the
    ``H W num_kept`` kept entries, and the call's kwargs reach it."""
    factor = FactorOut(ScaleBy(), [2, 3, 4], num_kept=num_kept)
    k = 2 if num_kept is None else num_kept
    assert factor.num_kept == k
    x = np.random.default_rng(1).normal(size=(5, 2, 3, 4))
    z = x.copy()
    z[..., :k] *= np.exp(-0.5)
    np.testing.assert_allclose(factor.inverse(tf.constant(x), log_scale=HALF), z, rtol=1e-15)
    np.testing.assert_allclose(factor.forward(tf.constant(z), log_scale=HALF), x, rtol=1e-15)
    fldj = np.full(5, 0.5 * 2 * 3 * k)
    np.testing.assert_allclose(factor.inverse_log_det_jacobian(x, 3, log_scale=HALF), -fldj)
    np.testing.assert_allclose(factor.forward_log_det_jacobian(z, 3, log_scale=HALF), fldj)
    # And from the cache of one pass, as a transformed distribution reads them.
    y = factor.forward(tf.constant(z), log_scale=HALF)
    np.testing.assert_allclose(factor.inverse_log_det_jacobian(y, 3, log_scale=HALF), -fldj)
    latent = factor.inverse(tf.constant(x), log_scale=HALF)
    np.testing.assert_allclose(factor.forward_log_det_jacobian(latent, 3, log_scale=HALF), fldj)


def test_factor_out_describes_itself():
    inner = tfb.Scale(2.0)
    factor = FactorOut(inner, [2, 2, 4], num_kept=3)
    assert factor.bijector is inner and factor.children() == (inner,)
    assert factor.get_config() == {"bijector": inner, "event_shape": [2, 2, 4], "num_kept": 3}


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Squeeze([3, 4, 1]),
            "Squeeze needs an even height and width; got event_shape (3, 4, 1).",
        ),
        (lambda: Squeeze([4, 4]), "`event_shape` must be [H, W, C] of positive ints; got (4, 4)."),
        (
            lambda: FactorOut(tfb.Identity(), [2, 2]),
            "`event_shape` must be [H, W, C] of positive ints; got (2, 2).",
        ),
        (
            lambda: FactorOut(tfb.Identity(), [2, 2, 4], num_kept=0),
            "`num_kept` must be between 1 and 3; got 0.",
        ),
        (
            lambda: FactorOut(tfb.Identity(), [2, 2, 4], num_kept=4),
            "`num_kept` must be between 1 and 3; got 4.",
        ),
    ],
)
def test_bad_shapes_are_refused_whole(refusal, make, message):
    assert refusal(ValueError, make) == message


PLUMBED = {
    "squeeze": lambda **kw: Squeeze([2, 2, 3], **kw),
    "factor_out": lambda **kw: FactorOut(tfb.Identity(), [2, 2, 3], **kw),
}


@pytest.mark.parametrize("kind", PLUMBED)
def test_each_keeps_its_name_parameters_and_checks(plumbing, kind):
    """The TFP plumbing (see the `plumbing` fixture), with each direction's NaN check."""
    bad = np.zeros((1, 2, 2, 3), np.float32)
    bad[0, 0, 0, 0] = np.nan
    latent = bad.reshape(1, 1, 1, 12) if kind == "squeeze" else bad
    checks = [("inverse", bad, "x"), ("forward", latent, "z")]
    if kind == "factor_out":  # Squeeze's log-dets do not read their input
        checks += [
            ("inverse_log_det_jacobian", bad, "x", 3),
            ("forward_log_det_jacobian", bad, "z", 3),
        ]
    plumbing(PLUMBED[kind], kind, checks)
