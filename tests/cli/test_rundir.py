"""Run directories and output files (`tfp_realnvp.cli.rundir`, no TensorFlow): what may be
replaced, staging beside ``--out``, markers, whole-or-nothing writes, deferred signals. The
command line's use of them is in test_cli.py."""

import json
import os
import signal

import numpy as np
import pytest

from tfp_realnvp.cli import rundir
from tfp_realnvp.cli.rundir import MARKER, OutputError


def _run(path, files=("model.keras",), **info):
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("ours")
    rundir.write_marker(path, info)
    return path


def test_a_run_directory_is_replaced_only_when_it_is_wholly_ours(tmp_path, refusal):
    out = tmp_path / "run"
    rundir.check_run_dir(out, force=False)  # new
    out.mkdir()
    rundir.check_run_dir(out, force=False)  # empty
    (out / "notes.txt").write_text("mine")
    assert refusal(OutputError, rundir.check_run_dir, out, True) == (
        f"--out {out} holds files that are not a tfp-realnvp run (it has no {MARKER}); it is "
        "never replaced, even with --force: choose a new directory"
    )
    previous = _run(tmp_path / "previous")
    assert refusal(OutputError, rundir.check_run_dir, previous, False) == (
        f"--out {previous} holds a previous run; pass --force to replace it"
    )
    rundir.check_run_dir(previous, force=True)
    for name in ("a", "b", "c", "d"):
        (previous / name).write_text("mine")
        shown = ", ".join(sorted(p.name for p in previous.iterdir() if len(p.name) == 1)[:3])
        more = ", ..." if name == "d" else ""
        assert refusal(OutputError, rundir.check_run_dir, previous, True) == (
            f"--out {previous} is a tfp-realnvp run but also holds files the run did not write "
            f"({shown}{more}); move them out first, or choose a new directory"
        )


def test_a_run_directory_never_replaces_the_cwd_an_input_or_a_file(tmp_path, monkeypatch, refusal):
    monkeypatch.chdir(tmp_path)
    for out in (tmp_path, tmp_path.parent):
        assert refusal(OutputError, rundir.check_run_dir, out, True) == (
            f"--out {out} is the current directory or one of its parents, which a run would "
            "replace; give a new directory, e.g. runs/NAME"
        )
    data = tmp_path / "runs" / "data.csv"
    data.parent.mkdir()
    data.write_text("1,2\n")
    out = tmp_path / "runs"
    assert refusal(OutputError, rundir.check_run_dir, out, True, [("--data", data)]) == (
        f"--out {out} would replace --data {data}, an input of this command; choose another --out"
    )
    rundir.check_run_dir(tmp_path / "other", True, [("--data", data)])
    assert refusal(OutputError, rundir.check_run_dir, data, True) == (
        f"--out {data} exists and is a file; give a directory for the run"
    )
    below = data / "run"
    assert refusal(OutputError, rundir.check_run_dir, below, True) == (
        f"--out {below}: {data} is a file, not a directory"
    )
    relative = rundir.Path("new") / "run"  # relative: shown as the user wrote it
    rundir.check_run_dir(relative, False)


def test_a_folder_that_cannot_be_written_in_is_named_with_the_reason(monkeypatch, refusal):
    # /proc refuses new files even to root; the probe file must be tried there, not elsewhere,
    # and "." is shown as the folder it stands for.
    monkeypatch.chdir("/proc")
    message = refusal(OutputError, rundir.check_run_dir, rundir.Path("run"), False)
    assert message == "--out run: cannot write in /proc: No such file or directory"


def test_an_output_file_is_checked_before_anything_runs(tmp_path, refusal):
    data = tmp_path / "data.npy"
    np.save(data, np.zeros((2, 2)))
    refusals = {
        tmp_path / "out.txt": "--out {p}: unsupported file type '.txt'; use .npy or .csv",
        tmp_path / "out": "--out {p}: unsupported file type '(none)'; use .npy or .csv",
        data: "--out {p} would replace --data {p}, an input of this command; choose another --out",
        tmp_path / "missing" / "out.csv": "--out {p}: directory {parent} does not exist",
    }
    for path, message in refusals.items():
        got = refusal(OutputError, rundir.check_output_file, path, True, [("--data", data)])
        assert got == message.format(p=path, parent=path.parent)
    (tmp_path / "file").write_text("")
    below = tmp_path / "file" / "out.csv"
    assert refusal(OutputError, rundir.check_output_file, below, True) == (
        f"--out {below}: {tmp_path / 'file'} is a file, not a directory"
    )
    (tmp_path / "dir.csv").mkdir()
    assert refusal(OutputError, rundir.check_output_file, tmp_path / "dir.csv", True) == (
        f"--out {tmp_path / 'dir.csv'} is a directory; give a file name"
    )
    (tmp_path / "old.CSV").write_text("x\n")
    assert refusal(OutputError, rundir.check_output_file, tmp_path / "old.CSV", False) == (
        f"--out {tmp_path / 'old.CSV'} exists; pass --force to replace it"
    )
    rundir.check_output_file(tmp_path / "old.CSV", True)
    rundir.check_output_file(tmp_path / "new.npy", False)


