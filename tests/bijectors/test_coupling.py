"""AffineCoupling against closed forms, and its errors; Coupling with transformers of our own
through the conformance kit on every layout."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp import (
    AffineCoupling,
    ResidualConvNet,
    ResidualMLP,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    flow_distribution,
    half_mask,
    keras,
    testing,
)
from tfp_realnvp.bijectors import Additive, Affine, Coupling, Transformer
from tfp_realnvp.bijectors.layouts import MaskedLayout, SplitLayout, layout_for

tfb = tfp.bijectors


class LinearConditioner(tf.Module):
    """shift = x1 @ a, raw log-scale = tanh(x1 @ b): a conditioner whose outputs we can
    compute independently in NumPy."""

    def __init__(self, a, b, dtype=tf.float64):
        super().__init__()
        self.a = tf.Variable(a, dtype=dtype)
        self.b = tf.Variable(b, dtype=dtype)

    def __call__(self, x1):
        return x1 @ self.a, tf.tanh(x1 @ self.b)


def _closed_form(x, mask, a, b):
    x1, x2 = x[:, mask], x[:, ~mask]
    s, t = np.tanh(x1 @ b), x1 @ a
    z = x.copy()
    z[:, ~mask] = x2 * np.exp(s) + t
    return z, s.sum(-1)


@pytest.mark.parametrize(
    "mask",
    [
        np.array([True, False, False]),  # prefix: sliced
        np.array([False, False, True]),  # suffix: sliced
        np.array([False, True, False, True]),  # gathered
    ],
)
def test_inverse_is_data_to_latent_with_exact_log_det(mask):
    rng = np.random.default_rng(0)
    k, n = mask.sum(), (~mask).sum()
    a, b = rng.normal(size=(k, n)), rng.normal(size=(k, n))
    bij = AffineCoupling(LinearConditioner(a, b), mask, scale="exp", dtype=tf.float64)
    x = rng.normal(size=(6, mask.size))
    z_want, ildj_want = _closed_form(x, mask, a, b)
    np.testing.assert_allclose(bij.inverse(x), z_want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bij.inverse_log_det_jacobian(x, 1), ildj_want, rtol=1e-12)
    z = tf.constant(z_want)
    np.testing.assert_allclose(bij.forward(z), x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bij.forward_log_det_jacobian(tf.identity(z), 1), -ildj_want)


@pytest.mark.parametrize(
    "scale, expected",
    [
        ("soft_clamp", lambda s: 3.0 * np.tanh(s / 3.0)),
        ("sigmoid", lambda s: -np.log1p(np.exp(-(s + 2.0)))),
        ("exp", lambda s: s),
        ("tanh", np.tanh),  # learned factor starts at 1
    ],
)
def test_scale_parameterisations(scale, expected):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 2)), 3 * rng.normal(size=(2, 2))

    class Raw(LinearConditioner):
        def __call__(self, x1):
            return x1 @ self.a, x1 @ self.b

    bij = AffineCoupling(Raw(a, b), num_masked=2, event_shape=[4], scale=scale, dtype=tf.float64)
    x = rng.normal(size=(5, 4))
    log_s = expected(x[:, :2] @ b)
    np.testing.assert_allclose(bij.inverse_log_det_jacobian(x, 1), log_s.sum(-1), rtol=1e-10)
    np.testing.assert_allclose(bij.inverse(x)[:, 2:], x[:, 2:] * np.exp(log_s) + x[:, :2] @ a)


def test_soft_clamp_bounds_a_huge_raw_scale():
    class Huge(tf.Module):
        def __call__(self, x1):
            return tf.zeros_like(x1), 1e4 * tf.ones_like(x1)

    bij = AffineCoupling(Huge(), num_masked=1, event_shape=[2], clamp=2.0)
    ildj = bij.inverse_log_det_jacobian(tf.ones([3, 2]), 1)
    np.testing.assert_allclose(ildj, 2.0)


def test_additive_coupling_is_volume_preserving_but_not_constant_jacobian():
    rng = np.random.default_rng(2)
    bij = AffineCoupling(
        ResidualMLP(2, [8], num_outputs=1), num_masked=2, event_shape=[4], scale="none"
    )
    for v in bij.trainable_variables:
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    x = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    assert not bij.is_constant_jacobian
    np.testing.assert_array_equal(bij.inverse_log_det_jacobian(x, 1), np.zeros(3))
    assert not np.allclose(bij.inverse(x)[:, 2:], x[:, 2:])
    # TFP would compute the mean as if the map were affine if the flag were set; it must not.
    with pytest.raises(NotImplementedError):
        flow_distribution(bij).mean()


def test_image_mask_leaves_masked_pixels_untouched():
    mask = checkerboard_mask(4, 4, 2)

    class Const(tf.Module):
        def __call__(self, x1):
            return tf.ones_like(x1), 0.5 * tf.ones_like(x1)

    bij = AffineCoupling(Const(), mask, scale="exp")
    x = tf.random.normal([2, 4, 4, 2])
    z = bij.inverse(x).numpy()
    np.testing.assert_array_equal(z[:, mask], x.numpy()[:, mask])
    np.testing.assert_allclose(z[:, ~mask], x.numpy()[:, ~mask] * np.exp(0.5) + 1, rtol=1e-6)
    np.testing.assert_allclose(bij.inverse_log_det_jacobian(x, 3), 0.5 * (~mask).sum())


def test_two_instances_never_share_the_bijector_cache():
    def make():
        return AffineCoupling(ResidualMLP(2, [4]), num_masked=2, event_shape=[4])

    b1, b2 = make(), make()
    b2.conditioner.trainable_variables[-1].assign(tf.ones([4]))  # output bias: shift 1, scale e
    assert b1 != b2
    x = tf.random.normal([3, 4])
    z1, z2 = b1.inverse(x), b2.inverse(x)  # the very same tensor
    np.testing.assert_allclose(z1, x)
    assert not np.allclose(z1, z2)
    assert not np.allclose(b1.inverse_log_det_jacobian(x, 1), b2.inverse_log_det_jacobian(x, 1))


def test_trainable_variables_list_every_keras_weight():
    bij = AffineCoupling(ResidualMLP(2, [8, 8]), num_masked=2, event_shape=[4], scale="tanh")
    # 3 Dense layers (kernel + bias) and the learned tanh factor.
    assert len(bij.trainable_variables) == 7
    chain = tfb.Chain([tfb.Shift(1.0), bij])
    dist = flow_distribution(chain, event_shape=[4])
    ids = {id(v) for v in bij.trainable_variables}
    assert {id(v) for v in chain.trainable_variables} == ids
    assert {id(v) for v in dist.trainable_variables} == ids


def test_float64_flow():
    bij = AffineCoupling(ResidualMLP(2, [8], dtype="float64"), num_masked=2, event_shape=[4])
    z = bij.inverse(tf.ones([2, 4], tf.float64))
    assert z.dtype == tf.float64


def test_dtype_mismatch_names_both_dtypes():
    bij = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    with pytest.raises(TypeError, match=r"`x` has dtype float64.*computes in float32"):
        bij.inverse(np.zeros([2, 4]))
    with pytest.raises(TypeError, match=r"`z` has dtype float64.*computes in float32"):
        bij.forward(tf.zeros([2, 4], tf.float64))


def test_wrong_event_size_is_named():
    bij = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    with pytest.raises(
        ValueError, match=r"`x` must end in the event shape \(4,\); got shape \(2, 5\)"
    ):
        bij.inverse(tf.zeros([2, 5]))
    with pytest.raises(ValueError, match=r"event shape \(4,\); got shape \(\)"):
        bij.forward(tf.zeros([]))


def test_non_finite_input_rejected_with_validate_args():
    bij = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4], validate_args=True)
    x = tf.constant([[0.0, np.nan, 1.0, 2.0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`x` contains NaN or inf"):
        bij.inverse(x)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`z` contains NaN or inf"):
        bij.forward_log_det_jacobian(tf.constant([[0.0, np.inf, 1.0, 2.0]]), 1)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(mask=[True, True, True]), ValueError, "masks every unit"),
        (dict(mask=[1, 0, 1]), ValueError, "must be a boolean array"),
        (dict(mask=[True, False], num_masked=1), ValueError, "either `mask` or `num_masked`"),
        (dict(num_masked=1), ValueError, "`event_shape` is needed"),
        (dict(num_masked=2, event_shape=[2, 2]), ValueError, "splits vector events only"),
        (dict(num_masked=1, event_shape=[4], scale="bogus"), ValueError, "`scale` must be one of"),
        (
            dict(num_masked=1, event_shape=[4], clamp=-1.0),
            ValueError,
            "`clamp` must be a positive number",
        ),
    ],
)
def test_bad_construction_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        AffineCoupling(ResidualMLP(3, [4]), **kwargs)


def test_conditioner_output_shape_checked_at_construction():
    with pytest.raises(
        ValueError, match=r"must return \(shift, log_scale\), each of shape \(1, 2\)"
    ):
        AffineCoupling(ResidualMLP(3, [4]), num_masked=2, event_shape=[4])
    with pytest.raises(ValueError, match=r"must return a shift tensor of shape \(1, 2\)"):
        AffineCoupling(ResidualMLP(2, [4]), num_masked=2, event_shape=[4], scale="none")
    with pytest.raises(TypeError, match=r"`conditioner` must be a Keras layer or tf.Module"):
        AffineCoupling("not a network", num_masked=2, event_shape=[4])


def test_context_errors():
    cond = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4], context_shape=[3])
    x = tf.zeros([5, 4])
    with pytest.raises(ValueError, match=r"is conditional \(context_shape=\(3,\)\) and needs"):
        cond.inverse(x)
    with pytest.raises(ValueError, match=r"`context` must end in context_shape \(3,\); got"):
        cond.inverse(x, context=tf.zeros([5, 2]))
    uncond = AffineCoupling(ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    with pytest.raises(ValueError, match="this coupling is unconditional"):
        uncond.inverse(x, context=tf.zeros([5, 3]))
    # One context broadcasts over the batch.
    assert cond.inverse(x, context=tf.ones([3])).shape == (5, 4)


# A transformer of our own plugs into Coupling: the sinh-arcsinh map
# z = sinh(exp(log_scale) * asinh(x) + shift) is monotone, not affine, and the identity at zero
# parameters, as the multiplicative (image) layout needs.
class SinhArcsinh(Transformer):
    param_names = ("shift", "log_scale")

    def params(self, outputs):
        shift, raw = outputs
        return shift, tf.tanh(raw)

    def inverse(self, x, params):
        shift, log_s = params
        u = tf.exp(log_s) * tf.asinh(x) + shift
        return tf.sinh(u), log_s + tf.math.log(tf.cosh(u)) - 0.5 * tf.math.log1p(x * x)

    def forward(self, z, params):
        shift, log_s = params
        x = tf.sinh((tf.asinh(z) - shift) * tf.exp(-log_s))
        return x, -self.inverse(x, params)[1]


class PackedAffine(Transformer):
    """Affine with both parameters of a unit in one trailing axis, as a spline's bins are."""

    param_names = ("packed",)
    unit_param_shapes = ((2,),)

    def inverse(self, x, params):
        shift, log_s = params[0][..., 0], tf.tanh(params[0][..., 1])
        return x * tf.exp(log_s) + shift, log_s

    def forward(self, z, params):
        shift, log_s = params[0][..., 0], tf.tanh(params[0][..., 1])
        return (z - shift) * tf.exp(-log_s), -log_s


