"""The tfp-realnvp command line: the main job, its outputs, and its refusals."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import cli
from tfp_realnvp._keras import LEGACY_KERAS
from tfp_realnvp.cli import backup_files, rundir, serve

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
    "--quiet",
]
SCRIPT = Path(sys.executable).with_name("tfp-realnvp")


def _plain_env() -> dict:
    """The environment of a user's shell: none of the test suite's TensorFlow settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    assert cli.main(["train", "--out", str(out), *FAST]) == 0
    return out


def _snapshot(path: Path) -> dict:
    """Every file and directory under ``path`` (hidden ones too), with file contents."""
    return {
        p.relative_to(path): p.read_bytes() if p.is_file() else None
        for p in sorted(path.rglob("*"))
    }


@pytest.mark.tf_keras  # the command line's whole Keras run
def test_train_writes_a_complete_marked_run_directory(run_dir):
    written = {"saved_model", "model.keras", "metrics.json", "loss.png", "samples.png"}
    written.add("density.png")
    assert {p.name for p in run_dir.iterdir()} == written | {rundir.MARKER}
    marker = rundir.read_marker(run_dir)
    assert set(marker["files"]) == written and marker["event_shape"] == [2]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("train_nll", "validation_nll", "test_nll", "test_bits_per_dim", "wall_time_s"):
        assert np.isfinite(metrics[key]), key
    assert metrics["epochs"] == 2 and metrics["num_examples"]["test"] == 40
    # The weights kept: the best epoch by validation NLL (Keras 3 restores it at the end;
    # tf-keras only when it stopped early, which 2 epochs cannot).
    best = int(np.argmin(metrics["history"]["val_loss"])) + 1
    assert metrics["best_epoch"] == (2 if LEGACY_KERAS else best)
    np.testing.assert_allclose(
        metrics["test_bits_per_dim"], metrics["test_nll"] / (2 * np.log(2)), rtol=1e-9
    )
    for png in ("loss.png", "samples.png", "density.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.tf_keras  # a CLI-trained model's Keras variables
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_a_trained_run_exports_to_tflite_exactly(run_dir, tmp_path):
    # Every run standardises through a vector Shift + Scale, whose log-det TFLite once lost.
    import tfp_realnvp as trn

    model = trn.load_model(run_dir / "model.keras")
    path = trn.export_tflite(model, tmp_path / "flow.tflite")
    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("log_prob")
    x = np.random.default_rng(5).normal(size=(6, 2)).astype("float32")
    np.testing.assert_allclose(runner(x=x)["log_prob"], model.log_prob(x), atol=1e-4)


@pytest.mark.slow  # a whole run
def test_outputs_follow_the_umask(tmp_path, run_dir):
    old = os.umask(0o002)
    try:
        assert cli.main(["train", "--out", str(tmp_path / "run"), *FAST]) == 0
        out = tmp_path / "s.npy"
        assert cli.main(["sample", "--model", str(run_dir), "-n", "2", "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o775
    assert (tmp_path / "run" / "metrics.json").stat().st_mode & 0o777 == 0o664
    assert out.stat().st_mode & 0o777 == 0o664


@pytest.mark.tf_keras  # a CLI-trained model's export
def test_sample_and_log_prob_from_the_exported_model(run_dir, tmp_path):
    sample = ["sample", "--model", str(run_dir), "--seed", "0"]
    assert cli.main([*sample, "-n", "7", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (7, 2) and np.all(np.isfinite(samples))
    assert cli.main([*sample, "-n", "3", "--out", str(tmp_path / "s.csv")]) == 0
    text = (tmp_path / "s.csv").read_text()
    assert text.startswith("x1,x2\n")  # a model of unnamed columns
    np.testing.assert_allclose(
        np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1), samples[:3], 1e-6
    )

    np.savetxt(tmp_path / "pts.csv", samples, delimiter=",")
    argv = ["log-prob", "--model", str(run_dir), "--data", str(tmp_path / "pts.csv")]
    assert cli.main([*argv, "--out", str(tmp_path / "lp.npy")]) == 0
    served = tf.saved_model.load(str(run_dir / "saved_model")).signatures["log_prob"]
    want = served(x=tf.constant(samples.astype("float32")))["log_prob"].numpy()
    np.testing.assert_allclose(np.load(tmp_path / "lp.npy"), want, rtol=1e-6)


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    """A run trained on a CSV with a header row: its columns have names."""
    tmp = tmp_path_factory.mktemp("named")
    x = np.random.default_rng(6).normal(size=(200, 3)) * [1.0, 5.0, 0.2] + [0.0, 10.0, -3.0]
    np.savetxt(tmp / "table.csv", x, delimiter=",", header="width,mass,depth", comments="")
    out = tmp / "run"
    assert cli.main(["train", "--data", str(tmp / "table.csv"), "--out", str(out), *FAST]) == 0
    return out, x


def test_log_prob_matches_columns_by_name(named_run, tmp_path, capsys):
    # A table with its columns (and header) reversed was scored as if in the model's order:
    # log-densities of about -4.5e12 on wine, with exit status 0.
    out, x = named_run
    assert rundir.read_marker(out)["columns"] == ["width", "mass", "depth"]
    tables = {
        "same.csv": (x, "width,mass,depth"),
        "reversed.csv": (x[:, ::-1], "depth,mass,width"),
        "bare.csv": (x, None),
    }
    scores = {}
    for name, (rows, header) in tables.items():
        kw = {"header": header, "comments": ""} if header else {}
        np.savetxt(tmp_path / name, rows, delimiter=",", **kw)
        capsys.readouterr()
        argv = ["log-prob", "--model", str(out), "--data", str(tmp_path / name)]
        assert cli.main([*argv, "--out", str(tmp_path / f"{name}.npy")]) == 0
        scores[name] = (np.load(tmp_path / f"{name}.npy"), capsys.readouterr().err)
    assert scores["same.csv"][1] == ""
    assert "in another order; reordered by name" in scores["reversed.csv"][1]
    assert (
        "no header row; its columns are taken to be the model's, in order: 'width'"
        in (scores["bare.csv"][1])
    )
    for name in ("reversed.csv", "bare.csv"):
        np.testing.assert_array_equal(scores[name][0], scores["same.csv"][0])
    assert np.all(scores["same.csv"][0] > -50)
    # Outputs read like the input: named columns, a fresh seed that is said and repeats.
    drawn = []
    for name in ("a.csv", "b.csv"):
        argv = ["sample", "--model", str(out), "-n", "4", "--out", str(tmp_path / name)]
        assert cli.main(argv) == 0
        drawn.append((tmp_path / name).read_text())
        assert drawn[-1].startswith("width,mass,depth\n")
    assert drawn[0] != drawn[1]  # the default seed is fresh each time ...
    seed = capsys.readouterr().out.split("with seed ")[-1].split(" ")[0]
    argv = ["sample", "--model", str(out), "-n", "4", "--out", str(tmp_path / "c.csv")]
    assert cli.main([*argv, "--seed", seed]) == 0
    assert (tmp_path / "c.csv").read_text() == drawn[1]  # ... and said, so it can be repeated
    argv = ["log-prob", "--model", str(out), "--data", str(tmp_path / "c.csv")]
    assert cli.main([*argv, "--out", str(tmp_path / "lp.csv")]) == 0
    assert (tmp_path / "lp.csv").read_text().startswith("log_prob\n")


@pytest.mark.slow  # a whole run
def test_a_row_name_column_is_dropped_in_training_and_scoring(tmp_path, capsys):
    # R's write.csv puts the row names first, under an empty name; they were trained on as a
    # feature (and dequantised, being whole numbers).
    x = np.random.default_rng(7).normal(size=(60, 2))
    lines = ['"","u","v"'] + [f'"{i}",{a},{b}' for i, (a, b) in enumerate(x.tolist(), 1)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "r.csv"), "--out", str(out), *FAST]) == 0
    said = capsys.readouterr()
    assert "note: column 1 (unnamed) of " in said.err
    best = json.loads((out / "metrics.json").read_text())["best_epoch"]
    kept = "" if best == 2 else f", with the weights of epoch {best} (the best)"
    assert f"after 2 epochs{kept} in " in said.out
    marker = rundir.read_marker(out)
    assert marker["columns"] == ["u", "v"] and marker["event_shape"] == [2]
    argv = ["log-prob", "--model", str(out), "--out", str(tmp_path / "lp.npy")]
    assert cli.main([*argv, "--data", str(tmp_path / "r.csv")]) == 0
    assert "the model was trained without it" in capsys.readouterr().err
    np.savetxt(tmp_path / "plain.csv", x, delimiter=",", header="u,v", comments="")
    assert (
        cli.main([*argv[:-1], str(tmp_path / "lp2.npy"), "--data", str(tmp_path / "plain.csv")])
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "lp.npy"), np.load(tmp_path / "lp2.npy"))


@pytest.mark.slow  # a whole run
def test_whiten_puts_the_fitted_gaussian_behind_the_flow(tmp_path):
    # The README recommended whitening small tables, and named a --whiten train did not take.
    import tfp_realnvp as trn

    cov = [[4.0, 1.9, 0.0], [1.9, 1.0, 0.3], [0.0, 0.3, 2.0]]
    x = np.random.default_rng(8).multivariate_normal([1.0, -2.0, 5.0], cov, size=400)
    np.savetxt(tmp_path / "t.csv", x, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "t.csv"), "--out", str(out), "--whiten", *FAST]
    assert cli.main(argv) == 0
    model = trn.load_model(out / "model.keras")  # the saved model itself, not metrics.json
    (whitening,) = [b for b in trn.walk(model.bijector) if isinstance(b, trn.Whitening)]
    cholesky = whitening.scale_tril
    np.testing.assert_allclose(cholesky @ cholesky.T, cov, atol=0.5)
    assert json.loads((out / "metrics.json").read_text())["model"]["whiten"] is True


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    """A run of p(y | u, v) on a table whose one target depends on its context."""
    tmp = tmp_path_factory.mktemp("conditional")
    rng = np.random.default_rng(9)
    context = rng.normal(size=(300, 2)) * [10.0, 1.0] + [50.0, 0.0]
    y = 0.1 * context[:, :1] + context[:, 1:] ** 2 + 0.3 * rng.normal(size=(300, 1))
    table = np.column_stack([context[:, 0], y, context[:, 1]])  # the target in the middle
    np.savetxt(tmp / "t.csv", table, delimiter=",", header="u,y,v", comments="")
    out = tmp / "run"
    argv = ["train", "--data", str(tmp / "t.csv"), "--out", str(out), "--context", "u,3"]
    assert cli.main([*argv, *FAST]) == 0
    return out, tmp / "t.csv", table


