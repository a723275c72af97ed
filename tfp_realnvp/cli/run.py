"""One training run of the command line: data -> FlowModel -> run directory.

The library does not know the command line: `TrainConfig` is the run's typed description, which
the command line fills in from its arguments after checking them. A run draws pictures
(`tfp_realnvp.cli.plots`), so this module needs the ``cli`` extra, as the command line does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_realnvp._buckets import filled_up, fills_up_batches
from tfp_realnvp._keras import LEGACY_KERAS, keras
from tfp_realnvp.autoregressive_flows import masked_autoregressive_flow
from tfp_realnvp.bijectors.whitening import Whitening
from tfp_realnvp.cli import plots
from tfp_realnvp.cli.backup_callback import TrainingBackup, restore
from tfp_realnvp.cli.screening import uses_image_flow
from tfp_realnvp.cli.streams import epoch_batches
from tfp_realnvp.data import dequantized, random_split
from tfp_realnvp.export import export_saved_model
from tfp_realnvp.flows import neural_spline_flow, real_nvp
from tfp_realnvp.image_flows import multiscale_real_nvp, preprocessed_image_flow
from tfp_realnvp.model import FlowModel
from tfp_realnvp.units import bits_per_dim

tfb = tfp.bijectors

__all__ = ["TrainConfig", "standardized_flow", "train_run"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train one flow on an array.

    Attributes:
      data_name: names the data in the metrics.
      architecture: for images ``[N, H, W, C]``: ``"realnvp"`` (multi-scale), ``"glow"``, or
        ``"vector"`` (a RealNVP on the flattened, dequantised pixels). Vectors get a RealNVP.
      flow: the couplings' family: ``"affine"`` (RealNVP), ``"spline"`` (rational-quadratic
        splines; images too) or ``"maf"`` (masked autoregressive flow; vectors only).
      couplings: couplings (vectors, default 8) or couplings per stage (images, default 3).
      hidden_units: the conditioners' MLP widths for vectors (default ``(64, 64)``).
      hidden_channels: the conv conditioners' channels for images (default 64).
      dequantize_columns: 0-based columns of whole numbers that get fresh uniform noise on
        ``[-0.5, 0.5)`` in every training batch (vectors only; see `tfp_realnvp.cli.screening`).
      dropout: dropout rate in the vector flows' MLP conditioners. ``None`` (sharded runs):
        `tfp_realnvp.cli.screening.small_data_dropout` of the training rows the checking
        pass counts.
      weight_decay: decoupled weight decay of the optimiser (AdamW); 0 for plain Adam.
      base: the base distribution (`tfp_realnvp.bases.BASES`).
      whiten: put vector flows behind the Gaussian fitted to the training rows
        (`tfp_realnvp.Whitening`) instead of a per-column standardisation.
      context_columns: 0-based columns of a vector table that condition the rest: the run
        learns ``p(rest | context)`` (a 1-D rest gets a spline MAF, which transforms every
        unit). Empty: the density of every column.
      xla: compile the training step with XLA.
      verbose: Keras' progress output (0 none, 1 bar, 2 a line per epoch).
    """

    data_name: str = "data"
    architecture: Literal["realnvp", "glow", "vector"] = "realnvp"
    flow: Literal["affine", "spline", "maf"] = "affine"
    couplings: int | None = None
    hidden_units: tuple[int, ...] | None = None
    hidden_channels: int | None = None
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 2e-3
    validation_split: float = 0.1
    test_split: float = 0.1
    patience: int = 10
    dropout: float | None = 0.0
    weight_decay: float = 0.0
    base: str = "normal"
    xla: bool = True
    seed: int = 0
    verbose: int = 1
    dequantize_columns: tuple[int, ...] = ()
    whiten: bool = False
    context_columns: tuple[int, ...] = ()


