"""Module paths of version 0.1.0 that moved, kept importable with a `DeprecationWarning`.

``import tfp_realnvp.training`` (or ``tfp_realnvp.training`` as an attribute) gives the module
now at `tfp_realnvp.cli.run`, and warns once with the new path. Only names: nothing here
imports the application until such an old path is used.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

__all__ = ["MOVED", "install", "resolve"]

MOVED = {
    "tfp_realnvp.training": "tfp_realnvp.cli.run",
    "tfp_realnvp.shard_training": "tfp_realnvp.cli.sharded_run",
    "tfp_realnvp.plots": "tfp_realnvp.cli.plots",
    "tfp_realnvp.rundir": "tfp_realnvp.cli.rundir",
    "tfp_realnvp.backup": "tfp_realnvp.cli.backup_files",
    "tfp_realnvp.resume": "tfp_realnvp.cli.backup_callback",
    "tfp_realnvp.cluster": "tfp_realnvp.cli.cluster",
    "tfp_realnvp.streams": "tfp_realnvp.cli.streams",
    "tfp_realnvp.screening": "tfp_realnvp.cli.screening",
    "tfp_realnvp.cli_train": "tfp_realnvp.cli.train",
    "tfp_realnvp.shards": "tfp_realnvp.data.shards",
    "tfp_realnvp.sharded": "tfp_realnvp.data.streaming",
    "tfp_realnvp.metrics": "tfp_realnvp.units",
    "tfp_realnvp.residual_flows": "tfp_realnvp.planar_radial_flows",
}


def resolve(old: str) -> ModuleType:
    """The module now at ``MOVED[old]``, with a `DeprecationWarning` naming it."""
    warnings.warn(
        f"{old} moved to {MOVED[old]}; import that instead (the old path will be removed)",
        DeprecationWarning,
        stacklevel=3,
    )
    module = importlib.import_module(MOVED[old])
    sys.modules[old] = module
    return module


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``import <old path>`` with the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return resolve(spec.name)

    def exec_module(self, module):
        pass  # already executed under its new name


def install() -> None:
    """Puts the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())  # before any stale copy of an old module
