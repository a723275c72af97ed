import numpy as np
import pytest

from tfp_realnvp.data import (
    DATASETS,
    DataError,
    dequantized,
    load_array,
    load_data,
    load_table,
    make_dataset,
    match_columns,
    random_split,
    train_validation_split,
)
from tfp_realnvp.data.tables import Table, index_column, without_first_column

TOY = [name for name in DATASETS if name != "digits"]
N = 4096


def _polar(x):
    x = x.astype(np.float64)
    return np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 1], x[:, 0])


def test_names():
    assert DATASETS[0] == "moons"
    assert set(DATASETS) == {
        "moons",
        "8gaussians",
        "checkerboard",
        "pinwheel",
        "rings",
        "2spirals",
        "digits",
    }


@pytest.mark.parametrize("name", TOY)
def test_toy_shape_dtype_range(name):
    x = make_dataset(name, num_samples=1000, seed=3)
    assert x.shape == (1000, 2)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    assert np.abs(x).max() < 5.0  # "roughly [-4, 4]"
    assert x.std(axis=0).min() > 0.5  # spread out, not collapsed


@pytest.mark.parametrize("name", TOY)
def test_toy_seeding(name):
    np.testing.assert_array_equal(make_dataset(name, 100, seed=1), make_dataset(name, 100, seed=1))
    assert not np.allclose(make_dataset(name, 100, seed=1), make_dataset(name, 100, seed=2))


def test_moons_two_half_circles():
    # Upper moon: radius 2 around (-1, -0.2), y above; lower moon: radius 2 around (1, 0.8), below.
    x = make_dataset("moons", N).astype(np.float64)
    r_up = np.abs(np.hypot(*(x - [-1.0, -0.2]).T) - 2.0)
    r_low = np.abs(np.hypot(*(x - [1.0, 0.8]).T) - 2.0)
    upper = r_up < r_low
    assert np.minimum(r_up, r_low).mean() < 0.2
    assert 0.45 < upper.mean() < 0.55
    # Half-circle centroids sit 4 / pi from the centre, on the open side (loosely: points where
    # the moons cross are assigned to either).
    np.testing.assert_allclose(x[upper].mean(0), [-1.0, -0.2 + 4 / np.pi], atol=0.25)
    np.testing.assert_allclose(x[~upper].mean(0), [1.0, 0.8 - 4 / np.pi], atol=0.25)


def test_8gaussians_eight_equal_modes_on_a_circle():
    x = make_dataset("8gaussians", N).astype(np.float64)
    angles = np.arange(8) * np.pi / 4
    centers = 4.0 / 1.414 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    dist = np.linalg.norm(x[:, None] - centers[None], axis=2)
    mode = dist.argmin(axis=1)
    np.testing.assert_allclose(np.bincount(mode, minlength=8) / N, 1 / 8, atol=0.025)
    for k in range(8):
        np.testing.assert_allclose(x[mode == k].mean(0), centers[k], atol=0.1)
    assert dist.min(axis=1).mean() < 0.6  # std 0.35 per axis: mean distance about 0.44


def test_checkerboard_only_even_squares():
    x = make_dataset("checkerboard", N)
    assert x.min() >= -4.0 and x.max() <= 4.0
    cells = np.floor(x / 2).astype(int)
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()
    _, counts = np.unique(cells, axis=0, return_counts=True)
    assert len(counts) == 8
    np.testing.assert_allclose(counts / N, 1 / 8, atol=0.025)


def test_pinwheel_five_fold_symmetry():
    _, theta = _polar(make_dataset("pinwheel", N))
    moments = [abs(np.exp(1j * k * theta).mean()) for k in range(1, 6)]
    assert max(moments[:4]) < 0.08  # no 1-, 2-, 3- or 4-fold structure
    assert moments[4] > 0.4  # five arms


def test_rings_four_concentric_circles():
    r, theta = _polar(make_dataset("rings", N))
    ring = np.clip(np.round(r / 0.75), 1, 4)
    assert (np.abs(r - 0.75 * ring) < 0.25).mean() > 0.99
    np.testing.assert_allclose(np.bincount(ring.astype(int), minlength=5)[1:] / N, 0.25, atol=0.03)
    assert abs(np.exp(1j * theta).mean()) < 0.05  # uniform in angle


def test_2spirals_angle_winds_with_radius():
    # Each arm has polar angle pi - 3r (or -3r) modulo 2 pi: 2 (theta + 3r) is near 0 mod 2 pi.
    x = make_dataset("2spirals", N)
    r, theta = _polar(x)
    assert abs(np.exp(2j * (theta + 3 * r)).mean()) > 0.5
    shuffled = np.random.default_rng(0).permutation(r)
    assert abs(np.exp(2j * (theta + 3 * shuffled)).mean()) < 0.1
    np.testing.assert_allclose(x.mean(0), 0.0, atol=0.1)  # the arms are point reflections


