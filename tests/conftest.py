import inspect
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import tfp_realnvp
from tfp_realnvp.cli.parser import import_quietly

# As the command line does: TensorFlow's C++ start-up notices stay off the terminal (pytest-xdist's
# controller imports this file uncaptured), and the processes the tests start inherit the level.
tf = import_quietly("tensorflow", verbose=False)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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


@pytest.fixture
def defaults():
    """``defaults(function)``: its arguments' default values by name, to compare with the ones
    its documentation promises."""

    def of(function) -> dict:
        parameters = inspect.signature(function).parameters.items()
        return {k: p.default for k, p in parameters if p.default is not inspect.Parameter.empty}

    return of


@pytest.fixture
def refusal():
    """``refusal(Error, call, *args, **kwargs)`` calls ``call``, checks that it raised ``Error``
    and returns the message, so that a test can compare it whole."""

    def refused(error_type: type[Exception], call, *args, **kwargs) -> str:
        with pytest.raises(error_type) as caught:
            call(*args, **kwargs)
        return str(caught.value)

    return refused


@pytest.fixture
def plumbing():
    """``plumbing(make, kind, checks)`` checks the TFP plumbing our bijectors share and returns
    the one made with ``name="m", validate_args=True``: two calls of ``make()`` give distinct
    default names ``{kind}_<n>`` with ``validate_args`` off; a given name and ``validate_args``
    are kept, in ``parameters`` too; and each ``(method, value, arg, *more)`` of ``checks``
    (``bijector.method(value, *more)``, ``more`` a log-det's event rank) refuses the NaN in
    ``value`` naming ``m`` and the argument ``arg``."""

    def check(make, kind: str, checks=()):
        first, second = make(), make()
        assert first.name.startswith(kind + "_") and first.name != second.name
        assert first.validate_args is False
        named = make(name="m", validate_args=True)
        assert named.name == "m" and named.validate_args
        assert named.parameters["name"] == "m" and named.parameters["validate_args"] is True
        for method, value, arg, *more in checks:
            with pytest.raises(tf.errors.InvalidArgumentError, match=f"m: `{arg}` contains NaN"):
                getattr(named, method)(tf.constant(value), *more)
        return named

    return check


@pytest.fixture
def flow_traces(monkeypatch) -> list:
    """Grows by one each time a `FlowModel`'s flow is traced (its context routed inside a
    `tf.function`), whichever function traces it: the cause of an export's or a step's cost."""
    traces: list = []
    real = tfp_realnvp.FlowModel.bijector_kwargs

    def counted(self, context=None):
        if tf.inside_function():
            traces.append(context)
        return real(self, context)

    monkeypatch.setattr(tfp_realnvp.FlowModel, "bijector_kwargs", counted)
    return traces


@pytest.fixture
def write_tfrecord():
    """``write_tfrecord(path, rows)`` writes a shard in the documented TFRecord layout: one
    `tf.train.Example` per row, its values a ``float_list`` feature ``"x"``."""

    def write(path, rows) -> None:
        with tf.io.TFRecordWriter(str(path)) as writer:
            for row in rows:
                feature = tf.train.Feature(float_list=tf.train.FloatList(value=row))
                example = tf.train.Example(features=tf.train.Features(feature={"x": feature}))
                writer.write(example.SerializeToString())

    return write
