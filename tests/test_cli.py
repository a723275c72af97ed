"""The tfp-realnvp command line: the main job, its outputs, and its refusals."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import cli

FAST = [
    "--no-xla",
    "--num-samples",
    "400",
    "--epochs",
    "2",
    "--couplings",
    "2",
    "--hidden",
    "8",
    "--verbose",
    "0",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    assert cli.main(["train", "--out", str(out), *FAST]) == 0
    return out


def _snapshot(path: Path) -> dict:
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _fails(argv, capsys, message):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfp-realnvp: error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_train_writes_a_complete_run_directory(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert names == {
        "saved_model",
        "model.keras",
        "metrics.json",
        "loss.png",
        "samples.png",
        "density.png",
    }
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in (
        "train_nll",
        "validation_nll",
        "test_nll",
        "test_bits_per_dim",
        "epochs",
        "wall_time_s",
    ):
        assert np.isfinite(metrics[key]), key
    assert metrics["epochs"] == 2 and metrics["num_examples"]["test"] == 40
    np.testing.assert_allclose(
        metrics["test_bits_per_dim"], metrics["test_nll"] / (2 * np.log(2)), rtol=1e-9
    )
    for png in ("loss.png", "samples.png", "density.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_and_log_prob_from_the_exported_model(run_dir, tmp_path, capsys):
    assert (
        cli.main(["sample", "--model", str(run_dir), "-n", "7", "--out", str(tmp_path / "s.npy")])
        == 0
    )
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (7, 2) and np.all(np.isfinite(samples))
    assert (
        cli.main(["sample", "--model", str(run_dir), "-n", "3", "--out", str(tmp_path / "s.csv")])
        == 0
    )
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (3, 2)

    np.savetxt(tmp_path / "pts.csv", samples, delimiter=",")
    argv = [
        "log-prob",
        "--model",
        str(run_dir),
        "--data",
        str(tmp_path / "pts.csv"),
        "--out",
        str(tmp_path / "lp.npy"),
    ]
    assert cli.main(argv) == 0
    served = tf.saved_model.load(str(run_dir / "saved_model")).signatures["log_prob"]
    want = served(x=tf.constant(samples.astype("float32")))["log_prob"].numpy()
    np.testing.assert_allclose(np.load(tmp_path / "lp.npy"), want, rtol=1e-6)


def test_non_empty_output_directory_is_refused_and_untouched(run_dir, capsys):
    before = _snapshot(run_dir)
    _fails(["train", "--out", str(run_dir), *FAST], capsys, "is not empty; pass --force")
    assert _snapshot(run_dir) == before


def test_force_replaces_a_run_whole(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert cli.main(["train", "--out", str(out), "--force", *FAST]) == 0
    assert not (out / "old.txt").exists() and (out / "metrics.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_failed_training_leaves_the_directory_as_it_was(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("keep")

    def boom(data, args, tmp):
        (tmp / "metrics.json").write_text("{half")
        raise KeyboardInterrupt

    monkeypatch.setattr("tfp_realnvp.training.train_run", boom)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["train", "--out", str(out), "--force", *FAST])
    assert _snapshot(out) == {Path("keep.txt"): b"keep"}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "file not found"),
        ("1,2\n3,abc\n", "row 2, column 2"),
        ("1,2\nnan,4\n", "row 2"),
        ("", "empty"),
    ],
)
def test_bad_training_data_is_one_line_and_writes_nothing(tmp_path, capsys, content, message):
    data = tmp_path / "d.csv"
    if content is not None:
        data.write_text(content)
    out = tmp_path / "run"
    _fails(["train", "--data", str(data), "--out", str(out), *FAST], capsys, message)
    assert not out.exists()


def test_log_prob_with_wrong_dimensionality(run_dir, tmp_path, capsys):
    np.savetxt(tmp_path / "three.csv", np.ones([4, 3]), delimiter=",")
    out = tmp_path / "lp.npy"
    argv = [
        "log-prob",
        "--model",
        str(run_dir),
        "--data",
        str(tmp_path / "three.csv"),
        "--out",
        str(out),
    ]
    _fails(argv, capsys, "the model expects (2,)")
    assert not out.exists()


def test_output_file_refusals(run_dir, tmp_path, capsys):
    existing = tmp_path / "s.npy"
    existing.write_bytes(b"mine")
    _fails(
        ["sample", "--model", str(run_dir), "-n", "2", "--out", str(existing)],
        capsys,
        "exists; pass --force",
    )
    assert existing.read_bytes() == b"mine"
    _fails(
        ["sample", "--model", str(run_dir), "-n", "2", "--out", str(tmp_path / "s.txt")],
        capsys,
        "unsupported file type '.txt'",
    )
    _fails(
        ["sample", "--model", str(tmp_path), "-n", "2", "--out", str(tmp_path / "x.npy")],
        capsys,
        "no exported model",
    )


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--epochs", "0"])
    assert e.value.code == 2
    assert "must be positive" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_trains_digits(tmp_path):
    script = Path(sys.executable).with_name("tfp-realnvp")
    out = tmp_path / "digits"
    run = subprocess.run(
        [
            str(script),
            "train",
            "--data",
            "digits",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--couplings",
            "2",
            "--hidden",
            "32",
            "--verbose",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"results in {out}" in run.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["event_shape"] == [8, 8, 1] and np.isfinite(metrics["test_bits_per_dim"])
    assert (out / "samples.png").exists()
