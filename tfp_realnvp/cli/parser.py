"""What the commands of `tfp_realnvp.cli` share: the parser and its argument types, the usage
error, notes, and importing TensorFlow quietly once every check has passed."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from pathlib import Path

from tfp_realnvp.data import DATASETS

EXIT_USAGE = 2
MAX_SAMPLES = 2**31 - 1


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


def _names_list(text):
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return items


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
        "--keep-index-column",
        action="store_true",
        help="use a first column of row numbers (1..N, or an empty header name) as a feature "
        "(default: drop it, with a note)",
    )
    train.add_argument(
        "--context",
        type=_names_list,
        default=None,
        metavar="COLUMNS",
        help="learn p(rest | COLUMNS): comma-separated column names (or numbers from 1) of "
        "--data that condition the others; log-prob then takes both, sample takes "
        "--context-data",
    )
    train.add_argument(
        "--whiten",
        action="store_true",
        help="put the flow behind the Gaussian fitted to the training rows (its mean and "
        "covariance; tfp_realnvp.Whitening) instead of per-column standardisation: better on "
        "small, correlated tables (vectors in memory only)",
    )
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
    sample.add_argument(
        "--seed",
        type=_number(int, 0, 2**31 - 1),
        default=None,
        help="draw the same samples as a run with this seed (default: a fresh seed, printed)",
    )
    sample.add_argument(
        "--context-data",
        type=Path,
        default=None,
        help="for a model trained with --context: a .csv or .npy of context rows; -n samples "
        "are drawn for each, and written after it",
    )
    sample.add_argument(
        "--round-integers",
        action="store_true",
        help="round the columns that training dequantised (whole numbers) back to whole "
        "numbers (default: leave them continuous, as the flow draws them)",
    )
    sample.add_argument("--force", action="store_true", help="replace an existing --out")

    score = sub.add_parser(
        "log-prob", parents=[logs], help="log-densities of data under an exported flow"
    )
    score.add_argument("--model", type=Path, required=True, help="a run directory")
    score.add_argument("--data", type=Path, required=True, help="input .csv or .npy")
    score.add_argument("--out", type=Path, required=True, help="output .npy or .csv")
    score.add_argument("--force", action="store_true", help="replace an existing --out")
    return parser


def import_quietly(module: str, verbose: bool):
    """Imports ``module`` (which imports TensorFlow) once the command has passed every check.

    TensorFlow's C++ start-up notices (absl, oneDNN, CUDA) go to file descriptor 2 at import,
    whatever ``TF_CPP_MIN_LOG_LEVEL`` says, so they are sent to /dev/null while it loads,
    unless ``--verbose`` or the user's own ``TF_CPP_MIN_LOG_LEVEL`` of 0 or 1 asks for
    notices. (A user who set 2 or 3, the usual way to quiet TensorFlow, gets quiet.)
    """
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip()
    quiet = not verbose and level not in ("0", "1")
    if not quiet:
        return importlib.import_module(module)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read by TensorFlow's later logging
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


def index_note(table, source: str, keep: str) -> str:
    """The note that says ``table``'s first column was taken for row numbers and dropped."""
    return (
        f"{table.describe([0])} of {source} numbers or names the rows (as R's write.csv and "
        f"pandas' to_csv write), so it is not used as a feature ({keep})"
    )


def print_note(text: str) -> None:
    print(f"tfp-realnvp: note: {text}", file=sys.stderr)
