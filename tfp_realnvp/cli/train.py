"""``tfp-realnvp train``: checks everything it can before TensorFlow starts, then trains in a
staging directory beside ``--out`` (backed up after every epoch) and publishes the run whole."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from tfp_realnvp._extras import missing_extra
from tfp_realnvp.cli import backup_files, cluster, rundir
from tfp_realnvp.cli.parser import UsageError, import_quietly, index_note, print_note
from tfp_realnvp.cli.screening import (
    SMALL_DATA_NOTE,
    screen_images,
    screen_vectors,
    small_data_dropout,
    uses_image_flow,
)
from tfp_realnvp.data import DATASETS, load_named_data, shards
from tfp_realnvp.data.tables import Table, file_type, index_column, without_first_column


def _dropout(args, data: np.ndarray) -> float:
    if args.dropout is not None:
        return args.dropout
    return small_data_dropout(len(data) * (1 - args.validation_split - args.test_split))


def _context_columns(args, table: Table) -> tuple[int, ...]:
    """``--context``'s columns, 0-based: names of the header, or 1-based numbers."""
    if not args.context:
        return ()
    if table.values.ndim != 2:
        raise UsageError(f"--context: {args.data} holds images; a context is for tables")
    width, names = table.values.shape[1], table.columns
    chosen = []
    for item in args.context:
        if names is not None and item in names:
            chosen.append(names.index(item))
        elif item.isdigit() and 1 <= int(item) <= width:
            chosen.append(int(item) - 1)
        else:
            known = f"its columns are {', '.join(names)}" if names else "it has no header"
            raise UsageError(
                f"--context {item}: no such column of {args.data} ({known}; numbers count "
                f"from 1 to {width})"
            )
    if len(set(chosen)) != len(chosen):
        raise UsageError(f"--context names a column twice: {','.join(args.context)}")
    if len(chosen) >= width:
        raise UsageError(f"--context takes every column of {args.data}; leave one to model")
    return tuple(chosen)


def _train_config(
    args,
    training,
    data: np.ndarray | None,
    dequantize_columns: tuple[int, ...],
    context: tuple[int, ...] = (),
):
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
        # Shards: None, the small-data default once the checking pass has counted the rows.
        dropout=0.0 if multiscale else _dropout(args, data) if data is not None else args.dropout,
        weight_decay=args.weight_decay,
        base=args.base,
        xla=not args.no_xla,
        seed=args.seed,
        verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2),
        dequantize_columns=dequantize_columns,
        whiten=args.whiten,
        context_columns=context,
    )


def _names(names: list[str] | None, otherwise: str) -> str:
    return ", ".join(names) if names else otherwise


def _conditional_record(table: Table, context: tuple[int, ...]) -> dict:
    """What a conditional run's marker says of its columns: the target's and the context's
    names (or None without a header) and their 0-based places in the training table."""
    width = table.values.shape[1]
    target = [i for i in range(width) if i not in set(context)]
    names = table.columns
    return {
        "columns": None if names is None else [names[i] for i in target],
        "context_columns": None if names is None else [names[i] for i in context],
        "target_positions": target,
        "context_positions": list(context),
    }


def _screen(args, table: Table, context: tuple[int, ...] = ()) -> tuple[tuple[int, ...], list[str]]:
    """Checks the data before TensorFlow starts; returns the columns to dequantise (never a
    context's) and notes for the user."""
    data = table.values
    if len(data) < 10:
        raise UsageError(f"{args.data}: {len(data)} examples; training needs at least 10")
    if data.ndim == 4:
        levels = screen_images(data, args.data)
        if args.whiten:
            raise UsageError(
                "--whiten is for vectors: image flows take grey levels through their own "
                "dequantisation and logit"
            )
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
    if args.whiten and data.shape[1] < 2:
        raise UsageError(f"--whiten: {args.data} has one column; there is nothing to whiten")
    report = screen_vectors(data, args.data, not args.no_dequantize, table)
    whole = tuple(c for c in report.integer_columns if c not in set(context))
    notes = []
    if whole:
        notes.append(
            f"{table.describe(whole)} of {args.data} {'holds' if len(whole) == 1 else 'hold'} "
            "only whole numbers; training adds uniform noise on [-0.5, 0.5) to them "
            "(dequantisation), so log-probs of whole numbers estimate log-probabilities "
            "(--no-dequantize turns this off)"
        )
    for c in report.few_valued_columns:  # a context may be discrete: it is not modelled
        if c not in context:
            values = np.unique(data[:, c])
            notes.append(
                f"{table.describe([c])} of {args.data} takes only {len(values)} values in "
                f"{len(data)} rows ({_listed(values)}), not whole numbers: a density fits them "
                "best with ever sharper spikes on the values, so the NLL rewards spikes; code "
                "them as 0, 1, ... to have them dequantised"
            )
    return whole, notes


def _listed(values: np.ndarray, shown: int = 3) -> str:
    head = ", ".join(f"{v:g}" for v in values[:shown])
    return head if len(values) <= shown else f"{head}, ..."


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
    """What makes two runs the same so far: every training argument but the stopping rule
    (``--epochs``, ``--patience``: an interrupted run may be shortened or extended), and the
    data files' identity."""
    skip = {"out", "force", "resume", "quiet", "verbose", "command", "epochs", "patience"}
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
    if args.whiten:
        raise UsageError(
            "--whiten needs the data in memory (the covariance of every row); streamed shards "
            "are standardised per column"
        )
    if args.context:
        raise UsageError("--context needs the data in memory; streamed shards are not split")
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


