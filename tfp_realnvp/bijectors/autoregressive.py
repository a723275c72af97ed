"""Masked autoregressive flows (MAF) and inverse autoregressive flows (IAF) as one bijector."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfp_realnvp.bijectors.base import register_bijector, unique_name
from tfp_realnvp.bijectors.conditioned import ConditionedBijector
from tfp_realnvp.bijectors.transformers import Transformer

__all__ = ["MaskedAutoregressive"]


@register_bijector
class MaskedAutoregressive(ConditionedBijector):
    """An autoregressive layer: each unit is mapped by a transformer whose parameters depend on
    the units before it (MAF), or on the latent units before it (IAF).

    TFP's direction convention: ``forward`` maps latent ``z`` to data ``x`` (sampling),
    ``inverse`` data to latent (density). The element-wise ``transformer`` ``T`` always maps
    latent to data with ``T.forward`` and data to latent with ``T.inverse``; its parameters
    ``theta_i = T.params(made(u))_i`` come from a `tfp_realnvp.MADE` ``made``, so ``theta_i``
    depends on ``u_1..u_{i-1}`` only. What ``u`` is picks the fast direction.

    MAF (``inverse=False``, Papamakarios et al. 2017), conditioned on the data:

    - inverse (density, one MADE pass): ``z_i = T.inverse(x_i; theta_i(x))``;
    - forward (sampling, ``D`` passes): ``x_i = T.forward(z_i; theta_i(x))``, solved unit by unit;
    - ``inverse_log_det_jacobian(x) = sum_i log|dT.inverse/dx_i|`` at ``theta(x)``;
    - ``forward_log_det_jacobian(z) = sum_i log|dT.forward/dz_i|`` at ``theta(x)``,
      ``x = forward(z)``: ``-inverse_log_det_jacobian(x)``.

    IAF (``inverse=True``, Kingma et al. 2016), conditioned on the latent:

    - forward (sampling, one MADE pass): ``x_i = T.forward(z_i; theta_i(z))``;
    - inverse (density, ``D`` passes): ``z_i = T.inverse(x_i; theta_i(z))``, solved unit by unit;
    - ``forward_log_det_jacobian(z) = sum_i log|dT.forward/dz_i|`` at ``theta(z)``;
    - ``inverse_log_det_jacobian(x) = sum_i log|dT.inverse/dx_i|`` at ``theta(z)``,
      ``z = inverse(x)``: ``-forward_log_det_jacobian(z)``.

    For the affine transformer, ``T.inverse(x; t, s) = x * exp(s) + t`` with log-det ``s``. The
    Jacobian is triangular, so these log-dets are exact. The slow direction starts from zeros
    and runs ``D`` MADE passes inside one `tf.while_loop` (after pass ``k`` the first ``k``
    units are exact), which `tf.function(jit_compile=True)` compiles; the log-det comes from
    the last pass. A fresh MADE outputs zeros, so a fresh layer is the identity.

    Args:
      made: a `tfp_realnvp.MADE` (or a Keras layer with an ``event_size`` and the same
        autoregressive contract) whose ``param_shapes`` are the transformer's
        ``unit_param_shapes``. Called as ``made(u)`` or ``made(u, context=context)``; built
        here, on zeros.
      transformer: a `Transformer` (`Affine`, `Additive`, a spline), this layer's own.
      inverse: ``False`` for MAF (fast density), ``True`` for IAF (fast sampling).
      context_shape: shape of one example's context for a conditional layer, or ``None``.
      dtype: dtype of the data; defaults to the MADE's variable dtype, or float32.
      validate_args: check inputs for NaN and inf as well.
      name: defaults to a unique ``maf_<n>`` / ``iaf_<n>``.

    Raises:
      ValueError / TypeError: naming the argument, the expectation and what came.

    #### Examples

    >>> import numpy as np, tensorflow as tf
    >>> from tfp_realnvp import MADE
    >>> from tfp_realnvp.bijectors import Affine, MaskedAutoregressive
    >>> maf = MaskedAutoregressive(MADE(3, [8]), Affine())
    >>> x = tf.random.stateless_normal([2, 3], seed=[1, 2])
    >>> z = maf.inverse(x)  # one pass
    >>> bool(np.allclose(maf.forward(tf.identity(z)), x, atol=1e-6))  # three passes
    True
    >>> iaf = MaskedAutoregressive(MADE(3, [8]), Affine(), inverse=True)
    >>> iaf.forward_log_det_jacobian(x, event_ndims=1).shape
    TensorShape([2])

    #### References

    [1] George Papamakarios, Theo Pavlakou, Iain Murray. Masked Autoregressive Flow for Density
        Estimation. NeurIPS 2017. https://arxiv.org/abs/1705.07057
    [2] Diederik P. Kingma, Tim Salimans, Rafal Jozefowicz, Xi Chen, Ilya Sutskever, Max
        Welling. Improved Variational Inference with Inverse Autoregressive Flow. NeurIPS 2016.
        https://arxiv.org/abs/1606.04934
    [3] Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder
        for Distribution Estimation. ICML 2015. https://arxiv.org/abs/1502.03509
    """

    _conditioner_arg = "made"

    def __init__(
        self,
        made,
        transformer: Transformer,
        *,
        inverse: bool = False,
        context_shape: Sequence[int] | None = None,
        dtype: tf.DType | str | None = None,
        validate_args: bool = False,
        name: str | None = None,
    ):
        parameters = dict(locals())
        size = getattr(made, "event_size", None)
        if not callable(made) or not isinstance(size, int):
            raise TypeError(
                "`made` must be a tfp_realnvp.MADE (a Keras layer with an integer `event_size`, "
                f"autoregressive in its input); got {type(made).__name__}."
            )
        if not isinstance(inverse, bool):
            raise TypeError(f"`inverse` must be a bool (True for IAF); got {inverse!r}.")
        self._iaf = inverse
        self._set_conditioner(made, transformer, (size,), context_shape, dtype)
        self._finish(validate_args, parameters, name or unique_name("iaf" if inverse else "maf"))

    # Public read-only views.
    @property
    def made(self):
        """The MADE conditioner."""
        return self._conditioner

    @property
    def is_iaf(self) -> bool:
        """True for an inverse autoregressive flow layer (fast ``forward``, slow ``inverse``)."""
        return self._iaf

    def get_config(self) -> dict:
        return {**super().get_config(), "inverse": self.is_iaf}

    # The math: T.inverse maps data to latent, T.forward latent to data; MAF reads theta from
    # the data side, IAF from the latent side, so each has one fast and one looped direction.
    def _augmented_inverse(self, x, context=None):
        x = self._check_input(x, "x", self._event_shape)
        z, ildj = self._solve(x, context, self._transformer.inverse, looped=self._iaf)
        return z, {"ildj": ildj, "fldj": -ildj}

    def _augmented_forward(self, z, context=None):
        z = self._check_input(z, "z", self._event_shape)
        x, fldj = self._solve(z, context, self._transformer.forward, looped=not self._iaf)
        return x, {"fldj": fldj, "ildj": -fldj}

    def _solve(self, u, context, apply, looped: bool):
        """``v = apply(u; theta(w))`` with ``w = u`` (one pass) or ``w = v`` (``looped``: the
        fixed point, reached after ``D`` passes); returns ``v`` and its summed log-det."""
        flat, batch_shape = self._flatten_batch(u)
        context = self._prepare_context(context, batch_shape)
        w = flat
        size = self._event_shape[0]
        if looped and size > 1:

            def body(i, v):
                return i + 1, apply(flat, self._transformer_params(v, context, v.dtype))[0]

            # D - 1 passes here fix units 1..D-1; the last pass, below, gives the log-det.
            _, w = tf.while_loop(
                lambda i, _: i < size - 1,
                body,
                (tf.constant(0), tf.zeros_like(flat)),
                maximum_iterations=size - 1,
            )
        v, ldj = apply(flat, self._transformer_params(w, context, w.dtype))
        ldj = tf.zeros_like(flat[:, 0]) if ldj is None else tf.reduce_sum(ldj, axis=-1)
        return tf.reshape(v, tf.shape(u)), tf.reshape(ldj, batch_shape)

    def _conditioner_hint(self) -> str:
        shapes = [list(s) for s in self._transformer.unit_param_shapes]
        return f"Build it with MADE(..., param_shapes={shapes})."
