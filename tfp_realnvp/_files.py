"""Atomic writes: a file or folder appears whole at its path, or not at all.

Everything is staged under a hidden name in the destination's folder (so the final rename never
crosses a file system) and follows the user's umask, like any file the user creates. No
TensorFlow here: the command line uses it before TensorFlow starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "follow_umask", "replace"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path, directory: bool) -> None:
    """Gives ``path`` the mode a plain ``open``/``mkdir`` would have: ``mkstemp`` and
    ``mkdtemp`` create 0600/0700 whatever the umask, and a finished output should not be."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def replace(staged: Path, path: Path) -> None:
    """Moves ``staged`` to ``path``; an existing folder at ``path`` is moved aside first (a
    rename cannot replace a non-empty folder) and removed once the new one is in place."""
    old = None
    if path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(staged, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yields a fresh hidden path beside ``path`` to write to (a file, or with ``directory``
    a folder that does not exist yet); when the block ends without an exception it is moved
    to ``path``, replacing what was there, and otherwise removed. What the block creates
    keeps the user's umask (the path sits in a private 0700 folder that is removed).

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("whole")
    >>> target.read_text()
    'whole'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    staged = holder / path.name
    try:
        yield staged
        if not (staged.is_dir() if directory else staged.is_file()):
            raise FileNotFoundError(f"nothing was written to {staged}")
        replace(staged, path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)
