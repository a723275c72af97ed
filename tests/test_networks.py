import numpy as np
import tensorflow as tf

from tfp_realnvp import ResidualConvNet, ResidualMLP, keras


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
