"""Every registered bijector class of the package is covered by the conformance cases, saves in
the Keras format and exports to a SavedModel: a new class cannot skip them."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from test_conformance import CASES

import tfp_realnvp as trn
from tfp_realnvp import keras, testing
from tfp_realnvp.bijectors.base import registered_bijectors
from tfp_realnvp.bijectors.transformers import registered_transformers
from tfp_realnvp.traversal import walk

tfb = tfp.bijectors


def _ours() -> set[str]:
    return {
        name
        for name, cls in registered_bijectors().items()
        if cls.__module__.startswith("tfp_realnvp.")
    }


def _tiny_multiscale(shape, **kwargs):
    return trn.multiscale_real_nvp(
        shape, 2, couplings_per_stage=1, final_couplings=1, hidden_channels=4, num_blocks=1,
        **kwargs,
    )  # fmt: skip


def _images(levels=None):
    rng = np.random.default_rng(0)
    if levels is None:
        return rng.normal(size=(6, 4, 4, 1)).astype("float32")
    return rng.uniform(0, levels, size=(6, 4, 4, 1)).astype("float32")


TRIL = [[2.0, 0.0, 0.0], [0.7, 0.5, 0.0], [-1.2, 0.3, 1.5]]

# A small flow holding each registered class, with data it is defined on.
FLOWS = {
    "vector": (lambda: trn.real_nvp([3], 2, [4], permutation="lu"), lambda: np.ones((5, 3)) * 0.3),
    "generic-coupling": (
        lambda: trn.Coupling(trn.ResidualMLP(2, [4]), trn.half_mask(3, 1), trn.Affine("tanh")),
        lambda: np.linspace(-1, 1, 15).reshape(5, 3),
    ),
    "rezende": (
        lambda: tfb.Chain([trn.planar_flow(3, 2), trn.radial_flow(3, 1)]),
        lambda: np.linspace(-1, 1, 15).reshape(5, 3),
    ),
    "glow": (lambda: _tiny_multiscale([4, 4, 1], glow=True), _images),
    "spline": (
        lambda: trn.neural_spline_flow([3], 2, [4], num_bins=3, bound=2.0),
        lambda: np.linspace(-3, 3, 15).reshape(5, 3),
    ),
    "maf": (
        lambda: trn.masked_autoregressive_flow([3], 2, [4]),
        lambda: np.linspace(-2, 2, 15).reshape(5, 3),
    ),
    "iaf": (
        lambda: trn.masked_autoregressive_flow([3], 2, [4], inverse=True, scale="tanh"),
        lambda: np.linspace(-2, 2, 15).reshape(5, 3),
    ),
    "whitened": (
        lambda: tfb.Chain([trn.Whitening([1.0, -2.0, 0.5], TRIL), trn.real_nvp([3], 2, [4])]),
        lambda: np.linspace(-3, 3, 15).reshape(5, 3),
    ),
    "preprocessed": (
        lambda: trn.preprocessed_image_flow(_tiny_multiscale([4, 4, 1]), num_levels=5),
        lambda: _images(levels=5),
    ),
}


def _types(bijector) -> set[str]:
    return {type(b).__name__ for b in walk(bijector)}


def test_every_registered_class_is_in_the_conformance_cases():
    covered = set().union(*(_types(make()) for _, _, make in CASES.values()))
    assert _ours() <= covered, f"no conformance case for {sorted(_ours() - covered)}"


def test_every_transformer_is_in_the_conformance_cases():
    def transformers(bijector):
        return {type(b.transformer).__name__ for b in walk(bijector) if hasattr(b, "transformer")}

    covered = set().union(*(transformers(make()) for _, _, make in CASES.values()))
    ours = {n for n, c in registered_transformers().items() if c.__module__.startswith("tfp_")}
    assert ours <= covered, f"no conformance case for {sorted(ours - covered)}"


def test_every_registered_class_is_saved_and_exported():
    covered = set().union(*(_types(make()) for make, _ in FLOWS.values()))
    assert _ours() <= covered, f"add a flow holding {sorted(_ours() - covered)} to FLOWS"


@pytest.mark.parametrize("kind", FLOWS)
def test_keras_file_and_saved_model_reproduce_the_density(kind, tmp_path):
    make, data = FLOWS[kind]
    model = trn.FlowModel(make())
    x = np.asarray(data(), np.float32)
    model.initialize(x)  # any ActNorm, from this batch
    testing.perturb_variables(model.bijector)
    want = model.log_prob(x).numpy()
    assert np.all(np.isfinite(want))

    model.save(str(tmp_path / "flow.keras"))
    loaded = keras.models.load_model(str(tmp_path / "flow.keras"))
    np.testing.assert_array_equal(loaded.log_prob(x), want)
    assert _types(loaded.bijector) == _types(model.bijector)

    trn.export_saved_model(model, str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served")).signatures["log_prob"]
    np.testing.assert_allclose(served(x=tf.constant(x))["log_prob"], want, rtol=1e-5, atol=1e-4)


class _Pair(tfb.Bijector):
    """A user's composite that is not ours: it says what it holds through ``children()``."""

    def __init__(self, first, second):
        self.first, self.second = first, second
        super().__init__(forward_min_event_ndims=1, name="pair")

    def children(self):
        return (self.first, self.second)

    def _forward(self, z, **kwargs):  # the context goes to the second only
        return self.first.forward(self.second.forward(z, **kwargs))

    def _inverse(self, x, **kwargs):
        return self.second.inverse(self.first.inverse(x), **kwargs)

    def _inverse_log_det_jacobian(self, x, **kwargs):
        y = self.first.inverse(x)
        first = self.first.inverse_log_det_jacobian(x, 1)
        return first + self.second.inverse_log_det_jacobian(y, 1, **kwargs)


