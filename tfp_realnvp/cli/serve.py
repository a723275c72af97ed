"""``sample`` and ``log-prob``: the exported model of a run, applied to new noise or data."""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path

import numpy as np

from tfp_realnvp.cli import rundir
from tfp_realnvp.cli.parser import UsageError, import_quietly, index_note, print_note
from tfp_realnvp.data import load_table, match_columns
from tfp_realnvp.data.tables import index_column, without_first_column

_BLOCK_VALUES = 2**22  # values per block of rows sampled or scored at once
_CSV_BYTES_PER_VALUE = 16  # "%.8g" plus a separator, at most


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
    tf = import_quietly("tensorflow", verbose)
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
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    rounded = _whole_number_columns(marker, event, args.model) if args.round_integers else None
    tf, _served, fn = _load_signature(args.model, "sample", args.verbose)
    header = marker.get("columns") or [f"x{i + 1}" for i in range(int(np.prod(event)))]
    with rundir.array_writer(args.out, (args.n, *event), header) as write:
        for i, start, stop in _blocks(args.n, event):
            pair = tf.constant([i, seed], tf.int32)
            samples = np.array(fn(count=tf.constant(stop - start, tf.int32), seed=pair)["samples"])
            if rounded is not None:
                flat = samples.reshape(len(samples), -1)
                flat[:, rounded] = np.floor(flat[:, rounded] + _rounded_offset(marker))
            write(samples)
    again = "" if args.seed is not None else f" (--seed {seed} draws the same again)"
    print(f"wrote {args.n} samples to {args.out} with seed {seed}{again}")
    return 0


def _rounded_offset(marker: dict) -> float:
    """What `np.floor` adds before rounding a dequantised value back: vectors were given
    noise on [-0.5, 0.5) around each whole number, images on [0, 1)."""
    return 0.0 if marker.get("support") else 0.5


def _whole_number_columns(marker: dict, event: tuple[int, ...], model: Path) -> np.ndarray:
    """0-based flat columns that training dequantised, for ``--round-integers``."""
    if marker.get("support"):  # an image model: every pixel is a grey level
        return np.arange(int(np.prod(event)))
    columns = marker.get("dequantized_columns") or []
    if not columns:
        raise UsageError(
            f"--round-integers: the run {model} dequantised no column (none held only whole "
            "numbers), so there is nothing to round"
        )
    return np.asarray(columns, int) - 1


def cmd_log_prob(args) -> int:
    marker = _served_run(args.model)
    event = tuple(marker["event_shape"])
    rundir.check_output_file(args.out, args.force, [("--data", args.data)])
    table = load_table(args.data)
    if marker.get("index_column_dropped") and index_column(table):
        print_note(index_note(table, f"--data {args.data}", "the model was trained without it"))
        table = without_first_column(table)
    data = table.values
    if data.ndim == 2:
        data, note = match_columns(
            data, table.columns, marker.get("columns"), f"--data {args.data}"
        )
        if note:
            print_note(note)
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
    with rundir.array_writer(args.out, (len(data),), ["log_prob"]) as write:
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
