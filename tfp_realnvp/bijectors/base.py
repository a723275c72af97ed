"""The one base class of this package's bijectors, and the registry that saving reads.

`FlowBijector` owns what every bijector here shares:

- one conditioner (or parameter) pass per call: a subclass that defines
  ``_augmented_forward`` / ``_augmented_inverse`` (each returning the output and
  ``{"fldj": ..., "ildj": ...}``) gets ``_forward`` / ``_inverse`` from them, and TFP's cache
  hands the log-det of that pass to the ``*_log_det_jacobian`` call that follows; where the
  cache has none, the log-det comes from a pass of its own, unless the subclass gives a
  cheaper ``_forward_log_det_jacobian`` / ``_inverse_log_det_jacobian``. That cache is
  the package's only use of TFP internals (`single_pass_cache`); should a TFP release move
  it, the plain cache takes over and each log-det is computed again, correct but slower;
- weights held in Keras layers, made visible to `tf.Module`'s variable walk (so
  ``trainable_variables``, `tfp.vi` and `tfd.JointDistribution` see them under Keras 3);
- dtype, event-shape and finiteness checks with messages that name the argument, the
  expectation and what came;
- ``children()``, the bijectors it holds (see `tfp_realnvp.walk`);
- ``get_config()`` / ``from_config()`` from public properties, and `register_bijector`, the
  decorator that lets `tfp_realnvp.serialization` save and load a class by name.

Adding a bijector: subclass `FlowBijector`, implement the math and ``get_config``, decorate
with `register_bijector`; the registry-driven test then runs it through the conformance kit,
``.keras`` saving and SavedModel export.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._keras import tf_variables

try:  # the package's one import of TFP internals
    from tensorflow_probability.python.internal import cache_util as _cache_util
except ImportError:  # pragma: no cover - a TFP release moved it; the plain cache still works
    _cache_util = None

__all__ = [
    "FlowBijector",
    "register_bijector",
    "registered_bijectors",
    "single_pass_cache",
    "unique_name",
]

_COUNTERS: dict[str, itertools.count] = collections.defaultdict(itertools.count)
_REGISTRY: dict[str, type] = {}


def unique_name(base: str) -> str:
    """``base_0``, ``base_1``, ...: default names never repeat, so `tfb.Chain` can route kwargs
    by name."""
    return f"{base}_{next(_COUNTERS[base])}"


def single_pass_cache():
    """TFP's cache that also stores the extra results of ``_augmented_forward`` /
    ``_augmented_inverse`` (as `tfb.FFJORD` uses it), or None where TFP no longer has it."""
    if _cache_util is None:  # pragma: no cover
        return None
    return _cache_util.BijectorCacheWithGreedyAttrs(
        forward_name="_augmented_forward", inverse_name="_augmented_inverse"
    )


def register_bijector(cls: type) -> type:
    """Class decorator: lets `tfp_realnvp.serialization` save and load ``cls`` by its name.

    Raises:
      TypeError: for a class that is not a `FlowBijector`.
      ValueError: if another class already has the name.
    """
    if not (isinstance(cls, type) and issubclass(cls, FlowBijector)):
        raise TypeError(f"register_bijector takes a FlowBijector subclass; got {cls!r}.")
    known = _REGISTRY.get(cls.__name__)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"a bijector class named {cls.__name__!r} is registered already ({known!r})."
        )
    _REGISTRY[cls.__name__] = cls
    return cls


def registered_bijectors() -> dict[str, type]:
    """Name -> class of every registered bijector (ours, and any a user registered)."""
    return dict(_REGISTRY)


class FlowBijector(tfp.bijectors.Bijector):
    """Base class of this package's bijectors (see the module docstring for what it owns).

    Subclasses call ``super().__init__`` as any `tfb.Bijector` does, and may call
    `_set_event_shape_and_dtype` before it and `_track_layers` after it; one that acts on
    that whole event at least calls `_init_for_event` instead.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_augmented_forward" in cls.__dict__:
            # Without TFP's greedy cache, TFP's plain one (its Bijector's default), never a
            # parent's greedy cache: it would hand out log-dets this class's pass did not store.
            cache = single_pass_cache()  # (an empty cache is falsy: no `or` here)
            cls._cache = tfp.bijectors.Bijector._cache if cache is None else cache
        # TFP asks hasattr() for each log-det and derives a missing one from the other, so only
        # a class with the single pass gets these, and only where it has none of its own.
        for direction in ("forward", "inverse"):
            method = f"_{direction}_log_det_jacobian"
            if hasattr(cls, f"_augmented_{direction}") and not hasattr(cls, method):
                setattr(cls, method, getattr(FlowBijector, f"_{direction}_log_det_from_pass"))

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}  # no batched tensor parameters: weights live in Keras layers

    # The single pass.
    def _forward(self, z, **kwargs):
        return self._augmented_forward(z, **kwargs)[0]

    def _inverse(self, x, **kwargs):
        return self._augmented_inverse(x, **kwargs)[0]

    # Installed as `_*_log_det_jacobian` (see __init_subclass__), which TFP calls only when its
    # cache holds no log-det for this input.
    def _forward_log_det_from_pass(self, z, **kwargs):
        return self._augmented_forward(z, **kwargs)[1]["fldj"]

    def _inverse_log_det_from_pass(self, x, **kwargs):
        return self._augmented_inverse(x, **kwargs)[1]["ildj"]

    # Structure and saving.
    def children(self) -> tuple[tfp.bijectors.Bijector, ...]:
        """The bijectors this one holds and applies (none by default)."""
        return ()

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this bijector (weights aside), from public
        properties. Values may be bijectors and Keras layers; `tfp_realnvp.serialization`
        turns them into JSON and back."""
        raise NotImplementedError(
            f"{type(self).__name__} does not describe itself: implement get_config() (and "
            "register the class with tfp_realnvp.register_bijector) to save it in the Keras "
            "format; checkpoints and export_saved_model work without."
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FlowBijector:
        """Rebuilds a bijector from `get_config`'s output (with fresh weights)."""
        return cls(**config)

    # Weights.
    def _track_layers(self, layers: Sequence) -> None:
        self._layers = tuple(layers)
        raw = [
            v for layer in layers if not isinstance(layer, tf.Module) for v in tf_variables(layer)
        ]
        # Found by tf.Module's variable walk, but not a checkpoint dependency: checkpoints and
        # SavedModels see each variable once, through its layer.
        self._keras_variables = self._no_dependency(tuple(raw))

    @property
    def layers(self) -> tuple:
        """The Keras layers (or `tf.Module`s) holding this bijector's own weights."""
        return getattr(self, "_layers", ())

    # Shapes, dtypes and checks.
    @property
    def event_shape(self) -> tuple[int, ...]:
        """The data-side event shape this bijector acts on."""
        return self._event_shape

    @property
    def flow_dtype(self) -> tf.DType | None:
        """The dtype it computes in, or None for bijectors that take any float dtype."""
        return getattr(self, "_flow_dtype", None)

    @property
    def inverse_domain(self) -> tuple[float, float] | None:
        """The closed interval every element of ``inverse``'s input must lie in, or None for
        the real line. `FlowModel` checks data against it at the door."""
        return None

    def _init_for_event(
        self, parameters: dict, validate_args: bool, name: str, *, is_constant_jacobian: bool
    ) -> None:
        """``tfb.Bijector.__init__`` with the event of `_set_event_shape_and_dtype` as the least
        the bijector acts on."""
        super().__init__(
            forward_min_event_ndims=len(self._event_shape),
            is_constant_jacobian=is_constant_jacobian,
            validate_args=validate_args,
            parameters=parameters,
            name=name,
        )

    def _set_event_shape_and_dtype(self, event_shape: Sequence[int], dtype) -> None:
        self._event_shape = tuple(int(d) for d in event_shape)
        if not self._event_shape or min(self._event_shape) < 1:
            raise ValueError(f"`event_shape` must be non-empty and positive; got {event_shape}.")
        self._flow_dtype = tf.as_dtype(dtype)
        if not self._flow_dtype.is_floating:
            raise TypeError(f"`dtype` must be a floating dtype; got {self._flow_dtype.name}.")

    def _check_input(self, x: tf.Tensor, arg: str, event_shape: Sequence[int]) -> tf.Tensor:
        """Checks dtype (if fixed) and static event shape always, finiteness under
        ``validate_args``."""
        dtype = self.flow_dtype
        if dtype is not None and x.dtype != dtype:
            raise TypeError(
                f"{self.name}: `{arg}` has dtype {x.dtype.name}, but this bijector computes in "
                f"{dtype.name}. Cast the input with tf.cast(..., tf.{dtype.name}) or build the "
                f"flow with dtype=tf.{x.dtype.name}."
            )
        if not x.dtype.is_floating:
            raise TypeError(f"{self.name}: `{arg}` must be floating point; got {x.dtype.name}.")
        rank = len(event_shape)
        shape = x.shape
        if shape.rank is not None and (
            shape.rank < rank
            or any(
                None not in (got, want) and got != want
                for got, want in zip(shape[shape.rank - rank :], event_shape, strict=False)
            )
        ):
            raise ValueError(
                f"{self.name}: `{arg}` must end in the event shape {tuple(event_shape)}; "
                f"got shape {tuple(shape)}."
            )
        if self.validate_args:
            x = tf.debugging.check_numerics(x, f"{self.name}: `{arg}` contains NaN or inf")
        return x
