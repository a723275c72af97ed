"""`fit_vi` and `VIModel.fit`: each option reaches the fit it runs, read from what the fit
does (closed forms where ``q = N(0, I)`` is an identity flow), and their documented defaults
and refusals. The fit itself against known KLs is in `tests/test_vi.py`."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.vi import Annealing, fit_vi
from tfp_realnvp.vi.trainer import DEFAULT_ANNEALING


def standard_normal(z):
    """``log p~`` of N(0, I): what a fresh flow (the identity) already is, up to log Z."""
    return -0.5 * tf.reduce_sum(z**2, -1)


def shifted(z):
    """``log p~`` of N((1, 1), I), normalised: KL(N(0, I) || p) = |mu|^2 / 2 = 1 nat."""
    return -0.5 * tf.reduce_sum((z - 1.0) ** 2, -1) - np.log(2 * np.pi)


def _fit(target, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """(losses, the flow's weights after the fit) of 3 small steps from the identity."""
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([2], 2, [4])
    settings = dict(sample_size=64, jit_compile=False, warn=False, seed=1)
    losses = fit_vi(flow, target, 3, **{**settings, **kwargs})
    weights = trn.VIModel(flow, target).trainable_variables
    return losses, _flat(weights)


def _flat(variables) -> np.ndarray:
    """The values of ``variables`` as one vector."""
    return np.concatenate([tf.reshape(v, [-1]).numpy() for v in variables])


def test_sticking_the_landing_and_no_annealing_leave_an_exact_fit_still():
    """q = p from the start: with STL and no annealing every gradient is zero, so plain SGD
    does not move; without STL the score term moves it, and so does the annealing (its
    tempered target is not q)."""
    start = _fit(standard_normal, optimizer=keras.optimizers.SGD(0.0))[1]
    still = _fit(
        standard_normal,
        stick_the_landing=True,
        annealing=None,
        optimizer=keras.optimizers.SGD(0.1),
    )[1]
    np.testing.assert_allclose(still, start, atol=1e-6)
    for moved in (
        dict(stick_the_landing=False, annealing=None),
        dict(stick_the_landing=True),  # the default annealing
    ):
        weights = _fit(standard_normal, optimizer=keras.optimizers.SGD(0.1), **moved)[1]
        assert np.max(np.abs(weights - start)) > 1e-3, moved


def test_importance_samples_tighten_the_bound():
    """q = N(0, I) held still (learning rate 0) against N((1, 1), I): the negative ELBO is the
    KL, 1 nat; with K = 8 importance samples the bound is tighter."""
    still = keras.optimizers.SGD(0.0)
    elbo, _ = _fit(shifted, optimizer=still, annealing=None)
    assert abs(np.mean(elbo) - 1.0) < 0.15  # 3 x 64 draws: standard error ~0.1
    iwae, _ = _fit(shifted, optimizer=keras.optimizers.SGD(0.0), importance_samples=8,
                   annealing=None)  # fmt: skip
    assert np.mean(iwae) < 0.7


@pytest.mark.tf_keras  # Keras' optimizer and schedule
@pytest.mark.parametrize("cosine_decay", [True, False])
def test_the_learning_rate_is_adams_with_or_without_cosine_decay(cosine_decay):
    schedule = keras.optimizers.schedules.CosineDecay(0.05, 3) if cosine_decay else 0.05
    given, _ = _fit(shifted, learning_rate=0.05, cosine_decay=cosine_decay)
    same, _ = _fit(shifted, optimizer=keras.optimizers.Adam(schedule))
    np.testing.assert_allclose(given, same, rtol=1e-6)
    other = 0.05 if cosine_decay else keras.optimizers.schedules.CosineDecay(0.05, 3)
    differs, _ = _fit(shifted, optimizer=keras.optimizers.Adam(other))
    assert not np.allclose(given, differs, rtol=1e-6)


def test_the_documented_defaults(defaults):
    assert defaults(fit_vi) == dict(
        num_steps=1000, sample_size=256, importance_samples=1, stick_the_landing=False,
        annealing=DEFAULT_ANNEALING, optimizer=None, learning_rate=4e-3, cosine_decay=True,
        jit_compile=True, steps_per_execution=10, restarts=1, warn=True, seed=0,
    )  # fmt: skip


@pytest.mark.parametrize("argument", ["num_steps", "steps_per_execution"])
def test_bad_counts_are_named(refusal, argument):
    kwargs = {"num_steps": 3, argument: 0}
    message = refusal(ValueError, fit_vi, trn.real_nvp([2], 2, [4]), standard_normal, **kwargs)
    assert message == f"`{argument}` must be a positive integer; got 0."


def _annealed_model(**kwargs) -> trn.VIModel:
    """The identity flow against N(0, I), compiled with SGD, annealed from beta 0.5 to 1
    linearly over all of its first fit's steps."""
    keras.utils.set_random_seed(0)
    model = trn.VIModel(
        trn.real_nvp([2], 2, [4]), standard_normal, sample_size=8,
        annealing=Annealing(fraction=1.0, start=0.5), **kwargs,
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    return model


def _planned_steps(fit, first_step: int = 0) -> float:
    """The number of steps a `VIModel.fit` call spread the annealing over, read back from beta
    one step after ``first_step``, the optimizer's step count when the fit began."""
    model = _annealed_model()
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(first_step)
    fit(model)
    steps_run = int(model.optimizer.iterations) - first_step
    model.optimizer.iterations.assign(first_step + 1)
    planned = 0.5 / (float(model.beta()) - 0.5)
    assert planned == pytest.approx(steps_run, rel=1e-5)  # the plan is the steps it ran
    return planned


@pytest.mark.tf_keras  # VIModel.fit's arguments
@pytest.mark.parametrize(
    "fit, steps",
    [
        (lambda m: m.fit(epochs=3, steps_per_epoch=4, verbose=0, warn=False), 12),
        (lambda m: m.fit(steps_per_epoch=4, verbose=0, warn=False), 4),  # one epoch
        (lambda m: m.fit(None, None, None, 3, steps_per_epoch=4, verbose=0, warn=False), 12),
        (lambda m: m.fit(epochs=5, initial_epoch=2, steps_per_epoch=4, verbose=0, warn=False), 12),
        (lambda m: m.fit(verbose=0, warn=False), 100),  # 100 steps an epoch by default
    ],
    ids=["epochs", "default-epochs", "positional-epochs", "initial-epoch", "default-steps"],
)
def test_vi_model_fit_spreads_the_annealing_over_the_steps_it_runs(fit, steps):
    assert _planned_steps(fit) == pytest.approx(steps, rel=1e-5)


def test_the_annealing_starts_where_the_first_fit_starts_and_a_one_step_fit_anneals(refusal):
    fit = lambda m: m.fit(epochs=2, steps_per_epoch=4, verbose=0, warn=False)  # noqa: E731
    assert _planned_steps(fit, first_step=10) == pytest.approx(8, rel=1e-5)
    model = _annealed_model()
    model.fit(epochs=1, steps_per_epoch=1, verbose=0, warn=False)
    model.optimizer.iterations.assign(0)
    assert float(model.beta()) == pytest.approx(0.5)  # its one step ran at the start's beta
    message = refusal(ValueError, _annealed_model().plan_annealing, 0)
    assert message == "`num_steps` must be a positive integer; got 0."
    message = refusal(ValueError, _annealed_model().fit, steps_per_epoch=-1, verbose=0)
    assert message == "`steps_per_epoch` must be a positive integer; got -1."


def test_sticking_the_landing_holds_in_the_annealed_loss():
    """At beta 1 the annealed loss is p~'s, and with STL at q = p its gradient is zero."""
    model = _annealed_model(stick_the_landing=True)
    eps = tf.random.stateless_normal([1, 64, 2], [7, 8])
    with tf.GradientTape() as tape:
        _, loss = model.losses_at(eps, tf.constant(1.0))
    grads = tape.gradient(loss, model.trainable_variables)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in grads) < 1e-6


def test_fit_vi_fits_a_float64_flow():
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([2], 2, [4], dtype=tf.float64)
    losses = fit_vi(flow, shifted, 2, sample_size=8, jit_compile=False, warn=False)
    assert losses.dtype == np.float64 and np.all(np.isfinite(losses))


@pytest.mark.tf_keras  # VIModel.fit through Keras
def test_vi_model_fit_follows_its_seed_and_asks_for_no_shuffle():
    def losses(seed):
        keras.utils.set_random_seed(0)
        model = trn.VIModel(trn.real_nvp([2], 2, [4]), shifted, sample_size=16)
        model.compile(optimizer=keras.optimizers.Adam(0.01), jit_compile=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit(epochs=2, steps_per_epoch=3, verbose=0, seed=seed, warn=False)
        # Keras 3 warns when `shuffle=True` meets a tf.data stream: nothing to shuffle here.
        assert not [w for w in caught if "shuffle" in str(w.message)]
        return history.history["loss"]

    assert losses(3) == losses(3)
    assert losses(3) != losses(4)


def _vi_model_weights(annealing, x=None) -> np.ndarray:
    """The weights after `VIModel.fit` from the identity (q = p = N(0, I)) with STL and SGD
    (0.1), 4 steps, on its own noise stream or on ``x``."""
    keras.utils.set_random_seed(0)
    model = trn.VIModel(
        trn.real_nvp([2], 2, [4]), standard_normal, sample_size=16, stick_the_landing=True,
        annealing=annealing,
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    model.fit(x, epochs=1, steps_per_epoch=4, verbose=0, seed=2, warn=False)
    return _flat(model.trainable_variables)


def test_vi_model_fit_anneals_and_takes_noise_of_your_own():
    """With STL at q = p only the annealing moves the weights; noise given as ``x`` (bare or
    as 1-tuples, as Keras hands datasets of features) trains as the stream does."""
    keras.utils.set_random_seed(0)
    start = _flat(trn.real_nvp([2], 2, [4]).trainable_variables)
    np.testing.assert_allclose(_vi_model_weights(None), start, atol=1e-6)
    annealed = _vi_model_weights(Annealing())
    assert np.max(np.abs(annealed - start)) > 1e-3
    noise = tf.random.stateless_normal([4, 1, 16, 2], [5, 6])  # 4 batches of [K, S, 2]
    bare = _vi_model_weights(Annealing(), tf.data.Dataset.from_tensor_slices(noise))
    tuples = _vi_model_weights(Annealing(), tf.data.Dataset.from_tensor_slices((noise,)))
    np.testing.assert_array_equal(bare, tuples)
    assert np.max(np.abs(bare - start)) > 1e-3 and not np.allclose(bare, annealed)
