"""The ``tfp-realnvp`` command line: ``train``, ``sample`` and ``log-prob``.

Every argument, input file and output location (and, for ``train``, the ``cli`` extra's
matplotlib and scikit-learn) is checked before TensorFlow is imported, so a refusal takes a
fraction of a second and prints exactly one line, ``tfp-realnvp: error: ...``, with exit
status 2, having changed nothing. Outputs are written atomically (a run directory
appears whole or not at all) and replace only what `tfp_realnvp.rundir` proves is ours. SIGINT
and SIGTERM stop cleanly with one line and exit status 130 / 143, removing staged files.
TensorFlow's start-up log stays off the terminal unless ``--verbose`` or the user's own
``TF_CPP_MIN_LOG_LEVEL`` asks for it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from tfp_realnvp import backup, cluster, rundir, shards
from tfp_realnvp._extras import missing_extra
from tfp_realnvp.backup import BackupError
from tfp_realnvp.cluster import ClusterError
from tfp_realnvp.data import DATASETS, DataError, load_array, load_data
from tfp_realnvp.rundir import Interrupted, OutputError
from tfp_realnvp.screening import (
    describe_columns,
    screen_images,
    screen_vectors,
    uses_image_flow,
)

EXIT_USAGE = 2
MAX_SAMPLES = 2**31 - 1
_BLOCK_VALUES = 2**22  # values per block of rows sampled or scored at once
_CSV_BYTES_PER_VALUE = 16  # "%.8g" plus a separator, at most


class UsageError(Exception):
    """Bad input: reported in one line, exit status 2."""


def _number(kind, minimum, maximum=None):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value >= minimum or not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                f"must be {'positive' if minimum > 0 else f'at least {minimum}'}, got {text}"
            )
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {text}")
        return value

    return parse


_positive_int = _number(int, 1)
_positive_float = _number(float, 1e-300)


def _fraction(text):
    value = _number(float, 1e-300)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text}")
    return value


def _rate(text):
    value = _number(float, 0.0)(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a rate in [0, 1), got {text}")
    return value


_nonnegative_float = _number(float, 0.0)

# Below this many training rows, vector flows get dropout by default: on 1,437 digits as
# 64-vectors it kept the validation NLL from turning up (benchmarks/README.md, small data).
SMALL_DATA_ROWS = 5000
SMALL_DATA_DROPOUT = 0.2


def _dropout(args, data: np.ndarray) -> float:
    if args.dropout is not None:
        return args.dropout
    train_rows = len(data) * (1 - args.validation_split - args.test_split)
    return SMALL_DATA_DROPOUT if train_rows < SMALL_DATA_ROWS else 0.0


def _hidden(text):
    try:
        units = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 64,64, got {text!r}") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return units


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, not argparse's usage block: the usage is one ``--help`` away."""
        if message.startswith("unrecognized arguments") and any(
            os.path.isfile(a) for a in message.split(":", 1)[1].split()
        ):  # the shell expanded an unquoted glob into many files
            message += "; quote a glob of shards so the shell passes it on: --data 'dir/*.npy'"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tfp-realnvp", description="Train RealNVP flows; sample and score with them."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--verbose", action="store_true", help="show TensorFlow's own log too")

    train = sub.add_parser("train", parents=[logs], help="train a flow and write a run directory")
    train.add_argument(
        "--data",
        default="moons",
        help=f"a bundled dataset ({', '.join(DATASETS)}), a .csv/.npy, or a glob of shards "
        "(.npy, .csv or .tfrecord), which are streamed",
    )
    train.add_argument(
        "--validation-data", default=None, help="validation shards (file or glob) for --data shards"
    )
    train.add_argument("--test-data", default=None, help="test shards (file or glob)")
    train.add_argument("--out", type=Path, default=None, help="run directory (default runs/DATA)")
    train.add_argument(
        "--force", action="store_true", help="replace --out if it holds a previous run"
    )
    train.add_argument("--num-samples", type=_positive_int, default=20000, help="toy data size")
    train.add_argument("--epochs", type=_positive_int, default=60)
    train.add_argument("--batch-size", type=_positive_int, default=256)
    train.add_argument("--learning-rate", type=_positive_float, default=2e-3)
    train.add_argument(
        "--couplings",
        type=_positive_int,
        default=None,
        help="couplings (vectors, default 8) or couplings per stage (images, default 3)",
    )
    train.add_argument(
        "--hidden",
        type=_hidden,
        default=None,
        help="MLP widths, e.g. 64,64 (default); for images the conv channels (default 64)",
    )
    train.add_argument(
        "--architecture",
        choices=["realnvp", "glow", "vector"],
        default="realnvp",
        help="for images: multi-scale RealNVP (default), Glow, or a RealNVP on flat pixels",
    )
    train.add_argument(
        "--flow",
        choices=["affine", "spline", "maf"],
        default="affine",
        help="affine couplings (RealNVP, default), rational-quadratic spline couplings, or a "
        "masked autoregressive flow (vectors only); image flows take affine or spline",
    )
    train.add_argument(
        "--base",
        choices=["normal", "diagonal", "student_t", "mixture"],
        default="normal",
        help="base distribution: standard normal (default) or one with learned parameters",
    )
    train.add_argument(
        "--dropout",
        type=_rate,
        default=None,
        help="dropout rate of the MLP conditioners (vectors; default 0.2 below 5000 training "
        "rows, else 0)",
    )
    train.add_argument(
        "--weight-decay", type=_nonnegative_float, default=0.0, help="AdamW's weight decay"
    )
    train.add_argument("--validation-split", type=_fraction, default=0.1)
    train.add_argument("--test-split", type=_fraction, default=0.1)
    train.add_argument("--patience", type=_positive_int, default=10, help="early stopping")
    train.add_argument(
        "--no-dequantize",
        action="store_true",
        help="treat columns of whole numbers as continuous (default: add uniform noise)",
    )
    train.add_argument(
        "--no-xla",
        action="store_true",
        help="skip XLA compilation (it pays off from a few hundred steps on)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run of this same command from its last backed-up epoch "
        "(rerunning the command does it too; --resume insists there is a backup)",
    )
    train.add_argument(
        "--distribute",
        choices=["none", "mirrored", "multi-worker"],
        default="none",
        help="train on this machine's devices (mirrored) or on the cluster of TF_CONFIG, one "
        "process per machine (multi-worker); batch size, learning rate and epochs mean the same",
    )

    sample = sub.add_parser("sample", parents=[logs], help="draw samples from an exported flow")
    sample.add_argument("--model", type=Path, required=True, help="a run directory")
    sample.add_argument(
        "-n", type=_number(int, 1, MAX_SAMPLES), required=True, help="number of samples"
    )
    sample.add_argument("--out", type=Path, required=True, help="output .npy or .csv")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--force", action="store_true", help="replace an existing --out")

    score = sub.add_parser(
        "log-prob", parents=[logs], help="log-densities of data under an exported flow"
    )
    score.add_argument("--model", type=Path, required=True, help="a run directory")
    score.add_argument("--data", type=Path, required=True, help="input .csv or .npy")
    score.add_argument("--out", type=Path, required=True, help="output .npy or .csv")
    score.add_argument("--force", action="store_true", help="replace an existing --out")
    return parser


