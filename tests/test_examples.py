"""Every example runs in its short mode, so none can rot."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_covered():
    tested = {"two_moons_fit", "conditional_flow", "vi_surrogate", "export_and_serve"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} <= tested | {"digits"}


@pytest.mark.slow
def test_two_moons_fit():
    out = _load("two_moons_fit").main(quick=True)
    assert out["history"]["loss"][-1] < out["history"]["loss"][0]
    assert np.all(np.isfinite(out["samples"])) and out["samples"].shape == (1000, 2)


@pytest.mark.slow
def test_conditional_flow():
    means = _load("conditional_flow").main(quick=True)["means"]
    assert means[3.0][0] > means[-3.0][0] + 2.0  # the context moves the samples


@pytest.mark.slow
def test_vi_surrogate():
    losses = _load("vi_surrogate").main(quick=True)["losses"]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


@pytest.mark.slow
def test_export_and_serve(tmp_path):
    out = _load("export_and_serve").main(quick=True, out=str(tmp_path))
    assert "log_prob" in out and "samples" in out
    assert (tmp_path / "flow_saved_model" / "saved_model.pb").exists()
