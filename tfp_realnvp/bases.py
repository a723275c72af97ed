"""Base distributions a flow pushes forward: the standard normal, or one with learned parameters.

A learned base is a Keras layer that holds its weights (so a `FlowModel` trains, saves and
exports them with the flow's) and hands out a TFP distribution whose parameters are those very
variables (so `tfp.vi`, `TransformedDistribution.trainable_variables` and plain TFP code train
them too). Each starts as the standard normal or close to it, and constrains its parameters:

=====================  ===================================================  ===================
``base``               density of each event                                starts as
=====================  ===================================================  ===================
``"normal"``           ``N(0, I)``, nothing learned                         itself
``"diagonal"``         ``N(mu, diag(sigma^2))``                             ``N(0, I)``
``"student_t"``        independent Student-t per unit, learned ``nu``,      ``nu = 30``,
                       location and scale (heavy tails)                     ``N(0, I)``-like
``"mixture"``          ``sum_k pi_k N(mu_k, diag(sigma_k^2))``              spread means
=====================  ===================================================  ===================

``sigma`` and the Student-t scale are softplus of unconstrained weights and ``nu = 1 + exp(w)``
(learned on a log scale, as the likelihood varies slowly in ``nu``), so all stay positive and
``nu > 1`` keeps the mean finite. Samples of ``"diagonal"`` and ``"student_t"``
are reparameterised; a mixture's are not (the component is a discrete draw), which matters only
for reverse-KL fitting.

>>> import tfp_realnvp as trn
>>> base = trn.bases.make_base("student_t", [2])
>>> base.distribution().event_shape, base.degrees_of_freedom().numpy().round(3).tolist()
(TensorShape([2]), [30.0, 30.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._checks import one_of, positive_int
from tfp_realnvp._checks import shape as check_shape
from tfp_realnvp._keras import keras, register, tf_variable

__all__ = [
    "BASES",
    "DiagonalGaussian",
    "GaussianMixture",
    "LearnedBase",
    "StudentT",
    "make_base",
    "standard_normal",
]

tfd = tfp.distributions

BASES = ("normal", "diagonal", "student_t", "mixture")


def standard_normal(event_shape: Sequence[int], dtype=tf.float32) -> tfd.Distribution:
    """``N(0, I)`` over ``event_shape``."""
    dtype = tf.as_dtype(dtype)
    return tfd.Sample(tfd.Normal(tf.zeros([], dtype), tf.ones([], dtype)), event_shape)


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))


class LearnedBase(keras.layers.Layer):
    """A base distribution with learned parameters, held as this layer's weights.

    Subclasses create their weights in ``__init__`` and build the TFP distribution from the
    underlying `tf.Variable`s in ``_make``; `distribution` is then the same object on every
    call, reading the variables' current values.

    Args:
      event_shape: shape of one event.
    """

    def __init__(self, event_shape: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.event_shape = check_shape(event_shape, "event_shape")
        self._dist = None
        # Its weights come in ``__init__``, not in a ``build`` called on first use: so it is
        # built, and ``fit`` creates the optimizer's slots before the step is traced (slots
        # made during the first trace make the whole step trace twice).
        self.built = True

    def distribution(self) -> tfd.Distribution:
        """The TFP distribution, whose parameters are this layer's variables."""
        if self._dist is None:
            object.__setattr__(self, "_dist", self._make())
        return self._dist

    def _make(self) -> tfd.Distribution:
        """The distribution, with parameters from ``tf_variable(self.<weight>)``."""
        raise NotImplementedError

    def call(self, x):
        return self.distribution().log_prob(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "event_shape": list(self.event_shape)}


def _one_plus_exp(w):
    return 1.0 + tf.exp(tf.minimum(w, 30.0))  # beyond, a Gaussian in all but name


def _independent(dist: tfd.Distribution, event_rank: int) -> tfd.Distribution:
    return tfd.Independent(dist, reinterpreted_batch_ndims=event_rank)


@register
class DiagonalGaussian(LearnedBase):
    """``N(mu, diag(sigma^2))`` with learned ``mu`` and ``sigma = softplus(w)``; starts as
    ``N(0, I)``.

    >>> base = DiagonalGaussian([3])
    >>> float(base.distribution().log_prob([[0.0, 0.0, 0.0]])[0])  # doctest: +ELLIPSIS
    -2.7568...
    """

    def __init__(self, event_shape: Sequence[int], **kwargs):
        super().__init__(event_shape, **kwargs)
        self.loc = self.add_weight(name="loc", shape=self.event_shape, initializer="zeros")
        one = keras.initializers.Constant(_inverse_softplus(1.0))
        self.raw_scale = self.add_weight(name="raw_scale", shape=self.event_shape, initializer=one)

    def _make(self) -> tfd.Distribution:
        scale = tfp.util.DeferredTensor(tf_variable(self.raw_scale), tf.nn.softplus)
        return _independent(tfd.Normal(tf_variable(self.loc), scale), len(self.event_shape))


