"""PNG pictures of training: loss curves, 2-D samples and densities, image grids.

Figures are drawn with matplotlib's Agg canvas directly (``matplotlib.figure.Figure``, never
``pyplot``), so they work headless, leave no global figure state behind and do not change the
backend of an interactive session that imports this module. Each function writes its PNG
atomically: a temporary file in the target directory is renamed over ``path`` only once it is
complete, so a crash never leaves a half-written picture. Each returns ``path`` as a ``Path``.

matplotlib comes with the ``cli`` extra, ``pip install "tfp_realnvp[cli]"``; without it,
importing this module raises `MissingExtra` (an ``ImportError``) saying so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from tfp_realnvp._extras import missing_extra
from tfp_realnvp._files import atomic_path

if _missing := missing_extra("matplotlib", "tfp_realnvp.cli.plots"):
    raise _missing

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "image_mosaic",
    "plot_density_2d",
    "plot_image_grid",
    "plot_images_side_by_side",
    "plot_loss_curves",
    "plot_samples_2d",
]

_CHUNK = 10_000  # most points passed to log_prob_fn at once, to bound its memory


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp, tmp.open("xb") as f:
        fig.savefig(f, format="png", dpi=100)
    return path


def _points(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(f"`{name}` must have shape [N, 2] with N >= 1; got shape {x.shape}")
    return x


def _limits(data: np.ndarray, margin: float = 0.1) -> tuple[tuple[float, float], ...]:
    if not np.isfinite(data).all():
        raise ValueError("`data` must be finite; it contains NaN or inf")
    lo, hi = data.min(axis=0), data.max(axis=0)
    pad = np.maximum((hi - lo) * margin, 0.5)  # a single point or a line still gets an area
    return tuple((float(a), float(b)) for a, b in zip(lo - pad, hi + pad, strict=True))


def plot_loss_curves(
    history: Mapping[str, Sequence[float]], path: str | os.PathLike, ylabel: str = "NLL (nats)"
) -> Path:
    """One line per key of ``history`` (e.g. ``"loss"``, ``"val_loss"``) against epochs 1, 2, ..."""
    if not history or not any(len(values) for values in history.values()):
        raise ValueError(f"`history` must hold at least one value; got {dict(history)!r}")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for key, values in history.items():
        epochs = np.arange(1, len(values) + 1)
        ax.plot(
            epochs,
            np.asarray(values, dtype=float),
            marker="o" if len(values) < 30 else None,
            markersize=3,
            label=key,
        )
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_samples_2d(data: np.ndarray, samples: np.ndarray, path: str | os.PathLike) -> Path:
    """Scatter plots of ``data`` and model ``samples`` (both ``[N, 2]``) side by side.

    Both panels share the data's limits plus a margin; samples far outside them are cut off,
    which is itself a sign of a poor fit.
    """
    data, samples = _points(data, "data"), _points(samples, "samples")
    xlim, ylim = _limits(data)
    fig = Figure(figsize=(10, 5))
    for i, (x, title) in enumerate([(data, "data"), (samples, "samples")]):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, linewidths=0)
        ax.set(xlim=xlim, ylim=ylim, title=f"{title} ({len(x)})", aspect="equal")
    fig.tight_layout()
    return _save(fig, path)


def plot_density_2d(
    log_prob_fn: Callable[[np.ndarray], object],
    data: np.ndarray,
    path: str | os.PathLike,
    grid_size: int = 200,
) -> Path:
    """Heat map of ``exp(log_prob_fn(x))`` on a ``grid_size`` x ``grid_size`` grid over ``data``.

    ``log_prob_fn`` takes float32 ``[M, 2]`` numpy points, ``M <= 10000``, and returns ``[M]``
    log-densities: numbers, a numpy array or anything ``np.asarray`` converts (a TF tensor).
    """
    data = _points(data, "data")
    if grid_size < 2:
        raise ValueError(f"`grid_size` must be >= 2; got {grid_size}")
    (x0, x1), (y0, y1) = _limits(data)
    xs, ys = np.linspace(x0, x1, grid_size), np.linspace(y0, y1, grid_size)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    chunks = []
    for start in range(0, len(grid), _CHUNK):
        chunk = grid[start : start + _CHUNK]
        log_prob = np.asarray(log_prob_fn(chunk), dtype=np.float64).reshape(-1)
        if log_prob.shape != (len(chunk),):
            raise ValueError(
                f"`log_prob_fn` must return one value per point: [{len(chunk)}]; "
                f"got shape {log_prob.shape}"
            )
        chunks.append(log_prob)
    with np.errstate(over="ignore"):
        density = np.exp(np.concatenate(chunks)).reshape(grid_size, grid_size)
    density = np.ma.masked_invalid(density)  # NaN or overflow: blank, not a broken colour scale
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    image = ax.imshow(density, origin="lower", extent=(x0, x1, y0, y1), cmap="viridis")
    fig.colorbar(image, ax=ax, label="density")
    ax.set(title="model density", aspect="equal")
    fig.tight_layout()
    return _save(fig, path)


def image_mosaic(images: np.ndarray, name: str = "images", nrows: int | None = None) -> np.ndarray:
    """``[N, H, W]`` (or ``[N, H, W, 1]``) images tiled into one 2-D array, ``nrows`` rows
    (default about ``sqrt(N)``), with a 1-pixel NaN border between tiles (drawn blank).

    Raises:
      ValueError: naming ``name`` for images of another shape, or a ``nrows`` below 1.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(
            f"`{name}` must have shape [N, H, W] or [N, H, W, 1] with N >= 1; got shape "
            f"{np.shape(images)}"
        )
    n, h, w = x.shape
    nrows = nrows or math.ceil(math.sqrt(n))
    if nrows < 1:
        raise ValueError(f"`nrows` must be >= 1; got {nrows}")
    ncols = math.ceil(n / nrows)
    # Drawing N tiles as one image is much faster than N axes.
    out = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1), np.nan, dtype=np.float32)
    for i, image in enumerate(x):
        r, c = divmod(i, ncols)
        out[1 + r * (h + 1) : (r + 1) * (h + 1), 1 + c * (w + 1) : (c + 1) * (w + 1)] = image
    return out


