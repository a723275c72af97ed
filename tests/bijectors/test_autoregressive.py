"""MADE, MaskedAutoregressive (MAF and IAF) and masked_autoregressive_flow. The conformance kit,
.keras saving and SavedModel export run through tests/test_conformance.py and test_registry.py."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import MADE, keras, masked_autoregressive_flow, testing
from tfp_realnvp.bijectors import Additive, Affine, MaskedAutoregressive

tfd = tfp.distributions
F64 = tf.float64


def _perturbed_made(event_size, hidden, param_shapes, context, residual):
    made = MADE(event_size, hidden, param_shapes, activation="tanh", residual=residual)
    made(tf.zeros([1, event_size]), context=tf.zeros([1, 1]) if context else None)
    rng = np.random.default_rng(0)
    for v in made.trainable_variables:
        v.assign(rng.normal(0, 0.5, v.shape).astype("float32"))
    return made


def _dependence(made, event_size, context):
    """For each output tensor, ``[D_out, D_in]``: does unit i's output move with x_j? And a
    ``[D_out]`` vector: does it move with the context?"""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(3, event_size)), tf.float32)
    c = tf.constant(rng.normal(size=(3, 1)), tf.float32) if context else None
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        if c is not None:
            tape.watch(c)
        outs = made(x, context=c)
        outs = (outs,) if tf.is_tensor(outs) else outs
        flats = [tf.reshape(o, [3, -1]) for o in outs]
    result = []
    for o, flat in zip(outs, flats, strict=True):
        jac = tape.batch_jacobian(flat, x).numpy().reshape(3, event_size, -1, event_size)
        on_x = np.abs(jac).sum(axis=(0, 2)) > 0
        on_c = None
        if c is not None:
            jc = tape.batch_jacobian(flat, c).numpy().reshape(3, event_size, -1, c.shape[-1])
            on_c = np.abs(jc).sum(axis=(0, 2, 3)) > 0
        result.append((tuple(o.shape[1:]), on_x, on_c))
    return result


@pytest.mark.parametrize(
    "event_size, hidden, param_shapes, context, residual",
    [
        (5, [16, 16], [[], []], False, False),  # wide: every earlier unit reaches each output
        (6, [3, 2], [[], []], False, False),  # hidden layers narrower than D
        (4, [8, 8, 8], [[3], [3], [2]], True, True),  # spline-like shapes, context, residual
        (3, [], [[]], False, False),  # no hidden layer; one parameter
        (1, [4], [[], []], True, False),  # one unit: its parameters come from the context only
    ],
)
def test_made_outputs_of_unit_i_depend_only_on_units_before_it(
    event_size, hidden, param_shapes, context, residual
):
    made = _perturbed_made(event_size, hidden, param_shapes, context, residual)
    strictly_lower = np.tril(np.ones((event_size, event_size), bool), -1)
    for (shape, on_x, on_c), want in zip(
        _dependence(made, event_size, context), param_shapes, strict=True
    ):
        assert shape == (event_size, *want)
        assert not np.any(on_x & ~strictly_lower), on_x.astype(int)  # d theta_i / d x_j, j >= i
        if min(hidden, default=event_size) >= event_size - 1:
            np.testing.assert_array_equal(on_x, strictly_lower)  # and nothing more is cut
        else:
            assert on_x.any()
        if context:
            assert on_c.all()  # the context reaches every unit, the first one too


@pytest.mark.tf_keras  # a Keras layer's config
def test_made_starts_at_zero_and_round_trips_config():
    made = MADE(4, [8, 8], param_shapes=[[], [5]], residual=True, activation="tanh")
    shift, other = made(tf.random.normal([2, 4]), context=tf.ones([2, 3]))
    assert shift.shape == (2, 4) and other.shape == (2, 4, 5)
    assert not np.any(shift.numpy()) and not np.any(other.numpy())
    clone = MADE.from_config(made.get_config())
    assert clone.get_config() == made.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(made))
    assert isinstance(restored, MADE) and restored.param_shapes == [[], [5]]
    assert len(made.weights) == 2 * 3  # kernel and bias of 3 layers: the masks are constants


@pytest.mark.parametrize("inverse", [False, True], ids=["maf", "iaf"])
def test_fresh_flow_is_exactly_the_base_density(inverse):
    flow = masked_autoregressive_flow([3], 3, [8], inverse=inverse)
    x = tf.random.stateless_normal([6, 3], seed=[0, 1])
    base = tfd.MultivariateNormalDiag(tf.zeros(3))
    np.testing.assert_array_equal(trn.flow_distribution(flow).log_prob(x), base.log_prob(x))


def _graph_ops(fn, x) -> list[str]:
    graph = tf.function(fn).get_concrete_function(x).graph
    ops = [op.type for op in graph.get_operations()]
    for f in graph.as_graph_def().library.function:
        ops += [node.op for node in f.node_def]
    return ops


@pytest.mark.parametrize("inverse", [False, True], ids=["maf", "iaf"])
def test_slow_direction_is_one_while_loop_whatever_d_and_fast_has_none(inverse):
    counts = {}
    for d in (3, 12):
        layer = MaskedAutoregressive(MADE(d, [8]), Affine(), inverse=inverse)
        x = tf.TensorSpec([None, d])
        slow, fast = (layer.inverse, layer.forward) if inverse else (layer.forward, layer.inverse)
        ops = _graph_ops(slow, x)
        assert sum(op in ("While", "StatelessWhile") for op in ops) == 1
        assert not any("While" in op for op in _graph_ops(fast, x))
        counts[d] = len(ops)
    assert counts[3] == counts[12]  # the graph does not grow with D: no Python loop of D calls


def test_fast_directions_run_one_made_pass_per_layer():
    """The log-det comes from the same pass as the output (TFP's own MAF runs its network twice
    for log_prob): two layers of a one-hidden-layer MADE make four matmuls."""
    x = tf.TensorSpec([None, 5])
    for inverse in (False, True):
        flow = masked_autoregressive_flow([5], 2, [8], inverse=inverse)
        if inverse:  # a sample and its log-det, as a variational family uses them

            def fast(z, flow=flow):
                return flow.forward(z), flow.forward_log_det_jacobian(z, 1)

        else:
            fast = trn.flow_distribution(flow).log_prob
        assert _graph_ops(fast, x).count("MatMul") == 4


def test_iaf_is_fast_to_sample_and_its_samples_score_without_the_loop():
    """IAF as a variational family: the log-prob of its own samples comes from the cache."""
    flow = masked_autoregressive_flow([4], 2, [8], inverse=True, dtype=F64)
    testing.perturb_variables(flow, seed=1)
    dist = trn.flow_distribution(flow)
    x = dist.sample(5, seed=[1, 2])
    cached = dist.log_prob(x)
    np.testing.assert_allclose(cached, dist.log_prob(tf.identity(x)), rtol=1e-10)


@pytest.mark.tf_keras  # MADE's masked kernels in Keras' fit
def test_maf_trains_with_flow_model():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(256, 1))
    x = np.concatenate([x1, 0.5 * x1**2 + 0.2 * rng.normal(size=(256, 1))], 1).astype("float32")
    model = trn.FlowModel(masked_autoregressive_flow([2], 2, [16]))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    before = -float(np.mean(model.log_prob(x)))
    model.fit(x, epochs=3, batch_size=64, verbose=0)
    after = -float(np.mean(model.log_prob(x)))
    assert after < before - 0.3, (before, after)
    assert model.sample(7, seed=0).shape == (7, 2)


BAD = {
    "image": (
        lambda: masked_autoregressive_flow([4, 4, 1]),
        r"`event_shape` must be \[D\]: .*got \(4, 4, 1\)\. For images use multiscale_real_nvp",
    ),
    "transformer": (
        lambda: masked_autoregressive_flow([3], transformer="cubic"),
        r"`transformer` must be one of \('affine', 'spline'\); got 'cubic'",
    ),
    "foreign-option": (
        lambda: masked_autoregressive_flow([3], num_bins=4),
        r"`num_bins` does not apply to transformer='affine', which takes scale, clamp",
    ),
    "permutation": (
        lambda: masked_autoregressive_flow([3], permutation="alternate"),
        r"`permutation` must be one of \('reverse', 'random', 'lu', 'none'\)",
    ),
    "made-shapes": (
        lambda: MaskedAutoregressive(MADE(3, [4], param_shapes=[[]]), Affine()),
        r"`made` must return \(shift, log_scale\), each of shape \(1, 3\) .*got \[\(1, 3\)\]\. "
        r"Build it with MADE\(\.\.\., param_shapes=\[\[\], \[\]\]\)",
    ),
    "not-made": (
        lambda: MaskedAutoregressive(trn.ResidualMLP(3, [4]), Affine()),
        r"`made` must be a tfp_realnvp.MADE .*got ResidualMLP",
    ),
    "inverse": (
        lambda: MaskedAutoregressive(MADE(2, [4]), Affine(), inverse="iaf"),
        r"`inverse` must be a bool \(True for IAF\); got 'iaf'",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_arguments_name_the_argument_and_what_came(case):
    make, message = BAD[case]
    with pytest.raises((TypeError, ValueError), match=message):
        make()


def test_spline_transformer_is_resolved_by_name_with_its_options():
    flow = masked_autoregressive_flow([3], 1, [8], transformer="spline", num_bins=4, bound=2.0)
    spline = flow.bijectors[0].transformer
    assert isinstance(spline, trn.RationalQuadraticSpline)
    assert (spline.num_bins, spline.bound) == (4, 2.0)


def test_a_one_unit_additive_layer_on_a_context_has_a_zero_log_det_per_example(refusal):
    made = MADE(1, [4], param_shapes=[[]], dtype="float64")
    layer = MaskedAutoregressive(made, Additive(), context_shape=[2], dtype=F64)
    x, context = tf.ones([3, 1], F64), tf.ones([3, 2], F64)
    np.testing.assert_array_equal(layer.inverse_log_det_jacobian(x, 1, context=context), [0] * 3)
    assert refusal(TypeError, MaskedAutoregressive, trn.ResidualMLP(3, [4]), Affine()) == (
        "`made` must be a tfp_realnvp.MADE (a Keras layer with an integer `event_size`, "
        "autoregressive in its input); got ResidualMLP."
    )


def test_additive_layer_has_zero_log_det_and_round_trips():
    layer = MaskedAutoregressive(MADE(3, [8], param_shapes=[[]]), Additive(), dtype=F64)
    testing.perturb_variables(layer)
    x = tf.random.stateless_normal([4, 3], seed=[2, 3], dtype=F64)
    np.testing.assert_array_equal(layer.inverse_log_det_jacobian(x, 1), np.zeros(4))
    testing.check_round_trip(layer, x)


@pytest.mark.parametrize("size", [2, 4])
@pytest.mark.parametrize("inverse", [False, True], ids=["maf", "iaf"])
def test_both_directions_and_log_dets_against_autodiff_with_a_context(inverse, size):
    """Away from the identity, conditioned on a context, in float64: the round trip (the slow
    direction's loop must reach the fixed point, for D = 2 as well) and every log-det against
    ``slogdet`` of the autodiff Jacobian, directly and from the cache of one pass."""
    made = MADE(size, [8], dtype="float64")
    layer = MaskedAutoregressive(made, Affine(), inverse=inverse, context_shape=[2])
    testing.perturb_variables(layer, seed=1, stddev=0.5)
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(5, size)))
    context = tf.constant(rng.normal(size=(5, 2)))
    testing.check_round_trip(layer, x, atol=1e-10, context=context)
    testing.check_log_det_jacobian(layer, x, 1, atol=1e-10, context=context)
    other = layer.inverse(x, context=context + 1.0)
    assert not np.allclose(other, layer.inverse(x, context=context))  # the context is read
    assert np.abs(layer.inverse_log_det_jacobian(x, 1, context=context)).min() > 1e-3


@pytest.mark.parametrize("inverse, kind", [(False, "maf"), (True, "iaf")])
def test_names_parameters_checks_and_config(plumbing, inverse, kind):
    """The TFP plumbing (see the `plumbing` fixture) with each direction's NaN check, the kind
    (MAF unless ``inverse``) and a config that rebuilds the same kind."""

    def make(**kwargs):
        return MaskedAutoregressive(MADE(3, [4]), Affine(), inverse=inverse, **kwargs)

    bad = [[0.5, np.nan, 0.5]]
    named = plumbing(make, kind, [("inverse", bad, "x"), ("forward", bad, "z")])
    assert named.is_iaf is inverse and named.parameters["inverse"] is inverse
    assert not MaskedAutoregressive(MADE(3, [4]), Affine()).is_iaf  # MAF by default
    config = named.get_config()
    assert config["inverse"] is inverse
    assert MaskedAutoregressive.from_config(config).is_iaf is inverse