@pytest.mark.tf_keras  # a user's Keras layers inside a bijector
def test_a_user_composite_with_children_is_walked_and_routed():
    inner = trn.real_nvp([2], 1, [4], context_shape=[1])
    coupling = next(b for b in walk(inner) if isinstance(b, trn.AffineCoupling))
    pair = _Pair(trn.LULinear([2], seed=1), inner)
    assert coupling in list(walk(pair))
    model = trn.FlowModel(pair)  # event shape, context shape and weights found through it
    assert model.event_shape_ == (2,) and model.context_shape_ == (1,)
    kw = trn.conditional_kwargs(pair, tf.ones([3, 1]))  # passed on as the pair passes them
    assert list(kw) == [coupling.name] and list(kw[coupling.name]) == ["context"]
    x = tf.constant([[0.1, 0.2], [0.3, -1.0], [2.0, 0.0]])
    want = model.distribution.log_prob(x, bijector_kwargs=kw)
    np.testing.assert_allclose(model.log_prob(x, context=tf.ones([3, 1])), want, rtol=1e-6)
    refs = {v.ref() for v in model.distribution.trainable_variables}
    assert {v.ref() for v in coupling.trainable_variables} <= refs
    assert len(model.trainable_variables) == len(refs)  # the Keras side finds each weight too


def test_unregistered_subclass_is_refused_by_name(tmp_path):
    class Mine(trn.Logit):
        pass

    model = trn.FlowModel(tfb.Chain([Mine(), trn.real_nvp([2], 1, [4])]))
    with pytest.raises(ValueError, match="type Mine: the class is not registered"):
        model.save(str(tmp_path / "flow.keras"))
    assert not (tmp_path / "flow.keras").exists()


