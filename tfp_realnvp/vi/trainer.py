"""Reverse-KL fitting of a flow to an unnormalised target: a Keras model trained with ``fit``,
and a plain function for scripts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfp_realnvp._checks import positive_int
from tfp_realnvp._keras import build_optimizer, keras
from tfp_realnvp.traversal import keras_layers
from tfp_realnvp.vi.objective import (
    as_distribution,
    check_target,
    log_weights,
    noise_shape,
    objective,
)

__all__ = ["VIModel", "fit_vi"]


class VIModel(keras.Model):
    """A Keras model that fits a flow ``q`` to ``p~`` by minimising the negative ELBO
    ``E_q[log q(z) - log p~(z)]`` (reverse KL up to ``log Z``), with no data.

    ``compile(optimizer)`` then ``fit(epochs=..., steps_per_epoch=...)``: with no ``x``, ``fit``
    feeds a `tf.data` stream of base noise (drawn there, outside any XLA-compiled step, where
    random numbers on CPU are slow), so epochs, callbacks, the progress bar and
    ``jit_compile`` work as usual. The logged ``loss`` is the negative bound in nats.

    Args:
      flow: the flow bijector (``forward`` maps standard-normal noise to ``z``), or a
        `tfd.TransformedDistribution` of one.
      target_log_prob_fn: ``log p~(z)`` for a batch of ``z`` of the flow's event shape.
      sample_size: Monte-Carlo samples ``S`` per step.
      importance_samples: ``K``; beyond 1 the loss is IWAE's tighter bound.
      stick_the_landing: drop the score term from the gradient (STL; DReG for ``K > 1``):
        zero variance once ``q = p``, at the price of one inverse pass per step.
      **kwargs: passed to `keras.Model`.

    #### Examples

    >>> import tensorflow as tf, tfp_realnvp as trn
    >>> target = lambda z: -0.5 * tf.reduce_sum((z - 1.0) ** 2, -1)
    >>> model = VIModel(trn.planar_flow(2, 2), target, sample_size=16)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(epochs=2, steps_per_epoch=5, verbose=0, seed=0)
    >>> sorted(history.history)
    ['loss']
    """

    def __init__(
        self,
        flow,
        target_log_prob_fn: Callable,
        *,
        sample_size: int = 64,
        importance_samples: int = 1,
        stick_the_landing: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._q = as_distribution(flow)
        self._target = check_target(self._q, target_log_prob_fn)
        self.sample_size = positive_int(sample_size, "sample_size")
        self.importance_samples = positive_int(importance_samples, "importance_samples")
        self.stick_the_landing = bool(stick_the_landing)
        self.flow_layers = keras_layers(self._q.bijector)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    @property
    def distribution(self):
        """The variational distribution ``q``, sharing this model's variables."""
        return self._q

    @property
    def bijector(self):
        return self._q.bijector

    def noise(self, seed: int | None = None) -> tf.data.Dataset:
        """An endless `tf.data.Dataset` of base-noise batches ``[K, S, *event]``."""
        shape = noise_shape(self._q, self.sample_size, self.importance_samples)
        dtype = self._q.dtype
        return tf.data.Dataset.random(seed=seed).map(
            lambda s: tf.random.stateless_normal(shape, tf.stack([s, s // 2 + 1]), dtype=dtype)
        )

    def fit(self, x=None, *args, steps_per_epoch: int | None = None, seed=None, **kwargs):
        """`keras.Model.fit` on the noise stream (`noise`, from ``seed``) when ``x`` is None;
        ``steps_per_epoch`` (default 100) is the number of gradient steps per epoch."""
        if x is None:
            x = self.noise(seed)
            steps_per_epoch = positive_int(steps_per_epoch or 100, "steps_per_epoch")
            kwargs.setdefault("shuffle", False)  # a stream: nothing to shuffle
        if getattr(self, "optimizer", None) is not None:
            build_optimizer(self)  # before the step's trace, which would otherwise run twice
        return super().fit(x, *args, steps_per_epoch=steps_per_epoch, **kwargs)

    def call(self, eps, training=None):
        return self._q.bijector.forward(eps)

    def losses_at(self, eps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(negative bound, loss to differentiate)`` for base noise ``[K, S, *event]``."""
        log_w, path = log_weights(self._q, self._target, eps, self.stick_the_landing)
        return objective(log_w, path)

    def train_step(self, data):
        eps = data[0] if isinstance(data, (tuple, list)) else data
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            value, loss = self.losses_at(tf.cast(eps, self._q.dtype))
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        self.loss_tracker.update_state(tf.cast(value, tf.float32))
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]


def fit_vi(
    flow,
    target_log_prob_fn: Callable,
    num_steps: int = 1000,
    *,
    sample_size: int = 64,
    importance_samples: int = 1,
    stick_the_landing: bool = False,
    optimizer=None,
    learning_rate: float = 1e-3,
    jit_compile: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Fits ``flow`` to ``target_log_prob_fn`` by reverse KL (see `VIModel`) in a plain loop.

    Each step draws its noise eagerly (outside XLA) and runs one compiled gradient step
    (Adam at ``learning_rate`` unless an ``optimizer`` is given).

    Returns:
      The negative bound at every step, in nats (``log Z - ELBO >= 0`` is the KL(q || p)).

    >>> import tensorflow as tf, tfp_realnvp as trn
    >>> flow = trn.radial_flow(2, 2)
    >>> target = lambda z: -0.5 * tf.reduce_sum(z**2, -1)
    >>> losses = fit_vi(flow, target, 3, sample_size=8, jit_compile=False)
    >>> losses.shape
    (3,)
    """
    model = VIModel(
        flow,
        target_log_prob_fn,
        sample_size=sample_size,
        importance_samples=importance_samples,
        stick_the_landing=stick_the_landing,
    )
    optimizer = optimizer or keras.optimizers.Adam(learning_rate)
    variables = model.trainable_variables
    optimizer.build(variables)  # its slots, before the compiled step

    @tf.function(jit_compile=jit_compile)
    def step(eps):
        with tf.GradientTape() as tape:
            value, loss = model.losses_at(eps)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return value

    noise = iter(model.noise(seed))
    return np.array([float(step(next(noise))) for _ in range(positive_int(num_steps, "num_steps"))])
