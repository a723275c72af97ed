"""Restarts of a reverse-KL fit: fresh copies of the flow, trained side by side, and the
copy with the highest ELBO kept.

Reverse KL settles where its start and its noise lead it. On a target with several modes or
an awkward shape, one run in a few ends well above the others; the best of ``R`` runs rarely
does. `fit_vi` (``restarts=R``) trains the user's flow and ``R - 1`` copies in one compiled
step, each on its own noise, picks the best by `best_elbo` and copies its weights into the
user's flow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.serialization import bijector_from_config, bijector_to_config
from tfp_realnvp.traversal import keras_layers
from tfp_realnvp.vi.objective import log_weights

__all__ = ["best_elbo", "copy_weights", "fresh_copy"]

tfd = tfp.distributions


def fresh_copy(q: tfd.TransformedDistribution) -> tfd.TransformedDistribution:
    """A copy of ``q`` with the same layers and fresh initial weights (its bijector rebuilt
    from `bijector_to_config`; the base, which must have no trainable variables, shared).

    Raises:
      ValueError: when the bijector cannot be described, or the base has variables.
    """
    if q.distribution.trainable_variables:
        raise ValueError(
            "restarts need a base without trainable variables (a learned base would be shared "
            f"by every restart); {type(q.distribution).__name__} has "
            f"{len(q.distribution.trainable_variables)}. Fit with restarts=1."
        )
    try:
        bijector = bijector_from_config(bijector_to_config(q.bijector))
    except ValueError as error:
        raise ValueError(f"restarts need a flow that can be copied: {error}") from None
    return tfd.TransformedDistribution(q.distribution, bijector)


def best_elbo(
    distributions: Sequence[tfd.TransformedDistribution],
    target_log_prob_fn: Callable,
    num_samples: int = 4096,
    seed: int = 0,
) -> tuple[int, np.ndarray]:
    """The index of the distribution with the highest ELBO estimate, and the estimates, from
    the same ``num_samples`` base draws for each (common noise: their differences are sharper
    than each estimate). Non-finite estimates count as the lowest.

    >>> import tensorflow as tf, tfp_realnvp as trn
    >>> target = lambda z: -0.5 * tf.reduce_sum((z - 3.0) ** 2, -1)
    >>> near = trn.flow_distribution(tfp.bijectors.Shift([2.9, 3.1]), 2)
    >>> far = trn.flow_distribution(tfp.bijectors.Shift([0.0, 0.0]), 2)
    >>> best_elbo([far, near], target)[0]
    1
    """
    q = distributions[0]
    shape = (int(num_samples), *[int(d) for d in q.event_shape])
    eps = tf.random.stateless_normal(shape, [int(seed), 11], dtype=q.dtype)
    elbos = np.array(
        [float(tf.reduce_mean(log_weights(d, target_log_prob_fn, eps)[0])) for d in distributions]
    )
    return int(np.argmax(np.where(np.isfinite(elbos), elbos, -np.inf))), elbos


def copy_weights(destination: tfd.TransformedDistribution, source) -> None:
    """Sets the weights of ``destination``'s flow layers to those of ``source`` (a copy made
    by `fresh_copy`)."""
    layers = keras_layers(destination.bijector), keras_layers(source.bijector)
    if len(layers[0]) != len(layers[1]):
        raise ValueError(
            f"cannot copy the weights of {len(layers[1])} Keras layers into a flow of "
            f"{len(layers[0])}: `source` is not a copy of `destination`"
        )
    for to, come in zip(*layers, strict=True):
        to.set_weights(come.get_weights())