@pytest.mark.slow  # a whole run: its fixture's, which no other test reads
def test_a_conditional_run_learns_p_of_the_rest_given_the_context(conditional_run, tmp_path):
    # p(y | x) was not in the command line, and a 1-D target had no flow that takes it.
    import tfp_realnvp as trn

    out, data, table = conditional_run
    marker = rundir.read_marker(out)
    assert marker["columns"] == ["y"] and marker["context_columns"] == ["u", "v"]
    model = trn.load_model(out / "model.keras")  # the saved model itself
    assert model.event_shape_ == (1,) and model.context_shape_ == (2,)
    assert any(isinstance(b, trn.MaskedAutoregressive) for b in trn.walk(model.bijector))
    # Standardised by the training rows' mean and spread (a split of the table's).
    spread = table[:, [0, 2]].std(0)
    assert np.all(np.abs(model.context_center - table[:, [0, 2]].mean(0)) < 0.2 * spread)
    np.testing.assert_allclose(model.context_scale, spread, rtol=0.2)
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_nll_linear_gaussian"]) and metrics["event_shape"] == [1]
    # log-prob takes the table with both, by name or in the training order.
    np.savetxt(tmp_path / "bare.csv", table, delimiter=",")
    scores = []
    for name, source in (("a", data), ("b", tmp_path / "bare.csv")):
        argv = ["log-prob", "--model", str(out), "--data", str(source)]
        assert cli.main([*argv, "--out", str(tmp_path / f"{name}.npy")]) == 0
        scores.append(np.load(tmp_path / f"{name}.npy"))
    np.testing.assert_array_equal(scores[0], scores[1])
    want = model.log_prob(table[:, [1]].astype("float32"), table[:, [0, 2]].astype("float32"))
    np.testing.assert_allclose(scores[0], want, rtol=1e-4, atol=1e-4)
    # sample draws -n rows for each context row, written after it, like the input table.
    np.savetxt(tmp_path / "c.csv", table[:4, [2, 0]], delimiter=",", header="v,u", comments="")
    argv = ["sample", "--model", str(out), "--context-data", str(tmp_path / "c.csv"), "-n", "3"]
    assert cli.main([*argv, "--out", str(tmp_path / "s.csv"), "--seed", "0"]) == 0
    assert (tmp_path / "s.csv").read_text().startswith("u,v,y\n")
    drawn = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert drawn.shape == (12, 3) and np.all(np.isfinite(drawn))
    np.testing.assert_allclose(drawn[:, :2], np.repeat(table[:4, [0, 2]], 3, axis=0), rtol=1e-6)


