"""Data-dependent initialisation, made explicit: `initialize` sets the parameters of the
bijectors that start from data (`ActNorm`) from one batch, and says which it set.

Nothing else changes a bijector's parameters on call: ``forward``, ``inverse`` and the log-dets
are pure functions of their inputs and the variables, whichever is called first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._keras import keras
from tfp_realnvp.bijectors.data_init import initializing
from tfp_realnvp.traversal import conditional_kwargs, find, walk

__all__ = ["Initializable", "first_batch", "initialize", "uninitialized"]

tfb = tfp.bijectors


class Initializable(Protocol):
    """A model that initialises its own flow from a training batch (`FlowModel`)."""

    def initialize(self, x, context=None) -> list[str]: ...


def uninitialized(flow: tfb.Bijector) -> list[tfb.Bijector]:
    """The bijectors of ``flow`` that wait for data-dependent initialisation (an
    ``is_initialized`` that is ``False``), in `walk` order."""
    return [b for b in walk(flow) if getattr(b, "is_initialized", True) is False]


def initialize(
    flow: tfb.Bijector | Initializable,
    x: tf.Tensor | np.ndarray,
    context: tf.Tensor | np.ndarray | None = None,
) -> list[str]:
    """Initialises every bijector of ``flow`` that starts from data (`ActNorm`) and is not
    initialised yet, from the batch ``x``; returns their names in data -> latent order.

    ``x`` goes once through ``flow.inverse`` (data -> latent), eagerly. Each such bijector
    on the way sets its parameters from the activations that reach it (an `ActNorm` so that
    they leave it with zero mean and unit variance per channel) and applies them before
    passing the batch on, so the next one sees normalised input. Bijectors already
    initialised (trained, or loaded from a ``.keras`` file or checkpoint) are left alone, and
    a flow with nothing to initialise is not evaluated at all.

    Args:
      flow: the flow (``forward`` maps noise to data), or a `FlowModel`, whose
        ``initialize`` treats ``x`` as a training batch (its dtype, and fresh dequantisation
        noise with ``dequantize=True``).
      x: a batch of data, ``[N, *event_shape]``; NumPy input takes the flow's dtype.
      context: the batch's context, for a conditional flow.

    Returns:
      The names of the bijectors this call initialised (empty if none needed it).

    Raises:
      TypeError: for a ``flow`` that is neither a bijector nor a `FlowModel`.
      RuntimeError: inside a `tf.function`: initialise eagerly, before training.
      ValueError: if a bijector that needs initialising is not on the data -> latent path
        (one inside a `tfb.Invert` meets the batch in its ``forward`` direction).

    A call that raises leaves every bijector as it found it.

    #### Examples

    >>> import numpy as np, tensorflow as tf
    >>> import tfp_realnvp as trn
    >>> flow = trn.multiscale_real_nvp([4, 4, 1], 2, 1, 8, 1, glow=True, final_couplings=1)
    >>> x = np.random.default_rng(0).uniform(size=(16, 4, 4, 1))
    >>> names = trn.initialize(flow, x)
    >>> len(names), trn.initialize(flow, x)  # two ActNorms, each initialised once
    (2, [])
    """
    if not isinstance(flow, tfb.Bijector):
        if not callable(getattr(flow, "initialize", None)):
            raise TypeError(
                f"`flow` must be a TFP bijector or a FlowModel; got {type(flow).__name__}."
            )
        return flow.initialize(x, context)
    if not tf.executing_eagerly():
        raise RuntimeError(
            "`initialize` runs eagerly; call it before training or compiling, not inside a "
            "tf.function."
        )
    pending = uninitialized(flow)
    if not pending:
        return []
    saved = [(v, tf.identity(v)) for b in pending for v in b.variables]
    try:
        return _push_through(flow, x, context)
    except Exception:
        for v, value in saved:  # a failed call changes nothing
            v.assign(value)
        raise


def _push_through(flow, x, context) -> list[str]:
    dtype = find(flow, "flow_dtype")
    kwargs = {} if context is None else conditional_kwargs(flow, _as_tensor(context, dtype))
    with initializing() as record:
        flow.inverse(tf.identity(_as_tensor(x, dtype)), **kwargs)
    missed = [b.name for b in uninitialized(flow)]
    if missed:
        raise ValueError(
            f"`initialize` pushed the batch through {flow.name!r} from data to latent, but "
            f"never reached {missed}; expected every bijector that starts from data on that "
            "path (one inside tfb.Invert meets it in its forward direction). Initialise "
            "those with their own `initialize(activations)`."
        )
    return record


def _as_tensor(value, dtype) -> tf.Tensor:
    """NumPy and Python input takes the flow's dtype; a tensor keeps its own (the bijectors
    check it and say what they expected)."""
    if tf.is_tensor(value) or dtype is None:
        return tf.convert_to_tensor(value)
    return tf.constant(np.asarray(value), dtype)


def first_batch(x, y=None, batch_size: int | None = None) -> tuple:
    """The batch ``keras.Model.fit(x, y, batch_size=...)`` starts from, and the ``x`` to hand
    on to ``fit``.

    That is the first element of a `tf.data.Dataset`, ``x[0]`` of a `keras.utils.Sequence`
    (``PyDataset``), the first item of a generator (which is handed on with that item put
    back), and otherwise the first ``batch_size`` (default 32, as Keras) rows of ``x`` (and
    ``y``): Keras' first batch when it does not shuffle. With ``validation_split`` Keras
    holds out the last rows, so these are training rows.
    """
    if isinstance(x, tf.data.Dataset):
        return next(iter(x)), x
    if isinstance(x, keras.utils.Sequence):
        return x[0], x
    if isinstance(x, Iterator):
        try:
            first = next(x)
        except StopIteration:
            raise ValueError("`x` is an exhausted iterator: it yields no batch.") from None
        return first, _put_back(first, x)
    n = 32 if batch_size is None else int(batch_size)
    data = (x,) if y is None else (x, y)
    try:
        return tf.nest.map_structure(lambda a: a[:n], data), x
    except (TypeError, IndexError, KeyError) as err:
        raise TypeError(
            f"cannot take a first batch from `x` of type {type(x).__name__} (expected arrays, "
            "a tf.data.Dataset, a keras.utils.Sequence or a generator) to initialise the "
            "flow's ActNorms; call model.initialize(batch) before fit, or pass "
            "initialize=False."
        ) from err


def _put_back(first, rest: Iterator):
    yield first
    yield from rest
