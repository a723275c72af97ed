"""Run directories and output files of the command line: written whole, replaced only when ours.

A run is staged in a hidden directory beside ``--out`` and moved into place in one rename. It
carries a marker file, ``.tfp-realnvp-run.json``, listing what the run wrote. ``--force``
replaces a directory only when that marker is there and the directory holds nothing else, so a
user's own files are never deleted; a directory that holds an input of the command, the current
directory or one of its parents is never replaced at all.

Everything created here follows the user's umask, like any file the user creates. This module
imports no TensorFlow, so every check runs before TensorFlow's start-up.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfp_realnvp._files import atomic_path, follow_umask, replace

__all__ = [
    "MARKER",
    "Interrupted",
    "OutputError",
    "array_writer",
    "check_output_file",
    "check_run_dir",
    "deferred_signals",
    "publish",
    "install_signal_handlers",
    "read_marker",
    "remove_empty",
    "received_signal",
    "restore_signal_handlers",
    "staging_dir",
    "write_marker",
]

MARKER = ".tfp-realnvp-run.json"
_FORMAT = "tfp-realnvp-run"


class OutputError(ValueError):
    """An output that must not or cannot be written, with a one-line reason."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_pending: list[int] = []
_deferring = [0]


def _on_signal(signum: int, frame: Any) -> None:
    _pending.append(signum)
    if not _deferring[0]:
        raise Interrupted(signum)


