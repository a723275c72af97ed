"""Where `export_saved_model`'s time goes: tracing the four functions, `tf.saved_model.save`,
and the self-check (loading the files back and running every signature on the probes).

Two flows, each trained for one epoch first: the README's Keras model (`real_nvp([2], 8,
[64, 64])`) and the command line's image flow on 8x8 digits (multi-scale RealNVP, 3 couplings
per stage, 64 channels, behind dequantisation and a logit). Each flow is exported ``--repeats``
times in one fresh process (the first export apart: it also pays one-off set-up); the table
shows medians of the later ones, and the trace count (calls of the flow under a trace, which is
the cause the unit tests check: ``tests/test_export.py::test_export_traces_each_signature_once``).

Run:  python benchmarks/export_time.py [--repeats 4] [--out benchmarks/results_export_time.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOWS = ("vector", "image")


def _worker(kind: str, repeats: int) -> dict:
    import numpy as np
    import tensorflow as tf

    import tfp_realnvp as trn
    from tfp_realnvp import export

    if kind == "vector":
        x = trn.data.make_dataset("moons", num_samples=512)
        model = trn.FlowModel(trn.real_nvp([2], num_couplings=8, hidden_units=[64, 64]))
    else:
        levels = 17
        flow = trn.preprocessed_image_flow(
            trn.multiscale_real_nvp([8, 8, 1], hidden_channels=64), num_levels=levels
        )
        model = trn.FlowModel(flow, dequantize=True)
        rng = np.random.default_rng(0)
        x = rng.integers(0, levels, size=(256, 8, 8, 1)).astype("float32")
    model.compile(trn.keras.optimizers.Adam(1e-3), jit_compile=False)
    model.fit(x, epochs=1, batch_size=64, verbose=0)

    traces = []
    real = trn.FlowModel.bijector_kwargs

    def counted(self, context=None):
        if tf.inside_function():
            traces.append(1)
        return real(self, context)

    trn.FlowModel.bijector_kwargs = counted
    rows = []
    for _ in range(repeats):
        del traces[:]
        path = Path(tempfile.mkdtemp()) / "m"
        t0 = time.perf_counter()
        module, signatures = export._serving_module(model)
        t1 = time.perf_counter()
        tf.saved_model.save(module, str(path), signatures=signatures)
        t2 = time.perf_counter()
        export._verify(path, model, export.RTOL, export.ATOL)
        t3 = time.perf_counter()
        trn.export_saved_model(model, path.with_name("whole"))
        t4 = time.perf_counter()
        rows.append(
            {
                "trace_s": t1 - t0,
                "save_s": t2 - t1,
                "verify_s": t3 - t2,
                "export_saved_model_s": t4 - t3,
                "traces": len(traces) // 2,  # the phases, then export_saved_model: alike
            }
        )
    return {"first": rows[0], "rest": rows[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results_export_time.json")
    parser.add_argument("--worker", choices=FLOWS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.repeats)))
        return
    results = {}
    for kind in FLOWS:
        run = subprocess.run(
            [sys.executable, __file__, "--worker", kind, "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        out = json.loads(run.stdout.strip().splitlines()[-1])
        medians = {k: statistics.median(r[k] for r in out["rest"]) for k in out["rest"][0]}
        results[kind] = {"median": medians, **out}
        cells = " | ".join(f"{medians[k]:.2f}" for k in list(medians)[:-1])
        print(f"| {kind} | {cells} | {medians['traces']:.0f} |")
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
