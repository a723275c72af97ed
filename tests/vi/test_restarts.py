"""`fit_vi(restarts=R)`: the first restart is the fit without restarts, the others train
alongside without touching it, the one kept is the best by `best_elbo` and the user's flow
ends with its weights; copies and refusals (`tfp_realnvp.vi.restarts`). Whether restarts pay
on U1-U4 is measured in ``benchmarks/vi_robust.py``."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
import tfp_realnvp.vi.trainer as trainer
from tfp_realnvp import keras
from tfp_realnvp.vi import fit_vi, log_weights
from tfp_realnvp.vi.restarts import best_elbo, copy_weights, fresh_copy

tfb = tfp.bijectors


def shifted(z):
    """``log p~`` of N((1, 1), I)."""
    return -0.5 * tf.reduce_sum((z - 1.0) ** 2, -1)


def _weights(q) -> np.ndarray:
    """``q``'s trainable variables as one vector."""
    return np.concatenate([tf.reshape(v, [-1]).numpy() for v in q.trainable_variables])


def _fit(restarts: int, monkeypatch=None, keep=None):
    """(losses, flow, the restarts' distributions, then their ELBOs as `best_elbo` found them)
    of 5 steps of a small flow; ``keep`` forces the restart kept (else `best_elbo` picks it)."""
    seen = []

    def pick(distributions, target, seed=0):
        found = best_elbo(distributions, target, seed=seed)
        seen.extend([*distributions, found[1]])
        return (found[0] if keep is None else keep), found[1]

    if monkeypatch is not None:
        monkeypatch.setattr(trainer, "best_elbo", pick)
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([2], 2, [8])
    settings = dict(sample_size=32, learning_rate=0.05, jit_compile=False, warn=False, seed=3)
    losses = fit_vi(flow, shifted, 5, restarts=restarts, **settings)
    return losses, trn.flow_distribution(flow), seen


def test_the_first_restart_trains_as_the_fit_without_restarts(monkeypatch):
    """Kept, restart 0 has the losses and weights of ``restarts=1``: the copies' noise and
    gradients leave it alone."""
    alone, flow, _ = _fit(1)
    together, with_copies, seen = _fit(3, monkeypatch, keep=0)
    assert len(seen) == 4
    np.testing.assert_allclose(together, alone, rtol=1e-6)
    np.testing.assert_allclose(_weights(with_copies), _weights(flow), rtol=1e-6)


def test_the_flow_ends_with_the_kept_restarts_weights_and_losses(monkeypatch):
    first, alone, _ = _fit(1)
    losses, flow, seen = _fit(3, monkeypatch, keep=2)
    np.testing.assert_array_equal(_weights(flow), _weights(seen[2]))
    assert not np.allclose(_weights(flow), _weights(alone))
    assert not np.allclose(_weights(seen[1]), _weights(seen[2]))  # each its own start
    assert not np.allclose(losses, first)  # restart 2's own, from its own noise and start


def test_restarts_keep_the_highest_elbo(monkeypatch):
    """The ELBOs compared are those of 4096 common draws (seeded by the fit's seed); the flow
    ends with the highest of them."""
    _, flow, (*_, copy_1, copy_2, found) = _fit(3, monkeypatch)
    eps = tf.random.stateless_normal([4096, 2], [3, 11])

    def elbo(q):
        return float(tf.reduce_mean(log_weights(q, shifted, eps)[0]))

    np.testing.assert_allclose([elbo(copy_1), elbo(copy_2)], found[1:], rtol=1e-6)
    assert len(set(found)) == 3  # the restarts ended apart
    np.testing.assert_allclose(elbo(flow), max(found), rtol=1e-6)


def test_a_non_finite_elbo_is_never_the_best():
    """NaN beats every number in `np.argmax`; here it must lose."""

    def walled(z):  # NaN right of z1 = 5
        return tf.where(z[..., 0] > 5.0, np.nan, -0.5 * tf.reduce_sum(z**2, -1))

    far = trn.flow_distribution(tfb.Shift([8.0, 0.0]), 2)
    near = trn.flow_distribution(tfb.Shift([1.0, 0.0]), 2)
    nearer = trn.flow_distribution(tfb.Shift([0.5, 0.0]), 2)
    index, elbos = best_elbo([far, near, nearer], walled)
    assert index == 2 and np.isnan(elbos[0])
    assert elbos[2] > elbos[1]
    assert best_elbo([near], walled)[0] == 0


def test_best_elbo_draws_in_the_flows_dtype_with_its_documented_defaults(defaults):
    assert defaults(best_elbo) == {"num_samples": 4096, "seed": 0}
    shifts = [tfb.Shift(tf.constant([m, 0.0], tf.float64)) for m in (2.0, 0.5)]
    index, elbos = best_elbo([trn.flow_distribution(s, 2) for s in shifts], _float64_normal)
    assert index == 1 and elbos[1] > elbos[0]


def _float64_normal(z):
    assert z.dtype == tf.float64
    return -0.5 * tf.reduce_sum(z**2, -1)


def test_copy_weights_refuses_a_flow_of_other_layers(refusal):
    two, three = (trn.flow_distribution(trn.real_nvp([2], n, [4])) for n in (2, 3))
    message = refusal(ValueError, copy_weights, two, three)
    assert message == (
        "cannot copy the weights of 3 Keras layers into a flow of 2: `source` is not a copy of "
        "`destination`"
    )


def test_a_fresh_copy_has_the_layers_and_new_weights_and_copy_weights_sets_them():
    keras.utils.set_random_seed(0)
    q = trn.flow_distribution(trn.real_nvp([3], 2, [8]))
    copy = fresh_copy(q)
    assert copy.distribution is q.distribution
    shapes = [v.shape for v in q.trainable_variables]
    assert [v.shape for v in copy.trainable_variables] == shapes
    assert not np.allclose(_weights(copy), _weights(q))
    copy_weights(q, copy)
    np.testing.assert_array_equal(_weights(q), _weights(copy))
    x = tf.random.normal([4, 3])
    np.testing.assert_allclose(q.log_prob(x), copy.log_prob(x), rtol=1e-6)


def test_restarts_refuse_a_learned_base_and_a_flow_they_cannot_copy(refusal):
    learned = trn.flow_distribution(trn.real_nvp([2], 2, [4]), base="diagonal")
    n = len(learned.distribution.trainable_variables)
    message = refusal(ValueError, fit_vi, learned, shifted, 3, restarts=2)
    assert message == (
        "restarts need a base without trainable variables (a learned base would be shared by "
        f"every restart); {type(learned.distribution).__name__} has {n}. Fit with restarts=1."
    )
    shift = tfb.Shift(tf.Variable([0.0, 0.0]), name="shift")
    message = refusal(ValueError, fit_vi, trn.flow_distribution(shift, 2), shifted, 3, restarts=2)
    assert message.startswith("restarts need a flow that can be copied: ")
    assert "'shift'" in message


@pytest.mark.parametrize("restarts", [0, 1.5])
def test_restarts_are_a_positive_count(refusal, restarts):
    message = refusal(ValueError, fit_vi, trn.real_nvp([2], 2, [4]), shifted, 3, restarts=restarts)
    assert message == f"`restarts` must be a positive integer; got {restarts}."
