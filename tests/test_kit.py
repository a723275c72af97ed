"""The conformance kit fails on broken bijectors (so passing it means something)."""

import numpy as np
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


class CountsCalls(tfb.Bijector):
    """Correct map, but ``forward`` counts its calls in a variable: hidden state."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, name="counts")
        self.calls = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="calls")

    def _forward(self, x):
        self.calls.assign_add(1.0)
        return x + 1.0

    def _inverse(self, y):
        return y - 1.0

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], x.dtype)


class FirstInverseDecides(tfb.Bijector):
    """Takes its shift from the first batch ``inverse`` sees, kept in a Python attribute
    (no variable): a ``forward`` before that uses another map than every call after it."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, name="lazy")
        self.shift = None

    def _forward(self, z):
        return z if self.shift is None else z - self.shift

    def _inverse(self, x):
        if self.shift is None:
            self.shift = -tf.reduce_mean(x)
        return x + self.shift

    def _forward_log_det_jacobian(self, z):
        return tf.zeros([], z.dtype)


class CreatesVariableLazily(FirstInverseDecides):
    def _inverse(self, x):
        if self.shift is None:
            self.shift = tf.Variable(tf.reduce_mean(x), name="lazy_shift")
        return x + self.shift


def test_kit_catches_a_call_that_changes_a_variable():
    bijector = CountsCalls()
    with pytest.raises(AssertionError, match=r"calling forward .* changed variable 'calls:0'"):
        testing.assert_conformant(bijector, [3])
    assert float(bijector.calls) == 0.0  # the check restores what the calls changed


def test_kit_catches_results_that_depend_on_call_order():
    with pytest.raises(
        AssertionError, match=r"forward \(call 4 of inverse -> .*\) vs forward in forward ->"
    ):
        testing.assert_conformant(FirstInverseDecides(), [3])


def test_kit_catches_a_call_that_creates_a_variable():
    created = r"calling inverse .* created variables \['[^']*lazy_shift"
    with pytest.raises(AssertionError, match=created):
        testing.assert_conformant(CreatesVariableLazily(), [3])


def test_edge_points_reach_both_edges_of_bounded_and_unbounded_domains():
    unit = testing.edge_points([2, 3], 0.0, 1.0).numpy()
    assert unit.shape == (7, 2, 3) and unit.min() == 0.0 and unit.max() == 1.0
    assert np.any((unit > 0.0) & (unit < 1e-6)) and np.any((unit < 1.0) & (unit > 1 - 1e-6))
    wide = testing.edge_points([4], magnitude=50.0).numpy()
    assert wide.min() == -50.0 and wide.max() == 50.0
    with pytest.raises(ValueError, match="need `low` < `high`"):
        testing.edge_points([4], 1.0, 1.0)


def test_kit_catches_overflow_and_lost_round_trips_near_the_edges():
    z = testing.edge_points([3], magnitude=1000.0)
    x = testing.edge_points([3], 1e-3, np.inf, magnitude=1000.0)
    with pytest.raises(AssertionError, match=r"forward\(z\): \d+ of 21 values are not finite"):
        testing.check_bijective_and_finite(tfb.Exp(), x, z, 1)
    y = testing.edge_points([3], -1.0, 1.0)
    with pytest.raises(AssertionError, match=r"inverse\(forward\(z\)\)"):  # tanh(1000) == 1
        testing.check_bijective_and_finite(tfb.Tanh(), y * 0.5, z, 1)
    scale = tfb.Scale(tf.constant(3.0, tf.float64))
    testing.check_bijective_and_finite(scale, z, z, 1)
