"""Does training under Keras' ``mixed_bfloat16`` policy cost accuracy (issue 25)? The final
test NLL after the same budget, float32 against bfloat16, on digits and on a tabular set, two
seeds each (the seed-to-seed spread of float32 is the yardstick), with each run's steps/s.

- digits: ``examples/digits.py``'s multi-scale RealNVP (64 channels), batches of 64, 20 epochs,
  Adam 1e-3, test NLL in nats per image on the example's dequantised test split;
- breast cancer (569 x 30, standardised with the training rows' statistics):
  ``real_nvp([30], 4, [64, 64])``, batches of 64, 150 epochs, Adam 1e-3, nats per row.

No early stopping: both precisions get the same steps. A bfloat16-trained model is scored twice:
as it computes (conditioners in bfloat16) and with its float32 master weights in a float32
model. Under ``mixed_bfloat16`` on a CPU ``compile()`` leaves XLA off; float32 keeps it on,
so float32 also runs without XLA (``compile(jit_compile=False)``), to tell the two apart.
Wall times include tracing and XLA's compilation.

Run:  python benchmarks/bf16_nll.py [--seeds 2] [--out benchmarks/results_bf16_nll.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))


def _digits():
    import digits

    from tfp_realnvp.data import dequantized

    train, _, test = digits.splits()
    return {
        "build": lambda: digits.build_model(),
        "train": train,
        "test": dequantized(test, seed=1),
        "epochs": 20,
        "units": "nats per image",
    }


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    import tfp_realnvp as trn

    x = load_breast_cancer().data.astype("float32")
    order = np.random.default_rng(0).permutation(len(x))
    train, test = x[order[:455]], x[order[455:]]
    mean, std = train.mean(0), train.std(0)
    return {
        "build": lambda: trn.FlowModel(trn.real_nvp([30], 4, [64, 64])),
        "train": (train - mean) / std,
        "test": (test - mean) / std,
        "epochs": 150,
        "units": "nats per row (standardised)",
    }


# name: (Keras policy, compile()'s jit_compile)
CONFIGS = {
    "float32": ("float32", "auto"),
    "float32, no XLA": ("float32", False),
    "mixed_bfloat16": ("mixed_bfloat16", "auto"),
}


def run(task: dict, config: str, seed: int) -> dict:
    from tfp_realnvp import keras

    policy, jit_compile = CONFIGS[config]
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        model = task["build"]()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
        t0 = time.perf_counter()
        history = model.fit(task["train"], epochs=task["epochs"], batch_size=64, verbose=0)
        seconds = time.perf_counter() - t0
    finally:
        keras.mixed_precision.set_global_policy("float32")
    steps = task["epochs"] * int(np.ceil(len(task["train"]) / 64))
    row = {
        "test_nll": -float(np.mean(model.log_prob(task["test"]))),
        "final_train_loss": float(history.history["loss"][-1]),
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "jit_compile": bool(model.jit_compile),
    }
    if policy != "float32":  # its float32 master weights, scored in float32
        scorer = task["build"]()
        scorer.log_prob(task["test"][:2])  # builds the layers
        scorer.set_weights(model.get_weights())
        row["test_nll_float32_scoring"] = -float(np.mean(scorer.log_prob(task["test"])))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results_bf16_nll.json"))
    args = parser.parse_args()
    results = {}
    for name, make in (("breast_cancer", _breast_cancer), ("digits", _digits)):
        task = make()
        runs = {config: [] for config in CONFIGS}
        for seed in range(args.seeds):
            for config in runs:
                row = run(task, config, seed)
                runs[config].append(row)
                print(name, config, seed, json.dumps(row), flush=True)
        results[name] = {"epochs": task["epochs"], "units": task["units"], "runs": runs}
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
