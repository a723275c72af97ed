"""The README's quick start runs as written and learns the data's covariance."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_quick_start_is_short_and_runs(capsys):
    code = _quick_start()
    assert len(code.strip().splitlines()) <= 16
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert "NLL" in capsys.readouterr().out
    # The data are Gaussian with covariance A^T A; the fitted flow's samples should match it.
    a = np.array([[1.0, 0.9], [0.0, 0.4]])
    np.testing.assert_allclose(np.cov(namespace["samples"].numpy().T), a.T @ a, atol=0.25)
    # The best achievable NLL is the Gaussian's entropy; a fresh flow starts ~1 nat above it.
    entropy = np.log(2 * np.pi * np.e) + 0.5 * np.log(np.linalg.det(a.T @ a))
    assert float(namespace["loss"]) < entropy + 0.1
