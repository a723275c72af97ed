"""The two pieces of RealNVP's multi-scale architecture: `Squeeze` and `FactorOut`."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import shape as check_shape
from tfp_realnvp.bijectors.base import FlowBijector, register_bijector, unique_name

__all__ = ["FactorOut", "Squeeze"]

tfb = tfp.bijectors


@register_bijector
class Squeeze(FlowBijector):
    """Space-to-depth by 2x2 blocks, as a volume-preserving bijector on ``[H, W, C]`` events.

    - inverse (data -> latent): ``[H, W, C] -> [H/2, W/2, 4C]`` (`tf.nn.space_to_depth`);
    - forward (latent -> data): ``[H/2, W/2, 4C] -> [H, W, C]`` (`tf.nn.depth_to_space`);
    - both log-det-Jacobians are 0: the map only moves entries.

    Args:
      event_shape: the data's event shape ``[H, W, C]``; ``H`` and ``W`` must be even.
      name: defaults to a unique ``squeeze_<n>``.

    #### Examples

    >>> import tensorflow as tf
    >>> Squeeze([4, 4, 1]).inverse(tf.zeros([2, 4, 4, 1])).shape
    TensorShape([2, 2, 2, 4])

    #### References

    [1] Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
        ICLR 2017. https://arxiv.org/abs/1605.08803
    """

    def __init__(self, event_shape: Sequence[int], validate_args: bool = False, name=None):
        parameters = dict(locals())
        h, w, c = self._event_shape = check_shape(event_shape, "event_shape", rank=3)
        if h % 2 or w % 2:
            raise ValueError(
                f"Squeeze needs an even height and width; got event_shape {(h, w, c)}."
            )
        self._latent_shape = (h // 2, w // 2, 4 * c)
        super().__init__(
            forward_min_event_ndims=3,
            inverse_min_event_ndims=3,
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name or unique_name("squeeze"),
        )

    def get_config(self) -> dict:
        return {"event_shape": list(self.event_shape)}

    def _apply(self, t, fn, shape_in, shape_out, arg):
        t = self._check_input(t, arg, shape_in)
        batch = tf.shape(t)[:-3]
        out = fn(tf.reshape(t, (-1, *shape_in)), 2)
        return tf.reshape(out, tf.concat([batch, shape_out], 0))

    def _inverse(self, x):
        return self._apply(x, tf.nn.space_to_depth, self._event_shape, self._latent_shape, "x")

    def _forward(self, z):
        return self._apply(z, tf.nn.depth_to_space, self._latent_shape, self._event_shape, "z")

    def _inverse_log_det_jacobian(self, x):
        return tf.zeros([], x.dtype)

    def _forward_log_det_jacobian(self, z):
        return tf.zeros([], z.dtype)

    def _forward_event_shape(self, input_shape):
        return tf.TensorShape(self._event_shape)

    def _inverse_event_shape(self, output_shape):
        return tf.TensorShape(self._latent_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.constant(self._event_shape, tf.int32)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.constant(self._latent_shape, tf.int32)


@register_bijector
class FactorOut(FlowBijector):
    """Sends the last channels of an ``[H, W, C]`` event straight to the base distribution and
    the first ``num_kept`` channels through ``bijector`` (RealNVP's "factor out").

    With ``x = [x_kept, x_out]`` split on the channel axis:

    - inverse (data -> latent): ``z = [bijector.inverse(x_kept), x_out]``;
    - forward (latent -> data): ``x = [bijector.forward(z_kept), z_out]``;
    - log-det-Jacobians: those of ``bijector`` on the kept channels.

    Args:
      bijector: the rest of the flow, acting on ``[H, W, num_kept]`` events.
      event_shape: the event shape ``[H, W, C]``.
      num_kept: channels passed on (default ``C // 2``).
      name: defaults to a unique ``factor_out_<n>``.
    """

    def __init__(
        self,
        bijector: tfb.Bijector,
        event_shape: Sequence[int],
        num_kept: int | None = None,
        validate_args: bool = False,
        name=None,
    ):
        parameters = dict(locals())
        h, w, c = self._event_shape = check_shape(event_shape, "event_shape", rank=3)
        num_kept = c // 2 if num_kept is None else int(num_kept)
        if not 0 < num_kept < c:
            raise ValueError(f"`num_kept` must be between 1 and {c - 1}; got {num_kept}.")
        self._num_kept = num_kept
        self._bijector = bijector
        super().__init__(
            forward_min_event_ndims=3,
            validate_args=validate_args,
            parameters=parameters,
            name=name or unique_name("factor_out"),
        )

    @property
    def bijector(self) -> tfb.Bijector:
        return self._bijector

    @property
    def num_kept(self) -> int:
        return self._num_kept

    def children(self) -> tuple[tfb.Bijector]:
        return (self._bijector,)

    def get_config(self) -> dict:
        return {
            "bijector": self._bijector,
            "event_shape": list(self.event_shape),
            "num_kept": self.num_kept,
        }

    # Output and log-det come from one pass (the base class's cache): the inner bijector's
    # cache answers its log-det call for the very tensor it just transformed.
    def _split(self, t, arg):
        t = self._check_input(t, arg, (*self.event_shape[:2], None))
        return t[..., : self._num_kept], t[..., self._num_kept :]

    def _augmented_inverse(self, x, **kwargs):
        kept, out = self._split(x, "x")
        z = tf.concat([self._bijector.inverse(kept, **kwargs), out], -1)
        ildj = self._bijector.inverse_log_det_jacobian(kept, 3, **kwargs)
        return z, {"ildj": ildj, "fldj": -ildj}

    def _augmented_forward(self, z, **kwargs):
        kept, out = self._split(z, "z")
        x = tf.concat([self._bijector.forward(kept, **kwargs), out], -1)
        fldj = self._bijector.forward_log_det_jacobian(kept, 3, **kwargs)
        return x, {"fldj": fldj, "ildj": -fldj}

    def _inverse_log_det_jacobian(self, x, **kwargs):
        return self._bijector.inverse_log_det_jacobian(self._split(x, "x")[0], 3, **kwargs)

    def _forward_log_det_jacobian(self, z, **kwargs):
        return self._bijector.forward_log_det_jacobian(self._split(z, "z")[0], 3, **kwargs)
