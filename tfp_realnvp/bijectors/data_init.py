"""The one switch under which a bijector may set its parameters from the data it transforms.

A TFP bijector is a function: ``forward``, ``inverse`` and the log-dets must not change the
variables they read, or a map changes under whoever called it first (``tfp.mcmc``, ``tfp.vi``,
a user who samples before fitting). Data-dependent initialisation (`ActNorm`) therefore happens
only inside `initializing`, which `tfp_realnvp.initialize` opens for one eager data -> latent
pass of a batch: a bijector that meets the batch there initialises itself from the
activations it receives and adds its name to the record.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["initializing", "initialization_record"]

_STATE = threading.local()


@contextlib.contextmanager
def initializing() -> Iterator[list[str]]:
    """Opens the switch for this thread; yields the list that bijectors which initialise
    themselves append their names to."""
    previous = getattr(_STATE, "record", None)
    _STATE.record = record = []
    try:
        yield record
    finally:
        _STATE.record = previous


def initialization_record() -> list[str] | None:
    """The open record, or ``None`` outside `initializing` (where no bijector initialises)."""
    return getattr(_STATE, "record", None)
