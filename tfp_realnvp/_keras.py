"""The Keras that TensorFlow resolves to, and the glue that makes its weights visible to TFP.

`tf.keras` is Keras 3 unless ``TF_USE_LEGACY_KERAS=1``, in which case it is tf-keras. We follow
the same switch, so a user's layers and ours always come from the same Keras. (We import the
package itself rather than `tf.keras`, whose Keras 3 shim lacks `keras.saving`.)

Keras 3 layers are not `tf.Module`s: `tf.Module.trainable_variables` (which TFP bijectors and
distributions inherit) walks instance attributes and never looks inside them. `module_variables`
returns the underlying `tf.Variable`s so a bijector can hold them where the walk will find them.
"""

from __future__ import annotations

import os

import tensorflow as tf

LEGACY_KERAS = os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true", "yes")

if LEGACY_KERAS:
    import tf_keras as keras
else:
    import keras

register = keras.saving.register_keras_serializable(package="tfp_realnvp")


def tf_variables(layer) -> tuple[tf.Variable, ...]:
    """The `tf.Variable`s behind a Keras layer's weights (Keras 3 or tf-keras): the very
    variables an optimizer updates.

    tf-keras weights are `tf.Variable`s (an ``AutoCastVariable`` under mixed precision). A Keras 3
    weight on the TensorFlow backend wraps one, which its public ``value`` returns outside a
    layer's call; inside one, under a mixed policy, ``value`` is a cast copy, which is refused.
    """
    return tuple(tf_variable(weight, layer.name) for weight in layer.weights)


def tf_variable(weight, owner: str = "") -> tf.Variable:
    """The `tf.Variable` behind one Keras weight (see `tf_variables`)."""
    inner = weight if isinstance(weight, tf.Variable) else weight.value
    if not isinstance(inner, tf.Variable):
        raise TypeError(
            f"cannot find the tf.Variable behind weight {weight.name!r} of layer "
            f"{owner!r} (got {type(inner).__name__}); is Keras on the TensorFlow "
            "backend, and is the flow built outside a layer's call?"
        )
    return inner


def aggregation(name: str):
    """A variable aggregation as each Keras takes it: Keras 3 a string, tf-keras the enum."""
    if LEGACY_KERAS:
        return getattr(tf.VariableAggregation, name.upper())
    return name


def no_shuffle_of_datasets(x, fit_kwargs: dict) -> None:
    """Sets ``shuffle=False`` in ``fit_kwargs`` when ``x`` is a `tf.data.Dataset` and the
    caller chose no ``shuffle``: Keras shuffles no dataset, and Keras 3's default
    ``shuffle=True`` warns on every call that it "will be ignored"."""
    if isinstance(x, tf.data.Dataset):
        fit_kwargs.setdefault("shuffle", False)


def build_optimizer(model) -> None:
    """Creates ``model.optimizer``'s variables (step, moments) for the model's trainable
    variables, unless they exist, in the model's distribution strategy's scope."""
    optimizer = model.optimizer
    built = optimizer.built if not LEGACY_KERAS else getattr(optimizer, "_built", False)
    if not built:
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)
