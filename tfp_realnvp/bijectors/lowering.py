"""The switch under which a bijector runs a low-precision copy of its conditioner.

A coupling flow spends nearly all of its time in its conditioners' matmuls, which bfloat16 runs
about twice as fast on hardware that has it. `tfp_realnvp.precision.LoweredConditioners` makes
the copies (bfloat16 Keras layers holding the float32 weights, cast) and opens `lowering`
around a call or a trace; a bijector called there asks `lowered_conditioner` for its copy and
runs it on its input cast to the copy's compute dtype, casting the outputs back, so the
transformer, the log-dets and the base density keep the flow's own dtype. Outside `lowering`,
and for a bijector it was not given, `lowered_conditioner` answers ``None``.

The switch is a context variable: it holds for the thread (or task) that opened it.

>>> lowered_conditioner("coupling") is None
True
>>> with lowering([("coupling", "its bfloat16 copy")]):
...     lowered_conditioner("coupling")
'its bfloat16 copy'
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["lowered_conditioner", "lowering"]

_ACTIVE: contextvars.ContextVar[dict[int, Any] | None] = contextvars.ContextVar(
    "tfp_realnvp_lowered", default=None
)


@contextlib.contextmanager
def lowering(copies: Iterable[tuple[Any, Any]]) -> Iterator[None]:
    """Inside, each bijector of the ``(bijector, conditioner_copy)`` pairs runs its copy."""
    token = _ACTIVE.set({id(bijector): copy for bijector, copy in copies})
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def lowered_conditioner(bijector: Any) -> Any:
    """The low-precision copy of ``bijector``'s conditioner while one is active, else None."""
    active = _ACTIVE.get()
    return None if active is None else active.get(id(bijector))
