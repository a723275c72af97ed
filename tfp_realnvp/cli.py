"""The ``tfp-realnvp`` command line: ``train``, ``sample`` and ``log-prob``.

Bad input (missing or malformed files, wrong shapes, an output that exists) ends with a
one-line ``tfp-realnvp: error: ...`` and exit status 2, before anything is written. Outputs
are written atomically: a run's directory appears whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfp_realnvp.data import DATASETS, DataError, load_array, load_data

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input: reported in one line, exit status 2."""


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _hidden(text):
    try:
        units = [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 64,64, got {text!r}") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return units


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfp-realnvp", description="Train RealNVP flows; sample and score with them."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a flow and write a run directory")
    train.add_argument(
        "--data", default="moons", help=f"a bundled dataset ({', '.join(DATASETS)}) or a .csv/.npy"
    )
    train.add_argument("--out", type=Path, default=None, help="run directory (default runs/DATA)")
    train.add_argument("--force", action="store_true", help="replace a non-empty --out")
    train.add_argument("--num-samples", type=_positive(int), default=20000, help="toy data size")
    train.add_argument("--epochs", type=_positive(int), default=60)
    train.add_argument("--batch-size", type=_positive(int), default=256)
    train.add_argument("--learning-rate", type=_positive(float), default=2e-3)
    train.add_argument(
        "--couplings",
        type=_positive(int),
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
    train.add_argument("--validation-split", type=_positive(float), default=0.1)
    train.add_argument("--test-split", type=_positive(float), default=0.1)
    train.add_argument("--patience", type=_positive(int), default=10, help="early stopping")
    train.add_argument(
        "--no-xla",
        action="store_true",
        help="skip XLA compilation (it pays off from a few hundred steps on)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])

    sample = sub.add_parser("sample", help="draw samples from an exported flow")
    sample.add_argument("--model", type=Path, required=True, help="a run directory")
    sample.add_argument("-n", type=_positive(int), required=True, help="number of samples")
    sample.add_argument("--out", type=Path, required=True, help="output .npy or .csv")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--force", action="store_true", help="replace an existing --out")

    score = sub.add_parser("log-prob", help="log-densities of data under an exported flow")
    score.add_argument("--model", type=Path, required=True, help="a run directory")
    score.add_argument("--data", type=Path, required=True, help="input .csv or .npy")
    score.add_argument("--out", type=Path, required=True, help="output .npy or .csv")
    score.add_argument("--force", action="store_true", help="replace an existing --out")
    return parser


# Output helpers ---------------------------------------------------------------------------


def _check_output_file(path: Path, force: bool) -> None:
    if path.suffix not in (".npy", ".csv"):
        raise UsageError(f"--out {path}: unsupported file type {path.suffix!r}; use .npy or .csv")
    if path.is_dir():
        raise UsageError(f"--out {path} is a directory; give a file name")
    if path.exists() and not force:
        raise UsageError(f"--out {path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: directory {path.parent} does not exist")


def write_array(path: Path, array: np.ndarray) -> None:
    """Writes ``array`` (rows flattened for CSV) atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if path.suffix == ".npy":
                np.save(f, array)
            else:
                np.savetxt(f, array.reshape(len(array), -1), delimiter=",", fmt="%.8g")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_run_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out {out} is not empty; pass --force to replace it")


def _publish(tmp: Path, out: Path) -> None:
    """Moves the finished run directory ``tmp`` to ``out``, replacing it whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# Commands ---------------------------------------------------------------------------------


def cmd_train(args) -> int:
    from tfp_realnvp.training import train_run

    out = args.out or Path("runs") / Path(args.data).stem
    _check_run_dir(out, args.force)
    data = load_data(args.data, num_samples=args.num_samples, seed=args.seed)
    multiscale = data.ndim == 4 and args.architecture != "vector"
    if args.couplings is None:
        args.couplings = 3 if multiscale else 8
    if args.hidden is None:
        args.hidden = [64] if multiscale else [64, 64]
    if args.validation_split + args.test_split >= 0.9:
        raise UsageError("--validation-split plus --test-split must leave some training data")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        start = time.time()
        try:
            metrics = train_run(data, args, tmp)
        except ValueError as e:  # data the model cannot take, found before training
            raise UsageError(str(e)) from None
        metrics["wall_time_s"] = round(time.time() - start, 2)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(
        f"test NLL {metrics['test_nll']:.4f} nats ({metrics['test_bits_per_dim']:.4f} bits/dim) "
        f"after {metrics['epochs']} epochs in {metrics['wall_time_s']:.1f} s"
    )
    print(f"results in {out}/: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


def _load_served(model_dir: Path):
    saved = model_dir / "saved_model"
    if not (saved / "saved_model.pb").is_file():
        raise UsageError(f"--model {model_dir}: no exported model at {saved} (run train first)")
    import tensorflow as tf

    return tf, tf.saved_model.load(str(saved))


def cmd_sample(args) -> int:
    _check_output_file(args.out, args.force)
    tf, served = _load_served(args.model)
    if "context" in served.signatures["sample"].structured_input_signature[1]:
        raise UsageError(
            f"--model {args.model} is conditional; the CLI samples unconditional flows"
        )
    seed = tf.constant([0, args.seed], tf.int32)
    samples = served.signatures["sample"](count=tf.constant(args.n, tf.int32), seed=seed)
    write_array(args.out, samples["samples"].numpy())
    print(f"wrote {args.n} samples to {args.out}")
    return 0


def cmd_log_prob(args) -> int:
    _check_output_file(args.out, args.force)
    data = load_array(args.data)
    tf, served = _load_served(args.model)
    spec = served.signatures["log_prob"].structured_input_signature[1]["x"]
    event = tuple(spec.shape[1:])
    if data.shape[1:] != event:
        if int(np.prod(data.shape[1:])) != int(np.prod(event)):
            raise UsageError(
                f"--data {args.data}: each row has shape {data.shape[1:]} "
                f"({int(np.prod(data.shape[1:]))} values); the model expects {event}"
            )
        data = data.reshape((len(data), *event))
    log_prob = served.signatures["log_prob"](x=tf.constant(data, spec.dtype))["log_prob"]
    write_array(args.out, log_prob.numpy())
    print(f"wrote {len(data)} log-probabilities to {args.out}")
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "log-prob": cmd_log_prob}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, DataError, FileExistsError) as e:
        print(f"tfp-realnvp: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
