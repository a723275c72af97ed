"""`tf.function`s made per object (a model's, a fit's, a check's), each counted on its own.

TensorFlow counts a function's traces by its Python code object, so functions made from the
same code for different objects share one count: six models that each trace their own
``log_prob`` once drew "5 out of the last 5 calls ... triggered tf.function retracing" from
the fifth model on, a warning about nothing. `own_function` hands TensorFlow a
`functools.partial` of the callable, which has no code object, so the count is this
function's alone and still warns when this one function retraces too often.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import tensorflow as tf

__all__ = ["own_function"]


def own_function(fn: Callable, **kwargs) -> Callable:
    """``tf.function(fn, **kwargs)``, its traces counted apart from other functions of the
    same code."""
    return tf.function(functools.partial(fn), **kwargs)
