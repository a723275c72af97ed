"""`FlowModel`: a Keras model around a flow bijector, trained by maximum likelihood."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._buckets import fills_up_batches, padded_batches, run_bucketed
from tfp_realnvp._execution import StepsPerExecution, unsized
from tfp_realnvp._functions import own_function
from tfp_realnvp._keras import (
    LEGACY_KERAS,
    build_optimizer,
    keras,
    no_shuffle_of_datasets,
    register,
)
from tfp_realnvp.bases import LearnedBase, make_base
from tfp_realnvp.data.domain import check_in_domain
from tfp_realnvp.flows import flow_distribution, sample_request
from tfp_realnvp.initialization import first_batch, uninitialized
from tfp_realnvp.initialization import initialize as initialize_flow
from tfp_realnvp.networks import training_mode
from tfp_realnvp.precision import LoweredConditioners, check_precision
from tfp_realnvp.serialization import bijector_from_config, bijector_to_config
from tfp_realnvp.traversal import (
    check_no_templates,
    conditional_kwargs,
    data_domain,
    find,
    keras_layers,
)
from tfp_realnvp.units import bits_per_dim

__all__ = ["FlowModel"]

tfb = tfp.bijectors


def _keras_reduces_along_axis_0(strategy) -> bool:
    """Keras 3 averages a multi-worker run's logs with ``strategy.reduce("MEAN", v, axis=0)``,
    which a scalar lacks (tf-keras takes the first replica's)."""
    multi_worker = getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)()
    return not LEGACY_KERAS and multi_worker


def xla_allowed(strategy: tf.distribute.Strategy) -> bool:
    """Whether TF 2.21 compiles a replicated train step with XLA: for one replica, or when
    every replica is a GPU or TPU (XLA has collectives there, not on CPU)."""
    if strategy.num_replicas_in_sync == 1:
        return True
    kinds = [
        tf.DeviceSpec.from_string(d).device_type or "" for d in strategy.extended.worker_devices
    ]
    return all(kind.upper() in ("GPU", "TPU") for kind in kinds)


def _bfloat16_on_cpu(model) -> bool:
    """Whether ``model`` computes in bfloat16 (a ``mixed_bfloat16`` policy) with no GPU or
    TPU to run on. There XLA's bfloat16 matmuls are slower than oneDNN's: under that policy
    `fit` ran 0.80x float32's steps with XLA and 1.13x without (``benchmarks/bf16_fit.py``)."""
    policy = getattr(model, "dtype_policy", None)
    if getattr(policy, "compute_dtype", None) != "bfloat16":
        return False
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


