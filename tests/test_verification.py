"""The exports' self-check (`tfp_realnvp.verification`) on its own: the probes it draws from a
model, and the comparison that refuses an export, against hand-made answers."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp.verification import (
    ATOL,
    PROBE_SIZES,
    PROBE_TEMPERATURE,
    RTOL,
    ExportMismatchError,
    Probe,
    compare,
    probes,
)

tfb = tfp.bijectors


def _probe(n: int, value: float = 0.0) -> Probe:
    rows = np.full((n, 2), value)
    return Probe(
        *(rows, rows, None, rows[:, 0], rows[:, 0], rows, rows[:, 0]),
        seed=(0, 0),
        drawn_z=rows,
        drawn_x=rows,
        drawn_context=None,
    )


def _refusal(got, want, batches=(1,), **tolerance) -> str:
    checks = {"log_prob": lambda p: (np.asarray(got), np.asarray(want))}
    with pytest.raises(ExportMismatchError) as refused:
        compare("export_x out", checks, [_probe(n) for n in batches], **tolerance)
    return str(refused.value)


def test_agreement_within_the_tolerance_passes_and_beyond_it_is_refused_whole():
    want = np.array([-100.0, 1.0])
    limit = ATOL + RTOL * 100.0  # the tolerance grows with the value
    compare("e", {"log_prob": lambda p: (want + np.array([0.9 * limit, 0.0]), want)}, [_probe(2)])
    message = _refusal(want + np.array([1.1 * limit, 0.0]), want, batches=(2,))
    assert message == (
        f"export_x out: the exported log_prob differs from the model by up to {1.1 * limit:.4g} "
        f"on a probe batch of 2 (tolerance {ATOL:g} + {RTOL:g} x |value|), so it would serve "
        "wrong results; nothing was written. Please report this with the flow's bijectors."
    )


def test_the_tolerance_is_the_callers():
    want = np.array([10.0])
    compare("e", {"z": lambda p: (want + 0.5, want)}, [_probe(1)], rtol=0.0, atol=0.6)
    compare("e", {"z": lambda p: (want + 0.5, want)}, [_probe(1)], rtol=0.06, atol=0.0)
    assert "up to 0.5 " in _refusal(want + 0.5, want, rtol=0.0, atol=0.4)
    assert "up to 0.5 " in _refusal(want + 0.5, want, rtol=0.04, atol=0.0)


def test_every_probe_batch_and_every_output_is_compared():
    def late(p):  # right on the first batches, wrong on the last
        return np.full(len(p.z), 1.0 if len(p.z) == 7 else 0.0), np.zeros(len(p.z))

    checks = {"log_prob": lambda p: (np.zeros(1), np.zeros(1)), "inverse z": late}
    with pytest.raises(
        ExportMismatchError, match=r"inverse z differs .* up to 1 on a probe batch of 7"
    ):
        compare("e", checks, [_probe(n) for n in (1, 2, 7)])


def test_a_shape_that_differs_is_refused_with_both_shapes():
    message = _refusal(np.zeros((3, 1)), np.zeros(3), batches=(3,))
    assert message == (
        "export_x out: the exported log_prob has shape (3, 1) on a batch of 3, but the model "
        "gives (3,); nothing was written"
    )


def test_only_the_models_own_overflows_are_left_uncompared():
    want = np.array([np.inf, np.nan, -np.inf, 2.0])
    compare("e", {"x": lambda p: (np.array([0.0, 5.0, np.nan, 2.0]), want)}, [_probe(4)])
    # Where the model is finite, the export must be too.
    for got, worst in ((np.nan, "nan"), (np.inf, "inf")):
        assert f"up to {worst} " in _refusal([got, 2.0], [1.0, 2.0], batches=(2,))


def test_probes_are_the_models_own_answers_inside_its_bulk():
    flow = tfb.Chain([tfb.Shift([1.0, -2.0]), tfb.Scale([2.0, 0.5])])
    model = trn.FlowModel(flow, [2])
    batches = probes(model, sizes=(1, 3), seed=5)
    assert [len(p.z) for p in batches] == [1, 3]
    assert [p.seed for p in batches] == [(5, 0), (5, 1)]
    for n, p in zip((1, 3), batches, strict=True):
        # The whole draw of the seed, as the export's `sample` redraws it ...
        drawn = tf.random.stateless_normal([4 * n, 2], p.seed).numpy()
        np.testing.assert_allclose(p.drawn_z, drawn)
        np.testing.assert_allclose(p.drawn_x, drawn * [2.0, 0.5] + [1.0, -2.0], rtol=1e-6)
        # ... and probes at PROBE_TEMPERATURE of the draws' distance from the base's centre.
        np.testing.assert_allclose(p.z, PROBE_TEMPERATURE * drawn[:n], rtol=1e-6)
        np.testing.assert_allclose(p.x, p.z * [2.0, 0.5] + [1.0, -2.0], rtol=1e-6)
        np.testing.assert_allclose(p.inverse_z, p.z, rtol=1e-5, atol=1e-6)
        log_det = np.log(2.0 * 0.5)
        np.testing.assert_allclose(p.forward_log_det, np.full(n, log_det), atol=1e-6)
        np.testing.assert_allclose(p.inverse_log_det, np.full(n, -log_det), atol=1e-6)
        base = -0.5 * np.sum(p.z**2, axis=1) - np.log(2 * np.pi)
        np.testing.assert_allclose(p.log_prob, base - log_det, rtol=1e-5)
        assert p.context is None and p.drawn_context is None


def test_a_conditional_model_is_probed_with_contexts_of_its_shape():
    model = trn.FlowModel(trn.real_nvp([2], 2, [4], context_shape=[3]))
    batches = probes(model)
    assert [len(p.z) for p in batches] == list(PROBE_SIZES)
    for n, p in zip(PROBE_SIZES, batches, strict=True):
        assert p.context.shape == (n, 3) and p.drawn_context.shape == (4 * n, 3)
        np.testing.assert_array_equal(p.context, p.drawn_context[:n])
        want = model.log_prob(p.x, p.context).numpy()
        np.testing.assert_allclose(p.log_prob, want, rtol=1e-5, atol=1e-5)


def test_a_model_finite_nowhere_is_still_probed():
    # No row has every output finite: the first rows are kept, for the comparison to skip
    # what the model itself gives as inf or NaN.
    model = trn.FlowModel(tfb.Chain([tfb.Scale(1e30), tfb.Exp(), tfb.Scale(1e30)]), [1])
    (p,) = probes(model, sizes=(2,))
    finite = [np.isfinite(v.reshape(2, -1)).all(axis=1) for v in (p.log_prob, p.inverse_z)]
    assert not np.logical_and(*finite).any()
    np.testing.assert_allclose(p.z, PROBE_TEMPERATURE * p.drawn_z[:2])


def test_probes_keep_the_first_rows_where_every_output_is_finite():
    # x = 3e38 z overflows float32 where |z| > 1.13 in any unit: there log_prob and the
    # inverse are not finite, while both log-dets (constant) are.
    model = trn.FlowModel(tfb.Scale(3e38), [8])
    (p,) = probes(model, sizes=(7,), seed=6)
    candidates = PROBE_TEMPERATURE * p.drawn_z
    with np.errstate(over="ignore"):
        finite = np.isfinite(candidates * np.float32(3e38)).all(axis=1)
    assert not finite[:7].all() and finite.sum() >= 7  # some of the first rows must go
    np.testing.assert_array_equal(p.z, candidates[finite][:7])
    for value in (p.x, p.log_prob, p.inverse_z, p.inverse_log_det, p.forward_log_det):
        assert np.isfinite(value).all()


def test_probes_are_repeatable_and_centred_on_a_learned_base():
    model = trn.FlowModel(trn.real_nvp([2], 2, [4], context_shape=[3]), base="diagonal")
    model.base_layer.trainable_variables[0].assign([4.0, -2.0])  # the base's mean
    centre = model.distribution.distribution.mean().numpy()
    np.testing.assert_allclose(centre, [4.0, -2.0])
    first, again = probes(model), probes(model)
    for p, q in zip(first, again, strict=True):
        assert p.seed[0] == 0  # the default seed
        assert p.context.dtype == np.float32  # as the model computes, as the export takes
        np.testing.assert_array_equal(p.context, q.context)
        np.testing.assert_array_equal(p.z, q.z)
        n = len(p.z)
        np.testing.assert_allclose(p.z, centre + PROBE_TEMPERATURE * (p.drawn_z[:n] - centre))
