"""A conditional flow p(x | c): two moons whose position depends on a context value.

Run: python examples/conditional_flow.py [--quick]
"""

import argparse

import numpy as np

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.data import make_dataset


def main(quick: bool = False) -> dict:
    keras.utils.set_random_seed(0)
    n = 2000 if quick else 20000
    moons = make_dataset("moons", num_samples=n)
    context = np.random.default_rng(1).choice([-3.0, 3.0], size=(n, 1)).astype("float32")
    data = moons + np.concatenate([context, np.zeros_like(context)], axis=1)  # shift along x

    flow = trn.real_nvp([2], num_couplings=6, hidden_units=[64, 64], context_shape=[1])
    model = trn.FlowModel(flow)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit((data, context), epochs=3 if quick else 40, batch_size=256, verbose=0 if quick else 2)

    means = {}
    for c in (-3.0, 3.0):
        samples = model.sample(500, seed=0, context=np.full([500, 1], c, "float32")).numpy()
        means[c] = samples.mean(0)
        print(f"context {c:+.0f}: sample mean {np.round(means[c], 2)}")
    return {"means": means}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    main(parser.parse_args().quick)