# The builder behind each --flow for vectors, as metrics.json names it.
VECTOR_ARCHITECTURES = {
    "affine": "realnvp",
    "spline": "neural_spline_flow",
    "maf": "masked_autoregressive_flow",
}


def vector_flow(
    num_dims: int, config: TrainConfig, context_shape: list[int] | None = None
) -> tfb.Chain:
    """The flow ``config.flow`` names for standardised vectors of ``num_dims`` (a spline MAF
    for one dimension, which couplings cannot split)."""
    layers = config.couplings or 8
    hidden = config.hidden_units or (64, 64)
    kwargs = {"dropout": config.dropout, "seed": config.seed, "context_shape": context_shape}
    if num_dims == 1:
        return masked_autoregressive_flow([1], layers, hidden, transformer="spline", **kwargs)
    if config.flow == "spline":
        return neural_spline_flow([num_dims], layers, hidden, **kwargs)
    if config.flow == "maf":
        return masked_autoregressive_flow([num_dims], layers, hidden, **kwargs)
    return real_nvp([num_dims], layers, hidden, **kwargs)


def standardized_flow(
    train: np.ndarray, config: TrainConfig, context_shape: list[int] | None = None
) -> tfb.Chain:
    """The vector flow of ``config`` behind a fixed per-dimension standardisation (or, with
    ``config.whiten``, the fitted Gaussian's map), so the model's density is in the data's own
    units."""
    flat = train.reshape(len(train), -1).astype(np.float64)
    if config.whiten:
        whitening = Whitening.fit(flat)
        flow = vector_flow(flat.shape[1], config, context_shape)
        return tfb.Chain([whitening, flow], name="whitened_flow")
    return standardized_by(flat.mean(0), flat.std(0), config, context_shape)


def standardized_by(
    mean: np.ndarray,
    std: np.ndarray,
    config: TrainConfig,
    context_shape: list[int] | None = None,
) -> tfb.Chain:
    """`standardized_flow` from the training rows' per-dimension ``mean`` and ``std``."""
    flow = vector_flow(len(mean), config, context_shape)
    shift, scale = np.asarray(mean, np.float32), np.maximum(std, 1e-3).astype(np.float32)
    return tfb.Chain([tfb.Shift(shift), tfb.Scale(scale), flow], name="standardized_flow")


def image_model(image_shape, levels: int, config: TrainConfig) -> FlowModel:
    """RealNVP's multi-scale flow (or Glow's) on dequantised grey levels ``0 .. levels-1``,
    behind `Dequantize` and `Logit`."""
    flow = multiscale_real_nvp(
        image_shape,
        num_scales=2,
        couplings_per_stage=config.couplings or 3,
        hidden_channels=config.hidden_channels or 64,
        glow=config.architecture == "glow",
        transformer="spline" if config.flow == "spline" else "affine",
    )
    return FlowModel(preprocessed_image_flow(flow, levels), dequantize=True, base=config.base)


