"""The backup beside a run: where it lives, which command it belongs to, what may resume or
replace it (`tfp_realnvp.cli.backup_files`, no TensorFlow). Kills and resumes of real runs are
in test_resume.py."""

import json

import pytest

from tfp_realnvp.cli import backup_files
from tfp_realnvp.cli.backup_files import (
    BACKUP_MARKER,
    BackupError,
    backup_dir,
    check_backup,
    start_backup,
)

FINGERPRINT = {"epochs": 6, "seed": 0}


def test_a_backup_resumes_only_the_same_command(tmp_path):
    out = tmp_path / "run"
    assert check_backup(out, FINGERPRINT, resume=False, force=False) == 0
    with pytest.raises(BackupError, match="--resume: no backup of an interrupted run"):
        check_backup(out, FINGERPRINT, resume=True, force=False)
    path = start_backup(out, FINGERPRINT, discard=False)
    assert path == tmp_path / ".run.backup" and (path / BACKUP_MARKER).is_file()
    (path / "epoch-3").mkdir()
    (path / "epoch-4.tmp").mkdir()  # killed while writing: not a complete epoch
    assert check_backup(out, FINGERPRINT, resume=True, force=False) == 3
    other = {**FINGERPRINT, "epochs": 9}
    with pytest.raises(BackupError, match=r"other settings \(--epochs differ\).*--force"):
        check_backup(out, other, resume=False, force=False)
    assert check_backup(out, other, resume=False, force=True) == -1  # ours: may be discarded
    start_backup(out, other, discard=True)
    assert backup_files.complete_epochs(path) == [] and check_backup(out, other, False, False) == 0


def test_rewinding_drops_the_epochs_after_the_agreed_one(tmp_path):
    path = start_backup(tmp_path / "run", FINGERPRINT, discard=False)
    for epoch in (1, 2, 3):
        (path / f"epoch-{epoch}").mkdir()
    backup_files.rewind(path, 1)
    assert backup_files.complete_epochs(path) == [1] and (path / BACKUP_MARKER).is_file()


def test_a_directory_that_is_not_our_backup_is_never_touched(tmp_path):
    out = tmp_path / "run"
    mine = backup_dir(out)
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(BackupError, match="not a tfp-realnvp backup"):
            check_backup(out, FINGERPRINT, resume=False, force=force)
    backup_files.remove_backup(mine)
    assert (mine / "notes.txt").read_text() == "mine"
    assert backup_dir(out, worker=2) == tmp_path / ".run.backup-worker2"


def _refusal(old: dict, new: dict, tmp_path) -> str:
    out = tmp_path / "run"
    start_backup(out, old, discard=False)
    with pytest.raises(BackupError) as refused:
        check_backup(out, new, resume=False, force=False)
    return str(refused.value)


@pytest.mark.parametrize(
    "old, new, named",
    [
        ({"epochs": 6}, {"epochs": 9}, "--epochs"),
        ({"batch_size": 64, "data_files": ["a"]}, {"batch_size": 32, "data_files": ["b"]},
         "--batch-size, the data files"),
        ({"epochs": 6}, {"epochs": 6, "whiten": True}, "--whiten"),  # a setting new to the command
        ({"a": 1, "b": 1, "c": 1, "d": 1}, {}, "--a, --b, --c, --d"),
        ({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}, {}, "--a, --b, --c, --d, ..."),
    ],
)  # fmt: skip
def test_a_refusal_names_the_settings_that_differ(tmp_path, old, new, named):
    path = backup_dir(tmp_path / "run")
    assert _refusal(old, new, tmp_path) == (
        f"{path} holds the backup of an interrupted run with other settings ({named} differ); "
        "rerun that command to resume it, or pass --force to discard it"
    )


def test_the_marker_records_its_format_version_and_the_command(tmp_path):
    path = start_backup(tmp_path / "run", FINGERPRINT, discard=False)
    record = json.loads((path / BACKUP_MARKER).read_text())
    assert record == {"format": "tfp-realnvp-backup", "version": 1, "fingerprint": FINGERPRINT}
    assert [p.name for p in path.iterdir()] == [BACKUP_MARKER]  # no temporary file left


def test_starting_again_keeps_the_epochs_of_the_same_command(tmp_path):
    # Resuming (discard=False) must neither wipe the backup nor trip over its directory.
    path = start_backup(tmp_path / "run", FINGERPRINT, discard=False)
    (path / "epoch-1").mkdir()
    assert start_backup(tmp_path / "run", FINGERPRINT, discard=False) == path
    assert backup_files.complete_epochs(path) == [1]


def test_a_backup_starts_below_directories_that_do_not_exist_yet(tmp_path):
    out = tmp_path / "new" / "deeper" / "run"
    path = start_backup(out, FINGERPRINT, discard=False)
    assert path == tmp_path / "new" / "deeper" / ".run.backup" and (path / BACKUP_MARKER).is_file()


def test_each_worker_checks_and_starts_its_own_backup(tmp_path):
    out = tmp_path / "run"
    path = start_backup(out, FINGERPRINT, discard=False, worker=1)
    assert path == tmp_path / ".run.backup-worker1" and not backup_dir(out).exists()
    (path / "epoch-2").mkdir()
    assert check_backup(out, FINGERPRINT, resume=True, force=False, worker=1) == 2
    with pytest.raises(BackupError, match="--resume: no backup"):
        check_backup(out, FINGERPRINT, resume=True, force=False, worker=0)


def test_removing_a_backup_removes_all_of_it(tmp_path):
    path = start_backup(tmp_path / "run", FINGERPRINT, discard=False)
    (path / "epoch-1").mkdir()
    (path / "epoch-1" / "weights.h5").write_bytes(b"...")
    backup_files.remove_backup(path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