def _import(module: str, verbose: bool):
    """Imports ``module`` (which imports TensorFlow) once the command has passed every check.

    TensorFlow's C++ start-up notices (absl, oneDNN, CUDA) go to file descriptor 2 at import
    and ignore a ``TF_CPP_MIN_LOG_LEVEL`` set from Python, so unless ``--verbose`` or the user's
    own ``TF_CPP_MIN_LOG_LEVEL`` asks for them they are sent to /dev/null while it loads.
    """
    quiet = not verbose and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if not quiet:
        return importlib.import_module(module)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # read by TensorFlow's later logging
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        loaded = importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return loaded


def _note(text: str) -> None:
    print(f"tfp-realnvp: note: {text}", file=sys.stderr)


# train ------------------------------------------------------------------------------------


def _train_config(args, training, data: np.ndarray | None, dequantize_columns: tuple[int, ...]):
    """The run's configuration; ``data`` is ``None`` for streamed shards (vectors, no default
    dropout: their size is known only once streamed)."""
    multiscale = data is not None and uses_image_flow(data, args.architecture)
    return training.TrainConfig(
        data_name=args.data,
        architecture=args.architecture,
        flow=args.flow,
        couplings=args.couplings,
        hidden_units=None if multiscale else args.hidden,
        hidden_channels=args.hidden[0] if multiscale and args.hidden else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_split=args.validation_split,
        test_split=args.test_split,
        patience=args.patience,
        dropout=0.0
        if multiscale
        else _dropout(args, data)
        if data is not None
        else args.dropout or 0.0,
        weight_decay=args.weight_decay,
        base=args.base,
        xla=not args.no_xla,
        seed=args.seed,
        verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2),
        dequantize_columns=dequantize_columns,
    )


