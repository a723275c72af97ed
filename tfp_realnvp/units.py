"""Likelihood units."""

from __future__ import annotations

import math

__all__ = ["bits_per_dim"]


def bits_per_dim(nll_nats: float, num_dims: int, scale: float = 1.0) -> float:
    """Negative log-likelihood per dimension in bits, in the units of the original data.

    If the model saw ``x' = scale * x`` rather than the data ``x`` (e.g. ``scale = 1/256`` for
    8-bit images mapped to ``[0, 1]``), then ``p(x) = p(x') * scale**D``, so

        bits/dim = (nll' - D * log(scale)) / (D * log 2)

    where ``nll'`` is the NLL in nats per example that the model reports and ``D`` the number
    of dimensions per example. With ``scale = 1`` it is just ``nll / (D log 2)``. (Flows built
    with `Dequantize` already count the rescaling in their likelihood: use ``scale = 1``.)

    >>> round(bits_per_dim(100.0, 64), 4)
    2.2542
    >>> round(bits_per_dim(-60.0, 64, scale=1 / 17), 4)  # a [0, 1] model of 17 grey levels
    2.7349
    """
    if num_dims < 1:
        raise ValueError(f"`num_dims` must be positive; got {num_dims}.")
    if scale <= 0:
        raise ValueError(f"`scale` must be positive; got {scale}.")
    return (nll_nats - num_dims * math.log(scale)) / (num_dims * math.log(2.0))