class Packed(keras.layers.Layer):
    """One conditioner output with a trailing axis of 2 per transformed unit."""

    def __init__(self, net, **kwargs):
        super().__init__(dtype="float64", **kwargs)
        self.net = net

    def call(self, x1, context=None):
        out = self.net(x1) if context is None else self.net(x1, context=context)
        return tf.reshape(out, (*out.shape[:-1], out.shape[-1] // 2, 2))


def _conditioner(event_shape, mask, per_unit=1, outputs=2):
    kw = dict(num_outputs=outputs, dtype="float64")
    if len(event_shape) == 1:
        units = int((~np.asarray(mask)).sum())
        return ResidualMLP(per_unit * units, [8], **kw)
    return ResidualConvNet(per_unit * event_shape[-1], 4, num_blocks=1, **kw)


LAYOUTS = {
    "prefix": ([4], half_mask(4)),
    "gather": ([5], alternating_mask(5)),
    "checkerboard": ([4, 4, 2], checkerboard_mask(4, 4, 2)),
    "channel": ([2, 2, 4], channel_mask(2, 2, 4, parity=1)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("transformer", [SinhArcsinh, PackedAffine])
def test_a_new_transformer_plugs_into_coupling(layout, transformer):
    event_shape, mask = LAYOUTS[layout]
    keras.utils.set_random_seed(0)
    if transformer is PackedAffine:
        conditioner = Packed(_conditioner(event_shape, mask, per_unit=2, outputs=1))
    else:
        conditioner = _conditioner(event_shape, mask)
    bij = Coupling(conditioner, mask, transformer())
    testing.perturb_variables(bij, seed=1, stddev=0.3)
    testing.assert_conformant(bij, event_shape)
    x = tf.random.stateless_normal([3, *event_shape], seed=[3, 4], dtype=tf.float64)
    z = bij.inverse(x).numpy()
    np.testing.assert_allclose(z[:, mask], x.numpy()[:, mask], rtol=1e-12, atol=1e-12)
    assert not np.allclose(z[:, ~mask], x.numpy()[:, ~mask])


def test_conditional_coupling_with_a_new_transformer():
    keras.utils.set_random_seed(0)
    mask = alternating_mask(5, parity=1)
    cond = _conditioner([5], mask)
    bij = Coupling(cond, mask, SinhArcsinh(), context_shape=[2])
    testing.perturb_variables(bij, seed=2, stddev=0.3)
    testing.assert_conformant(bij, [5], context_shape=[2])


@pytest.mark.parametrize("scale", ["soft_clamp", "tanh", "sigmoid", "exp", "none"])
def test_affine_coupling_is_the_coupling_with_the_affine_transformer(scale):
    keras.utils.set_random_seed(0)
    outputs = 1 if scale == "none" else 2
    cond = ResidualMLP(2, [8], num_outputs=outputs, dtype="float64")
    affine = AffineCoupling(cond, num_masked=2, event_shape=[4], scale=scale, clamp=2.0)
    transformer = Additive() if scale == "none" else Affine(scale, clamp=2.0)
    generic = Coupling(cond, half_mask(4), transformer)
    assert type(affine.transformer) is type(transformer)
    assert affine.transformer.get_config() == transformer.get_config()
    assert (affine.scale, affine.clamp) == (scale, 2.0)
    testing.perturb_variables(affine, seed=3, stddev=0.5)
    for mine, theirs in zip(generic.trainable_variables, affine.trainable_variables, strict=True):
        mine.assign(theirs)  # the conditioner's are shared; "tanh"'s learned factors are not
    x = tf.random.stateless_normal([6, 4], seed=[5, 6], dtype=tf.float64)
    np.testing.assert_array_equal(affine.inverse(x), generic.inverse(x))
    np.testing.assert_array_equal(
        affine.forward_log_det_jacobian(x, 1), generic.forward_log_det_jacobian(x, 1)
    )


def test_learned_tanh_factors_of_a_generic_coupling_are_tracked_and_trained():
    keras.utils.set_random_seed(0)
    mask = checkerboard_mask(2, 2, 2)
    bij = Coupling(_conditioner([2, 2, 2], mask), mask, Affine("tanh"))
    net = bij.conditioner.trainable_variables
    assert len(bij.trainable_variables) == len(net) + 1
    assert [tuple(v.shape) for v in bij.trainable_variables if v.shape == (2, 2, 2)]
    testing.perturb_variables(bij, seed=4, stddev=0.3)
    testing.assert_conformant(bij, [2, 2, 2])  # a non-zero gradient reaches every variable


def test_transformer_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"`transformer` must be a .*Transformer.*got str"):
        Coupling(ResidualMLP(2, [4]), half_mask(4), "affine")
    with pytest.raises(ValueError, match=r"use Additive\(\)"):
        Affine("none")
    with pytest.raises(ValueError, match=r"`clamp` must be a positive number; got 0"):
        Affine(clamp=0)
    shared = Affine("tanh")
    Coupling(ResidualMLP(2, [4]), half_mask(4), shared)
    with pytest.raises(ValueError, match="give each coupling its own transformer"):
        Coupling(ResidualMLP(2, [4]), ~half_mask(4), shared)
    with pytest.raises(
        ValueError, match=r"must return a packed tensor of shape \(1, 2, 2\) .*PackedAffine\(\)"
    ):
        Coupling(ResidualMLP(2, [4], num_outputs=1), half_mask(4), PackedAffine())


def test_split_layouts_slice_or_gather_and_merge_back():
    x = tf.reshape(tf.range(10.0), [2, 5])
    for mask in (half_mask(5), ~half_mask(5, 3), alternating_mask(5)):
        layout = layout_for(mask)
        assert isinstance(layout, SplitLayout)
        x1, x2 = layout.split(x)
        np.testing.assert_array_equal(x1, x.numpy()[:, mask])
        np.testing.assert_array_equal(x2, x.numpy()[:, ~mask])
        np.testing.assert_array_equal(layout.merge(x1, x2), x)
        assert layout.conditioner_input_shape == (mask.sum(),)
        assert layout.param_shape == ((~mask).sum(),)


def test_masked_layout_zeroes_the_parameters_of_copied_entries():
    mask = checkerboard_mask(2, 2, 1)
    layout = layout_for(mask)
    assert isinstance(layout, MaskedLayout)
    x = tf.ones([3, 2, 2, 1])
    x1, x2 = layout.split(x)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(x1, np.broadcast_to(mask, [3, 2, 2, 1]))
    shift, packed = layout.keep((2 * x, tf.ones([3, 2, 2, 1, 4])))
    np.testing.assert_array_equal(shift, np.broadcast_to(2 * ~mask, [3, 2, 2, 1]))
    np.testing.assert_array_equal(packed, np.broadcast_to(~mask[..., None], [3, 2, 2, 1, 4]))
    np.testing.assert_array_equal(layout.sum(shift), [4.0] * 3)


@pytest.mark.parametrize("made_by", ["template", "function"])
def test_a_tfp_shift_and_log_scale_fn_is_named_as_not_a_conditioner(made_by):
    # It ended in TFP's template stack: "_fn() missing 1 required positional argument".
    tfb = tfp.bijectors
    if made_by == "template":
        fn = tfb.real_nvp_default_template([8])
    else:

        def fn(x, output_units):
            return x[..., :output_units], x[..., :output_units]

    message = r"^`conditioner` is a TFP shift_and_log_scale_fn\(x, output_units\) .*ResidualMLP"
    with pytest.raises(TypeError, match=message):
        AffineCoupling(fn, num_masked=2, event_shape=[4])


def test_layouts_take_a_mask_of_zeros_and_ones_as_booleans():
    """A 0/1 mask given straight to a layout (public, as the layouts module's doctest uses
    them) is read as booleans: ``~mask`` of an integer array would be ``-1``/``-2``."""
    x = tf.reshape(tf.range(6.0), [2, 3])
    for make in (SplitLayout, layout_for):
        layout = make(np.array([1, 0, 1]))
        assert layout.mask.dtype == bool
        x1, x2 = layout.split(x)
        np.testing.assert_array_equal(x1, [[0.0, 2.0], [3.0, 5.0]])
        np.testing.assert_array_equal(layout.merge(x1, x2), x)
        assert layout.param_shape == (1,)
    image = MaskedLayout(np.array([[[1], [0]]]))
    (kept,) = image.keep((tf.ones([1, 1, 2, 1]),))
    np.testing.assert_array_equal(kept, [[[[0.0], [1.0]]]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mask=[True, False], num_masked=1), "pass either `mask` or `num_masked`, not both."),
        (
            dict(num_masked=1),
            "`event_shape` is needed when no `mask` is given (e.g. event_shape=[4] with "
            "num_masked=2).",
        ),
        (
            dict(num_masked=2, event_shape=[2, 2]),
            "`num_masked` splits vector events only; for an event of shape (2, 2) pass a `mask` "
            "(checkerboard_mask, channel_mask, ...).",
        ),
        (
            dict(mask=[True, False], event_shape=[3]),
            "`mask` must have the event's shape (3,); got shape (2,).",
        ),
    ],
)
def test_how_the_mask_is_given_is_refused_whole(refusal, kwargs, message):
    assert refusal(ValueError, AffineCoupling, ResidualMLP(3, [4]), **kwargs) == message


def test_num_masked_picks_the_first_units():
    bij = AffineCoupling(ResidualMLP(3, [4]), num_masked=1, event_shape=[4])
    np.testing.assert_array_equal(bij.mask, [True, False, False, False])


@pytest.mark.parametrize("make", [Coupling, AffineCoupling])
def test_conditioner_refusals_are_whole_and_give_the_input_shape_and_num_outputs(refusal, make):
    args = (half_mask(4), Affine()) if make is Coupling else (half_mask(4),)
    assert refusal(TypeError, make, 3, *args) == (
        "`conditioner` must be a Keras layer or tf.Module mapping the masked units to the "
        "transformer's parameters; got int."
    )
    mask = np.array([True, False, False])
    args = (mask, Affine()) if make is Coupling else (mask,)
    assert refusal(ValueError, make, ResidualMLP(3, [4]), *args, name="c") == (
        "c: `conditioner` must return (shift, log_scale), each of shape (1, 2) for a batch of 1 "
        "(Affine(scale='soft_clamp', clamp=3.0)); got [(1, 3), (1, 3)]. With this mask the "
        "conditioner sees inputs of shape (1, 1); our conditioners take num_outputs=2 for this "
        "transformer."
    )


COUPLINGS = {
    "coupling": lambda **kw: Coupling(
        ResidualMLP(2, [4], num_outputs=1), half_mask(4), Additive(), **kw
    ),
    "affine_coupling": lambda **kw: AffineCoupling(
        ResidualMLP(2, [4]), num_masked=2, event_shape=[4], scale="tanh", clamp=2.0, **kw
    ),
}


@pytest.mark.parametrize("kind", COUPLINGS)
def test_couplings_keep_their_name_parameters_dtype_and_config(plumbing, kind):
    """The TFP plumbing (see the `plumbing` fixture), a given ``dtype`` used, and a config that
    rebuilds the same coupling (mask, transformer, scale and clamp)."""
    make = COUPLINGS[kind]
    named = plumbing(make, kind)
    assert make(dtype=tf.float64).flow_dtype == tf.float64
    config = named.get_config()
    np.testing.assert_array_equal(config["mask"], half_mask(4))
    rebuilt = type(named).from_config(config)
    np.testing.assert_array_equal(rebuilt.mask, named.mask)
    assert rebuilt.transformer.get_config() == named.transformer.get_config()
    assert type(rebuilt.transformer) is type(named.transformer)
    if kind == "affine_coupling":
        assert "transformer" not in config
        assert (config["scale"], config["clamp"]) == ("tanh", 2.0)
        assert (rebuilt.scale, rebuilt.clamp) == ("tanh", 2.0)


def test_an_additive_coupling_in_float64_has_a_float64_zero_log_det():
    bij = Coupling(ResidualMLP(2, [4], num_outputs=1, dtype="float64"), half_mask(4), Additive())
    x = tf.ones([3, 4], tf.float64)
    log_det = bij.inverse_log_det_jacobian(x, event_ndims=1)
    assert log_det.dtype == tf.float64
    np.testing.assert_array_equal(log_det, np.zeros(3))
