"""A fitted Gaussian's affine map, fixed: the whitening a flow on correlated data sits behind."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfp_realnvp.bijectors.base import FlowBijector, register_bijector, unique_name

__all__ = ["Whitening"]


@register_bijector
class Whitening(FlowBijector):
    """``x = mean + L z`` with a fixed lower-triangular ``L`` (``L L^T`` the covariance).

    Put behind a flow (``tfb.Chain([Whitening.fit(x), flow])``), the flow models the data's
    whitened residuals: on small tabular sets that beats a flow on merely standardised columns,
    and the model is at worst the fitted Gaussian (the flow starts as the identity).

    - forward (latent -> data): ``x = mean + L z``; ``fldj = sum(log diag L)``;
    - inverse (data -> latent): ``z = L^{-1} (x - mean)``; ``ildj = -sum(log diag L)``.

    ``L^{-1}`` is computed once, in float64, at construction: both directions are matrix
    products, which XLA and TensorFlow Lite's built-in ops run (``tfb.ScaleMatvecTriL`` solves a
    triangular system on the data instead, which TensorFlow Lite lacks). The map is affine, so
    ``is_constant_jacobian`` is true and TFP's mean and covariance of a transformed distribution
    are right through it. Nothing here is trained.

    Args:
      mean: ``[D]``, the data's mean.
      scale_tril: ``[D, D]`` lower triangular with a positive diagonal (a Cholesky factor).
      dtype: the dtype it computes in.

    Raises:
      ValueError: naming the argument, for shapes that do not fit, an ``L`` that is not lower
        triangular, or a diagonal that is not positive and finite.

    #### Examples

    >>> import numpy as np
    >>> x = np.random.default_rng(0).multivariate_normal([1.0, -2.0], [[4.0, 1.9], [1.9, 1.0]], 500)
    >>> w = Whitening.fit(x)
    >>> z = w.inverse(x.astype("float32")).numpy()
    >>> bool(np.allclose(np.cov(z.T), np.eye(2), atol=0.01))
    True

    #### References

    [1] George Papamakarios, Theo Pavlakou, Iain Murray. Masked Autoregressive Flow for Density
        Estimation. NeurIPS 2017 (data whitened before the flow). https://arxiv.org/abs/1705.07057
    """

    def __init__(
        self,
        mean: Sequence[float] | np.ndarray,
        scale_tril: Sequence[Sequence[float]] | np.ndarray,
        dtype: tf.DType | str = tf.float32,
        validate_args: bool = False,
        name: str | None = None,
    ):
        parameters = dict(locals())
        mean = np.asarray(mean, np.float64)
        tril = np.asarray(scale_tril, np.float64)
        if mean.ndim != 1 or len(mean) < 1:
            raise ValueError(f"`mean` must be a vector [D]; got shape {mean.shape}.")
        if tril.shape != (len(mean), len(mean)):
            raise ValueError(
                f"`scale_tril` must be [D, D] = {[len(mean)] * 2} for a mean of {len(mean)}; "
                f"got shape {list(tril.shape)}."
            )
        if not np.array_equal(tril, np.tril(tril)):
            raise ValueError("`scale_tril` must be lower triangular (a Cholesky factor).")
        diagonal = np.diag(tril)
        if not (np.all(np.isfinite(tril)) and np.all(diagonal > 0)):
            raise ValueError(
                "`scale_tril` must be finite with a positive diagonal; the smallest diagonal "
                f"entry is {diagonal.min():g}."
            )
        self._mean, self._tril = mean, tril
        self._inverse_tril = np.linalg.inv(tril)
        self._log_det = float(np.sum(np.log(diagonal)))
        self._set_event_shape_and_dtype([len(mean)], dtype)
        self._init_for_event(
            parameters, validate_args, name or unique_name("whitening"), is_constant_jacobian=True
        )

    @classmethod
    def fit(cls, x: np.ndarray, jitter: float = 1e-9, **kwargs) -> Whitening:
        """The map of the Gaussian fitted to the rows of ``x`` (``[N, D]``): its mean and the
        Cholesky factor of its covariance, plus ``jitter`` times the mean variance on the
        diagonal (a constant column would have none)."""
        x = np.asarray(x, np.float64)
        covariance = np.atleast_2d(np.cov(x, rowvar=False))
        covariance += (
            jitter * max(np.trace(covariance) / len(covariance), 1e-12) * np.eye(len(covariance))
        )
        return cls(x.mean(axis=0), np.linalg.cholesky(covariance), **kwargs)

    @property
    def mean(self) -> np.ndarray:
        return self._mean

    @property
    def scale_tril(self) -> np.ndarray:
        return self._tril

    def get_config(self) -> dict:
        return {
            "mean": self._mean.tolist(),
            "scale_tril": self._tril.tolist(),
            "dtype": self.flow_dtype.name,
        }

    def _constant(self, value: np.ndarray) -> tf.Tensor:
        return tf.constant(value, self.flow_dtype)

    def _forward(self, z):
        z = self._check_input(z, "z", self.event_shape)
        return tf.linalg.matvec(self._constant(self._tril), z) + self._constant(self._mean)

    def _inverse(self, x):
        x = self._check_input(x, "x", self.event_shape)
        centred = x - self._constant(self._mean)
        return tf.linalg.matvec(self._constant(self._inverse_tril), centred)

    def _forward_log_det_jacobian(self, z):
        return tf.constant(self._log_det, self.flow_dtype)

    def _inverse_log_det_jacobian(self, x):
        return tf.constant(-self._log_det, self.flow_dtype)
