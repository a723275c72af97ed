"""Variational inference with flows: fit a planar flow to Rezende's U1 with Keras' fit, check
the fit with diagnose(), then sample the target exactly with NeuTra HMC through the flow.

Run: python examples/vi_flows.py [--quick]
"""

import argparse

import numpy as np

import tfp_realnvp as trn
from tfp_realnvp import keras
from tfp_realnvp.vi import targets


def main(quick: bool = False) -> dict:
    keras.utils.set_random_seed(0)
    target = targets.rezende_energy("U1")
    model = trn.VIModel(trn.planar_flow(2, 4 if quick else 32), target.log_prob, sample_size=128)
    model.compile(optimizer=keras.optimizers.Adam(1e-2 if quick else 1e-3))
    history = model.fit(epochs=2 if quick else 20, steps_per_epoch=50 if quick else 200,
                        verbose=0 if quick else "auto", seed=1)  # fmt: skip
    report = trn.diagnose(model, target.log_prob, num_samples=2000 if quick else 20000)
    print(report)
    samples, trace = trn.sample_neutra(
        model, target.log_prob, 50 if quick else 1000, num_chains=4,
        num_burnin_steps=20 if quick else 500, kind="hmc", num_leapfrog_steps=4,
        jit_compile=not quick,  # XLA's compile outlasts a quick run
    )  # fmt: skip
    print("NeuTra HMC acceptance:", round(float(np.mean(trace["accept_ratio"])), 2))
    return {"history": history.history, "diagnostics": report, "samples": samples.numpy()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    main(parser.parse_args().quick)
