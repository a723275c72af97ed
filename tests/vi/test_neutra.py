"""`neutra_kernel` and `sample_neutra`: the kernel they build (its documented defaults, the
flow as the transport), the burn-in's adaptation, the trace's counts and the seed. The chains'
moments on an exact transport are checked in `tests/test_vi.py`."""

import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp.vi import neutra, neutra_kernel, sample_neutra

tfb = tfp.bijectors
mcmc = tfp.mcmc


@functools.cache
def shift():
    """The exact transport to ``target``, built on first use: a tensor made at import would
    start TensorFlow's thread pools in the process that collects the tests, and a process
    forked from it (mutmut's workers) then waits forever on a `tf.function`."""
    return tfb.Shift(tf.constant([1.0, -2.0]))


def target(z):
    return -0.5 * tf.reduce_sum((z - [1.0, -2.0]) ** 2, -1)


def test_the_kernel_is_nuts_in_the_flows_latent_space_with_the_documented_defaults():
    kernel = neutra_kernel(shift(), target)
    assert isinstance(kernel, mcmc.DualAveragingStepSizeAdaptation)
    assert kernel.num_adaptation_steps == 100
    assert float(kernel.parameters["target_accept_prob"]) == pytest.approx(0.75)
    transformed = kernel.inner_kernel
    assert isinstance(transformed, mcmc.TransformedTransitionKernel)
    assert transformed.bijector is shift()
    nuts = transformed.inner_kernel
    assert isinstance(nuts, mcmc.NoUTurnSampler)
    assert (nuts.step_size, nuts.max_tree_depth) == (0.5, 10)
    assert nuts.target_log_prob_fn is target


def test_hmc_takes_its_leapfrog_steps_and_every_setting_is_passed_on():
    kernel = neutra_kernel(
        shift(),
        target,
        kind="hmc",
        step_size=0.2,
        num_leapfrog_steps=7,
        num_adaptation_steps=30,
        target_accept_prob=0.6,
    )
    hmc = kernel.inner_kernel.inner_kernel
    assert isinstance(hmc, mcmc.HamiltonianMonteCarlo)
    assert (hmc.step_size, hmc.num_leapfrog_steps) == (0.2, 7)
    assert (
        neutra_kernel(shift(), target, kind="hmc").inner_kernel.inner_kernel.num_leapfrog_steps == 4
    )
    assert kernel.num_adaptation_steps == 30
    assert float(kernel.parameters["target_accept_prob"]) == pytest.approx(0.6)
    nuts = neutra_kernel(shift(), target, max_tree_depth=3).inner_kernel.inner_kernel
    assert nuts.max_tree_depth == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "mala"}, "`kind` must be one of ('nuts', 'hmc'); got 'mala'."),
        ({"max_tree_depth": 0}, "`max_tree_depth` must be a positive integer; got 0."),
        (
            {"kind": "hmc", "num_leapfrog_steps": 0},
            "`num_leapfrog_steps` must be a positive integer; got 0.",
        ),
        ({"num_adaptation_steps": 0}, "`num_adaptation_steps` must be a positive integer; got 0."),
    ],
)
def test_bad_settings_are_named(refusal, kwargs, message):
    assert refusal(ValueError, neutra_kernel, shift(), target, **kwargs) == message


def _run(seed=1, **kwargs):
    settings = dict(num_chains=3, num_burnin_steps=10, kind="hmc", seed=seed, event_shape=[2])
    return sample_neutra(shift(), target, 6, jit_compile=False, **{**settings, **kwargs})


def test_sample_neutra_traces_each_kept_step_and_follows_its_seed():
    samples, trace = _run(num_leapfrog_steps=3)
    assert samples.shape == (6, 3, 2)
    assert set(trace) == {"step_size", "accept_ratio", "gradients"}
    assert trace["step_size"].shape == (6,)  # one step size for every chain
    assert trace["accept_ratio"].shape == (6, 3)
    ratio = trace["accept_ratio"].numpy()
    assert np.all((ratio > 0) & (ratio <= 1))
    np.testing.assert_array_equal(trace["gradients"], [6 * 3] * 3)  # results x leapfrog steps
    again, _ = _run(num_leapfrog_steps=3)
    np.testing.assert_array_equal(again, samples)
    other, _ = _run(seed=2, num_leapfrog_steps=3)
    assert not np.allclose(other, samples)


def test_nuts_counts_the_leapfrog_steps_it_took():
    _, trace = _run(kind="nuts", max_tree_depth=2)
    gradients = trace["gradients"].numpy()
    assert gradients.shape == (3,)
    assert np.all((gradients >= 6) & (gradients <= 6 * 3))  # 1 to 2^2 - 1 steps per result


def test_the_burn_in_adapts_the_step_size_over_its_first_80_percent(monkeypatch):
    seen = {}
    real = neutra.neutra_kernel

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(neutra, "neutra_kernel", spy)
    _, trace = _run(num_burnin_steps=10, step_size=0.3)
    assert seen["num_adaptation_steps"] == 8 and seen["kind"] == "hmc"
    assert seen["step_size"] == 0.3  # the kernel's settings are passed on
    np.testing.assert_array_equal(trace["gradients"], [6 * 4] * 3)  # HMC's default 4 steps
    _run(num_burnin_steps=1)
    assert seen["num_adaptation_steps"] == 1


def test_sample_neutra_runs_in_the_flows_dtype():
    shift64 = tfb.Shift(tf.constant([1.0, -2.0], tf.float64))
    samples, _ = sample_neutra(
        shift64,
        target,
        3,
        num_chains=2,
        num_burnin_steps=2,
        kind="hmc",
        event_shape=[2],
        jit_compile=False,
    )
    assert samples.dtype == tf.float64


@pytest.mark.parametrize("argument", ["num_results", "num_burnin_steps", "num_chains"])
def test_bad_chain_lengths_are_named(refusal, argument):
    settings = {**dict(num_results=6, num_burnin_steps=10, num_chains=3), argument: 0}
    message = refusal(ValueError, sample_neutra, shift(), target, event_shape=[2], **settings)
    assert message == f"`{argument}` must be a positive integer; got 0."


def test_the_documented_defaults(defaults):
    assert defaults(sample_neutra) == dict(
        num_results=500,
        num_chains=4,
        num_burnin_steps=200,
        kind="nuts",
        seed=0,
        jit_compile=True,
        event_shape=None,
    )
