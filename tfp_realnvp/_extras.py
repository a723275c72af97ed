"""Optional dependencies: the extra that brings each, and one message when it is missing.

The core install (``pip install tfp_realnvp``) is TensorFlow, TensorFlow Probability, tf-keras
and numpy. The command line's pictures (matplotlib) and the bundled digits (scikit-learn) come
with ``pip install "tfp_realnvp[cli]"``.
"""

from __future__ import annotations

import importlib

__all__ = ["EXTRAS", "MissingExtra", "missing_extra"]

# import name -> (distribution, the extra that installs it)
EXTRAS = {"matplotlib": ("matplotlib", "cli"), "sklearn": ("scikit-learn", "cli")}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def missing_extra(module: str, needed_for: str) -> MissingExtra | None:
    """None when ``module`` (a key of `EXTRAS`) imports, else the error to raise (with the
    import's own error as its cause)."""
    try:
        importlib.import_module(module)
    except ImportError as e:
        distribution, extra = EXTRAS[module]
        error = MissingExtra(
            f"{needed_for} needs {distribution}, which is not installed: "
            f'pip install "tfp_realnvp[{extra}]"'
        )
        error.__cause__ = e
        return error
    return None
