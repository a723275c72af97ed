"""What makes the flow fast, checked without timing anything (timings live in benchmarks/):
one conditioner pass per coupling, no retracing, XLA by default, mixed precision."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras


class CountingMLP(trn.ResidualMLP):
    calls = 0

    def call(self, inputs, context=None):
        CountingMLP.calls += 1
        return super().call(inputs, context)


def _counting_flow(num_couplings=3):
    couplings = []
    for i in range(num_couplings):
        mask = trn.half_mask(4) if i % 2 == 0 else ~trn.half_mask(4)
        couplings.append(trn.AffineCoupling(CountingMLP(2, [8]), mask))
    return tfp.bijectors.Chain(couplings)


def test_one_conditioner_pass_per_coupling_per_direction():
    flow = _counting_flow(3)
    dist = trn.flow_distribution(flow)
    x = tf.random.normal([5, 4])
    CountingMLP.calls = 0
    dist.log_prob(x)  # inverse and its log-det: one pass each coupling
    assert CountingMLP.calls == 3
    CountingMLP.calls = 0
    s = dist.sample(5, seed=(1, 2))  # forward
    dist.log_prob(s)  # TFP's cache knows s came from z: no pass at all
    assert CountingMLP.calls == 3


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(trn.real_nvp([2], 2, [8], **kwargs))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.mark.tf_keras  # compile()'s jit_compile and Keras' tracing
def test_xla_by_default_and_no_retracing():
    model = _model()
    assert model.jit_compile
    # The conditioners' Python runs only while a function is traced (eagerly it would run
    # on every call): one pass per coupling in total means one trace for all batch sizes.
    counting = trn.FlowModel(_counting_flow(3))
    counting.compile(optimizer="adam")
    CountingMLP.calls = 0
    for n in (3, 7, 11):
        counting.log_prob(np.zeros([n, 4], "float32"))
    assert CountingMLP.calls == 3
    for n in (3, 7, 11):
        counting.sample(n, seed=n)
    assert CountingMLP.calls == 6

    traces = []
    original = model.train_step

    def counting_step(data):
        traces.append(1)  # runs only while tracing
        return original(data)

    model.train_step = counting_step
    x = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
    model.fit(x, epochs=2, batch_size=64, verbose=0)
    first = len(traces)
    model.fit(x, epochs=2, batch_size=64, verbose=0)
    assert first >= 1 and len(traces) == first


def test_compiled_log_prob_and_sample_match_the_plain_path():
    model = _model(context_shape=[1])
    for v in model.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.3))
    x = np.random.default_rng(1).normal(size=(6, 2)).astype("float32")
    c = np.ones([6, 1], "float32")
    kw = model.bijector_kwargs(c)
    plain = model.distribution.log_prob(x, bijector_kwargs=kw)  # TFP's own, uncompiled path
    assert not np.allclose(plain, model.distribution.distribution.log_prob(x))  # the flow acts
    np.testing.assert_allclose(model.log_prob(x, c), plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.log_prob(x, c[:1]), plain, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"`context` has batch shape \(4,\)"):
        model.log_prob(x, np.ones([4, 1], "float32"))
    # sample(seed=[a, b]) is the flow's forward of stateless standard-normal noise.
    z = tf.random.stateless_normal([6, 2], seed=[3, 4])
    plain = model.bijector.forward(z, **kw)
    assert not np.allclose(plain, z)
    np.testing.assert_allclose(model.sample(6, seed=[3, 4], context=c), plain, atol=1e-5)
    np.testing.assert_allclose(model.sample(6, seed=[3, 4], context=c[:1]), plain, atol=1e-5)


def test_sampling_noise_is_drawn_outside_the_compiled_function(monkeypatch):
    model = _model()
    drawn = []  # for each noise draw: was it an eager op (not traced into a tf.function)?
    for name in ("normal", "stateless_normal"):
        draw = getattr(tf.random, name)

        def recording(*args, _draw=draw, **kwargs):
            drawn.append(tf.executing_eagerly())
            return _draw(*args, **kwargs)

        monkeypatch.setattr(tf.random, name, recording)
    for seed in (None, 5, [1, 2]):
        for n in (3, 4):
            assert model.sample(n, seed=seed).shape == (n, 2)
    assert drawn == [True] * 6


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_log_dets_in_float32_and_agrees(policy):
    reference = _model()
    for v in reference.trainable_variables:  # large weights: log-dets of several nats
        v.assign(tf.random.normal(v.shape, stddev=1.0, seed=1))
    x = np.random.default_rng(2).normal(size=(64, 2)).astype("float32")
    keras.mixed_precision.set_global_policy(policy)
    try:
        mixed = _model()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    conditioner = mixed.bijector.bijectors[0].conditioner
    assert conditioner.compute_dtype == policy.split("_")[1]
    assert conditioner.dtype == "float32"  # variables stay float32
    for a, b in zip(mixed.trainable_variables, reference.trainable_variables, strict=True):
        a.assign(b)
    # Stated tolerance: bfloat16 carries ~3 significant digits, float16 ~4.
    tol = 5e-2 if policy == "mixed_bfloat16" else 5e-3
    want = reference.bijector.inverse_log_det_jacobian(x, 1)
    assert np.mean(np.abs(want)) > 10 * tol  # so dropped or mangled log-dets cannot pass
    got = mixed.bijector.inverse_log_det_jacobian(x, 1)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    got, want = mixed.log_prob(x), reference.log_prob(x)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    history = mixed.fit(x, epochs=2, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
