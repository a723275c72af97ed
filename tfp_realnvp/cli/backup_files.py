"""Where a training run keeps its backup, and whether a backup may be resumed or replaced.

A run to ``--out runs/NAME`` backs its state up after every epoch into ``runs/.NAME.backup/``,
beside (never inside) the run directory: a published run is only ever replaced whole by
`tfp_realnvp.cli.rundir.publish`, so nothing of it is lost or half-written while a new run trains,
is killed, or resumes. The backup carries a marker, ``.tfp-realnvp-backup.json``, with the
command's fingerprint (every argument that shapes training, and the data file's size and time).
Rerunning the same command resumes from the backup's last complete epoch; a backup is deleted
only when it has our marker: after the run it belongs to is published, or by ``--force`` when it
belongs to a different command. A directory of that name without the marker is never touched.

Each epoch is written to ``epoch-K.tmp/`` and renamed to ``epoch-K/`` when whole, so a kill at
any moment leaves the previous epoch intact. This module imports no TensorFlow: the command
line checks the backup before TensorFlow starts.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tfp_realnvp.cli.rundir import read_record

__all__ = [
    "BACKUP_MARKER",
    "BackupError",
    "backup_dir",
    "check_backup",
    "complete_epochs",
    "rewind",
]

BACKUP_MARKER = ".tfp-realnvp-backup.json"
_FORMAT = "tfp-realnvp-backup"
_EPOCH = re.compile(r"epoch-(\d+)")


class BackupError(ValueError):
    """A backup that must not be resumed or replaced, with a one-line reason."""


def backup_dir(out: Path, worker: int = 0) -> Path:
    """The backup directory of the run to ``out`` (of worker ``worker`` of a multi-worker
    run; each worker keeps its own, so machines need not share a disk)."""
    suffix = "" if worker == 0 else f"-worker{worker}"
    return out.with_name(f".{out.name}.backup{suffix}")


def _marker(path: Path) -> dict | None:
    return read_record(path / BACKUP_MARKER, _FORMAT)


def complete_epochs(path: Path) -> list[int]:
    """The epochs (1-based counts of finished epochs) whose backups are whole, oldest first."""
    if not path.is_dir():
        return []
    found = (_EPOCH.fullmatch(p.name) for p in path.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def _differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    named = ["the data files" if k == "data_files" else f"--{k.replace('_', '-')}" for k in keys]
    return ", ".join(named[:4]) + (", ..." if len(keys) > 4 else "")


def check_backup(out: Path, fingerprint: dict, resume: bool, force: bool, worker: int = 0):
    """Decides what to do with the backup beside ``out`` before training starts.

    Args:
      out: the run directory.
      fingerprint: JSON-able description of the command; a backup resumes only the same one.
      resume: the user asked to resume (``--resume``): a missing backup is an error.
      force: a backup of a different command (ours, by its marker) may be discarded.

    Returns:
      the number of finished epochs to resume from (0 for a fresh start).

    Raises:
      BackupError: naming the backup directory and what to do.
    """
    path = backup_dir(out, worker)
    if not path.exists():
        if resume:
            raise BackupError(f"--resume: no backup of an interrupted run at {path}")
        return 0
    record = _marker(path)
    if record is None or not path.is_dir():
        raise BackupError(
            f"{path} is where this run keeps its backup, but it is not a tfp-realnvp backup "
            f"(it has no {BACKUP_MARKER}); it is never replaced: move it or choose another --out"
        )
    if record.get("fingerprint") == fingerprint:
        return (complete_epochs(path) or [0])[-1]
    if not force:
        raise BackupError(
            f"{path} holds the backup of an interrupted run with other settings "
            f"({_differences(record.get('fingerprint') or {}, fingerprint)} differ); rerun that "
            "command to resume it, or pass --force to discard it"
        )
    if resume:
        raise BackupError(f"--resume: the backup at {path} is of a run with other settings")
    return -1  # a stale backup of ours, to discard


def start_backup(out: Path, fingerprint: dict, discard: bool, worker: int = 0) -> Path:
    """Creates (or, with ``discard``, recreates) the marked backup directory; returns it."""
    path = backup_dir(out, worker)
    if discard and _marker(path) is not None:
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    if _marker(path) is None:
        record = {"format": _FORMAT, "version": 1, "fingerprint": fingerprint}
        tmp = path / f"{BACKUP_MARKER}.tmp"
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path / BACKUP_MARKER)
    return path


def rewind(path: Path, epochs_done: int) -> None:
    """Removes the backed-up epochs after ``epochs_done``, so that training resumed from there
    writes them afresh (in a multi-worker job, a worker may have backed up an epoch that
    another one did not finish)."""
    for epoch in complete_epochs(path):
        if epoch > epochs_done:
            shutil.rmtree(path / f"epoch-{epoch}")


def remove_backup(path: Path) -> None:
    """Deletes a backup directory, only if it carries our marker."""
    if _marker(path) is not None:
        shutil.rmtree(path, ignore_errors=True)
