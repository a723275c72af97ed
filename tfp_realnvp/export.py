"""Export a trained flow as a TensorFlow SavedModel that serves without this package or TFP."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from tfp_realnvp.model import FlowModel

__all__ = ["SIGNATURES", "export_saved_model"]

SIGNATURES = ("serving_default", "log_prob", "sample", "forward", "inverse")


def _serving_module(model: FlowModel) -> tuple[tf.Module, dict]:
    event = list(model.event_shape_)
    dtype = model.flow_dtype
    conditional = model.is_conditional
    extra = []
    if conditional:
        extra = [tf.TensorSpec([None, *model.context_shape_], dtype, name="context")]

    def kwargs(context):
        return model.bijector_kwargs(context if conditional else None)

    def log_prob(x, context=None):
        return {"log_prob": model.distribution.log_prob(x, bijector_kwargs=kwargs(context))}

    def sample(count, seed, context=None):
        z = model.base_sample(count, seed)
        if conditional:
            context = tf.broadcast_to(context, tf.concat([[count], model.context_shape_], 0))
        return {"samples": model.bijector.forward(z, **kwargs(context))}

    def forward(z, context=None):
        kw = kwargs(context)
        x = model.bijector.forward(z, **kw)
        return {
            "x": x,
            "log_det_jacobian": model.bijector.forward_log_det_jacobian(z, len(event), **kw),
        }

    def inverse(x, context=None):
        kw = kwargs(context)
        z = model.bijector.inverse(x, **kw)
        return {
            "z": z,
            "log_det_jacobian": model.bijector.inverse_log_det_jacobian(x, len(event), **kw),
        }

    module = tf.Module()
    # Every variable the functions capture must be tracked by the saved object. Holding the
    # raw variables (not the Keras model or TFP objects) keeps the SavedModel free of both.
    module.flow_variables = list(model.distribution.variables)
    fns = {
        "log_prob": tf.function(
            log_prob, input_signature=[tf.TensorSpec([None, *event], dtype, name="x"), *extra]
        ),
        "sample": tf.function(
            sample,
            input_signature=[
                tf.TensorSpec([], tf.int32, name="count"),
                tf.TensorSpec([2], tf.int32, name="seed"),
                *extra,
            ],
        ),
        "forward": tf.function(
            forward, input_signature=[tf.TensorSpec([None, *event], dtype, name="z"), *extra]
        ),
        "inverse": tf.function(
            inverse, input_signature=[tf.TensorSpec([None, *event], dtype, name="x"), *extra]
        ),
    }
    for name, fn in fns.items():
        setattr(module, name, fn)
    signatures = {name: fn.get_concrete_function() for name, fn in fns.items()}
    signatures["serving_default"] = signatures["log_prob"]
    return module, signatures


def export_saved_model(model: FlowModel, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Writes ``model`` as a SavedModel at ``path`` and returns the path.

    Signatures (inputs -> outputs; add a ``context`` input for conditional flows):

    - ``log_prob`` and ``serving_default``: ``x [N, *event]`` -> ``log_prob [N]``;
    - ``sample``: ``count`` (int32 scalar), ``seed`` (int32 ``[2]``) -> ``samples``;
    - ``forward``: ``z`` -> ``x``, ``log_det_jacobian``;
    - ``inverse``: ``x`` -> ``z``, ``log_det_jacobian``.

    Load with ``tf.saved_model.load(path)`` (call ``loaded.signatures["log_prob"](x=...)`` or
    ``loaded.log_prob(x)``) or serve with TF Serving: the graph holds only core TensorFlow
    ops, so neither tfp_realnvp nor TensorFlow Probability is needed there.

    The SavedModel is written next to ``path`` and moved into place whole, so a failure
    leaves ``path`` as it was.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    module, signatures = _serving_module(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tf.saved_model.save(module, str(tmp / "model"), signatures=signatures)
        if path.exists():
            old = tmp / "old"
            os.replace(path, old)
        os.replace(tmp / "model", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
