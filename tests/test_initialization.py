"""Data-dependent initialisation happens only when asked for: `initialize`, `FlowModel.fit`."""

import threading

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import ActNorm, keras
from tfp_realnvp.initialization import first_batch, uninitialized

tfb = tfp.bijectors


def _glow(**kwargs):
    return trn.multiscale_real_nvp(
        [4, 4, 1], 2, 1, 4, 1, glow=True, final_couplings=1, dtype=tf.float64, **kwargs
    )


def _images(n=16, seed=0):
    return np.random.default_rng(seed).normal(3.0, 2.0, size=(n, 4, 4, 1))


def test_initialize_sets_every_actnorm_once_in_data_to_latent_order():
    flow, x = _glow(), _images()
    actnorms = [b for b in trn.walk(flow) if isinstance(b, ActNorm)]
    assert len(actnorms) == 2 and uninitialized(flow) == actnorms
    assert trn.initialize(flow, x) == [b.name for b in actnorms]
    assert uninitialized(flow) == []
    squeeze, first = flow.bijectors[:2]  # Glow: squeeze, then the first step's ActNorm
    z = first.inverse(squeeze.inverse(tf.constant(x))).numpy()
    np.testing.assert_allclose(z.mean((0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std((0, 1, 2)), 1.0, rtol=1e-5)
    state = [v.numpy().copy() for v in flow.variables]
    assert trn.initialize(flow, _images(seed=1) * 5.0) == []  # already initialised: no change
    for want, v in zip(state, flow.variables, strict=True):
        np.testing.assert_array_equal(v.numpy(), want)


def test_initialize_routes_the_context_of_a_conditional_flow():
    flow = _glow(context_shape=[2])
    with pytest.raises(ValueError, match="needs `context`"):
        trn.initialize(flow, _images())
    assert len(uninitialized(flow)) == 2  # a failed call changes nothing
    assert len(trn.initialize(flow, _images(), np.ones([16, 2]))) == 2


def test_initialize_errors():
    norm = ActNorm([3], dtype=tf.float64)
    with pytest.raises(ValueError, match=r"never reached \['act_norm_\d+'\].*tfb.Invert"):
        trn.initialize(tfb.Chain([tfb.Invert(norm)]), np.ones([4, 3]))
    with pytest.raises(RuntimeError, match="`initialize` runs eagerly"):
        tf.function(lambda x: trn.initialize(norm, x))(tf.ones([4, 3], tf.float64))
    with pytest.raises(TypeError, match="must be a TFP bijector or a FlowModel; got str"):
        trn.initialize("flow", np.ones([4, 3]))
    assert not norm.is_initialized


def _batches(x, size):
    for i in range(0, len(x), size):
        yield (x[i : i + size],)  # Keras takes (x,) tuples from generators


FIT_INPUTS = {
    "arrays": lambda x: (x, {"batch_size": 16}),
    "dataset": lambda x: (tf.data.Dataset.from_tensor_slices(x).batch(16), {}),
    "generator": lambda x: (_batches(x, 16), {"steps_per_epoch": 4}),
}


@pytest.mark.tf_keras  # each Keras' data adapters
@pytest.mark.parametrize("kind", sorted(FIT_INPUTS))
def test_fit_initializes_from_its_first_training_batch(kind):
    keras.utils.set_random_seed(0)
    norm = ActNorm([2])
    model = trn.FlowModel(norm)
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    x = np.random.default_rng(0).normal(1.0, 2.0, size=(64, 2)).astype("float32")
    x[:16] += 10.0  # the first batch differs from the rest
    data, kwargs = FIT_INPUTS[kind](x)
    history = model.fit(data, epochs=1, shuffle=False, verbose=0, **kwargs)
    assert norm.is_initialized
    assert len(history.history["loss"]) == 1
    np.testing.assert_allclose(norm.layers[0].bias.numpy(), -x[:16].mean(0), rtol=1e-5)
    z = model.bijector.inverse(tf.constant(x[:16]))
    np.testing.assert_allclose(tf.math.reduce_std(z, 0), 1.0, rtol=1e-3)


def test_fit_can_leave_initialization_to_the_user():
    model = trn.FlowModel(ActNorm([2]))
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    model.fit(np.full([8, 2], 5.0, "float32"), epochs=1, verbose=0, initialize=False)
    assert uninitialized(model.bijector) == [model.bijector]


def test_fit_initializes_a_dequantized_glow_flow_as_the_cli_trains_it():
    keras.utils.set_random_seed(0)
    levels = np.random.default_rng(0).integers(0, 17, size=(32, 4, 4, 1)).astype("float32")
    flow = trn.preprocessed_image_flow(
        trn.multiscale_real_nvp([4, 4, 1], 2, 1, 4, 1, glow=True, final_couplings=1), 17
    )
    model = trn.FlowModel(flow, dequantize=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    model.fit(levels, epochs=1, batch_size=16, verbose=0)
    assert uninitialized(flow) == []


def test_first_batch_of_each_kind_of_fit_input():
    x, c = np.arange(10.0).reshape(5, 2), np.ones([5, 1])
    batch, same = first_batch(x, c, batch_size=2)
    np.testing.assert_array_equal(batch[0], x[:2])
    np.testing.assert_array_equal(batch[1], c[:2])
    assert same is x
    ((bx, bc),), _ = first_batch((x, c), batch_size=3)  # fit((x, context))
    assert bx.shape == (3, 2) and bc.shape == (3, 1)
    gen = _batches(x, 2)
    batch, again = first_batch(gen)
    np.testing.assert_array_equal(batch[0], x[:2])
    np.testing.assert_array_equal(np.concatenate([b[0] for b in again]), x)  # nothing lost
    with pytest.raises(ValueError, match="exhausted iterator"):
        first_batch(iter([]))
    with pytest.raises(TypeError, match=r"of type object .* call model.initialize\(batch\)"):
        first_batch(object())


def test_the_initialising_switch_is_open_only_in_its_own_thread():
    from tfp_realnvp.bijectors.data_init import initialization_record, initializing

    def in_a_new_thread():
        seen = []
        thread = threading.Thread(target=lambda: seen.append(initialization_record()))
        thread.start()
        thread.join()
        return seen

    assert in_a_new_thread() == [None]  # a thread that never opened it
    with initializing() as record:
        assert initialization_record() is record == []
        with initializing() as inner:  # nested: its own record, then the outer one again
            assert initialization_record() is inner is not record
        assert initialization_record() is record
        assert in_a_new_thread() == [None]  # open here, closed there
    assert initialization_record() is None
