"""How a coupling splits an event into the units it copies and the units it transforms.

A boolean mask marks the copied units (``True``). Two layouts serve every mask:

- `SplitLayout` (vector events): the conditioner sees only the copied units ``x1`` and returns
  parameters for the transformed units ``x2`` alone. Contiguous masks slice, others gather.
- `MaskedLayout` (images and other events of rank > 1): RealNVP's multiplicative form. The
  conditioner sees ``x * mask`` and returns parameters of the event's shape; the transformer
  runs on the whole event with the parameters of the copied entries zeroed, which every
  transformer of `tfp_realnvp.bijectors.transformers` maps to the identity.

Both work on a flat batch ``[N, *event_shape]``.

>>> import numpy as np
>>> layout = layout_for(np.array([True, True, False]))
>>> layout.conditioner_input_shape, layout.param_shape
((2,), (1,))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["Layout", "MaskedLayout", "SplitLayout", "layout_for"]


class Layout:
    """The interface a coupling uses to take an event apart and put it back together.

    Attributes:
      mask: boolean array of the event's shape; ``True`` marks the units copied unchanged.
      event_shape: the event's shape.
      conditioner_input_shape: shape of one example of ``x1``, the conditioner's input.
      param_shape: shape of one example of each parameter the conditioner returns (a
        transformer with several values per unit, such as a spline's bin widths, adds
        trailing axes).
    """

    mask: np.ndarray
    event_shape: tuple[int, ...]
    conditioner_input_shape: tuple[int, ...]
    param_shape: tuple[int, ...]

    def split(self, flat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``flat [N, *event]`` -> ``(x1, x2)``: the conditioner's input and the units to map."""
        raise NotImplementedError

    def merge(self, x1: tf.Tensor, y2: tf.Tensor) -> tf.Tensor:
        """The copied units ``x1`` and the mapped units ``y2`` -> ``[N, *event]``."""
        raise NotImplementedError

    def keep(self, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
        """The transformer's parameters with those of copied entries set to the identity."""
        return params

    def sum(self, elementwise: tf.Tensor) -> tf.Tensor:
        """Element-wise log-dets ``[N, *param_shape]`` -> one per example ``[N]``."""
        return tf.reduce_sum(elementwise, axis=list(range(1, len(self.param_shape) + 1)))


class SplitLayout(Layout):
    """Vector events: ``x1`` and ``x2`` are the masked and unmasked units, by slicing when the
    masked units are a prefix or a suffix of the event (cheaper), by gathering otherwise.

    Args:
      mask: boolean vector; ``True`` marks the units copied unchanged.
    """

    def __init__(self, mask: np.ndarray):
        self.mask = np.asarray(mask, bool)
        self.event_shape = tuple(self.mask.shape)
        masked = np.flatnonzero(self.mask)
        transformed = np.flatnonzero(~self.mask)
        self.conditioner_input_shape = (len(masked),)
        self.param_shape = (len(transformed),)
        k = len(masked)
        if self.mask[:k].all():
            self._split = lambda flat: (flat[:, :k], flat[:, k:])
            self._merge = lambda x1, y2: tf.concat([x1, y2], axis=1)
        elif self.mask[len(self.mask) - k :].all():
            j = len(self.mask) - k
            self._split = lambda flat: (flat[:, j:], flat[:, :j])
            self._merge = lambda x1, y2: tf.concat([y2, x1], axis=1)
        else:
            order = np.argsort(np.concatenate([masked, transformed]))
            self._split = lambda flat: (
                tf.gather(flat, masked, axis=1),
                tf.gather(flat, transformed, axis=1),
            )
            self._merge = lambda x1, y2: tf.gather(tf.concat([x1, y2], axis=1), order, axis=1)

    def split(self, flat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self._split(flat)

    def merge(self, x1: tf.Tensor, y2: tf.Tensor) -> tf.Tensor:
        return self._merge(x1, y2)


class MaskedLayout(Layout):
    """Events of any rank, RealNVP's multiplicative form: ``x1 = x * mask``, ``x2 = x``, and the
    parameters of the copied entries are zeroed, so the transformer leaves them unchanged.

    Args:
      mask: boolean array of the event's shape; ``True`` marks the units copied unchanged.
    """

    def __init__(self, mask: np.ndarray):
        self.mask = np.asarray(mask, bool)
        self.event_shape = tuple(self.mask.shape)
        self.conditioner_input_shape = self.event_shape
        self.param_shape = self.event_shape

    def split(self, flat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return flat * tf.constant(self.mask, flat.dtype), flat

    def merge(self, x1: tf.Tensor, y2: tf.Tensor) -> tf.Tensor:
        return y2  # the zeroed parameters left the copied entries of y2 unchanged

    def keep(self, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, ...]:
        keep = tf.constant(~self.mask, params[0].dtype)
        rank = 1 + len(self.event_shape)
        return tuple(p * _broadcastable(keep, p.shape.rank - rank) for p in params)


def _broadcastable(keep: tf.Tensor, extra: int) -> tf.Tensor:
    """``keep`` with ``extra`` trailing axes, for parameters with several values per unit."""
    return keep if extra == 0 else tf.reshape(keep, (*keep.shape, *(1,) * extra))


def layout_for(mask: np.ndarray | Sequence) -> Layout:
    """`SplitLayout` for a vector mask, `MaskedLayout` for a mask of higher rank."""
    mask = np.asarray(mask, bool)
    return SplitLayout(mask) if mask.ndim == 1 else MaskedLayout(mask)
