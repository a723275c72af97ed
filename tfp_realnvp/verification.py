"""Checks an export against the model it came from before the export is published.

An exported graph is another program: a converter can fold a constant wrongly, a runtime can
round differently. `export_saved_model` and `export_tflite` therefore run what they wrote on
probe inputs and compare every output with the in-process model; on disagreement they remove
what they wrote and raise `ExportMismatchError`, so an export that returned is one that was
seen to agree.

Probes come from the model itself: base draws ``z`` (several batch sizes) and the points
``x = forward(z)`` they map to, so every probe lies in the flow's domain (a logit or sigmoid
preprocessing included). A conditional model gets standard-normal contexts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

__all__ = [
    "ATOL",
    "PROBE_SIZES",
    "PROBE_TEMPERATURE",
    "RTOL",
    "ExportMismatchError",
    "Probe",
    "compare",
    "probes",
]

PROBE_SIZES = (1, 2, 7)
PROBE_TEMPERATURE = 0.5  # probes lie at this fraction of the base draws' distance from its centre
# float32 through another runtime's kernels; seen: 4e-6 nats on log-densities near -25.
RTOL = 1e-5
ATOL = 1e-4


class ExportMismatchError(ValueError):
    """An exported artefact disagrees with the model it was exported from."""


@dataclass(frozen=True)
class Probe:
    """One probe batch (NumPy arrays) and the in-process model's outputs on it.

    ``z``, ``x``, ``context`` and the outputs after them are rows where every output of the
    model is finite (a sample can land on the edge of a bounded domain, where ``inverse`` is
    not); ``drawn_z``, ``drawn_x`` and ``drawn_context`` are the whole draw of ``seed``, for
    comparing samples.
    """

    z: np.ndarray
    x: np.ndarray
    context: np.ndarray | None
    log_prob: np.ndarray
    forward_log_det: np.ndarray
    inverse_z: np.ndarray
    inverse_log_det: np.ndarray
    seed: tuple[int, int]
    drawn_z: np.ndarray
    drawn_x: np.ndarray
    drawn_context: np.ndarray | None


def _batch(values, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(values), (n,))


def probes(model, sizes: Sequence[int] = PROBE_SIZES, seed: int = 0) -> list[Probe]:
    """Probe batches for ``model`` (a `FlowModel`), one per size, with the model's answers.

    Each draws ``4 * size`` base points, and probes at half their distance from the base's
    centre (``PROBE_TEMPERATURE``): in the bulk of the flow, not at its edges, where a bounded
    domain (a logit) turns float32 rounding of ``x`` into large differences in ``z``. Of
    those it keeps the first ``size`` where all the model's outputs are finite (all of them,
    for a model finite nowhere). The answers come from the eager TFP objects
    (``model.distribution``, ``model.bijector``), not a compiled function, and ``x`` is a
    fresh tensor, so TFP's cache cannot answer the inverse from the forward pass. Samples are
    compared on the whole draw (``drawn_z``), as the export's ``sample`` makes it.
    """
    event = len(model.event_shape_)
    draws = []  # (seed pair, base draw, contexts) per size: what the export's `sample` redraws
    for i, n in enumerate(sizes):
        pair, drawn = (seed, i), 4 * n
        z = model.base_sample(drawn, tf.constant(pair, tf.int32)).numpy()
        context = None
        if model.is_conditional:
            rng = np.random.default_rng([seed, i])
            context = rng.normal(size=(drawn, *model.context_shape_))
            context = context.astype(model.flow_dtype.as_numpy_dtype)
        draws.append((pair, z, context))
    # The model answers every size at once (its rows are independent): one eager pass per
    # output, not one per output and size, which for a multiscale flow is most of an export.
    z = np.concatenate([d[1] for d in draws])
    context = None if not model.is_conditional else np.concatenate([d[2] for d in draws])
    kwargs = model.bijector_kwargs(context)
    centre = np.asarray(model.distribution.distribution.mean(), z.dtype)
    probe_z = centre + PROBE_TEMPERATURE * (z - centre)
    both_kwargs = model.bijector_kwargs(None if context is None else np.concatenate([context] * 2))
    both = model.bijector.forward(tf.constant(np.concatenate([z, probe_z])), **both_kwargs)
    drawn_x, x = np.split(both.numpy(), 2)
    fresh = tf.constant(x)  # not the forward pass's output: no cache hit
    total = len(z)
    answers = {
        "log_prob": model.distribution.log_prob(fresh, bijector_kwargs=kwargs).numpy(),
        "forward_log_det": _batch(
            model.bijector.forward_log_det_jacobian(probe_z, event, **kwargs), total
        ),
        "inverse_z": model.bijector.inverse(fresh, **kwargs).numpy(),
        "inverse_log_det": _batch(
            model.bijector.inverse_log_det_jacobian(fresh, event, **kwargs), total
        ),
    }
    finite = np.ones(total, bool)
    for value in answers.values():
        finite &= np.isfinite(value.reshape(total, -1)).all(axis=1)
    out, start = [], 0
    for n, (pair, drawn_z, drawn_context) in zip(sizes, draws, strict=True):
        block = np.arange(start, start + len(drawn_z))
        start += len(drawn_z)
        rows = block[finite[block]][:n] if finite[block].any() else block[:n]
        out.append(
            Probe(
                z=probe_z[rows],
                x=x[rows],
                context=None if context is None else context[rows],
                **{k: v[rows] for k, v in answers.items()},
                seed=pair,
                drawn_z=drawn_z,
                drawn_x=drawn_x[block],
                drawn_context=drawn_context,
            )
        )
    return out


def compare(
    what: str,
    checks: Mapping[str, Callable[[Probe], tuple[np.ndarray, np.ndarray]]],
    batches: Sequence[Probe],
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    """Runs each check (``name -> probe -> (exported, in-process)``) on every probe batch.

    Values the model itself gives as inf or NaN are not compared.

    Raises:
      ExportMismatchError: naming the export, the output, the batch size, the largest
        difference and the tolerance, for the first output that disagrees (or is not finite
        where the model's is).
    """
    for name, check in checks.items():
        for probe in batches:
            got, want = (np.asarray(a, np.float64) for a in check(probe))
            if got.shape != want.shape:
                raise ExportMismatchError(
                    f"{what}: the exported {name} has shape {got.shape} on a batch of "
                    f"{len(probe.z)}, but the model gives {want.shape}; nothing was written"
                )
            # Where the model itself is not finite (an overflow far out in a sample draw)
            # there is nothing to compare; where it is, the export must be too.
            bad = np.isfinite(want) & ~np.isclose(got, want, rtol=rtol, atol=atol)
            if bad.any():
                worst = float(np.max(np.where(bad, np.abs(got - want), 0.0)))  # nan: not finite
                raise ExportMismatchError(
                    f"{what}: the exported {name} differs from the model by up to {worst:.4g} "
                    f"on a probe batch of {len(probe.z)} (tolerance {atol:g} + {rtol:g} x "
                    f"|value|), so it would serve wrong results; nothing was written. "
                    "Please report this with the flow's bijectors."
                )
