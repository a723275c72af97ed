"""Every bijector the package ships, through the public conformance kit, in float64, and
through the checks of TFP's bijector_test_util near the edges of its domain."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp import (
    ActNorm,
    Affine,
    AffineCoupling,
    Coupling,
    Dequantize,
    FactorOut,
    Logit,
    LULinear,
    RationalQuadraticSpline,
    ResidualConvNet,
    ResidualMLP,
    Squeeze,
    Whitening,
    channel_mask,
    checkerboard_mask,
    conditional_kwargs,
    keras,
    masked_autoregressive_flow,
    multiscale_real_nvp,
    neural_spline_flow,
    planar_flow,
    preprocessed_image_flow,
    radial_flow,
    random_permutation,
    real_nvp,
    reverse_permutation,
    testing,
    walk,
)

F64 = tf.float64


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


SPLINE = RationalQuadraticSpline(num_bins=4, bound=2.0)


def _spline_mlp(units):
    return ResidualMLP(units, [8], param_shapes=SPLINE.unit_param_shapes, dtype="float64")


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
    "coupling-generic-affine-gather": (
        [3],
        None,
        lambda: Coupling(_mlp(2), [False, True, False], Affine("exp")),
    ),
    "spline-coupling-gather": (
        [4],
        None,
        lambda: Coupling(
            _spline_mlp(2), [False, True, False, True], RationalQuadraticSpline(4, bound=2.0)
        ),
    ),
    "spline-coupling-checkerboard-conditional": (
        [4, 4, 2],
        [2],
        lambda: Coupling(
            ResidualConvNet(
                2, 8, num_blocks=1, param_shapes=SPLINE.unit_param_shapes, dtype="float64"
            ),
            checkerboard_mask(4, 4, 2),
            RationalQuadraticSpline(4, bound=2.0),
            context_shape=[2],
        ),
    ),
    "neural-spline-flow-lu": (
        [3],
        None,
        lambda: neural_spline_flow([3], 2, [8], num_bins=3, bound=2.0, permutation="lu", dtype=F64),
    ),
    "maf-spline": (
        [3],
        None,
        lambda: masked_autoregressive_flow(
            [3], 2, [8], transformer="spline", num_bins=3, bound=2.0, dtype=F64
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
    "maf-narrow-hidden": (
        [5],
        None,
        lambda: masked_autoregressive_flow([5], 2, [3], residual=True, dtype=F64),
    ),
    "iaf-conditional-tanh": (
        [4],
        [2],
        lambda: masked_autoregressive_flow(
            [4], 2, [8], inverse=True, scale="tanh", context_shape=[2], dtype=F64
        ),
    ),
    "planar-flow": ([3], None, lambda: planar_flow(3, 2, dtype=F64)),
    "radial-flow": ([3], None, lambda: radial_flow(3, 2, dtype=F64)),
    "actnorm": ([2, 2, 3], None, lambda: ActNorm([2, 2, 3], dtype=F64)),
    "squeeze": ([4, 2, 1], None, lambda: Squeeze([4, 2, 1])),
    "factor-out": (
        [2, 2, 4],
        None,
        lambda: FactorOut(LULinear([2, 2, 2], seed=0, dtype=F64), [2, 2, 4]),
    ),
    "dequantize": ([3], None, lambda: Dequantize(17)),
    "whitening": (
        [3],
        None,
        lambda: Whitening([1.0, -2.0, 0.5], [[2.0, 0, 0], [0.7, 0.5, 0], [-1.2, 0.3, 1.5]], F64),
    ),
    "logit": ([3], None, lambda: Logit(0.05)),
    "multiscale-realnvp": ([4, 4, 2], None, lambda: _tiny_multiscale([4, 4, 2])),
    "multiscale-glow-conditional": (
        [4, 4, 1],
        [2],
        lambda: _tiny_multiscale([4, 4, 1], glow=True, context_shape=[2]),
    ),
    "multiscale-spline": (
        [4, 4, 1],
        None,
        lambda: _tiny_multiscale([4, 4, 1], transformer="spline"),
    ),
    "real-nvp-image": (
        [4, 4, 2],
        None,
        lambda: real_nvp(
            [4, 4, 2], 2, hidden_channels=8, num_blocks=1, permutation="reverse", dtype=F64
        ),
    ),
    "preprocessed-real-nvp": (
        [4, 4, 1],
        None,
        lambda: preprocessed_image_flow(
            real_nvp([4, 4, 1], 2, hidden_channels=4, num_blocks=1, dtype=F64), num_levels=17
        ),
    ),
}

# (low, high) of the data for bijectors whose `inverse` takes less than the real line, and the
# magnitude of "large" inputs at the edge of an unbounded domain. It is 100 unless a bijector
# cannot hold there: a logistic sigmoid (Logit's forward) reaches 1 in float64 near 37, so
# latents far beyond 10 cannot come back (behind Logit the data [0, 17] map to latents within
# about ±3 before the flow, which may stretch them by e^3 per coupling); and Glow's "sigmoid"
# scale is unbounded, so stacked steps overflow or lose the round trip far out, even with the
# small random weights (stddev 0.1) the edge test gives them
# (see tfp_realnvp.bijectors.transformers).
DOMAINS = {
    "logit": (0.0, 1.0, 10.0),
    "preprocessed-real-nvp": (0.0, 17.0, 3.0),
    "multiscale-glow-conditional": (-np.inf, np.inf, 10.0),
}
UNBOUNDED = (-np.inf, np.inf, 100.0)

# How far the kit's check moves each case's weights off the identity start: 0.3 unless that is
# beyond what the case's maps can represent well. The multi-scale spline's conv conditioners
# have many inputs, and weights moved by 0.3 give raw spline parameters near ±5: bins shrink to
# the `min_bin_size` floor and slopes fall to ~1e-9, where any map loses ulp/slope ~1e-7 in a
# round trip (the log-det is -106 nats on a 16-pixel image). At 0.2 the raw parameters stay
# within ±2 and the log-dets within tens of nats.
PERTURBATION = {"multiscale-spline": 0.2}


def _built(case):
    """The case's fresh bijector, its event shape and context shape, and context kwargs."""
    event_shape, context_shape, make = CASES[case]
    keras.utils.set_random_seed(0)  # the conditioners' initial weights, so no run is luckier
    bijector = make()
    kw = {}
    if context_shape is not None:
        kw = conditional_kwargs(bijector, tf.zeros([1, *context_shape], F64))
    return bijector, event_shape, context_shape, kw