# keras.Model.fit's and evaluate's parameters after x and y, in order, in both Keras versions.
_FIT_PARAMETERS = (
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
    "class_weight",
    "sample_weight",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
_EVALUATE_PARAMETERS = ("batch_size", "verbose", "sample_weight", "steps", "callbacks")


def _by_name(args: tuple, kwargs: dict, names: tuple, method: str) -> dict:
    """``kwargs`` with the positional ``args`` added under their ``names``."""
    if len(args) > len(names):
        raise TypeError(f"{method}() takes at most {len(names) + 2} positional arguments")
    for name, value in zip(names[: len(args)], args, strict=True):
        if name in kwargs:
            raise TypeError(f"{method}() got multiple values for argument '{name}'")
        kwargs[name] = value
    return kwargs


def _array_columns(x, y=None, weight=None) -> dict | None:
    """``{"x", "context", "weight"}`` from a call's ``x``, ``y`` and ``sample_weight`` when
    all given are arrays (``x`` may be an ``(x, context)`` pair) of one length, else None."""
    if isinstance(x, (tuple, list)) and len(x) == 2 and y is None:
        x, y = x
    named = {"x": x, "context": y, "weight": weight}
    columns = {k: v for k, v in named.items() if v is not None}
    arrays = all(
        isinstance(v, (np.ndarray, tf.Tensor)) and not isinstance(v, tf.SparseTensor)
        for v in columns.values()
    )
    if not arrays or not tf.executing_eagerly():
        return None
    lengths = {int(np.shape(v)[0]) if np.ndim(v) else 0 for v in columns.values()}
    return columns if len(lengths) == 1 and lengths != {0} else None


@register
class FlowModel(keras.Model):
    """A Keras model of the density ``p(x)`` (or ``p(x | context)``) defined by a flow.

    ``model.compile(optimizer=...)`` then ``model.fit(x)`` minimises the negative log-likelihood
    with no targets; ``model.fit((x, context))`` or ``model.fit(x, context)`` for a conditional
    flow. Arrays and `tf.data.Dataset`s work, as do validation data and callbacks. Keras drops
    sample weights when there is no ``y``, so they work as ``fit(x, context, sample_weight=w)``
    and are refused (not silently ignored) otherwise. The loss is
    the NLL in nats per example; ``bits_per_dim`` is the same in bits per dimension.

    Bijectors that start from data (`ActNorm`) are initialised by ``fit`` from its first
    training batch (`tfp_realnvp.initialization.first_batch`), eagerly and before any
    replicated step, unless they already are; ``fit(..., initialize=False)`` skips that, and
    ``model.initialize(x)`` does it on a batch of your choice.

    The model shares its variables with ``model.distribution`` (a TFP
    `TransformedDistribution`) and ``model.bijector``. It saves in the Keras format
    (``model.save("m.keras")``) when every bijector of the flow is one that
    `tfp_realnvp.serialization` describes, with checkpoints always, and exports with
    `tfp_realnvp.export_saved_model`.

    Args:
      bijector: the flow (``forward`` maps noise to data), e.g. from `real_nvp`.
      event_shape: shape of one example; read from the flow's couplings when omitted.
      context_shape: shape of one example's context; read from the flow when omitted.
      dequantize: add fresh ``Uniform[0, 1)`` noise to every training and evaluation batch
        (integer-valued data such as grey levels; see `Dequantize`). Under a global seed
        (``keras.utils.set_random_seed``) evaluation draws the same sequence of noise as the
        first training epoch did: the two compiled steps' random ops share their seed.
      context_center, context_scale: a fixed standardisation of the context, ``(context -
        context_center) / context_scale``, applied wherever the model routes a context (fit,
        log_prob, sample and both exports), so callers pass contexts in their own units; each
        of ``context_shape``. Default: none.
      base: the base distribution: ``"normal"`` (default, nothing learned), or a learned
        ``"diagonal"`` Gaussian, ``"student_t"`` or ``"mixture"``, or a
        `tfp_realnvp.bases.LearnedBase` layer (see `tfp_realnvp.bases`). A learned base trains
        with the flow and is saved and exported with it.
      **kwargs: passed to `keras.Model` (e.g. ``name``).

    #### Examples

    >>> import numpy as np
    >>> import tfp_realnvp as trn
    >>> model = trn.FlowModel(trn.real_nvp([2], num_couplings=2, hidden_units=[8]))
    >>> model.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    >>> history = model.fit(x, epochs=2, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['bits_per_dim', 'loss']
    >>> model.sample(3, seed=0).shape
    TensorShape([3, 2])
    """

    def __init__(
        self,
        bijector,
        event_shape: Sequence[int] | None = None,
        context_shape: Sequence[int] | None = None,
        dequantize: bool = False,
        base: str | LearnedBase | None = None,
        context_center: Sequence[float] | np.ndarray | None = None,
        context_scale: Sequence[float] | np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dequantize = bool(dequantize)
        check_no_templates(bijector, "FlowModel")
        self._flow = bijector
        self._dist = flow_distribution(bijector, event_shape)
        if base is not None:
            shape, dtype = self._dist.event_shape, self._dist.dtype
            self.base_layer = make_base(base, shape, dtype)  # None for "normal"
            if self.base_layer is not None:
                self._dist = flow_distribution(bijector, shape, base=self.base_layer)
        self.event_shape_ = tuple(int(d) for d in self._dist.event_shape)
        if context_shape is None:
            context_shape = find(bijector, "context_shape")
        self.context_shape_ = None if context_shape is None else tuple(context_shape)
        self.flow_dtype = tf.as_dtype(self._dist.dtype)
        self.context_center, self.context_scale = self._context_standardization(
            context_center, context_scale
        )
        self.num_dims = int(np.prod(self.event_shape_))
        self.flow_layers = keras_layers(bijector)
        self.data_domain = data_domain(bijector)
        # Compiled log_prob / forward for eager callers, made on first use; kept out of
        # Keras' and TF's attribute tracking.
        object.__setattr__(self, "_compiled_fns", {})
        object.__setattr__(self, "_eval_jit", True)
        self.nll_tracker = keras.metrics.Mean(name="loss")
        self.bpd_tracker = keras.metrics.Mean(name="bits_per_dim")
        self.built = True

    # The TFP side.
    @property
    def bijector(self):
        return self._flow

    @property
    def distribution(self):
        """The flow's `tfd.TransformedDistribution`, sharing this model's variables."""
        return self._dist

    @property
    def is_conditional(self) -> bool:
        return self.context_shape_ is not None

    def bijector_kwargs(self, context=None) -> dict:
        """The kwargs that pass ``context`` to the flow's conditional bijectors (empty for an
        unconditional model), for ``model.bijector`` and ``model.distribution`` calls.

        Raises:
          ValueError: for a context an unconditional model gets, or one a conditional lacks.
        """
        if context is None:
            if self.is_conditional:
                raise ValueError(
                    f"this FlowModel is conditional (context_shape={self.context_shape_}); pass "
                    "`context`."
                )
            return {}
        if not self.is_conditional:
            raise ValueError("this FlowModel is unconditional; it takes no `context`.")
        context = self._as_tensor(context, "context")
        if self.context_center is not None:
            center = tf.constant(self.context_center, context.dtype)
            context = (context - center) / tf.constant(self.context_scale, context.dtype)
        return conditional_kwargs(self._flow, context)

    def _context_standardization(self, center, scale):
        if center is None and scale is None:
            return None, None
        if self.context_shape_ is None:
            raise ValueError("`context_center`/`context_scale` need a conditional flow.")
        shape = self.context_shape_
        center = np.zeros(shape) if center is None else np.asarray(center, np.float64)
        scale = np.ones(shape) if scale is None else np.asarray(scale, np.float64)
        for name, value in (("context_center", center), ("context_scale", scale)):
            if value.shape != shape or not np.all(np.isfinite(value)):
                raise ValueError(
                    f"`{name}` must be finite with the context's shape {shape}; got "
                    f"{value.tolist()}."
                )
        if not np.all(scale > 0):
            raise ValueError(f"`context_scale` must be positive; got {scale.tolist()}.")
        return center, scale

    def _as_tensor(self, value, arg: str) -> tf.Tensor:
        """NumPy/Python input takes the model's dtype; a tensor must already have it."""
        if tf.is_tensor(value):
            if value.dtype != self.flow_dtype:
                raise TypeError(
                    f"`{arg}` has dtype {value.dtype.name}, but this model computes in "
                    f"{self.flow_dtype.name}; cast it with tf.cast(..., tf.{self.flow_dtype.name})."
                )
            return value
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"`{arg}` must be numeric; got an array of {array.dtype}.")
        return tf.convert_to_tensor(array.astype(self.flow_dtype.as_numpy_dtype))

    def _log_prob(self, x, context=None):
        return self._dist.log_prob(x, bijector_kwargs=self.bijector_kwargs(context))

    def _forward(self, z, context=None):
        return self._flow.forward(z, **self.bijector_kwargs(context))

    def _compiled(self, kind: str, precision: str | None = None):
        """A compiled ``_log_prob`` or ``_forward`` over any batch size (traced once); with
        XLA unless ``compile(jit_compile=False)`` said otherwise, or for the bfloat16 path
        (whose oneDNN matmuls XLA's CPU dot does not match)."""
        fn = self._compiled_fns.get((kind, precision))
        if fn is None:
            specs = [tf.TensorSpec([None, *self.event_shape_], self.flow_dtype)]
            if self.is_conditional:
                specs.append(tf.TensorSpec([None, *self.context_shape_], self.flow_dtype))
            plain, lowered = getattr(self, f"_{kind}"), self._lowered(precision)

            def run(*args):
                with lowered.active():
                    return plain(*args)

            fn = own_function(
                plain if precision is None else run,
                input_signature=specs,
                jit_compile=self._eval_jit and precision is None,
            )
            self._compiled_fns[(kind, precision)] = fn
        return fn

    def _lowered(self, precision: str | None) -> LoweredConditioners | None:
        """The flow's low-precision conditioners (made once), or None for float32."""
        if precision is None:
            return None
        if precision not in self._compiled_fns:
            self._compiled_fns[precision] = LoweredConditioners(self._flow, precision)
        return self._compiled_fns[precision]

    def _eager_call(self, kind: str, t: tf.Tensor, context, precision=None):
        """Runs ``_log_prob`` or ``_forward``, compiled when called eagerly on ``[N, *event]``.

        Anything else (graph mode, other batch ranks, bad input) takes the plain path, which
        also reports the errors. XLA sees only bucketed batch sizes (`tfp_realnvp._buckets`).
        """
        plain = getattr(self, f"_{kind}")
        precision = check_precision(precision)
        if precision is not None:
            lowered = self._lowered(precision)
            if tf.executing_eagerly():  # (inside a tf.function: the copies as they are)
                lowered.refresh_if_stale()
            plain = lowered.active()(plain)  # the plain path in low precision too
        if not tf.executing_eagerly() or tuple(t.shape) != (t.shape[0], *self.event_shape_):
            return plain(t, context)
        if (context is not None) != self.is_conditional or t.shape[0] == 0:
            return plain(t, context)  # says what is missing or unexpected
        args = [t]
        if context is not None:
            context = self._as_tensor(context, "context")
            rank = len(self.context_shape_)
            batch = tuple(context.shape[: context.shape.rank - rank])
            if tuple(context.shape[context.shape.rank - rank :]) != self.context_shape_:
                return plain(t, context)
            if batch not in ((), (1,), (t.shape[0],)):
                raise ValueError(
                    f"`context` has batch shape {batch}; expected (), (1,) or ({t.shape[0]},)."
                )
            args.append(tf.broadcast_to(context, (t.shape[0], *self.context_shape_)))
        fn = self._compiled(kind, precision)
        return run_bucketed(fn, args) if self._eval_jit and precision is None else fn(*args)

    def log_prob(self, x, context=None, precision: str | None = None) -> tf.Tensor:
        """``log p(x)`` (or ``log p(x | context)``) per example, in nats.

        Called eagerly on a batch ``[N, *event_shape]``, it runs a compiled function (XLA
        unless ``compile(jit_compile=False)``) that is traced once for all ``N``; XLA compiles
        once per size bucket (powers of two and their midpoints from 16 to 16384; larger
        batches run in chunks), so any mix of sizes costs at most 21 compilations.

        ``precision="bfloat16"`` runs the coupling conditioners in bfloat16 (with weights cast
        once, and again only after they change) and the rest in float32; see
        `tfp_realnvp.precision` and benchmarks/README.md for its speed and error.
        """
        x = self._as_tensor(x, "x")
        if tf.executing_eagerly():
            self._check_domain(x, "x", noise=False)
        return self._eager_call("log_prob", x, context, precision)

    def sample(self, n: int, seed=None, context=None, precision: str | None = None) -> tf.Tensor:
        """``n`` samples: base noise pushed through the flow's ``forward``.

        ``seed`` is an int or a shape-[2] stateless seed; ``None`` draws fresh noise. The noise
        is drawn outside XLA (whose CPU random numbers are slow); ``forward`` runs compiled,
        on bucketed sizes as in `log_prob`. ``precision="bfloat16"``: as in `log_prob`.
        """
        n, seed = sample_request(n, seed)
        noise = self.base_sample(n, seed)
        return self._eager_call("forward", noise, context, precision)

    def base_sample(self, n, seed=None) -> tf.Tensor:
        """``n`` draws of the base distribution; ``seed`` a shape-[2] stateless seed or
        ``None`` for fresh noise."""
        if self.learned_base is not None:
            return self._dist.distribution.sample(n, seed=seed)
        shape = tf.concat([[n], self.event_shape_], 0)
        if seed is None:
            return tf.random.normal(shape, dtype=self.flow_dtype)
        return tf.random.stateless_normal(shape, seed, dtype=self.flow_dtype)

    @property
    def learned_base(self) -> LearnedBase | None:
        """The base distribution's layer when it is learned, else ``None``."""
        return getattr(self, "base_layer", None)

    # The Keras side.
    def _unpack(self, data):
        """Splits a Keras batch: ``x``, ``(x,)``, ``(x, context)`` or
        ``(x, context, sample_weight)``, where ``fit((x, context))`` arrives as
        ``((x, context),)``, or `padded_batches`' ``{"x", "context", "weight"}``."""
        if isinstance(data, dict):
            data = (data["x"], data.get("context"), data["weight"])
        if isinstance(data, (tuple, list)) and len(data) == 1:
            data = data[0]
        if not isinstance(data, (tuple, list)):
            data = (data,)
        x, context, weight = (*tuple(data), None, None)[:3]
        if isinstance(x, (tuple, list)):  # fit((x, context)) arrives as ((x, context),)
            x, context = x
        if context is not None and not self.is_conditional:
            raise ValueError(
                "this FlowModel is unconditional and learns p(x) without targets; fit it on x "
                "alone (got an (x, y) pair)."
            )
        x = tf.cast(x, self.flow_dtype)
        if context is not None and context.dtype.is_floating:
            context = tf.cast(context, self.flow_dtype)
        return x, context, weight

    def _refuse_dropped_weights(self, y, sample_weight):
        if sample_weight is None or y is not None:
            return
        hint = (
            "pass the context as y: fit(x, context, sample_weight=w)"
            if self.is_conditional
            else "weight the data by resampling instead"
        )
        raise ValueError(
            f"`sample_weight` would be lost: Keras drops sample weights when there are no "
            f"targets (y); {hint}."
        )

    def initialize(
        self, x: tf.Tensor | np.ndarray, context: tf.Tensor | np.ndarray | None = None
    ) -> list[str]:
        """`tfp_realnvp.initialize` on this model's flow, with ``x`` (and ``context``) taken as
        a training batch: cast to the model's dtype, and dequantised with fresh noise when
        ``dequantize=True``. Returns the names of the bijectors it initialised."""
        return self._initialize_from((x,) if context is None else (x, context))

    def _initialize_from(self, data) -> list[str]:
        x, context, _ = self._unpack(tf.nest.map_structure(tf.convert_to_tensor, data))
        return initialize_flow(self._flow, self._dequantized(x), context)

    def fit(self, x=None, y=None, *args, initialize: bool = True, **kwargs):
        """`keras.Model.fit`, after initialising the flow's data-dependent bijectors (`ActNorm`)
        from the first training batch when ``initialize`` is true and any still wait for it.

        Unless ``compile`` was given ``steps_per_execution``, each compiled call runs up to 8
        steps (the most that divides ``steps_per_epoch`` and ``validation_steps`` when given)
        when no callback in ``callbacks`` acts on single batches (overrides ``on_batch_*``,
        ``on_train_batch_*`` or ``on_test_batch_*``; Keras' progress bar and history aside),
        and 1 step otherwise, so such callbacks still see every batch (`tfp_realnvp._execution`).

        Where XLA compiles the step (one replica), arrays are batched as Keras would (the same
        ``batch_size``, ``shuffle`` and ``validation_split``) into batches of one shape: the
        short last batch of an epoch is filled up with repeated rows of weight 0, so the step
        and the validation step each compile once (`tfp_realnvp._buckets.padded_batches`).
        """
        kwargs = _by_name(args, kwargs, _FIT_PARAMETERS, "fit")
        self._refuse_dropped_weights(y, kwargs.get("sample_weight"))
        if initialize and uninitialized(self._flow):
            batch, x = first_batch(x, y, kwargs.get("batch_size"))
            self._initialize_from(batch)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, np.ndarray) or tf.is_tensor(validation_data):
            validation_data = (validation_data,)  # tf-keras takes only tuples or datasets
        x = self._check_domain(x, "x")
        kwargs["validation_data"] = self._check_domain(validation_data, "validation_data")
        x, y = self._one_shape(x, y, kwargs, training=True)
        no_shuffle_of_datasets(x, kwargs)
        self._build_optimizer()
        return self._execution_steps().run(
            self,
            kwargs.get("callbacks"),
            (kwargs.get("steps_per_epoch"), kwargs.get("validation_steps")),
            lambda: super(FlowModel, self).fit(x, y, **kwargs),
            unsized(x, kwargs.get("steps_per_epoch"))
            or unsized(kwargs["validation_data"], kwargs.get("validation_steps")),
        )

    def _one_shape(self, x, y, kwargs: dict, training: bool) -> tuple:
        """``(x, y)`` for Keras' ``fit`` (``training``) or ``evaluate``, with ``kwargs``
        changed to match: where XLA compiles the steps (one replica), `padded_batches` of the
        arrays in ``x``, ``y`` and ``sample_weight`` (shuffled as ``fit`` shuffles; in order
        for ``evaluate``), and of a ``validation_split`` or ``validation_data`` of arrays; else
        as they came. Calls that Keras would refuse, or that batch otherwise (a step count
        given, ``shuffle="batch"``, ``class_weight``), are left to Keras."""
        steps = "steps_per_epoch" if training else "steps"
        strategy = getattr(self, "distribute_strategy", None) or tf.distribute.get_strategy()
        if not fills_up_batches(getattr(self, "_eval_jit", False), strategy):
            return x, y
        batch_size = kwargs.get("batch_size") or 32  # Keras' default
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)):
            validation = _array_columns(*(*validation, None, None)[:3])
        columns = _array_columns(x, y, kwargs.get("sample_weight"))
        split = kwargs.get("validation_split") or 0.0
        n = 0 if columns is None else len(columns["x"])
        held_out = n - math.floor(n * (1.0 - split)) if split else 0
        if (
            columns is not None
            and kwargs.get(steps) is None
            and kwargs.get("class_weight") is None
            and kwargs.get("shuffle", True) in (True, False)
            and not (split and not 0 < held_out < n)  # Keras says what is wrong with it
        ):
            if held_out and kwargs.get("validation_data") is None:  # else Keras ignores it
                validation = {k: v[n - held_out :] for k, v in columns.items()}
                columns = {k: v[: n - held_out] for k, v in columns.items()}
            shuffle = kwargs.pop("shuffle", training)
            for key in ("batch_size", "sample_weight", "validation_split"):
                kwargs.pop(key, None)
            x, y = padded_batches(columns, batch_size, shuffle=shuffle), None
        if isinstance(validation, dict) and kwargs.get("validation_steps") is None:
            size = kwargs.pop("validation_batch_size", None) or batch_size
            kwargs["validation_data"] = padded_batches(validation, size)
        return x, y

    def _build_optimizer(self) -> None:
        """Creates the optimizer's variables before Keras traces the train step (Keras 3 builds
        it inside that trace): variables made during a `tf.function`'s first trace make it
        trace the whole step twice, a third of ``fit``'s first call on the benchmark flow."""
        layers = [*self.flow_layers, getattr(self, "base_layer", None)]
        if getattr(self, "optimizer", None) is not None and all(
            layer is None or layer.built for layer in layers
        ):
            build_optimizer(self)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, with ``fit``'s choice of ``steps_per_execution`` and its
        batches of one shape for arrays."""
        kwargs = _by_name(args, kwargs, _EVALUATE_PARAMETERS, "evaluate")
        self._refuse_dropped_weights(y, kwargs.get("sample_weight"))
        x = self._check_domain(x, "x")
        x, y = self._one_shape(x, y, kwargs, training=False)
        return self._execution_steps().run(
            self,
            kwargs.get("callbacks"),
            (kwargs.get("steps"),),
            lambda: super(FlowModel, self).evaluate(x, y, **kwargs),
            unsized(x, kwargs.get("steps")),
        )

    def _execution_steps(self) -> StepsPerExecution:
        steps = getattr(self, "_auto_steps", None)
        if steps is None:  # compiled by Keras' own path (e.g. a loaded model)
            steps = StepsPerExecution(None)
            object.__setattr__(self, "_auto_steps", steps)
        return steps

    def _check_domain(self, data, arg: str, noise: bool | None = None):
        """Refuses data outside the flow's `data_domain` (where it would give NaN) as it
        enters: at once for arrays and eager tensors, as the batches come for a
        `tf.data.Dataset`. Returns ``data`` (a dataset with the check attached)."""
        if self.data_domain is None or data is None:
            return data
        low, high = self.data_domain
        if self.dequantize if noise is None else noise:
            high -= 1.0  # the noise adds up to 1
        if isinstance(data, tf.data.Dataset):

            def check(*batch):
                x = batch[0]
                x = x["x"] if isinstance(x, dict) else x[0] if isinstance(x, (tuple, list)) else x
                x = tf.cast(x, self.flow_dtype)
                message = f"`{arg}` has values outside [{low:g}, {high:g}], the flow domain"
                with tf.control_dependencies(
                    [
                        tf.debugging.assert_greater_equal(x, tf.cast(low, x.dtype), message),
                        tf.debugging.assert_less_equal(x, tf.cast(high, x.dtype), message),
                    ]
                ):
                    return tf.nest.map_structure(tf.identity, batch if len(batch) > 1 else batch[0])

            return data.map(check)
        x = data[0] if isinstance(data, (tuple, list)) else data
        if isinstance(x, (tuple, list)):  # fit((x, context))
            x = x[0]
        if isinstance(x, np.ndarray) or (tf.is_tensor(x) and tf.executing_eagerly()):
            check_in_domain(np.asarray(x), low, high, f"`{arg}`")
        return data

    def compile(self, optimizer="adam", *args, jit_compile="auto", **kwargs):
        """`keras.Model.compile`, with ``jit_compile="auto"`` meaning XLA on wherever TF can
        compile the step: on one replica, or on replicas that are all GPUs/TPUs. Replicas on
        CPUs train without it: TF 2.21's XLA has no CPU collectives (multi-worker), and under
        `MirroredStrategy` on logical CPUs a compiled step reads another device's variable
        (``benchmarks/xla_multireplica.py`` shows both). Under a ``mixed_bfloat16`` policy on
        CPU it is off as well: oneDNN's bfloat16 matmuls beat XLA's there
        (``benchmarks/bf16_fit.py``). XLA runs these flows' train steps
        about 1.2-1.6x faster on CPU (benchmarks/README.md), but compiles anew for every batch
        shape; ``jit_compile=False`` turns it off for training and for the compiled
        ``log_prob``/``sample`` alike."""
        if jit_compile == "auto":
            jit_compile = xla_allowed(tf.distribute.get_strategy()) and not _bfloat16_on_cpu(self)
        object.__setattr__(self, "_eval_jit", bool(jit_compile))
        self._compiled_fns.clear()
        steps = kwargs.pop("steps_per_execution", None)  # None: fit chooses
        object.__setattr__(self, "_auto_steps", StepsPerExecution(steps))
        return super().compile(
            optimizer, *args, jit_compile=jit_compile, steps_per_execution=steps or 1, **kwargs
        )

    def compile_from_config(self, config):
        # Keras skips this for models that override compile(); ours only changes a default.
        config = keras.saving.deserialize_keras_object(config)
        if config.get("steps_per_execution") == 1:  # Keras' default, saved: let fit choose
            config.pop("steps_per_execution")
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=None):
        x, context, _ = self._unpack(inputs)
        return self._log_prob(x, context)

    def _loss(self, data):
        """The batch's mean NLL and its weight in the metrics (the batch size, or the sum of
        the sample weights)."""
        x, context, weight = self._unpack(data)
        nll = -self._log_prob(self._dequantized(x), context)
        if weight is None:
            loss = tf.reduce_mean(nll)
            total = tf.cast(tf.size(nll), tf.float32)
        else:
            weight = tf.cast(tf.reshape(weight, tf.shape(nll)), nll.dtype)
            loss = tf.reduce_sum(nll * weight) / tf.maximum(tf.reduce_sum(weight), 1e-12)
            total = tf.cast(tf.reduce_sum(weight), tf.float32)
        return tf.cast(loss, tf.float32), total

    def _dequantized(self, x):
        if not self.dequantize:
            return x
        return x + tf.random.uniform(tf.shape(x), dtype=x.dtype)

    def _update_metrics(self, loss, weight):
        # Weighted by the batch's size, the metrics are the mean over examples (a short last
        # batch counts for what it holds), and a step whose input ran out (a dataset of
        # unknown length ends that way) updates nothing: an unweighted count would still
        # have been incremented there, halving the reported loss.
        self.nll_tracker.update_state(loss, sample_weight=weight)
        self.bpd_tracker.update_state(bits_per_dim(loss, self.num_dims), sample_weight=weight)
        logs = {m.name: m.result() for m in self.metrics}
        if _keras_reduces_along_axis_0(tf.distribute.get_strategy()):
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def train_step(self, data):
        with tf.GradientTape() as tape, training_mode():
            loss, weight = self._loss(data)
            total = loss + tf.add_n([tf.cast(v, tf.float32) for v in self.losses] or [0.0])
            # Gradients are summed over replicas, so each replica contributes its share.
            total = total / tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self._scale_loss(total)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        if hasattr(self.optimizer, "get_unscaled_gradients"):  # tf-keras mixed precision
            grads = self.optimizer.get_unscaled_gradients(grads)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return self._update_metrics(loss, weight)

    def _scale_loss(self, loss):
        if hasattr(self.optimizer, "scale_loss"):  # Keras 3
            return self.optimizer.scale_loss(loss)
        if hasattr(self.optimizer, "get_scaled_loss"):  # tf-keras LossScaleOptimizer
            return self.optimizer.get_scaled_loss(loss)
        return loss

    def test_step(self, data):
        return self._update_metrics(*self._loss(data))

    @property
    def metrics(self):
        return [self.nll_tracker, self.bpd_tracker]

    def save(self, filepath, *args, **kwargs):
        # Describe the flow before Keras opens the file: an unsavable flow leaves no
        # half-written file behind.
        bijector_to_config(self._flow)
        return super().save(filepath, *args, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "bijector": bijector_to_config(self._flow),
            "event_shape": list(self.event_shape_),
            "context_shape": None if self.context_shape_ is None else list(self.context_shape_),
            "dequantize": self.dequantize,
            **(
                {}
                if self.context_center is None
                else {
                    "context_center": self.context_center.tolist(),
                    "context_scale": self.context_scale.tolist(),
                }
            ),
            **(
                {}
                if self.learned_base is None
                else {"base": keras.saving.serialize_keras_object(self.learned_base)}
            ),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        bijector = bijector_from_config(config.pop("bijector"))
        if "base" in config:
            config["base"] = keras.saving.deserialize_keras_object(config["base"])
        return cls(bijector, **config)
