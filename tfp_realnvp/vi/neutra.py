"""NeuTra: HMC or NUTS in the latent space of a fitted flow, under XLA."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import one_of, positive_int
from tfp_realnvp._functions import own_function
from tfp_realnvp.vi.objective import as_distribution

__all__ = ["neutra_kernel", "sample_neutra"]

mcmc = tfp.mcmc


def neutra_kernel(
    flow,
    target_log_prob_fn: Callable,
    *,
    kind: str = "nuts",
    step_size: float = 0.5,
    num_leapfrog_steps: int = 4,
    max_tree_depth: int = 10,
    num_adaptation_steps: int = 100,
    target_accept_prob: float = 0.75,
) -> mcmc.TransitionKernel:
    """An HMC or NUTS kernel that moves in the flow's latent space: NeuTra.

    The sampler runs on the pulled-back density ``p~(f(u)) |det f'(u)|`` of the latent ``u``
    (`tfp.mcmc.TransformedTransitionKernel` with the flow's ``forward`` ``f`` as the map from
    latent to target space); where ``q`` fits ``p`` that is close to a standard normal, which
    HMC samples easily. States are in the target's space. The step size adapts by dual
    averaging over the first ``num_adaptation_steps`` steps (keep them out of the results).

    Args:
      flow: the fitted flow bijector (or its distribution, or a `VIModel`).
      target_log_prob_fn: ``log p~(z)``.
      kind: ``"nuts"`` or ``"hmc"``.
      step_size: the initial leapfrog step size.
      num_leapfrog_steps: HMC's leapfrog steps per transition (NUTS chooses its own).
      max_tree_depth: NUTS's bound: at most ``2^max_tree_depth - 1`` leapfrog steps.
      num_adaptation_steps: steps of step-size adaptation.
      target_accept_prob: the acceptance rate the adaptation aims at.

    #### References

    [1] Matthew Hoffman, Pavel Sountsov, Joshua V. Dillon, Ian Langmore, Dustin Tran,
        Srinivas Vasudevan. NeuTra-lizing Bad Geometry in Hamiltonian Monte Carlo Using Neural
        Transport. https://arxiv.org/abs/1903.03704
    """
    kind = one_of(kind, ("nuts", "hmc"), "kind")
    # The kernel needs the transport alone: a bare bijector needs no event shape here.
    bijector = flow if isinstance(flow, tfp.bijectors.Bijector) else as_distribution(flow).bijector
    if kind == "nuts":
        inner = mcmc.NoUTurnSampler(
            target_log_prob_fn,
            step_size=step_size,
            max_tree_depth=positive_int(max_tree_depth, "max_tree_depth"),
        )
    else:
        inner = mcmc.HamiltonianMonteCarlo(
            target_log_prob_fn,
            step_size=step_size,
            num_leapfrog_steps=positive_int(num_leapfrog_steps, "num_leapfrog_steps"),
        )
    transformed = mcmc.TransformedTransitionKernel(inner, bijector)
    return mcmc.DualAveragingStepSizeAdaptation(
        transformed,
        num_adaptation_steps=positive_int(num_adaptation_steps, "num_adaptation_steps"),
        target_accept_prob=target_accept_prob,
    )


def sample_neutra(
    flow,
    target_log_prob_fn: Callable,
    num_results: int = 500,
    *,
    num_chains: int = 4,
    num_burnin_steps: int = 200,
    kind: str = "nuts",
    seed: int = 0,
    jit_compile: bool = True,
    event_shape=None,
    **kernel_kwargs,
) -> tuple[tf.Tensor, dict]:
    """Runs `neutra_kernel` (adapting over the burn-in) from ``num_chains`` draws of ``q``,
    compiled with XLA.

    Args:
      flow: the fitted flow bijector (or its distribution, or a `VIModel`).
      target_log_prob_fn: ``log p~(z)``.
      num_results: steps kept per chain (500).
      num_chains: chains run side by side, each started from a draw of ``q`` (4).
      num_burnin_steps: steps run first and dropped (200); the step size adapts over their
        first 80%.
      kind: ``"nuts"`` (the default) or ``"hmc"``.
      seed: an int; the same seed gives the same chains (0).
      jit_compile: compile the chains with XLA (True).
      event_shape: needed only for a flow it cannot be read from (a bare TFP bijector).
      **kernel_kwargs: passed to `neutra_kernel` (``step_size``, ``num_leapfrog_steps``, ...).

    Returns:
      ``(samples, trace)``: samples ``[num_results, num_chains, *event]`` in the target's
      space, and ``trace`` with ``"step_size"`` per step (one for every chain),
      ``"accept_ratio"`` per step and chain, and
      ``"gradients"``, the target-gradient evaluations (leapfrog steps) per chain over the
      kept results (burn-in excluded).

    >>> import numpy as np, tensorflow as tf, tensorflow_probability as tfp
    >>> flow = tfp.bijectors.Shift(tf.constant([3.0, -1.0]))  # an exact transport
    >>> target = lambda z: -0.5 * tf.reduce_sum((z - [3.0, -1.0]) ** 2, -1)
    >>> s, trace = sample_neutra(flow, target, 20, num_burnin_steps=10, kind="hmc",
    ...                          num_chains=2, seed=1, event_shape=[2], jit_compile=False)
    >>> s.shape
    TensorShape([20, 2, 2])
    """
    q = as_distribution(flow, event_shape)
    num_results = positive_int(num_results, "num_results")
    num_chains = positive_int(num_chains, "num_chains")
    num_burnin_steps = positive_int(num_burnin_steps, "num_burnin_steps")
    kernel = neutra_kernel(
        q,
        target_log_prob_fn,
        kind=kind,
        num_adaptation_steps=max(1, int(0.8 * num_burnin_steps)),
        **kernel_kwargs,
    )
    event = [int(d) for d in q.event_shape]
    u = tf.random.stateless_normal([num_chains, *event], [int(seed), 3], dtype=q.dtype)
    init = q.bijector.forward(u)

    def trace_fn(_, results):
        inner = results.inner_results.inner_results
        leapfrogs = getattr(inner, "leapfrogs_taken", None)
        if leapfrogs is None:
            leapfrogs = tf.fill(
                tf.shape(inner.is_accepted), kernel_kwargs.get("num_leapfrog_steps", 4)
            )
        return {
            "step_size": results.new_step_size,
            "accept_ratio": tf.exp(tf.minimum(0.0, tf.cast(inner.log_accept_ratio, tf.float32))),
            "leapfrogs": tf.cast(leapfrogs, tf.int32),
        }

    def chain(init):
        return mcmc.sample_chain(
            num_results,
            init,
            kernel=kernel,
            num_burnin_steps=num_burnin_steps,
            trace_fn=trace_fn,
            seed=tf.constant([int(seed), 5]),
            return_final_kernel_results=False,
        )

    samples, trace = own_function(chain, jit_compile=jit_compile)(init)
    trace = dict(trace)
    trace["gradients"] = tf.reduce_sum(trace.pop("leapfrogs"), 0)  # over the kept results
    return samples, trace
