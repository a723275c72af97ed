"""What the command line finds in training data before a flow sees it."""

import numpy as np
import pytest

from tfp_realnvp.cli.screening import screen_images, screen_vectors
from tfp_realnvp.data import DataError
from tfp_realnvp.data.tables import Table, describe_columns

pytestmark = pytest.mark.one_pass  # numpy alone: the Keras version changes nothing here


def test_whole_number_columns_are_found():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.poisson(3, 100), rng.normal(size=100), np.zeros(100)])
    assert screen_vectors(x, "x").integer_columns == (0, 2)  # a constant 0 is dequantised


def test_a_constant_column_is_refused_unless_dequantised():
    x = np.column_stack([np.arange(10.0), np.full(10, 4.0)])
    assert screen_vectors(x, "x").integer_columns == (0, 1)
    with pytest.raises(DataError, match=r"^x: column 2 is constant \(4 in every row\)"):
        screen_vectors(x, "x", dequantize=False)
    x = np.column_stack([np.arange(10.0), np.full(10, 0.5), np.full(10, 0.25)])
    with pytest.raises(DataError, match=r"^x: columns 2-3 are constant: a constant has no"):
        screen_vectors(x, "x")


def test_heavy_tails_pass_but_a_value_beyond_float32_resolution_is_refused():
    rng = np.random.default_rng(1)
    x = rng.standard_cauchy(size=(20000, 2))  # its largest values lie ~10^4 MADs out
    assert screen_vectors(x, "x").integer_columns == ()
    x[123, 1] = 1e8
    with pytest.raises(DataError, match=r"row 124, column 2 is 1e\+08, 6\.9e\+07 robust"):
        screen_vectors(x, "x")


def test_one_column_is_refused_with_what_to_use_instead():
    with pytest.raises(DataError, match="need at least 2; for a 1-D density use a kernel"):
        screen_vectors(np.zeros((5, 1)), "x")


@pytest.mark.parametrize(
    "images, message",
    [
        (np.full((3, 2, 2, 1), -1.0), r"values in \[-1, -1\]$"),
        (np.full((3, 2, 2, 1), 0.5), r"in \[0\.5, 0\.5\] that are not all whole numbers$"),
        (np.zeros((3, 2, 2, 1)), r"K >= 2"),
    ],
)
def test_images_must_be_grey_levels(images, message):
    with pytest.raises(DataError, match=message):
        screen_images(images, "x")
    assert screen_images(np.arange(12.0).reshape(3, 2, 2, 1), "x") == 12


def test_describe_columns():
    assert describe_columns((0, 1, 2, 5, 7, 8)) == "columns 1-3, 6, 8-9"
    assert describe_columns([4]) == "column 5"
    assert describe_columns([0, 2], ["a", "", "c"]) == "columns 1 (a), 3 (c)"
    assert describe_columns([1], ["a", "", "c"]) == "column 2 (unnamed)"


def test_messages_name_columns_and_the_file_line_when_the_table_has_them():
    # The same bad value was "row 6" in one message and "row 7" in another for line 7.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 2))
    x[4, 1] = 1e9
    table = Table(x, ["width", "mass"], np.arange(30) + 3)  # a header, then a comment line
    with pytest.raises(DataError, match=r"^t\.csv: line 7, column 2 \(mass\) is 1e\+09, "):
        screen_vectors(x, "t.csv", table=table)
    x[:, 1] = 0.5
    with pytest.raises(DataError, match=r"^t\.csv: column 2 \(mass\) is constant \(0\.5 in"):
        screen_vectors(x, "t.csv", table=Table(x, ["width", "mass"]))
