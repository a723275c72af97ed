"""Files saved by version 0.1.0 still load and give the same densities.

The fixtures were written by ``tests/fixtures/v0_1_0/make_fixtures.py`` with the package at
0.1.0, under each Keras (a `.keras` file records the Keras that wrote it)."""

from pathlib import Path

import numpy as np
import pytest

import tfp_realnvp as trn
from tfp_realnvp._keras import LEGACY_KERAS

pytestmark = pytest.mark.tf_keras  # files saved by 0.1.0 through each Keras' loader

FIXTURES = (
    Path(__file__).with_name("fixtures") / "v0_1_0" / ("tf_keras" if LEGACY_KERAS else "keras3")
)
EXPECTED = np.load(FIXTURES / "expected.npz")


@pytest.mark.parametrize("name", ["spline", "maf", "glow", "realnvp_lu_student"])
def test_a_keras_file_of_version_0_1_0_loads_and_gives_the_same_log_prob(name):
    model = trn.load_model(FIXTURES / f"{name}.keras")
    want = EXPECTED[f"{name}_log_prob"]
    assert np.all(np.isfinite(want)) and np.ptp(want) > 0  # not a degenerate fixture
    np.testing.assert_allclose(model.log_prob(EXPECTED[f"{name}_x"]), want, rtol=1e-6, atol=1e-6)