def _agree_on_epoch(args, strategy, out: Path, task, resume_from: int) -> int:
    """The epoch every worker resumes from: the newest one they all backed up whole."""
    path = backup_files.backup_dir(out, task.index)
    mine = backup_files.complete_epochs(path) if resume_from > 0 else []
    agreed = import_quietly("tfp_realnvp.cli.backup_callback", args.verbose).common_epoch(
        strategy, mine
    )
    if args.resume and agreed == 0:
        raise backup_files.BackupError(
            f"--resume: the workers' backups share no whole epoch (this worker has "
            f"{f'epochs {mine}' if mine else 'none'} in {path}); restart the job without "
            "--resume to start over"
        )
    if resume_from > 0 and agreed < resume_from:
        print_note(f"epoch {agreed} is the newest one every worker backed up; resuming from there")
        backup_files.rewind(path, agreed)
    return agreed if resume_from >= 0 else resume_from


def _peer_stopped(error: BaseException) -> bool:
    """Whether TensorFlow aborted a collective because another worker stopped."""
    import tensorflow as tf  # loaded by now: training has started

    return isinstance(error, tf.errors.UnavailableError)


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
        out = args.out or Path("runs") / Path(args.data).name.removesuffix(
            file_type(Path(args.data))
        )
    multi = args.distribute == "multi-worker"
    task = cluster.task_from_env() if multi else cluster.Task(0, 1)
    if task.is_chief:
        rundir.check_run_dir(out, args.force, [("--data", p) for p in inputs])
    fingerprint = _fingerprint(args, inputs)
    # A worker of a multi-worker job must not refuse --resume alone, leaving the others
    # waiting for it: the job decides together, once the workers are connected.
    resume = args.resume and not multi
    resume_from = backup_files.check_backup(out, fingerprint, resume, args.force, task.index)
    data, columns, dequantize_columns, notes, dropped = None, None, (), [], False
    context, described = (), {}
    if plan is None:
        table = load_named_data(args.data, num_samples=args.num_samples, seed=args.seed)
        if not args.keep_index_column and index_column(table):
            notes.append(index_note(table, args.data, "--keep-index-column keeps it"))
            table, dropped = without_first_column(table), True
        data, columns = table.values, table.columns
        context = _context_columns(args, table)
        dequantize_columns, screened = _screen(args, table, context)
        notes += screened
        if context:
            described = _conditional_record(table, context)
            columns = described["columns"]
            notes.append(
                f"learning p({_names(described['columns'], 'the other columns')} | "
                f"{_names(described['context_columns'], table.describe(context))})"
            )
    vectors = data is None or not uses_image_flow(data, args.architecture)
    if data is not None and vectors and args.dropout is None and _dropout(args, data):
        notes.append(SMALL_DATA_NOTE)
    for note in notes:
        print_note(note)

    training = import_quietly("tfp_realnvp.cli.run", args.verbose)
    config = _train_config(args, training, data, dequantize_columns, context)
    strategy = _strategy(args.distribute)
    if multi:
        resume_from = _agree_on_epoch(args, strategy, out, task, resume_from)
    created = [p for p in reversed(out.resolve().parents) if not p.exists()]
    saved = backup_files.start_backup(out, fingerprint, resume_from < 0, task.index)
    if resume_from > 0:
        print_note(f"resuming after epoch {resume_from} from the backup in {saved}")
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
                sharded = import_quietly("tfp_realnvp.cli.sharded_run", args.verbose)
                dequantize = not args.no_dequantize
                metrics = sharded.train_sharded_run(
                    plan, config, tmp, saved, max(resume_from, 0), strategy, dequantize
                )
        except BaseException as e:
            lost = multi and _peer_stopped(e)
            if backup_files.complete_epochs(saved):
                print_note(f"rerunning this command resumes from the backup in {saved}")
            else:
                backup_files.remove_backup(saved)
                rundir.remove_empty(created)
            if lost:
                raise cluster.lost_worker(str(e)) from None
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
        event_shape = metrics["event_shape"] if data is None or context else list(data.shape[1:])
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
        info = {"data": args.data, **metrics["model"], "event_shape": event_shape}
        info.update({"columns": columns, "index_column_dropped": dropped, **described})
        rundir.write_marker(tmp, info)
        if task.is_chief:
            rundir.publish(tmp, out)
    backup_files.remove_backup(saved)
    if not task.is_chief:
        return 0

    def show(key):
        value = metrics[key]
        return "not finite" if value is None else f"{value:.4f}"

    best = metrics.get("best_epoch", metrics["epochs"])
    kept = "" if best == metrics["epochs"] else f", with the weights of epoch {best} (the best)"
    print(
        f"test NLL {show('test_nll')} nats ({show('test_bits_per_dim')} bits/dim) "
        f"after {metrics['epochs']} epochs{kept} in {metrics['wall_time_s']:.1f} s"
    )
    for key, what in (
        ("test_nll_gaussian", "a Gaussian"),
        ("test_nll_linear_gaussian", "a linear regression with Gaussian noise"),
    ):
        if key in metrics:
            print(f"{what}, fitted to the same training rows: test NLL {show(key)} nats")
    print(
        f"results in {out}/: "
        + ", ".join(sorted(p.name for p in out.iterdir() if p.name != rundir.MARKER))
    )
    return 0
