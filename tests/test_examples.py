"""Every example runs in its short mode and does what it says, so none can rot: the examples
are found on disk, and one without a check here fails."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.data import dequantized

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py"))


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _two_moons_fit(module, tmp_path):
    out = module.main(quick=True)
    assert out["history"]["loss"][-1] < out["history"]["loss"][0]
    assert np.all(np.isfinite(out["samples"])) and out["samples"].shape == (1000, 2)


def _conditional_flow(module, tmp_path):
    means = module.main(quick=True)["means"]
    assert means[3.0][0] > means[-3.0][0] + 2.0  # the context moves the samples


def _vi_surrogate(module, tmp_path):
    losses = module.main(quick=True)["losses"]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def _vi_flows(module, tmp_path):
    out = module.main(quick=True)
    assert out["history"]["loss"][-1] < out["history"]["loss"][0]
    assert np.isfinite(out["diagnostics"].log_z) and out["diagnostics"].kl >= -0.01
    assert out["samples"].shape == (50, 4, 2) and np.all(np.isfinite(out["samples"]))


def _export_and_serve(module, tmp_path):
    out = module.main(quick=True, out=str(tmp_path))
    assert out["path"] == tmp_path / "flow_saved_model"
    assert (out["path"] / "saved_model.pb").exists()
    local, served = out["local"], out["served"]
    assert served["log_prob"].shape == (2,) and served["samples"].shape == (3, 2)
    np.testing.assert_allclose(served["log_prob"], local["log_prob"], rtol=1e-5)
    np.testing.assert_allclose(served["samples"], local["samples"], rtol=1e-5, atol=1e-6)


def _digits(module, tmp_path):
    """Both architectures train from a fresh start to a clearly better held-out score than the
    same model untrained (initialised as fit initialises it: an untrained Glow already scores
    3.9 bits/dim, under the uniform log2(17) = 4.09)."""
    train, _, test = module.splits()
    scored = dequantized(test, seed=1)  # the example's own test-set draw
    for glow in (False, True):
        keras.utils.set_random_seed(0)
        untrained = module.build_model(quick=True, glow=glow)
        untrained.initialize(train[:64])
        before = trn.bits_per_dim(-float(np.mean(untrained.log_prob(scored))), 64)
        out = module.main(quick=True, glow=glow, out=None)
        assert np.all(np.isfinite(out["history"]["loss"]))
        assert tf.reduce_all(tf.math.is_finite(out["samples"]))
        assert np.isfinite(out["test_nll"]), glow
        assert out["test_bits_per_dim"] < before - 0.15, (glow, before, out["test_bits_per_dim"])


CHECKS = {
    "conditional_flow": _conditional_flow,
    "digits": _digits,
    "export_and_serve": _export_and_serve,
    "two_moons_fit": _two_moons_fit,
    "vi_flows": _vi_flows,
    "vi_surrogate": _vi_surrogate,
}


def test_every_example_is_covered():
    assert NAMES, f"no examples found in {EXAMPLES}"
    missing = sorted(set(NAMES) - set(CHECKS))
    assert not missing, f"examples/ has {missing} with no check in tests/test_examples.py"
    assert sorted(CHECKS) == NAMES, f"checks for examples that are gone: {set(CHECKS) - set(NAMES)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_example_runs_and_does_what_it_says(name, tmp_path):
    if name not in CHECKS:
        pytest.fail(f"examples/{name}.py has no check in tests/test_examples.py")
    CHECKS[name](_load(name), tmp_path)
