"""Small-data robustness: validation NLL per epoch of vector flows on digits, with and without
regularisation.

The set-up of issue 10: scikit-learn's 8x8 digits as 64-vectors, 1000 training images in four
dequantised copies (grey level + U[0, 1), divided by 17 so values lie in [0, 1)), the other 797
images (one dequantisation) for validation; `real_nvp([64], 8, [256, 256])`, Adam, batches of
256. Each configuration runs the same epochs from the same seed; the JSON records every
epoch's training and validation NLL (nats per image, in the [0, 1) units).

    python benchmarks/small_data.py --epochs 30 --out benchmarks/results_small_data.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

CONFIGS = {
    "plain": {},
    "dropout 0.2": {"dropout": 0.2},
    "weight decay 1e-2": {"weight_decay": 1e-2},
    "dropout 0.2 + weight decay 1e-2": {"dropout": 0.2, "weight_decay": 1e-2},
    "dropout 0.5": {"dropout": 0.5},
    "64-64 MLPs": {"hidden": [64, 64]},
    "64-64 MLPs + dropout 0.2": {"hidden": [64, 64], "dropout": 0.2},
}


def digits_vectors(seed: int = 0):
    from sklearn.datasets import load_digits

    images = load_digits().data.astype(np.float64)  # grey levels 0..16
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    train, val = images[order[:1000]], images[order[1000:]]
    train = np.concatenate([train + rng.uniform(size=train.shape) for _ in range(4)])
    val = val + rng.uniform(size=val.shape)
    return (train / 17).astype("float32"), (val / 17).astype("float32")


def run(name: str, config: dict, epochs: int, lr: float) -> dict:
    import tfp_realnvp as trn
    from tfp_realnvp import keras

    train, val = digits_vectors()
    keras.utils.set_random_seed(0)
    flow = trn.real_nvp([64], 8, config.get("hidden", [256, 256]), dropout=config.get("dropout", 0))
    model = trn.FlowModel(flow)
    decay = config.get("weight_decay")
    optimizer = (
        keras.optimizers.AdamW(lr, weight_decay=decay) if decay else keras.optimizers.Adam(lr)
    )
    model.compile(optimizer)
    start = time.perf_counter()
    history = model.fit(
        train, validation_data=val, epochs=epochs, batch_size=256, verbose=0
    ).history
    val_nll = history["val_loss"]
    best = int(np.argmin(val_nll))
    return {
        "config": name,
        "settings": config,
        "train_nll": history["loss"],
        "val_nll": val_nll,
        "best_val_nll": float(val_nll[best]),
        "best_epoch": best + 1,
        "final_val_nll": float(val_nll[-1]),
        "final_train_nll": float(history["loss"][-1]),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--only", nargs="*", default=None, help="configuration names to run")
    parser.add_argument("--out", default="benchmarks/results_small_data.json")
    args = parser.parse_args()
    results = []
    for name, config in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        result = run(name, config, args.epochs, args.lr)
        results.append(result)
        print(
            f"{name:34s} best val {result['best_val_nll']:9.2f} (epoch {result['best_epoch']:2d})"
            f"  final val {result['final_val_nll']:10.2f}  final train "
            f"{result['final_train_nll']:8.2f}  {result['seconds']:.0f} s",
            flush=True,
        )
    with open(args.out, "w") as f:
        json.dump({"epochs": args.epochs, "lr": args.lr, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
