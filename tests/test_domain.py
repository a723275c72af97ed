"""Data outside a flow's domain is refused where it enters FlowModel, never turned into NaN."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp.traversal import data_domain


def _image_model(dequantize: bool) -> trn.FlowModel:
    flow = trn.multiscale_real_nvp([4, 4, 1], 1, couplings_per_stage=1, hidden_channels=4)
    model = trn.FlowModel(trn.preprocessed_image_flow(flow, num_levels=5), dequantize=dequantize)
    model.compile(optimizer="adam", jit_compile=False)
    return model


def _levels(bad=None) -> np.ndarray:
    x = np.random.default_rng(0).integers(0, 5, size=(8, 4, 4, 1)).astype("float32")
    if bad is not None:
        x[1, 2, 3, 0] = bad
    return x


def test_the_domain_is_read_from_the_data_side():
    assert data_domain(_image_model(False).bijector) == (0.0, 5.0)  # Logit's [0, 1], times 5
    assert data_domain(trn.real_nvp([2], 1, [4])) is None
    assert _image_model(False).data_domain == (0.0, 5.0)


@pytest.mark.parametrize("bad", [-1.0, 5.5, np.nan])
def test_log_prob_outside_the_domain_is_refused(bad):
    model = _image_model(dequantize=False)
    with pytest.raises(ValueError, match=r"`x`: example 2 has the value .* \(flat index 11\), "):
        model.log_prob(_levels(bad) + 0.5)
    assert np.all(np.isfinite(model.log_prob(_levels() + 0.5)))


def test_fit_and_evaluate_refuse_levels_the_noise_would_push_out():
    model = _image_model(dequantize=True)  # levels 0..4, plus noise on [0, 1)
    with pytest.raises(ValueError, match=r"outside the flow's domain \[0, 4\]"):
        model.fit(_levels(bad=4.5), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`validation_data`: example 2"):
        model.fit(_levels(), validation_data=_levels(bad=-2.0), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`x`: example 2 has the value 7"):
        model.evaluate(_levels(bad=7.0), verbose=0)
    history = model.fit(_levels(), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_a_dataset_is_checked_batch_by_batch():
    model = _image_model(dequantize=True)
    bad = tf.data.Dataset.from_tensor_slices(_levels(bad=9.0)).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside \[0, 4\], the flow domain"):
        model.fit(bad, epochs=1, verbose=0, initialize=False)
