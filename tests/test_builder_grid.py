"""Every value of every argument the builders take builds a flow that keeps the bijector
contract: the kit's call-order check, TFP's bijective-and-finite check near the domain's edges,
and log-dets against the autodiff Jacobian. Tiny float64 flows, one per grid point."""

import pytest
import tensorflow as tf

from tfp_realnvp import AffineCoupling, keras, multiscale_real_nvp, real_nvp, testing, walk
from tfp_realnvp.bijectors.scales import SCALES
from tfp_realnvp.stacks import IMAGE_MASKS, PERMUTATIONS, VECTOR_MASKS

F64 = tf.float64

# Every way to choose the coupling's transformer: each scale, and None (additive, as "none").
TRANSFORMERS = [{"scale": s} for s in (*SCALES, None)]

# How far out these flows, with random weights of scale 0.1, stay bijective in float64:
# bounded log-scales anywhere we looked, the unbounded "sigmoid" and "exp" only nearer in
# (see tfp_realnvp.bijectors.scales).
MAGNITUDE = {"sigmoid": 10.0, "exp": 3.0}
PERMUTATION_CHOICES = [*PERMUTATIONS, None]


def _vector_grid():
    """Each transformer with each mask, and each permutation (None too) with each mask."""
    return [
        (mask, PERMUTATION_CHOICES[i % len(PERMUTATION_CHOICES)], transformer)
        for mask in VECTOR_MASKS
        for i, transformer in enumerate(TRANSFORMERS)
    ]


def _image_grid():
    """Each transformer, each mask and each permutation at least once: behind them is the
    vectors' coupling code but for the mask layout, which the transformers all share."""
    return [
        (
            IMAGE_MASKS[i % len(IMAGE_MASKS)],
            PERMUTATION_CHOICES[i % len(PERMUTATION_CHOICES)],
            transformer,
        )
        for i, transformer in enumerate(TRANSFORMERS)
    ]


def _check_contract(flow, event_shape, magnitude):
    testing.perturb_variables(flow, seed=0, stddev=0.1)
    rank = len(event_shape)
    latent = flow.inverse_event_shape(event_shape)
    x = testing.edge_points(event_shape, magnitude=magnitude)
    z = testing.edge_points(latent, magnitude=magnitude, seed=1)
    testing.check_call_order(flow, x, z, rank)
    testing.check_bijective_and_finite(flow, x, z, rank)
    # TFP's check, forward only: the edge check above ties ildj to fldj.
    testing.check_log_det_jacobian(flow, z, rank, inverse=False)


def _id(point):
    mask, permutation, transformer = point
    return f"{mask}-{permutation}-{'-'.join(f'{k}={v}' for k, v in transformer.items())}"


@pytest.mark.parametrize(
    "event_shape, point",
    [([4], p) for p in _vector_grid()] + [([2, 2, 2], p) for p in _image_grid()],
    ids=[_id(p) for p in _vector_grid()] + [f"image-{_id(p)}" for p in _image_grid()],
)
def test_real_nvp_grid(event_shape, point):
    mask, permutation, transformer = point
    keras.utils.set_random_seed(0)
    # One conditioner-width argument per kind of event.
    width = {"hidden_channels": 4} if len(event_shape) == 3 else {"hidden_units": [4]}
    flow = real_nvp(
        event_shape,
        num_couplings=2,
        **width,
        mask=mask,
        permutation=permutation,
        num_blocks=1,
        dtype=F64,
        **transformer,
    )
    assert len(flow.bijectors) == (2 if permutation in ("alternate", "none", None) else 3)
    masks = [b.mask for b in flow.bijectors if isinstance(b, AffineCoupling)]
    if permutation == "alternate":  # the second coupling transforms what the first passed
        assert (masks[0] == ~masks[1]).all()
    else:
        assert (masks[0] == masks[1]).all()
    magnitude = MAGNITUDE.get(transformer.get("scale"), 100.0)
    _check_contract(flow, event_shape, magnitude)


# Each scale once, Glow's steps and RealNVP's in turn; the default (None) with both, since
# it means "sigmoid" with Glow and "soft_clamp" without.
MULTISCALE_GRID = [(i % 2 == 1, s) for i, s in enumerate(SCALES)] + [(False, None), (True, None)]


@pytest.mark.parametrize("glow, scale", MULTISCALE_GRID)
def test_multiscale_real_nvp_grid(glow, scale):
    # One scale: the transformer wiring is what varies here; FactorOut and two scales go
    # through test_conformance.
    keras.utils.set_random_seed(0)
    flow = multiscale_real_nvp(
        [2, 2, 2],
        1,
        hidden_channels=4,
        num_blocks=1,
        glow=glow,
        final_couplings=2,
        scale=scale,
        dtype=F64,
    )
    couplings = [b for b in walk(flow) if isinstance(b, AffineCoupling)]
    assert len(couplings) == 2
    assert {c.scale for c in couplings} == {scale or ("sigmoid" if glow else "soft_clamp")}
    magnitude = MAGNITUDE.get(couplings[0].scale, 100.0)
    _check_contract(flow, [2, 2, 2], magnitude)