def test_sampling_streams_in_blocks(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "_BLOCK_VALUES", 10)  # 5 rows of 2 values a block
    for name in ("s.npy", "s.csv"):
        argv = ["sample", "--model", str(run_dir), "-n", "12", "--out", str(tmp_path / name)]
        assert cli.main([*argv, "--seed", "0"]) == 0
    blocks = np.load(tmp_path / "s.npy")
    csv_rows = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv_rows, blocks, 1e-6)
    served = tf.saved_model.load(str(run_dir / "saved_model")).signatures["sample"]
    for i, rows in enumerate((slice(0, 5), slice(5, 10), slice(10, 12))):
        count = tf.constant(rows.stop - rows.start)
        want = served(count=count, seed=tf.constant([i, 0]))["samples"].numpy()
        np.testing.assert_allclose(blocks[rows], want, rtol=1e-6)
    assert len(set(map(tuple, blocks.round(6)))) == 12  # no block repeats another's noise


@pytest.mark.slow  # a whole run
def test_force_replaces_a_previous_run_whole(tmp_path, capsys, run_dir):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)  # a previous run of FAST
    first = (out / "model.keras").read_bytes()
    assert cli.main(["train", "--out", str(out), "--force", "--seed", "3", *FAST]) == 0
    assert (out / "model.keras").read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_failed_or_stopped_training_leaves_everything_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "runs" / "new"

    def stopped(data, config, tmp, *resumable):
        (tmp / "metrics.json").write_text("{half")
        raise rundir.Interrupted(signal.SIGTERM)

    monkeypatch.setattr("tfp_realnvp.cli.run.train_run", stopped)
    assert cli.main(["train", "--out", str(out), *FAST]) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []  # not even the runs/ it had to create

    def boom(data, config, tmp, *resumable):
        raise RuntimeError("a bug")

    monkeypatch.setattr("tfp_realnvp.cli.run.train_run", boom)
    with pytest.raises(RuntimeError, match="a bug"):  # a bug still shows its traceback
        cli.main(["train", "--out", str(out), *FAST])
    assert list(tmp_path.iterdir()) == []


