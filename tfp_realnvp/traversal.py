"""One walk over a tree of bijectors, for every question asked of a flow.

A flow nests bijectors: `tfb.Chain` (any TFP composition) holds a list, `tfb.Invert` one, and a
`FlowBijector` (or any user class with a ``children()`` method, such as `FactorOut`) whatever
its ``children()`` return. Listing Keras layers, routing a conditioning context, finding the
event shape and dtype, and finding ActNorms to initialise all use `walk` and `children`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_probability as tfp

from tfp_realnvp._checks import is_tf1_template

tfb = tfp.bijectors

__all__ = [
    "children",
    "check_no_templates",
    "conditional_kwargs",
    "data_domain",
    "find",
    "keras_layers",
    "walk",
]


class _Probe(tfb.Bijector):
    def __init__(self):
        super().__init__(forward_min_event_ndims=0, name="probe")


# tfb.Chain and tfb.Invert over bijectors that are not CompositeTensors (ours) build instances of
# private base classes of the public ones; ask TFP which, rather than naming them.
INVERT_TYPES = (tfb.Invert, type(tfb.Invert(_Probe())))
CHAIN_TYPES = (tfb.Chain, type(tfb.Chain([_Probe()])))


def children(bijector: tfb.Bijector) -> tuple[tfb.Bijector, ...]:
    """The bijectors ``bijector`` holds: a composition's parts in list order, the bijector
    inside `tfb.Invert`, or what its own ``children()`` returns; none for a leaf."""
    own = getattr(bijector, "children", None)
    if callable(own):
        return tuple(own())
    if isinstance(bijector, tfb.Composition):
        return tuple(bijector.bijectors)
    if isinstance(bijector, INVERT_TYPES):
        return (bijector.bijector,)
    return ()


def walk(bijector: tfb.Bijector, *, into_inverted: bool = True) -> Iterator[tfb.Bijector]:
    """``bijector`` and every bijector nested in it, depth first, each before its parts.

    Args:
      bijector: the root.
      into_inverted: also visit what `tfb.Invert` holds (whose data side is its latent side).

    #### Examples

    >>> import tfp_realnvp as trn
    >>> flow = trn.real_nvp([2], num_couplings=2, hidden_units=[4], permutation="reverse")
    >>> parts = list(walk(flow))
    >>> parts[0] is flow, [type(b).__name__ for b in parts[1:]]
    (True, ['AffineCoupling', 'Permute', 'AffineCoupling'])
    """
    yield bijector
    if not into_inverted and isinstance(bijector, INVERT_TYPES):
        return
    for part in children(bijector):
        yield from walk(part, into_inverted=into_inverted)


def keras_layers(bijector: tfb.Bijector) -> list:
    """The Keras layers (conditioners, learned parameters) that the bijectors of ``bijector``
    hold in their ``layers``, in `walk` order: what a Keras model around the flow must track
    to see and save its weights."""
    return [layer for b in walk(bijector) for layer in getattr(b, "layers", ())]


def check_no_templates(bijector: tfb.Bijector, where: str) -> None:
    """Refuses a flow holding a TF1 template network (``tfb.real_nvp_default_template``,
    ``tfb.masked_autoregressive_default_template``): its variables are made on the first call
    and tracked by neither Keras nor TFP, so fitting it would train nothing.

    Raises:
      TypeError: naming ``where``, the bijector and what to use instead.
    """
    for b in walk(bijector):
        if is_tf1_template(getattr(b, "_shift_and_log_scale_fn", None)):
            raise TypeError(
                f"{where}: {type(b).__name__} {b.name!r} computes its shift and log-scale with "
                "a TF1 template network (tfb.real_nvp_default_template or "
                "masked_autoregressive_default_template), whose variables neither Keras nor TFP "
                "can see, so training would change nothing. Build the flow with "
                "tfp_realnvp.real_nvp(...) or masked_autoregressive_flow(...) instead (README: "
                "'Coming from tfb.RealNVP')."
            )


def find(bijector: tfb.Bijector, attribute: str) -> Any:
    """The first non-None ``attribute`` in `walk` order outside inverted parts, or None: the
    event shape or dtype of a shape-preserving flow, read from its data side."""
    for b in walk(bijector, into_inverted=False):
        value = getattr(b, attribute, None)
        if value is not None:
            return value
    return None


def conditional_kwargs(bijector: tfb.Bijector, context) -> dict:
    """The keyword arguments that route ``context`` to every conditional bijector (one whose
    ``is_conditional`` is true) of ``bijector``, nested by name the way `tfb.Chain` expects;
    other holders (`tfb.Invert`, `FactorOut`) pass their kwargs on unchanged.

    Use them as ``flow.forward(z, **kw)``, or ``dist.log_prob(x, bijector_kwargs=kw)`` and
    ``dist.sample(n, bijector_kwargs=kw)`` on a `tfd.TransformedDistribution`.

    Raises:
      ValueError: if two bijectors that need the context share a name inside one chain.

    #### Examples

    >>> import tensorflow as tf, tfp_realnvp as trn
    >>> flow = trn.real_nvp([2], num_couplings=2, hidden_units=[8], context_shape=[1])
    >>> kw = conditional_kwargs(flow, tf.ones([5, 1]))
    >>> flow.forward(tf.zeros([5, 2]), **kw).shape
    TensorShape([5, 2])
    """
    if getattr(bijector, "is_conditional", False):
        return {"context": context}
    if not isinstance(bijector, tfb.Composition):
        out: dict = {}
        for part in children(bijector):
            out.update(conditional_kwargs(part, context))
        return out
    out = {}
    for part in children(bijector):
        sub = conditional_kwargs(part, context)
        if not sub:
            continue
        if part.name in out:
            raise ValueError(
                f"two bijectors in {bijector.name!r} are named {part.name!r}; tfb.Chain routes "
                "the context by name, so give them distinct names."
            )
        out[part.name] = sub
    return out


def data_domain(bijector: tfb.Bijector) -> tuple[float, float] | None:
    """The closed interval each element of the data must lie in for ``bijector`` (a flow,
    ``forward``: noise -> data) to be defined, or None for the real line.

    Read from the data side: the first bijector there that declares an ``inverse_domain``
    (`Logit`'s ``[0, 1]``), mapped back to data units through the element-wise bijectors in
    front of it (`Dequantize` makes it ``[0, K]``).

    #### Examples

    >>> import tfp_realnvp as trn
    >>> data_domain(trn.preprocessed_image_flow(trn.multiscale_real_nvp([4, 4, 1], 1), 17))
    (0.0, 17.0)
    """
    in_front: list[tfb.Bijector] = []
    for b in _data_side(bijector):
        domain = getattr(b, "inverse_domain", None)
        if domain is not None:
            ends = [float(v) for v in domain]
            for outer in reversed(in_front):
                ends = [np.asarray(outer.forward(v)) for v in ends]
                if any(e.size != 1 for e in ends):
                    return None  # a per-unit map in front: no single interval
                ends = sorted(float(e) for e in ends)
            return ends[0], ends[1]
        if b.forward_min_event_ndims != 0:
            return None  # past the element-wise front
        in_front.append(b)
    return None


def _data_side(bijector: tfb.Bijector) -> Iterator[tfb.Bijector]:
    """The bijectors data meets first, in order: chains flattened, nothing else entered."""
    if isinstance(bijector, CHAIN_TYPES):
        for part in bijector.bijectors:  # `inverse` applies them in list order
            yield from _data_side(part)
    else:
        yield bijector
