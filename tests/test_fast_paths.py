"""Performance II and III, checked by their causes (timings live in benchmarks/): XLA sees a
bounded set of batch sizes (in ``fit`` and ``evaluate``: one), ``fit`` runs several steps per
compiled call only when no callback watches single batches, and the bfloat16 path runs its
conditioners' matmuls in bfloat16 with weights cast once."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp._buckets import BUCKETS, bucket
from tfp_realnvp._execution import AUTO_STEPS
from tfp_realnvp._functions import own_function


def _model(dims=2, base=None, **compile_kwargs):
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(trn.real_nvp([dims], 2, [4]), base=base)
    for v in model.trainable_variables:  # a flow that acts: log-dets of a few nats
        v.assign(tf.random.normal(v.shape, stddev=0.5, seed=3))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), **compile_kwargs)
    return model


def test_buckets_cover_every_size_with_bounded_padding():
    assert len(BUCKETS) == 21 and BUCKETS[0] == 16 and BUCKETS[-1] == 16384
    for n in range(1, 16385, 7):
        assert n <= bucket(n) <= max(16, 1.5 * n)


def test_log_prob_compiles_a_bounded_number_of_sizes():
    model = _model()
    model.log_prob(np.zeros([1, 2], "float32"))
    fn = model._compiled_fns[("log_prob", None)]
    seen = []

    def recording(x):
        seen.append(int(x.shape[0]))
        return fn(x)

    model._compiled_fns[("log_prob", None)] = recording
    rng = np.random.default_rng(0)
    sizes = (1, 7, 16, 17, 23, 100, 1000, 20000)
    for n in sizes:
        x = rng.normal(size=(n, 2)).astype("float32")
        got = model.log_prob(x)
        want = model.distribution.log_prob(x)  # TFP's plain path, no padding
        assert got.shape == (n,)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # 20000 = 16384 + 3616, the rest padded to 4096; XLA compiles once per distinct shape.
    assert sorted(set(seen)) == [16, 24, 128, 1024, 4096, 16384]
    assert fn.experimental_get_tracing_count() == 1


def _standard_normal(z):
    return -0.5 * tf.reduce_sum(z**2, -1)


def _a_model_that_samples(precision=None):
    model = trn.FlowModel(trn.real_nvp([2], 1, [4]))
    model.log_prob(np.zeros([3, 2], "float32"), precision=precision)
    model.sample(3, seed=0, precision=precision)


# Each makes a new object and runs its compiled function(s) once.
ONE_TRACE_EACH = {
    "log_prob, sample": _a_model_that_samples,
    "bfloat16": lambda: _a_model_that_samples("bfloat16"),
    "fit_vi": lambda: trn.vi.fit_vi(
        trn.real_nvp([2], 1, [4]), _standard_normal, 2, sample_size=4, jit_compile=False,
        warn=False,
    ),
    "sample_neutra": lambda: trn.vi.sample_neutra(
        trn.real_nvp([2], 1, [4]), _standard_normal, 2, num_chains=1, num_burnin_steps=1,
        kind="hmc", jit_compile=False, event_shape=[2], num_leapfrog_steps=1,
    ),
    "the kit's compiled check": lambda: trn.testing.check_compiled_agreement(
        trn.real_nvp([2], 1, [4]), tf.zeros([3, 2]), 1, jit_compile=False
    ),
}  # fmt: skip


@pytest.mark.parametrize("site", ONE_TRACE_EACH)
def test_functions_that_each_trace_once_raise_no_retracing_warning(caplog, site):
    # TensorFlow counts traces per code object: every model's log_prob (every fit_vi's step,
    # ...) shares one, so the fifth model drew "5 out of the last 5 calls ... triggered
    # tf.function retracing" (in a cross-validation loop, say) where each traced its own once.
    with caplog.at_level("WARNING", logger="tensorflow"):
        for _ in range(5):  # TensorFlow warns from the fifth traced call in its last ten
            ONE_TRACE_EACH[site]()
    assert not [r.getMessage() for r in caplog.records if "retracing" in r.getMessage()]


def test_a_function_that_retraces_often_still_warns(caplog):
    f = own_function(lambda x: 2 * x)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for n in range(1, 7):  # a new shape each call
            f(tf.zeros([n]))
    assert [r for r in caplog.records if "triggered tf.function retracing" in r.getMessage()]


def _shapes_traced(model, monkeypatch) -> dict:
    """The input shapes ``model``'s train and test steps are traced for (XLA compiles once per
    shape): ``{"train": [...], "test": [...]}``."""
    shapes = {"train": [], "test": []}
    for kind in shapes:
        original = getattr(trn.FlowModel, f"{kind}_step")

        def recording(self, data, kind=kind, original=original):
            x = data["x"] if isinstance(data, dict) else tf.nest.flatten(data)[0]
            shapes[kind].append(tuple(x.shape))
            return original(self, data)

        monkeypatch.setattr(trn.FlowModel, f"{kind}_step", recording)
    return shapes


@pytest.mark.tf_keras  # Keras' batching and weighted means
def test_fit_and_evaluate_compile_one_batch_shape_and_count_only_the_data(monkeypatch):
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # the weights stay: losses comparable
    shapes = _shapes_traced(model, monkeypatch)
    x = np.random.default_rng(4).normal(size=(100, 2)).astype("float32")
    # 80 training rows in batches of 32, 32, 16; 20 held out in batches of 8, 8, 4.
    history = model.fit(
        x, epochs=2, batch_size=32, validation_split=0.2, validation_batch_size=8, verbose=0
    ).history
    assert set(shapes["train"]) == {(32, 2)} and set(shapes["test"]) == {(8, 2)}, shapes
    # The filled-up rows count for nothing: each loss is the mean over the rows Keras would use.
    nll = -model.log_prob(x).numpy()
    np.testing.assert_allclose(history["loss"], [nll[:80].mean()] * 2, rtol=1e-5)
    np.testing.assert_allclose(history["val_loss"], [nll[80:].mean()] * 2, rtol=1e-5)
    got = model.evaluate(x[:21], batch_size=8, verbose=0)[0]
    np.testing.assert_allclose(got, nll[:21].mean(), rtol=1e-5)
    assert set(shapes["test"]) == {(8, 2)}, shapes
    # evaluate reads the rows in order (fit shuffles them, as Keras does).
    for training, ordered in ((False, True), (True, False)):
        data, _ = model._one_shape(x[:21], None, {"batch_size": 8}, training=training)
        rows = np.concatenate([b["x"] for b in data])[:21]
        assert np.array_equal(rows, x[:21]) == ordered


def test_the_filled_up_rows_add_nothing_to_the_gradient():
    # 40 rows in batches of 32: the second batch holds 8 rows and 24 repeats of the last one.
    x = np.random.default_rng(5).normal(size=(40, 2)).astype("float32")
    model, reference = _model(), _model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for batch in (x[:32], x[32:]):  # plain SGD on the two batches as they are
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(reference.distribution.log_prob(batch))
        variables = reference.trainable_variables
        for v, g in zip(variables, tape.gradient(loss, variables), strict=True):
            v.assign_sub(0.1 * g)
    for a, b in zip(model.trainable_variables, reference.trainable_variables, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_conditional_fit_weighs_rows_by_their_sample_weight_and_takes_positional_arguments(
    monkeypatch,
):
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(trn.real_nvp([2], 2, [4], context_shape=[1]))
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    shapes = _shapes_traced(model, monkeypatch)
    rng = np.random.default_rng(6)
    x, c = rng.normal(size=(20, 2)).astype("float32"), rng.normal(size=(20, 1)).astype("float32")
    w = rng.uniform(0.5, 2.0, size=20).astype("float32")
    # fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data).
    history = model.fit(x, c, 8, 2, 0, None, 0.0, (x[:5], c[:5]), sample_weight=w).history
    assert len(history["loss"]) == 2
    nll = -model.log_prob(x, c).numpy()
    np.testing.assert_allclose(history["loss"][-1], np.sum(w * nll) / np.sum(w), rtol=1e-5)
    np.testing.assert_allclose(history["val_loss"][-1], nll[:5].mean(), rtol=1e-5)
    assert set(shapes["train"]) == {(8, 2)} and set(shapes["test"]) == {(5, 2)}, shapes
    with pytest.raises(TypeError, match="fit\\(\\) got multiple values for argument 'epochs'"):
        model.fit(x, c, 8, 2, epochs=3)


class _Batches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches, self.steps = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(batch)
        self.steps.append(int(np.asarray(self.model.steps_per_execution)))


class _Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_epoch_end(self, epoch, logs=None):
        self.steps.append(int(np.asarray(self.model.steps_per_execution)))


@pytest.mark.tf_keras  # Keras' steps_per_execution and batch callbacks
def test_fit_runs_several_steps_per_call_only_when_no_callback_watches_batches():
    x = np.random.default_rng(1).normal(size=(320, 2)).astype("float32")  # 10 batches of 32
    fast, watched, lambdas = _model(), _model(), _model()
    epochs = _Epochs()
    fast.fit(x, epochs=2, batch_size=32, verbose=0, shuffle=False, callbacks=[epochs])
    assert epochs.steps == [AUTO_STEPS, AUTO_STEPS]
    batches = _Batches()
    watched.fit(x, None, 32, 2, 0, [batches], shuffle=False)  # callbacks given by position
    assert batches.batches == list(range(10)) * 2 and set(batches.steps) == {1}
    seen = []
    hook = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    lambdas.fit(x, epochs=1, batch_size=32, verbose=0, callbacks=[hook])
    assert seen == list(range(10))
    # The same 20 steps either way (10 batches do not fill two executions of 8).
    for a, b in zip(fast.trainable_variables, watched.trainable_variables, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # compile()'s value outside fit, and the evaluation agrees with the step's.
    assert int(np.asarray(fast.steps_per_execution)) == 1
    np.testing.assert_allclose(
        fast.evaluate(x, batch_size=32, verbose=0)[0],
        -np.mean(fast.log_prob(x)),
        rtol=1e-4,
    )


@pytest.mark.tf_keras  # Keras' steps_per_epoch
def test_fit_runs_exactly_steps_per_epoch_on_endless_data():
    model, epochs = _model(), _Epochs()
    ds = tf.data.Dataset.from_tensor_slices(np.zeros([64, 2], "float32")).batch(8).repeat()
    model.fit(ds, epochs=2, steps_per_epoch=12, verbose=0, callbacks=[epochs])
    assert int(model.optimizer.iterations) == 24 and epochs.steps == [6, 6]  # 6 divides 12


@pytest.mark.tf_keras  # each Keras builds its optimizer apart
@pytest.mark.parametrize("base", [None, "student_t"])
def test_fit_traces_its_train_step_with_the_optimizer_already_built(monkeypatch, base):
    # Variables created during a tf.function's first trace make it trace again: Keras 3 builds
    # the optimizer inside the step's trace, which doubled the first call of fit; a learned
    # base that did not count as built kept fit from building the optimizer first.
    model, original, traces = _model(base=base), trn.FlowModel.train_step, []

    def recording(self, data):
        traces.append(len(self.optimizer.variables))
        return original(self, data)

    monkeypatch.setattr(trn.FlowModel, "train_step", recording)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    model.fit(x, batch_size=16, epochs=1, verbose=0, callbacks=[_Batches()])  # 1 step per call
    # Traced once, with Adam's two moments per weight already there.
    assert len(traces) == 1 and traces[0] >= 2 * len(model.trainable_variables)


def test_fit_keeps_an_explicit_steps_per_execution():
    model = _model(steps_per_execution=2)
    batches = _Batches()
    x = np.zeros([128, 2], "float32")
    model.fit(x, epochs=1, batch_size=32, verbose=0, callbacks=[batches])
    assert batches.batches == [1, 3] and set(batches.steps) == {2}


@pytest.mark.tf_keras  # Keras layers' kernels under a cast
def test_bfloat16_path_runs_bfloat16_matmuls_and_agrees_with_float32():
    model = _model(dims=4)
    x = np.random.default_rng(2).normal(size=(64, 4)).astype("float32")
    want_lp, want_s = model.log_prob(x), model.sample(64, seed=[1, 2])
    got_lp = model.log_prob(x, precision="bfloat16")
    got_s = model.sample(64, seed=[1, 2], precision="bfloat16")
    assert got_lp.dtype == tf.float32 and got_s.dtype == tf.float32
    assert np.mean(np.abs(want_lp - model.distribution.distribution.log_prob(x))) > 0.5
    # Stated tolerance: bfloat16 carries ~3 significant digits through two small couplings.
    np.testing.assert_allclose(got_lp, want_lp, atol=5e-2, rtol=2e-2)
    np.testing.assert_allclose(got_s, want_s, atol=5e-2, rtol=2e-2)
    assert not np.array_equal(got_lp, want_lp)  # it did run in another precision
    lowered = model._lowered("bfloat16")
    with lowered.active():
        ildj = model.bijector.inverse_log_det_jacobian(x, 1)
    assert ildj.dtype == tf.float32
    # The compiled graph multiplies in bfloat16 only.
    graph = model._compiled("forward", "bfloat16").get_concrete_function().graph
    matmuls = [op for op in graph.get_operations() if "MatMul" in op.type]
    assert matmuls and {op.get_attr("T") for op in matmuls} == {tf.bfloat16}


def test_bfloat16_weights_are_cast_once_and_again_after_training():
    model = _model(dims=4)
    x = np.random.default_rng(3).normal(size=(64, 4)).astype("float32")
    for _ in range(3):
        model.log_prob(x, precision="bfloat16")
        model.sample(5, precision="bfloat16")
    lowered = model._lowered("bfloat16")
    assert lowered.casts == 1
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    after = model.log_prob(x, precision="bfloat16")
    assert lowered.casts == 2
    np.testing.assert_allclose(after, model.log_prob(x), atol=5e-2, rtol=2e-2)
    traced = tf.function(lambda x: model.log_prob(x, precision="bfloat16"))(x)
    np.testing.assert_allclose(traced, after, rtol=1e-6)  # in the user's own tf.function
    with pytest.raises(ValueError, match="`precision` must be one of"):
        model.sample(3, precision="float16")


@pytest.mark.tf_keras  # each Keras keeps a model's dtype policy its own way
def test_xla_stays_off_for_bfloat16_on_a_cpu_unless_asked_for(monkeypatch):
    # On CPU, oneDNN's bfloat16 matmuls beat XLA's (benchmarks/bf16_fit.py): compile()'s
    # "auto" leaves XLA off under a mixed_bfloat16 policy there, and on with a GPU or float32.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed, forced = _model(), _model(jit_compile=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.jit_compile is False and mixed._eval_jit is False
    assert forced.jit_compile is True and forced._eval_jit is True
    assert _model().jit_compile is True
    real = tf.config.list_logical_devices
    monkeypatch.setattr(
        tf.config,
        "list_logical_devices",
        lambda kind=None: ["GPU:0"] if kind == "GPU" else real(kind),
    )
    mixed.compile(optimizer=keras.optimizers.Adam(1e-2))
    assert mixed.jit_compile is True
    # Without XLA, it trains.
    monkeypatch.undo()
    mixed.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    assert np.isfinite(mixed.fit(x, epochs=1, batch_size=32, verbose=0).history["loss"][0])
