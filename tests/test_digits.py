"""The multi-scale flows train on real digits from a fresh start without NaN or inf."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.data import make_dataset


@pytest.mark.slow
@pytest.mark.parametrize("glow", [False, True])
def test_multiscale_flow_trains_on_digits_without_nan(glow):
    keras.utils.set_random_seed(0)
    images = make_dataset("digits")
    flow = trn.multiscale_real_nvp(
        [8, 8, 1],
        couplings_per_stage=2,
        final_couplings=2,
        hidden_channels=16,
        num_blocks=1,
        glow=glow,
    )
    model = trn.FlowModel(trn.preprocessed_image_flow(flow, 17), dequantize=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    per_batch = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: per_batch.append(float(logs["loss"]))
    )
    history = model.fit(images[:512], epochs=2, batch_size=64, callbacks=[record], verbose=0)
    assert len(per_batch) == 16 and np.all(np.isfinite(per_batch))
    assert history.history["loss"][-1] < history.history["loss"][0]
    samples = model.sample(16, seed=0)
    assert np.all(np.isfinite(samples))
    held_out = images[1700:] + np.random.default_rng(0).uniform(size=images[1700:].shape)
    bpd = trn.bits_per_dim(-float(np.mean(model.log_prob(held_out.astype("float32")))), 64)
    assert np.isfinite(bpd) and bpd < np.log2(17)  # better than uniform over 17 grey levels


@pytest.mark.slow
def test_digits_example_quick():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "digits.py"
    spec = importlib.util.spec_from_file_location("digits_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(quick=True, out=None)
    assert np.isfinite(result["test_nll"]) and np.isfinite(result["test_bits_per_dim"])
    assert tf.reduce_all(tf.math.is_finite(result["samples"]))
