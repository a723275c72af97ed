"""Export a trained flow to TensorFlow Lite: ``log_prob`` and ``sample``, built-in ops only.

The file is a snapshot of the weights: the converter folds every weight into a constant, so
what depends on weights alone is computed once, at export. That is how `LULinear`'s
``W^{-1}`` (a triangular solve, which TensorFlow Lite has no built-in kernel for) becomes a
plain constant matrix in the file. TensorFlow Lite has no random-normal kernel in the
built-in set either, so ``sample`` takes the standard-normal noise as its input.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import tensorflow as tf

from tfp_realnvp._files import atomic_path
from tfp_realnvp.export import traced_module
from tfp_realnvp.model import FlowModel
from tfp_realnvp.traversal import walk
from tfp_realnvp.verification import ATOL, RTOL, compare, probes

__all__ = ["TFLITE_SIGNATURES", "export_tflite", "signatures_of"]

TFLITE_SIGNATURES = ("log_prob", "sample")


def _functions(model: FlowModel) -> tuple[tf.Module, list]:
    dtype = model.flow_dtype
    event = list(model.event_shape_)
    specs = [tf.TensorSpec([None, *event], dtype, name="x")]
    if model.is_conditional:
        specs.append(tf.TensorSpec([None, *model.context_shape_], dtype, name="context"))

    def log_prob_one(args):
        x, context = args[0][None], (args[1][None] if len(args) > 1 else None)
        kwargs = model.bijector_kwargs(context)
        return model.distribution.log_prob(x, bijector_kwargs=kwargs)[0]

    def log_prob(*args):
        # Traced one example at a time, so TFP sees static shapes. Over a batch of unknown
        # size TFP sums a constant log-det (a vector tfb.Scale's) over a shape sliced from
        # the input's, and the converter folds that sum into a constant of the wrong shape:
        # the file kept only the first element (TF 2.21). Vectorised, it is one batch again.
        lp = tf.vectorized_map(log_prob_one, args, fallback_to_while_loop=False)
        return {"log_prob": lp}

    def sample(z, context=None):
        return {"samples": model.bijector.forward(z, **model.bijector_kwargs(context))}

    functions = {"log_prob": (log_prob, specs)}
    if "sample" in signatures_of(model):
        z = tf.TensorSpec([None, *event], dtype, name="z")
        functions["sample"] = (sample, [z, *specs[1:]])
    module, traced = traced_module(model, functions)
    return module, list(traced.values())


def signatures_of(model: FlowModel) -> tuple[str, ...]:
    """The signatures `export_tflite` writes for ``model``: ``log_prob`` and ``sample``, or
    ``log_prob`` alone for a learned base, whose draws standard-normal noise cannot stand for
    (TensorFlow Lite's built-in ops draw no random numbers)."""
    return TFLITE_SIGNATURES if model.learned_base is None else ("log_prob",)


def _verify(path: Path, model: FlowModel, rtol: float, atol: float, target: Path) -> None:
    """Runs the file at ``path`` on probe batches against ``model``
    (`tfp_realnvp.verification`); a refusal names ``target``, the path the user asked for
    (``path`` is where it is staged)."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    run = {name: interpreter.get_signature_runner(name) for name in signatures_of(model)}

    def inputs(context, **named) -> dict:
        return named if context is None else {**named, "context": context}

    checks = {
        "log_prob": lambda p: (
            run["log_prob"](**inputs(p.context, x=p.x))["log_prob"],
            p.log_prob,
        ),
        "sample": lambda p: (
            run["sample"](**inputs(p.drawn_context, z=p.drawn_z))["samples"],
            p.drawn_x,
        ),
    }
    checks = {name: check for name, check in checks.items() if name in run}
    compare(f"export_tflite {target}", checks, probes(model), rtol=rtol, atol=atol)


def _data_ops(graph: tf.Graph) -> list[tf.Operation]:
    """The ops downstream of the function's inputs: what the converter cannot fold into a
    constant (ops that read weights only, such as `LULinear`'s ``W^{-1}``, it folds)."""
    frontier = [t.op for t in graph.inputs if t.dtype != tf.resource]
    seen: dict[tf.Operation, None] = {}
    while frontier:
        op = frontier.pop()
        if op not in seen:
            seen[op] = None
            frontier.extend(c for out in op.outputs for c in out.consumers())
    return list(seen)


def _unsupported(message: str, model: FlowModel, functions: list) -> ValueError:
    """The converter's refusal as one sentence naming each bijector and the op(s) it uses
    that have no built-in kernel."""
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)))
    by_name = {b.name: b for b in walk(model.bijector)}
    culprits: dict[str, dict[str, None]] = {}  # bijector name -> its ops, in order found
    for fn in functions:
        for op in _data_ops(fn.graph):
            if op.type in ops:  # its name is the path of name scopes: the innermost bijector's
                # A scope entered again gets a suffix _1, _2, ... (TF 2.21 and TFP 0.25 put it
                # on the method's scope, inverse_1, and reuse the bijector's).
                scopes = op.name.split("/")
                scopes = [s if s in by_name else re.sub(r"_\d+$", "", s) for s in scopes]
                names = [s for s in scopes if s in by_name]
                if names:
                    culprits.setdefault(names[-1], {})[op.type] = None
    uses = [
        f"{type(by_name[name]).__name__} {name!r} uses {', '.join(sorted(found))}"
        for name in by_name  # in the flow's order
        if (found := culprits.get(name))
    ]
    where = " and ".join(uses) or f"the flow uses {', '.join(ops) or 'ops'}"
    return ValueError(
        f"export_tflite: {where}, which TensorFlow Lite's built-in op set lacks; export this "
        "flow with export_saved_model instead"
    )


