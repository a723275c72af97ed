"""Export a trained flow as a TensorFlow SavedModel that serves without this package or TFP."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfp_realnvp._files import atomic_path
from tfp_realnvp.model import FlowModel
from tfp_realnvp.verification import ATOL, RTOL, Probe, compare, probes

__all__ = ["SIGNATURES", "export_saved_model"]

SIGNATURES = ("serving_default", "log_prob", "sample", "forward", "inverse")


def _shaped(t: tf.Tensor, name: str, shape: list, signature: str) -> tf.Tensor:
    """``t`` once an in-graph check found it of ``shape`` (``None`` for any size, shown as
    ``N``), else an error that says so.

    The signatures declare their inputs with an open shape: with ``[None, *shape]`` TensorFlow
    trusts the declared rank, folds any check of it away and fails deep in the graph instead
    (``Incompatible shapes: [3,14] vs. [13]`` at some node) when a client sends another; a
    loaded signature given a ``count`` of shape ``[1]`` failed with ``In[0] should be a
    scalar``.
    """
    actual = tf.shape(t)
    fixed = [i for i, d in enumerate(shape) if d is not None]
    ok = tf.cond(
        tf.equal(tf.size(actual), len(shape)),
        lambda: tf.reduce_all(
            tf.equal(tf.gather(actual, tf.constant(fixed, tf.int32)), [shape[i] for i in fixed])
        ),
        lambda: tf.constant(False),
    )
    dims = ", ".join("N" if d is None else str(d) for d in shape)
    expected = f"have shape [{dims}]" if shape else "be a scalar"
    message = f"{signature}: `{name}` must {expected}; got shape"
    check = tf.debugging.Assert(ok, [message, actual], summarize=8)
    # The check picks the branch, so nothing fails on a wrong shape before it does. Not
    # `ensure_shape`: given a fully known shape (a scalar `count`), Grappler took it as the
    # input's shape, folded the check to true and failed with TensorFlow's own message. The
    # other branch's zeros are never returned.
    with tf.control_dependencies([check]):
        empty = tf.zeros([0 if d is None else d for d in shape], t.dtype)
        static = [-1 if d is None else d for d in shape]
        return tf.cond(ok, lambda: tf.reshape(t, static), lambda: empty)


def _rows(t: tf.Tensor, name: str, shape: list[int], signature: str) -> tf.Tensor:
    """``t`` checked in the graph to be a batch ``[N, *shape]`` (see `_shaped`)."""
    return _shaped(t, name, [None, *shape], signature)


def _serving_module(model: FlowModel) -> tuple[tf.Module, dict]:
    event = list(model.event_shape_)
    dtype = model.flow_dtype
    conditional = model.is_conditional

    def rows(name: str) -> tf.TensorSpec:
        return tf.TensorSpec(None, dtype, name=name)  # any shape: _rows checks it in the graph

    extra = [rows("context")] if conditional else []

    def inputs(signature: str, name: str, t, context):
        t = _rows(t, name, event, signature)
        if conditional:
            context = _rows(context, "context", list(model.context_shape_), signature)
        return t, model.bijector_kwargs(context if conditional else None)

    def log_prob(x, context=None):
        x, kw = inputs("log_prob", "x", x, context)
        return {"log_prob": model.distribution.log_prob(x, bijector_kwargs=kw)}

    def sample(count, seed, context=None):
        count = _shaped(count, "count", [], "sample")
        seed = _shaped(seed, "seed", [2], "sample")
        positive = tf.debugging.Assert(
            count >= 0, ["sample: `count` must be >= 0; got", count], summarize=1
        )
        with tf.control_dependencies([positive]):
            z = model.base_sample(tf.identity(count), seed)
        if conditional:
            context = _rows(context, "context", list(model.context_shape_), "sample")
            rows = tf.shape(context)[0]
            fits = tf.logical_or(tf.equal(rows, 1), tf.equal(rows, count))
            message = "sample: `context` must have 1 row or `count` rows; got"
            with tf.control_dependencies([tf.debugging.Assert(fits, [message, rows])]):
                shape = tf.concat([[count], model.context_shape_], 0)
                context = tf.broadcast_to(context, shape)
        kw = model.bijector_kwargs(context if conditional else None)
        return {"samples": model.bijector.forward(z, **kw)}

    def forward(z, context=None):
        z, kw = inputs("forward", "z", z, context)
        return {
            "x": model.bijector.forward(z, **kw),
            "log_det_jacobian": model.bijector.forward_log_det_jacobian(z, len(event), **kw),
        }

    def inverse(x, context=None):
        x, kw = inputs("inverse", "x", x, context)
        return {
            "z": model.bijector.inverse(x, **kw),
            "log_det_jacobian": model.bijector.inverse_log_det_jacobian(x, len(event), **kw),
        }

    count_and_seed = [tf.TensorSpec(None, tf.int32, name=n) for n in ("count", "seed")]
    module, signatures = traced_module(
        model,
        {
            "log_prob": (log_prob, [rows("x"), *extra]),
            "sample": (sample, [*count_and_seed, *extra]),
            "forward": (forward, [rows("z"), *extra]),
            "inverse": (inverse, [rows("x"), *extra]),
        },
    )
    signatures["serving_default"] = signatures["log_prob"]
    return module, signatures


def traced_module(
    model: FlowModel, functions: dict[str, tuple[Callable, list[tf.TensorSpec]]]
) -> tuple[tf.Module, dict[str, tf.types.experimental.ConcreteFunction]]:
    """Traces each of ``functions`` (name -> function and its input specs) once, and returns
    a `tf.Module` holding the traced functions and the flow's variables, for
    `tf.saved_model.save`, with the traced functions by name.

    Every variable the functions capture must be tracked by the saved object: holding the raw
    variables (not the Keras model or TFP objects) keeps the SavedModel free of both. The
    module holds traced (concrete) functions, not `tf.function`s: `tf.saved_model.save`
    traces a `tf.function` attribute once more in its own context (the whole flow again, a
    third of an export's time), while a concrete function is saved as it is. Loaded, each is
    still callable by name (``loaded.log_prob(x)``).
    """
    module = tf.Module()
    module.flow_variables = list(model.distribution.variables)
    traced = {}
    for name, (function, specs) in functions.items():
        traced[name] = tf.function(function, input_signature=specs).get_concrete_function()
        setattr(module, name, traced[name])
    return module, traced


def export_saved_model(
    model: FlowModel,
    path: str | os.PathLike,
    overwrite: bool = False,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Path:
    """Writes ``model`` as a SavedModel at ``path`` and returns the path.

    Signatures (inputs -> outputs; add a ``context`` input for conditional flows):

    - ``log_prob`` and ``serving_default``: ``x [N, *event]`` -> ``log_prob [N]``;
    - ``sample``: ``count`` (int32 scalar), ``seed`` (int32 ``[2]``) -> ``samples``;
    - ``forward``: ``z`` -> ``x``, ``log_det_jacobian``;
    - ``inverse``: ``x`` -> ``z``, ``log_det_jacobian``.

    Every signature checks its inputs in the graph and names what it expects (``log_prob:
    `x` must have shape [N, 13]; got shape [3 14]``); their specs leave the shape open for that
    reason. Load with ``tf.saved_model.load(path)`` (call
    ``loaded.signatures["log_prob"](x=...)`` or ``loaded.log_prob(x)``) or serve with TF
    Serving: the graph holds only core TensorFlow ops, so neither tfp_realnvp nor TensorFlow
    Probability is needed there.

    The SavedModel verifies itself before it is published: it is written beside ``path``,
    loaded back, and every signature is run on probe batches of several sizes drawn from the
    model (`tfp_realnvp.verification`) and compared with the model's own outputs
    (``|exported - model| <= atol + rtol * |model|``). Only then is it moved into place
    whole; on any failure or disagreement ``path`` is left as it was.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
      tfp_realnvp.verification.ExportMismatchError: the exported graph disagrees with the
        model on the probes (nothing is written).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    module, signatures = _serving_module(model)
    with atomic_path(path, directory=True) as tmp:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        _verify(tmp, model, rtol, atol, target=path)
    return path


def _verify(path: Path, model: FlowModel, rtol: float, atol: float, target: Path) -> None:
    """Loads the SavedModel at ``path`` and runs every signature on probe batches against
    ``model`` (`tfp_realnvp.verification`); a refusal names ``target``, the path the user
    asked for (``path`` is where it is staged)."""
    signatures = tf.saved_model.load(str(path)).signatures
    answers: dict = {}  # (signature, probe) -> its outputs: each graph runs once per probe

    def run(name: str, probe: Probe, output: str, context=None, **inputs) -> np.ndarray:
        key = (name, id(probe))
        if key not in answers:
            context = probe.context if context is None else context
            if context is not None:
                inputs["context"] = tf.constant(context)
            answers[key] = signatures[name](**inputs)
        return answers[key][output].numpy()

    def sample(p: Probe) -> tuple[np.ndarray, np.ndarray]:
        count, seed = tf.constant(len(p.drawn_z), tf.int32), tf.constant(p.seed, tf.int32)
        return run("sample", p, "samples", p.drawn_context, count=count, seed=seed), p.drawn_x

    checks = {
        **{
            f"{name} log_prob": lambda p, name=name: (
                run(name, p, "log_prob", x=tf.constant(p.x)),
                p.log_prob,
            )
            for name in ("log_prob", "serving_default")
        },
        "sample": sample,
        "forward x": lambda p: (run("forward", p, "x", z=tf.constant(p.z)), p.x),
        "forward log_det_jacobian": lambda p: (
            run("forward", p, "log_det_jacobian", z=tf.constant(p.z)),
            p.forward_log_det,
        ),
        "inverse z": lambda p: (run("inverse", p, "z", x=tf.constant(p.x)), p.inverse_z),
        "inverse log_det_jacobian": lambda p: (
            run("inverse", p, "log_det_jacobian", x=tf.constant(p.x)),
            p.inverse_log_det,
        ),
    }
    compare(f"export_saved_model {target}", checks, probes(model), rtol=rtol, atol=atol)
