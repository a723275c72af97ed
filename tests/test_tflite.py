"""export_tflite: a TensorFlow Lite file whose two signatures match the Keras model."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.bijectors.base import FlowBijector

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")

# float32 rounding through a different runtime's kernels; seen: 4e-6 on log-densities near -25
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _perturbed(flow, **kwargs) -> trn.FlowModel:
    """A model whose couplings are not the identity they start as: a trained model's stand-in."""
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(flow, **kwargs)
    for v in model.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.2))
    return model


def _runners(path):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    return interpreter.get_signature_list(), {
        name: interpreter.get_signature_runner(name) for name in trn.tflite.TFLITE_SIGNATURES
    }


@pytest.mark.tf_keras  # the converter captures Keras variables
def test_vector_flow_with_lu_and_context_matches_keras(tmp_path):
    model = _perturbed(trn.real_nvp([3], 3, [8], permutation="lu", context_shape=[2]))
    path = trn.export_tflite(model, tmp_path / "flow.tflite")
    signatures, run = _runners(path)
    assert {k: sorted(v["inputs"]) for k, v in signatures.items()} == {
        "log_prob": ["context", "x"],
        "sample": ["context", "z"],
    }
    shapes = {  # the declared input shapes: any batch size, the event and context shapes
        (name, key): list(detail["shape_signature"])
        for name, runner in run.items()
        for key, detail in runner.get_input_details().items()
    }
    assert shapes == {
        ("log_prob", "x"): [-1, 3],
        ("log_prob", "context"): [-1, 2],
        ("sample", "z"): [-1, 3],
        ("sample", "context"): [-1, 2],
    }
    rng = np.random.default_rng(1)
    x, z = rng.normal(size=(2, 5, 3)).astype("float32")
    context = rng.normal(size=(5, 2)).astype("float32")
    np.testing.assert_allclose(
        run["log_prob"](x=x, context=context)["log_prob"],
        model.log_prob(x, context),
        **TOLERANCE,
    )
    samples = run["sample"](z=z, context=context)["samples"]
    np.testing.assert_allclose(samples, model._forward(z, context), **TOLERANCE)
    # Any batch size: the runner resizes its inputs.
    two = run["log_prob"](x=x[:2], context=context[:2])["log_prob"]
    np.testing.assert_allclose(two, model.log_prob(x[:2], context[:2]), **TOLERANCE)


@pytest.mark.parametrize(
    "glow",
    [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.tf_keras])],
    ids=["realnvp_preprocessed", "glow"],
)
def test_multiscale_image_flow_matches_keras(tmp_path, glow):
    flow = trn.multiscale_real_nvp(
        [4, 4, 1], 2, couplings_per_stage=1, final_couplings=1, hidden_channels=4, num_blocks=1,
        glow=glow,
    )  # fmt: skip
    if not glow:  # RealNVP's dequantisation and logit in front as well
        flow = trn.preprocessed_image_flow(flow, num_levels=17)
    model = _perturbed(flow)
    path = trn.export_tflite(model, tmp_path / "image.tflite")
    _, run = _runners(path)
    rng = np.random.default_rng(2)
    x = rng.uniform(0.0, 17.0, size=(4, 4, 4, 1)).astype("float32")
    log_prob = run["log_prob"](x=x)["log_prob"]
    assert log_prob.shape == (4,)
    np.testing.assert_allclose(log_prob, model.log_prob(x), **TOLERANCE)
    z = rng.normal(size=(4, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(run["sample"](z=z)["samples"], model._forward(z), **TOLERANCE)


class _Unsupported(FlowBijector):
    """The identity, computed with an op TensorFlow Lite has no built-in kernel for: a
    triangular solve (``x = L z`` with ``L = I``), and with ``digamma`` the digamma function
    too."""

    def __init__(self, name: str, digamma: bool = False):
        self.digamma = digamma
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, name=name)

    def _forward(self, z):
        return z

    def _inverse(self, x):
        if self.digamma:  # and the solve as well: two ops of one bijector
            x = x + 0.0 * tf.math.digamma(tf.abs(x) + 1.0)
        return tf.transpose(tf.linalg.triangular_solve(tf.eye(3), tf.transpose(x)))

    def _inverse_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:-1])


def test_each_signature_is_traced_once_and_the_self_check_is_quiet(tmp_path, flow_traces):
    # As for export_saved_model: the SavedModel handed to the converter holds traced functions.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trn.export_tflite(_perturbed(trn.real_nvp([3], 2, [8])), tmp_path / "flow.tflite")
    assert len(flow_traces) == 2  # log_prob (one example, vectorised) and sample
    # The interpreter it checks the file with is deprecated in TF 2.21: not the user's concern.
    assert not [w for w in caught if "Interpreter is deprecated" in str(w.message)]


def test_unsupported_bijectors_are_named_with_their_ops_and_nothing_is_written(tmp_path):
    # The LU permutation's W^-1 is a triangular solve too, but of weights only: it folds into a
    # constant and is not named. Each culprit is the innermost bijector around the op (not the
    # chains holding it), by its own name (a name ending in _1 too), in the flow's order.
    lu_flow = trn.real_nvp([3], 2, [4], permutation="lu")
    inner = tfp.bijectors.Chain([_Unsupported("solve_1")], name="inner")
    flow = tfp.bijectors.Chain([inner, _Unsupported("gamma", digamma=True), lu_flow])
    with pytest.raises(ValueError) as caught:
        trn.export_tflite(trn.FlowModel(flow), tmp_path / "flow.tflite")
    assert str(caught.value) == (
        "export_tflite: _Unsupported 'solve_1' uses MatrixTriangularSolve and _Unsupported "
        "'gamma' uses Digamma, MatrixTriangularSolve, which TensorFlow Lite's built-in op set "
        "lacks; export this flow "
        "with export_saved_model instead"
    )
    assert list(tmp_path.iterdir()) == []