def _screen(args, data: np.ndarray) -> tuple[tuple[int, ...], list[str]]:
    """Checks the data before TensorFlow starts; returns the columns to dequantise and notes
    for the user."""
    if len(data) < 10:
        raise UsageError(f"{args.data}: {len(data)} examples; training needs at least 10")
    if data.ndim == 4:
        levels = screen_images(data, args.data)
        if args.architecture == "vector":
            return (), [f"images of {levels} grey levels, flattened, dequantised onto [k, k + 1)"]
        if args.flow == "maf":
            raise UsageError(
                "--flow maf is for vectors; image flows take --flow affine or spline (or use "
                "--architecture vector --flow maf on flat pixels)"
            )
        if args.dropout:
            raise UsageError(
                "--dropout applies to the MLP conditioners of vector flows; image flows have "
                "conv conditioners (use --architecture vector for flat pixels)"
            )
        if args.hidden and len(args.hidden) != 1:
            raise UsageError(
                f"--hidden {','.join(map(str, args.hidden))}: an image flow's conditioners take "
                "one channel count, e.g. --hidden 64"
            )
        return (), []
    if args.architecture != "realnvp":
        raise UsageError(
            f"--architecture {args.architecture} is for images; {args.data} holds vectors"
        )
    report = screen_vectors(data, args.data, dequantize=not args.no_dequantize)
    if not report.integer_columns:
        return (), []
    return report.integer_columns, [
        f"{describe_columns(report.integer_columns)} of {args.data} hold only whole numbers; "
        "training adds uniform noise on [-0.5, 0.5) to them (dequantisation), so log-probs "
        "of whole numbers estimate log-probabilities (--no-dequantize turns this off)"
    ]


def _json_safe(value, key: str, replaced: list[str]):
    """``value`` with every non-finite float replaced by None; their keys go to ``replaced``."""
    if isinstance(value, dict):
        return {k: _json_safe(v, f"{key}.{k}" if key else k, replaced) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v, key, replaced) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        if f"{key} ({value})" not in replaced:
            replaced.append(f"{key} ({value})")
        return None
    return value


def _check_extras(args) -> None:
    """Refuses, before anything else, to train without the ``cli`` extra's packages."""
    needs = [("matplotlib", "train (for its pictures)")]
    if args.data == "digits":
        needs.append(("sklearn", "--data digits"))
    for module, needed_for in needs:
        if error := missing_extra(module, needed_for):
            raise UsageError(str(error))


