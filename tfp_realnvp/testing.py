"""A conformance kit for TFP bijectors: the checks our own tests run over every bijector we ship.

Each ``check_*`` function raises ``AssertionError`` with the numbers that disagree;
`assert_conformant` runs them all. The truths they compare against are independent of the
bijector's own formulas: round trips, and the log-determinant of the autodiff Jacobian
(`tf.GradientTape.batch_jacobian` + `tf.linalg.slogdet`).

Run the Jacobian checks in float64: a float32 bijector only agrees to ~1e-4.

TFP's bijector cache answers ``forward(inverse(x))`` with the cached ``x`` itself, so every
round trip here passes ``tf.identity`` copies and really evaluates both directions.

A bijector is a function: `check_call_order` runs first and fails a bijector whose calls change
a variable, or whose results depend on which of ``forward``, ``inverse`` and the log-dets was
called first (data-dependent initialisation belongs in an explicit call such as
`tfp_realnvp.initialize`).

#### Examples

>>> import tensorflow as tf
>>> import tfp_realnvp as trn
>>> from tfp_realnvp import testing
>>> flow = trn.real_nvp([3], num_couplings=2, hidden_units=[8], dtype=tf.float64)
>>> testing.perturb_variables(flow, seed=0)
>>> testing.assert_conformant(flow, event_shape=[3])
>>> x, z = testing.edge_points([3]), testing.edge_points([3], seed=1)  # entries up to ±100
>>> testing.check_bijective_and_finite(flow, x, z, event_rank=1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._functions import own_function
from tfp_realnvp.traversal import conditional_kwargs

__all__ = [
    "assert_conformant",
    "check_batch_shapes",
    "check_bijective_and_finite",
    "check_call_order",
    "check_compiled_agreement",
    "check_context_used",
    "check_gradients",
    "check_log_det_consistency",
    "check_log_det_jacobian",
    "check_round_trip",
    "edge_points",
    "perturb_variables",
]

tfb = tfp.bijectors


def perturb_variables(bijector, seed: int = 0, stddev: float = 0.2) -> None:
    """Adds Gaussian noise to every trainable variable of ``bijector``.

    Our couplings start as the identity (zero-initialised last layers), where every check
    passes trivially; perturb them first to test the math.
    """
    rng = np.random.default_rng(seed)
    for v in bijector.trainable_variables:
        v.assign_add(rng.normal(0.0, stddev, v.shape).astype(v.dtype.as_numpy_dtype))


def _sample(shape, dtype, seed, sampler=None) -> tf.Tensor:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape) if sampler is None else sampler(rng, tuple(shape))
    return tf.constant(values, dtype=dtype)


def _kwargs(bijector, context_shape, batch_shape, dtype, seed) -> dict:
    if context_shape is None:
        return {}
    context = _sample(tuple(batch_shape) + tuple(context_shape), dtype, seed + 1)
    return conditional_kwargs(bijector, context)


def _assert_close(name, got, want, atol, rtol):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shape {got.shape} != expected {want.shape}")
    if not np.allclose(got, want, atol=atol, rtol=rtol):
        err = np.max(np.abs(got - want))
        raise AssertionError(f"{name}: max abs error {err:.3g} > atol={atol} (rtol={rtol})")


def _variable_state(bijector) -> dict:
    return {v.ref(): (v, v.numpy().copy()) for v in bijector.variables}


def _restore(state: dict) -> None:
    for v, value in state.values():
        v.assign(value)


def _check_state(bijector, state: dict, what: str) -> None:
    now = {v.ref(): v for v in bijector.variables}
    created = [v.name for ref, v in now.items() if ref not in state]
    if created:
        raise AssertionError(f"{what} created variables {created}")
    for v, value in state.values():
        current = v.numpy()
        if not np.array_equal(current, value):
            err = np.max(np.abs(current - value))
            raise AssertionError(f"{what} changed variable {v.name!r} (max change {err:.3g})")


def check_call_order(
    bijector: tfb.Bijector,
    x: tf.Tensor,
    z: tf.Tensor,
    event_rank: int,
    atol: float = 1e-8,
    **kwargs,
) -> None:
    """``forward``, ``inverse``, ``forward_log_det_jacobian`` and ``inverse_log_det_jacobian``
    (at latent ``z`` and data ``x``, fresh copies each time) give the same results whichever
    of them is called first, and no call changes or creates a variable.

    Each call goes first once, the others following in a fixed order. Every variable is
    compared with its value before the calls after each call, and restored (also when this
    check fails) before the next order and at the end. State kept outside variables is not
    restored, so it shows as results that differ between orders. Runs eagerly.
    """
    calls = {
        "forward": lambda: bijector.forward(tf.identity(z), **kwargs),
        "inverse": lambda: bijector.inverse(tf.identity(x), **kwargs),
        "fldj": lambda: _ldj(
            bijector.forward_log_det_jacobian, tf.identity(z), event_rank, **kwargs
        ),
        "ildj": lambda: _ldj(
            bijector.inverse_log_det_jacobian, tf.identity(x), event_rank, **kwargs
        ),
    }
    names = list(calls)
    state = _variable_state(bijector)
    first: dict[str, tuple] = {}  # call -> (its result, the order it came from)
    try:
        for k in range(len(names)):
            order = names[k:] + names[:k]
            _restore(state)
            for i, name in enumerate(order):
                out = calls[name]()
                where = f"{name} (call {i + 1} of {' -> '.join(order)})"
                _check_state(bijector, state, f"calling {where}")
                if name not in first:
                    first[name] = out, " -> ".join(order)
                    continue
                want, want_order = first[name]
                _assert_close(f"{where} vs {name} in {want_order}", out, want, atol, 1e-6)
    finally:
        _restore(state)


def check_round_trip(bijector, x, z=None, atol=1e-8, rtol=1e-6, **kwargs) -> None:
    """``forward(inverse(x)) == x`` for data ``x`` and ``inverse(forward(z)) == z`` for latent
    ``z`` (default ``x``, for bijectors that keep the shape), cache defeated."""
    z = x if z is None else z
    z_x = bijector.inverse(tf.identity(x), **kwargs)
    _assert_close(
        "forward(inverse(x))", bijector.forward(tf.identity(z_x), **kwargs), x, atol, rtol
    )
    y = bijector.forward(tf.identity(z), **kwargs)
    _assert_close("inverse(forward(z))", bijector.inverse(tf.identity(y), **kwargs), z, atol, rtol)


def _ldj(fn, x, event_rank: int, **kwargs) -> tf.Tensor:
    """A log-det broadcast to the batch shape (constant-Jacobian bijectors may return a scalar);
    any other shape fails, naming the log-det, the shape it has and the one expected."""
    ldj = fn(x, event_rank, **kwargs)
    batch = tuple(x.shape[: x.shape.rank - event_rank])
    if ldj.shape.rank != 0 and tuple(ldj.shape) != batch:
        raise AssertionError(
            f"{fn.__name__}: shape {tuple(ldj.shape)} for input {tuple(x.shape)} with "
            f"event_rank={event_rank}; expected the batch shape {batch} (or a scalar)."
        )
    return tf.broadcast_to(ldj, tf.shape(x)[: x.shape.rank - event_rank])


def _autodiff_log_det(fn: Callable, x, event_rank: int, kwargs: dict | None = None) -> tf.Tensor:
    """``log|det d fn(x, **kwargs) / dx|`` per batch member, from the full autodiff Jacobian.

    One reverse pass gives every row of every member's Jacobian: each member enters as ``n``
    copies (``n`` the event size), copy ``k`` contributing its output ``k`` to the summed
    objective, so the gradient at copy ``k`` is row ``k``. Batch members must not interact,
    as `tf.GradientTape.batch_jacobian` assumes too; unlike it, nothing is traced (its ``pfor``
    traces a function on every eager call, most of this check's time)."""
    batch_rank = x.shape.rank - event_rank
    batch_shape, event = tf.shape(x)[:batch_rank], x.shape[batch_rank:]
    n = int(np.prod(event))
    copies = tf.repeat(tf.reshape(x, [-1, n]), n, axis=0)  # member b: rows b*n .. b*n + n-1
    picks = tf.tile(tf.eye(n, dtype=x.dtype), [tf.shape(copies)[0] // n, 1])

    def repeated(t):  # a context of the batch, copied as its members are
        if not tf.is_tensor(t) or t.shape[:batch_rank] != x.shape[:batch_rank]:
            return t
        return tf.repeat(tf.reshape(t, [-1, *t.shape[batch_rank:]]), n, axis=0)

    kwargs = tf.nest.map_structure(repeated, kwargs or {})
    with tf.GradientTape() as tape:
        tape.watch(copies)
        out = fn(tf.reshape(copies, tf.concat([[-1], event], 0)), **kwargs)
        picked = tf.reduce_sum(tf.reshape(out, [-1, n]) * picks)
    jacobians = tf.reshape(tape.gradient(picked, copies), [-1, n, n])
    _, log_abs_det = tf.linalg.slogdet(jacobians)
    return tf.reshape(log_abs_det, batch_shape)


def check_log_det_jacobian(
    bijector: tfb.Bijector,
    x: tf.Tensor,
    event_rank: int,
    atol: float = 1e-8,
    *,
    inverse: bool = True,
    **kwargs,
) -> None:
    """fldj at latent ``x`` and (unless ``inverse=False``, as in TFP's own check) ildj at
    ``forward(x)`` against the autodiff Jacobian, through both of TFP's paths: the log-det
    computed directly, and the one cached by a ``forward`` or ``inverse`` call."""
    if x.dtype != tf.float64:
        raise ValueError(f"run the Jacobian check in float64; `x` has dtype {x.dtype.name}.")
    want = _autodiff_log_det(bijector.forward, x, event_rank, kwargs)
    direct = _ldj(bijector.forward_log_det_jacobian, tf.identity(x), event_rank, **kwargs)
    _assert_close("fldj (direct) vs autodiff", direct, want, atol, 0)
    x_c = tf.identity(x)
    y = bijector.forward(x_c, **kwargs)
    cached = _ldj(bijector.forward_log_det_jacobian, x_c, event_rank, **kwargs)
    _assert_close("fldj (after forward) vs autodiff", cached, want, atol, 0)
    if not inverse:
        return

    y = tf.identity(y)
    want_inv = _autodiff_log_det(bijector.inverse, y, event_rank, kwargs)
    direct = _ldj(bijector.inverse_log_det_jacobian, tf.identity(y), event_rank, **kwargs)
    _assert_close("ildj (direct) vs autodiff", direct, want_inv, atol, 0)
    y_c = tf.identity(y)
    bijector.inverse(y_c, **kwargs)
    cached = _ldj(bijector.inverse_log_det_jacobian, y_c, event_rank, **kwargs)
    _assert_close("ildj (after inverse) vs autodiff", cached, want_inv, atol, 0)


def check_log_det_consistency(
    bijector: tfb.Bijector,
    x: tf.Tensor,
    event_rank: int,
    atol: float = 1e-8,
    *,
    z: tf.Tensor | None = None,
    rtol: float = 1e-6,
    **kwargs,
) -> None:
    """``ildj(x) == -fldj(inverse(x))`` at data ``x`` and, given latent ``z``,
    ``fldj(z) == -ildj(forward(z))``, each log-det computed directly."""
    fldj, ildj = bijector.forward_log_det_jacobian, bijector.inverse_log_det_jacobian
    pairs = [("ildj(x) vs -fldj(inverse(x))", x, bijector.inverse, ildj, fldj)]
    if z is not None:
        pairs.append(("fldj(z) vs -ildj(forward(z))", z, bijector.forward, fldj, ildj))
    for name, t, move, ldj, back_ldj in pairs:
        moved = move(tf.identity(t), **kwargs)
        here = _ldj(ldj, tf.identity(t), event_rank, **kwargs)
        there = _ldj(back_ldj, tf.identity(moved), event_rank, **kwargs)
        _assert_close(name, here, -there, atol, rtol)


def edge_points(
    event_shape: Sequence[int],
    low: float = -np.inf,
    high: float = np.inf,
    magnitude: float = 100.0,
    dtype: tf.DType = tf.float64,
    seed: int = 0,
) -> tf.Tensor:
    """A batch of points at and near the edges of the domain ``[low, high]`` (per unit), for
    `check_bijective_and_finite`: an infinite bound stands in as ``-magnitude`` or
    ``magnitude``, a finite one is used as it is and approached to within 1e-9 of the range.

    The rows (events) are: every unit at the lower edge, every unit at the upper edge, the
    two alternating, each unit at a random edge, every unit just inside each edge, and
    uniform draws between the edges.
    """
    lo = -magnitude if np.isneginf(low) else float(low)
    hi = magnitude if np.isposinf(high) else float(high)
    if not lo < hi:
        raise ValueError(f"need `low` < `high`; got low={low}, high={high}.")
    size = int(np.prod(event_shape))
    inside = 1e-9 * (hi - lo)
    rng = np.random.default_rng(seed)
    rows = [
        np.full(size, lo),
        np.full(size, hi),
        np.where(np.arange(size) % 2 == 0, lo, hi),
        np.where(rng.random(size) < 0.5, lo, hi),
        np.full(size, lo + inside),
        np.full(size, hi - inside),
        rng.uniform(lo, hi, size),
    ]
    return tf.constant(np.stack(rows).reshape(len(rows), *event_shape), dtype)


def check_bijective_and_finite(
    bijector: tfb.Bijector,
    x: tf.Tensor,
    z: tf.Tensor,
    event_rank: int,
    atol: float = 1e-8,
    rtol: float = 1e-6,
    **kwargs,
) -> None:
    """The checks of TFP's ``assert_bijective_and_finite``, with TFP's cache defeated: at data
    ``x`` and latent ``z`` (points near the edges of the domains: `edge_points`),
    ``inverse(x)``, ``forward(z)`` and both log-dets are finite, both round trips return
    their input, and the two directions' log-dets agree (`check_log_det_consistency`)."""
    outputs = _all_outputs(bijector, tf.identity(x), tf.identity(z), event_rank, kwargs)
    for name, t in zip(("inverse(x)", "ildj(x)", "forward(z)", "fldj(z)"), outputs, strict=True):
        bad = ~np.isfinite(np.asarray(t))
        if bad.any():
            raise AssertionError(f"{name}: {int(bad.sum())} of {bad.size} values are not finite")
    check_round_trip(bijector, x, z, atol=atol, rtol=rtol, **kwargs)
    check_log_det_consistency(bijector, x, event_rank, atol, z=z, rtol=rtol, **kwargs)


def check_batch_shapes(
    bijector,
    event_shape: Sequence[int],
    dtype=tf.float64,
    batch_shapes: Sequence[Sequence[int]] = ((), (3,), (2, 3)),
    context_shape: Sequence[int] | None = None,
    seed: int = 0,
    sampler: Callable | None = None,
    atol: float = 1e-8,
) -> None:
    """For several batch shapes (none too), outputs have the shapes the bijector's event shapes
    promise and log-dets the batch shape (or are scalars, for constant-Jacobian bijectors), and
    every value equals the one the same event gets in a flat batch ``[N, *event]``."""
    rank = len(event_shape)
    latent = tuple(bijector.inverse_event_shape(event_shape))
    for batch in batch_shapes:
        x = _sample(tuple(batch) + tuple(event_shape), dtype, seed, sampler)
        z = _sample(tuple(batch) + latent, dtype, seed)
        context = None
        if context_shape is not None:
            context = _sample(tuple(batch) + tuple(context_shape), dtype, seed + 1)
        kw = {} if context is None else conditional_kwargs(bijector, context)
        got = {}  # each output from its own fresh input: no cached pass answers another
        for name, fn, t, want in (
            ("inverse", bijector.inverse, x, z.shape),
            ("forward", bijector.forward, z, x.shape),
        ):
            got[name] = fn(tf.identity(t), **kw)
            if tuple(got[name].shape) != tuple(want):
                raise AssertionError(f"{name}: shape {tuple(got[name].shape)} for input {t.shape}")
        for name, fn, t in (
            ("ildj", bijector.inverse_log_det_jacobian, x),
            ("fldj", bijector.forward_log_det_jacobian, z),
        ):
            ldj = fn(tf.identity(t), rank, **kw)
            scalar_ok = bijector.is_constant_jacobian and ldj.shape.rank == 0
            if tuple(ldj.shape) != tuple(batch) and not scalar_ok:
                raise AssertionError(f"{name}: shape {tuple(ldj.shape)} for batch {batch}")
            got[name] = tf.broadcast_to(ldj, batch)
        outputs = tuple(got[k] for k in ("inverse", "ildj", "forward", "fldj"))
        _check_against_flat_batch(
            bijector, outputs, x, z, context, batch, event_shape, latent, atol
        )


def _check_against_flat_batch(bijector, got, x, z, context, batch, event_shape, latent, atol):
    """Outputs ``got`` (inverse, ildj, forward, fldj) for the batch shape ``batch`` against the
    same events as one flat batch."""
    rank = len(event_shape)

    def flat(t, event):
        return tf.reshape(t, (-1, *event))

    flat_kw = {}
    if context is not None:
        flat_kw = conditional_kwargs(bijector, flat(context, context.shape[len(batch) :]))
    want = _all_outputs(bijector, flat(x, event_shape), flat(z, latent), rank, flat_kw)
    for name, a, b, event in zip(
        ("inverse", "ildj", "forward", "fldj"),
        got,
        want,
        (latent, (), event_shape, ()),
        strict=True,
    ):
        where = f"{name} for batch shape {tuple(batch)} vs the same events as a flat batch"
        _assert_close(where, flat(a, event), b, atol, 1e-6)


def _all_outputs(bijector, x, z, event_rank, kwargs):
    inv = bijector.inverse(x, **kwargs)
    ildj = _ldj(bijector.inverse_log_det_jacobian, x, event_rank, **kwargs)
    fwd = bijector.forward(z, **kwargs)
    fldj = _ldj(bijector.forward_log_det_jacobian, tf.identity(z), event_rank, **kwargs)
    return inv, ildj, fwd, fldj


def check_compiled_agreement(
    bijector, x, event_rank: int, z=None, atol=1e-6, jit_compile: bool = True, **kwargs
) -> None:
    """Eager, `tf.function` and (optionally) XLA-compiled evaluation agree, on data ``x`` and
    latent ``z`` (default ``x``)."""
    z = x if z is None else z
    eager = _all_outputs(bijector, x, z, event_rank, kwargs)
    modes = {"tf.function": False}
    if jit_compile:
        modes["jit_compile=True"] = True
    for mode, jit in modes.items():
        fn = own_function(
            lambda a, b, kw: _all_outputs(bijector, a, b, event_rank, kw), jit_compile=jit
        )
        got = fn(tf.identity(x), tf.identity(z), kwargs)
        for name, a, b in zip(("inverse", "ildj", "forward", "fldj"), got, eager, strict=False):
            _assert_close(f"{name} under {mode}", a, b, atol, 1e-5)


def _density_loss(bijector, x, event_rank: int, kwargs) -> tf.Tensor:
    z = bijector.inverse(tf.identity(x), **kwargs)  # fresh tensors: TFP's cache cannot answer
    ildj = bijector.inverse_log_det_jacobian(tf.identity(x), event_rank, **kwargs)
    return tf.reduce_sum(z**2) - tf.reduce_sum(ildj)


def check_gradients(
    bijector,
    x,
    event_rank: int,
    require_nonzero: bool = True,
    step: float = 1e-6,
    rtol: float = 1e-5,
    **kwargs,
) -> None:
    """A density loss sends finite (and, by default, non-zero) gradients to every trainable
    variable; in float64, their derivative along a random direction of all the variables
    matches central finite differences of the loss (``step``), to ``rtol`` of the largest
    of the two and the loss (a gradient cut by ``stop_gradient``, or an implicit one gone
    wrong, is finite and non-zero but not this)."""
    variables = bijector.trainable_variables
    with tf.GradientTape() as tape:
        loss = _density_loss(bijector, x, event_rank, kwargs)
    grads = tape.gradient(loss, variables)
    for v, g in zip(variables, grads, strict=False):
        if g is None:
            raise AssertionError(f"no gradient reaches variable {v.name}")
        g = tf.convert_to_tensor(g)
        if not np.all(np.isfinite(g.numpy())):
            raise AssertionError(f"non-finite gradient for variable {v.name}")
        if require_nonzero and not np.any(g.numpy() != 0):
            raise AssertionError(f"zero gradient for variable {v.name}")
    if x.dtype != tf.float64 or any(v.dtype != tf.float64 for v in variables):
        return
    rng = np.random.default_rng(0)
    direction = [rng.normal(size=v.shape) for v in variables]
    analytic = sum(
        float(np.sum(tf.convert_to_tensor(g).numpy() * d))
        for g, d in zip(grads, direction, strict=True)
    )
    start = [v.numpy() for v in variables]

    def loss_at(t: float) -> float:
        for v, v0, d in zip(variables, start, direction, strict=True):
            v.assign(v0 + t * d)
        return float(_density_loss(bijector, x, event_rank, kwargs))

    try:
        numeric = (loss_at(step) - loss_at(-step)) / (2 * step)
    finally:
        for v, v0 in zip(variables, start, strict=True):
            v.assign(v0)
    scale = max(abs(analytic), abs(numeric), abs(float(loss)), 1.0)
    if abs(analytic - numeric) > rtol * scale:
        raise AssertionError(
            f"the gradient along a random direction is {analytic:.8g}, but finite differences "
            f"of the loss give {numeric:.8g}: a gradient path is cut or wrong"
        )


def check_context_used(
    bijector, x, event_rank: int, context_shape: Sequence[int], seed: int = 0
) -> None:
    """Changing the context changes the output: it really reaches the conditioners."""
    batch = tuple(x.shape[: x.shape.rank - event_rank])
    c1 = _sample(batch + tuple(context_shape), x.dtype, seed + 2)
    c2 = _sample(batch + tuple(context_shape), x.dtype, seed + 3)
    z1 = bijector.inverse(tf.identity(x), **conditional_kwargs(bijector, c1))
    z2 = bijector.inverse(tf.identity(x), **conditional_kwargs(bijector, c2))
    if np.allclose(z1, z2):
        raise AssertionError("the output does not depend on the context")


def assert_conformant(
    bijector,
    event_shape: Sequence[int],
    *,
    dtype=tf.float64,
    batch_size: int = 4,
    context_shape: Sequence[int] | None = None,
    seed: int = 0,
    jit_compile: bool = True,
    require_nonzero_gradients: bool = True,
    atol: float = 1e-8,
    sampler: Callable | None = None,
) -> None:
    """Runs every check of this module on ``bijector`` for events of ``event_shape``.

    Args:
      bijector: the bijector; float64 unless ``dtype`` says otherwise.
      event_shape: the event shape the bijector acts on.
      dtype: dtype of the test inputs (float64 for the Jacobian checks to be tight).
      batch_size: batch size of the test inputs.
      context_shape: for conditional flows, the shape of one example's context.
      seed: seed of the test inputs.
      jit_compile: also compare against an XLA-compiled run.
      require_nonzero_gradients: demand a non-zero gradient for every variable.
      atol: absolute tolerance of the log-det and round-trip checks.
      sampler: ``sampler(rng, shape) -> array`` drawing the test inputs (data-side points)
        for bijectors whose ``inverse`` takes a restricted domain, e.g. ``[0, 1]`` for a
        logit; standard normal by default.
    """
    event_shape = tuple(event_shape)
    rank = len(event_shape)
    latent = tuple(bijector.inverse_event_shape(event_shape))
    x = _sample((batch_size, *event_shape), dtype, seed, sampler)
    z = _sample((batch_size, *latent), dtype, seed + 7)
    kw = _kwargs(bijector, context_shape, (batch_size,), dtype, seed)
    check_call_order(bijector, x, z, rank, atol=atol, **kw)
    check_round_trip(bijector, x, z, atol=atol, **kw)
    if dtype == tf.float64:
        check_log_det_jacobian(bijector, z, rank, atol=atol, **kw)
    check_log_det_consistency(bijector, x, rank, atol=atol, z=z, **kw)
    check_batch_shapes(
        bijector,
        event_shape,
        dtype,
        context_shape=context_shape,
        seed=seed,
        sampler=sampler,
        atol=atol,
    )
    check_compiled_agreement(bijector, x, rank, z, jit_compile=jit_compile, **kw)
    if bijector.trainable_variables:
        check_gradients(bijector, x, rank, require_nonzero=require_nonzero_gradients, **kw)
    if context_shape is not None:
        check_context_used(bijector, x, rank, context_shape, seed)
