"""FlowModel: Keras training, metrics, saving three ways, conditional flows, strategies."""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras, testing


def _data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 2)) * [1.0, 0.3] + [1.0, 2.0]).astype("float32")


def _model(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    flow = trn.real_nvp([2], num_couplings=4, hidden_units=[16], **kwargs)
    model = trn.FlowModel(flow)
    # XLA compiles per batch shape, which costs more than it saves in these short runs
    # (tests/test_performance_contract.py covers the XLA default).
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    return model


@pytest.mark.tf_keras  # Keras' fit and its logs
def test_fit_without_targets_lowers_nll_and_reports_bits_per_dim():
    model, x = _model(), _data()
    before = -float(np.mean(model.log_prob(x)))
    history = model.fit(x, epochs=4, batch_size=64, validation_split=0.25, verbose=0).history
    assert set(history) == {"loss", "bits_per_dim", "val_loss", "val_bits_per_dim"}
    after = -float(np.mean(model.log_prob(x)))
    assert after < before - 0.5
    np.testing.assert_allclose(
        history["bits_per_dim"], np.array(history["loss"]) / (2 * np.log(2)), rtol=1e-5
    )


@pytest.mark.tf_keras  # Keras' loss reduction
def test_loss_is_the_mean_nll_in_nats():
    model, x = _model(), _data(128)
    result = model.evaluate(x, batch_size=128, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["loss"], -np.mean(model.log_prob(x)), rtol=1e-5)


@pytest.mark.tf_keras  # a dataset through Keras' fit; variable tracking
def test_fit_on_dataset_and_distribution_shares_variables():
    model = _model()
    ds = tf.data.Dataset.from_tensor_slices(_data()).batch(64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(ds, epochs=2, verbose=0)
    # Keras 3 warned that its default shuffle=True "will be ignored" for any dataset.
    assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]
    x = _data(8, seed=1)
    np.testing.assert_allclose(model.distribution.log_prob(x), model.log_prob(x), rtol=1e-6)
    model_vars = {v.ref() for v in model.distribution.trainable_variables}
    assert len(model_vars) == len(model.trainable_variables) > 0


def test_sample_is_seeded_and_shaped():
    model = _model()
    a, b = model.sample(5, seed=3), model.sample(5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 2)
    assert not np.allclose(model.sample(5, seed=4), a)
    with pytest.raises(ValueError, match="`n` must be a non-negative integer"):
        model.sample(-1)


@pytest.mark.tf_keras  # Keras' sample weights
def test_sample_weights_weight_the_loss_of_a_conditional_model():
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(trn.real_nvp([2], 2, [8], context_shape=[1]))
    model.compile(optimizer="adam", jit_compile=False)
    x, c = _data(64), np.ones([64, 1], "float32")
    w = np.zeros(64, "float32")
    w[:8] = 1.0
    got = model.evaluate(x, c, sample_weight=w, batch_size=64, verbose=0, return_dict=True)
    np.testing.assert_allclose(got["loss"], -np.mean(model.log_prob(x[:8], c[:8])), rtol=1e-5)


def test_sample_weights_keras_would_drop_are_refused():
    with pytest.raises(ValueError, match=r"Keras drops sample weights .* resampling"):
        _model().fit(_data(64), sample_weight=np.ones(64), verbose=0)
    conditional = trn.FlowModel(trn.real_nvp([2], 2, [8], context_shape=[1]))
    conditional.compile(optimizer="adam", jit_compile=False)
    x, c = _data(64), np.ones([64, 1], "float32")
    with pytest.raises(ValueError, match=r"pass the context as y"):
        conditional.evaluate((x, c), sample_weight=np.ones(64), verbose=0)


def test_unconditional_model_refuses_targets():
    model = _model()
    with pytest.raises(ValueError, match="without targets"):
        model.fit(_data(64), np.zeros(64), epochs=1, verbose=0)


@pytest.mark.tf_keras  # Keras' (x, y) unpacking
def test_conditional_model_fits_and_samples():
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([2], num_couplings=4, hidden_units=[32], context_shape=[1])
    model = trn.FlowModel(flow)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    rng = np.random.default_rng(0)
    c = rng.choice([-2.0, 2.0], size=(1024, 1)).astype("float32")
    x = (rng.normal(size=(1024, 2)) * 0.3 + c).astype("float32")  # mean follows the context
    history = model.fit((x, c), epochs=8, batch_size=128, verbose=0, validation_data=(x, c))
    assert "val_loss" in history.history
    for value in (-2.0, 2.0):
        s = model.sample(500, seed=1, context=np.full([500, 1], value, "float32"))
        np.testing.assert_allclose(np.mean(s, 0), [value, value], atol=0.3)
    with pytest.raises(ValueError, match="is conditional"):
        model.log_prob(x)


def test_model_rejects_wrong_dtype_tensor():
    with pytest.raises(
        TypeError, match=r"`x` has dtype float64, but this model computes in float32"
    ):
        _model().log_prob(tf.zeros([2, 2], tf.float64))


@pytest.mark.tf_keras  # Keras' callbacks
def test_callbacks_early_stopping_checkpoint_tensorboard(tmp_path):
    model, x = _model(), _data()
    ckpt = str(tmp_path / "best.weights.h5")
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(ckpt, save_weights_only=True, save_best_only=True),
        keras.callbacks.TensorBoard(str(tmp_path / "tb")),
    ]
    x_val = x[:64] + 3.0  # shifted: validation NLL gets worse as training fits x
    model.fit(x, validation_data=x_val, epochs=30, batch_size=64, callbacks=callbacks, verbose=0)
    assert model.stop_training  # early stopping fired
    assert (tmp_path / "best.weights.h5").exists()
    assert any((tmp_path / "tb").rglob("*tfevents*"))
    reloaded = _model(seed=1)
    reloaded.load_weights(ckpt)
    np.testing.assert_allclose(reloaded.log_prob(x[:8]), model.log_prob(x[:8]), rtol=1e-6)


