"""Preprocessing as bijectors, so its log-det is part of the likelihood: scaling dequantised
grey levels to the unit interval, and RealNVP's logit transform."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfp_realnvp._checks import integer
from tfp_realnvp.bijectors.base import FlowBijector, register_bijector, unique_name

__all__ = ["Dequantize", "Logit"]


class _Elementwise(FlowBijector):
    """An elementwise map applied over an event of any rank, in any float dtype."""

    def __init__(self, parameters, validate_args, name):
        super().__init__(
            forward_min_event_ndims=0,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _forward(self, y):
        return self._map(self._check_input(y, "y", ()), inverse=False)

    def _inverse(self, x):
        return self._map(self._check_input(x, "x", ()), inverse=True)


@register_bijector
class Dequantize(_Elementwise):
    """Maps dequantised grey levels ``x`` in ``[0, num_levels)`` to ``[0, 1)``.

    Integer data ``k`` in ``{0, ..., K-1}`` become continuous as ``x = k + u``,
    ``u ~ Uniform[0, 1)`` (``FlowModel(dequantize=True)`` draws fresh ``u`` for every batch);
    a density on such ``x`` bounds the discrete likelihood: ``log P(k) >= E_u log p(k + u)``
    (Theis et al., 2016). This bijector then rescales by ``K``:

    - inverse (data -> latent): ``y = x / K``; ``inverse_log_det_jacobian = -log K`` per unit;
    - forward (latent -> data): ``x = K y``; ``forward_log_det_jacobian = log K`` per unit.

    Since the log-det is counted, a flow's NLL stays in grey-level units, where bits per
    dimension are comparable across papers.

    Args:
      num_levels: ``K``, the number of grey levels (17 for scikit-learn's digits, 256 for
        8-bit images).

    #### Examples

    >>> round(float(Dequantize(17).inverse_log_det_jacobian(3.0, event_ndims=0)), 5)  # -log 17
    -2.83321

    #### References

    [1] Lucas Theis, Aaron van den Oord, Matthias Bethge. A note on the evaluation of
        generative models. ICLR 2016. https://arxiv.org/abs/1511.01844
    """

    def __init__(self, num_levels: int, validate_args: bool = False, name: str | None = None):
        parameters = dict(locals())
        self._num_levels = integer(num_levels, "num_levels", minimum=2)
        super().__init__(parameters, validate_args, name or unique_name("dequantize"))

    @property
    def num_levels(self) -> int:
        return self._num_levels

    def get_config(self) -> dict:
        return {"num_levels": self.num_levels}

    def _map(self, t, inverse: bool):
        return t / self._num_levels if inverse else t * self._num_levels

    def _forward_log_det_jacobian(self, y):
        return tf.fill(tf.shape(y), tf.cast(np.log(self._num_levels), y.dtype))

    def _inverse_log_det_jacobian(self, x):
        return tf.fill(tf.shape(x), tf.cast(-np.log(self._num_levels), x.dtype))


@register_bijector
class Logit(_Elementwise):
    """RealNVP's logit transform of data in ``[0, 1]``: ``logit(a + (1 - 2a) x)``.

    With ``p = a + (1 - 2a) x``:

    - inverse (data -> latent): ``y = log p - log(1 - p)``;
      ``inverse_log_det_jacobian = log(1 - 2a) - log p - log(1 - p)`` per unit;
    - forward (latent -> data): ``x = (sigmoid(y) - a) / (1 - 2a)``;
      ``forward_log_det_jacobian = log sigmoid(y) + log sigmoid(-y) - log(1 - 2a)`` per unit.

    ``a`` keeps the logit away from the infinities at 0 and 1; samples pushed through
    ``forward`` land in ``(-a / (1 - 2a), 1 + a / (1 - 2a))``.

    Args:
      alpha: ``a`` in ``[0, 0.5)``; 0.05 in the RealNVP paper.

    #### Examples

    >>> import numpy as np
    >>> logit = Logit(0.05)
    >>> round(float(logit.inverse(0.5)), 6), round(float(logit.forward(0.0)), 6)
    (0.0, 0.5)

    #### References

    [1] Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
        ICLR 2017. https://arxiv.org/abs/1605.08803
    """

    def __init__(self, alpha: float = 0.05, validate_args: bool = False, name: str | None = None):
        parameters = dict(locals())
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha < 0.5:
            raise ValueError(f"`alpha` must be in [0, 0.5); got {alpha!r}.")
        self._alpha = float(alpha)
        super().__init__(parameters, validate_args, name or unique_name("logit"))

    @property
    def alpha(self) -> float:
        return self._alpha

    def _p(self, x):
        return self._alpha + (1.0 - 2.0 * self._alpha) * x

    @property
    def inverse_domain(self) -> tuple[float, float]:
        return (0.0, 1.0)

    def get_config(self) -> dict:
        return {"alpha": self.alpha}

    def _map(self, t, inverse: bool):
        if inverse:
            p = self._p(t)
            return tf.math.log(p) - tf.math.log1p(-p)
        return (tf.sigmoid(t) - self._alpha) / (1.0 - 2.0 * self._alpha)

    def _inverse_log_det_jacobian(self, x):
        p = self._p(x)
        return np.log1p(-2.0 * self._alpha) - tf.math.log(p) - tf.math.log1p(-p)

    def _forward_log_det_jacobian(self, y):
        return tf.math.log_sigmoid(y) + tf.math.log_sigmoid(-y) - np.log1p(-2.0 * self._alpha)