def _show(ax, mosaic: np.ndarray, vmin: float, vmax: float, title: str | None) -> None:
    ax.imshow(mosaic, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def _range(mosaic: np.ndarray) -> tuple[float, float]:
    finite = mosaic[np.isfinite(mosaic)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return lo, max(hi, lo + 1e-6)


def plot_image_grid(
    images: np.ndarray, path: str | os.PathLike, nrows: int | None = None, title: str | None = None
) -> Path:
    """Greyscale grid of ``[N, H, W, 1]`` or ``[N, H, W]`` images, ``nrows`` defaulting to ~sqrt(N).

    Grey levels span the images' own minimum to maximum.
    """
    mosaic = image_mosaic(images, "images", nrows)
    height, width = np.array(mosaic.shape) * 6 / max(mosaic.shape)  # longer side: 6 inches
    fig = Figure(figsize=(max(width, 1), max(height, 1) + (0.4 if title else 0)))
    _show(fig.add_subplot(), mosaic, *_range(mosaic), title)
    fig.tight_layout()
    return _save(fig, path)


def plot_images_side_by_side(
    real: np.ndarray, samples: np.ndarray, path: str | os.PathLike
) -> Path:
    """Grids of ``real`` images and model ``samples`` side by side, on the real images' grey scale.

    Samples outside the real images' range saturate to black or white.
    """
    real_mosaic, sample_mosaic = image_mosaic(real, "real"), image_mosaic(samples, "samples")
    vmin, vmax = _range(real_mosaic)
    fig = Figure(figsize=(12, 6.4))
    _show(fig.add_subplot(1, 2, 1), real_mosaic, vmin, vmax, f"data ({len(real)})")
    _show(fig.add_subplot(1, 2, 2), sample_mosaic, vmin, vmax, f"samples ({len(samples)})")
    fig.tight_layout()
    return _save(fig, path)
