"""The element-wise transformers alone: round trips, log-dets against autodiff derivatives in
float64, the identity at zero parameters (which the image layout relies on), and configs."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_realnvp.bijectors import Additive, Affine, Transformer
from tfp_realnvp.bijectors.transformers import (
    check_scale,
    conditioner_outputs,
    log_scale,
    registered_transformers,
    transformer_class,
)

TRANSFORMERS = {
    "soft_clamp": lambda: Affine("soft_clamp", clamp=1.5),
    "sigmoid": lambda: Affine("sigmoid"),
    "exp": lambda: Affine("exp"),
    "tanh": lambda: Affine("tanh"),
    "additive": Additive,
}


def _built(name, units=5):
    transformer = TRANSFORMERS[name]()
    transformer.build((units,), "float64")
    for layer in transformer.layers:  # "tanh": learned factors off their start of 1
        layer.scale.assign(np.linspace(0.5, 2.0, units))
    return transformer


def _outputs(transformer, seed, units=5):
    rng = np.random.default_rng(seed)
    return tuple(
        tf.constant(2 * rng.normal(size=(3, units))) for _ in range(transformer.num_params)
    )


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_round_trip_and_log_dets_match_autodiff(name):
    transformer = _built(name)
    params = transformer.params(_outputs(transformer, 0))
    x = tf.constant(np.random.default_rng(1).normal(size=(3, 5)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z, ildj = transformer.inverse(x, params)
    with tf.GradientTape() as tape2:
        tape2.watch(z)
        x_back, fldj = transformer.forward(z, params)
    np.testing.assert_allclose(x_back, x, rtol=1e-12, atol=1e-12)
    dz_dx = tape.gradient(z, x)  # element-wise map: the Jacobian is diagonal
    dx_dz = tape2.gradient(x_back, z)
    if name == "additive":
        assert ildj is None and fldj is None
        np.testing.assert_allclose(dz_dx, 1.0, rtol=1e-12)
        assert not np.allclose(z, x)
    else:
        np.testing.assert_allclose(ildj, np.log(dz_dx), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fldj, np.log(dx_dz), rtol=1e-10, atol=1e-12)
        assert np.ptp(ildj) > 0.1  # the scale really varies


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_zero_parameters_are_the_identity(name):
    transformer = _built(name)
    params = tuple(tf.zeros_like(p) for p in transformer.params(_outputs(transformer, 2)))
    x = tf.constant(np.random.default_rng(3).normal(size=(3, 5)))
    for direction in (transformer.inverse, transformer.forward):
        y, ldj = direction(x, params)
        np.testing.assert_array_equal(y, x)
        assert ldj is None or not np.any(ldj)


@pytest.mark.parametrize(
    "scale, expected",
    [
        ("soft_clamp", lambda s: 1.5 * np.tanh(s / 1.5)),
        ("sigmoid", lambda s: -np.log1p(np.exp(-(s + 2.0)))),
        ("exp", lambda s: s),
    ],
)
def test_affine_log_scale_of_the_raw_output(scale, expected):
    affine = Affine(scale, clamp=1.5)
    raw = np.linspace(-6.0, 6.0, 7)
    _, log_s = affine.params((tf.zeros(7, tf.float64), tf.constant(raw)))
    np.testing.assert_allclose(log_s, expected(raw), rtol=1e-12)


def test_learned_tanh_factor_is_a_layer_the_coupling_can_track():
    affine = Affine("tanh")
    assert affine.layers == ()
    affine.build((2, 3), "float64")
    (layer,) = affine.layers
    assert [tuple(w.shape) for w in layer.weights] == [(2, 3)]
    assert Affine("exp").layers == Additive().layers == ()


def test_configs_rebuild_the_transformer():
    for transformer in (Affine("sigmoid"), Affine(clamp=2.0), Additive()):
        config = transformer.get_config()
        again = type(transformer).from_config(config)
        assert again.get_config() == config
    assert repr(Affine(clamp=2.0)) == "Affine(scale='soft_clamp', clamp=2.0)"
    assert (Affine().num_params, Additive().num_params) == (2, 1)


def test_base_class_leaves_the_map_to_subclasses():
    class Half(Transformer):
        param_names = ("unused",)

    with pytest.raises(NotImplementedError):
        Half().inverse(tf.ones(2), (tf.ones(2),))
    assert Half().unit_param_shapes == ((),)


def test_bad_scales_and_clamps_are_refused_word_for_word(refusal):
    assert refusal(ValueError, Affine, "none") == (
        "`scale` of Affine must not be 'none'; use Additive() for a shift."
    )
    none = refusal(ValueError, Affine, None)  # None means "none"
    assert none == refusal(ValueError, Affine, "none")
    scales = "('soft_clamp', 'tanh', 'sigmoid', 'exp', 'none')"
    assert refusal(ValueError, Affine, "relu") == f"`scale` must be one of {scales}; got 'relu'."
    for clamp in (0, -1.0, "3"):
        assert refusal(ValueError, Affine, clamp=clamp) == (
            f"`clamp` must be a positive number; got {clamp!r}."
        )
    assert (Affine().scale, Affine().clamp) == ("soft_clamp", 3.0)  # the documented defaults
    assert Affine(clamp=0.5).clamp == 0.5 and Affine(clamp=1).clamp == 1.0
    assert Affine("exp", clamp=0).clamp == 0.0  # only the soft clamp reads it
    assert check_scale(None, 1.0) == "none" and check_scale("tanh", 1.0) == "tanh"
    with pytest.raises(ValueError, match=r"^scale 'none' has no log-scale$"):
        log_scale(tf.zeros(2), "none", 1.0)
    shared = Affine("tanh")
    shared.build((3,), "float32")
    assert refusal(ValueError, shared.build, (3,), "float32") == (
        "this Affine(scale='tanh') already holds the learned factors of another coupling; give "
        "each coupling its own transformer."
    )


def test_transformers_are_known_by_name_and_count_their_outputs(refusal):
    class Doubling(Additive):
        pass

    known = registered_transformers()
    assert known["Affine"] is Affine and known["Doubling"] is Doubling
    assert transformer_class("Additive") is Additive
    names = sorted(known)
    assert refusal(ValueError, transformer_class, "Nope") == (
        f"unknown transformer 'Nope'; known: {names}. Import the module that defines it before "
        "loading."
    )
    known.clear()  # a copy: the registry keeps its names
    assert transformer_class("Affine") is Affine
    assert [conditioner_outputs(s) for s in ("none", "exp", "soft_clamp")] == [1, 2, 2]
