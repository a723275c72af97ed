"""ConditionedBijector, the base of Coupling and MaskedAutoregressive: the parts they share
(conditioner check, context, the low-precision switch, configs) behave the same in both."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import (
    MADE,
    RationalQuadraticSpline,
    ResidualConvNet,
    ResidualMLP,
    checkerboard_mask,
    half_mask,
    testing,
)
from tfp_realnvp.bijectors import (
    Additive,
    Affine,
    AffineCoupling,
    ConditionedBijector,
    Coupling,
    MaskedAutoregressive,
)
from tfp_realnvp.bijectors.lowering import lowered_conditioner, lowering


def _coupling(**kwargs):
    return Coupling(ResidualMLP(2, [8]), half_mask(4), Affine(), **kwargs)


def _maf(**kwargs):
    return MaskedAutoregressive(MADE(4, [8]), Affine(), **kwargs)


class _OneTuple(ResidualMLP):
    """Returns its single output wrapped in a tuple."""

    def call(self, *args, **kwargs):
        return (super().call(*args, **kwargs),)


class _OneTupleMADE(MADE):
    def call(self, *args, **kwargs):
        return (super().call(*args, **kwargs),)


def test_both_share_the_base():
    for bijector in (_coupling(), _maf()):
        assert isinstance(bijector, ConditionedBijector)
        assert bijector.transformer.num_params == 2 and not bijector.is_conditional


def test_shapes_the_conditioner_sees_and_returns():
    vector = _coupling()
    assert (vector.conditioner_input_shape, vector.param_shape) == ((2,), (2,))
    image = Coupling(ResidualConvNet(1, 4, num_blocks=1), checkerboard_mask(4, 4, 1), Affine())
    assert (image.conditioner_input_shape, image.param_shape) == ((4, 4, 1), (4, 4, 1))
    maf = _maf()
    assert (maf.conditioner_input_shape, maf.param_shape) == ((4,), (4,))


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Coupling(_OneTuple(2, [4], num_outputs=1), half_mask(4), Additive()),
            r"`conditioner` must return a shift tensor of shape \(1, 2\) for a batch of 1 "
            r"\(Additive\(\)\); got \[\(1, 2\)\]\. With this mask the conditioner sees inputs "
            r"of shape \(1, 2\); our conditioners take num_outputs=1",
        ),
        (
            lambda: MaskedAutoregressive(_OneTupleMADE(4, [4], param_shapes=[[]]), Additive()),
            r"`made` must return a shift tensor of shape \(1, 4\) for a batch of 1 "
            r"\(Additive\(\)\); got \[\(1, 4\)\]\. Build it with MADE\(\.\.\., "
            r"param_shapes=\[\[\]\]\)",
        ),
    ],
)
def test_one_output_wrapped_in_a_tuple_is_refused_by_both(make, message):
    # The pass reads one output as the tensor itself: a tuple would be taken apart wrongly.
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make", [_coupling, _maf])
def test_context_is_checked_the_same_way(refusal, make):
    x = tf.zeros([5, 4])
    conditional = make(context_shape=[3], name="c")
    assert refusal(ValueError, conditional.inverse, x) == (
        "c: this coupling is conditional (context_shape=(3,)) and needs `context`; pass "
        "bijector_kwargs=tfp_realnvp.conditional_kwargs(flow, context)."
    )
    assert refusal(ValueError, make(name="u").inverse, x, context=tf.zeros([5, 3])) == (
        "u: got `context`, but this coupling is unconditional (built without `context_shape`)."
    )
    # A Python list takes the flow's dtype (TensorFlow's default for it is float32).
    float64 = make(context_shape=[3], dtype=tf.float64)
    np.testing.assert_array_equal(
        float64.inverse(tf.zeros([5, 4], tf.float64), context=[1.0, 2.0, 3.0]),
        float64.inverse(
            tf.zeros([5, 4], tf.float64), context=tf.constant([1.0, 2.0, 3.0], tf.float64)
        ),
    )
    with pytest.raises(ValueError, match=r"`context` must end in context_shape \(3,\); got"):
        conditional.inverse(x, context=tf.zeros([5, 2]))
    with pytest.raises(TypeError, match=r"`context` has dtype float64, but this bijector"):
        conditional.inverse(x, context=tf.zeros([5, 3], tf.float64))
    with pytest.raises(ValueError, match="is unconditional"):
        make().inverse(x, context=tf.zeros([5, 3]))
    assert conditional.inverse(x, context=tf.ones([3])).shape == (5, 4)  # broadcast


@pytest.mark.tf_keras  # the .keras format
def test_config_keys_stay_those_of_saved_files():
    assert set(_coupling().get_config()) == {
        "conditioner", "mask", "transformer", "context_shape", "dtype"
    }  # fmt: skip
    affine = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    assert set(affine.get_config()) == {
        "conditioner", "mask", "scale", "clamp", "context_shape", "dtype"
    }  # fmt: skip
    maf = _maf(context_shape=[2])
    config = maf.get_config()
    assert set(config) == {"made", "transformer", "inverse", "context_shape", "dtype"}
    assert config["transformer"] == {"class_name": "Affine", "config": maf.transformer.get_config()}
    rebuilt = MaskedAutoregressive.from_config({**config, "made": MADE(4, [8])})
    assert type(rebuilt.transformer) is Affine and rebuilt.context_shape == (2,)


def _perturbed(bijector):
    testing.perturb_variables(bijector, stddev=0.3)
    return bijector


def _bfloat16_copy(bijector):
    conditioner = bijector.conditioner
    copy = type(conditioner).from_config({**conditioner.get_config(), "dtype": "bfloat16"})
    shape = bijector.context_shape
    context = None if shape is None else tf.zeros((1, *shape), tf.bfloat16)
    copy(tf.zeros((1, *bijector.conditioner_input_shape), tf.bfloat16), context=context)
    for source, target in zip(conditioner.weights, copy.weights, strict=True):
        target.assign(tf.cast(source, tf.bfloat16))
    return copy


@pytest.mark.parametrize("make", [_coupling, _maf])
def test_the_low_precision_switch_runs_the_copy_and_keeps_the_dtype(make):
    bijector = _perturbed(make())
    x = tf.constant(np.random.default_rng(0).normal(size=(6, 4)), tf.float32)
    want = bijector.inverse(tf.identity(x))
    copy = _bfloat16_copy(bijector)
    assert lowered_conditioner(bijector) is None
    with lowering([(bijector, copy)]):
        assert lowered_conditioner(bijector) is copy
        got = bijector.inverse(tf.identity(x))
        ildj = bijector.inverse_log_det_jacobian(tf.identity(x), 1)
    assert got.dtype == tf.float32 and ildj.dtype == tf.float32
    assert not np.array_equal(got, want)  # it ran the copy
    np.testing.assert_allclose(got, want, atol=5e-2, rtol=2e-2)
    assert lowered_conditioner(bijector) is None
    np.testing.assert_array_equal(bijector.inverse(tf.identity(x)), want)


SPLINE = "RationalQuadraticSpline(num_bins=4, bound=5.0, min_bin_size=0.001, max_derivative=1000.0)"


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Coupling(
                ResidualMLP(2, [4]), half_mask(4), RationalQuadraticSpline(4), name="c"
            ),
            "c: `conditioner` must return (widths of shape (1, 2, 4), heights of shape (1, 2, 4), "
            f"derivatives of shape (1, 2, 3)) for a batch of 1 ({SPLINE}); got [(1, 2), (1, 2)]. "
            "With this mask the conditioner sees inputs of shape (1, 2); our conditioners take "
            "num_outputs=3 for this transformer.",
        ),
        (
            lambda: Coupling(lambda w: 3.0, half_mask(4), Additive(), name="c"),
            "c: `conditioner` must return a shift tensor of shape (1, 2) for a batch of 1 "
            "(Additive()); got ['float']. With this mask the conditioner sees inputs of shape "
            "(1, 2); our conditioners take num_outputs=1 for this transformer.",
        ),
        (
            lambda: MaskedAutoregressive(MADE(3, [4]), RationalQuadraticSpline(4), name="m"),
            "m: `made` must return (widths of shape (1, 3, 4), heights of shape (1, 3, 4), "
            f"derivatives of shape (1, 3, 3)) for a batch of 1 ({SPLINE}); got [(1, 3), (1, 3)]. "
            "Build it with MADE(..., param_shapes=[[4], [4], [3]]).",
        ),
    ],
)
def test_outputs_that_do_not_fit_are_refused_with_each_expected_shape(refusal, make, message):
    assert refusal(ValueError, make) == message


@pytest.mark.parametrize("make", [_coupling, _maf])
def test_a_transformer_that_is_not_one_is_refused_whole(refusal, make):
    conditioner = ResidualMLP(2, [8]) if make is _coupling else MADE(4, [8])
    args = (conditioner, half_mask(4), "affine") if make is _coupling else (conditioner, "affine")
    assert refusal(TypeError, type(make()), *args) == (
        "`transformer` must be a tfp_realnvp.bijectors.Transformer (Affine, Additive or a "
        "subclass); got str."
    )


class _ZeroModule(tf.Module):
    """A conditioner with no dtype of its own: zero shift and log-scale."""

    def __call__(self, w):
        return tf.zeros_like(w), tf.zeros_like(w)


def test_the_dtype_comes_from_the_conditioner_else_float32_and_the_jacobian_is_not_constant():
    float64 = Coupling(ResidualMLP(2, [4], dtype="float64"), half_mask(4), Affine())
    assert float64.flow_dtype == tf.float64
    assert Coupling(_ZeroModule(), half_mask(4), Affine()).flow_dtype == tf.float32
    for bijector in (float64, _maf()):
        assert bijector.is_constant_jacobian is False  # not affine, whatever the transformer


@pytest.mark.parametrize("make", [_coupling, _maf])
def test_the_context_reaches_the_conditioner_with_any_batch_shape(make):
    """The conditioner reads the context (a different one moves the output), broadcast over
    a batch of rank 2 whose size is known only when the graph runs."""
    bijector = _perturbed(make(context_shape=[3]))
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 5, 4)), tf.float32)
    context = tf.constant(rng.normal(size=(3,)), tf.float32)
    eager = bijector.inverse(x, context=context)
    assert not np.allclose(eager, bijector.inverse(x, context=context + 1.0))
    traced = tf.function(
        lambda t: bijector.inverse(t, context=context),
        input_signature=[tf.TensorSpec([None, None, 4], tf.float32)],
    )
    np.testing.assert_allclose(traced(x), eager, rtol=1e-6, atol=1e-6)
    each = [bijector.inverse(x[i], context=tf.broadcast_to(context, [5, 3])) for i in range(2)]
    np.testing.assert_allclose(eager, np.stack(each), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", [_coupling, _maf])
def test_the_low_precision_copy_reads_the_context_too(make):
    bijector = _perturbed(make(context_shape=[3]))
    x = tf.constant(np.random.default_rng(2).normal(size=(6, 4)), tf.float32)
    context = tf.constant(np.random.default_rng(3).normal(size=(6, 3)), tf.float32)
    want = bijector.inverse(tf.identity(x), context=context)
    copy = _bfloat16_copy(bijector)
    with lowering([(bijector, copy)]):
        got = bijector.inverse(tf.identity(x), context=context)
        moved = bijector.inverse(tf.identity(x), context=context + 1.0)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, want, atol=5e-2, rtol=2e-2)
    assert not np.allclose(got, moved)