# The cases also compared against an XLA-compiled run (a third of the kit's time): together
# they hold every bijector class of the other cases (checked below), each coupling layout
# (slices, gathered units, checkerboard masks), a learned scale and a context.
XLA_CASES = {
    "coupling-checkerboard",
    "coupling-gather-tanh",
    "coupling-generic-affine-gather",
    "iaf-conditional-tanh",
    "multiscale-glow-conditional",
    "planar-flow",
    "preprocessed-real-nvp",
    "radial-flow",
    "real-nvp-image",
    "spline-coupling-checkerboard-conditional",
    "whitening",
}


def _classes(case):
    return {type(b) for b in walk(_built(case)[0])}


def test_xla_cases_hold_every_bijector_class():
    everywhere = set().union(*map(_classes, CASES))
    under_xla = set().union(*map(_classes, XLA_CASES))
    assert everywhere <= under_xla, sorted(c.__name__ for c in everywhere - under_xla)


# What the Keras version can change is how layers make, track and differentiate their
# variables, not the bijectors' math: under tf-keras the kit runs on the smallest case of each
# kind of layer (dense, convolutional and masked conditioners, each with a context where one
# takes it; LU, ActNorm, planar's own variables, Whitening's fixed ones); the rest, and the
# flows that stack them, run in the Keras 3 pass only.
KERAS_CASES = {
    "actnorm",
    "coupling-channel-conditional",
    "iaf-conditional-tanh",
    "lu-linear",
    "planar-flow",
    "real-nvp-alternating-conditional",
    "whitening",
}


def _one_per_layer_kind(case):
    return pytest.param(case, marks=pytest.mark.tf_keras) if case in KERAS_CASES else case


def test_the_keras_cases_are_cases():
    assert set(CASES) >= KERAS_CASES, sorted(KERAS_CASES - set(CASES))


@pytest.mark.parametrize("case", [_one_per_layer_kind(c) for c in sorted(CASES)])
def test_conformance(case):
    bijector, event_shape, context_shape, _ = _built(case)
    # Off the identity start; ActNorms stay uninitialised, so a call that initialised one
    # would fail the kit's call-order check.
    testing.perturb_variables(bijector, seed=0, stddev=PERTURBATION.get(case, 0.3))
    sampler = _inside(*DOMAINS.get(case, UNBOUNDED)[:2])
    testing.assert_conformant(
        bijector,
        event_shape,
        context_shape=context_shape,
        sampler=sampler,
        jit_compile=case in XLA_CASES,
    )


def _inside(low, high):
    """Draws data 1% of the range inside a bounded domain; standard normal otherwise."""
    if np.isinf(low) or np.isinf(high):
        return None
    margin = 0.01 * (high - low)
    return lambda rng, shape: rng.uniform(low + margin, high - margin, shape)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bijective_and_finite_near_domain_edges(case):
    """The two checks of TFP's bijector_test_util, in our code: bijective with finite outputs
    and log-dets at the edges of the domains, and the forward log-det there against the
    log-determinant of the autodiff Jacobian of the flattened map."""
    bijector, event_shape, _, kw = _built(case)
    testing.perturb_variables(bijector, seed=0, stddev=0.1)
    low, high, magnitude = DOMAINS.get(case, UNBOUNDED)
    x = testing.edge_points(event_shape, low, high, magnitude)
    z = testing.edge_points(bijector.inverse_event_shape(event_shape), magnitude=magnitude, seed=1)
    testing.check_bijective_and_finite(bijector, x, z, len(event_shape), **kw)
    testing.check_log_det_jacobian(bijector, z, len(event_shape), inverse=False, **kw)
