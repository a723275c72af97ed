"""TFP's own bijectors that `tfp_realnvp.serialization` describes: each, with parameters that
are not the identity's, saves in the Keras format and passes both exports (which check
themselves against the model) in front of a flow; a trained variable inside one is refused by
name, before anything is written."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras, testing
from tfp_realnvp.serialization import TFP_BIJECTORS, bijector_from_config, bijector_to_config

tfb = tfp.bijectors
TRIL = [[2.0, 0.0, 0.0], [0.7, 0.5, 0.0], [-1.2, 0.3, 1.5]]

# One instance of each, on a 3-vector event, with the data side its first bijector.
EXAMPLES = {
    "Shift": lambda: tfb.Shift([1.0, -2.0, 0.5]),
    "Scale": lambda: tfb.Scale([2.0, 3.0, 4.0]),
    "ScaleMatvecDiag": lambda: tfb.ScaleMatvecDiag([2.0, 0.5, 1.5]),
    "ScaleMatvecTriL": lambda: tfb.ScaleMatvecTriL(TRIL),
    "Permute": lambda: tfb.Permute([2, 0, 1]),
    "Reshape": lambda: tfb.Reshape([3], [3]),
    "Exp": tfb.Exp,
    "Log": lambda: tfb.Invert(tfb.Log()),  # Log's forward wants positive noise
    "Expm1": tfb.Expm1,
    "Sigmoid": lambda: tfb.Sigmoid(low=-1.0, high=2.0),
    "Softplus": lambda: tfb.Softplus(hinge_softness=0.7),
    "Softsign": tfb.Softsign,
    "Tanh": tfb.Tanh,
    "Identity": tfb.Identity,
    "SinhArcsinh": lambda: tfb.SinhArcsinh(skewness=0.3, tailweight=1.2),
    # Their inverses' forward takes positive noise only: behind an Exp.
    "Power": lambda: tfb.Chain([tfb.Invert(tfb.Power(3.0)), tfb.Exp()]),
    "Square": lambda: tfb.Chain([tfb.Invert(tfb.Square()), tfb.Exp()]),
    "NormalCDF": tfb.NormalCDF,
}
# The exports run on a few chains holding every kind at once (each export converts, loads and
# checks itself, which is the slow part), data side first, each kind's range inside the next's
# domain. TensorFlow Lite lacks a triangular solve: that chain is refused by name, not exported.
CHAINS = {
    "affine": [
        "Shift",
        "Scale",
        "ScaleMatvecDiag",
        "Permute",
        "Reshape",
        "SinhArcsinh",
        "Identity",
    ],
    "bounded": ["Sigmoid", "Tanh", "Softsign", "NormalCDF", "Exp"],
    "roots": ["Square", "Power"],
    # Shallow compositions: fed e^(e^z), TensorFlow Lite's softplus overflowed to inf where
    # TensorFlow's is linear, and exp(expm1(softplus(.))) amplified float32 rounding past the
    # self-check's tolerance (it refused both files, rightly).
    "positive": ["Log", "Softplus"],
    "expm1": ["Expm1"],
    "triangular": ["ScaleMatvecTriL"],
}
NOT_TFLITE = {
    "affine": "SinhArcsinh 'sinh_arcsinh' uses Asinh, Sinh, which",
    "bounded": "Tanh 'tanh' uses Atanh and NormalCDF 'normal' uses Erf, Erfc, Ndtri, which",
    "triangular": "ScaleMatvecTriL 'scale_matvec_tril' uses MatrixTriangularSolve, which",
}


def test_every_described_bijector_has_an_example_and_a_chain():
    assert set(EXAMPLES) == set(TFP_BIJECTORS)
    assert sorted(k for kinds in CHAINS.values() for k in kinds) == sorted(TFP_BIJECTORS)


def _model(kinds: list[str]) -> trn.FlowModel:
    keras.utils.set_random_seed(0)  # the same weights whatever ran before
    flow = tfb.Chain([*(EXAMPLES[k]() for k in kinds), trn.real_nvp([3], 2, [4])])
    model = trn.FlowModel(flow, event_shape=[3])
    testing.perturb_variables(model.bijector)
    return model


@pytest.mark.parametrize("kind", TFP_BIJECTORS)
def test_a_tfp_bijector_saves_in_the_keras_format(kind, tmp_path):
    model = _model([kind])
    x = model.bijector.forward(model.base_sample(6, tf.constant([0, 1]))).numpy()  # eager
    want = model.distribution.log_prob(x).numpy()
    assert np.all(np.isfinite(want)), kind
    model.save(str(tmp_path / "flow.keras"))
    loaded = trn.load_model(tmp_path / "flow.keras")
    np.testing.assert_allclose(loaded.distribution.log_prob(x), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("chain", CHAINS)
def test_tfp_bijectors_pass_both_exports(chain, tmp_path):
    model = _model(CHAINS[chain])
    trn.export_saved_model(model, tmp_path / "served")  # raises if it disagrees
    if chain in NOT_TFLITE:
        with pytest.raises(ValueError, match=f"^export_tflite: {re.escape(NOT_TFLITE[chain])}"):
            trn.export_tflite(model, tmp_path / "flow.tflite")
        assert not (tmp_path / "flow.tflite").exists()
    else:
        trn.export_tflite(model, tmp_path / "flow.tflite")  # raises if it disagrees


def _numbers(config) -> list:
    """The numbers in a config, in order (parameters rebuilt as float32 print as float32)."""
    if isinstance(config, dict):
        return [n for key in sorted(config) for n in _numbers(config[key])]
    if isinstance(config, list):
        return [n for item in config for n in _numbers(item)]
    return [config] if isinstance(config, int | float) and not isinstance(config, bool) else []


def test_a_config_rebuilds_the_same_parameters():
    for kind in TFP_BIJECTORS:
        bijector = EXAMPLES[kind]()
        config = bijector_to_config(bijector)
        rebuilt = bijector_from_config(config)
        assert type(rebuilt) is type(bijector)
        again = bijector_to_config(rebuilt)
        assert json.dumps(again, sort_keys=True, default=str).count(":") == json.dumps(
            config, sort_keys=True, default=str
        ).count(":"), kind
        np.testing.assert_allclose(_numbers(again), _numbers(config), rtol=1e-6, err_msg=kind)


@pytest.mark.tf_keras  # the .keras format
def test_a_trained_variable_inside_a_tfp_bijector_is_refused_by_name(tmp_path):
    scale = tfb.Scale(tf.Variable([1.0, 2.0, 3.0]), name="learned_scale")
    model = trn.FlowModel(tfb.Chain([scale, trn.real_nvp([3], 2, [4])]), event_shape=[3])
    with pytest.raises(ValueError, match="cannot save bijector 'learned_scale': its scale"):
        model.save(str(tmp_path / "flow.keras"))
