"""export_saved_model: signatures, and serving in a process without tfp_realnvp or TFP."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras

SERVE = textwrap.dedent(
    """
    import json, sys
    sys.modules["tensorflow_probability"] = None  # any import of these now fails
    sys.modules["tfp_realnvp"] = None
    import numpy as np, tensorflow as tf
    x = tf.constant(np.load(sys.argv[1]))
    names = {}
    for path, out_file, conditional in zip(*[iter(sys.argv[2:])] * 3):
        served = tf.saved_model.load(path)
        kw = {"context": tf.ones([len(x), 2])} if conditional == "1" else {}
        one = {"context": tf.ones([1, 2])} if conditional == "1" else {}
        sig = served.signatures
        np.savez(
            out_file,
            log_prob=sig["log_prob"](x=x, **kw)["log_prob"].numpy(),
            default=sig["serving_default"](x=x, **kw)["log_prob"].numpy(),
            samples=sig["sample"](count=tf.constant(6), seed=tf.constant([1, 2]), **one)["samples"],
            z=sig["inverse"](x=x, **kw)["z"].numpy(),
            x_back=sig["forward"](z=sig["inverse"](x=x, **kw)["z"], **kw)["x"].numpy(),
        )
        names[path] = sorted(sig)
    print(json.dumps(names))
    """
)


def _trained_model(context_shape=None):
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([3], 3, [16], permutation="lu", context_shape=context_shape)
    model = trn.FlowModel(flow)
    for v in model.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.2))
    return model


@pytest.fixture(scope="module")
def served_without_tfp(tmp_path_factory):
    """An unconditional and a conditional model, exported, and served by one process in which
    TFP and tfp_realnvp cannot be imported: ``x`` and, per case, the model, its SavedModel,
    what the process returned and the signatures it found."""
    tmp = tmp_path_factory.mktemp("served")
    x = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    np.save(tmp / "x.npy", x)
    cases, args = {}, [str(tmp / "x.npy")]
    for conditional in (False, True):
        model = _trained_model([2] if conditional else None)
        path = trn.export_saved_model(model, tmp / f"served_{conditional}")
        cases[conditional] = (model, path, tmp / f"out_{conditional}.npz")
        args += [str(path), str(cases[conditional][2]), "1" if conditional else "0"]
    run = subprocess.run([sys.executable, "-c", SERVE, *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    names = json.loads(run.stdout.strip().splitlines()[-1])
    return x, {c: (m, p, np.load(o), names[str(p)]) for c, (m, p, o) in cases.items()}


@pytest.mark.slow  # a process that imports TensorFlow and serves two exports
@pytest.mark.parametrize("conditional", [False, True])
def test_saved_model_serves_without_tfp_and_matches(served_without_tfp, conditional):
    x, cases = served_without_tfp
    model, path, out, names = cases[conditional]
    assert names == ["forward", "inverse", "log_prob", "sample", "serving_default"]

    # Identical to the same SavedModel run here, where TFP is importable ...
    loaded = tf.saved_model.load(str(path))
    here = loaded.signatures
    kw = {"context": tf.ones([5, 2])} if conditional else {}
    one = {"context": tf.ones([1, 2])} if conditional else {}
    np.testing.assert_array_equal(out["log_prob"], here["log_prob"](x=x, **kw)["log_prob"])
    # The functions are attributes too, callable with positional arguments.
    by_position = loaded.log_prob(tf.constant(x), *kw.values())["log_prob"]
    np.testing.assert_array_equal(out["log_prob"], by_position)
    np.testing.assert_array_equal(out["default"], out["log_prob"])
    samples = here["sample"](count=tf.constant(6), seed=tf.constant([1, 2]), **one)["samples"]
    np.testing.assert_array_equal(out["samples"], samples)
    # ... and to the Keras model it came from.
    context = np.ones([5, 2], "float32") if conditional else None
    np.testing.assert_allclose(out["log_prob"], model.log_prob(x, context), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["x_back"], x, atol=1e-5)
    seeded = model.sample(
        6, seed=[1, 2], context=np.ones([6, 2], "float32") if conditional else None
    )
    np.testing.assert_allclose(out["samples"], seeded, rtol=1e-5, atol=1e-5)


@pytest.mark.tf_keras  # an export captures Keras variables (and verifies itself)
def test_export_traces_each_signature_once(tmp_path, flow_traces):
    # tf.saved_model.save traces a tf.function attribute again in its own context: the
    # module must hold the traced functions, or every export pays for the flow twice.
    trn.export_saved_model(_trained_model(), tmp_path / "m")
    assert len(flow_traces) == 4  # log_prob (also serving_default), sample, forward, inverse


def test_export_refuses_to_overwrite_and_replaces_whole(tmp_path):
    model = _trained_model()
    path = trn.export_saved_model(model, tmp_path / "m")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        trn.export_saved_model(model, path)
    (path / "stale.txt").write_text("from an older export")
    trn.export_saved_model(model, path, overwrite=True)
    assert not (path / "stale.txt").exists()
    assert (path / "saved_model.pb").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary leftovers


def test_an_export_that_disagrees_is_refused_and_the_old_one_kept(tmp_path, monkeypatch):
    # An inverse whose log-det has the wrong sign: the SavedModel must not be published.
    real = trn.export._serving_module

    def negated_inverse_log_det(model):
        module, signatures = real(model)
        inverse = module.inverse

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="x")])
        def wrong(x):
            out = inverse(x=x)
            return {"z": out["z"], "log_det_jacobian": -out["log_det_jacobian"]}

        module.inverse = signatures["inverse"] = wrong.get_concrete_function()
        return module, signatures

    monkeypatch.setattr(trn.export, "_serving_module", negated_inverse_log_det)
    path = tmp_path / "served"
    path.mkdir()
    (path / "mine.txt").write_text("the user's previous export")
    with pytest.raises(trn.verification.ExportMismatchError) as caught:
        trn.export_saved_model(_trained_model(), path, overwrite=True)
    # It names the folder asked for, not the hidden one the export was staged in.
    assert str(caught.value).startswith(
        f"export_saved_model {path}: the exported inverse log_det_jacobian differs from the "
        "model by up to"
    )
    assert [p.name for p in path.iterdir()] == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["served"]
    # The tolerances given are the ones used: the negated log-det is off by twice its size.
    trn.export_saved_model(_trained_model(), path, overwrite=True, rtol=2.5)
    trn.export_saved_model(_trained_model(), path, overwrite=True, atol=1e3)


def test_a_float64_flow_serves_float64(tmp_path):
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(trn.real_nvp([2], 2, [4], dtype=tf.float64))
    for v in model.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.2, dtype=v.dtype))
    path = trn.export_saved_model(model, tmp_path / "m")
    served = tf.saved_model.load(str(path)).signatures["log_prob"]
    assert served.structured_input_signature[1]["x"].dtype == tf.float64
    x = np.random.default_rng(5).normal(size=(4, 2))
    np.testing.assert_allclose(served(x=tf.constant(x))["log_prob"], model.log_prob(x), rtol=1e-12)


def test_forward_and_inverse_log_dets_are_the_jacobians(tmp_path):
    # Against autodiff, not the model's own log-det code: an identity pair with negated
    # log-dets would agree with itself.
    model = _trained_model()
    served = tf.saved_model.load(str(trn.export_saved_model(model, tmp_path / "m"))).signatures
    z = tf.constant(np.random.default_rng(4).normal(size=(4, 3)), tf.float32)
    out = served["forward"](z=z)
    back = served["inverse"](x=out["x"])
    with tf.GradientTape() as tape:
        tape.watch(z)
        x = model.bijector.forward(z)
    jacobian = tf.cast(tape.batch_jacobian(x, z), tf.float64)
    _, want = np.linalg.slogdet(jacobian.numpy())
    np.testing.assert_allclose(out["x"], x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["log_det_jacobian"], want, atol=1e-4)
    np.testing.assert_allclose(back["log_det_jacobian"], -want, atol=1e-4)
    np.testing.assert_allclose(back["z"], z, atol=1e-4)


def test_probes_avoid_the_edge_of_a_bounded_domain(tmp_path):
    # A trained digits model's samples can land exactly on 0 or K, where the inverse is
    # infinite: the self-check must probe inside the domain, not refuse a sound export.
    tfb = tfp.bijectors
    steep = trn.FlowModel(tfb.Chain([tfb.Scale(17.0), tfb.Sigmoid(), tfb.Scale(30.0)]), [2])
    batches = trn.verification.probes(steep)
    assert [len(p.z) for p in batches] == list(trn.verification.PROBE_SIZES)
    edge = [np.isin(p.drawn_x, (0.0, 17.0)).any() for p in batches]
    assert any(edge)  # the draws do reach the edge ...
    for p in batches:  # ... and the probes do not
        for value in (p.log_prob, p.inverse_z, p.inverse_log_det, p.forward_log_det):
            assert np.all(np.isfinite(value))
    trn.export_saved_model(steep, tmp_path / "steep")


@pytest.mark.parametrize("conditional", [False, True])
def test_every_signature_checks_its_inputs_and_says_what_it_expects(tmp_path, conditional):
    # A wrong width failed deep in the graph ("Incompatible shapes: [3,14] vs. [13]").
    model = _trained_model([2] if conditional else None)
    sig = tf.saved_model.load(str(trn.export_saved_model(model, tmp_path / "m"))).signatures
    good = {"context": tf.ones([4, 2])} if conditional else {}
    wrong = {
        "log_prob": ("x", "log_prob: `x` must have shape [N, 3]; got shape] [4 5]"),
        "forward": ("z", "forward: `z` must have shape [N, 3]; got shape] [4 5]"),
        "inverse": ("x", "inverse: `x` must have shape [N, 3]; got shape] [4 5]"),
    }
    for name, (arg, message) in wrong.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
            sig[name](**{arg: tf.zeros([4, 5])}, **good)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"must have shape \[N, 3\]"):
            sig[name](**{arg: tf.zeros([3])}, **good)  # a rank the declared one folded away
    # A shape of any rank is shown whole.
    message = "log_prob: `x` must have shape [N, 3]; got shape] [2 3 4 5 1]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        sig["log_prob"](x=tf.zeros([2, 3, 4, 5, 1]), **good)
    seed = tf.constant([0, 1])
    one = {"context": tf.ones([1, 2])} if conditional else {}
    message = "sample: `count` must be >= 0; got] [-1]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        sig["sample"](count=tf.constant(-1), seed=seed, **one)
    assert sig["sample"](count=tf.constant(0), seed=seed, **one)["samples"].shape == (0, 3)
    message = "sample: `count` must be a scalar; got shape] [1]"  # was "In[0] should be a scalar"
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        sig["sample"](count=tf.constant([2]), seed=seed, **one)
    message = "sample: `seed` must have shape [2]; got shape] [3]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
        sig["sample"](count=tf.constant(2), seed=tf.constant([0, 1, 2]), **one)
    if conditional:
        for name, arg in (("log_prob", "x"), ("forward", "z"), ("inverse", "x")):
            message = f"{name}: `context` must have shape [N, 2]; got shape] [4 3]"
            with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
                sig[name](**{arg: tf.zeros([4, 3])}, context=tf.ones([4, 3]))
        message = "sample: `context` must have shape [N, 2]; got shape] [1 3]"
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
            sig["sample"](count=tf.constant(3), seed=seed, context=tf.ones([1, 3]))
        message = "sample: `context` must have 1 row or `count` rows; got] [4]"
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
            sig["sample"](count=tf.constant(3), seed=seed, **good)


def test_the_self_check_names_each_output_that_disagrees(tmp_path, monkeypatch):
    """`_verify` run on a SavedModel whose signatures are the real ones with one output nudged
    at a time: each is caught, under its own name."""
    model = _trained_model()
    path = trn.export_saved_model(model, tmp_path / "m")
    real = tf.saved_model.load(str(path)).signatures
    load = tf.saved_model.load

    class Nudged:
        def __init__(self, signature: str, output: str):
            self.signatures = {
                name: self._nudge(fn, output) if name == signature else fn
                for name, fn in real.items()
            }

        @staticmethod
        def _nudge(fn, output):
            def nudged(**inputs):
                out = dict(fn(**inputs))
                out[output] = out[output] + 0.1
                return out

            return nudged

    cases = [
        ("log_prob", "log_prob", "log_prob log_prob"),
        ("serving_default", "log_prob", "serving_default log_prob"),
        ("sample", "samples", "sample"),
        ("forward", "x", "forward x"),
        ("forward", "log_det_jacobian", "forward log_det_jacobian"),
        ("inverse", "z", "inverse z"),
        ("inverse", "log_det_jacobian", "inverse log_det_jacobian"),
    ]
    for signature, output, label in cases:
        monkeypatch.setattr(tf.saved_model, "load", lambda _, s=signature, o=output: Nudged(s, o))
        with pytest.raises(trn.verification.ExportMismatchError) as caught:
            trn.export._verify(path, model, trn.verification.RTOL, trn.verification.ATOL, path)
        assert str(caught.value).startswith(
            f"export_saved_model {path}: the exported {label} differs from the model by up to 0.1"
        ), label
    monkeypatch.setattr(tf.saved_model, "load", load)
    trn.export._verify(path, model, trn.verification.RTOL, trn.verification.ATOL, path)  # as it is