@pytest.mark.tf_keras  # the .keras format
def test_keras_format_round_trip_is_exact(tmp_path):
    model, x = _model(permutation="lu", scale="tanh"), _data()
    model.fit(x, epochs=2, batch_size=64, verbose=0)
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    assert isinstance(loaded, trn.FlowModel)
    np.testing.assert_array_equal(loaded.log_prob(x[:16]), model.log_prob(x[:16]))
    np.testing.assert_array_equal(loaded.sample(4, seed=2), model.sample(4, seed=2))
    # and it trains on from there: the optimizer's state came along, so the next epoch is the
    # one the original model would have run
    again = loaded.fit(x, epochs=1, batch_size=64, shuffle=False, verbose=0).history["loss"]
    want = model.fit(x, epochs=1, batch_size=64, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(again, want, rtol=1e-6)
    np.testing.assert_allclose(loaded.log_prob(x[:16]), model.log_prob(x[:16]), rtol=1e-5)


@pytest.mark.tf_keras  # the .keras format
def test_keras_format_refuses_unserialisable_flow_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "flow.keras"
    path.write_bytes(b"the user's earlier file")
    model = trn.FlowModel(tfp.bijectors.GeneralizedPareto(0.0, 1.0, 0.5), event_shape=[2])
    with pytest.raises(ValueError, match=r"cannot save bijector .* of type GeneralizedPareto"):
        model.save(str(path))
    assert path.read_bytes() == b"the user's earlier file"


def _losses(model, x, epochs):
    return model.fit(x, epochs=epochs, batch_size=64, shuffle=False, verbose=0).history["loss"]


@pytest.fixture(scope="module")
def straight():
    """Four epochs without interruption: the trajectory both resume tests must continue."""
    return _losses(_model(), _data(), 4)


@pytest.mark.tf_keras  # the optimizer's variables
def test_tf_checkpoint_resume_continues_the_same_trajectory(tmp_path, straight):
    x = _data()
    first = _model()
    head = _losses(first, x, 2)
    tf.train.Checkpoint(model=first, optimizer=first.optimizer).write(str(tmp_path / "ck"))
    resumed = _model(seed=7)  # different initial weights, all overwritten by the restore
    resumed.optimizer.build(resumed.trainable_variables)
    status = tf.train.Checkpoint(model=resumed, optimizer=resumed.optimizer).read(
        str(tmp_path / "ck")
    )
    status.assert_existing_objects_matched()
    tail = _losses(resumed, x, 2)
    np.testing.assert_allclose(head + tail, straight, rtol=1e-5)


@pytest.mark.tf_keras  # Keras' ModelCheckpoint
def test_keras_model_checkpoint_resume_continues_the_same_trajectory(tmp_path, straight):
    x = _data()
    first = _model()
    path = str(tmp_path / "full.keras")
    first.fit(
        x,
        epochs=2,
        batch_size=64,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.ModelCheckpoint(path)],
    )
    resumed = keras.models.load_model(path)
    tail = _losses(resumed, x, 2)
    np.testing.assert_allclose(tail, straight[2:], rtol=1e-5)


