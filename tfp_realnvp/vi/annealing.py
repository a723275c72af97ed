"""Annealing: fitting ``q`` to a target that moves from the standard normal (where a flow
starts) to ``p~`` over the first part of training, so that ``q`` spreads over the flattened
target's modes before they sharpen, instead of settling in the first one it finds."""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

__all__ = ["Annealing"]


@dataclasses.dataclass(frozen=True)
class Annealing:
    """A linear annealing schedule along the geometric path from a wide Gaussian to ``p~``: at
    step ``t`` of ``T`` the loss is ``E_q[log q - log p_t]`` with

        log p_t(z) = beta_t log p~(z) + (1 - beta_t) log N(z; 0, s^2 I),
        beta_t = start + (1 - start) * min(1, t / (fraction * T)),

    ``s`` the ``reference_scale``. By Hölder's inequality every ``p_t`` integrates wherever
    ``p~`` does; the reference is what keeps them usable: ``p~^beta_t`` alone (Rezende &
    Mohamed's tempering) puts the mass of Neal's funnel near ``v = 40 (1 - beta) / beta``,
    where ``exp(v)`` overflows. Costs nothing per step (one more log-density of a Gaussian);
    the loss reported stays the ELBO of ``p~``.

    Args:
      fraction: the share of the steps over which ``beta`` rises to 1, in ``(0, 1]``.
      start: ``beta_0``, in ``(0, 1]``.
      reference_scale: ``s``, in the units of ``z``: wider than ``p~`` flattens it more early on.

    >>> schedule = Annealing(fraction=0.5, start=0.1)
    >>> [round(float(schedule.beta(t, 100)), 2) for t in (0, 25, 50, 99)]
    [0.1, 0.55, 1.0, 1.0]

    #### References

    [1] Danilo Jimenez Rezende, Shakir Mohamed. Variational Inference with Normalizing Flows.
        ICML 2015 (``beta_t = min(1, 0.01 + t / 10000)`` on ``p~^beta`` itself).
        https://arxiv.org/abs/1505.05770
    [2] Radford M. Neal. Annealed Importance Sampling. Statistics and Computing 11, 2001
        (the geometric path). https://arxiv.org/abs/physics/9803008
    """

    fraction: float = 0.3
    start: float = 0.1
    reference_scale: float = 3.0

    def __post_init__(self):
        for name in ("fraction", "start", "reference_scale"):
            value = getattr(self, name)
            top = math.inf if name == "reference_scale" else 1
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 < value <= top
            ):
                interval = "(0, inf)" if top == math.inf else "(0, 1]"
                raise ValueError(f"`{name}` must be a number in {interval}; got {value!r}.")

    def beta(self, step, num_steps) -> tf.Tensor:
        """``beta`` at ``step`` (counted from 0) of ``num_steps`` (tensors or numbers)."""
        step = tf.cast(step, tf.float32)
        ramp = self.fraction * tf.cast(num_steps, tf.float32)
        return self.start + (1.0 - self.start) * tf.minimum(1.0, step / tf.maximum(ramp, 1.0))

    def log_reference(self, z: tf.Tensor, event_ndims: int) -> tf.Tensor:
        """``log N(z; 0, s^2 I)`` up to its constant, summed over the ``event_ndims`` last axes."""
        axes = list(range(-int(event_ndims), 0))
        return -0.5 * tf.reduce_sum(tf.square(z / self.reference_scale), axes)