def _flip(qualname: str):
    """A fresh FlowBijector class named ``Flip`` (x = -z) with the given ``__qualname__``."""

    class Flip(trn.FlowBijector):
        def __init__(self, name=None):
            super().__init__(forward_min_event_ndims=0, is_constant_jacobian=True, name=name)

        def get_config(self):
            return {}

        def _forward(self, z):
            return -z

        def _inverse(self, x):
            return -x

        def _forward_log_det_jacobian(self, z):
            return tf.zeros([], z.dtype)

    Flip.__qualname__ = qualname
    return Flip


def test_register_bijector_adds_a_class_once_and_refuses_what_it_cannot_save(monkeypatch, refusal):
    monkeypatch.setattr("tfp_realnvp.bijectors.base._REGISTRY", dict(registered_bijectors()))
    flip = _flip("user.Flip")
    assert "Flip" not in registered_bijectors()
    assert trn.register_bijector(flip) is flip  # a decorator: the class itself comes back
    assert registered_bijectors()["Flip"] is flip
    config = trn.serialization.bijector_to_config(flip(name="f"))
    assert config == {"class_name": "Flip", "name": "f", "config": {}}
    rebuilt = trn.serialization.bijector_from_config(config)
    assert type(rebuilt) is flip and rebuilt.name == "f"
    # The same class defined again (a module imported twice) replaces its entry ...
    again = _flip("user.Flip")
    assert trn.register_bijector(again) is again and registered_bijectors()["Flip"] is again
    # ... another class of that name would make saved files ambiguous: refused, entry kept.
    other = _flip("elsewhere.Flip")
    assert refusal(ValueError, trn.register_bijector, other) == (
        f"a bijector class named 'Flip' is registered already ({again!r})."
    )
    assert registered_bijectors()["Flip"] is again
    for wrong in (tfb.Exp, again(), "Flip"):
        assert refusal(TypeError, trn.register_bijector, wrong) == (
            f"register_bijector takes a FlowBijector subclass; got {wrong!r}."
        )
    # A registered class that does not describe itself is refused by name when saved.
    silent = trn.register_bijector(
        type("Silent", (again,), {"get_config": trn.FlowBijector.get_config})
    )
    assert refusal(NotImplementedError, trn.serialization.bijector_to_config, silent()) == (
        "Silent does not describe itself: implement get_config() (and register the class with "
        "tfp_realnvp.register_bijector) to save it in the Keras format; checkpoints and "
        "export_saved_model work without."
    )
    # The registry handed out is a copy: changing it registers nothing.
    registered_bijectors()["Other"] = other
    assert "Other" not in registered_bijectors()


