"""`FlowModel.fit`'s default ``steps_per_execution``: several training steps per compiled call
when no callback watches single batches.

Keras runs a Python loop around the compiled train step: the data iterator, the metric
results, callback dispatch. On the benchmark workload that is 2-6 ms of a 20 ms step; running
`AUTO_STEPS` steps per compiled call (a `tf.while_loop` inside it) removes most of it
(benchmarks/README.md: ``compile(steps_per_execution=8)`` closed the gap to the hand-written
step in the first performance pass; "Performance II" has the later, noisier runs).

Keras then calls the batch-level callbacks once per execution, with the last step's index, so
the default applies only when no callback of the call overrides a batch hook (``on_batch_*``,
``on_train_batch_*``, ``on_test_batch_*``). Keras' own `History` and `ProgbarLogger` do not
count: the first records epochs only, the second draws a progress bar, which then advances
every `AUTO_STEPS` batches and ends the epoch with the same line. And the value divides the
step counts the call names (``steps_per_epoch``, ``validation_steps``, ``steps``): on data
that does not end, Keras 3 runs whole executions, so 8 steps per call would turn
``steps_per_epoch=100`` into 104 steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfp_realnvp._keras import keras

__all__ = ["AUTO_STEPS", "StepsPerExecution", "unsized", "watches_batches"]

AUTO_STEPS = 8
_HOOKS = (
    "on_batch_begin",
    "on_batch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
)
_NEUTRAL = (keras.callbacks.Callback, keras.callbacks.History, keras.callbacks.ProgbarLogger)


def watches_batches(callback) -> bool:
    """Whether ``callback`` acts on single training or evaluation batches."""
    for hook in _HOOKS:
        method = getattr(callback, hook, None)
        func = getattr(method, "__func__", method)  # LambdaCallback sets plain functions
        if func is not None and all(func is not getattr(c, hook, None) for c in _NEUTRAL):
            return True
    return False


def unsized(data, steps) -> bool:
    """Whether ``data`` is a dataset of unknown or infinite length with no step count given:
    tf-keras refuses several steps per execution there ("Could not infer the size of the
    data"), so such a call runs one step at a time."""
    if steps is not None:
        return False
    if isinstance(data, (tuple, list)) and data:
        data = data[0]
    return isinstance(data, tf.data.Dataset) and int(data.cardinality()) < 0


class StepsPerExecution:
    """Chooses and sets a model's ``steps_per_execution`` around each ``fit``/``evaluate``.

    ``requested`` is what ``compile`` was given (``None``: choose). A compiled train or test
    function is built for one value, so a call that needs another value drops it (one retrace);
    calls that keep the value reuse it.
    """

    def __init__(self, requested: int | None):
        self.requested = requested
        self._built: dict[str, int] = {}  # function name -> the value it was built with
        self._inside = False  # fit's validation calls evaluate: the outer call decides

    def choose(
        self, model, callbacks: Sequence | None, counts: Sequence = (), unsized: bool = False
    ) -> int:
        """``counts``: the step counts the call was given (``steps_per_epoch``, ...). Keras
        runs whole executions when the data does not end, so the value must divide them.
        ``unsized``: the call reads a dataset of unknown length (see `unsized`)."""
        if self.requested is not None:
            return self.requested
        if unsized:
            return 1
        strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
        if model.run_eagerly or strategy.num_replicas_in_sync != 1:  # one device only
            return 1
        callbacks = getattr(callbacks, "callbacks", callbacks)  # a CallbackList (from fit)
        if any(watches_batches(c) for c in callbacks or ()):
            return 1
        counts = [int(c) for c in counts if c is not None and int(c) > 0]
        return max(d for d in range(1, AUTO_STEPS + 1) if all(c % d == 0 for c in counts))

    def run(self, model, callbacks: Sequence | None, counts: Sequence, call, unsized=False):
        """``call()`` (a ``super().fit`` or ``super().evaluate``) under the chosen value."""
        if self._inside:
            return call()
        steps = self.choose(model, callbacks, counts, unsized)
        names = ("train_function", "test_function")
        for name in names:
            if getattr(model, name, None) is not None and self._built.get(name) != steps:
                setattr(model, name, None)
        before = {name: getattr(model, name, None) for name in names}
        outer = int(np.asarray(model.steps_per_execution))
        model.steps_per_execution = steps
        self._inside = True
        try:
            return call()
        finally:
            self._inside = False
            for name in names:
                fn = getattr(model, name, None)
                if fn is not None and fn is not before[name]:
                    self._built[name] = steps
            model.steps_per_execution = outer  # predict() keeps compile()'s value
