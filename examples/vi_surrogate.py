"""The flow as a variational surrogate: fit q(z) to a banana-shaped posterior with tfp.vi.

Run: python examples/vi_surrogate.py [--quick]
"""

import argparse

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_realnvp as trn
from tfp_realnvp import keras

tfd = tfp.distributions


def banana_log_prob(z):
    """Unnormalised log-density of a banana: z0 ~ N(0, 2^2), z1 | z0 ~ N(z0^2 / 4, 0.5^2)."""
    z0, z1 = z[..., 0], z[..., 1]
    return tfd.Normal(0.0, 2.0).log_prob(z0) + tfd.Normal(z0**2 / 4.0, 0.5).log_prob(z1)


def main(quick: bool = False) -> dict:
    keras.utils.set_random_seed(0)
    surrogate = trn.flow_distribution(trn.real_nvp([2], num_couplings=6, hidden_units=[32, 32]))
    losses = tfp.vi.fit_surrogate_posterior(
        banana_log_prob,
        surrogate,
        optimizer=keras.optimizers.Adam(5e-3),
        num_steps=100 if quick else 2000,
        sample_size=64,
        seed=(0, 1),
    )
    z = surrogate.sample(4000, seed=(2, 3))
    print(f"negative ELBO: start {float(losses[0]):.3f}, end {float(losses[-1]):.3f}")
    print("E[z1] under q:", round(float(tf.reduce_mean(z[:, 1])), 2), "(exact: 1.0)")
    return {"losses": np.asarray(losses), "samples": z.numpy()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    main(parser.parse_args().quick)
