"""What the command line finds in training data before a flow sees it."""

import numpy as np
import pytest

from tfp_realnvp.cli.screening import screen_images, screen_vectors, uses_image_flow
from tfp_realnvp.data import DataError
from tfp_realnvp.data.tables import Table, describe_columns


def test_whole_number_columns_are_found():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.poisson(3, 100), rng.normal(size=100), np.zeros(100)])
    assert screen_vectors(x, "x").integer_columns == (0, 2)  # a constant 0 is dequantised


def test_few_valued_columns_that_are_not_whole_numbers_are_found():
    rng = np.random.default_rng(2)
    coded = np.where(rng.random(400) < 0.5, -0.0446, 0.0507)  # diabetes' "sex", standardised
    ten = rng.integers(0, 10, 400) / 7.0  # 10 values
    eleven = rng.integers(0, 11, 400) / 7.0  # 11 values: continuous as far as we know
    counts = rng.poisson(3.0, 400)  # whole numbers: dequantised instead
    x = np.column_stack([rng.normal(size=400), coded, ten, eleven, counts])
    report = screen_vectors(x, "x")
    assert report.few_valued_columns == (1, 2) and report.integer_columns == (4,)
    # 5 rows a value at the least: 2 values in 9 rows are not enough to call it discrete.
    assert screen_vectors(x[:10], "x").few_valued_columns == (1,)
    assert screen_vectors(x[:9], "x").few_valued_columns == ()


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
        (np.arange(-1.0, 11.0).reshape(3, 2, 2, 1), r"values in \[-1, 10\]$"),  # whole, < 0
    ],
)
def test_images_must_be_grey_levels(images, message):
    with pytest.raises(DataError, match=message):
        screen_images(images, "x")
    assert screen_images(np.arange(12.0).reshape(3, 2, 2, 1), "x") == 12
    assert screen_images(np.arange(12.0).reshape(3, 2, 2, 1) % 2, "x") == 2  # binary: K = 2


def test_an_image_flow_is_for_images_unless_the_vector_architecture_is_asked_for():
    images, rows = np.zeros((2, 4, 4, 1)), np.zeros((2, 16))
    assert uses_image_flow(images, "realnvp") and uses_image_flow(images, "glow")
    assert not uses_image_flow(images, "vector") and not uses_image_flow(rows, "realnvp")


def _refusal(x, **kwargs) -> str:
    with pytest.raises(DataError) as refused:
        screen_vectors(x, "x", **kwargs)
    return str(refused.value)


def test_refusals_read_whole():
    assert _refusal(np.zeros((5, 1))) == (
        "x: one column: RealNVP couplings split the dimensions in two, so they need at least 2; "
        "for a 1-D density use a kernel density estimate (scikit-learn's KernelDensity) or a "
        "Gaussian mixture (sklearn.mixture.GaussianMixture)"
    )
    one = np.column_stack([np.arange(10.0), np.full(10, 0.5)])
    assert _refusal(one) == (
        "x: column 2 is constant (0.5 in every row): a constant has no density; drop it"
    )
    two = np.column_stack([np.arange(10.0), np.full(10, 0.5), np.full(10, 0.25)])
    assert _refusal(two) == "x: columns 2-3 are constant: a constant has no density; drop them"
    far = np.column_stack([np.linspace(0, 1, 30), np.linspace(0, 1, 30)])
    far[3, 0] = 1e9
    assert _refusal(far).endswith(
        "from the column's median 0.534483; a float32 flow cannot fit it with the other rows: "
        "remove the row or rescale the column"
    )


def test_the_robust_scale_is_each_columns_own_spread_about_its_median():
    rng = np.random.default_rng(3)
    # A column far from 0 is measured about its median, not about 0.
    x = np.column_stack([1e7 + rng.normal(size=200), rng.normal(size=200)])
    assert screen_vectors(x, "x").integer_columns == ()
    x[7, 0] = 1e7 + 5e6  # 5e6 robust standard deviations out
    assert "row 8, column 1 is 1.5e+07, 4.9e+06 robust" in _refusal(x)
    # Where half the rows or more are equal (no median spread), the standard deviation serves.
    x = np.column_stack([np.where(np.arange(100) < 90, 0.5, 2.5), rng.normal(size=100)])
    assert screen_vectors(x, "x").integer_columns == ()
    x[11, 1] = 1e9  # ... and leaves no NaN in the first column to hide the second's outlier
    assert "row 12, column 2 is 1e+09" in _refusal(x)
    # A spread under 1 is not replaced by the standard deviation (which the outlier inflates).
    x = np.column_stack([0.01 * rng.normal(size=100), rng.normal(size=100)])
    x[5, 0] = 3e4
    assert "row 6, column 1 is 30000, 3.4e+06 robust" in _refusal(x)
    # Whole numbers get a spread of at least 1 (their dequantisation noise), not 2: a median
    # spread of 0.74 becomes 1.
    x = np.column_stack([np.arange(100) % 2, rng.normal(size=100)]).astype(float)
    x[9, 0] = 8e5
    assert screen_vectors(x, "x").integer_columns == (0,)
    x[9, 0] = 1.5e6
    assert "row 10, column 1 is 1.5e+06, 1.5e+06 robust" in _refusal(x)


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


def test_the_small_data_dropout_stops_at_5000_training_rows():
    from tfp_realnvp.cli.screening import small_data_dropout

    assert [small_data_dropout(n) for n in (10, 4999.9, 5000, 10**6)] == [0.2, 0.2, 0.0, 0.0]
