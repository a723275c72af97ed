"""The reverse-KL objective: log importance weights of a flow's own samples, the (importance
weighted) evidence lower bound, and the surrogate whose gradient sticks the landing."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.flows import flow_distribution

__all__ = ["as_distribution", "check_target", "log_weights", "noise_shape", "objective"]

tfd = tfp.distributions


def as_distribution(flow, event_shape=None) -> tfd.TransformedDistribution:
    """``flow`` as the variational distribution ``q``: a `tfd.TransformedDistribution` as it
    is, a bijector over a standard normal of ``event_shape`` (found from the flow when
    omitted; see `tfp_realnvp.flow_distribution`), or the
    ``distribution`` of a model that has one (`VIModel`, `FlowModel`)."""
    if _is_transformed(flow):
        return flow
    if _is_transformed(getattr(flow, "distribution", None)):
        return flow.distribution
    if isinstance(flow, tfp.bijectors.Bijector):
        return flow_distribution(flow, event_shape)
    raise TypeError(
        "`flow` must be a flow bijector, a tfd.TransformedDistribution or a model with a "
        f"`distribution`; got {type(flow).__name__}."
    )


def check_target(q, target_log_prob_fn: Callable) -> Callable:
    """Refuses, at the door, a target that is not callable or does not return one finite-shaped
    log-density per sample (tried on a batch of 2 draws of ``q``'s base)."""
    if not callable(target_log_prob_fn):
        raise TypeError(f"`target_log_prob_fn` must be callable; got {target_log_prob_fn!r}.")
    z = tf.zeros([2, *[int(d) for d in q.event_shape]], q.dtype)
    out = tf.convert_to_tensor(target_log_prob_fn(z))
    if tuple(out.shape) != (2,):
        raise ValueError(
            "`target_log_prob_fn` must return one log-density per sample: for z of shape "
            f"{tuple(z.shape)} it returned shape {tuple(out.shape)} (sum over the event axes "
            "only)."
        )
    if out.dtype != q.dtype:
        raise TypeError(
            f"`target_log_prob_fn` returned {out.dtype.name} for {q.dtype.name} samples; "
            "compute in the flow's dtype."
        )
    return target_log_prob_fn


def _is_transformed(dist) -> bool:
    # TFP builds a private `_TransformedDistribution` (no subclass of the public name) for
    # bijectors that are not composite tensors, such as ours.
    return isinstance(dist, tfd.Distribution) and isinstance(
        getattr(dist, "bijector", None), tfp.bijectors.Bijector
    )


def log_weights(
    q: tfd.TransformedDistribution,
    target_log_prob_fn: Callable,
    eps: tf.Tensor,
    stick_the_landing: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """``log p~(z) - log q(z)`` at ``z = forward(eps)``, for base noise ``eps``.

    ``log q(z) = log N(eps) - fldj(eps)`` needs no inverse. Returns ``(value, path)``: the
    second has the same value, and, with ``stick_the_landing``, a gradient without the score
    term ``grad_theta log q_theta(z)`` at fixed ``z`` (Roeder et al. 2017): the path
    derivative ``(grad_z log p~(z) - grad_z log q(z)) dz/dtheta``. ``grad_z log q`` costs one
    inverse pass (a root solve for `Planar`) and its backward pass to ``z`` alone, with no
    gradients of ``q``'s parameters through the inverse.
    """
    event_ndims = q.event_shape.rank
    z = q.bijector.forward(eps)
    log_q = q.distribution.log_prob(eps) - q.bijector.forward_log_det_jacobian(eps, event_ndims)
    log_p = target_log_prob_fn(z)
    log_w = log_p - log_q
    if not stick_the_landing:
        return log_w, log_w
    fixed = tf.stop_gradient(z)  # a fresh tensor: the inverse is computed, not cached
    with tf.GradientTape() as tape:
        tape.watch(fixed)
        log_q_fixed = q.log_prob(fixed)
    slope = tf.stop_gradient(tape.gradient(log_q_fixed, fixed))  # grad_z log q at z
    moved = tf.reduce_sum(slope * z, list(range(-event_ndims, 0)))
    return log_w, tf.stop_gradient(log_w) + (log_p - tf.stop_gradient(log_p)) - (
        moved - tf.stop_gradient(moved)
    )


def objective(log_w: tf.Tensor, path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The negative bound and the loss to differentiate, from log weights of shape ``[K, S]``.

    The bound is ``mean_S(logsumexp_K(log_w) - log K)``: the ELBO for ``K = 1``, IWAE's bound
    (Burda et al. 2016) beyond. With a sticking-the-landing ``path``, the loss is DReG's
    (Tucker et al. 2018): ``-sum_K stop(w~^2) path``, normalised weights ``w~``, which is
    STL's ``-path`` for ``K = 1``.
    """
    k = tf.cast(tf.shape(log_w)[0], log_w.dtype)
    bound = tf.reduce_mean(tf.reduce_logsumexp(log_w, 0) - tf.math.log(k))
    if path is log_w:
        return -bound, -bound
    w = tf.stop_gradient(tf.nn.softmax(log_w, axis=0))
    surrogate = tf.reduce_mean(tf.reduce_sum(w * w * path, 0))
    return -bound, -(surrogate - tf.stop_gradient(surrogate)) - tf.stop_gradient(bound)


def noise_shape(q, sample_size: int, importance_samples: int) -> tuple[int, ...]:
    """``[K, S, *event]``: the base noise of one step."""
    return (int(importance_samples), int(sample_size), *[int(d) for d in q.event_shape])
