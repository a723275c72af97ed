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
from pathlib import Path

import tensorflow as tf

from tfp_realnvp.model import FlowModel
from tfp_realnvp.rundir import _follow_umask
from tfp_realnvp.traversal import walk

__all__ = ["TFLITE_SIGNATURES", "export_tflite"]

TFLITE_SIGNATURES = ("log_prob", "sample")


def _functions(model: FlowModel) -> tuple[tf.Module, list]:
    dtype = model.flow_dtype
    event = list(model.event_shape_)
    extra = []
    if model.is_conditional:
        extra = [tf.TensorSpec([None, *model.context_shape_], dtype, name="context")]

    def log_prob(x, context=None):
        return {"log_prob": model._log_prob(x, context)}

    def sample(z, context=None):
        return {"samples": model._forward(z, context)}

    module = tf.Module()
    module.flow_variables = list(model.distribution.variables)
    module.log_prob = tf.function(
        log_prob, input_signature=[tf.TensorSpec([None, *event], dtype, name="x"), *extra]
    )
    module.sample = tf.function(
        sample, input_signature=[tf.TensorSpec([None, *event], dtype, name="z"), *extra]
    )
    return module, [module.log_prob.get_concrete_function(), module.sample.get_concrete_function()]


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
    """The converter's refusal as one sentence naming the bijector(s) and op(s) it met."""
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)))
    by_name = {b.name: b for b in walk(model.bijector)}
    culprits: dict[str, None] = {}
    for fn in functions:
        for op in _data_ops(fn.graph):
            if op.type in ops:  # its name is the path of name scopes: the innermost bijector's
                scopes = op.name.split("/")  # a scope entered again gets a suffix _1, _2, ...
                scopes = [s if s in by_name else re.sub(r"_\d+$", "", s) for s in scopes]
                names = [s for s in scopes if s in by_name]
                if names:
                    culprits[names[-1]] = None
    where = ", ".join(f"{type(by_name[n]).__name__} {n!r}" for n in culprits) or "the flow"
    return ValueError(
        f"export_tflite: {where} uses {', '.join(ops) or 'ops'}, which TensorFlow Lite's "
        "built-in op set lacks; export this flow with export_saved_model instead"
    )


def export_tflite(model: FlowModel, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Writes ``model`` as one TensorFlow Lite file at ``path`` and returns the path.

    Signatures (inputs -> outputs; a conditional flow adds a ``context`` input,
    ``[N, *context_shape]``):

    - ``log_prob``: ``x [N, *event]`` -> ``log_prob [N]``;
    - ``sample``: ``z [N, *event]``, standard-normal noise -> ``samples [N, *event]``.

    Only TensorFlow Lite's built-in ops are used (no TF Select ops): run it with
    ``tf.lite.Interpreter(model_path=path).get_signature_runner("log_prob")(x=x)``. The batch
    size ``N`` is free (the runner resizes its inputs). Outputs match the Keras model to
    float32 rounding (tested with ``rtol=1e-5, atol=1e-5``). The file is written next to
    ``path`` and moved into place whole.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
      TypeError: for a flow that does not compute in float32.
      ValueError: naming the bijector class(es) and op(s) that have no built-in kernel; or
        for a model with a learned base distribution, whose draws standard-normal noise
        cannot stand for.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if model.flow_dtype != tf.float32:
        raise TypeError(
            f"export_tflite: the flow computes in {model.flow_dtype.name}; TensorFlow Lite's "
            "built-in kernels take float32: build the flow with dtype=tf.float32."
        )
    if model.learned_base is not None:
        raise ValueError(
            f"export_tflite: the model's base distribution is learned "
            f"({type(model.learned_base).__name__}), but the TFLite `sample` signature takes "
            "standard-normal noise (TFLite has no random ops); export a model with the "
            "standard-normal base, or use export_saved_model, whose `sample` draws from the "
            "learned base."
        )
    module, functions = _functions(model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        flatbuffer = converter.convert()
    except Exception as e:  # the converter's ConverterError is not public API
        if "neither a custom op nor a flex op" not in str(e):
            raise
        raise _unsupported(str(e), model, functions) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(flatbuffer)
        _follow_umask(Path(tmp), directory=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