def test_non_finite_metrics_are_valid_json_and_reported(tmp_path, monkeypatch, capsys):
    def diverged(data, config, tmp, *resumable):
        (tmp / "model.keras").write_text("weights")
        model = {"kind": "vector", "support": None}
        history = {"loss": [3.0, float("nan")]}
        return {"test_nll": float("inf"), "test_bits_per_dim": float("inf"), "epochs": 2,
                "history": history, "model": model}  # fmt: skip

    monkeypatch.setattr("tfp_realnvp.cli.run.train_run", diverged)
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), *FAST]) == 0

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["test_nll"] is None and metrics["history"]["loss"] == [3.0, None]
    assert metrics["non_finite"] == [
        "test_nll (inf)",
        "test_bits_per_dim (inf)",
        "history.loss (nan)",
    ]
    captured = capsys.readouterr()
    assert "warning: not finite, written as null in metrics.json: test_nll (inf)" in captured.err
    assert "test NLL not finite" in captured.out


@pytest.mark.slow  # a whole run of each flow family, with its exports
@pytest.mark.parametrize("flow", ["spline", "maf"])
def test_train_takes_a_flow_family_a_learned_base_and_regularisers(tmp_path, capsys, flow):
    out = tmp_path / flow
    args = ["--flow", flow, "--base", "student_t", "--weight-decay", "1e-3"]
    assert cli.main(["train", "--out", str(out), *FAST, *args]) == 0
    assert "the conditioners use dropout 0.2 against overfitting" in capsys.readouterr().err
    described = json.loads((out / "metrics.json").read_text())["model"]
    assert (described["flow"], described["base"]) == (flow, "student_t")
    assert (described["dropout"], described["weight_decay"]) == (0.2, 1e-3)
    x = np.random.default_rng(0).normal(size=(5, 2)).astype("float32")
    served = tf.saved_model.load(str(out / "saved_model")).signatures["log_prob"]
    import tfp_realnvp as trn

    loaded = trn.load_model(out / "model.keras")
    np.testing.assert_allclose(served(x=tf.constant(x))["log_prob"], loaded.log_prob(x), rtol=1e-5)
    # metrics.json echoes the configuration: the options must be in the saved model itself.
    parts = list(trn.walk(loaded.bijector))
    if flow == "maf":
        assert any(isinstance(b, trn.MaskedAutoregressive) for b in parts)
    else:
        couplings = [b for b in parts if isinstance(b, trn.Coupling)]
        spline = trn.RationalQuadraticSpline
        assert couplings and all(isinstance(b.transformer, spline) for b in couplings)
    assert type(loaded.learned_base).__name__ == "StudentT"
    conditioners = [b.conditioner for b in parts if hasattr(b, "conditioner")]
    assert conditioners and all(c.dropout == 0.2 for c in conditioners)
    assert type(loaded.optimizer).__name__ == "AdamW"
    assert float(loaded.optimizer.weight_decay) == pytest.approx(1e-3)


