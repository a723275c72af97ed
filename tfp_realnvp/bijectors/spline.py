"""The monotone rational-quadratic spline of Neural Spline Flows, as a coupling's transformer.

On ``[-bound, bound]`` a spline ``g`` of ``num_bins`` bins maps data to latent; outside it is
the identity, and its derivative is 1 at both ends, so ``g`` is continuously differentiable
everywhere. In bin ``k`` with knots ``(x_k, y_k)``, width ``w_k``, height ``h_k``, slope
``s_k = h_k / w_k``, derivatives ``d_k, d_{k+1}`` at its knots and ``xi = (x - x_k) / w_k``
(Durkan et al., 2019, eq. 4):

- ``g(x) = y_k + h_k (s_k xi^2 + d_k xi (1 - xi)) / (s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi))``;
- ``g'(x) = s_k^2 (d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2) / denominator^2``;
- ``g^-1(y)``: ``xi`` is the root in ``[0, 1]`` of a quadratic, taken in the form
  ``2c / (-b - sqrt(b^2 - 4ac))`` that does not cancel.

Every quantity is computed as a correction to the identity (``g(x) = x + ...``,
``log g'(x) = 0 + ...``), each of whose terms is exactly zero when the widths equal the
heights and every derivative is 1: zero parameters give exactly the identity, in value and
log-det, as a fresh coupling needs.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfp_realnvp._checks import positive_int
from tfp_realnvp.bijectors.transformers import Params, Transformer

__all__ = ["RationalQuadraticSpline"]


class RationalQuadraticSpline(Transformer):
    """Monotone rational-quadratic spline on ``[-bound, bound]``, identity outside.

    Directions as for every transformer: ``inverse`` maps data to latent, ``z = g(x)``, with
    element-wise log-det ``log g'(x)``; ``forward`` maps latent to data, ``x = g^-1(z)``, with
    log-det ``-log g'(x)``. Both are closed forms (see the module docstring).

    The conditioner returns, per transformed unit, ``num_bins`` unnormalised widths,
    ``num_bins`` unnormalised heights and ``num_bins - 1`` unnormalised derivatives at the
    inner knots. Widths and heights are a softmax of theirs, floored at ``min_bin_size`` of
    the interval; derivatives are ``exp(c * tanh(u / c))`` with ``c = log(max_derivative)``,
    positive and bounded. All zeros is the identity.

    Where the conditioner drives bins to the ``min_bin_size`` floor (raw parameters of about
    ±5 or more), slopes fall to ~1e-9 and, as for any map that steep, a round trip loses about
    ``ulp / slope`` (1e-7 in float64); the log-dets stay exact there.

    Args:
      num_bins: number of bins ``K``.
      bound: the spline acts on ``[-bound, bound]``; outside, the identity.
      min_bin_size: smallest width and height of a bin, as a share of ``2 * bound``.
      max_derivative: the derivatives at the knots lie in ``[1/max_derivative,
        max_derivative]``.

    Raises:
      ValueError: for arguments out of range, naming them.

    #### Examples

    >>> import tensorflow as tf
    >>> spline = RationalQuadraticSpline(num_bins=4, bound=2.0)
    >>> zeros = tuple(tf.zeros([1, 1, k]) for k in (4, 4, 3))
    >>> z, log_det = spline.inverse(tf.constant([[0.3]]), zeros)  # zeros: the identity
    >>> float(z[0, 0]), float(log_det[0, 0])
    (0.30000001192092896, 0.0)

    #### References

    [1] Conor Durkan, Artur Bekasov, Iain Murray, George Papamakarios. Neural Spline Flows.
        NeurIPS 2019. https://arxiv.org/abs/1906.04140
    [2] John A. Gregory, Rick Delbourgo. Piecewise rational quadratic interpolation to
        monotonic data. IMA Journal of Numerical Analysis, 1982.
    """

    param_names = ("widths", "heights", "derivatives")

    def __init__(
        self,
        num_bins: int = 8,
        bound: float = 5.0,
        min_bin_size: float = 1e-3,
        max_derivative: float = 1e3,
    ):
        self.num_bins = positive_int(num_bins, "num_bins")
        if self.num_bins < 2:
            raise ValueError(f"`num_bins` must be at least 2; got {num_bins!r}.")
        self.bound = _positive(bound, "bound")
        self.min_bin_size = _positive(min_bin_size, "min_bin_size")
        if self.min_bin_size * self.num_bins >= 1:
            raise ValueError(
                f"`min_bin_size` * `num_bins` must be below 1 (the bins share the interval); got "
                f"{min_bin_size!r} * {num_bins}."
            )
        self.max_derivative = _positive(max_derivative, "max_derivative")
        if self.max_derivative <= 1:
            raise ValueError(f"`max_derivative` must exceed 1; got {max_derivative!r}.")

    @property
    def unit_param_shapes(self) -> tuple[tuple[int, ...], ...]:
        k = self.num_bins
        return ((k,), (k,), (k - 1,))

    def inverse(self, x: tf.Tensor, params: Params) -> tuple[tf.Tensor, tf.Tensor]:
        knots_x, knots_y, derivs = self.knots(params)
        inside, x_in = self._clip(x)
        k = _bin(x_in, knots_x)
        x_k, w, y_k, _, s, d0, d1 = _bin_values(k, knots_x, knots_y, derivs)
        xi = (x_in - x_k) / w
        both = xi * (1 - xi)
        denominator = s + (d1 + d0 - 2 * s) * both
        # g(x) - x, written so that every term vanishes exactly at the identity.
        excess = s * (d0 - 1) + s * (s - d0) * xi - (d1 + d0 - 2 * s) * both
        z = x_in + (y_k - x_k) + (x_in - x_k) * excess / denominator
        slope = s + (d1 - s) * tf.square(xi) + (d0 - s) * tf.square(1 - xi)
        log_det = 2 * tf.math.log(s) + tf.math.log(slope) - 2 * tf.math.log(denominator)
        return tf.where(inside, z, x), tf.where(inside, log_det, tf.zeros_like(log_det))

    def forward(self, z: tf.Tensor, params: Params) -> tuple[tf.Tensor, tf.Tensor]:
        knots_x, knots_y, derivs = self.knots(params)
        inside, z_in = self._clip(z)
        k = _bin(z_in, knots_y)
        x_k, _, y_k, h, s, d0, d1 = _bin_values(k, knots_x, knots_y, derivs)
        dy = z_in - y_k
        kappa = d1 + d0 - 2 * s
        a = h * (s - d0) + dy * kappa
        b = h * d0 - dy * kappa
        c = -s * dy
        root = tf.sqrt(tf.maximum(tf.square(b) - 4 * a * c, 0))
        xi = tf.clip_by_value(2 * c / (-b - root), 0, 1)
        # x - z = (x_k - y_k) + (w * xi - dy), written so that it vanishes at the identity.
        x = z_in + (x_k - y_k) + dy * (2 * h - b - root) / (b + root)
        both = xi * (1 - xi)
        denominator = s + kappa * both
        slope = s + (d1 - s) * tf.square(xi) + (d0 - s) * tf.square(1 - xi)
        log_det = 2 * tf.math.log(denominator) - 2 * tf.math.log(s) - tf.math.log(slope)
        return tf.where(inside, x, z), tf.where(inside, log_det, tf.zeros_like(log_det))

    def _clip(self, v: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Which entries lie in the interval, and the entries clipped into it (so the unused
        branch of the tails stays finite, and so do its gradients)."""
        bound = tf.constant(self.bound, v.dtype)
        return tf.abs(v) <= bound, tf.clip_by_value(v, -bound, bound)

    def knots(self, params: Params) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The spline of each unit for the conditioner's ``params``: knot positions
        ``[..., K + 1]`` on the data axis and on the latent axis, and the derivatives at
        all knots (1 at both ends)."""
        raw_w, raw_h, raw_d = params
        span = 2 * self.bound
        floor = self.min_bin_size

        def positions(raw):
            sizes = span * (floor + (1 - floor * self.num_bins) * tf.nn.softmax(raw, axis=-1))
            inner = -self.bound + tf.cumsum(sizes[..., :-1], axis=-1)
            ends = tf.ones_like(sizes[..., :1]) * self.bound
            return tf.concat([-ends, inner, ends], axis=-1)

        c = math.log(self.max_derivative)
        inner_d = tf.exp(c * tf.tanh(raw_d / c))
        one = tf.ones_like(inner_d[..., :1])
        derivs = tf.concat([one, inner_d, one], axis=-1)
        return positions(raw_w), positions(raw_h), derivs

    def get_config(self) -> dict:
        return {
            "num_bins": self.num_bins,
            "bound": self.bound,
            "min_bin_size": self.min_bin_size,
            "max_derivative": self.max_derivative,
        }


def _bin(v: tf.Tensor, knots: tf.Tensor) -> tf.Tensor:
    """The bin ``k`` in ``[0, K)`` holding each entry of ``v`` (a knot starts its bin)."""
    above = tf.cast(v[..., None] >= knots[..., 1:-1], tf.int32)
    return tf.reduce_sum(above, axis=-1)


def _bin_values(k, knots_x, knots_y, derivs):
    """Each entry's bin: ``x_k, w_k, y_k, h_k, s_k, d_k, d_{k+1}``."""
    num_bins = knots_x.shape[-1] - 1
    pick = tf.one_hot(k, num_bins, dtype=knots_x.dtype)

    def at(values):
        return tf.reduce_sum(pick * values, axis=-1)

    x_k, w = at(knots_x[..., :-1]), at(knots_x[..., 1:] - knots_x[..., :-1])
    y_k, h = at(knots_y[..., :-1]), at(knots_y[..., 1:] - knots_y[..., :-1])
    return x_k, w, y_k, h, h / w, at(derivs[..., :-1]), at(derivs[..., 1:])


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number; got {value!r}.")
    return float(value)