def test_staging_happens_beside_the_run_and_leaves_nothing_unpublished(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    with rundir.staging_dir(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".run.tmp-")
        (tmp / "x").write_text("partial")
    assert not (tmp_path / "a").exists()  # the parents it created went with it
    mine = tmp_path / "mine"
    mine.mkdir()
    with rundir.staging_dir(mine / "run", within=mine) as tmp:
        assert tmp.parent == mine
    assert mine.is_dir() and list(mine.iterdir()) == []  # existing parents stay
    with rundir.staging_dir(out) as tmp:
        (tmp / "model.keras").write_text("whole")
        rundir.write_marker(tmp, {"data": "moons"})
        rundir.publish(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "model.keras"]
    assert [p.name for p in out.parent.iterdir()] == ["run"]


def test_staging_a_run_where_nothing_can_be_created_is_one_line(tmp_path, refusal):
    blocker = tmp_path / "file"
    blocker.write_text("")
    message = refusal(OutputError, rundir.staging_dir(blocker / "run").__enter__)
    assert message.startswith(f"--out {blocker / 'run'}: cannot create it: ")


def test_publishing_replaces_a_previous_run_whole(tmp_path):
    out = _run(tmp_path / "run", files=("old.png", "model.keras"))
    new = _run(tmp_path / ".run.tmp-1", files=("model.keras",), epochs=3)
    rundir.publish(new, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "model.keras"]
    assert rundir.read_marker(out)["epochs"] == 3


def test_a_marker_lists_the_runs_files_and_proves_it_ours(tmp_path):
    run = _run(tmp_path / "run", files=("b.png", "a.json"), data="moons")
    record = json.loads((run / MARKER).read_text())
    assert record == {
        "format": "tfp-realnvp-run",
        "version": 1,
        "data": "moons",
        "files": ["a.json", "b.png"],
    }
    assert rundir.read_marker(run) == record
    with pytest.raises(ValueError):
        rundir.write_marker(run, {"nll": float("nan")})  # strict JSON: no NaN in a marker
    for text in ("not json", "[1, 2]", '{"format": "other", "files": []}', '{"format": '
                 '"tfp-realnvp-run", "files": "a.json"}'):  # fmt: skip
        (run / MARKER).write_text(text)
        assert rundir.read_marker(run) is None, text
    assert rundir.read_marker(tmp_path / "nothing") is None


def test_only_the_empty_directories_a_run_created_are_removed(tmp_path):
    created = [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"]
    created[-1].mkdir(parents=True)
    (created[1] / "kept.txt").write_text("mine")
    rundir.remove_empty(created)
    assert not created[2].exists() and created[1].is_dir() and created[0].is_dir()


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_an_array_is_written_in_blocks_and_appears_whole(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    data = np.arange(12, dtype=np.float32).reshape(6, 2) / 3
    with rundir.array_writer(path, (6, 2), header=["a", "b"]) as write:
        write(data[:4])
        assert not path.exists()  # nothing at the path until the end
        write(data[4:])
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(path), data)
    else:
        assert path.read_text().splitlines()[0] == "a,b"
        np.testing.assert_allclose(np.loadtxt(path, delimiter=",", skiprows=1), data, rtol=1e-7)
    with pytest.raises(RuntimeError, match="disk"), rundir.array_writer(path, (6, 2)) as write:
        write(data[:2])
        raise RuntimeError("disk full")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the old file, untouched


def test_signals_become_interrupts_and_wait_for_a_rename_pair():
    previous = rundir.install_signal_handlers()
    try:
        assert rundir.received_signal() is None
        with pytest.raises(rundir.Interrupted) as stopped, rundir.deferred_signals():
            with rundir.deferred_signals():
                os.kill(os.getpid(), signal.SIGTERM)
            assert rundir.received_signal() == signal.SIGTERM  # held until the outer block ends
        assert stopped.value.signum == signal.SIGTERM and str(stopped.value) == "SIGTERM"
        with pytest.raises(rundir.Interrupted) as stopped:
            os.kill(os.getpid(), signal.SIGINT)
        assert rundir.received_signal() == signal.SIGTERM  # the first one counts
    finally:
        rundir.restore_signal_handlers(previous)
    assert signal.getsignal(signal.SIGTERM) == previous[signal.SIGTERM]
    assert rundir.install_signal_handlers() and rundir.received_signal() is None
    rundir.restore_signal_handlers(previous)