def install_signal_handlers() -> dict:
    """Turns SIGINT and SIGTERM into `Interrupted`, so clean-up code runs; returns the handlers
    it replaced, for `restore_signal_handlers`."""
    _pending.clear()
    return {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore_signal_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def received_signal() -> int | None:
    """The first SIGINT/SIGTERM received since `install_signal_handlers`, if any."""
    return _pending[0] if _pending else None


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Holds SIGINT/SIGTERM until the block ends: a rename pair is never cut in half."""
    _deferring[0] += 1
    try:
        yield
    finally:
        _deferring[0] -= 1
    if not _deferring[0] and _pending:
        raise Interrupted(_pending[0])


def _contains(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


def _check_parents(flag: str, path: Path) -> Path:
    """The nearest existing ancestor of ``path``, refusing one that is not a folder we can
    write in: tried by creating (and removing) a file there, the only sure test (root ignores
    permissions, /proc and /sys refuse anyway)."""
    for given in path.parents:  # as the user wrote it (relative stays relative)
        if given.exists():
            shown = given if str(given) != "." else Path.cwd()
            if not given.is_dir():
                raise OutputError(f"{flag} {path}: {shown} is a file, not a directory")
            try:
                with tempfile.NamedTemporaryFile(dir=given, prefix=f".{path.name}.probe-"):
                    pass
            except OSError as e:
                reason = e.strerror or str(e)
                raise OutputError(f"{flag} {path}: cannot write in {shown}: {reason}") from None
            return given.resolve()
    raise OutputError(f"{flag} {path}: no existing directory above it")  # pragma: no cover


def _check_inputs(flag: str, out: Path, inputs: Iterable[tuple[str, Path]]) -> None:
    target = out.resolve()
    for name, path in inputs:
        if _contains(target, Path(path).resolve()):
            raise OutputError(
                f"{flag} {out} would replace {name} {path}, an input of this command; "
                f"choose another {flag}"
            )


def check_run_dir(out: Path, force: bool, inputs: Iterable[tuple[str, Path]] = ()) -> None:
    """Refuses an ``--out`` run directory that this run must not or cannot replace.

    Args:
      out: the run directory to (re)place.
      force: replace an existing run of ours.
      inputs: ``(flag, path)`` of each file the command reads, which ``out`` must not hold.

    Raises:
      OutputError: naming ``out`` and the reason.
    """
    target = out.resolve()
    if _contains(target, Path.cwd().resolve()):
        raise OutputError(
            f"--out {out} is the current directory or one of its parents, which a run would "
            "replace; give a new directory, e.g. runs/NAME"
        )
    _check_inputs("--out", out, inputs)
    _check_parents("--out", out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is a file; give a directory for the run")
    if not out.is_dir() or not any(out.iterdir()):
        return
    marker = read_marker(out)
    if marker is None:
        raise OutputError(
            f"--out {out} holds files that are not a tfp-realnvp run (it has no {MARKER}); "
            "it is never replaced, even with --force: choose a new directory"
        )
    extra = sorted({p.name for p in out.iterdir()} - set(marker["files"]) - {MARKER})
    if extra:
        shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
        raise OutputError(
            f"--out {out} is a tfp-realnvp run but also holds files the run did not write "
            f"({shown}); move them out first, or choose a new directory"
        )
    if not force:
        raise OutputError(f"--out {out} holds a previous run; pass --force to replace it")


def check_output_file(path: Path, force: bool, inputs: Iterable[tuple[str, Path]] = ()) -> None:
    """Refuses an ``--out`` file that is not ``.npy``/``.csv``, exists (without ``force``), is
    an input of the command, or cannot be created.

    Raises:
      OutputError: naming ``path`` and the reason.
    """
    if path.suffix.lower() not in (".npy", ".csv"):
        raise OutputError(
            f"--out {path}: unsupported file type {path.suffix or '(none)'!r}; use .npy or .csv"
        )
    if path.is_dir():
        raise OutputError(f"--out {path} is a directory; give a file name")
    _check_inputs("--out", path, inputs)
    if path.exists() and not force:
        raise OutputError(f"--out {path} exists; pass --force to replace it")
    if _check_parents("--out", path) != path.resolve().parent:
        raise OutputError(f"--out {path}: directory {path.parent} does not exist")


@contextlib.contextmanager
def staging_dir(out: Path, within: Path | None = None) -> Iterator[Path]:
    """A hidden directory beside ``out`` (or in ``within``, a directory of ours beside it) to
    build the run in; removed (with any parents it had to create) unless it was published."""
    target = out.resolve()
    created = [p for p in reversed(target.parents) if not p.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        where = target.parent if within is None else within
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=where))
    except OSError as e:
        remove_empty(created)
        raise OutputError(f"--out {out}: cannot create it: {e.strerror or e}") from None
    follow_umask(tmp, directory=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already once published
        if not target.exists():
            remove_empty(created)


def remove_empty(created: list[Path]) -> None:
    """Removes the directories in ``created`` (outermost first) that are empty, innermost
    first: the parents a run had to create, when it publishes nothing."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()


def write_marker(run: Path, info: dict) -> None:
    """Marks ``run`` as ours, listing the files in it now; call it last."""
    files = sorted(p.name for p in run.iterdir() if p.name != MARKER)
    record = {"format": _FORMAT, "version": 1, **info, "files": files}
    (run / MARKER).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")


def read_record(path: Path, fmt: str) -> dict | None:
    """The JSON object in the file ``path`` when its ``"format"`` is ``fmt``, else None (no
    file, unreadable, not JSON, or another format): how a marker proves a directory ours."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != fmt:
        return None
    return record


def read_marker(run: Path) -> dict | None:
    """The marker of a run directory, or None if ``run`` is not one of ours."""
    record = read_record(run / MARKER, _FORMAT)
    if record is None or not isinstance(record.get("files"), list):
        return None
    return record


def publish(tmp: Path, out: Path) -> None:
    """Moves the finished run ``tmp`` to ``out``, replacing a previous run whole; signals wait
    until both renames are done."""
    with deferred_signals():
        replace(tmp, out)


@contextlib.contextmanager
def array_writer(
    path: Path, shape: tuple[int, ...], header: Sequence[str] | None = None
) -> Iterator[Callable[[np.ndarray], None]]:
    """Writes a float32 array of ``shape`` to ``path`` (``.npy``, or ``.csv`` with each row
    flattened under a ``header`` row of names) in consecutive blocks of rows, so it never
    needs to fit in memory; the file appears whole when the block ends and not at all if it
    fails."""
    done = [0]
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".npy":
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)

            def write(rows: np.ndarray) -> None:
                array[done[0] : done[0] + len(rows)] = rows
                done[0] += len(rows)

            yield write
            array.flush()
            del array
        else:
            with tmp.open("w") as f:
                if header is not None:
                    csv.writer(f, lineterminator="\n").writerow(header)

                def write(rows: np.ndarray) -> None:
                    np.savetxt(f, rows.reshape(len(rows), -1), delimiter=",", fmt="%.8g")
                    done[0] += len(rows)

                yield write
        if done[0] != shape[0]:
            raise RuntimeError(f"wrote {done[0]} of {shape[0]} rows")  # pragma: no cover