def test_ops_no_bijector_holds_are_blamed_on_the_flow():
    model = trn.FlowModel(trn.real_nvp([3], 2, [4]))
    converter = "; ".join(f"'tf.{op}' op is neither a custom op nor a flex op" for op in "FB")
    lacks = ", which TensorFlow Lite's built-in op set lacks; export this flow with "
    assert str(trn.tflite._unsupported(converter, model, [])) == (
        f"export_tflite: the flow uses B, F{lacks}export_saved_model instead"
    )
    assert str(trn.tflite._unsupported("", model, [])) == (
        f"export_tflite: the flow uses ops{lacks}export_saved_model instead"
    )


def test_refusals_before_converting(tmp_path, refusal):
    model = trn.FlowModel(trn.real_nvp([2], 2, [4], dtype=tf.float64))
    assert refusal(TypeError, trn.export_tflite, model, tmp_path / "flow.tflite") == (
        "export_tflite: the flow computes in float64; TensorFlow Lite's built-in kernels take "
        "float32: build the flow with dtype=tf.float32."
    )
    taken = tmp_path / "taken.tflite"
    taken.write_bytes(b"")
    message = refusal(FileExistsError, trn.export_tflite, model, taken)
    assert message == f"{taken} exists; pass overwrite=True to replace it."


def test_vector_scale_log_det_survives_conversion(tmp_path):
    # The converter once folded a vector Scale's log-det sum into its first element: every row
    # was log(3 * 4) nats too high. The command line's standardisation is such a Shift + Scale.
    shift, scale = tfp.bijectors.Shift([1.0, -2.0, 0.5]), tfp.bijectors.Scale([2.0, 3.0, 4.0])
    flow = tfp.bijectors.Chain([shift, scale, trn.real_nvp([3], 2, [8])])
    model = _perturbed(flow)
    path = trn.export_tflite(model, tmp_path / "flow.tflite")
    _, run = _runners(path)
    x = np.random.default_rng(3).normal(size=(9, 3)).astype("float32")
    np.testing.assert_allclose(run["log_prob"](x=x)["log_prob"], model.log_prob(x), atol=1e-4)


def test_a_file_that_disagrees_is_refused_and_the_old_one_kept(tmp_path, monkeypatch):
    # Undo the per-example tracing that keeps the converter's fold right: the flaw comes back,
    # and the self-check must catch it before anything is published.
    monkeypatch.setattr(trn.tflite.tf, "vectorized_map", lambda fn, elems, **_: fn(elems))
    flow = tfp.bijectors.Chain([tfp.bijectors.Scale([2.0, 3.0, 4.0]), trn.real_nvp([3], 2, [8])])
    model = _perturbed(flow)
    (tmp_path / "flow.tflite").write_bytes(b"the user's previous export")
    path = tmp_path / "flow.tflite"
    with pytest.raises(trn.verification.ExportMismatchError) as caught:
        trn.export_tflite(model, path, overwrite=True)
    # It names the file asked for, not the hidden one the export was staged in.
    assert str(caught.value).startswith(
        f"export_tflite {path}: the exported log_prob differs from the model by up to 2.48"
    )
    assert path.read_bytes() == b"the user's previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["flow.tflite"]
    # The tolerances given are the ones used: 2.48 nats pass an absolute 3, and a relative
    # 0.5 (every log-density here is below -5.9: -log(2 pi e^0) * 3/2 - log(2 * 3 * 4)).
    trn.export_tflite(model, path, overwrite=True, atol=3.0, rtol=0.0)
    trn.export_tflite(model, path, overwrite=True, atol=0.0, rtol=0.5)


def test_a_sample_signature_that_disagrees_is_refused(tmp_path, monkeypatch):
    real = tf.lite.Interpreter

    class Skewed(real):  # a converter fault in `sample` alone
        def get_signature_runner(self, name):
            runner = super().get_signature_runner(name)
            if name != "sample":
                return runner
            return lambda **inputs: {"samples": runner(**inputs)["samples"] + 0.01}

    monkeypatch.setattr(tf.lite, "Interpreter", Skewed)
    path = tmp_path / "flow.tflite"
    with pytest.raises(trn.verification.ExportMismatchError) as caught:
        trn.export_tflite(_perturbed(trn.real_nvp([3], 2, [8])), path)
    assert str(caught.value).startswith(
        f"export_tflite {path}: the exported sample differs from the model by up to 0.01"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("base", ["student_t", "mixture"])
def test_a_learned_base_exports_log_prob_alone(tmp_path, base):
    # It was refused whole, though only `sample` needs standard-normal noise.
    model = _perturbed(trn.real_nvp([3], 2, [8]), base=base)
    path = trn.export_tflite(model, tmp_path / "flow.tflite")  # checked against the model
    interpreter = tf.lite.Interpreter(model_path=str(path))
    assert sorted(interpreter.get_signature_list()) == ["log_prob"]
    x = np.random.default_rng(4).normal(size=(6, 3)).astype("float32")
    log_prob = interpreter.get_signature_runner("log_prob")(x=x)["log_prob"]
    np.testing.assert_allclose(log_prob, model.log_prob(x), **TOLERANCE)