def export_tflite(
    model: FlowModel,
    path: str | os.PathLike,
    overwrite: bool = False,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Path:
    """Writes ``model`` as one TensorFlow Lite file at ``path`` and returns the path.

    Signatures (inputs -> outputs; a conditional flow adds a ``context`` input,
    ``[N, *context_shape]``):

    - ``log_prob``: ``x [N, *event]`` -> ``log_prob [N]``;
    - ``sample``: ``z [N, *event]``, standard-normal noise -> ``samples [N, *event]``; not
      for a model with a learned base (`signatures_of`), whose draws standard-normal noise
      cannot stand for: its file holds ``log_prob`` alone.

    Only TensorFlow Lite's built-in ops are used (no TF Select ops): run it with
    ``tf.lite.Interpreter(model_path=path).get_signature_runner("log_prob")(x=x)``. The batch
    size ``N`` is free (the runner resizes its inputs).

    The file verifies itself before it is published: it is written beside ``path``, run in
    TensorFlow Lite's interpreter on probe batches of several sizes drawn from the model
    (`tfp_realnvp.verification`), and each signature's outputs are compared with the model's
    (``|tflite - model| <= atol + rtol * |model|``). Only then is it moved into place whole;
    on any disagreement nothing is written and ``path`` is left as it was.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
      TypeError: for a flow that does not compute in float32.
      ValueError: naming the bijector class(es) and op(s) that have no built-in kernel.
      tfp_realnvp.verification.ExportMismatchError: the converted file disagrees with the
        model on the probes (a converter fault; nothing is written).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if model.flow_dtype != tf.float32:
        raise TypeError(
            f"export_tflite: the flow computes in {model.flow_dtype.name}; TensorFlow Lite's "
            "built-in kernels take float32: build the flow with dtype=tf.float32."
        )
    module, functions = _functions(model)
    names = signatures_of(model)
    try:
        # Through a SavedModel of our own: from_concrete_functions names a lone function
        # "serving_default", not "log_prob".
        with tempfile.TemporaryDirectory() as saved:
            tf.saved_model.save(module, saved, signatures=dict(zip(names, functions, strict=True)))
            converter = tf.lite.TFLiteConverter.from_saved_model(saved, list(names))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            flatbuffer = converter.convert()
    except Exception as e:  # the converter's ConverterError is not public API
        if "neither a custom op nor a flex op" not in str(e):
            raise
        raise _unsupported(str(e), model, functions) from None
    with atomic_path(path) as tmp:
        tmp.write_bytes(flatbuffer)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            _verify(tmp, model, rtol, atol, target=path)
    return path
