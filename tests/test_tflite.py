"""export_tflite: a TensorFlow Lite file whose two signatures match the Keras model."""

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


def test_vector_flow_with_lu_and_context_matches_keras(tmp_path):
    model = _perturbed(trn.real_nvp([3], 3, [8], permutation="lu", context_shape=[2]))
    path = trn.export_tflite(model, tmp_path / "flow.tflite")
    signatures, run = _runners(path)
    assert {k: sorted(v["inputs"]) for k, v in signatures.items()} == {
        "log_prob": ["context", "x"],
        "sample": ["context", "z"],
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
    [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.tf_keras_too])],
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


class _TriangularSolve(FlowBijector):
    """``x = L z`` solved by a triangular solve: an op TensorFlow Lite has no built-in for."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, name="solver")

    def _forward(self, z):
        return z

    def _inverse(self, x):
        return tf.transpose(tf.linalg.triangular_solve(tf.eye(3), tf.transpose(x)))

    def _inverse_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:-1])


def test_each_signature_is_traced_once(tmp_path, flow_traces):
    # As for export_saved_model: the SavedModel handed to the converter holds traced functions.
    trn.export_tflite(_perturbed(trn.real_nvp([3], 2, [8])), tmp_path / "flow.tflite")
    assert len(flow_traces) == 2  # log_prob (one example, vectorised) and sample


def test_unsupported_bijector_is_named_and_nothing_is_written(tmp_path):
    # The LU permutation's W^-1 is a triangular solve too, but of weights only: it folds into a
    # constant and is not named.
    lu_flow = trn.real_nvp([3], 2, [4], permutation="lu")
    model = trn.FlowModel(tfp.bijectors.Chain([_TriangularSolve(), lu_flow]))
    named = r"^export_tflite: _TriangularSolve 'solver' uses MatrixTriangularSolve, which"
    with pytest.raises(ValueError, match=named):
        trn.export_tflite(model, tmp_path / "flow.tflite")
    assert list(tmp_path.iterdir()) == []


def test_refusals_before_converting(tmp_path):
    model = trn.FlowModel(trn.real_nvp([2], 2, [4], dtype=tf.float64))
    with pytest.raises(TypeError, match=r"computes in float64.*dtype=tf\.float32"):
        trn.export_tflite(model, tmp_path / "flow.tflite")
    (tmp_path / "taken.tflite").write_bytes(b"")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trn.export_tflite(model, tmp_path / "taken.tflite")


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
    with pytest.raises(trn.verification.ExportMismatchError, match=r"log_prob differs .* by up"):
        trn.export_tflite(model, tmp_path / "flow.tflite", overwrite=True)
    assert (tmp_path / "flow.tflite").read_bytes() == b"the user's previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["flow.tflite"]


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
