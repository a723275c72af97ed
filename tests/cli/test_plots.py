import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from tfp_realnvp.cli.plots import (
    image_mosaic,
    plot_density_2d,
    plot_image_grid,
    plot_images_side_by_side,
    plot_loss_curves,
    plot_samples_2d,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path, returned):
    assert returned == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] >= 100 and pixels.shape[1] >= 100
    assert pixels.std() > 0.01  # something was drawn, not a blank canvas
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left


def _gaussian_log_prob(x):
    return -0.5 * np.sum(x**2, axis=1) - np.log(2 * np.pi)


def _blobs(n=500):
    return np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)


def test_loss_curves(tmp_path):
    history = {"loss": [3.0, 2.0, 1.5, 1.2], "val_loss": [3.1, 2.2, 1.8, 1.7]}
    _check_png(tmp_path / "loss.png", plot_loss_curves(history, tmp_path / "loss.png"))


def test_loss_curves_single_epoch_and_str_path(tmp_path):
    out = plot_loss_curves({"loss": [-1.0]}, str(tmp_path / "loss.png"), ylabel="bits/dim")
    _check_png(tmp_path / "loss.png", out)


@pytest.mark.parametrize("history", [{}, {"loss": []}])
def test_loss_curves_empty(tmp_path, history):
    with pytest.raises(ValueError, match="`history` must hold at least one value"):
        plot_loss_curves(history, tmp_path / "loss.png")
    assert not list(tmp_path.iterdir())


def test_samples_2d(tmp_path):
    samples = _blobs() * 3  # some fall outside the data's limits
    _check_png(tmp_path / "s.png", plot_samples_2d(_blobs(), samples, tmp_path / "s.png"))


def test_samples_2d_bad_shape(tmp_path):
    with pytest.raises(ValueError, match=r"`samples` must have shape \[N, 2\].*got shape \(5, 3\)"):
        plot_samples_2d(_blobs(), np.zeros((5, 3)), tmp_path / "s.png")


def test_samples_2d_creates_directory(tmp_path):
    path = tmp_path / "plots" / "epoch_1" / "s.png"
    _check_png(path, plot_samples_2d(_blobs(), _blobs(), path))


class _FakeTensor:
    """Stands in for a TF tensor: only convertible with ``np.asarray``."""

    def __init__(self, value):
        self._value = value

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._value, dtype=dtype)


def test_density_2d_chunks(tmp_path):
    calls = []

    def log_prob(x):
        calls.append((x.shape, x.dtype))
        return _FakeTensor(_gaussian_log_prob(x))

    path = plot_density_2d(log_prob, _blobs(), tmp_path / "d.png", grid_size=150)
    _check_png(tmp_path / "d.png", path)
    sizes = [shape[0] for shape, _ in calls]
    assert max(sizes) <= 10_000
    assert sum(sizes) == 150 * 150
    assert len(calls) == 3
    assert all(shape[1:] == (2,) and dtype == np.float32 for shape, dtype in calls)


def test_density_2d_grid_covers_data(tmp_path):
    seen = []

    def log_prob(x):
        seen.append(x)
        return _gaussian_log_prob(x)

    data = _blobs() + np.float32(10.0)
    plot_density_2d(log_prob, data, tmp_path / "d.png", grid_size=20)
    grid = np.concatenate(seen)
    assert grid.shape == (400, 2)
    assert (grid.min(axis=0) < data.min(axis=0)).all()
    assert (grid.max(axis=0) > data.max(axis=0)).all()


def test_density_2d_tolerates_non_finite(tmp_path):
    def log_prob(x):
        out = _gaussian_log_prob(x)
        out[:10] = np.nan
        out[10:20] = 1e4  # exp overflows
        out[20:30] = -np.inf
        return out

    _check_png(tmp_path / "d.png", plot_density_2d(log_prob, _blobs(), tmp_path / "d.png", 50))


def test_density_2d_wrong_output_length(tmp_path):
    with pytest.raises(ValueError, match=r"one value per point: \[2500\]; got shape \(1250,\)"):
        plot_density_2d(lambda x: np.zeros(len(x) // 2), _blobs(), tmp_path / "d.png", 50)
    assert not list(tmp_path.iterdir())


def test_density_2d_failing_fn_leaves_nothing(tmp_path):
    def log_prob(x):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        plot_density_2d(log_prob, _blobs(), tmp_path / "d.png")
    assert not list(tmp_path.iterdir())


def test_failing_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "loss.png"
    plot_loss_curves({"loss": [1.0, 0.5]}, path)
    before = path.read_bytes()

    def broken_savefig(self, f, **kwargs):
        f.write(PNG_SIGNATURE + b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_loss_curves({"loss": [2.0, 1.0]}, path)
    with pytest.raises(OSError, match="disk full"):
        plot_samples_2d(_blobs(), _blobs(), tmp_path / "new.png")
    assert path.read_bytes() == before  # the old picture survives intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png"]


@pytest.mark.parametrize("shape", [(10, 8, 8, 1), (7, 8, 8), (1, 28, 28, 1)])
def test_image_grid(tmp_path, shape):
    images = np.random.default_rng(0).integers(0, 17, size=shape).astype(np.float32)
    _check_png(tmp_path / "g.png", plot_image_grid(images, tmp_path / "g.png", title="digits"))


def test_image_grid_nrows(tmp_path):
    images = np.random.default_rng(0).random((12, 8, 8, 1))
    _check_png(tmp_path / "g.png", plot_image_grid(images, tmp_path / "g.png", nrows=2))
    wide = matplotlib.image.imread(tmp_path / "g.png")
    plot_image_grid(images, tmp_path / "g.png", nrows=6)
    tall = matplotlib.image.imread(tmp_path / "g.png")
    assert wide.shape[1] > wide.shape[0] and tall.shape[0] > tall.shape[1]


@pytest.mark.parametrize("shape", [(8, 8), (2, 8, 8, 3), (0, 8, 8, 1)])
def test_image_grid_bad_shape(tmp_path, shape):
    with pytest.raises(ValueError, match=r"`images` must have shape \[N, H, W\] or \[N, H, W, 1\]"):
        plot_image_grid(np.zeros(shape), tmp_path / "g.png")
    assert not list(tmp_path.iterdir())


def test_images_side_by_side(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 17, size=(16, 8, 8, 1)).astype(np.float32)
    samples = rng.normal(8, 6, size=(9, 8, 8))  # other count, no channel axis, out of range
    path = plot_images_side_by_side(real, samples, tmp_path / "cmp.png")
    _check_png(tmp_path / "cmp.png", path)


def test_images_side_by_side_bad_shape(tmp_path):
    with pytest.raises(ValueError, match="`samples` must have shape"):
        plot_images_side_by_side(np.zeros((4, 8, 8, 1)), np.zeros((4, 64)), tmp_path / "c.png")


def test_mosaic_layout():
    images = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((10, 8, 8, 1))
    mosaic = image_mosaic(images, "images")  # 10 images: 4 rows of 3
    assert mosaic.shape == (4 * 9 + 1, 3 * 9 + 1)
    for i in range(10):
        r, c = divmod(i, 3)
        np.testing.assert_array_equal(mosaic[1 + 9 * r : 9 * (r + 1), 1 + 9 * c : 9 * (c + 1)], i)
    assert np.isnan(mosaic[0]).all() and np.isnan(mosaic[:, 0]).all()  # borders between tiles
    assert np.isnan(mosaic[-9:, -9:]).all()  # the two unused tiles stay blank
