"""The conformance kit fails on broken bijectors (so passing it means something)."""

import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import testing

tfb = tfp.bijectors


class WrongLogDet(tfb.Bijector):
    """Scales by 2 but claims a log-det of 0."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, name="wrong")

    def _forward(self, x):
        return 2.0 * x

    def _inverse(self, y):
        return y / 2.0

    def _forward_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:-1], x.dtype)


class WrongInverse(WrongLogDet):
    def _inverse(self, y):
        return y / 2.1


class NoGradient(tfb.Bijector):
    def __init__(self):
        super().__init__(forward_min_event_ndims=1, name="no_gradient")
        self.unused = tf.Variable(1.0, dtype=tf.float64)

    def _forward(self, x):
        return x

    def _inverse(self, y):
        return y

    def _forward_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:-1], x.dtype)


def test_kit_catches_wrong_log_det():
    with pytest.raises(AssertionError, match=r"fldj .* vs autodiff"):
        testing.assert_conformant(WrongLogDet(), [3])


def test_kit_catches_wrong_inverse():
    with pytest.raises(AssertionError, match=r"forward\(inverse\(x\)\)"):
        testing.assert_conformant(WrongInverse(), [3])


def test_kit_catches_unreached_variable():
    with pytest.raises(AssertionError, match="no gradient reaches variable"):
        testing.assert_conformant(NoGradient(), [3])


def test_kit_refuses_float32_jacobian_check():
    with pytest.raises(ValueError, match="float64"):
        testing.check_log_det_jacobian(tfb.Exp(), tf.ones([2, 3]), 1)


def test_kit_passes_a_correct_tfp_bijector():
    two, one = tf.constant(2.0, tf.float64), tf.constant(1.0, tf.float64)
    testing.assert_conformant(tfb.Chain([tfb.Scale(two), tfb.Shift(one)]), [3])
