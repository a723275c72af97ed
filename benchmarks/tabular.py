"""Small tabular data: 5-fold test NLL of our flows against a full-covariance Gaussian.

scikit-learn's bundled wine (178 x 13) and breast-cancer (569 x 30) sets, each fold
standardised with its training part's mean and standard deviation (the NLL is reported in
those standardised units, the same for every model, in nats per row). The Gaussian is fitted
in closed form (the training part's mean and covariance). Each flow trains on the other four
folds less a random 15% held out for early stopping (patience 20, best weights restored),
with Adam 1e-3 and batches of 64, for at most 300 epochs:

- affine: `real_nvp([D], 4, [64, 64], dropout=...)`;
- spline: `neural_spline_flow([D], 4, [64, 64], num_bins=8, bound=5, dropout=...)`;
- maf: `masked_autoregressive_flow([D], 4, [64, 64], dropout=...)`;

each with dropout 0.2 in the conditioners (the command line's small-data default), AdamW
weight decay 1e-4, and a standard-normal base. A flow starts as the identity map of the
standardised data, i.e. as a standard normal, not as the fitted Gaussian: it must learn the
correlations the baseline gets in closed form. With ``--whiten`` each flow sits behind the
map of the Gaussian fitted to its own training rows (shift by the mean, multiply by the
covariance's Cholesky factor), so it starts as that Gaussian and learns only what is not
Gaussian.

    python benchmarks/tabular.py --out benchmarks/results_tabular.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

FLOWS = ("affine", "spline", "maf")


def load(name: str) -> np.ndarray:
    from sklearn.datasets import load_breast_cancer, load_wine

    return (load_wine() if name == "wine" else load_breast_cancer()).data.astype(np.float64)


def gaussian_nll(train: np.ndarray, test: np.ndarray) -> float:
    mean = train.mean(0)
    cov = np.cov(train.T) + 1e-6 * np.eye(train.shape[1])
    _, logdet = np.linalg.slogdet(cov)
    diff = test - mean
    maha = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
    d = train.shape[1]
    return float(np.mean(0.5 * (maha + logdet + d * np.log(2 * np.pi))))


def flow_nll(kind: str, train: np.ndarray, test: np.ndarray, args, seed: int) -> dict:
    import tfp_realnvp as trn
    from tfp_realnvp import keras

    keras.utils.set_random_seed(seed)
    d = train.shape[1]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    cut = int(0.85 * len(train))
    fit, held = train[order[:cut]], train[order[cut:]]
    kw = {"dropout": args.dropout}
    if kind == "affine":
        flow = trn.real_nvp([d], 4, [64, 64], **kw)
    elif kind == "spline":
        flow = trn.neural_spline_flow([d], 4, [64, 64], num_bins=8, bound=5.0, **kw)
    else:
        flow = trn.masked_autoregressive_flow([d], 4, [64, 64], **kw)
    if args.whiten:  # the flow starts as the fitted full-covariance Gaussian
        import tensorflow_probability as tfp

        tfb = tfp.bijectors
        chol = np.linalg.cholesky(np.cov(fit.T) + 1e-6 * np.eye(d)).astype("float32")
        whiten = [tfb.Shift(fit.mean(0).astype("float32")), tfb.ScaleMatvecTriL(chol)]
        flow = tfb.Chain([*whiten, flow])
    model = trn.FlowModel(flow, event_shape=[d])
    model.compile(keras.optimizers.AdamW(1e-3, weight_decay=args.weight_decay))
    stop = keras.callbacks.EarlyStopping(patience=20, restore_best_weights=True)
    history = model.fit(
        fit.astype("float32"),
        validation_data=held.astype("float32"),
        epochs=args.epochs,
        batch_size=64,
        verbose=0,
        callbacks=[stop],
    ).history
    nll = float(-np.mean(model.log_prob(test.astype("float32")).numpy().astype(np.float64)))
    return {"nll": nll, "epochs": len(history["loss"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="*", default=["wine", "breast_cancer"])
    parser.add_argument("--flows", nargs="*", default=list(FLOWS))
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument(
        "--whiten", action="store_true", help="put each flow behind the fitted Gaussian's map"
    )
    parser.add_argument("--out", default="benchmarks/results_tabular.json")
    args = parser.parse_args()
    results = []
    for name in args.datasets:
        data = load(name)
        folds = np.array_split(np.random.default_rng(0).permutation(len(data)), 5)
        for k, test_idx in enumerate(folds):
            train = data[np.setdiff1d(np.arange(len(data)), test_idx)]
            mean, std = train.mean(0), train.std(0)
            train, test = (train - mean) / std, (data[test_idx] - mean) / std
            row = {"dataset": name, "fold": k, "gaussian": gaussian_nll(train, test)}
            for kind in args.flows:
                start = time.perf_counter()
                row[kind] = flow_nll(kind, train, test, args, seed=k)
                row[kind]["seconds"] = time.perf_counter() - start
            results.append(row)
            flows = "  ".join(f"{f} {row[f]['nll']:8.3f}" for f in args.flows)
            print(f"{name:13s} fold {k}  gaussian {row['gaussian']:8.3f}  {flows}", flush=True)
            with open(args.out, "w") as f:
                json.dump({"settings": vars(args), "results": results}, f, indent=1)
    for name in args.datasets:
        rows = [r for r in results if r["dataset"] == name]
        means = {m: np.mean([r[m]["nll"] for r in rows]) for m in args.flows}
        gauss = np.mean([r["gaussian"] for r in rows])
        print(name, f"gaussian {gauss:.3f}", {k: round(v, 3) for k, v in means.items()})


if __name__ == "__main__":
    main()
