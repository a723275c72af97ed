"""Which shard files a run reads and the cheap checks on each, before TensorFlow starts
(`tfp_realnvp.data.shards`): numpy and files only. Streaming the rows is in test_shards.py."""

from pathlib import Path

import numpy as np

from tfp_realnvp.data import shards
from tfp_realnvp.data.shards import Shard, held_out, list_shards, plan_shards
from tfp_realnvp.data.tables import DataError


def _npy(path: Path, rows: int = 4, width: int = 3, dtype="float32") -> Path:
    with path.open("wb") as f:  # np.save(path) would add ".npy" to "x.NPY"
        np.save(f, np.zeros((rows, width), dtype))
    return path


def test_a_glob_lists_its_files_sorted_and_a_file_itself(tmp_path):
    for name in ("b.npy", "a.npy", "c.NPY"):
        _npy(tmp_path / name)
    assert list_shards(str(tmp_path / "*.*")) == [tmp_path / n for n in ("a.npy", "b.npy", "c.NPY")]
    assert list_shards(str(tmp_path / "b.npy")) == [tmp_path / "b.npy"]
    _npy(tmp_path / "X.npy")  # a plain name, whatever letters it has
    assert list_shards(str(tmp_path / "X.npy")) == [tmp_path / "X.npy"]


def test_what_a_spec_cannot_list_is_named(tmp_path, refusal):
    _npy(tmp_path / "a.npy")
    (tmp_path / "a.csv").write_text("1,2\n")
    (tmp_path / "dir.npy").mkdir()
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "README").write_text("")
    refusals = {
        "missing.npy": "--data {d}/missing.npy: no such file",
        "*.parquet": "--data {d}/*.parquet: no such file matches",
        "?.parquet": "--data {d}/?.parquet: no such file",
        "a.*": "--data {d}/a.*: mixes csv and npy files; use one kind",
        "*.npy": "--data {d}/*.npy: {d}/dir.npy is a directory; expected shard files",
        "notes.txt": "--data {d}/notes.txt: {d}/notes.txt has unsupported type '.txt'; "
        "expected .npy, .csv or .tfrecord",
        "README": "--data {d}/README: {d}/README has unsupported type '(none)'; expected .npy, "
        ".csv or .tfrecord",
    }
    for spec, message in refusals.items():
        assert refusal(DataError, list_shards, str(tmp_path / spec)) == message.format(d=tmp_path)
    message = refusal(DataError, list_shards, str(tmp_path / "missing.npy"), "--test-data")
    assert message.startswith("--test-data ")


def test_a_shard_is_inspected_by_its_header_alone(tmp_path):
    assert shards.inspect_shard(_npy(tmp_path / "a.npy", width=5)) == Shard(
        tmp_path / "a.npy", "npy", 5
    )
    (tmp_path / "b.csv").write_text("\ufeff# made by hand\n\nx;y;z\n1;2;3\n")
    assert shards.inspect_shard(tmp_path / "b.csv") == Shard(tmp_path / "b.csv", "csv", 3, 3, ";")
    (tmp_path / "c.csv").write_text("\n1\t2\n")
    assert shards.inspect_shard(tmp_path / "c.csv") == Shard(tmp_path / "c.csv", "csv", 2, 0, "\t")
    (tmp_path / "d.tfrecord").write_bytes(bytes(16))
    assert shards.inspect_shard(tmp_path / "d.tfrecord") == Shard(
        tmp_path / "d.tfrecord", "tfrecord", None
    )
    whole = _npy(tmp_path / "e.npy", width=2, dtype="int32")  # whole numbers are numbers
    assert shards.inspect_shard(whole).width == 2
    # A comment may be indented; a trailing separator is a cell (the rows say it is empty).
    (tmp_path / "f.csv").write_text("  # made by hand\n1\t2\t\n")
    assert shards.inspect_shard(tmp_path / "f.csv") == Shard(tmp_path / "f.csv", "csv", 3, 0, "\t")


