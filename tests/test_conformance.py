"""Every bijector the package ships, through the public conformance kit, in float64."""

import pytest
import tensorflow as tf

from tfp_realnvp import (
    ActNorm,
    AffineCoupling,
    Dequantize,
    FactorOut,
    Logit,
    LULinear,
    ResidualConvNet,
    ResidualMLP,
    Squeeze,
    channel_mask,
    checkerboard_mask,
    conditional_kwargs,
    initialize,
    multiscale_real_nvp,
    random_permutation,
    real_nvp,
    reverse_permutation,
    testing,
)
from tfp_realnvp._keras import keras

F64 = tf.float64


def _unit_interval(rng, shape):
    return rng.uniform(0.01, 0.99, size=shape)


def _tiny_multiscale(shape, **kwargs):
    """Two scales with one coupling (or Glow step) per stage and 4-channel conditioners."""
    return multiscale_real_nvp(
        shape,
        2,
        couplings_per_stage=1,
        final_couplings=1,
        hidden_channels=4,
        num_blocks=1,
        dtype=F64,
        **kwargs,
    )


def _mlp(units, outputs=2):
    return ResidualMLP(units, [8, 8], num_outputs=outputs, dtype="float64")


CASES = {
    "coupling-half": ([4], None, lambda: AffineCoupling(_mlp(2), num_masked=2, event_shape=[4])),
    "coupling-gather-tanh": (
        [5],
        None,
        lambda: AffineCoupling(_mlp(3), [False, True, False, True, False], scale="tanh"),
    ),
    "coupling-sigmoid": (
        [3],
        None,
        lambda: AffineCoupling(_mlp(2), num_masked=1, event_shape=[3], scale="sigmoid"),
    ),
    "coupling-exp": (
        [3],
        None,
        lambda: AffineCoupling(_mlp(1), num_masked=2, event_shape=[3], scale="exp"),
    ),
    "coupling-additive": (
        [4],
        None,
        lambda: AffineCoupling(_mlp(2, 1), num_masked=2, event_shape=[4], scale="none"),
    ),
    "coupling-conditional": (
        [4],
        [3],
        lambda: AffineCoupling(_mlp(2), num_masked=2, event_shape=[4], context_shape=[3]),
    ),
    "coupling-checkerboard": (
        [4, 4, 2],
        None,
        lambda: AffineCoupling(
            ResidualConvNet(2, 8, num_blocks=1, dtype="float64"), checkerboard_mask(4, 4, 2)
        ),
    ),
    "coupling-channel-conditional": (
        [2, 2, 4],
        [2],
        lambda: AffineCoupling(
            ResidualConvNet(4, 8, num_blocks=1, dtype="float64"),
            channel_mask(2, 2, 4),
            context_shape=[2],
        ),
    ),
    "lu-linear": ([4], None, lambda: LULinear([4], seed=1, dtype=F64)),
    "lu-1x1-conv": ([3, 3, 2], None, lambda: LULinear([3, 3, 2], seed=2, dtype=F64)),
    "reverse": ([4], None, lambda: reverse_permutation(4)),
    "random-permutation": ([5], None, lambda: random_permutation(5, seed=3)),
    "real-nvp-lu": (
        [4],
        None,
        lambda: real_nvp([4], 3, [8], permutation="lu", dtype=F64),
    ),
    "real-nvp-alternating-conditional": (
        [5],
        [2],
        lambda: real_nvp([5], 2, [8], mask="alternating", context_shape=[2], dtype=F64),
    ),
    "actnorm": ([2, 2, 3], None, lambda: ActNorm([2, 2, 3], dtype=F64)),
    "squeeze": ([4, 2, 1], None, lambda: Squeeze([4, 2, 1])),
    "factor-out": (
        [2, 2, 4],
        None,
        lambda: FactorOut(LULinear([2, 2, 2], seed=0, dtype=F64), [2, 2, 4]),
    ),
    "dequantize": ([3], None, lambda: Dequantize(17)),
    "logit": ([3], None, lambda: Logit(0.05)),
    "multiscale-realnvp": ([4, 4, 2], None, lambda: _tiny_multiscale([4, 4, 2])),
    "multiscale-glow-conditional": (
        [4, 4, 1],
        [2],
        lambda: _tiny_multiscale([4, 4, 1], glow=True, context_shape=[2]),
    ),
    "real-nvp-image": (
        [4, 4, 2],
        None,
        lambda: real_nvp([4, 4, 2], 2, [8], num_blocks=1, permutation="reverse", dtype=F64),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conformance(case):
    event_shape, context_shape, make = CASES[case]
    keras.utils.set_random_seed(0)  # the conditioners' initial weights, so no run is luckier
    bijector = make()
    x = tf.random.stateless_uniform([8, *event_shape], seed=[1, 2], dtype=F64)
    context = None if context_shape is None else tf.zeros([8, *context_shape], F64)
    kw = {} if context is None else conditional_kwargs(bijector, context)
    z = tf.random.stateless_normal(
        [8, *bijector.inverse_event_shape(event_shape)], [3, 4], dtype=F64
    )
    testing.check_call_order(bijector, x, z, len(event_shape), **kw)  # fresh: nothing moves
    initialize(bijector, x, context)  # ActNorm: data-dependent, and only when asked
    testing.perturb_variables(bijector, seed=0, stddev=0.3)
    sampler = _unit_interval if case == "logit" else None  # the logit's domain is [0, 1]
    testing.assert_conformant(bijector, event_shape, context_shape=context_shape, sampler=sampler)
