"""Test NLL of affine, spline and autoregressive flows on the six bundled 2-D densities, each
trained for the same wall-clock budget, beside each density's Bayes floor (bayes_floor.py).

Per density: 20,000 training, 5,000 validation and 20,000 test points, drawn from the
generator with different seeds; the data standardised per coordinate (as the command line
does). Each flow trains with Adam (2e-3, halved when the validation NLL stalls for 3 epochs) on
batches of 512 until its budget is spent, keeping the weights of its best validation epoch; the
test NLL is in the data's own units. Flows (about the same number of weights):

- affine: `real_nvp([2], 8, [128, 128])`;
- spline: `neural_spline_flow([2], 4, [128, 128], num_bins=16, bound=4)`;
- maf: `masked_autoregressive_flow([2], 8, [128, 128])` (affine MADE layers).

    python benchmarks/toy2d.py --budget 60 --out benchmarks/results_toy2d.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

DENSITIES = ("moons", "8gaussians", "checkerboard", "pinwheel", "rings", "2spirals")
FLOWS = ("affine", "spline", "maf")


def make_flow(kind: str, train: np.ndarray):
    import tensorflow_probability as tfp

    import tfp_realnvp as trn

    if kind == "affine":
        flow = trn.real_nvp([2], 8, [128, 128])
    elif kind == "spline":
        flow = trn.neural_spline_flow([2], 4, [128, 128], num_bins=16, bound=4.0)
    else:
        flow = trn.masked_autoregressive_flow([2], 8, [128, 128])
    tfb = tfp.bijectors
    mean, std = train.mean(0), train.std(0)
    return tfb.Chain([tfb.Shift(mean), tfb.Scale(std), flow])


def run(density: str, kind: str, budget: float) -> dict:
    import tfp_realnvp as trn
    from tfp_realnvp import keras
    from tfp_realnvp.data import make_dataset

    train = make_dataset(density, 20000, seed=1)
    val = make_dataset(density, 5000, seed=2)
    test = make_dataset(density, 20000, seed=3)
    keras.utils.set_random_seed(0)
    model = trn.FlowModel(make_flow(kind, train))
    model.compile(keras.optimizers.Adam(2e-3))
    start = time.perf_counter()

    class Budget(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - start > budget:
                self.model.stop_training = True

    best = keras.callbacks.EarlyStopping(patience=10**6, restore_best_weights=True)
    history = model.fit(
        train,
        validation_data=val,
        epochs=10**6,
        batch_size=512,
        verbose=0,
        callbacks=[
            Budget(),
            keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=3),
            best,
        ],
    ).history
    seconds = time.perf_counter() - start
    test_nll = float(-np.mean(model.log_prob(test).numpy().astype(np.float64)))
    return {
        "density": density,
        "flow": kind,
        "test_nll": test_nll,
        "best_val_nll": float(min(history["val_loss"])),
        "epochs": len(history["loss"]),
        "seconds": seconds,
        "num_weights": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per flow")
    parser.add_argument("--densities", nargs="*", default=list(DENSITIES))
    parser.add_argument("--flows", nargs="*", default=list(FLOWS))
    parser.add_argument("--out", default="benchmarks/results_toy2d.json")
    args = parser.parse_args()
    results = []
    for density in args.densities:
        for kind in args.flows:
            r = run(density, kind, args.budget)
            results.append(r)
            print(
                f"{density:13s} {kind:7s} test NLL {r['test_nll']:.4f}  epochs {r['epochs']:4d}"
                f"  {r['seconds']:.0f} s  {r['num_weights']} weights",
                flush=True,
            )
            with open(args.out, "w") as f:
                json.dump({"budget_s": args.budget, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