@pytest.mark.slow  # two whole runs on streamed shards
def test_train_streams_shards_and_a_bad_value_publishes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for i in range(3):
        np.save(tmp_path / f"part{i}.npy", rng.normal(size=(60, 2)).astype("float32"))
    np.savetxt(tmp_path / "val.csv", rng.normal(size=(30, 2)), delimiter=",")
    out = tmp_path / "run"
    shards = str(tmp_path / "part*.npy")
    base = ["train", "--data", shards, "--out", str(out), *FAST[:1], *FAST[3:]]
    assert cli.main([*base, "--validation-data", str(tmp_path / "val.csv")]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_examples"] == {"train": 120, "validation": 30, "test": 60}
    # The small-data note (120 training rows, counted by the checking pass), and no warning
    # about a stream running out.
    assert capsys.readouterr().err == (
        "tfp-realnvp: note: fewer than 5000 training rows: the conditioners use dropout 0.2 "
        "against overfitting (--dropout 0 turns it off)\n"
    )
    assert metrics["model"]["dropout"] == 0.2
    bad = rng.normal(size=(30, 2))
    np.savetxt(tmp_path / "bad.csv", bad, delimiter=",")
    rows = (tmp_path / "bad.csv").read_text().splitlines()
    rows[4] = rows[4].split(",")[0] + ",nan"
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    again = tmp_path / "again"
    argv = ["train", "--data", shards, "--out", str(again), *FAST[:1], *FAST[3:]]
    assert cli.main([*argv, "--validation-data", str(tmp_path / "bad.csv")]) == 2
    assert "bad.csv: NaN at line 5, column 2" in capsys.readouterr().err
    assert not again.exists() and not list(tmp_path.glob(".again*"))


def test_a_few_valued_column_gets_a_note_unless_it_is_the_context(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    coded = np.where(rng.random(100) < 0.5, -0.0446, 0.0507)  # diabetes' "sex", standardised
    table = np.column_stack([rng.normal(size=100), coded, rng.normal(size=100)])
    np.savetxt(tmp_path / "t.csv", table, delimiter=",", header="age,sex,bmi", comments="")

    def untrained(data, config, tmp, *resumable):
        raise RuntimeError("stop before training")

    monkeypatch.setattr("tfp_realnvp.cli.run.train_run", untrained)
    argv = ["train", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "run"), *FAST]
    for extra, noted in (([], True), (["--context", "sex"], False)):
        with pytest.raises(RuntimeError, match="stop before training"):
            cli.main([*argv, *extra])
        note = (
            f"tfp-realnvp: note: column 2 (sex) of {tmp_path / 't.csv'} takes only 2 values in "
            "100 rows (-0.0446, 0.0507), not whole numbers: a density fits them best with "
            "ever sharper spikes on the values, so the NLL rewards spikes; code them as 0, 1, "
            "... to have them dequantised\n"
        )
        assert (note in capsys.readouterr().err) == noted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


@pytest.mark.slow  # a whole run
def test_whole_number_columns_are_dequantised(tmp_path, capsys):
    rng = np.random.default_rng(0)
    counts = np.column_stack([rng.poisson(3.0, 400), rng.normal(size=400), rng.poisson(9, 400)])
    np.savetxt(tmp_path / "counts.csv", counts, delimiter=",", fmt="%g")
    out = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "counts.csv"), "--out", str(out), *FAST]
    assert cli.main(argv) == 0
    assert "note: columns 1, 3 of" in capsys.readouterr().err
    assert rundir.read_marker(out)["dequantized_columns"] == [1, 3]
    metrics = json.loads((out / "metrics.json").read_text())
    # Dequantised counts have a density (no spikes): NLL near the entropy of the counts,
    # 2.0 + 2.6 nats, plus the normal column's 1.4; well above it only while untrained.
    assert 5.0 < metrics["validation_nll"] < 12.0
    # Samples are continuous unless asked: --round-integers brings the counts back.
    drawn = {}
    for flag in ([], ["--round-integers"]):
        argv = ["sample", "--model", str(out), "-n", "50", "--seed", "1", "--force"]
        assert cli.main([*argv, "--out", str(tmp_path / "s.npy"), *flag]) == 0
        drawn[bool(flag)] = np.load(tmp_path / "s.npy")
    assert not np.all(drawn[False][:, [0, 2]] == np.round(drawn[False][:, [0, 2]]))
    np.testing.assert_array_equal(drawn[True][:, [0, 2]], np.round(drawn[False][:, [0, 2]]))
    np.testing.assert_array_equal(drawn[True][:, 1], drawn[False][:, 1])


