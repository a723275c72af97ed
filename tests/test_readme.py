"""Every Python block of the README runs as written, in order, in one namespace."""

import os
import re
from pathlib import Path

import numpy as np
import pytest

# Every block in one process, as a reader would run them: training, exports, VI (about 45 s).
pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[tuple[str, str]]:
    """(section heading, code) of each ```python block, in order."""
    text = README.read_text(encoding="utf-8")
    out, heading = [], ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```$", text, re.S | re.M):
        if match.group(1):
            heading = match.group(1)
        else:
            out.append((heading, match.group(2)))
    return out


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    """The namespace after running every block, from a scratch directory."""
    cwd = Path.cwd()
    scratch = tmp_path_factory.mktemp("readme")
    namespace: dict = {}
    os.chdir(scratch)
    try:
        for heading, code in _blocks():
            exec(compile(code, f"{README} ({heading})", "exec"), namespace)
    finally:
        os.chdir(cwd)
    namespace["scratch"] = scratch
    return namespace


def test_the_readme_has_its_examples():
    headings = [heading for heading, _ in _blocks()]
    assert headings[:2] == ["## Quick start", "## Keras"] and len(headings) >= 5


def test_quick_start_is_short(namespace):
    assert len(_blocks()[0][1].strip().splitlines()) <= 24  # 16 before its step was compiled


def test_quick_start_learns_the_covariance(namespace):
    # The data are Gaussian with covariance A^T A; the fitted flow's samples should match it.
    a = np.array([[1.0, 0.9], [0.0, 0.4]])
    np.testing.assert_allclose(np.cov(namespace["samples"].numpy().T), a.T @ a, atol=0.25)
    # The best achievable NLL is the Gaussian's entropy; a fresh flow starts ~1 nat above it.
    entropy = np.log(2 * np.pi * np.e) + 0.5 * np.log(np.linalg.det(a.T @ a))
    assert float(namespace["loss"]) < entropy + 0.1


def test_keras_block_trains_saves_and_exports(namespace):
    scratch = namespace["scratch"]
    history = namespace["history"].history
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.5
    assert (scratch / "flow.keras").is_file()
    assert (scratch / "served" / "saved_model.pb").is_file()


def test_the_user_defined_bijector_saves_and_exports(namespace):
    import tensorflow as tf

    scratch, heavy = namespace["scratch"], namespace["heavy"]
    x = namespace["moons"][:50]
    want = heavy.log_prob(x).numpy()
    np.testing.assert_array_equal(namespace["reloaded"].log_prob(x), want)
    assert namespace["reloaded"].bijector.bijectors[0].a == 2.0
    served = tf.saved_model.load(str(scratch / "heavy_served")).signatures["log_prob"]
    np.testing.assert_allclose(served(x=tf.constant(x))["log_prob"], want, rtol=1e-5)


def test_vi_block_fits_the_banana(namespace):
    report = namespace["report"]  # the banana is normalised: log Z = 0
    assert report.kl < 0.2 and abs(report.log_z) < 4 * report.log_z_se + 0.02, str(report)
    assert namespace["kernel"].num_adaptation_steps == 200


def test_coming_from_tfp_ports_a_realnvp_exactly_and_trains_with_a_tape(namespace):
    # The block asserts equality itself; here: it ran, and its loop learned something.
    assert len(namespace["tape_dist"].trainable_variables) > 4
    assert namespace["tape_losses"][-1] < namespace["tape_losses"][0] - 0.05
    np.testing.assert_array_equal(
        namespace["tfp_log_prob"].log_prob(namespace["points"]), namespace["ported_log_prob"]
    )
