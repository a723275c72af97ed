"""Rezende & Mohamed's radial flow, with an exact inverse: the radius solves a quadratic."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors.base import register_bijector
from tfp_realnvp.bijectors.residual import ResidualFlow

__all__ = ["Radial"]


@register_bijector
class Radial(ResidualFlow):
    """A radial flow on vectors ``[D]`` (Rezende & Mohamed 2015, section 4.1): a contraction
    or expansion around a centre ``z0``.

    With ``alpha = softplus(alpha_raw) > 0`` and ``beta = -alpha + softplus(beta_raw) > -alpha``
    (which keeps it invertible), ``r = |z - z0|`` and ``h = 1 / (alpha + r)``:

    - forward (latent -> data, Rezende's ``f``): ``x = z + beta h (z - z0)``;
      ``forward_log_det_jacobian = (D - 1) log(1 + beta h) + log(1 + beta alpha h^2)``
      (the last term is ``log(1 + beta h + beta h'(r) r)``);
    - inverse (data -> latent): ``rho = |x - z0| = r (1 + beta h)`` is increasing in ``r``, and
      ``r`` is the positive root of the quadratic ``r^2 + (alpha + beta - rho) r - alpha rho``
      (closed form, evaluated without cancellation); the direction is that of ``x - z0``:
      ``z = z0 + (x - z0) / (1 + beta h)``;
      ``inverse_log_det_jacobian = -forward_log_det_jacobian(z)``.

    It starts as the identity (``beta = 0``), around a centre drawn from ``seed``.

    Args:
      event_shape: ``[D]`` (or ``D``).
      seed: seed of the initial centre ``z0``.
      dtype: dtype of the weights and data.
      weights: an existing `ResidualWeights` (``z0``, ``alpha_raw``, ``beta_raw``) to share;
        fresh by default.
      validate_args: check inputs for NaN and inf as well.
      name: defaults to a unique ``radial_<n>``.

    #### Examples

    >>> import numpy as np, tensorflow as tf
    >>> from tfp_realnvp import testing
    >>> radial = Radial([3], dtype=tf.float64)
    >>> testing.perturb_variables(radial, seed=0, stddev=1.0)
    >>> z = tf.constant([[0.5, -1.0, 0.2]], tf.float64)
    >>> bool(np.allclose(radial.inverse(tf.identity(radial.forward(z))), z))
    True

    #### References

    [1] Danilo Jimenez Rezende, Shakir Mohamed. Variational Inference with Normalizing Flows.
        ICML 2015. https://arxiv.org/abs/1505.05770
    """

    _kind = "radial"

    @staticmethod
    def _initial(dim, rng):
        return {"z0": rng.normal(size=dim), "alpha_raw": np.zeros(()), "beta_raw": np.zeros(())}

    def _terms(self, dtype):
        p = self._params(dtype)
        alpha = tf.math.softplus(p["alpha_raw"])
        return p["z0"], alpha, -alpha + tf.math.softplus(p["beta_raw"])

    def _log_det(self, alpha, beta, r):
        h = 1.0 / (alpha + r)
        dim = self._event_shape[0]
        return (dim - 1) * tf.math.log1p(beta * h) + tf.math.log1p(beta * alpha * h * h)

    def _augmented_forward(self, z):
        z = self._check_input(z, "z", self._event_shape)
        z0, alpha, beta = self._terms(z.dtype)
        y = z - z0
        r = tf.norm(y, axis=-1)
        x = z + (beta / (alpha + r))[..., None] * y
        fldj = self._log_det(alpha, beta, r)
        return x, {"fldj": fldj, "ildj": -fldj}

    def _augmented_inverse(self, x):
        x = self._check_input(x, "x", self._event_shape)
        z0, alpha, beta = self._terms(x.dtype)
        v = x - z0
        rho = tf.norm(v, axis=-1)
        q = alpha + beta - rho
        s = tf.sqrt(q * q + 4.0 * alpha * rho)
        # The positive root, each form where it does not cancel.
        r = tf.where(
            q > 0, 2.0 * alpha * rho / tf.where(q > 0, s + q, tf.ones_like(q)), 0.5 * (s - q)
        )
        z = z0 + v * ((alpha + r) / (alpha + r + beta))[..., None]
        ildj = -self._log_det(alpha, beta, r)
        return z, {"ildj": ildj, "fldj": -ildj}