def test_digits():
    x = make_dataset("digits", num_samples=10)
    assert x.shape == (1797, 8, 8, 1)
    assert x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 16.0
    np.testing.assert_array_equal(x, np.round(x))  # raw integer grey levels


@pytest.mark.parametrize("num_samples", [0, -3, 2.5])
def test_bad_num_samples(num_samples):
    with pytest.raises(DataError, match="num_samples must be an integer >= 1"):
        make_dataset("moons", num_samples=num_samples)


def test_unknown_name_lists_valid_names():
    with pytest.raises(DataError, match=r"unknown dataset 'moon'.*moons, 8gaussians.*digits"):
        make_dataset("moon")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_without_header(tmp_path):
    x = load_array(_write(tmp_path, "a.csv", "1,2.5\n-3, 4e1\n\n"))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, [[1.0, 2.5], [-3.0, 40.0]])


def test_csv_with_header(tmp_path):
    x = load_array(_write(tmp_path, "a.csv", '"x","y","z"\n1,2,3\n4,5,6\n'))
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("shape", [(5, 3), (4, 6, 6, 1)])
def test_npy(tmp_path, shape):
    data = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    np.save(tmp_path / "a.npy", data)
    x = load_array(str(tmp_path / "a.npy"))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, data)


def test_load_data_name_and_path(tmp_path):
    np.testing.assert_array_equal(load_data("rings", 50, seed=4), make_dataset("rings", 50, seed=4))
    np.testing.assert_array_equal(load_data(str(_write(tmp_path, "a.csv", "1,2\n"))), [[1, 2]])
    with pytest.raises(DataError, match=r"'mons' is neither a dataset .*moons.* nor an existing"):
        load_data("mons")


CSV_ERRORS = {
    "non-numeric": ("x,y\n1,2\n3,abc\n", r"a\.csv: non-numeric cell 'abc' at line 3, column 2$"),
    "no header": ("1,2\n3,4\nx,y\n", r"non-numeric cell 'x' at line 3, column 1$"),
    "mixed header": ("x,2\n1,2\n", r"non-numeric cell 'x' at line 1, column 1$"),
    "empty cell": ("1,2\n3,\n", r"empty cell at line 2, column 2$"),
    "ragged": ("1,2\n3,4,5\n", r"ragged rows: line 2 has 3 comma-separated columns, expected 2$"),
    "ragged header": ("a,b\n1,2,3\n", r"line 2 has 3 comma-separated columns, expected 2$"),
    "decimal commas": ("1,5;2,5\n", r"line 1, column 2 \(read as comma-separated; decimal commas"),
    "semicolons, decimal commas": ("1;2\n1,5;2\n", r"'1,5' at line 2, column 1 \(read as semi"),
    "nan": ("1,2\n3,4\n5,nan\n", r"NaN at line 3, column 2$"),
    "inf": ("1,2\n-inf,4\n", r"-inf at line 2, column 1$"),
    "overflow": (
        "1,2\n1e39,4\n",
        r"the value 1e\+39, beyond float32's range \(\+-3\.4e\+38\) at line 2, column 1$",
    ),
    "header only": ("x,y\n", r"empty data: no numeric rows$"),
    "empty file": ("", r"empty data: no numeric rows$"),
    "blank lines": ("\n\n  \n", r"empty data: no numeric rows$"),
}


@pytest.mark.parametrize("case", CSV_ERRORS)
def test_csv_errors(tmp_path, case):
    text, message = CSV_ERRORS[case]
    with pytest.raises(DataError, match=message) as info:
        load_array(_write(tmp_path, "a.csv", text))
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_csv_not_text(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"\xff\xfe\x00\x01\x80")
    with pytest.raises(DataError, match="cannot read file: not UTF-8 text"):
        load_array(tmp_path / "a.csv")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found$"):
        load_array(tmp_path / "nope.csv")


def test_unsupported_extension(tmp_path):
    expected = r"unsupported file type '\.txt'; expected \.csv, \.csv\.gz or \.npy$"
    with pytest.raises(DataError, match=expected):
        load_array(_write(tmp_path, "a.txt", "1,2\n"))
    with pytest.raises(DataError, match=r"'\.csv\.bz2'; .* decompress the others\)$"):
        load_array(_write(tmp_path, "a.csv.bz2", "1,2\n"))
    with pytest.raises(DataError, match=r"TFRecord files are streamed as shards by `train"):
        load_array(_write(tmp_path, "a.tfrecord", "1,2\n"))


