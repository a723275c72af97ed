"""Test targets for variational inference: Rezende & Mohamed's energies U1-U4, a banana,
Neal's funnel and a Bayesian logistic regression. Each is a `Target` with an unnormalised
``log_prob`` (TensorFlow, batched over leading axes)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import one_of

__all__ = [
    "Target",
    "banana",
    "breast_cancer_logistic_regression",
    "funnel",
    "rezende_energy",
]

tfd = tfp.distributions

# U2-U4 are constant along z1 far from the origin: times this Gaussian in z1 they integrate.
ENVELOPE_SCALE = 2.0


@dataclasses.dataclass(frozen=True)
class Target:
    """An unnormalised density ``p~``: ``log_prob`` maps ``[..., dim]`` to ``[...]``;
    ``log_z`` is ``log`` of its integral where known in closed form (else None)."""

    name: str
    log_prob: Callable
    dim: int
    log_z: float | None = None
    info: dict = dataclasses.field(default_factory=dict)


def _log_gauss(t, scale):
    return -0.5 * tf.square(t / scale)


def _energy_log_prob(kind: str) -> Callable:
    def log_prob(z):
        z1, z2 = z[..., 0], z[..., 1]
        w1 = tf.sin(2.0 * math.pi * z1 / 4.0)
        if kind == "u1":
            ring = _log_gauss(tf.norm(z, axis=-1) - 2.0, 0.4)
            modes = tf.reduce_logsumexp(
                tf.stack([_log_gauss(z1 - 2.0, 0.6), _log_gauss(z1 + 2.0, 0.6)]), 0
            )
            return ring + modes
        if kind == "u2":
            terms = [_log_gauss(z2 - w1, 0.4)]
        elif kind == "u3":
            w2 = 3.0 * tf.exp(_log_gauss(z1 - 1.0, 0.6))
            terms = [_log_gauss(z2 - w1, 0.35), _log_gauss(z2 - w1 + w2, 0.35)]
        else:
            w3 = 3.0 * tf.sigmoid((z1 - 1.0) / 0.3)
            terms = [_log_gauss(z2 - w1, 0.4), _log_gauss(z2 - w1 + w3, 0.35)]
        return tf.reduce_logsumexp(tf.stack(terms), 0) + _log_gauss(z1, ENVELOPE_SCALE)

    return log_prob


def rezende_energy(kind: str) -> Target:
    """``p~(z) = exp(-U(z))`` for Rezende & Mohamed's U1-U4 (2015, Table 1) on ``R^2``.

    U1 (a ring of two half-moons) integrates as it is. U2-U4 do not depend on ``z1`` far from
    the origin and would not: here they are multiplied by ``exp(-z1^2 / (2 * 2^2))``, a
    Gaussian envelope of scale 2 along ``z1`` (down to ``e^-2`` of its peak at the edges of
    the paper's ``[-4, 4]^2`` plots). ``log Z`` has no closed form: integrate on a grid
    (``benchmarks/vi_energies.py``).

    #### References

    [1] Danilo Jimenez Rezende, Shakir Mohamed. Variational Inference with Normalizing Flows.
        ICML 2015. https://arxiv.org/abs/1505.05770
    """
    kind = one_of(str(kind).lower(), ("u1", "u2", "u3", "u4"), "kind")
    info = {"envelope_scale": None if kind == "u1" else ENVELOPE_SCALE}
    return Target(kind.upper(), _energy_log_prob(kind), 2, None, info)


def banana(scale: float = 2.0, curvature: float = 0.25, noise: float = 0.5) -> Target:
    """``z1 ~ N(0, scale^2)``, ``z2 | z1 ~ N(curvature * z1^2, noise^2)``: normalised
    (``log Z = 0``)."""

    def log_prob(z):
        z1, z2 = z[..., 0], z[..., 1]
        scale_, noise_ = tf.constant(scale, z.dtype), tf.constant(noise, z.dtype)
        return tfd.Normal(tf.zeros([], z.dtype), scale_).log_prob(z1) + tfd.Normal(
            curvature * z1**2, noise_
        ).log_prob(z2)

    return Target("banana", log_prob, 2, 0.0)


def funnel(dim: int = 10, scale: float = 3.0) -> Target:
    """Neal's funnel: ``v ~ N(0, scale^2)`` (``v = z[..., 0]``), and ``x_i | v ~ N(0, e^v)``
    for the other ``dim - 1`` coordinates. Normalised (``log Z = 0``).

    #### References

    [1] Radford M. Neal. Slice sampling. Annals of Statistics 31(3), 2003.
    """

    def log_prob(z):
        v, x = z[..., 0], z[..., 1:]
        dtype = z.dtype
        log_v = tfd.Normal(tf.constant(0.0, dtype), scale).log_prob(v)
        return log_v + tf.reduce_sum(
            tfd.Normal(tf.constant(0.0, dtype), tf.exp(v / 2.0)[..., None]).log_prob(x), -1
        )

    return Target("funnel", log_prob, int(dim), 0.0, {"scale_of_v": float(scale)})


def breast_cancer_logistic_regression(prior_scale: float = 1.0, dtype=tf.float32) -> Target:
    """The posterior of a Bayesian logistic regression on scikit-learn's bundled
    breast-cancer data (569 cases, 30 standardised features and an intercept, so ``dim = 31``)
    with independent ``N(0, prior_scale^2)`` priors, as a `tfd.JointDistributionNamed`
    (``info["model"]``, with ``info["features"]`` and ``info["labels"]``) pinned at the labels.
    """
    from sklearn.datasets import load_breast_cancer  # optional: only this target needs it

    data = load_breast_cancer()
    features = (data.data - data.data.mean(0)) / data.data.std(0)
    features = np.concatenate([np.ones((len(features), 1)), features], 1)
    x = tf.constant(features, dtype)
    labels = tf.constant(data.target, dtype)
    dim = x.shape[1]
    model = tfd.JointDistributionNamed(
        {
            "w": tfd.Sample(tfd.Normal(tf.constant(0.0, dtype), prior_scale), dim),
            "y": lambda w: tfd.Independent(
                tfd.Bernoulli(logits=tf.linalg.matvec(x, w), dtype=dtype), 1
            ),
        }
    )

    def log_prob(w):
        # The likelihood for a batch of w: [..., dim] -> logits [..., N].
        logits = tf.einsum("nd,...d->...n", x, w)
        log_lik = tf.reduce_sum(labels * logits - tf.math.softplus(logits), -1)
        return model.model["w"].log_prob(w) + log_lik

    info = {"model": model, "features": features, "labels": data.target}
    return Target("breast_cancer_logistic_regression", log_prob, dim, None, info)