def _fingerprint(args, data_paths: list[Path]) -> dict:
    """What makes two runs the same: every training argument, and the data files' identity."""
    skip = {"out", "force", "resume", "quiet", "verbose", "command"}
    record = {k: v for k, v in sorted(vars(args).items()) if k not in skip}
    files = [p for p in data_paths if p.is_file()]
    if files:
        record["data_files"] = [
            [str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files
        ]
    return json.loads(json.dumps(record, default=str))


def _shard_plan(args):
    """The shards to stream when ``--data`` is a glob or a TFRecord (or the sets come as
    their own files), checked before TensorFlow starts; ``None`` for in-memory data."""
    separate = args.validation_data is not None or args.test_data is not None
    if args.data in DATASETS or not (shards.is_pattern(args.data) or separate):
        return None
    if args.architecture != "realnvp":
        raise UsageError(f"--architecture {args.architecture} is for images; shards hold vectors")
    return shards.plan_shards(
        args.data,
        args.validation_data,
        args.test_data,
        args.validation_split,
        args.test_split,
        args.seed,
    )


def _strategy(kind: str):
    import tensorflow as tf

    if kind == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def cmd_train(args) -> int:
    _check_extras(args)
    if args.validation_split + args.test_split >= 0.9:
        raise UsageError("--validation-split plus --test-split must leave some training data")
    plan = _shard_plan(args)
    if plan is not None:
        inputs = plan.paths()
        out = args.out or Path("runs") / shards.default_name(args.data)
    else:
        inputs = [Path(args.data)] if args.data not in DATASETS else []
        out = args.out or Path("runs") / Path(args.data).stem
    multi = args.distribute == "multi-worker"
    task = cluster.task_from_env() if multi else cluster.Task(0, 1)
    if task.is_chief:
        rundir.check_run_dir(out, args.force, [("--data", p) for p in inputs])
    fingerprint = _fingerprint(args, inputs)
    resume_from = backup.check_backup(out, fingerprint, args.resume, args.force, task.index)
    data, dequantize_columns, notes = None, (), []
    if plan is None:
        data = load_data(args.data, num_samples=args.num_samples, seed=args.seed)
        dequantize_columns, notes = _screen(args, data)
    vectors = data is None or not uses_image_flow(data, args.architecture)
    if data is not None and vectors and args.dropout is None and _dropout(args, data):
        notes.append(
            f"fewer than {SMALL_DATA_ROWS} training rows: the conditioners use dropout "
            f"{SMALL_DATA_DROPOUT} against overfitting (--dropout 0 turns it off)"
        )
    for note in notes:
        _note(note)

    training = _import("tfp_realnvp.training", args.verbose)
    config = _train_config(args, training, data, dequantize_columns)
    strategy = _strategy(args.distribute)
    created = [p for p in reversed(out.resolve().parents) if not p.exists()]
    saved = backup.start_backup(out, fingerprint, resume_from < 0, task.index)
    if resume_from > 0:
        _note(f"resuming after epoch {resume_from} from the backup in {saved}")
    # Workers other than the chief write their copy beside it, into a directory then removed.
    staged = out if task.is_chief else out.with_name(f"{out.name}-worker{task.index}")
    with rundir.staging_dir(staged, within=saved) as tmp:  # a kill leaves it in the backup
        start = time.time()
        try:
            if plan is None:
                metrics = training.train_run(
                    data, config, tmp, saved, max(resume_from, 0), strategy
                )
            else:
                sharded = _import("tfp_realnvp.shard_training", args.verbose)
                dequantize = not args.no_dequantize
                metrics = sharded.train_sharded_run(
                    plan, config, tmp, saved, max(resume_from, 0), strategy, dequantize
                )
        except BaseException:
            if backup.complete_epochs(saved):
                _note(f"rerunning this command resumes from the backup in {saved}")
            else:
                backup.remove_backup(saved)
                rundir.remove_empty(created)
            raise
        metrics["wall_time_s"] = round(time.time() - start, 2)
        replaced: list[str] = []
        metrics = _json_safe(metrics, "", replaced)
        if replaced:
            metrics["non_finite"] = replaced  # written as null, listed here
            print(
                "tfp-realnvp: warning: not finite, written as null in metrics.json: "
                + ", ".join(replaced),
                file=sys.stderr,
            )
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
        rundir.write_marker(
            tmp, {"data": args.data, **metrics["model"], "event_shape": metrics["event_shape"]}
        )
        if task.is_chief:
            rundir.publish(tmp, out)
    backup.remove_backup(saved)
    if not task.is_chief:
        return 0

    def show(key):
        value = metrics[key]
        return "not finite" if value is None else f"{value:.4f}"

    print(
        f"test NLL {show('test_nll')} nats ({show('test_bits_per_dim')} bits/dim) "
        f"after {metrics['epochs']} epochs in {metrics['wall_time_s']:.1f} s"
    )
    print(
        f"results in {out}/: "
        + ", ".join(sorted(p.name for p in out.iterdir() if p.name != rundir.MARKER))
    )
    return 0


# sample and log-prob ----------------------------------------------------------------------


def _served_run(model_dir: Path) -> dict:
    """The run's marker, after checking that ``model_dir`` holds an exported model."""
    if not (model_dir / "saved_model" / "saved_model.pb").is_file():
        raise UsageError(
            f"--model {model_dir}: no exported model at {model_dir / 'saved_model'} "
            "(give a directory written by tfp-realnvp train)"
        )
    marker = rundir.read_marker(model_dir)
    if marker is None or "event_shape" not in marker:
        raise UsageError(
            f"--model {model_dir}: not a tfp-realnvp run (no {rundir.MARKER}); retrain it, "
            "or load its saved_model/ with tf.saved_model.load"
        )
    return marker


def _load_signature(model_dir: Path, name: str, verbose: bool):
    tf = _import("tensorflow", verbose)
    served = tf.saved_model.load(str(model_dir / "saved_model"))
    fn = served.signatures[name]
    if "context" in fn.structured_input_signature[1]:
        raise UsageError(f"--model {model_dir} is conditional; the CLI serves unconditional flows")
    return tf, served, fn


def _check_disk(path: Path, rows: int, event: tuple[int, ...]) -> None:
    values = rows * int(np.prod(event))
    need = values * (4 if path.suffix.lower() == ".npy" else _CSV_BYTES_PER_VALUE)
    free = shutil.disk_usage(path.resolve().parent).free
    if need > free:
        raise UsageError(
            f"--out {path}: {rows} rows of {int(np.prod(event))} values need about "
            f"{need / 1e9:.1f} GB; {free / 1e9:.1f} GB are free there"
        )


def _blocks(total: int, event: tuple[int, ...]):
    step = max(1, _BLOCK_VALUES // max(1, int(np.prod(event))))
    for start in range(0, total, step):
        yield start // step, start, min(total, start + step)


def cmd_sample(args) -> int:
    marker = _served_run(args.model)
    event = tuple(marker["event_shape"])
    rundir.check_output_file(args.out, args.force)
    _check_disk(args.out, args.n, event)
    tf, _served, fn = _load_signature(args.model, "sample", args.verbose)
    with rundir.array_writer(args.out, (args.n, *event)) as write:
        for i, start, stop in _blocks(args.n, event):
            seed = tf.constant([i, args.seed], tf.int32)
            write(fn(count=tf.constant(stop - start, tf.int32), seed=seed)["samples"].numpy())
    print(f"wrote {args.n} samples to {args.out}")
    return 0


def cmd_log_prob(args) -> int:
    marker = _served_run(args.model)
    event = tuple(marker["event_shape"])
    rundir.check_output_file(args.out, args.force, [("--data", args.data)])
    data = load_array(args.data)
    if data.shape[1:] != event:
        if int(np.prod(data.shape[1:])) != int(np.prod(event)):
            raise UsageError(
                f"--data {args.data}: each row has shape {data.shape[1:]} "
                f"({int(np.prod(data.shape[1:]))} values); the model expects {event}"
            )
        data = data.reshape((len(data), *event))
    outside = np.zeros(len(data), bool)
    if marker.get("support"):  # image flows: grey levels dequantised onto [0, K)
        low, high = marker["support"]
        flat = data.reshape(len(data), -1)
        outside = ((flat < low) | (flat >= high)).any(axis=1)
        data[outside] = low  # scored, then set to -inf: a flow is undefined there
    _check_disk(args.out, len(data), ())
    tf, _, fn = _load_signature(args.model, "log_prob", args.verbose)
    with rundir.array_writer(args.out, (len(data),)) as write:
        for _, start, stop in _blocks(len(data), event):
            log_prob = fn(x=tf.constant(data[start:stop]))["log_prob"].numpy()
            write(np.where(outside[start:stop], -np.inf, log_prob))
    if outside.any():
        print(
            f"tfp-realnvp: warning: {int(outside.sum())} of {len(data)} rows (the first is "
            f"row {int(np.flatnonzero(outside)[0]) + 1}) have values outside the model's "
            f"support [{low}, {high}); their log-prob is -inf",
            file=sys.stderr,
        )
    print(f"wrote {len(data)} log-probabilities to {args.out}")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "log-prob": cmd_log_prob}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = rundir.install_signal_handlers()
    try:
        return COMMANDS[args.command](args)
    except (UsageError, DataError, OutputError, BackupError, ClusterError) as e:
        print(f"tfp-realnvp: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # the disk filled up, a file vanished: no traceback for those
        print(f"tfp-realnvp: error: {e}", file=sys.stderr)
        return 1
    except BaseException as e:
        # The signal may reach us wrapped by TensorFlow or pybind11 as another exception.
        signum = rundir.received_signal() or getattr(e, "signum", None)
        if signum is None:
            raise
        name = Interrupted(signum)
        print(f"tfp-realnvp: stopped by {name}; no output was written", file=sys.stderr)
        return 128 + signum
    finally:
        rundir.restore_signal_handlers(previous)


if __name__ == "__main__":
    sys.exit(main())
