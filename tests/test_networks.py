import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import ResidualConvNet, ResidualMLP, keras, testing

pytestmark = pytest.mark.tf_keras  # the conditioners are Keras layers


def test_mlp_starts_at_zero_and_round_trips_config():
    net = ResidualMLP(3, hidden_units=[8, 8, 4], num_outputs=2, activation="tanh")
    shift, log_scale = net(tf.random.normal([5, 2]), context=tf.ones([5, 1]))
    assert shift.shape == (5, 3) and log_scale.shape == (5, 3)
    assert np.all(shift.numpy() == 0) and np.all(log_scale.numpy() == 0)
    clone = ResidualMLP.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(net))
    assert isinstance(restored, ResidualMLP) and restored.hidden_units == [8, 8, 4]


def test_mlp_single_output_for_additive():
    out = ResidualMLP(4, hidden_units=[8], num_outputs=1)(tf.ones([2, 3]))
    assert tf.is_tensor(out) and out.shape == (2, 4)


def test_conv_net_shapes_context_and_config():
    net = ResidualConvNet(2, hidden_channels=8, num_blocks=2)
    shift, log_scale = net(tf.ones([3, 4, 4, 2]), context=tf.ones([3, 5]))
    assert shift.shape == (3, 4, 4, 2)
    assert np.all(log_scale.numpy() == 0)
    # 1 input conv + 2 blocks x 2 convs + output conv, each with kernel and bias.
    assert len(net.trainable_weights) == 2 * 6
    assert ResidualConvNet.from_config(net.get_config()).get_config() == net.get_config()


def test_dropout_acts_in_training_steps_only():
    """With dropout, a flow's log-density is random inside `training_mode` (and in
    FlowModel's training step) and deterministic everywhere else."""
    flow = trn.real_nvp([4], 2, [32], dropout=0.5)
    testing.perturb_variables(flow, seed=0)
    dist = trn.flow_distribution(flow)
    x = tf.ones([3, 4])
    np.testing.assert_array_equal(dist.log_prob(x), dist.log_prob(x))
    with trn.training_mode():
        assert not np.allclose(dist.log_prob(x), dist.log_prob(x))

    model = trn.FlowModel(flow)
    model.compile(jit_compile=False)
    evaluated = model.evaluate(np.ones((8, 4), "float32"), verbose=0, return_dict=True)
    before = [np.array(w) for w in model.trainable_weights]
    model.optimizer.learning_rate.assign(0.0)  # a step that changes no weight...
    trained = model.fit(np.ones((8, 4), "float32"), epochs=1, batch_size=8, verbose=0)
    assert all(np.array_equal(w, b) for w, b in zip(model.trainable_weights, before, strict=True))
    assert trained.history["loss"][0] != evaluated["loss"]  # ...but saw dropout


def test_param_shapes_give_several_values_per_unit():
    net = trn.ResidualMLP(3, [8], param_shapes=[[4], [4], [3]])
    shapes = [tuple(t.shape) for t in net(tf.ones([5, 2]))]
    assert shapes == [(5, 3, 4), (5, 3, 4), (5, 3, 3)]
    conv = trn.ResidualConvNet(2, 4, num_blocks=1, param_shapes=[[4], [3]])
    assert [tuple(t.shape) for t in conv(tf.ones([1, 4, 4, 2]))] == [
        (1, 4, 4, 2, 4),
        (1, 4, 4, 2, 3),
    ]
    with pytest.raises(ValueError, match="`param_shapes` must list one shape"):
        trn.ResidualMLP(3, [8], param_shapes=[[0]])