STRATEGY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf, tensorflow_probability as tfp
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2)
    import tfp_realnvp as trn
    from tfp_realnvp import keras

    def run(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            # ActNorm: initialised by fit from its first batch, before the replicated steps
            flow = tfp.bijectors.Chain([trn.ActNorm([2]), trn.real_nvp([2], 3, [16])])
            model = trn.FlowModel(flow)
            # XLA off for both: the mirror of logical CPUs goes without it anyway (xla_allowed)
            model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
        x = np.random.default_rng(0).normal(3.0, 2.0, size=(256, 2)).astype("float32")
        h = model.fit(x, epochs=3, batch_size=64, shuffle=False, verbose=0).history["loss"]
        assert flow.bijectors[0].is_initialized
        # Every replica updates the mirrored variables alike, so one that had started elsewhere
        # would still differ. (tf-keras' metric totals are per-replica by design: on-read.)
        on_read = tf.VariableSynchronization.ON_READ
        mirrored = [v for v in model.variables if getattr(v, "synchronization", 0) != on_read]
        assert len(mirrored) > len(model.trainable_variables)  # the weights and ActNorm's flag
        for v in mirrored:
            copies = strategy.experimental_local_results(v)
            assert all(np.array_equal(c.numpy(), copies[0].numpy()) for c in copies), v.name
        return h, model.log_prob(x[:8]).numpy().tolist()

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    print(json.dumps({"one": run(tf.distribute.get_strategy()), "two": run(mirrored)}))
    """
)


@pytest.mark.slow  # a process that starts TensorFlow with two logical devices
def test_mirrored_strategy_matches_one_device():
    out = subprocess.run(
        [sys.executable, "-c", STRATEGY_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["two"][0], result["one"][0], rtol=1e-4)
    np.testing.assert_allclose(result["two"][1], result["one"][1], rtol=1e-4, atol=1e-4)


class _HostConditioner(keras.layers.Layer):
    """A shift-only conditioner computed by NumPy on the host: an op XLA cannot compile."""

    def call(self, x1):
        shift = tf.numpy_function(lambda a: 0.5 * np.tanh(a), [x1], x1.dtype)
        return tf.ensure_shape(shift, x1.shape)


@pytest.mark.tf_keras  # compile()'s arguments
def test_jit_compile_false_reaches_log_prob_and_sample():
    coupling = trn.AffineCoupling(_HostConditioner(), num_masked=1, event_shape=[2], scale="none")
    x = np.array([[0.3, -1.0], [2.0, 0.5]], np.float32)
    z = x + np.array([0.0, 1.0], np.float32) * 0.5 * np.tanh(x[:, :1])  # inverse: z2 = x2 + t
    want = tfp.distributions.MultivariateNormalDiag(tf.zeros(2)).log_prob(z)
    model = trn.FlowModel(coupling)
    model.compile(optimizer="adam")  # XLA on: the host op cannot run there
    with pytest.raises(tf.errors.InvalidArgumentError, match="PyFunc"):
        model.log_prob(x)
    model.compile(optimizer="adam", jit_compile=False)
    np.testing.assert_allclose(model.log_prob(x), want, rtol=1e-6)
    assert model.sample(4, seed=1).shape == (4, 2)


class _Recording(tfp.bijectors.Bijector):
    """The identity, recording every batch its ``inverse`` gets (the data side of the flow)."""

    def __init__(self, seen):
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, name="recording")
        self.seen = seen

    def _forward(self, z):
        return z

    def _inverse(self, x):
        def record(a):
            self.seen.append(a.copy())
            return a

        return tf.ensure_shape(tf.numpy_function(record, [x], x.dtype), x.shape)

    def _forward_log_det_jacobian(self, z):
        return tf.zeros([], z.dtype)


def test_dequantize_draws_fresh_noise_for_every_batch():
    seen = []
    keras.utils.set_random_seed(0)
    flow = tfp.bijectors.Chain([_Recording(seen), trn.real_nvp([2], 2, [8])])
    model = trn.FlowModel(flow, event_shape=[2], dequantize=True)
    model.compile(optimizer="adam", jit_compile=False)
    levels = np.tile([[3.0, 7.0]], (32, 1)).astype("float32")  # every batch the same levels
    model.fit(levels, epochs=2, batch_size=8, shuffle=False, verbose=0, initialize=False)
    model.evaluate(levels, batch_size=8, verbose=0)
    noise = np.stack(seen[-12:]) - levels[:8]  # 4 batches in each of 2 epochs, 4 evaluated
    assert len(seen) >= 12 and noise.shape == (12, 8, 2)
    trained, evaluated = noise[:8], noise[8:]
    assert len(np.unique(trained)) == trained.size  # no batch or epoch repeats a draw
    assert len(np.unique(evaluated)) == evaluated.size
    assert noise.min() >= 0.0 and noise.max() < 1.0 and 0.35 < noise.mean() < 0.65
    # Known, documented in FlowModel: evaluation, a separately compiled step, replays the first
    # epoch's draws under a global seed; this pins it so that changing it is noticed.
    np.testing.assert_array_equal(evaluated, trained[:4])


@pytest.mark.tf_keras  # Keras' metrics
def test_metrics_are_the_mean_over_examples_for_any_dataset():
    """A short last batch counts for the examples it holds, and a dataset of unknown length
    (which ends in a step whose input ran out) reports the same loss as an array."""
    model = trn.FlowModel(trn.real_nvp([2], 1, [4]))
    model.compile(jit_compile=False)
    testing.perturb_variables(model.bijector, seed=1)
    x = np.random.default_rng(0).normal(size=(10, 2)).astype("float32")
    want = float(-np.mean(model.log_prob(x)))
    unknown = tf.data.Dataset.from_generator(
        lambda: iter(x), output_signature=tf.TensorSpec([2], tf.float32)
    ).batch(4)
    assert unknown.cardinality() == tf.data.UNKNOWN_CARDINALITY
    for data, kwargs in [(x, {"batch_size": 4}), (unknown, {})]:
        got = model.evaluate(data, verbose=0, return_dict=True, **kwargs)["loss"]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_a_tfp_template_flow_is_refused_with_what_to_use_instead():
    # TFP's template makes its variables on the first call, where neither Keras nor TFP sees
    # them: fit ended in "not enough values to unpack (expected 2, got 0)".
    tfb = tfp.bijectors
    template = tfb.real_nvp_default_template([8])
    flow = tfb.RealNVP(num_masked=2, shift_and_log_scale_fn=template)
    with pytest.raises(TypeError, match=r"^FlowModel: RealNVP 'real_nvp' .* TF1 template .*"):
        trn.FlowModel(flow, event_shape=[4])
    with pytest.raises(TypeError, match=r"tfp_realnvp.real_nvp\(...\)"):
        trn.flow_distribution(tfb.Chain([tfb.Shift(1.0), flow]), [4])


def test_a_context_standardisation_is_applied_everywhere_and_saved(tmp_path):
    flow = trn.real_nvp([2], 2, [8], context_shape=[2])
    center, scale = np.array([100.0, -3.0]), np.array([50.0, 0.5])
    model = trn.FlowModel(flow, context_center=center, context_scale=scale)
    testing.perturb_variables(model.bijector)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2)).astype("float32")
    context = (center + scale * rng.normal(size=(5, 2))).astype("float32")
    standardized = ((context - center) / scale).astype("float32")
    routed = trn.conditional_kwargs(flow, tf.constant(standardized))
    want = model.distribution.log_prob(x, bijector_kwargs=routed).numpy()
    np.testing.assert_allclose(model.log_prob(x, context), want, rtol=1e-5, atol=1e-5)
    model.save(str(tmp_path / "m.keras"))
    loaded = trn.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.log_prob(x, context), want, rtol=1e-5, atol=1e-5)
    served = tf.saved_model.load(str(trn.export_saved_model(model, tmp_path / "s")))
    got = served.signatures["log_prob"](x=tf.constant(x), context=tf.constant(context))
    np.testing.assert_allclose(got["log_prob"], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"`context_scale` must be positive"):
        trn.FlowModel(trn.real_nvp([2], 2, [8], context_shape=[2]), context_scale=[1.0, 0.0])
