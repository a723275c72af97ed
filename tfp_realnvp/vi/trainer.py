"""Reverse-KL fitting of a flow to an unnormalised target: a Keras model trained with ``fit``,
and a plain function for scripts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfp_realnvp._checks import positive_int
from tfp_realnvp._functions import own_function
from tfp_realnvp._keras import build_optimizer, keras, no_shuffle_of_datasets
from tfp_realnvp.flows import sample_request
from tfp_realnvp.traversal import keras_layers
from tfp_realnvp.vi.annealing import Annealing
from tfp_realnvp.vi.diagnostics import check_fit
from tfp_realnvp.vi.objective import (
    as_distribution,
    check_target,
    log_weights,
    noise_shape,
    objective,
)
from tfp_realnvp.vi.restarts import best_elbo, copy_weights, fresh_copy

__all__ = ["VIModel", "fit_vi"]

DEFAULT_ANNEALING = Annealing()
_RESTART_SEEDS = 1_000_003  # the seed step between restarts' noise streams


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
      annealing: an `Annealing` schedule (the default: from ``N(0, 3^2 I)`` to ``p~``,
        ``beta`` from 0.1 to 1 over the first 30% of the first ``fit``'s steps, counted by the
        optimizer's ``iterations``), or None to fit ``p~`` itself from the first step. Free
        per step; the logged ``loss`` stays the negative ELBO of ``p~`` itself.
      **kwargs: passed to `keras.Model`.

    At the end of ``fit``, `check_fit` draws 4096 samples of ``q`` and warns
    (`VIFitWarning`) when their importance weights say ``q`` misses mass of ``p``
    (`VIDiagnostics.misses_mass`; ``fit(..., warn=False)`` skips it).

    #### Examples

    >>> import tensorflow as tf, tfp_realnvp as trn
    >>> target = lambda z: -0.5 * tf.reduce_sum((z - 1.0) ** 2, -1)
    >>> model = VIModel(trn.planar_flow(2, 2), target, sample_size=16)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(epochs=2, steps_per_epoch=5, verbose=0, seed=0, warn=False)
    >>> sorted(history.history)
    ['loss']
    >>> model.sample(3, seed=1).shape  # posterior draws
    TensorShape([3, 2])
    """

    def __init__(
        self,
        flow,
        target_log_prob_fn: Callable,
        *,
        sample_size: int = 256,
        importance_samples: int = 1,
        stick_the_landing: bool = False,
        annealing: Annealing | None = DEFAULT_ANNEALING,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if annealing is not None and not isinstance(annealing, Annealing):
            raise TypeError(f"`annealing` must be an Annealing or None; got {annealing!r}.")
        self._q = as_distribution(flow)
        self._target = check_target(self._q, target_log_prob_fn)
        self.sample_size = positive_int(sample_size, "sample_size")
        self.importance_samples = positive_int(importance_samples, "importance_samples")
        self.stick_the_landing = bool(stick_the_landing)
        self.annealing = annealing
        # [first step, steps] of the annealing, fixed by the first fit: later fits go on at beta 1.
        self._anneal_window = tf.Variable([0.0, 0.0], trainable=False, name="anneal_window")
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

    def fit(
        self,
        x=None,
        *args,
        steps_per_epoch: int | None = None,
        seed=None,
        warn: bool = True,
        **kwargs,
    ):
        """`keras.Model.fit` on the noise stream (`noise`, from ``seed``) when ``x`` is None;
        ``steps_per_epoch`` (default 100) is the number of gradient steps per epoch. The
        annealing spreads over the first fit's ``epochs * steps_per_epoch`` steps (an ``x`` of
        your own without ``steps_per_epoch`` is fitted without it). With ``warn``,
        `check_fit` runs at the end (4096 draws of ``q``)."""
        if x is None:
            x = self.noise(seed)
            steps_per_epoch = positive_int(steps_per_epoch or 100, "steps_per_epoch")
        no_shuffle_of_datasets(x, kwargs)
        if getattr(self, "optimizer", None) is not None:
            build_optimizer(self)  # before the step's trace, which would otherwise run twice
            if self.annealing is not None and steps_per_epoch:
                epochs = kwargs.get("epochs", args[2] if len(args) > 2 else 1)
                epochs -= kwargs.get("initial_epoch", 0)
                self.plan_annealing(int(epochs) * int(steps_per_epoch))
        history = super().fit(x, *args, steps_per_epoch=steps_per_epoch, **kwargs)
        if warn:
            check_fit(self, self._target, seed=seed if isinstance(seed, int) else 0)
        return history

    def plan_annealing(self, num_steps: int) -> None:
        """Spreads the annealing over ``num_steps`` gradient steps from the optimizer's
        current step, unless a fit has already planned it (then ``beta`` stays at 1)."""
        if float(self._anneal_window[1]) == 0.0:
            start = float(self.optimizer.iterations.numpy())
            self._anneal_window.assign([start, float(positive_int(num_steps, "num_steps"))])

    def beta(self) -> tf.Tensor | None:
        """The current step's ``beta`` (None without annealing): 1 before any planned fit."""
        if self.annealing is None:
            return None
        start, steps = self._anneal_window[0], self._anneal_window[1]
        step = tf.cast(self.optimizer.iterations, tf.float32) - start
        beta = self.annealing.beta(step, steps)
        return tf.cast(tf.where(steps > 0, beta, 1.0), self._q.dtype)

    def sample(self, n: int, seed=None) -> tf.Tensor:
        """``n`` draws of ``q`` (approximate posterior draws): base noise pushed through the
        flow's ``forward``. ``seed`` is an int or a shape-[2] stateless seed; ``None`` draws
        fresh noise."""
        n, seed = sample_request(n, seed)
        return self._q.bijector.forward(self._q.distribution.sample(n, seed=seed))

    def call(self, eps, training=None):
        return self._q.bijector.forward(eps)

    def losses_at(self, eps: tf.Tensor, beta=None) -> tuple[tf.Tensor, tf.Tensor]:
        """``(negative bound, loss to differentiate)`` for base noise ``[K, S, *event]``. With
        ``beta`` (and an `Annealing`), the loss is that of the annealed target; the bound
        stays ``p~``'s."""
        if beta is None or self.annealing is None:
            return objective(*log_weights(self._q, self._target, eps, self.stick_the_landing))
        seen, event_ndims = {}, self._q.event_shape.rank

        def annealed(z):
            reference = self.annealing.log_reference(z, event_ndims)
            seen["gap"] = self._target(z) - reference  # for the bound of p~: no second call
            return reference + beta * seen["gap"]

        log_w, path = log_weights(self._q, annealed, eps, self.stick_the_landing)
        _, loss = objective(log_w, path)
        value, _ = objective(*(2 * [log_w + (1 - beta) * seen["gap"]]))
        return value, loss

    def train_step(self, data):
        eps = data[0] if isinstance(data, (tuple, list)) else data
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            value, loss = self.losses_at(tf.cast(eps, self._q.dtype), self.beta())
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
    sample_size: int = 256,
    importance_samples: int = 1,
    stick_the_landing: bool = False,
    annealing: Annealing | None = DEFAULT_ANNEALING,
    optimizer=None,
    learning_rate: float = 4e-3,
    cosine_decay: bool = True,
    jit_compile: bool = True,
    steps_per_execution: int = 10,
    restarts: int = 1,
    warn: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """Fits ``flow`` to ``target_log_prob_fn`` by reverse KL (see `VIModel`) in a plain loop.

    The noise is drawn eagerly (outside XLA), ``steps_per_execution`` steps' worth at a time,
    and each compiled call runs that many gradient steps (fewer calls from Python: 256 samples
    a step then cost what 64 did one step a call).
    The defaults are chosen to find every mode of a multimodal target at no extra cost per
    step (``benchmarks/vi_robust.py``): ``annealing`` tempers the target over the first 30%
    of the steps, and Adam's ``learning_rate`` decays to 0 along a cosine over ``num_steps``
    (``cosine_decay=False``: constant). An ``optimizer`` given replaces both of the latter.
    With ``warn``, `check_fit` runs at the end (4096 draws of ``q``) and warns
    (`VIFitWarning`) when ``q`` misses mass of ``p``.

    ``restarts=R`` trains ``flow`` and ``R - 1`` fresh copies of it (`fresh_copy`: same layers,
    new initial weights, each its own noise) side by side in the same compiled steps, and
    keeps the one with the highest ELBO on 4096 common draws (`best_elbo`): ``flow`` ends with
    its weights. It costs ``R`` fits' compute (and compiling) and pays where single fits
    end apart from seed to seed (``benchmarks/vi_robust.py``). The first restart is the fit
    ``restarts=1`` would run: same initial weights, same noise.

    Returns:
      The negative bound at every step, in nats (``log Z - ELBO >= 0`` is the KL(q || p)),
      of ``p~`` itself also while the annealing runs (with restarts, the kept one's).

    >>> import tensorflow as tf, tfp_realnvp as trn
    >>> flow = trn.radial_flow(2, 2)
    >>> target = lambda z: -0.5 * tf.reduce_sum(z**2, -1)
    >>> losses = fit_vi(flow, target, 3, sample_size=8, jit_compile=False)
    >>> losses.shape
    (3,)
    """
    num_steps = positive_int(num_steps, "num_steps")
    steps_per_execution = positive_int(steps_per_execution, "steps_per_execution")
    settings = dict(
        sample_size=sample_size,
        importance_samples=importance_samples,
        stick_the_landing=stick_the_landing,
        annealing=annealing,
    )
    model = VIModel(flow, target_log_prob_fn, **settings)
    models = [model] + [
        VIModel(fresh_copy(model.distribution), target_log_prob_fn, **settings)
        for _ in range(positive_int(restarts, "restarts") - 1)
    ]
    if optimizer is None:
        schedule = learning_rate
        if cosine_decay:
            schedule = keras.optimizers.schedules.CosineDecay(learning_rate, num_steps)
        optimizer = keras.optimizers.Adam(schedule)
    variables = [v for m in models for v in m.trainable_variables]
    optimizer.build(variables)  # its slots, before the compiled step
    for m in models:
        m.optimizer = optimizer
        if annealing is not None:
            m.plan_annealing(num_steps)

    def step(eps):  # eps: [restarts, K, S, *event]; each restart's loss is its own gradient's
        with tf.GradientTape() as tape:
            pairs = [m.losses_at(eps[r], m.beta()) for r, m in enumerate(models)]
            loss = tf.add_n([part for _, part in pairs])
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return tf.stack([value for value, _ in pairs])

    def steps(eps, n):  # the first n of the steps_per_execution noise batches in eps
        values = tf.zeros([steps_per_execution, len(models)], eps.dtype)
        for i in tf.range(n):
            values = tf.tensor_scatter_nd_update(values, [[i]], [step(eps[i])])
        return values

    run = own_function(steps, jit_compile=jit_compile)

    # Restart r draws its noise from seed + r * _RESTART_SEEDS: the first is restarts=1's.
    streams = tuple(m.noise(seed + r * _RESTART_SEEDS) for r, m in enumerate(models))
    noise = tf.data.Dataset.zip(streams).map(lambda *eps: tf.stack(eps))
    noise = iter(noise.batch(steps_per_execution))
    losses = []
    for done in range(0, num_steps, steps_per_execution):
        n = min(steps_per_execution, num_steps - done)
        losses.append(run(next(noise), tf.constant(n))[:n].numpy())
    losses = np.concatenate(losses).astype(np.float64)
    kept = 0
    if len(models) > 1:
        kept, _ = best_elbo([m.distribution for m in models], target_log_prob_fn, seed=seed)
        copy_weights(model.distribution, models[kept].distribution)
    losses = losses[:, kept]
    if warn:
        check_fit(model, target_log_prob_fn, seed=seed)
    return losses