def test_a_shard_with_a_bad_header_is_named(tmp_path, refusal):
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    np.save(tmp_path / "flat.npy", np.zeros(3, "float32"))
    _npy(tmp_path / "empty.npy", rows=0)
    (tmp_path / "empty.csv").write_text("# nothing\n\n")
    (tmp_path / "empty.tfrecord").write_bytes(bytes(15))
    (tmp_path / "gone.npy").symlink_to(tmp_path / "nowhere.npy")
    d = tmp_path
    refusals = {
        "text.npy": f"{d}/text.npy: unsupported dtype <U1; expected real numbers",
        "flat.npy": f"{d}/flat.npy: expected a 2-D [N, D] array, got 1-D with shape (3,) "
        "(shards hold vectors)",
        "empty.npy": f"{d}/empty.npy: empty data: array of shape (0, 3)",
        "empty.csv": f"{d}/empty.csv: empty data: no numeric rows",
        "empty.tfrecord": f"{d}/empty.tfrecord: empty data: no records",
    }
    for name, message in refusals.items():
        assert refusal(DataError, shards.inspect_shard, tmp_path / name) == message
    message = refusal(DataError, shards.inspect_shard, d / "gone.npy")
    assert message == f"{d}/gone.npy: cannot read file: No such file or directory"


def test_held_out_shards_are_a_seeded_choice_of_whole_files_in_order():
    paths = [Path(f"s{i}.npy") for i in range(10)]
    for fraction, count in ((0.01, 1), (0.2, 2), (0.25, 2), (0.35, 4)):  # round half to even
        rest, held = held_out(paths, fraction, seed=3)
        assert len(held) == count and sorted(rest + held) == sorted(paths)
        assert rest == sorted(rest) and held == sorted(held)  # the given order kept
        assert held_out(paths, fraction, seed=3) == (rest, held)
    draws = {tuple(held_out(paths, 0.2, seed)[1]) for seed in range(6)}
    assert len(draws) > 1  # the seed chooses


def test_a_plan_holds_out_validation_then_test_shards_from_their_seeds(tmp_path):
    for i in range(10):
        _npy(tmp_path / f"s{i}.npy")
    spec = str(tmp_path / "s*.npy")
    plan = plan_shards(spec, None, None, 0.3, 0.3, seed=4)
    everything = list_shards(spec)
    rest, validation = held_out(everything, 0.3, 4)  # (seeds 3 to 5 all choose differently)
    train, test = held_out(rest, 0.3, 5)
    assert [s.path for s in plan.validation] == validation
    assert [s.path for s in plan.test] == test and [s.path for s in plan.train] == train
    assert plan.width == 3 and sorted(plan.paths()) == everything


def test_a_plan_takes_validation_and_test_files_as_given(tmp_path, refusal):
    data, val, test = (_npy(tmp_path / f"{n}.npy") for n in ("data", "val", "test"))
    plan = plan_shards(str(data), str(val), str(test), 0.5, 0.5, seed=0)
    assert plan.paths() == [data, val, test]
    message = refusal(DataError, plan_shards, str(data), None, str(test), 0.5, 0.5, 0)
    assert message == (
        f"--data {data}: 1 shard left to hold out validation-data from; give --validation-data "
        "or more shards (whole shards are held out)"
    )
    message = refusal(DataError, plan_shards, str(data), str(val), None, 0.5, 0.5, 0)
    assert message.startswith(f"--data {data}: 1 shard left to hold out test-data from; give")
    # Two shards are enough to hold one out; the messages name the argument that lists none.
    two = f"{data.parent}/[dt]*.npy"
    plan = plan_shards(two, str(val), None, 0.5, 0.5, 0)
    assert len(plan.train) == len(plan.test) == 1 and sorted(plan.paths()) == [data, test, val]
    for args, flag in (((str(tmp_path / "none.npy"), None), "--validation-data"),
                       ((str(val), str(tmp_path / "none.npy")), "--test-data")):  # fmt: skip
        message = refusal(DataError, plan_shards, str(data), *args, 0.5, 0.5, 0)
        assert message == f"{flag} {tmp_path / 'none.npy'}: no such file"