def jitter_mask(num_dims: int, columns: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(num_dims, np.float32)
    mask[list(columns)] = 1.0
    return mask


def _jittered(x: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """``x`` plus one fixed draw of Uniform[-0.5, 0.5) noise on the columns in ``mask``."""
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, size=x.shape)
    return (x + mask * noise).astype(np.float32)


def train_run(
    data: np.ndarray,
    config: TrainConfig,
    out: Path,
    backup: Path | None = None,
    resume_from: int = 0,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Trains on ``data`` as ``config`` says and writes the model and pictures into ``out``.

    Vectors get a standardised RealNVP; images ``[N, H, W, C]`` of integer grey levels the
    multi-scale flow (``architecture="vector"`` flattens them for a standardised RealNVP on
    dequantised pixels instead). Reported NLLs are in nats per example of the data's own units
    (grey levels for images); dequantised parts are scored with one fixed noise draw.

    With ``backup`` (a directory of `tfp_realnvp.cli.backup_files.start_backup`), the training
    state is backed up there after every epoch, and ``resume_from`` > 0 continues from the
    state saved after that many epochs (`tfp_realnvp.cli.backup_callback`). The model is built
    and trained in ``strategy``'s scope (default: the current strategy).

    Returns:
      the run's metrics, with ``"model"`` describing what the served model accepts.
    """
    strategy = strategy or tf.distribute.get_strategy()
    data = np.asarray(data, np.float32)  # the flows here compute in float32
    keras.utils.set_random_seed(config.seed)
    images = data.ndim == 4
    event_shape = data.shape[1:]
    train, val, test = random_split(data, [config.validation_split, config.test_split], config.seed)
    parts = {"train": train, "validation": val, "test": test}
    support = None
    if uses_image_flow(data, config.architecture):
        support = [0, int(data.max()) + 1]  # grey levels 0 .. K-1, dequantised onto [0, K)
        with strategy.scope():  # fresh noise in every batch
            model = image_model(event_shape, support[1], config)
        scored = {k: dequantized(v, config.seed + i) for i, (k, v) in enumerate(parts.items())}
        # FlowModel(dequantize=True) adds the noise to validation batches too: give it levels.
        validation, noise_mask = val, None
    else:
        if images:  # flat pixels, dequantised once
            parts = {
                k: dequantized(v, config.seed + i).reshape(len(v), -1)
                for i, (k, v) in enumerate(parts.items())
            }
        mask = jitter_mask(parts["train"].shape[1], config.dequantize_columns)
        scored = {k: _jittered(v, mask, config.seed + i) for i, (k, v) in enumerate(parts.items())}
        split = Split(parts["train"].shape[1], config.context_columns)
        with strategy.scope():
            model = split.model(scored["train"], config)
        validation, noise_mask = split(scored["validation"]), mask
    fit_data, steps = epoch_batches(
        parts["train"], config.batch_size, config.seed, config.epochs, resume_from, noise_mask
    )
    if not images and config.context_columns:
        fit_data = fit_data.map(split.tensors)
        event_shape = (len(split.target),)
    history, best = fit_flow(
        model, fit_data, steps, validation, config, backup, resume_from, strategy
    )
    scored_train, test_rows = scored["train"], scored["test"]
    scored = {k: v if images else split(v) for k, v in scored.items()}
    log_probs = {name: _batched_log_prob(model, part) for name, part in scored.items()}
    sizes = {k: len(v) for k, v in parts.items()}
    metrics = run_metrics(config, event_shape, log_probs, sizes, history, best)
    metrics["model"] = model_record(config, config.architecture if images else None, support)
    if not images:  # the closed-form reference: a Gaussian, or given the context a linear one
        key = "test_nll_linear_gaussian" if config.context_columns else "test_nll_gaussian"
        train = split.pair(scored_train)
        metrics[key] = linear_gaussian_nll(*train, *split.pair(test_rows))
    if not images and config.context_columns:
        publish_model(model, history, None, event_shape, False, out, config.seed)
        return metrics
    publish_model(model, history, scored["test"], event_shape, images, out, config.seed)
    return metrics


class Split:
    """A table's columns as the target ``y`` and the context ``c`` of a conditional run (the
    whole row, and no context, for an unconditional one)."""

    def __init__(self, width: int, context: tuple[int, ...]):
        self.context = list(context)
        self.target = [i for i in range(width) if i not in set(context)]

    def __call__(self, rows: np.ndarray):
        if not self.context:
            return rows
        return rows[:, self.target], rows[:, self.context]

    def pair(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(y, c)``, with ``c = None`` for an unconditional run."""
        return self(rows) if self.context else (rows, None)

    def tensors(self, batch):
        return tf.gather(batch, self.target, axis=1), tf.gather(batch, self.context, axis=1)

    def model(self, train: np.ndarray, config: TrainConfig) -> FlowModel:
        """The standardised flow of ``y`` given ``c``, which it standardises too."""
        if not self.context:
            return FlowModel(standardized_flow(train, config), base=config.base)
        y, c = self(train)
        flow = standardized_flow(y, config, context_shape=[len(self.context)])
        spread = np.maximum(c.std(0), 1e-3)
        return FlowModel(flow, base=config.base, context_center=c.mean(0), context_scale=spread)


def linear_gaussian_nll(
    train_y: np.ndarray,
    train_c: np.ndarray | None,
    test_y: np.ndarray,
    test_c: np.ndarray | None,
) -> float:
    """Test NLL (nats per example) of the conditional Gaussian a least-squares fit gives:
    ``y = A c + b + e``, ``e ~ N(0, S)`` with ``S`` the residuals' covariance on ``train``;
    without a context (``None``), the Gaussian fitted to ``train_y``."""
    if train_c is None:
        train_c, test_c = np.zeros((len(train_y), 0)), np.zeros((len(test_y), 0))
    design = np.column_stack([train_c, np.ones(len(train_c))]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, train_y.astype(np.float64), rcond=None)
    residuals = train_y - design @ coef
    cov = np.atleast_2d(np.cov(residuals, rowvar=False))
    test = test_y - np.column_stack([test_c, np.ones(len(test_c))]) @ coef
    return float(np.mean(gaussian_nlls(test, cov)))


def gaussian_nlls(residuals: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``-log N(r; 0, cov)`` of each row ``r`` of ``residuals``, ``cov`` nudged by ``1e-9 I``
    (a column that is a combination of others would make it singular)."""
    d = residuals.shape[1]
    cov = cov + 1e-9 * np.eye(d)
    _, logdet = np.linalg.slogdet(cov)
    mahalanobis = np.einsum("ij,ij->i", residuals @ np.linalg.inv(cov), residuals)
    return 0.5 * (mahalanobis + logdet + d * np.log(2 * np.pi))


def one_shape(
    batches: tf.data.Dataset, batch_size: int, config: TrainConfig, strategy: tf.distribute.Strategy
) -> tf.data.Dataset:
    """``batches`` with every batch filled up to ``batch_size`` rows of weight 0 where XLA
    compiles the steps (on one replica), so that it compiles them once: an epoch's short last
    batch would cost a compilation of its own (`tfp_realnvp._buckets`)."""
    if not fills_up_batches(config.xla, strategy):
        return batches
    return batches.map(lambda *batch: filled_up(batch if len(batch) > 1 else batch[0], batch_size))


def fit_flow(
    model: FlowModel,
    fit_data: tf.data.Dataset,
    steps: int,
    validation,
    config: TrainConfig,
    backup: Path | None,
    resume_from: int,
    strategy: tf.distribute.Strategy,
) -> dict:
    """Compiles ``model`` in ``strategy``'s scope and fits it on the epoch stream ``fit_data``
    as ``config`` says (early stopping, learning-rate plateaus, the backup); returns the
    history of every epoch, restored ones included, and the (1-based) epoch whose weights the
    model holds at the end: the best by validation NLL once early stopping restored it (Keras 3
    always restores it; tf-keras only when it stopped early), else the last."""
    fit_data = one_shape(fit_data, config.batch_size, config, strategy)
    with strategy.scope():
        if config.weight_decay:
            optimizer = keras.optimizers.AdamW(
                config.learning_rate, weight_decay=config.weight_decay
            )
        else:
            optimizer = keras.optimizers.Adam(config.learning_rate)
        model.compile(optimizer=optimizer, jit_compile="auto" if config.xla else False)
        callbacks = [
            keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, config.patience // 2)),
            keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True),
        ]
        resumed = restore(model, backup, resume_from) if resume_from else None
    if backup is not None:
        callbacks.append(TrainingBackup(backup, callbacks[:], resumed))
    history = model.fit(
        fit_data,
        validation_data=validation,
        epochs=config.epochs,
        initial_epoch=resume_from,
        steps_per_epoch=steps,
        shuffle=False,  # the stream is shuffled
        callbacks=callbacks,
        verbose=config.verbose,
    )
    history = callbacks[-1].history if backup is not None else history.history
    stopper = callbacks[1]
    restored = stopper.best_weights is not None and (not LEGACY_KERAS or stopper.stopped_epoch)
    return history, stopper.best_epoch + 1 if restored else len(history["loss"])


def run_metrics(
    config: TrainConfig,
    event_shape,
    log_probs: dict[str, np.ndarray],
    num_examples: dict[str, int],
    history: dict,
    best_epoch: int,
) -> dict:
    """metrics.json's numbers: each set's NLL (nats per example) and bits/dim from its
    log-probabilities, the set sizes, the per-epoch history, and the epoch whose weights the
    model holds (``best_epoch``, 1-based)."""
    num_dims = int(np.prod(event_shape))
    metrics: dict = {"data": config.data_name, "event_shape": list(event_shape)}
    metrics["num_dims"] = num_dims
    for name, log_prob in log_probs.items():
        with np.errstate(over="ignore", invalid="ignore"):
            nll = float(-np.mean(np.asarray(log_prob, np.float64)))
        metrics[f"{name}_nll"] = nll
        metrics[f"{name}_bits_per_dim"] = bits_per_dim(nll, num_dims)
    metrics["epochs"] = len(history["loss"])
    metrics["best_epoch"] = int(best_epoch)
    metrics["num_examples"] = {k: int(v) for k, v in num_examples.items()}
    metrics["history"] = {k: [float(v) for v in vs] for k, vs in history.items()}
    return metrics


def model_record(config: TrainConfig, image_architecture: str | None, support) -> dict:
    """What the served model accepts, for metrics.json and the run's marker."""
    return {
        "kind": "image" if support else "vector",
        "architecture": image_architecture or VECTOR_ARCHITECTURES[config.flow],
        "flow": config.flow,
        "base": config.base,
        "dropout": config.dropout,
        "weight_decay": config.weight_decay,
        "whiten": config.whiten,
        "support": support,
        "dequantized_columns": [c + 1 for c in config.dequantize_columns],
    }


def publish_model(model, history, test, event_shape, images, out: Path, seed: int):
    """Writes the exported model, the ``.keras`` file and the pictures (the loss curves alone
    for ``test=None``) into ``out``."""
    export_saved_model(model, out / "saved_model")
    model.save(str(out / "model.keras"))
    _pictures(model, history, test, event_shape, images, out, seed)


def _batched_log_prob(model: FlowModel, part, batch: int = 8192) -> np.ndarray:
    """``log p(x)`` of the rows ``part``, or ``log p(y | c)`` for ``part = (y, c)``."""
    # model.log_prob runs one compiled function, traced once for every batch size.
    x, context = part if isinstance(part, tuple) else (part, None)

    def rows(i):
        return None if context is None else context[i : i + batch]

    return np.concatenate(
        [model.log_prob(x[i : i + batch], rows(i)).numpy() for i in range(0, len(x), batch)]
    )


def _pictures(model, history, data, event_shape, images, out: Path, seed: int) -> None:
    plots.plot_loss_curves(
        {k: v for k, v in history.items() if k in ("loss", "val_loss")}, out / "loss.png"
    )
    if data is None:  # a conditional model: samples need contexts
        return
    n = min(len(data), 2000 if not images else 64)
    samples = model.sample(n, seed=seed).numpy()
    if images:
        real = np.floor(data[:n].reshape((n, *event_shape)))
        fake = np.clip(np.floor(samples.reshape((n, *event_shape))), 0, real.max())
        plots.plot_images_side_by_side(real, fake, out / "samples.png")
    elif event_shape == (2,):
        plots.plot_samples_2d(data[:n], samples, out / "samples.png")
        plots.plot_density_2d(lambda p: model.log_prob(p).numpy(), data, out / "density.png")