def test_a_gzipped_csv_is_read_as_it_is(tmp_path):
    import gzip

    with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
        f.write("a,b\n1,2\n3,4\n")
    table = load_table(tmp_path / "t.csv.gz")
    np.testing.assert_array_equal(table.values, [[1, 2], [3, 4]])
    assert table.columns == ["a", "b"]
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n")[:-6])
    with pytest.raises(DataError, match=r"cut\.csv\.gz: cannot read file: not a complete gzip"):
        load_table(tmp_path / "cut.csv.gz")


def test_a_trailing_separator_is_named_as_the_cause(tmp_path):
    hint = r"empty cell at line 2, column 3 \(the lines end with a comma: remove the trailing"
    with pytest.raises(DataError, match=hint):
        load_array(_write(tmp_path, "t.csv", "a,b,\n1,2,\n"))


def test_directory_is_named_as_such(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(DataError, match=r"d\.csv is a directory; expected a \.csv or \.npy file$"):
        load_array(tmp_path / "d.csv")


@pytest.mark.parametrize(
    "text",
    [
        "# written by np.savetxt\n1,2\n3,4\n",
        "x;y\n1;2\n3;4\n",
        "1\t2\n# a comment\n3\t4\n",
        "\n  # indented comment\n1.0e0, 2\n3,4\n",
    ],
    ids=["comment", "semicolons", "tabs", "spaces"],
)
def test_csv_dialects(tmp_path, text):
    np.testing.assert_array_equal(load_array(_write(tmp_path, "a.csv", text)), [[1, 2], [3, 4]])


def test_npy_not_npy(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"1,2\n3,4\n")
    with pytest.raises(DataError, match=r"a\.npy: cannot read file: not a valid \.npy file$"):
        load_array(tmp_path / "a.npy")


def test_npy_truncated(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((100, 3)))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"not a valid \.npy file$"):
        load_array(tmp_path / "a.npy")


NPY_ERRORS = {
    "0-D": (np.array(3.0), r"expected a 2-D \[N, D\] or 4-D \[N, H, W, C\] array, got 0-D"),
    "1-D": (np.arange(4.0), r"got 1-D with shape \(4,\)$"),
    "3-D": (np.zeros((2, 3, 3)), r"got 3-D with shape \(2, 3, 3\); add a channel axis"),
    "no rows": (np.zeros((0, 2)), r"empty data: array of shape \(0, 2\)$"),
    "object": (np.array([[1, "a"]], dtype=object), r"object dtype arrays are not supported"),
    "strings": (np.array([["1", "2"]]), r"unsupported dtype <U1; expected real numbers$"),
    "complex": (np.ones((2, 2), dtype=complex), r"unsupported dtype complex128"),
    "nan": (np.array([[1.0, 2.0], [3.0, 4.0], [5.0, np.nan]]), r"NaN at row 3, column 2$"),
    "inf image": (np.full((2, 2, 2, 1), np.inf), r"inf at row 1, flat index 0$"),
}


@pytest.mark.parametrize("case", NPY_ERRORS)
def test_npy_errors(tmp_path, case):
    array, message = NPY_ERRORS[case]
    np.save(tmp_path / "a.npy", array, allow_pickle=True)
    with pytest.raises(DataError, match=message) as info:
        load_array(tmp_path / "a.npy")
    assert "\n" not in str(info.value) and "a.npy" in str(info.value)


def test_npy_int_and_bool_are_converted(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[1, 2], [3, 4]], dtype=np.int16))
    np.save(tmp_path / "b.npy", np.array([[True, False]]))
    assert load_array(tmp_path / "a.npy").dtype == np.float32
    np.testing.assert_array_equal(load_array(tmp_path / "b.npy"), [[1.0, 0.0]])


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)


def test_split_sizes_disjoint_and_seeded():
    x = np.arange(100, dtype=np.float32)[:, None]
    train, valid = train_validation_split(x, validation_fraction=0.2, seed=5)
    assert train.shape == (80, 1) and valid.shape == (20, 1)
    assert not set(train[:, 0]) & set(valid[:, 0])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])[:, 0]), x[:, 0])
    again, _ = train_validation_split(x, validation_fraction=0.2, seed=5)
    other, _ = train_validation_split(x, validation_fraction=0.2, seed=6)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)
    assert not np.array_equal(np.sort(train[:, 0]), train[:, 0])  # shuffled


def test_split_images():
    train, valid = train_validation_split(np.zeros((10, 4, 4, 1)), 0.3)
    assert train.shape == (7, 4, 4, 1) and valid.shape == (3, 4, 4, 1)


@pytest.mark.parametrize(
    ("n", "fraction", "message"),
    [
        (5, 0.05, "cannot split 5 samples .*: the validation set would be empty"),
        (3, 0.9, "cannot split 3 samples .*: the training set would be empty"),
        (1, 0.5, "cannot split 1 samples"),
        (10, 0.0, r"validation_fraction must be in \(0, 1\); got 0.0"),
        (10, 1.0, r"validation_fraction must be in \(0, 1\); got 1.0"),
    ],
)
def test_split_errors(n, fraction, message):
    with pytest.raises(DataError, match=message):
        train_validation_split(np.zeros((n, 2)), validation_fraction=fraction)