# (make, (shape, dtype) of the zeros given to `inverse`, message). The zeros are made in the
# test: a tensor made at import starts TensorFlow in mutmut's fork server (docs/MUTATION.md).
BAD_INPUTS = {
    "squeeze-shape": (
        lambda: trn.Squeeze([4, 4, 1]),
        ([1, 4, 4, 2], tf.float32),
        r"squeeze_\d+: `x` must end in the event shape \(4, 4, 1\); got shape \(1, 4, 4, 2\)",
    ),
    "factor-out-shape": (
        lambda: trn.FactorOut(trn.LULinear([2, 2, 1]), [2, 2, 2]),
        ([1, 3, 2, 2], tf.float32),
        r"factor_out_\d+: `x` must end in the event shape \(2, 2, None\); got shape \(1, 3, 2, 2\)",
    ),
    "logit-dtype": (lambda: trn.Logit(), ([2], tf.int32), r"`x` must be floating point"),
    "dequantize-dtype": (lambda: trn.Dequantize(5), ([2], tf.int32), r"floating point"),
    "lu-dtype": (
        lambda: trn.LULinear([2]),
        ([1, 2], tf.float64),
        r"`x` has dtype float64, but this bijector computes in float32",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_every_bijector_names_the_argument_and_what_came(case):
    make, (shape, dtype), message = BAD_INPUTS[case]
    with pytest.raises((TypeError, ValueError), match=message):
        make().inverse(tf.zeros(shape, dtype))


def test_an_integer_dtype_or_an_empty_event_is_refused_by_name(refusal):
    for make in (trn.LULinear, trn.ActNorm, trn.Planar):
        assert refusal(TypeError, make, [3], dtype=tf.int32) == (
            "`dtype` must be a floating dtype; got int32."
        )
    for make in (trn.LULinear, trn.ActNorm):  # (Planar checks its vector shape first)
        assert refusal(ValueError, make, [3, 0]) == (
            "`event_shape` must be non-empty and positive; got [3, 0]."
        )


def test_without_tfps_greedy_cache_the_results_are_the_same(monkeypatch):
    """Should a TFP release move its cache internals, the plain cache takes over: each log-det
    is computed again, but every result stays the same."""
    from tfp_realnvp.bijectors import base

    monkeypatch.setattr(base, "_cache_util", None)
    assert base.single_pass_cache() is None

    class PlainCoupling(trn.AffineCoupling):  # made while the greedy cache is missing
        def _augmented_forward(self, z, context=None):
            return super()._augmented_forward(z, context)

        def _augmented_inverse(self, x, context=None):
            return super()._augmented_inverse(x, context)

    plain_cache = type(tfb.Bijector._cache)
    assert type(PlainCoupling._cache) is plain_cache  # TFP's plain cache
    assert type(trn.Coupling._cache) is not plain_cache  # the greedy one, in normal times
    # Conditional: the plain cache calls FlowBijector's _forward / _inverse, which must pass the
    # context on (the greedy cache calls _augmented_* itself).
    conditioner = trn.ResidualMLP(2, [8], dtype="float64")
    kw = dict(num_masked=2, event_shape=[4], context_shape=[2], dtype=tf.float64)
    plain = PlainCoupling(conditioner, **kw)
    testing.perturb_variables(plain)
    testing.assert_conformant(plain, event_shape=[4], context_shape=[2])
    greedy = trn.AffineCoupling(conditioner, **kw)
    x = tf.random.stateless_normal([3, 4], seed=[4, 2], dtype=tf.float64)
    context = tf.random.stateless_normal([3, 2], seed=[4, 3], dtype=tf.float64)
    for method, value in (("inverse", x), ("forward", x)):
        np.testing.assert_array_equal(
            getattr(plain, method)(value, context=context),
            getattr(greedy, method)(tf.identity(value), context=context),
        )
    np.testing.assert_array_equal(
        plain.inverse_log_det_jacobian(x, 1, context=context),
        greedy.inverse_log_det_jacobian(tf.identity(x), 1, context=context),
    )


def test_a_class_made_with_a_single_pass_gets_its_cache_and_only_the_missing_log_dets():
    """FlowBijector.__init_subclass__ runs as a class is made: here, at test time, rather than
    at import like the package's own classes (which mutation testing cannot reach)."""
    from tfp_realnvp.bijectors.base import FlowBijector

    calls = []

    def log_dets(v):  # of x = 2 z, for a batch [N, d]: d log 2 forward, its negative inverse
        fldj = tf.fill(tf.shape(v)[:-1], tf.cast(v.shape[-1] * np.log(2.0), v.dtype))
        return {"fldj": fldj, "ildj": -fldj}

    class Doubling(trn.FlowBijector):  # x = 2 z, in one pass per direction
        def __init__(self):
            super().__init__(forward_min_event_ndims=1, name="doubling")

        def _augmented_forward(self, z):
            calls.append("forward")
            return 2.0 * z, log_dets(z)

        def _augmented_inverse(self, x):
            calls.append("inverse")
            return x / 2.0, log_dets(x)

    class OwnInverseLogDet(Doubling):  # its own ildj, and the pass inherited: no cache of its own
        def _inverse_log_det_jacobian(self, x):
            return tf.zeros(tf.shape(x)[:-1], x.dtype)

    # (A cache is a descriptor: each class's own is in its __dict__.)
    greedy = type(trn.Coupling.__dict__["_cache"])
    assert type(Doubling.__dict__["_cache"]) is greedy is not type(tfb.Bijector.__dict__["_cache"])
    assert Doubling._forward_log_det_jacobian is FlowBijector._forward_log_det_from_pass
    assert Doubling._inverse_log_det_jacobian is FlowBijector._inverse_log_det_from_pass
    assert "_cache" not in OwnInverseLogDet.__dict__  # Doubling's, inherited
    assert OwnInverseLogDet._forward_log_det_jacobian is FlowBijector._forward_log_det_from_pass
    assert OwnInverseLogDet._inverse_log_det_jacobian is not Doubling._inverse_log_det_jacobian
    # One pass answers the map and both log-dets, in both directions.
    doubling, z = Doubling(), tf.ones([2, 3])
    x = doubling.forward(z)
    np.testing.assert_allclose(doubling.forward_log_det_jacobian(z, 1), [3 * np.log(2.0)] * 2)
    np.testing.assert_allclose(doubling.inverse_log_det_jacobian(x, 1), [-3 * np.log(2.0)] * 2)
    np.testing.assert_array_equal(doubling.inverse(x), z)
    assert calls == ["forward"]
    np.testing.assert_allclose(
        doubling.inverse_log_det_jacobian(3.0 * z, 1), [-3 * np.log(2.0)] * 2
    )
    assert calls == ["forward", "inverse"]  # a new input: one pass for it
    x = 5.0 * z
    np.testing.assert_array_equal(doubling.inverse(x), 2.5 * z)
    np.testing.assert_allclose(doubling.inverse_log_det_jacobian(x, 1), [-3 * np.log(2.0)] * 2)
    assert calls == ["forward", "inverse", "inverse"]  # the inverse pass answered both
    np.testing.assert_array_equal(OwnInverseLogDet().inverse_log_det_jacobian(x, 1), [0.0, 0.0])
    # A class without the single pass keeps TFP's own cache and derives a missing log-det.
    assert "_cache" not in _InverseLogDetOnly.__dict__
    assert not hasattr(_InverseLogDetOnly, "_forward_log_det_jacobian")


class _InverseLogDetOnly(trn.FlowBijector):
    """A user's bijector without a single pass, giving one log-det: TFP derives the other."""

    def __init__(self):
        super().__init__(forward_min_event_ndims=1, name="inverse_log_det_only")

    def _forward(self, z):
        return 2.0 * z

    def _inverse(self, x):
        return x / 2.0

    def _inverse_log_det_jacobian(self, x):
        return tf.fill(tf.shape(x)[:-1], tf.cast(-x.shape[-1] * np.log(2.0), x.dtype))


def test_log_dets_come_from_the_single_pass_only_where_a_class_has_one():
    # FlowBijector answers a log-det from `_augmented_*` for the classes that define them ...
    coupling = trn.AffineCoupling(trn.ResidualMLP(2, [8]), num_masked=2, event_shape=[4])
    testing.perturb_variables(coupling)
    x = tf.random.stateless_normal([3, 4], seed=[5, 2])
    fresh = coupling.inverse_log_det_jacobian(tf.identity(x), 1)  # no cached pass: its own
    coupling.inverse(x)
    np.testing.assert_array_equal(fresh, coupling.inverse_log_det_jacobian(x, 1))
    z = tf.random.stateless_normal([3, 4], seed=[6, 2])
    fresh = coupling.forward_log_det_jacobian(tf.identity(z), 1)
    np.testing.assert_array_equal(fresh, -coupling.inverse_log_det_jacobian(coupling.forward(z), 1))
    # ... and leaves a class without them to TFP's derivation of the missing log-det.
    user = _InverseLogDetOnly()
    np.testing.assert_allclose(
        user.forward_log_det_jacobian(tf.ones([2, 3]), 1), [3 * np.log(2.0)] * 2, rtol=1e-6
    )