@register
class StudentT(LearnedBase):
    """Independent Student-t units with learned degrees of freedom ``nu = 1 + exp(w)``,
    location and scale: heavier tails than a Gaussian where the data has them.

    Args:
      event_shape: shape of one event.
      degrees_of_freedom: the starting ``nu`` (one learned value per unit).
    """

    def __init__(self, event_shape: Sequence[int], degrees_of_freedom: float = 30.0, **kwargs):
        super().__init__(event_shape, **kwargs)
        if not isinstance(degrees_of_freedom, (int, float)) or not degrees_of_freedom > 1:
            raise ValueError(
                f"`degrees_of_freedom` must be a number above 1; got {degrees_of_freedom!r}."
            )
        self.initial_degrees_of_freedom = float(degrees_of_freedom)
        start = keras.initializers.Constant(math.log(degrees_of_freedom - 1.0))
        self.raw_df = self.add_weight(name="raw_df", shape=self.event_shape, initializer=start)
        self.loc = self.add_weight(name="loc", shape=self.event_shape, initializer="zeros")
        one = keras.initializers.Constant(_inverse_softplus(1.0))
        self.raw_scale = self.add_weight(name="raw_scale", shape=self.event_shape, initializer=one)

    def degrees_of_freedom(self) -> tf.Tensor:
        """The current ``nu`` of each unit."""
        return tf.convert_to_tensor(self.distribution().distribution.df)

    def _make(self) -> tfd.Distribution:
        df = tfp.util.DeferredTensor(tf_variable(self.raw_df), _one_plus_exp)
        scale = tfp.util.DeferredTensor(tf_variable(self.raw_scale), tf.nn.softplus)
        t = tfd.StudentT(df, tf_variable(self.loc), scale)
        return _independent(t, len(self.event_shape))

    def get_config(self) -> dict:
        return {**super().get_config(), "degrees_of_freedom": self.initial_degrees_of_freedom}


@register
class GaussianMixture(LearnedBase):
    """``sum_k pi_k N(mu_k, diag(sigma_k^2))`` with learned weights, means and scales.

    The means start spread around the origin (a fixed draw of ``N(0, 0.5^2)`` per entry, so
    the components can separate), the scales at 1 and the weights equal.

    Args:
      event_shape: shape of one event.
      num_components: number of components ``K``.
      seed: seed of the starting means.
    """

    def __init__(
        self, event_shape: Sequence[int], num_components: int = 4, seed: int = 0, **kwargs
    ):
        super().__init__(event_shape, **kwargs)
        self.num_components = positive_int(num_components, "num_components")
        self.seed = int(seed)
        shape = (self.num_components, *self.event_shape)
        means = np.random.default_rng(seed).normal(0.0, 0.5, size=shape)
        self.logits = self.add_weight(
            name="logits", shape=(self.num_components,), initializer="zeros"
        )
        self.locs = self.add_weight(
            name="locs", shape=shape, initializer=keras.initializers.Constant(means)
        )
        one = keras.initializers.Constant(_inverse_softplus(1.0))
        self.raw_scales = self.add_weight(name="raw_scales", shape=shape, initializer=one)

    def _make(self) -> tfd.Distribution:
        scales = tfp.util.DeferredTensor(tf_variable(self.raw_scales), tf.nn.softplus)
        normals = tfd.Normal(tf_variable(self.locs), scales)
        components = _independent(normals, len(self.event_shape))
        weights = tfd.Categorical(logits=tf_variable(self.logits))
        return tfd.MixtureSameFamily(weights, components)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_components": self.num_components,
            "seed": self.seed,
        }


_KINDS = {"diagonal": DiagonalGaussian, "student_t": StudentT, "mixture": GaussianMixture}


def make_base(base: str | LearnedBase | None, event_shape: Sequence[int], dtype=tf.float32):
    """The learned base layer that ``base`` names (``None`` for ``"normal"``), or ``base``
    itself when it is a `LearnedBase` of this event shape.

    Raises:
      ValueError: for an unknown name or a layer of another event shape.
    """
    event_shape = check_shape(event_shape, "event_shape")
    dtype = tf.as_dtype(dtype)
    if isinstance(base, LearnedBase):
        got = base.distribution().dtype
        if tuple(base.event_shape) != event_shape or got != dtype:
            raise ValueError(
                f"`base` has {got.name} events of shape {tuple(base.event_shape)}, but the "
                f"flow's are {dtype.name} of shape {event_shape}."
            )
        return base
    if base is None or isinstance(base, tfd.Distribution):
        return None
    kind = one_of(base, BASES, "base")
    if kind == "normal":
        return None
    return _KINDS[kind](event_shape, dtype=None if dtype == tf.float32 else dtype.name)
