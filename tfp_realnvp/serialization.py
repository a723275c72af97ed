"""Bijectors to and from JSON-able configs, so a `FlowModel` saves in the Keras file format.

Weights are not part of a config: Keras saves them through the model's tracked layers and loads
them into the layers that `bijector_from_config` rebuilds in the same order.

Supported: `AffineCoupling` (with a Keras-serialisable conditioner), `LULinear`, `ActNorm`,
`Squeeze`, `FactorOut`, `Dequantize`, `Logit`, and TFP's `Chain`, `Invert`, `Permute`, `Shift`,
`Scale` with constant parameters.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._keras import keras
from tfp_realnvp.bijectors.actnorm import ActNorm
from tfp_realnvp.bijectors.coupling import AffineCoupling
from tfp_realnvp.bijectors.linear import LULinear, LUWeights
from tfp_realnvp.bijectors.multiscale import FactorOut, Squeeze
from tfp_realnvp.bijectors.preprocess import Dequantize, Logit

__all__ = ["bijector_from_config", "bijector_to_config"]

tfb = tfp.bijectors


def _constant(value, what: str, name: str) -> list:
    static = tf.get_static_value(value)
    if static is None or isinstance(value, tf.Variable):
        raise ValueError(
            f"cannot save bijector {name!r}: its {what} is not a constant. Save with "
            "checkpoints or tfp_realnvp.export_saved_model instead."
        )
    return np.asarray(static).tolist()


def bijector_to_config(bijector) -> dict:
    """A JSON-able description of ``bijector`` from which `bijector_from_config` rebuilds it.

    Raises:
      ValueError: for a bijector (or conditioner) this module cannot describe.
    """
    name = bijector.name
    if isinstance(bijector, AffineCoupling):
        conditioner = bijector.conditioner
        if not isinstance(conditioner, keras.layers.Layer):
            raise ValueError(
                f"cannot save coupling {name!r} in the Keras format: its conditioner is a "
                f"{type(conditioner).__name__}, not a Keras layer. Use checkpoints or "
                "tfp_realnvp.export_saved_model."
            )
        config = {
            "conditioner": keras.saving.serialize_keras_object(conditioner),
            "mask": bijector.mask.tolist(),
            "scale": bijector.scale,
            "clamp": bijector._clamp,
            "context_shape": None
            if bijector.context_shape is None
            else list(bijector.context_shape),
            "dtype": bijector._flow_dtype.name,
        }
    elif isinstance(bijector, LULinear):
        config = {
            "event_shape": list(bijector.event_shape),
            "dtype": bijector._flow_dtype.name,
            "permutation": list(bijector._weights.permutation),
        }
    elif isinstance(bijector, ActNorm):
        config = {"event_shape": list(bijector.event_shape), "dtype": bijector._flow_dtype.name}
    elif isinstance(bijector, Squeeze):
        config = {"event_shape": list(bijector.event_shape)}
    elif isinstance(bijector, FactorOut):
        config = {
            "bijector": bijector_to_config(bijector.bijector),
            "event_shape": list(bijector.event_shape),
            "num_kept": bijector.num_kept,
        }
    elif isinstance(bijector, Dequantize):
        config = {"num_levels": bijector.num_levels}
    elif isinstance(bijector, Logit):
        config = {"alpha": bijector.alpha}
    elif _is_tfp(bijector, "Invert"):
        config = {"bijector": bijector_to_config(bijector.bijector)}
    elif _is_tfp(bijector, "Chain"):
        config = {"bijectors": [bijector_to_config(b) for b in bijector.bijectors]}
    elif isinstance(bijector, tfb.Permute):
        config = {"permutation": _constant(bijector.permutation, "permutation", name)}
    elif isinstance(bijector, tfb.Shift):
        config = {"shift": _constant(bijector.shift, "shift", name), "dtype": bijector.dtype.name}
    elif isinstance(bijector, tfb.Scale):
        config = {"scale": _constant(bijector.scale, "scale", name), "dtype": bijector.dtype.name}
    else:
        raise ValueError(
            f"cannot save bijector {name!r} of type {type(bijector).__name__} in the Keras "
            "format; supported: AffineCoupling, LULinear, ActNorm, Squeeze, FactorOut, "
            "Dequantize, Logit, Chain, Invert, Permute, Shift, Scale. Use "
            "checkpoints or tfp_realnvp.export_saved_model."
        )
    return {"class_name": type(bijector).__name__.lstrip("_"), "name": name, "config": config}


def _is_tfp(bijector, kind: str) -> bool:
    # tfb.Chain and tfb.Invert over bijectors that are not composite tensors (ours) return
    # instances of TFP's private _Chain and _Invert, which tfb.Chain/tfb.Invert do not cover.
    return type(bijector).__name__ in (kind, f"_{kind}") and type(bijector).__module__.startswith(
        "tensorflow_probability"
    )


def bijector_from_config(config: dict):
    """Rebuilds a bijector described by `bijector_to_config` (with fresh weights)."""
    kind, name, cfg = config["class_name"], config["name"], config["config"]
    if kind == "AffineCoupling":
        conditioner = keras.saving.deserialize_keras_object(cfg["conditioner"])
        return AffineCoupling(
            conditioner,
            np.asarray(cfg["mask"], bool),
            scale=cfg["scale"],
            clamp=cfg["clamp"],
            context_shape=cfg["context_shape"],
            dtype=cfg["dtype"],
            name=name,
        )
    if kind == "LULinear":
        channels = cfg["event_shape"][-1]
        weights = LUWeights(channels, cfg["permutation"], dtype=cfg["dtype"])
        return LULinear(cfg["event_shape"], dtype=cfg["dtype"], weights=weights, name=name)
    if kind == "ActNorm":
        return ActNorm(cfg["event_shape"], dtype=cfg["dtype"], name=name)
    if kind == "Squeeze":
        return Squeeze(cfg["event_shape"], name=name)
    if kind == "FactorOut":
        inner = bijector_from_config(cfg["bijector"])
        return FactorOut(inner, cfg["event_shape"], cfg["num_kept"], name=name)
    if kind == "Dequantize":
        return Dequantize(cfg["num_levels"], name=name)
    if kind == "Logit":
        return Logit(cfg["alpha"], name=name)
    if kind == "Invert":
        return tfb.Invert(bijector_from_config(cfg["bijector"]), name=name)
    if kind == "Chain":
        return tfb.Chain([bijector_from_config(c) for c in cfg["bijectors"]], name=name)
    if kind == "Permute":
        return tfb.Permute(np.asarray(cfg["permutation"]), name=name)
    if kind == "Shift":
        return tfb.Shift(tf.constant(cfg["shift"], cfg["dtype"]), name=name)
    if kind == "Scale":
        return tfb.Scale(tf.constant(cfg["scale"], cfg["dtype"]), name=name)
    raise ValueError(f"unknown bijector class {kind!r} in a saved config")
