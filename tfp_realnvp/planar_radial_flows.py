"""Builders of Rezende & Mohamed's flows: stacks of `Planar` or `Radial` bijectors."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import positive_int
from tfp_realnvp.bijectors.base import unique_name
from tfp_realnvp.bijectors.planar import Planar
from tfp_realnvp.bijectors.radial import Radial

__all__ = ["planar_flow", "radial_flow"]

tfb = tfp.bijectors


def _stack(kind, dim, num_layers, dtype, seed, validate_args, name) -> tfb.Chain:
    num_layers = positive_int(num_layers, "num_layers")
    layers = [
        kind(dim, seed=seed + i, dtype=dtype, validate_args=validate_args)
        for i in range(num_layers)
    ]
    return tfb.Chain(layers, validate_args=validate_args, name=name)


def planar_flow(
    dim: int | Sequence[int],
    num_layers: int = 8,
    *,
    dtype: tf.DType | str = tf.float32,
    seed: int = 0,
    validate_args: bool = False,
    name: str | None = None,
) -> tfb.Chain:
    """``num_layers`` `Planar` bijectors on vectors of ``dim`` units, starting as the identity.

    ``forward`` (noise -> data) is closed form; ``inverse`` solves a scalar equation per layer.

    >>> import tensorflow as tf
    >>> from tfp_realnvp import flow_distribution
    >>> q = flow_distribution(planar_flow(2, num_layers=4))
    >>> q.log_prob(q.sample(3, seed=(0, 1))).shape
    TensorShape([3])

    #### References

    [1] Danilo Jimenez Rezende, Shakir Mohamed. Variational Inference with Normalizing Flows.
        ICML 2015. https://arxiv.org/abs/1505.05770
    """
    return _stack(Planar, dim, num_layers, dtype, seed, validate_args,
                  name or unique_name("planar_flow"))  # fmt: skip


def radial_flow(
    dim: int | Sequence[int],
    num_layers: int = 8,
    *,
    dtype: tf.DType | str = tf.float32,
    seed: int = 0,
    validate_args: bool = False,
    name: str | None = None,
) -> tfb.Chain:
    """``num_layers`` `Radial` bijectors on vectors of ``dim`` units, starting as the identity
    (centres drawn from ``seed``). Both directions are closed form.

    >>> from tfp_realnvp import flow_distribution
    >>> q = flow_distribution(radial_flow(3, num_layers=2))
    >>> q.sample(5, seed=(0, 1)).shape
    TensorShape([5, 3])

    #### References

    [1] Danilo Jimenez Rezende, Shakir Mohamed. Variational Inference with Normalizing Flows.
        ICML 2015. https://arxiv.org/abs/1505.05770
    """
    return _stack(Radial, dim, num_layers, dtype, seed, validate_args,
                  name or unique_name("radial_flow"))  # fmt: skip
