"""Quick start: fit a RealNVP flow to two moons by maximum likelihood, then sample from it.

Run: python examples/quickstart.py [--steps N]
"""

import argparse

import numpy as np
import tensorflow as tf

import tfp_realnvp as trn


def two_moons(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    return (np.stack([x, y], 1) + 0.05 * rng.normal(size=(n, 2))).astype(np.float32)


def main(steps: int = 1000) -> float:
    data = tf.constant(two_moons(4096))
    flow = trn.real_nvp([2], num_couplings=6, hidden_units=[64, 64])
    dist = trn.flow_distribution(flow)
    optimizer = tf.keras.optimizers.Adam(1e-3)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(dist.log_prob(batch))
        grads = tape.gradient(loss, dist.trainable_variables)
        optimizer.apply_gradients(zip(grads, dist.trainable_variables, strict=False))
        return loss

    rng = np.random.default_rng(1)
    for i in range(steps):
        loss = step(tf.gather(data, rng.integers(0, 4096, 256)))
        if i % 200 == 0 or i == steps - 1:
            print(f"step {i:5d}  NLL {float(loss):.3f} nats")
    samples = dist.sample(1000, seed=(0, 1))
    print(
        "sample mean", samples.numpy().mean(0).round(2), "data mean", data.numpy().mean(0).round(2)
    )
    return float(loss)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    main(parser.parse_args().steps)
