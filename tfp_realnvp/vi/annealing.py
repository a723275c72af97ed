"""Annealing: fitting ``q`` to a tempered target ``p~^beta`` whose ``beta`` rises to 1 over
the first part of training, so that ``q`` spreads over the flattened target's modes before
they sharpen, instead of settling in the first one it finds."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

__all__ = ["Annealing"]


@dataclasses.dataclass(frozen=True)
class Annealing:
    """A linear annealing schedule: ``beta_t = start + (1 - start) * min(1, t / (fraction * T))``
    multiplies ``log p~`` at step ``t`` of ``T``, so the loss is ``E_q[log q - beta_t log p~]``.

    Costs nothing per step (one multiplication). While ``beta_t < 1`` the reported loss is the
    tempered bound, not the ELBO; from ``fraction * T`` on it is the ELBO again.

    Args:
      fraction: the share of the steps over which ``beta`` rises to 1, in ``(0, 1]``.
      start: ``beta_0``, in ``(0, 1]``.

    >>> schedule = Annealing(fraction=0.5, start=0.1)
    >>> [round(float(schedule.beta(t, 100)), 2) for t in (0, 25, 50, 99)]
    [0.1, 0.55, 1.0, 1.0]

    #### References

    [1] Danilo Jimenez Rezende, Shakir Mohamed. Variational Inference with Normalizing Flows.
        ICML 2015 (``beta_t = min(1, 0.01 + t / 10000)``). https://arxiv.org/abs/1505.05770
    """

    fraction: float = 0.5
    start: float = 0.01

    def __post_init__(self):
        for name in ("fraction", "start"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"`{name}` must be a number in (0, 1]; got {value!r}.")

    def beta(self, step, num_steps) -> tf.Tensor:
        """``beta`` at ``step`` (counted from 0) of ``num_steps`` (tensors or numbers)."""
        step = tf.cast(step, tf.float32)
        ramp = self.fraction * tf.cast(num_steps, tf.float32)
        return self.start + (1.0 - self.start) * tf.minimum(1.0, step / tf.maximum(ramp, 1.0))
