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
    return tf, served, served.signatures[name]


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
    rundir.check_output_file(args.out, args.force, _inputs(args, "context_data"))
    contexts = _sample_contexts(args, marker)
    per_row = 1 if contexts is None else len(contexts)
    total, width = args.n * per_row, int(np.prod(event))
    _check_disk(args.out, total, (width + (0 if contexts is None else contexts.shape[1]),))
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    rounded = _whole_number_columns(marker, event, args.model) if args.round_integers else None
    tf, _served, fn = _load_signature(args.model, "sample", args.verbose)
    header = marker.get("columns") or [f"x{i + 1}" for i in range(width)]
    shape = (total, *event)
    if contexts is not None:  # each context row, then its samples: a table like the input
        contexts = np.repeat(contexts, args.n, axis=0)
        names = marker.get("context_columns") or [f"c{i + 1}" for i in range(contexts.shape[1])]
        header, shape = [*names, *header], (total, contexts.shape[1] + width)
    with rundir.array_writer(args.out, shape, header) as write:
        for i, start, stop in _blocks(total, shape[1:]):
            kw = {"count": tf.constant(stop - start, tf.int32), "seed": tf.constant([i, seed])}
            if contexts is not None:
                kw["context"] = tf.constant(contexts[start:stop])
            samples = np.array(fn(**kw)["samples"])
            if rounded is not None:
                flat = samples.reshape(len(samples), -1)
                flat[:, rounded] = np.floor(flat[:, rounded] + _rounded_offset(marker))
            if contexts is not None:
                samples = np.concatenate([contexts[start:stop], samples], axis=1)
            write(samples)
    again = "" if args.seed is not None else f" (--seed {seed} draws the same again)"
    each = "" if contexts is None else f" ({args.n} for each of {per_row} context rows)"
    print(f"wrote {total} samples{each} to {args.out} with seed {seed}{again}")
    return 0


def _inputs(args, *names: str) -> list[tuple[str, Path]]:
    """``(flag, path)`` of the command's input files, which ``--out`` must not be."""
    found = [(f"--{n.replace('_', '-')}", getattr(args, n, None)) for n in names]
    return [(flag, path) for flag, path in found if path is not None]


def _sample_contexts(args, marker: dict) -> np.ndarray | None:
    """The context rows of ``--context-data`` for a conditional model (refused for another),
    in the model's column order."""
    conditional = "context_positions" in marker
    if not conditional:
        if args.context_data is not None:
            raise UsageError(f"--context-data: --model {args.model} is not conditional")
        return None
    names = marker.get("context_columns")
    if args.context_data is None:
        wanted = ", ".join(names) if names else f"{len(marker['context_positions'])} columns"
        raise UsageError(
            f"--model {args.model} models p(x | context): give the context rows to sample "
            f"for with --context-data (a .csv or .npy of {wanted})"
        )
    table = load_table(args.context_data)
    source = f"--context-data {args.context_data}"
    values = table.values.reshape(len(table.values), -1)
    values, note = match_columns(values, table.columns, names, source)
    if note:
        print_note(note)
    if values.shape[1] != len(marker["context_positions"]):
        raise UsageError(
            f"{source}: each row has {values.shape[1]} values; the model's context has "
            f"{len(marker['context_positions'])}"
        )
    return values.astype(np.float32)


def _split_conditional(data: np.ndarray, names, marker: dict, source: str):
    """``(x, context)`` of a table for a conditional model: its columns matched by name to the
    training table's when both have names (`match_columns`), else taken in that table's order."""
    target, context = marker["target_positions"], marker["context_positions"]
    order = None
    if marker.get("columns") is not None:
        order = [""] * (len(target) + len(context))
        for place, name in zip(target, marker["columns"], strict=True):
            order[place] = name
        for place, name in zip(context, marker["context_columns"], strict=True):
            order[place] = name
    if order is not None and names is not None:
        data, note = match_columns(data, names, order, source)
        if note:
            print_note(note)
    elif data.shape[1] != len(target) + len(context):
        raise UsageError(
            f"{source}: each row has {data.shape[1]} values; the model takes "
            f"{len(target)} and a context of {len(context)}, {len(target) + len(context)} "
            "in all"
        )
    elif order is not None:
        print_note(
            f"{source} has no header row; its columns are taken to be in the training "
            f"table's order: {', '.join(repr(n) for n in order)}"
        )
    return data[:, target], data[:, context]


def _rounded_offset(marker: dict) -> float:
    """What `np.floor` adds before rounding a dequantised value back: vectors were given
    noise on [-0.5, 0.5) around each whole number, images on [0, 1)."""
    return 0.0 if marker.get("support") else 0.5


def _whole_number_columns(marker: dict, event: tuple[int, ...], model: Path) -> np.ndarray:
    """0-based flat columns that training dequantised, for ``--round-integers``."""
    if marker.get("support"):  # an image model: every pixel is a grey level
        return np.arange(int(np.prod(event)))
    columns = marker.get("dequantized_columns") or []
    if "target_positions" in marker:  # the training table's columns, as the target's
        columns = [marker["target_positions"].index(c - 1) + 1 for c in columns]
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
    data, context = table.values, None
    if "context_positions" in marker:
        flat = data.reshape(len(data), -1)
        data, context = _split_conditional(flat, table.columns, marker, f"--data {args.data}")
    elif data.ndim == 2:
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
            kw = {} if context is None else {"context": tf.constant(context[start:stop])}
            log_prob = fn(x=tf.constant(data[start:stop]), **kw)["log_prob"].numpy()
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
