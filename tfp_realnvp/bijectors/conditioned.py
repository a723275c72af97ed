"""What a bijector whose transformer takes its parameters from a conditioner needs: the base of
`Coupling` and `MaskedAutoregressive`.

Both map some units ``u`` by an element-wise `Transformer` ``T`` whose parameters come from a
network: ``theta = T.params(conditioner(w))`` (``w`` the masked units for a coupling, the
units before each one for an autoregressive layer), optionally given a per-example
``context``. `ConditionedBijector` owns the parts they share:

- checking the transformer and the context, and flattening the batch;
- the conditioner call, which runs a low-precision copy while `tfp_realnvp.bijectors.lowering`
  has one for this bijector, and its outputs turned into the transformer's parameters;
- the check, once at construction on zeros, that the conditioner returns what the transformer
  takes (which also creates the conditioner's weights);
- ``get_config`` / ``from_config`` with the transformer saved by its class name.

A subclass defines the math (``_augmented_forward`` / ``_augmented_inverse``) and, where its
conditioner does not see the whole event, `conditioner_input_shape` and `param_shape`.

>>> import tensorflow as tf
>>> from tfp_realnvp import MADE, ResidualMLP
>>> from tfp_realnvp.bijectors import Affine, AffineCoupling, MaskedAutoregressive
>>> coupling = AffineCoupling(ResidualMLP(2, [8]), num_masked=1, event_shape=[3])
>>> maf = MaskedAutoregressive(MADE(3, [8]), Affine(), context_shape=[2])
>>> coupling.conditioner_input_shape, coupling.param_shape, coupling.is_conditional
((1,), (2,), False)
>>> maf.conditioner_input_shape, maf.param_shape, maf.context_shape
((3,), (3,), (2,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from tfp_realnvp._checks import conditioner as check_conditioner
from tfp_realnvp.bijectors.base import FlowBijector
from tfp_realnvp.bijectors.lowering import lowered_conditioner
from tfp_realnvp.bijectors.transformers import Params, Transformer, transformer_class

__all__ = ["ConditionedBijector"]


class ConditionedBijector(FlowBijector):
    """Base of the bijectors whose `Transformer` takes its parameters from a conditioner.

    A subclass's ``__init__`` checks its own conditioner, calls `_set_conditioner` and ends
    with `_finish`; it names the conditioner's constructor argument in ``_conditioner_arg``
    (the key `get_config` saves it under) and may give advice for a conditioner whose outputs
    do not fit (`_conditioner_hint`).
    """

    _conditioner_arg = "conditioner"

    def _set_conditioner(
        self, conditioner, transformer: Transformer, event_shape, context_shape, dtype
    ) -> None:
        """Checks and keeps the parts, and builds the transformer (before ``__init__``)."""
        if not isinstance(transformer, Transformer):
            raise TypeError(
                "`transformer` must be a tfp_realnvp.bijectors.Transformer (Affine, Additive "
                f"or a subclass); got {type(transformer).__name__}."
            )
        check_conditioner(conditioner, self._conditioner_arg)
        self._conditioner = conditioner
        self._transformer = transformer
        self._context_shape = (
            None if context_shape is None else tuple(int(d) for d in context_shape)
        )
        dtype = dtype or getattr(conditioner, "dtype", None) or tf.float32
        self._set_event_shape_and_dtype(event_shape, dtype)
        transformer.build(self.param_shape, self._flow_dtype.name)

    def _finish(self, validate_args: bool, parameters: dict, name: str) -> None:
        # Not a constant Jacobian even for a transformer with a constant log-det: the map is not
        # affine, and TFP would take a transformed distribution's mean and covariance as if it were.
        self._init_for_event(parameters, validate_args, name, is_constant_jacobian=False)
        self._check_conditioner()
        self._track_layers([self._conditioner, *self._transformer.layers])

    # Public read-only views.
    @property
    def conditioner(self):
        """The network that maps ``w`` (and the context) to the transformer's parameters."""
        return self._conditioner

    @property
    def transformer(self) -> Transformer:
        """The element-wise map of the transformed units."""
        return self._transformer

    @property
    def context_shape(self) -> tuple[int, ...] | None:
        """Shape of one example's context, or None for an unconditional bijector."""
        return self._context_shape

    @property
    def is_conditional(self) -> bool:
        """Whether every call needs a ``context``."""
        return self._context_shape is not None

    @property
    def conditioner_input_shape(self) -> tuple[int, ...]:
        """Shape of one example of the conditioner's input (by default the event's)."""
        return self._event_shape

    @property
    def param_shape(self) -> tuple[int, ...]:
        """Shape of one example of each conditioner output, before the trailing axes of a
        transformer with several values per unit (by default the event's)."""
        return self._event_shape

    def get_config(self) -> dict[str, Any]:
        return {
            self._conditioner_arg: self.conditioner,
            "transformer": {
                "class_name": type(self.transformer).__name__,
                "config": self.transformer.get_config(),
            },
            "context_shape": None if self.context_shape is None else list(self.context_shape),
            "dtype": self.flow_dtype.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ConditionedBijector:
        described = config["transformer"]
        transformer = transformer_class(described["class_name"]).from_config(described["config"])
        return cls(**{**config, "transformer": transformer})

    # Pieces of the math.
    def _flatten_batch(self, x):
        """Reshapes to ``[N, *event]``; returns it and the batch shape (static where known)."""
        rank = len(self._event_shape)
        batch = x.shape[: x.shape.rank - rank]
        batch_shape = batch.as_list() if batch.is_fully_defined() else tf.shape(x)[:-rank]
        return tf.reshape(x, (-1, *self._event_shape)), batch_shape

    def _transformer_params(self, w, context, dtype) -> Params:
        """The transformer's parameters from one conditioner pass on ``w``, in ``dtype``."""
        out = self._call_conditioner(w, context)
        outputs = (out,) if self._transformer.num_params == 1 else tuple(out)
        return self._transformer.params(tuple(tf.cast(t, dtype) for t in outputs))

    def _call_conditioner(self, w, context):
        conditioner = lowered_conditioner(self)  # a bfloat16 copy (bijectors.lowering)
        if conditioner is None:
            conditioner = self._conditioner
        else:
            w = tf.cast(w, conditioner.compute_dtype)
            context = None if context is None else tf.cast(context, w.dtype)
        if context is None:
            return conditioner(w)
        return conditioner(w, context=context)

    def _prepare_context(self, context, batch_shape):
        """Checks ``context`` against the bijector and broadcasts it to ``[N, *context_shape]``."""
        if self._context_shape is None:
            if context is not None:
                raise ValueError(
                    f"{self.name}: got `context`, but this coupling is unconditional (built "
                    "without `context_shape`)."
                )
            return None
        if context is None:
            raise ValueError(
                f"{self.name}: this coupling is conditional (context_shape="
                f"{self._context_shape}) and needs `context`; pass "
                "bijector_kwargs=tfp_realnvp.conditional_kwargs(flow, context)."
            )
        context = tf.convert_to_tensor(context, dtype_hint=self._flow_dtype)
        if context.dtype != self._flow_dtype:
            raise TypeError(
                f"{self.name}: `context` has dtype {context.dtype.name}, but this bijector "
                f"computes in {self._flow_dtype.name}."
            )
        rank = len(self._context_shape)
        shape = context.shape
        if shape.rank is not None and (
            shape.rank < rank or tuple(shape[shape.rank - rank :]) != self._context_shape
        ):
            raise ValueError(
                f"{self.name}: `context` must end in context_shape {self._context_shape}; got "
                f"shape {tuple(shape)}."
            )
        if isinstance(batch_shape, list):
            full = batch_shape + list(self._context_shape)
        else:
            full = tf.concat([batch_shape, self._context_shape], axis=0)
        context = tf.broadcast_to(context, full)
        return tf.reshape(context, (-1, *self._context_shape))

    # The conditioner's outputs, checked once.
    def _check_conditioner(self) -> None:
        """Calls the conditioner once on zeros: creates its weights and checks its outputs."""
        w = tf.zeros((1, *self.conditioner_input_shape), self._flow_dtype)
        context = None
        if self._context_shape is not None:
            context = tf.zeros((1, *self._context_shape), self._flow_dtype)
        out = self._call_conditioner(w, context)
        transformer = self._transformer
        wants = [(1, *self.param_shape, *s) for s in transformer.unit_param_shapes]
        several = isinstance(out, (tuple, list))
        outputs = tuple(out) if several else (out,)
        got = [tuple(t.shape) if tf.is_tensor(t) else type(t).__name__ for t in outputs]
        if got != wants or (several and transformer.num_params == 1):
            raise ValueError(
                f"{self.name}: `{self._conditioner_arg}` must return "
                f"{_expected_outputs(transformer.param_names, wants)} for a batch of 1 "
                f"({transformer!r}); got {got}. {self._conditioner_hint()}"
            )

    def _conditioner_hint(self) -> str:
        """Advice for a conditioner whose outputs do not fit the transformer."""
        return ""


def _expected_outputs(names: Sequence[str], wants: Sequence[tuple]) -> str:
    if len(names) == 1:
        return f"a {names[0]} tensor of shape {wants[0]}"
    if len(set(wants)) == 1:
        return f"({', '.join(names)}), each of shape {wants[0]}"
    return "(" + ", ".join(f"{n} of shape {w}" for n, w in zip(names, wants, strict=True)) + ")"