def test_random_split_gives_every_part_at_least_one_example_and_shares_the_shuffle():
    x = np.arange(12, dtype=np.float32)[:, None]
    train, valid, test = random_split(x, [0.25, 0.01], seed=3)
    assert (len(train), len(valid), len(test)) == (8, 3, 1)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid, test])[:, 0]), x[:, 0])
    # train_validation_split is the one-fraction case of the same shuffle
    train2, valid2 = train_validation_split(x, 0.25, seed=3)
    two_way = random_split(x, [0.25], seed=3)
    np.testing.assert_array_equal(train2, two_way[0])
    np.testing.assert_array_equal(valid2, two_way[1])
    np.testing.assert_array_equal(valid2, valid)


@pytest.mark.parametrize(
    ("n", "fractions", "message"),
    [
        (2, [0.1, 0.1], "cannot split 2 samples .*: the training set would be empty"),
        (10, [0.5, 0.0], r"fractions must each be in \(0, 1\); got \[0.5, 0.0\]"),
        (10, [1.0], r"fractions must each be in \(0, 1\); got \[1.0\]"),
    ],
)
def test_random_split_errors(n, fractions, message):
    with pytest.raises(DataError, match=message):
        random_split(np.zeros((n, 2)), fractions)


def test_dequantized_adds_one_fixed_uniform_draw():
    levels = np.repeat(np.arange(17, dtype=np.float32), 50)
    noisy = dequantized(levels, seed=1)
    assert noisy.dtype == np.float32
    assert np.all(noisy >= levels) and np.all(noisy < levels + 1)
    assert np.unique(noisy - levels).size > 100  # fresh noise per value, not one offset
    np.testing.assert_array_equal(noisy, dequantized(levels, seed=1))
    assert not np.array_equal(noisy, dequantized(levels, seed=2))


def test_match_columns_reorders_by_name_and_refuses_what_does_not_match():
    x = np.arange(6.0).reshape(2, 3)
    same, note = match_columns(x, ["a", "b", "c"], ["a", "b", "c"], "--data t.csv")
    assert same is x and note is None
    moved, note = match_columns(x, ["c", "a", "b"], ["a", "b", "c"], "--data t.csv")
    np.testing.assert_array_equal(moved, x[:, [1, 2, 0]])
    assert note == "--data t.csv has the model's columns in another order; reordered by name"
    bare, note = match_columns(x, None, ["a", "b", "c"], "--data t.csv")
    assert bare is x and note.startswith("--data t.csv has no header row")
    assert match_columns(x, ["q", "r", "s"], None, "--data t.csv") == (x, None)
    with pytest.raises(DataError, match=r"^--data t.csv: .* it lacks 'c' \(the model"):
        match_columns(x[:, :2], ["a", "b"], ["a", "b", "c"], "--data t.csv")
    with pytest.raises(DataError, match=r"it has 'z', which the model was not trained on"):
        match_columns(np.zeros((2, 4)), [*"abcz"], ["a", "b", "c"], "--data t.csv")
    with pytest.raises(DataError, match=r"column names given more than once: 'a'"):
        match_columns(x, ["a", "a", "b", "c"], ["a", "b", "c"], "--data t.csv")


def test_load_table_keeps_the_header_names(tmp_path):
    (tmp_path / "t.csv").write_text(" alcohol , ash\n1,2\n3,4\n")
    table = load_table(tmp_path / "t.csv")
    assert table.columns == ["alcohol", "ash"] and table.values.shape == (2, 2)
    (tmp_path / "bare.csv").write_text("# made by hand\n1,2\n\n3,4\n")
    bare = load_table(tmp_path / "bare.csv")
    assert bare.columns is None and [bare.where(0), bare.where(1)] == ["line 2", "line 4"]


def test_a_row_number_column_is_recognised():
    x = np.random.default_rng(0).normal(size=(5, 2))
    numbered = np.column_stack([np.arange(1, 6), x])
    assert index_column(Table(numbered)) and index_column(Table(numbered - 1))
    assert index_column(Table(np.column_stack([x[:, 0], x]), ["", "a", "b"]))  # R's write.csv
    assert not index_column(Table(x, ["a", "b"]))
    assert not index_column(Table(numbered[::-1]))  # shuffled numbers are data
    dropped = without_first_column(Table(numbered, ["", "a", "b"], np.arange(2, 7)))
    assert dropped.columns == ["a", "b"] and dropped.where(0) == "line 2"
    np.testing.assert_array_equal(dropped.values, x)
