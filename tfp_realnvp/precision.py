"""Low-precision evaluation: coupling conditioners in bfloat16, everything else in float32.

A coupling flow spends nearly all of its sampling and density time in its conditioners' matmuls
(benchmarks/README.md). CPUs with AVX512-BF16 (and accelerators) multiply bfloat16 matrices
about twice as fast as float32 ones. `LoweredConditioners` holds a bfloat16 copy of every
coupling conditioner of a flow; inside ``lowered.active()`` each `Coupling` traced runs its
copy on ``x1`` cast to bfloat16 and casts the outputs back, so the transformer, the log-dets
and the base density stay in the flow's own dtype (float32).

The copies' weights are cast once, when made, and cast again only when the float32 weights
have changed since (`LoweredConditioners.refresh_if_stale`, an exact comparison with a float32
snapshot: a read of the weights, no cast). `FlowModel.sample` and `FlowModel.log_prob` take
``precision="bfloat16"`` and do all of this; the accuracy it costs is measured in
benchmarks/README.md ("Performance II"). The switch each coupling reads lives with the
bijectors (`tfp_realnvp.bijectors.lowering`); this module makes the copies and opens it.

>>> import numpy as np, tensorflow as tf
>>> import tfp_realnvp as trn
>>> flow = trn.real_nvp([4], num_couplings=2, hidden_units=[8])
>>> lowered = LoweredConditioners(flow)
>>> x = tf.random.stateless_normal([3, 4], seed=[1, 2])
>>> with lowered.active():
...     z = flow.inverse(x)
>>> z.dtype.name, lowered.conditioners[0].compute_dtype
('float32', 'bfloat16')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

from tfp_realnvp._functions import own_function
from tfp_realnvp._keras import tf_variables
from tfp_realnvp.bijectors.coupling import Coupling
from tfp_realnvp.bijectors.lowering import lowered_conditioner, lowering
from tfp_realnvp.traversal import walk

__all__ = ["PRECISIONS", "LoweredConditioners", "check_precision", "lowered_conditioner"]

PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str | None) -> str | None:
    """``None`` for the flow's own precision, ``"bfloat16"`` for the lowered path.

    Raises:
      ValueError: for any other value, naming the choices.
    """
    if precision in (None, "float32"):
        return None
    if precision == "bfloat16":
        return precision
    raise ValueError(f"`precision` must be one of {PRECISIONS} or None; got {precision!r}.")


class LoweredConditioners:
    """bfloat16 copies of the conditioners of every coupling in ``flow``.

    Each copy is a new instance of the conditioner's class, from its ``get_config()`` with
    ``dtype="bfloat16"`` (variables and computation in bfloat16), holding the float32 weights
    cast once.

    Args:
      flow: a bijector (a `tfb.Chain` of couplings, say); every `Coupling` inside is lowered.
      dtype: the low precision, ``"bfloat16"``.

    Raises:
      ValueError: when the flow holds no coupling.
      TypeError: for a conditioner that is not a Keras layer with ``get_config``.
    """

    def __init__(self, flow, dtype: str = "bfloat16"):
        self.dtype = tf.as_dtype(dtype)
        self.couplings = [b for b in walk(flow) if isinstance(b, Coupling)]
        if not self.couplings:
            raise ValueError(
                "`flow` holds no Coupling: there is no conditioner to run in low precision."
            )
        self.conditioners = [self._copy(c) for c in self.couplings]
        pairs = [
            (source, target)
            for c, low in zip(self.couplings, self.conditioners, strict=True)
            for source, target in zip(tf_variables(c.conditioner), tf_variables(low), strict=True)
        ]
        self._sources = [s for s, _ in pairs]
        self._targets = [t for _, t in pairs]
        self._seen = [tf.Variable(s, trainable=False) for s in self._sources]
        self.casts = 0  # how often the weights were cast (the tests read it)
        self._stale = own_function(self._compare)
        self.refresh()

    def _copy(self, coupling):
        conditioner = coupling.conditioner
        if not hasattr(conditioner, "get_config") or not hasattr(conditioner, "weights"):
            raise TypeError(
                f"{coupling.name}: a low-precision copy needs a Keras-layer conditioner with "
                f"get_config(); got {type(conditioner).__name__}."
            )
        copy = type(conditioner).from_config({**conditioner.get_config(), "dtype": self.dtype.name})
        x1 = tf.zeros((1, *coupling.conditioner_input_shape), self.dtype)
        if coupling.context_shape is None:
            copy(x1)
        else:
            copy(x1, context=tf.zeros((1, *coupling.context_shape), self.dtype))
        return copy

    def _compare(self):
        return tf.reduce_any(
            [
                tf.reduce_any(tf.not_equal(s, w))
                for s, w in zip(self._sources, self._seen, strict=True)
            ]
        )

    def refresh(self) -> None:
        """Casts the float32 weights into the copies (and remembers them)."""
        for source, target, seen in zip(self._sources, self._targets, self._seen, strict=True):
            target.assign(tf.cast(source, self.dtype))
            seen.assign(source)
        self.casts += 1

    def refresh_if_stale(self) -> None:
        """`refresh` when any float32 weight changed since the last cast."""
        if bool(self._stale()):
            self.refresh()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Couplings called (or traced) inside run their low-precision conditioner."""
        with lowering(zip(self.couplings, self.conditioners, strict=True)):
            yield
