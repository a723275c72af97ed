"""Fit a RealNVP flow to two moons with Keras `model.fit`, then sample and score.

Run: python examples/two_moons_fit.py [--quick]
"""

import argparse

import numpy as np

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.data import make_dataset


def main(quick: bool = False) -> dict:
    keras.utils.set_random_seed(0)
    data = make_dataset("moons", num_samples=2000 if quick else 20000)
    couplings = 2 if quick else 8
    model = trn.FlowModel(trn.real_nvp([2], num_couplings=couplings, hidden_units=[64, 64]))
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(
        data,
        validation_split=0.1,
        epochs=2 if quick else 60,
        batch_size=256,
        callbacks=[keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)],
        verbose=0 if quick else 2,
    )
    samples = model.sample(1000, seed=0).numpy()
    log_prob = model.log_prob(data[:5]).numpy()
    print(f"final validation NLL {history.history['val_loss'][-1]:.3f} nats")
    print("log p(x) of five data points:", np.round(log_prob, 3))
    return {"history": history.history, "samples": samples, "log_prob": log_prob}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    main(parser.parse_args().quick)
