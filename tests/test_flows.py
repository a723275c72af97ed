"""The builders, and the flow inside ordinary TFP: Chain, TransformedDistribution,
JointDistributions and tfp.vi."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import (
    AffineCoupling,
    LULinear,
    conditional_kwargs,
    flow_distribution,
    keras,
    multiscale_real_nvp,
    real_nvp,
    testing,
    walk,
)

tfb, tfd = tfp.bijectors, tfp.distributions


def test_fresh_flow_is_exactly_the_base_density():
    flow = real_nvp([3], num_couplings=3, hidden_units=[8])
    x = tf.random.normal([10, 3])
    base = tfd.MultivariateNormalDiag(tf.zeros(3))
    np.testing.assert_allclose(flow_distribution(flow).log_prob(x), base.log_prob(x), rtol=1e-6)


def test_a_tfp_bijector_gets_a_base_of_its_own_dtype():
    shift = tfb.Shift(tf.constant([1.0, -2.0], tf.float64))
    dist = flow_distribution(shift, event_shape=[2])
    assert dist.dtype == tf.float64
    x = np.array([[0.5, 0.25]])
    expected = -0.5 * np.sum((x - [1.0, -2.0]) ** 2) - np.log(2 * np.pi)
    np.testing.assert_allclose(dist.log_prob(x), [expected], rtol=1e-12)
    assert flow_distribution(tfb.Exp(), event_shape=[2]).dtype == tf.float32  # no dtype of its own


def test_large_flow_with_random_weights_is_finite_on_extreme_data():
    # The default soft-clamped log-scale bounds what each coupling can do, so even weights far
    # from the identity start and data far out in every direction give finite densities.
    flow = real_nvp([64], num_couplings=8, hidden_units=[64, 64])
    testing.perturb_variables(flow, seed=0, stddev=0.5)
    far = testing.edge_points([64], magnitude=1e4, dtype=tf.float32)  # all edges, mixed signs
    x = tf.concat([far, tf.random.stateless_normal([1000, 64], seed=[0, 1]) * 5.0], 0)
    log_prob = flow_distribution(flow).log_prob(x).numpy()
    base = tfd.MultivariateNormalDiag(tf.zeros(64)).log_prob(x).numpy()
    assert log_prob.shape == (1007,) and not np.allclose(log_prob, base, atol=1.0)
    assert np.all(np.isfinite(log_prob)), np.flatnonzero(~np.isfinite(log_prob))


def test_chain_order_inverse_runs_couplings_in_list_order():
    flow = real_nvp([4], num_couplings=3, hidden_units=[8], permutation="lu")
    kinds = [type(b) for b in flow.bijectors]
    assert kinds == [AffineCoupling, LULinear, AffineCoupling, LULinear, AffineCoupling]
    masks = [b.mask for b in real_nvp([4], num_couplings=2, hidden_units=[8]).bijectors]
    np.testing.assert_array_equal(masks[0], ~masks[1])  # "alternate": the halves alternate


def test_default_names_are_unique():
    names = [b.name for f in (real_nvp([2], 3), real_nvp([2], 3)) for b in f.bijectors]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(event_shape=[4], num_couplings=0), "`num_couplings` must be a positive integer"),
        (dict(event_shape=[4], num_couplings=True), "`num_couplings` .* integer; got True"),
        (dict(event_shape=[4], permutation="shuffle"), "`permutation` must be one of"),
        (dict(event_shape=[4], scale="affine"), "`scale` must be one of"),
        (dict(event_shape=[4], clamp=0.0), "`clamp` must be a positive number; got 0.0"),
        (dict(event_shape=[4], mask="checkerboard"), "`mask` for vector events must be one of"),
        (dict(event_shape=[4, 4, 2], mask="half"), "`mask` for image events must be one of"),
        (dict(event_shape=[1]), "at least 2 units"),
        (dict(event_shape=[2, 3]), r"must be \[D\] \(vectors\) or \[H, W, C\]"),
        (dict(event_shape=[0]), "non-empty list of positive ints"),
        (dict(event_shape=[4], permutation="swap"), 'is now called "alternate"'),
        (
            dict(event_shape=[4, 4, 2], hidden_units=[8]),
            r"`hidden_units` sets the MLP conditioners of vector events; for an image event "
            r"\[H, W, C\] pass `hidden_channels`.*got hidden_units=\[8\]",
        ),
        (
            dict(event_shape=[4], hidden_channels=8),
            "`hidden_channels` sets the conv conditioners of image events .*; for a vector "
            "event pass `hidden_units`.*got hidden_channels=8",
        ),
        (
            dict(event_shape=[4, 4, 2], hidden_channels=0),
            "`hidden_channels` must be a positive integer; got 0",
        ),
    ],
)
def test_builder_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        real_nvp(**kwargs)


def test_additive_couplings_have_one_spelling():
    # scale="none", as AffineCoupling spells it; the old `additive=True` duplicated it.
    with pytest.raises(TypeError, match="additive"):
        real_nvp([4], additive=True)


def test_composes_with_ordinary_tfp_bijectors_and_samples():
    flow = real_nvp([2], num_couplings=2, hidden_units=[8])
    shifted = tfb.Chain([tfb.Shift([10.0, -10.0]), flow])
    dist = flow_distribution(shifted, event_shape=[2])
    samples = dist.sample(2000, seed=(1, 2))
    np.testing.assert_allclose(tf.reduce_mean(samples, 0), [10.0, -10.0], atol=0.1)
    expected = tfd.MultivariateNormalDiag([10.0, -10.0]).log_prob(samples)
    np.testing.assert_allclose(dist.log_prob(samples), expected, rtol=1e-5)


def test_log_prob_of_fresh_input_uses_the_inverse():
    flow = real_nvp([2], num_couplings=2, hidden_units=[8])
    for v in flow.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.3))
    dist = flow_distribution(flow)
    s = dist.sample(5, seed=(3, 4))
    np.testing.assert_allclose(dist.log_prob(tf.identity(s)), dist.log_prob(s), rtol=1e-5)


def test_joint_distribution_with_a_flow_prior():
    flow = real_nvp([2], num_couplings=2, hidden_units=[8])
    joint = tfd.JointDistributionSequential(
        [flow_distribution(flow, name="z"), lambda z: tfd.Independent(tfd.Normal(z, 1.0), 1)]
    )
    z, y = joint.sample(3, seed=(5, 6))
    want = flow_distribution(flow).log_prob(z) + tfd.Independent(tfd.Normal(z, 1.0), 1).log_prob(y)
    np.testing.assert_allclose(joint.log_prob([z, y]), want, rtol=1e-6)
    assert len(joint.trainable_variables) == len(flow.trainable_variables) > 0


@pytest.mark.tf_keras  # Keras weights seen by TFP
def test_flow_trains_as_a_tfp_vi_surrogate():
    target = tfd.MultivariateNormalDiag([2.0, -1.0], [0.5, 1.5])
    q = flow_distribution(real_nvp([2], num_couplings=4, hidden_units=[16]))
    assert q.trainable_variables
    losses = tfp.vi.fit_surrogate_posterior(
        target.log_prob,
        q,
        optimizer=keras.optimizers.Adam(0.02),
        num_steps=300,
        sample_size=64,
        seed=(1, 2),
    )
    assert losses[-20:].numpy().mean() < 0.1 < losses[0].numpy()
    s = q.sample(4000, seed=(3, 4))
    np.testing.assert_allclose(tf.reduce_mean(s, 0), [2.0, -1.0], atol=0.15)
    np.testing.assert_allclose(tf.math.reduce_std(s, 0), [0.5, 1.5], rtol=0.1)


def test_conditional_flow_routes_context_through_chain_and_distribution():
    flow = real_nvp([3], num_couplings=2, hidden_units=[8], context_shape=[2])
    for v in flow.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.3))
    dist = flow_distribution(flow)
    context = tf.random.normal([4, 2])
    kw = conditional_kwargs(flow, context)
    assert set(kw) == {b.name for b in flow.bijectors}
    x = dist.sample(4, seed=(1, 1), bijector_kwargs=kw)
    lp = dist.log_prob(tf.identity(x), bijector_kwargs=kw)
    lp_other = dist.log_prob(tf.identity(x), bijector_kwargs=conditional_kwargs(flow, -context))
    assert lp.shape == (4,) and not np.allclose(lp, lp_other)


def test_conditional_kwargs_nested_and_duplicate_names():
    inner = real_nvp([2], num_couplings=1, hidden_units=[4], context_shape=[1], name="inner")
    outer = tfb.Chain([tfb.Shift(1.0), inner], name="outer")
    c = tf.ones([1])
    kw = conditional_kwargs(outer, c)
    assert list(kw) == ["inner"] and list(kw["inner"].values()) == [{"context": c}]
    a = AffineCoupling(
        real_nvp([2], 1, [4], context_shape=[1]).bijectors[0].conditioner,
        num_masked=1,
        event_shape=[2],
        context_shape=[1],
        name="same",
    )
    b = AffineCoupling(a.conditioner, num_masked=1, event_shape=[2], context_shape=[1], name="same")
    with pytest.raises(ValueError, match="are named 'same'"):
        conditional_kwargs(tfb.Chain([a, b]), c)


def test_float64_flow_and_base():
    dist = flow_distribution(real_nvp([2], 2, [8], dtype=tf.float64))
    assert dist.dtype == tf.float64
    assert dist.log_prob(np.zeros([3, 2])).dtype == tf.float64


def test_float32_flow_rejects_float64_data_clearly():
    dist = flow_distribution(real_nvp([2], 2, [8]))
    with pytest.raises(TypeError, match=r"has dtype float64.*computes in float32"):
        dist.log_prob(tf.zeros([3, 2], tf.float64))


def test_flow_distribution_needs_event_shape_for_foreign_bijectors():
    with pytest.raises(ValueError, match="`event_shape` is needed"):
        flow_distribution(tfb.Exp())
    assert flow_distribution(tfb.Exp(), event_shape=[3]).event_shape == [3]


@pytest.mark.parametrize("kind", ["sequential", "named", "coroutine"])
def test_flow_distribution_drops_into_joint_distributions(kind):
    flow = real_nvp([2], num_couplings=2, hidden_units=[8])
    testing.perturb_variables(flow)
    prior = flow_distribution(flow)

    def likelihood(z):
        return tfd.Independent(tfd.Normal(z, 1.0), 1)

    if kind == "sequential":
        joint = tfd.JointDistributionSequential([prior, likelihood])
    elif kind == "named":
        joint = tfd.JointDistributionNamed({"z": prior, "x": likelihood})
    else:

        def model():
            z = yield tfd.JointDistributionCoroutine.Root(prior)
            yield likelihood(z)

        joint = tfd.JointDistributionCoroutine(model)
    draw = joint.sample(5, seed=(1, 2))
    z, x = (draw["z"], draw["x"]) if kind == "named" else draw
    want = prior.log_prob(tf.identity(z)) + likelihood(z).log_prob(x)
    np.testing.assert_allclose(joint.log_prob(draw), want, rtol=1e-5)
    refs = {v.ref() for v in joint.trainable_variables}
    assert refs >= {v.ref() for v in prior.trainable_variables} and len(refs) > 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: real_nvp([6], 4, [16], scale="none", dtype=tf.float64),
        lambda: real_nvp([6], 2, [8], scale=None, dtype=tf.float64),
        lambda: real_nvp(
            [2, 2, 2], 2, hidden_channels=4, num_blocks=1, scale="none", dtype=tf.float64
        ),
        lambda: multiscale_real_nvp(
            [4, 4, 1], 2, 1, 4, 1, final_couplings=1, scale="none", dtype=tf.float64
        ),
    ],
    ids=["scale-none", "scale-None", "image-scale-none", "multiscale-scale-none"],
)
def test_builders_make_shift_only_conditioners_for_additive_couplings(make):
    flow = make()  # used to fail: a (shift, log_scale) conditioner for a shift-only coupling
    couplings = [b for b in walk(flow) if isinstance(b, AffineCoupling)]
    assert couplings and {c.scale for c in couplings} == {"none"}
    testing.perturb_variables(flow, seed=1)
    event_shape = flow_distribution(flow).event_shape
    x = tf.random.stateless_normal([3, *event_shape], seed=[4, 5], dtype=tf.float64)
    z = flow.inverse(x)
    assert not np.allclose(z, x)  # the perturbed shifts act
    np.testing.assert_allclose(flow.forward(tf.identity(z)), x, atol=1e-12)
    np.testing.assert_array_equal(flow.inverse_log_det_jacobian(x, len(event_shape)), 0.0)


def test_one_dimension_is_refused_with_the_family_that_fits_it():
    with pytest.raises(ValueError, match=r"masked_autoregressive_flow\(event_shape, .*'spline'"):
        trn.real_nvp([1], 2, [8])
    flow = trn.masked_autoregressive_flow([1], 2, [8], transformer="spline", context_shape=[3])
    model = trn.FlowModel(flow)
    x, context = np.zeros((4, 1), np.float32), np.ones((4, 3), np.float32)
    assert model.log_prob(x, context).shape == (4,)