def test_a_plan_refuses_shards_of_different_or_too_few_columns(tmp_path, refusal):
    a, b, c = _npy(tmp_path / "a.npy"), _npy(tmp_path / "b.npy", width=4), _npy(tmp_path / "c.npy")
    message = refusal(DataError, plan_shards, str(a), str(c), str(b), 0.1, 0.1, 0)
    assert message == f"{b}: 4 columns, but {a} has 3; every shard must have the same width"
    one = _npy(tmp_path / "one.npy", width=1)
    held = [str(_npy(tmp_path / f"{name}.npy", width=1)) for name in ("val", "test")]
    message = refusal(DataError, plan_shards, str(one), *held, 0.1, 0.1, 0)
    assert message == f"{one}: one column: RealNVP couplings split the dimensions in two"
    for name in ("r", "val", "test"):
        (tmp_path / f"{name}.tfrecord").write_bytes(bytes(16))
    records, held = (
        str(tmp_path / "r.tfrecord"),
        [str(tmp_path / f"{n}.tfrecord") for n in ("val", "test")],
    )
    assert plan_shards(records, *held, 0.1, 0.1, 0).width is None  # read later


def test_a_plan_refuses_a_held_out_shard_that_is_a_training_shard_too(tmp_path, refusal):
    # Its rows would be trained on, then scored as held out: a test NLL of training rows.
    a, b, c = (_npy(tmp_path / f"{n}.npy") for n in "abc")
    (tmp_path / "sub").mkdir()
    b_again = str(tmp_path / "sub" / ".." / "b.npy")  # another name of the same file
    for spec, args, flag, given, path in (
        (str(tmp_path / "[ab].npy"), (str(a), str(c)), "--validation-data", str(a), a),
        (str(tmp_path / "[ab].npy"), (str(c), b_again), "--test-data", b_again, Path(b_again)),
    ):
        message = refusal(DataError, plan_shards, spec, *args, 0.3, 0.3, 0)
        assert message == (
            f"{flag} {given}: {path} is a training shard too (--data {spec}); a held-out set "
            f"must not be trained on: give --data a pattern without it, or leave out {flag} to "
            "hold whole shards of --data out"
        )
    d = _npy(tmp_path / "d.npy")
    plan = plan_shards(str(tmp_path / "[ab].npy"), str(c), str(d), 0.3, 0.3, 0)
    assert [s.path for s in plan.train] == [a, b]


def test_a_plan_refuses_a_test_shard_that_is_a_validation_shard_too(tmp_path, refusal):
    # The validation NLL picks the epoch kept: a test NLL on the same rows reads too well.
    a, b, c = (_npy(tmp_path / f"{n}.npy") for n in "abc")
    for validation, test, both in ((str(b), str(b), b), (str(tmp_path / "[bc].npy"), str(c), c)):
        message = refusal(DataError, plan_shards, str(a), validation, test, 0.3, 0.3, 0)
        assert message == (
            f"--test-data {test}: {both} is a validation shard too (--validation-data "
            f"{validation}); the validation NLL picks the epoch kept, so a test NLL on the same "
            "rows reads too well: give --test-data files of their own, or leave it out to hold "
            "whole shards of --data out"
        )


def test_a_run_is_named_after_its_shards():
    assert shards.default_name("data/train/part-*.npy") == "train"
    assert shards.default_name("part-*.npy") == "shards"
    assert shards.default_name("data/big.tfrecord") == "big"
    assert shards.default_name("data/X.tfrecord") == "X"
    assert shards.is_pattern("x.TFRecords") and shards.is_pattern("d/x.tfrecord")
    assert shards.is_pattern("p[0-9].csv") and shards.is_pattern("p?.csv")
    assert not shards.is_pattern("X.npy") and not shards.is_pattern("x.npy")
    assert [shards.steps(rows, 4) for rows in (1, 4, 5, 8)] == [1, 1, 2, 2]