def test_log_prob_outside_an_image_models_support_is_minus_inf(run_dir, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model").symlink_to(run_dir / "saved_model")
    (model / rundir.MARKER).write_text(
        json.dumps({**rundir.read_marker(run_dir), "support": [-1, 1]})
    )
    np.savetxt(tmp_path / "x.csv", [[0.5, 0.5], [-2, 0.0], [0.1, 0.9]], delimiter=",")
    argv = ["log-prob", "--model", str(model), "--data", str(tmp_path / "x.csv")]
    assert cli.main([*argv, "--out", str(tmp_path / "lp.npy")]) == 0
    log_prob = np.load(tmp_path / "lp.npy")
    assert log_prob[1] == -np.inf and np.all(np.isfinite(log_prob[[0, 2]]))
    err = capsys.readouterr().err
    assert "warning: 1 of 3 rows (the first is row 2) have values outside the model's" in err


# Refusals: each runs in a fresh process as a user's shell would, answers in one line on
# stderr with exit status 2 before TensorFlow is imported, and changes no file.

DRIVER = (
    "import sys\n"
    "from tfp_realnvp.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    "sys.exit(99 if 'tensorflow' in sys.modules else code)\n"
)


def _fake_run(path: Path, event_shape=(2,), columns=None) -> None:
    (path / "saved_model").mkdir(parents=True)
    (path / "saved_model" / "saved_model.pb").write_bytes(b"")
    rundir.write_marker(path, {"event_shape": list(event_shape), "columns": columns})


def _setup(tmp: Path) -> None:
    (tmp / "victim" / "sub").mkdir(parents=True)
    (tmp / "victim" / "my_only_copy.csv").write_text("1,2\n3,4\n")
    (tmp / "victim" / "sub" / "notes.txt").write_text("mine")
    (tmp / "file").write_text("a file")
    (tmp / "dir.csv").mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    np.savetxt(tmp / "three.csv", x, delimiter=",")
    x[17, 1] = 1e30
    np.savetxt(tmp / "far.csv", x, delimiter=",")
    x[:, 1] = 0.5
    np.savetxt(tmp / "constant.csv", x, delimiter=",")
    np.savetxt(tmp / "one.csv", x[:, :1], delimiter=",")
    (tmp / "semicolons.csv").write_text("x;y\n1,5;2,5\n")
    (tmp / "comment.csv").write_text("1,2\n# note\n3\n")
    np.save(tmp / "images.npy", np.full((20, 4, 4, 1), -1.0))
    _fake_run(tmp / "run")
    (tmp / "run.csv").write_text("1,2\n")
    _fake_run(tmp / "named", (3,), ["a", "b", "c"])
    _fake_run(tmp / "conditional", (1,), ["y"])
    marker = rundir.read_marker(tmp / "conditional")
    conditional = {"context_columns": ["u", "v"], "target_positions": [1]}
    rundir.write_marker(tmp / "conditional", {**marker, **conditional, "context_positions": [0, 2]})
    (tmp / "renamed.csv").write_text("a,d,b\n1,2,3\n")
    (tmp / "s.npy").write_bytes(b"mine")
    np.save(tmp / "shard3.npy", x[:, :2] + 1.0)
    np.save(tmp / "shard4.npy", np.ones((20, 3)))
    np.save(tmp / "shard5.npy", x[:, :2] - 1.0)
    _fake_run(tmp / "extra")
    (tmp / ".mine.backup").mkdir()
    (tmp / ".mine.backup" / "notes.txt").write_text("mine")
    (tmp / "extra" / "notes.txt").write_text("mine")


REFUSALS = {
    "missing data": ("train --data missing.csv --out r", "missing.csv: file not found"),
    "zero epochs": ("train --epochs 0", "argument --epochs: must be positive, got 0"),
    "fraction": ("train --test-split 1.5", "must be a fraction between 0 and 1, got 1.5"),
    "no split left": (
        "train --validation-split 0.5 --test-split 0.45 --out r",
        "must leave some training data",
    ),
    "input inside --out": (
        "train --data victim/my_only_copy.csv --out victim --force",
        "--out victim would replace --data victim/my_only_copy.csv, an input of this command",
    ),
    "current directory": ("train --out . --force", "--out . is the current directory"),
    "parent directory": ("train --out .. --force", "or one of its parents"),
    "not ours": ("train --out victim/sub --force", "--out victim/sub holds files that are not"),
    "ours plus a user's file": ("train --out extra --force", "also holds files the run did not"),
    "previous run": ("train --out run", "--out run holds a previous run; pass --force"),
    "--resume, no backup": ("train --out new --resume", "--resume: no backup of an interrupted"),
    "backup not ours": ("train --out mine --force", ".mine.backup is where this run keeps its"),
    "no TF_CONFIG": ("train --distribute multi-worker --out r", "reads the cluster from TF_CONFIG"),
    "--out is a file": ("train --out file --force", "--out file exists and is a file"),
    "--out below a file": (
        "train --out file/run",
        "--out file/run: file is a file, not a directory",
    ),
    "unwritable --out": ("train --out /proc/sys/run", "cannot write in /proc/sys"),
    # The backup beside --out was made before --out was checked: exit 1 and an OSError text.
    "--out in /proc": ("train --out /proc/run", "--out /proc/run: cannot write in /proc: "),
    "directory as data": ("train --data dir.csv --out r", "dir.csv is a directory; expected"),
    "one column": ("train --data one.csv --out r", "one column: RealNVP couplings split"),
    "constant column": ("train --data constant.csv --out r", "column 2 is constant (0.5 in"),
    "far outlier": ("train --data far.csv --out r", "far.csv: line 18, column 2 is 1e+30, "),
    "decimal commas": ("train --data semicolons.csv --out r", "read as semicolon-separated"),
    "short row": ("train --data comment.csv --out r", "line 3 has 1 comma-separated columns"),
    "glow on vectors": ("train --data three.csv --architecture glow --out r", "is for images"),
    "negative grey levels": ("train --data images.npy --out r", "whole grey levels 0, 1"),
    "widths for images": ("train --data digits --hidden 8,8 --out r", "take one channel count"),
    "maf for images": ("train --data digits --flow maf --out r", "--flow maf is for vectors"),
    "dropout for images": ("train --data digits --dropout 0.1 --out r", "vector flows; image"),
    "dropout rate": ("train --dropout 1 --out r", "must be a rate in [0, 1), got 1"),
    "unknown flow": ("train --flow glow --out r", "argument --flow: invalid choice: 'glow'"),
    "no shards": ("train --data nothing*.npy --out r", "--data nothing*.npy: no such file matches"),
    "shard widths": (
        "train --data shard3.npy --validation-data shard4.npy --test-data shard5.npy --out r",
        "shard4.npy: 3 columns, but shard3.npy has 2",
    ),
    "test shards that validate": (
        "train --data shard3.npy --validation-data shard5.npy --test-data shard5.npy --out r",
        "shard5.npy is a validation shard too (--validation-data shard5.npy); the validation NLL",
    ),
    "unquoted glob": ("train --data shard3.npy shard4.npy --out r", "quote a glob of shards"),
    "no model": ("sample --model victim -n 2 --out x.npy", "--model victim: no exported model"),
    "too many samples": ("sample --model run -n 3000000000 --out x.npy", "at most 2147483647"),
    "output exists": ("sample --model run -n 2 --out s.npy", "--out s.npy exists; pass --force"),
    "output type": ("sample --model run -n 2 --out s.txt", "unsupported file type '.txt'"),
    "nothing to round": (
        "sample --model run -n 2 --out r.npy --round-integers",
        "--round-integers: the run run dequantised no column (none held only whole numbers)",
    ),
    "negative seed": ("sample --model run -n 2 --out r.npy --seed -1", "argument --seed"),
    "unknown context": (
        "train --data three.csv --context 4 --out r",
        "--context 4: no such column of three.csv (it has no header; numbers count from 1 to 3)",
    ),
    "all context": ("train --data three.csv --context 1,2,3 --out r", "leave one to model"),
    "context shards": ("train --data shard*.npy --context 1 --out r", "--context needs the data"),
    "no context rows": (
        "sample --model conditional -n 2 --out r.npy",
        "--model conditional models p(x | context): give the context rows to sample for with "
        "--context-data (a .csv or .npy of u, v)",
    ),
    "context for an unconditional model": (
        "sample --model run -n 2 --out r.npy --context-data three.csv",
        "--context-data: --model run is not conditional",
    ),
    "whiten shards": (
        "train --data shard*.npy --whiten --out r",
        "--whiten needs the data in memory",
    ),
    "output in /proc": ("sample --model run -n 2 --out /proc/x.npy", "cannot write in /proc"),
    "output is input": (
        "log-prob --model run --data run.csv --out run.csv --force",
        "--out run.csv would replace --data run.csv, an input of this command",
    ),
    "columns the model does not know": (
        "log-prob --model named --data renamed.csv --out lp.npy",
        "--data renamed.csv: its columns are not the model's: it lacks 'c' and has 'd', which "
        "the model was not trained on (the model's columns: 'a', 'b', 'c')",
    ),
    "wrong width": (
        "log-prob --model run --data three.csv --out lp.npy",
        "each row has shape (3,) (3 values); the model expects (2,)",
    ),
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("refusals") / "work"
    tmp.mkdir()
    _setup(tmp)
    return tmp


def _refusal(workspace: Path, argv: str, prelude: str = "") -> str:
    """Runs the command line in a fresh process; checks that it refused in one line, exit
    status 2, without TensorFlow and changing nothing; returns the line."""
    before = _snapshot(workspace.parent)
    run = subprocess.run(
        [sys.executable, "-c", prelude + DRIVER, *argv.split()],
        cwd=workspace,
        env=_plain_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, (run.returncode, run.stderr)  # 99: TensorFlow was imported
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("tfp-realnvp"), run.stderr
    assert _snapshot(workspace.parent) == before
    return run.stderr


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_are_one_line_quick_and_change_nothing(workspace, case):
    argv, message = REFUSALS[case]
    assert message in _refusal(workspace, argv)


@pytest.mark.parametrize(
    "module, distribution, argv",
    [
        ("matplotlib", "matplotlib", "train --out r"),
        ("sklearn", "scikit-learn", "train --data digits --out r"),
    ],
)
def test_train_without_the_cli_extra_says_what_to_install(workspace, module, distribution, argv):
    # A None in sys.modules makes any import of the module fail: installed, yet as if it were not.
    line = _refusal(workspace, argv, prelude=f"import sys\nsys.modules[{module!r}] = None\n")
    assert line.endswith(
        f'needs {distribution}, which is not installed: pip install "tfp_realnvp[cli]"\n'
    ), line


def test_help_is_quiet_and_needs_no_tensorflow_notices():
    run = subprocess.run(
        [str(SCRIPT), "train", "--help"], env=_plain_env(), capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stderr == "" and "--force" in run.stdout


@pytest.mark.slow  # each a process that starts TensorFlow
@pytest.mark.parametrize(
    "level",
    [pytest.param(None, marks=pytest.mark.tf_keras), "3"],  # each Keras has its notices
)
def test_a_command_that_loads_tensorflow_prints_no_notices(run_dir, tmp_path, level):
    # TF_CPP_MIN_LOG_LEVEL=3, the usual way to quiet TensorFlow, let six lines of absl and
    # oneDNN notices through: TensorFlow prints them at import whatever the level says.
    env = _plain_env() if level is None else {**_plain_env(), "TF_CPP_MIN_LOG_LEVEL": level}
    argv = ["sample", "--model", str(run_dir), "-n", "2", "--out", str(tmp_path / "s.npy")]
    run = subprocess.run([str(SCRIPT), *argv], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout.startswith("wrote 2 samples")


def test_a_closed_output_pipe_stops_in_one_line(monkeypatch, capsys):
    # `tfp-realnvp train ... | head`: the reader exits, the next epoch line raises
    # BrokenPipeError. It once printed "error: [Errno 32] Broken pipe".
    def train(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(cli.COMMANDS, "train", train)
    assert cli.main(["train", "--out", "r"]) == 128 + signal.SIGPIPE
    assert capsys.readouterr().err == (
        "tfp-realnvp: stopped: standard output was closed (its reader, such as `| head`, exited)\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum",
    [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.tf_keras)],  # a Keras callback
)
def test_a_signal_stops_training_cleanly(tmp_path, signum):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [str(SCRIPT), "train", "--out", str(out), "--epochs", "500", "--patience", "500"],
        env=_plain_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob(".run.backup/.run.tmp-*")) and time.time() < deadline:
            time.sleep(0.1)  # the staging directory appears once the checks have passed
        time.sleep(2.0)  # building the flow or training by now
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    stopped = f"tfp-realnvp: stopped by {signum.name}; no output was written\n"
    left = [p.name for p in tmp_path.iterdir()]
    if left:  # one epoch or more was done: only its backup stays, for the rerun to resume
        assert left == [".run.backup"] and backup_files.complete_epochs(tmp_path / ".run.backup")
        note = f"rerunning this command resumes from the backup in {tmp_path / '.run.backup'}"
        assert err == f"tfp-realnvp: note: {note}\n{stopped}"
    else:
        assert err == stopped


@pytest.mark.slow
def test_console_script_trains_digits_quietly(tmp_path):
    out = tmp_path / "digits"
    run = subprocess.run(
        [
            str(SCRIPT),
            "train",
            "--data",
            "digits",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--couplings",
            "1",
            "--hidden",
            "8",
            "--quiet",
            "--no-xla",  # one epoch: compiling would cost more than it saves
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_plain_env(),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == ""  # no TensorFlow start-up notices in a plain shell
    assert f"results in {out}" in run.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["event_shape"] == [8, 8, 1] and "non_finite" not in metrics
    assert np.all(np.isfinite(metrics["history"]["val_loss"]))  # early stopping can use it
    assert (out / "samples.png").exists()
    assert rundir.read_marker(out)["support"] == [0, 17]  # grey levels 0..16 on [0, 17)
