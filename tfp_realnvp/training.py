"""One training run of the command line: data -> FlowModel -> run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_probability as tfp

from tfp_realnvp import plots
from tfp_realnvp._keras import keras
from tfp_realnvp.export import export_saved_model
from tfp_realnvp.flows import real_nvp
from tfp_realnvp.image_flows import multiscale_real_nvp, preprocessed_image_flow
from tfp_realnvp.metrics import bits_per_dim
from tfp_realnvp.model import FlowModel

tfb = tfp.bijectors

__all__ = ["split_three", "standardized_flow", "train_run"]


def split_three(data: np.ndarray, validation: float, test: float, seed: int):
    """Seeded shuffle into (train, validation, test); each part gets at least one example."""
    n = len(data)
    n_val, n_test = max(1, round(n * validation)), max(1, round(n * test))
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} examples are too few to split into train/validation/test")
    order = np.random.default_rng(seed).permutation(n)
    val, test_, train = np.split(data[order], [n_val, n_val + n_test])
    return train, val, test_


def standardized_flow(train: np.ndarray, couplings: int, hidden, seed: int) -> tfb.Chain:
    """A RealNVP on vectors behind a fixed per-dimension standardisation, so the model's
    density is in the data's own units."""
    flat = train.reshape(len(train), -1)
    mean = flat.mean(0).astype(np.float32)
    std = np.maximum(flat.std(0), 1e-3).astype(np.float32)
    flow = real_nvp([flat.shape[1]], couplings, hidden, seed=seed)
    return tfb.Chain([tfb.Shift(mean), tfb.Scale(std), flow], name="standardized_flow")


def image_model(data: np.ndarray, args) -> FlowModel:
    """RealNVP's multi-scale flow (or Glow's, with ``args.architecture == "glow"``) on
    dequantised grey levels, behind `Dequantize` and `Logit`."""
    levels = int(data.max()) + 1
    if data.min() < 0 or not np.all(data == np.round(data)) or levels < 2:
        raise ValueError(
            "image data must hold integer grey levels 0, 1, ..., K-1 (K >= 2); got values in "
            f"[{data.min()}, {data.max()}]"
        )
    flow = multiscale_real_nvp(
        data.shape[1:],
        num_scales=2,
        couplings_per_stage=args.couplings,
        hidden_channels=args.hidden[0],
        glow=args.architecture == "glow",
    )
    return FlowModel(preprocessed_image_flow(flow, levels), dequantize=True)


def dequantized(data: np.ndarray, seed: int) -> np.ndarray:
    """Grey levels plus one fixed draw of Uniform[0, 1) noise, for evaluation."""
    return (data + np.random.default_rng(seed).uniform(size=data.shape)).astype(np.float32)


def train_run(data: np.ndarray, args, out: Path) -> dict:
    """Trains on ``data`` per the CLI ``args`` and writes everything into ``out``.

    Vectors get a standardised RealNVP; images ``[N, H, W, C]`` of integer grey levels the
    multi-scale flow (``--architecture vector`` flattens them for a standardised RealNVP on
    dequantised pixels instead). Reported NLLs are in nats per example of the data's own units
    (grey levels for images).
    """
    keras.utils.set_random_seed(args.seed)
    images = data.ndim == 4
    event_shape = data.shape[1:]
    train, val, test = split_three(data, args.validation_split, args.test_split, args.seed)
    if images and args.architecture != "vector":
        model = image_model(train, args)  # adds fresh dequantisation noise to every batch
        parts = {"train": train, "validation": val, "test": test}
        scored = {k: dequantized(v, args.seed + i) for i, (k, v) in enumerate(parts.items())}
    else:
        if images:  # flat pixels, dequantised once
            train, val, test = (
                dequantized(part, args.seed + i).reshape(len(part), -1)
                for i, part in enumerate((train, val, test))
            )
        model = FlowModel(standardized_flow(train, args.couplings, args.hidden, args.seed))
        scored = {"train": train, "validation": val, "test": test}
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        jit_compile=False if getattr(args, "no_xla", False) else "auto",
    )
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, args.patience // 2)),
        keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True),
    ]
    history = model.fit(
        train,
        validation_data=val,
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    num_dims = int(np.prod(event_shape))
    metrics = {"data": args.data, "event_shape": list(event_shape), "num_dims": num_dims}
    for name, part in scored.items():
        nll = float(-np.mean(_batched_log_prob(model, part)))
        metrics[f"{name}_nll"] = nll
        metrics[f"{name}_bits_per_dim"] = bits_per_dim(nll, num_dims)
    metrics["epochs"] = len(history.history["loss"])
    metrics["num_examples"] = {"train": len(train), "validation": len(val), "test": len(test)}
    metrics["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}

    export_saved_model(model, out / "saved_model")
    model.save(str(out / "model.keras"))
    _pictures(model, history.history, scored["test"], event_shape, images, out, args.seed)
    return metrics


def _batched_log_prob(model: FlowModel, x: np.ndarray, batch: int = 8192) -> np.ndarray:
    # model.log_prob runs one compiled function, traced once for every batch size.
    return np.concatenate(
        [model.log_prob(x[i : i + batch]).numpy() for i in range(0, len(x), batch)]
    )


def _pictures(model, history, data, event_shape, images, out: Path, seed: int) -> None:
    plots.plot_loss_curves(
        {k: v for k, v in history.items() if k in ("loss", "val_loss")}, out / "loss.png"
    )
    n = min(len(data), 2000 if not images else 64)
    samples = model.sample(n, seed=seed).numpy()
    if images:
        real = np.floor(data[:n].reshape((n, *event_shape)))
        fake = np.clip(np.floor(samples.reshape((n, *event_shape))), 0, real.max())
        plots.plot_images_side_by_side(real, fake, out / "samples.png")
    elif event_shape == (2,):
        plots.plot_samples_2d(data[:n], samples, out / "samples.png")
        plots.plot_density_2d(lambda p: model.log_prob(p).numpy(), data, out / "density.png")
