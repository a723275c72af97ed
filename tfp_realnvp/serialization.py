"""Bijectors to and from JSON-able configs, so a `FlowModel` saves in the Keras file format.

Our bijectors describe themselves (``get_config`` / ``from_config`` of `FlowBijector`, and
`register_bijector` to be found by name); values that are bijectors or Keras layers (a
coupling's conditioner) are saved recursively. This module itself describes TFP's own
bijectors, through their public API: `tfb.Chain`, `tfb.Invert`, and those of `TFP_BIJECTORS`
(`Shift`, `Scale`, `ScaleMatvecTriL`, `Sigmoid`, ...) by their constructor arguments, when
those are constants (a trained `tf.Variable` inside one is refused, naming it).

Weights are not part of a config: Keras saves them through the model's tracked layers and loads
them into the layers that `bijector_from_config` rebuilds in the same order.

>>> import tfp_realnvp as trn
>>> flow = trn.real_nvp([2], num_couplings=2, hidden_units=[4])
>>> config = bijector_to_config(flow)
>>> config["class_name"], [c["__bijector__"]["class_name"] for c in config["config"]["bijectors"]]
('Chain', ['AffineCoupling', 'AffineCoupling'])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._keras import keras
from tfp_realnvp.bijectors.base import FlowBijector, registered_bijectors
from tfp_realnvp.traversal import CHAIN_TYPES, INVERT_TYPES

__all__ = ["TFP_BIJECTORS", "bijector_from_config", "bijector_to_config"]

tfb = tfp.bijectors

# TFP's bijectors saved by their constructor arguments (constants only).
TFP_BIJECTORS = (
    "Shift",
    "Scale",
    "ScaleMatvecDiag",
    "ScaleMatvecTriL",
    "Permute",
    "Reshape",
    "Exp",
    "Log",
    "Expm1",
    "Sigmoid",
    "Softplus",
    "Softsign",
    "Tanh",
    "Identity",
    "SinhArcsinh",
    "Power",
    "Square",
    "NormalCDF",
)
_INTEGER_ARGS = {"permutation", "event_shape_out", "event_shape_in"}
_SUPPORTED = f"our registered bijectors and TFP's Chain, Invert, {', '.join(TFP_BIJECTORS)}"
_ADVICE = "Use checkpoints or tfp_realnvp.export_saved_model instead."


def _constant(value, what: str, name: str):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, tf.Variable) or not (
        tf.is_tensor(value) or isinstance(value, (list, tuple, np.ndarray, np.generic))
    ):
        raise ValueError(f"cannot save bijector {name!r}: its {what} is not a constant. {_ADVICE}")
    static = tf.get_static_value(value) if tf.is_tensor(value) else np.asarray(value)
    if static is None:
        raise ValueError(f"cannot save bijector {name!r}: its {what} is not a constant. {_ADVICE}")
    return np.asarray(static).tolist()


def _tfp_config(bijector) -> tuple[str, dict] | None:
    """TFP's own bijectors, by their public API."""
    if isinstance(bijector, CHAIN_TYPES):
        return "Chain", {"bijectors": list(bijector.bijectors)}
    if isinstance(bijector, INVERT_TYPES):
        return "Invert", {"bijector": bijector.bijector}
    kind = type(bijector).__name__
    if kind not in TFP_BIJECTORS or type(bijector) is not getattr(tfb, kind):
        return None
    config = {
        key: _constant(value, key, bijector.name)
        for key, value in bijector.parameters.items()
        if key not in ("name", "validate_args", "dtype") and value is not None
    }
    if bijector.dtype is not None:
        config["dtype"] = tf.as_dtype(bijector.dtype).name
    return kind, config


def _tfp_from_config(kind: str, config: dict, name: str):
    if kind == "Chain":
        return tfb.Chain(config["bijectors"], name=name)
    if kind == "Invert":
        return tfb.Invert(config["bijector"], name=name)
    dtype = config.pop("dtype", None)
    arguments = {}
    for key, value in config.items():
        if isinstance(value, list):
            value = np.asarray(value) if key in _INTEGER_ARGS else tf.constant(value, dtype)
        arguments[key] = value
    return getattr(tfb, kind)(**arguments, name=name)


def bijector_to_config(bijector: tfb.Bijector) -> dict:
    """A JSON-able description of ``bijector`` from which `bijector_from_config` rebuilds it.

    Raises:
      ValueError: for a bijector (or a part of one) that cannot be described.
    """
    name = bijector.name
    kind = type(bijector).__name__
    if isinstance(bijector, FlowBijector):
        if registered_bijectors().get(kind) is not type(bijector):
            raise ValueError(
                f"cannot save bijector {name!r} of type {kind}: the class is not registered; "
                f"decorate it with tfp_realnvp.register_bijector. {_ADVICE}"
            )
        config = bijector.get_config()
    else:
        found = _tfp_config(bijector)
        if found is None:
            raise ValueError(
                f"cannot save bijector {name!r} of type {kind} in the Keras format; supported: "
                f"{_SUPPORTED}. {_ADVICE}"
            )
        kind, config = found
    encoded = {key: _encode(value, f"{name}.{key}") for key, value in config.items()}
    return {"class_name": kind, "name": name, "config": encoded}


def bijector_from_config(config: dict) -> tfb.Bijector:
    """Rebuilds a bijector described by `bijector_to_config` (with fresh weights).

    Raises:
      ValueError: for a class that is neither registered nor one of TFP's described here.
    """
    kind, name = config["class_name"], config["name"]
    arguments = {key: _decode(value) for key, value in config["config"].items()}
    cls = registered_bijectors().get(kind)
    if cls is not None:
        return cls.from_config({**arguments, "name": name})
    if kind in ("Chain", "Invert", *TFP_BIJECTORS):
        return _tfp_from_config(kind, arguments, name)
    raise ValueError(
        f"unknown bijector class {kind!r} in a saved config; import the module that registers "
        "it before loading"
    )


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, tfb.Bijector):
        return {"__bijector__": bijector_to_config(value)}
    if isinstance(value, keras.layers.Layer):
        return {"__keras__": keras.saving.serialize_keras_object(value)}
    if isinstance(value, tf.Module):
        raise ValueError(
            f"cannot save {where} in the Keras format: it is a {type(value).__name__}, not a "
            f"Keras layer or bijector. {_ADVICE}"
        )
    if isinstance(value, tf.DType):
        return value.name
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_encode(v, where) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__bijector__" in value:
        return bijector_from_config(value["__bijector__"])
    if isinstance(value, dict) and "__keras__" in value:
        return keras.saving.deserialize_keras_object(value["__keras__"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
