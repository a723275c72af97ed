"""Coupling masks: which units a coupling passes through unchanged.

A mask is a boolean NumPy array with the event's shape. ``True`` marks a *masked* unit: it is
copied through unchanged and fed to the conditioner. ``False`` marks a unit that the coupling
transforms. A valid mask has at least one unit of each kind.

>>> half_mask(5)
array([ True,  True, False, False, False])
>>> alternating_mask(4, parity=1)
array([False,  True, False,  True])
>>> checkerboard_mask(2, 2, 1)[..., 0]
array([[ True, False],
       [False,  True]])
>>> channel_mask(1, 1, 4)[0, 0]
array([ True,  True, False, False])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfp_realnvp._checks import integer, positive_int

__all__ = [
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "half_mask",
    "validate_mask",
]


def half_mask(event_size: int, num_masked: int | None = None) -> np.ndarray:
    """The first ``num_masked`` units masked (default ``event_size // 2``), the rest transformed."""
    event_size = positive_int(event_size, "event_size")
    if num_masked is None:
        num_masked = event_size // 2
    num_masked = integer(num_masked, "num_masked")
    if not 0 < num_masked < event_size:
        raise ValueError(
            f"`num_masked` must be between 1 and event_size - 1 = {event_size - 1}, so that "
            f"some units condition and some are transformed; got {num_masked}."
        )
    return np.arange(event_size) < num_masked


def alternating_mask(event_size: int, parity: int = 0) -> np.ndarray:
    """Every other unit masked: even indices for ``parity=0``, odd ones for ``parity=1``."""
    event_size = positive_int(event_size, "event_size")
    return np.arange(event_size) % 2 == parity % 2


def checkerboard_mask(height: int, width: int, channels: int, parity: int = 0) -> np.ndarray:
    """RealNVP's spatial checkerboard for ``[H, W, C]`` events: ``(i + j) % 2 == parity``."""
    height = positive_int(height, "height")
    width = positive_int(width, "width")
    channels = positive_int(channels, "channels")
    board = (np.arange(height)[:, None] + np.arange(width)[None, :]) % 2 == parity % 2
    return np.repeat(board[:, :, None], channels, axis=2)


def channel_mask(height: int, width: int, channels: int, parity: int = 0) -> np.ndarray:
    """RealNVP's channel-wise mask for ``[H, W, C]`` events: the first half of the channels
    (``parity=0``) or the second half (``parity=1``) masked."""
    height = positive_int(height, "height")
    width = positive_int(width, "width")
    channels = positive_int(channels, "channels")
    if channels < 2:
        raise ValueError(f"a channel-wise mask needs at least 2 channels; got {channels}.")
    first = np.arange(channels) < channels // 2
    per_channel = first if parity % 2 == 0 else ~first
    return np.broadcast_to(per_channel, (height, width, channels)).copy()


def validate_mask(mask, event_shape: Sequence[int] | None = None) -> np.ndarray:
    """Returns ``mask`` as a boolean array after checking it is a usable coupling mask.

    Raises:
      ValueError: if the mask is not boolean, has the wrong shape, or masks all or none of the
        units.
    """
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise ValueError(
            f"`mask` must be a boolean array (True = passed through and conditioned on); "
            f"got dtype {arr.dtype}."
        )
    if arr.ndim == 0:
        raise ValueError("`mask` must have the event's shape; got a scalar.")
    if event_shape is not None and tuple(arr.shape) != tuple(event_shape):
        raise ValueError(
            f"`mask` must have the event's shape {tuple(event_shape)}; got shape {arr.shape}."
        )
    if arr.all() or not arr.any():
        kind = "every" if arr.all() else "no"
        raise ValueError(
            f"`mask` masks {kind} unit of the event (shape {arr.shape}); a coupling needs at "
            "least one masked (True) and one transformed (False) unit."
        )
    return arr.copy()
