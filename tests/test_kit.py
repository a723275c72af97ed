"""The conformance kit fails on broken bijectors (so passing it means something)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import AffineCoupling, FlowBijector, keras, testing

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


class WrongInverseLogDet(tfb.Bijector):
    """Scales by 2 with the right fldj, but claims an ildj of 0."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, name="wrong_ildj")

    def _forward(self, x):
        return 2.0 * x

    def _inverse(self, y):
        return y / 2.0

    def _forward_log_det_jacobian(self, x):
        return tf.fill(tf.shape(x)[:-1], tf.cast(x.shape[-1] * np.log(2.0), x.dtype))

    def _inverse_log_det_jacobian(self, y):
        return tf.zeros(tf.shape(y)[:-1], y.dtype)


class WrongCachedLogDet(FlowBijector):
    """Scales by 2; the log-dets computed directly are right, the one the single pass of
    ``forward`` hands to TFP's cache is not (TFP caches the ildj; the fldj is its negative)."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, name="wrong_cache")

    def _log_det(self, x):
        return tf.fill(tf.shape(x)[:-1], tf.cast(x.shape[-1] * np.log(2.0), x.dtype))

    def _augmented_forward(self, z):
        return 2.0 * z, {"fldj": self._log_det(z), "ildj": 0.0 * self._log_det(z)}

    def _augmented_inverse(self, x):
        return x / 2.0, {"ildj": -self._log_det(x), "fldj": self._log_det(x)}

    def _forward_log_det_jacobian(self, z):
        return self._log_det(z)

    def _inverse_log_det_jacobian(self, x):
        return -self._log_det(x)


class ShiftBy(tfb.Bijector):
    """``x + f(v)`` for a scalar variable ``v``: the gradient reaching ``v`` is ``f'(v)`` times
    that of the loss, so ``f`` decides whether it is zero or NaN."""

    def __init__(self, f):
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, name="shift_by")
        self.v = tf.Variable(0.5, dtype=tf.float64, name="v")
        self.f = f

    def _forward(self, x):
        return x + self.f(self.v)

    def _inverse(self, y):
        return y - self.f(self.v)

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], x.dtype)


class GraphOnlyBug(WrongLogDet):
    """Right eagerly; inside a `tf.function` it scales by 2.1 instead."""

    def _factor(self):
        return 2.0 if tf.executing_eagerly() else 2.1

    def _forward(self, x):
        return self._factor() * x

    def _inverse(self, y):
        return y / self._factor()

    def _forward_log_det_jacobian(self, x):
        return tf.fill(tf.shape(x)[:-1], tf.cast(x.shape[-1] * np.log(2.0), x.dtype))


class IgnoresContext(keras.layers.Layer):
    """A conditioner that takes the context and does not use it."""

    def __init__(self):
        super().__init__(dtype="float64")
        self.shift = keras.layers.Dense(2, dtype="float64")
        self.log_scale = keras.layers.Dense(2, dtype="float64")

    def call(self, x1, context=None):
        return self.shift(x1), self.log_scale(x1)


class MixesBatchesAboveRankTwo(WrongLogDet):
    """Right on ``[N, event]``; for batch ranks above one it scales by 2 but hands each event's
    result to the event in reverse batch order (a reshape bug): shapes and round trips hold."""

    def _flip(self, t):
        return tf.reverse(t, [0]) if t.shape.rank > 2 else t

    def _forward(self, x):
        return self._flip(2.0 * x)

    def _inverse(self, y):
        return self._flip(y) / 2.0

    def _forward_log_det_jacobian(self, x):
        return tf.fill(tf.shape(x)[:-1], tf.cast(x.shape[-1] * np.log(2.0), x.dtype))


class KeepsADimension(WrongLogDet):
    """Log-dets of shape ``[B, 1]``: the event axis is summed with ``keepdims=True``."""

    def _forward_log_det_jacobian(self, x):
        return tf.reduce_sum(tf.zeros_like(x) + np.log(2.0), -1, keepdims=True)


def test_kit_catches_a_wrong_inverse_log_det_alone():
    with pytest.raises(AssertionError, match=r"ildj \(direct\) vs autodiff"):
        testing.assert_conformant(WrongInverseLogDet(), [3])


def test_kit_catches_a_wrong_log_det_cached_by_forward():
    bijector = WrongCachedLogDet()
    z = tf.constant(np.random.default_rng(0).normal(size=(4, 3)))
    testing.check_log_det_consistency(bijector, z, 1, z=z)  # direct log-dets are right
    with pytest.raises(AssertionError, match=r"fldj \(after forward\) vs autodiff"):
        testing.assert_conformant(bijector, [3])


@pytest.mark.parametrize(
    "f, message",
    [
        (lambda v: 0.0 * v, "zero gradient for variable v"),
        (lambda v: tf.sqrt(v - v), "non-finite gradient for variable v"),  # d sqrt at 0: inf * 0
    ],
)
def test_kit_catches_zero_and_nan_gradients(f, message):
    with pytest.raises(AssertionError, match=message):
        testing.assert_conformant(ShiftBy(f), [3])
    testing.assert_conformant(ShiftBy(lambda v: 3.0 * v), [3])  # the same bijector, sound


def test_kit_catches_eager_and_tf_function_disagreeing():
    with pytest.raises(AssertionError, match=r"inverse under tf.function: max abs error"):
        testing.assert_conformant(GraphOnlyBug(), [3], jit_compile=False)


def test_kit_catches_an_ignored_context():
    ignores = AffineCoupling(IgnoresContext(), num_masked=2, event_shape=[4], context_shape=[3])
    testing.perturb_variables(ignores)
    with pytest.raises(AssertionError, match="does not depend on the context"):
        testing.assert_conformant(ignores, [4], context_shape=[3], jit_compile=False)


def test_kit_catches_wrong_values_for_a_two_by_three_batch_only():
    bijector = MixesBatchesAboveRankTwo()
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 3)))
    testing.check_round_trip(bijector, x)  # right on a flat batch
    testing.check_round_trip(bijector, tf.reshape(tf.concat([x, x[:2]], 0), [2, 3, 3]))
    with pytest.raises(
        AssertionError,
        match=r"inverse for batch shape \(2, 3\) vs the same events as a flat batch",
    ):
        testing.assert_conformant(bijector, [3])


def test_kit_names_a_log_det_of_shape_batch_by_one():
    with pytest.raises(
        AssertionError,
        match=r"forward_log_det_jacobian: shape \(4, 1\) for input \(4, 3\) with event_rank=1; "
        r"expected the batch shape \(4,\)",
    ):
        testing.assert_conformant(KeepsADimension(), [3])
