"""Learned base distributions: they start where they say, train with the flow (through Keras
and through TFP's own variables), save in the Keras format and export with the flow."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp._keras import tf_variables
from tfp_realnvp.bases import BASES, GaussianMixture, StudentT, make_base

tfd = tfp.distributions
LEARNED = [b for b in BASES if b != "normal"]


def _flow():
    return trn.real_nvp([2], 1, [4])


def test_diagonal_and_student_t_start_at_the_standard_normal_or_near_it():
    x = np.random.default_rng(0).normal(size=(50, 2)).astype("float32")
    normal = (-0.5 * x**2 - 0.5 * np.log(2 * np.pi)).sum(1)
    diagonal = make_base("diagonal", [2]).distribution().log_prob(x)
    np.testing.assert_allclose(diagonal, normal, rtol=1e-5)
    nu = 30.0
    t_pdf = (
        math.lgamma((nu + 1) / 2)
        - math.lgamma(nu / 2)
        - 0.5 * np.log(nu * np.pi)
        - (nu + 1) / 2 * np.log1p(x**2 / nu)
    )
    student = make_base("student_t", [2]).distribution().log_prob(x)
    np.testing.assert_allclose(student, t_pdf.sum(1), rtol=1e-5)


@pytest.mark.parametrize("kind", LEARNED)
def test_learned_base_trains_saves_and_exports(kind, tmp_path):
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(_flow(), base=kind)
    base_vars = {id(v) for v in model.learned_base.trainable_weights}
    assert base_vars and base_vars <= {id(v) for v in model.trainable_weights}
    before = [np.array(v) for v in model.learned_base.trainable_weights]
    model.compile(keras.optimizers.Adam(0.05), jit_compile=False)
    x = np.random.default_rng(1).normal(2.0, 0.5, size=(256, 2)).astype("float32")
    model.fit(x, epochs=2, batch_size=64, verbose=0)
    after = [np.array(v) for v in model.learned_base.trainable_weights]
    assert any(not np.allclose(a, b) for a, b in zip(after, before, strict=True))

    want = model.log_prob(x[:8]).numpy()
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    assert type(loaded.learned_base) is type(model.learned_base)
    np.testing.assert_array_equal(loaded.log_prob(x[:8]), want)
    # The optimizer's state came back too (Keras skips it, with a warning only, when the
    # loaded optimizer was not built for the model's variables), so training goes on from it.
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a, b)

    trn.export_saved_model(model, tmp_path / "served")
    served = tf.saved_model.load(str(tmp_path / "served"))
    got = served.signatures["log_prob"](x=tf.constant(x[:8]))["log_prob"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    seed = tf.constant([3, 4])
    samples = served.signatures["sample"](count=tf.constant(5), seed=seed)["samples"]
    np.testing.assert_allclose(samples, model.sample(5, seed=[3, 4]), rtol=1e-5, atol=1e-5)


@pytest.mark.tf_keras  # Keras weights seen by TFP
def test_tfp_sees_the_base_variables_of_a_flow_distribution():
    """`tfp.vi` and hand-written TFP loops train `dist.trainable_variables`: they must hold the
    base's, under Keras 3 too (whose layers are not tf.Modules)."""
    base = GaussianMixture([2], num_components=3)
    dist = trn.flow_distribution(_flow(), base=base)
    held = {v.ref() for v in dist.trainable_variables}
    assert {v.ref() for v in tf_variables(base)} <= held
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(dist.log_prob(tf.ones([4, 2])))
    grads = tape.gradient(loss, dist.trainable_variables)
    assert all(g is not None for g in grads)


def test_student_t_base_learns_heavy_tails():
    keras.utils.set_random_seed(0)
    data = np.random.default_rng(2).standard_t(2, size=(2048, 2)).astype("float32")
    model = trn.FlowModel(_flow(), base=StudentT([2], degrees_of_freedom=30.0))
    model.compile(keras.optimizers.Adam(0.1), jit_compile=False)
    model.fit(data, epochs=6, batch_size=256, verbose=0)
    assert np.all(model.learned_base.degrees_of_freedom().numpy() < 8)


def test_bad_bases_are_refused_by_name():
    with pytest.raises(ValueError, match="`base` must be one of"):
        trn.FlowModel(_flow(), base="laplace")
    with pytest.raises(ValueError, match=r"`base` has float32 events of shape \(3,\)"):
        trn.FlowModel(_flow(), base=make_base("diagonal", [3]))
    with pytest.raises(ValueError, match="`degrees_of_freedom` must be a number above 1"):
        StudentT([2], degrees_of_freedom=0.5)
    with pytest.raises(ValueError, match=r"`base` must be a distribution of float32 events"):
        trn.flow_distribution(_flow(), base=tfd.Normal(0.0, 1.0))
