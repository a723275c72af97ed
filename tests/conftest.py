import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp

CHECKOUT = Path(__file__).resolve().parents[1]
IMPORTED = Path(tfp_realnvp.__file__).resolve().parent

# `make test` runs one pass against the installed wheel: make sure that is what is imported.
if os.environ.get("TFP_REALNVP_TEST_INSTALLED") and (
    IMPORTED.is_relative_to(CHECKOUT / "tfp_realnvp")
    or not IMPORTED.is_relative_to(Path(sys.prefix).resolve())
):
    pytest.exit(
        f"TFP_REALNVP_TEST_INSTALLED is set, but tfp_realnvp was imported from {IMPORTED}, "
        f"not from the environment {sys.prefix}",
        returncode=4,
    )


def pytest_report_header(config):
    return f"tfp_realnvp {tfp_realnvp.__version__} from {IMPORTED}"


@pytest.fixture(autouse=True)
def _seed():
    tf.random.set_seed(0)
    np.random.seed(0)
