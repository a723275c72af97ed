"""`tfp_realnvp.keras`: the Keras the package resolves to, and the variables both sides share."""

import importlib
import os

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import keras

pytestmark = pytest.mark.tf_keras  # the Keras the package builds on, and its variables seen by TFP


def test_public_keras_is_the_one_the_package_builds_on():
    legacy = os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")
    assert keras.LEGACY_KERAS is legacy
    resolved = importlib.import_module("tf_keras" if legacy else "keras")
    assert keras.layers is resolved.layers and keras.Model is resolved.Model
    assert isinstance(trn.ResidualMLP(2, [4]), keras.layers.Layer)
    assert keras.saving.get_registered_object("tfp_realnvp>ResidualMLP") is trn.ResidualMLP
    assert "register" in dir(keras) and "layers" in dir(keras)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_tfp_and_keras_train_the_same_variables(policy):
    """The flow's `trainable_variables` (what TFP and tfp.vi train) are the storage of the
    Keras weights (what Keras' optimizer trains), under a mixed policy too: training on either
    side moves the other."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = trn.FlowModel(trn.real_nvp([2], 2, [8]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    tfp_side = model.bijector.trainable_variables
    keras_side = model.trainable_weights
    assert len(tfp_side) == len(keras_side) == 8  # 2 couplings x 2 Dense (kernel, bias)

    def values(variables):
        return sorted((tuple(v.shape), float(tf.reduce_sum(tf.abs(v)))) for v in variables)

    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, epochs=1, batch_size=32, verbose=0)  # Keras' optimizer
    assert values(tfp_side) == values(keras_side)
    assert all(float(tf.reduce_sum(tf.abs(v))) > 0 for v in tfp_side)  # the zero layers moved

    before = values(keras_side)
    optimizer = keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(model.distribution.log_prob(x))
    grads = tape.gradient(loss, tfp_side)
    assert all(g is not None for g in grads)
    optimizer.apply_gradients(zip(grads, tfp_side, strict=True))  # TFP's side
    assert values(keras_side) != before
    assert values(tfp_side) == values(keras_side)
