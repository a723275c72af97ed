"""Where the time goes, by op: TensorFlow's profiler on the benchmark flow (D = 64, 8
couplings, 256-256; 8192 points), per pass, summed over the executed ops' events on the host and
grouped by op type (an XLA cluster is one op).

Passes: ``sample`` and ``log_prob`` in the user's own `tf.function` (float32, no XLA; the
drop-in route) and ``model.sample(n, precision="bfloat16")``'s compiled forward. (An XLA
cluster's ops carry no durations in this trace; bench_perf2.py's floors stand in for them.)

Run:  python benchmarks/profile_ops.py [--out benchmarks/profile_ops.json]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_realnvp import EVAL_POINTS, build

D, CALLS = 64, 5


def _profile(fn) -> dict[str, float]:
    """Milliseconds per call by op type, summed over the host plane's threads (so parallel
    ops add up: a total above the wall time means ops overlapped)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.nest.flatten(fn())[-1].numpy()
    tf.nest.flatten(fn())[-1].numpy()
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    for _ in range(CALLS):
        out = fn()
    tf.nest.flatten(out)[-1].numpy()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    totals: dict[str, float] = collections.defaultdict(float)
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {k: m.name for k, m in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and "::" not in name:  # "op_name:OpType", one per executed op
                    totals[name.split(":")[-1]] += event.duration_ps / 1e9 / CALLS
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import tensorflow as tf

    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    model, dist, variables = build("ours", D)
    for v in variables:
        v.assign(tf.random.normal(v.shape, stddev=0.05))
    model.compile()
    x = tf.random.normal([EVAL_POINTS, D])
    z = tf.random.normal([EVAL_POINTS, D])
    passes = {}
    log_prob = tf.function(dist.log_prob)
    passes["sample-fn"] = tf.function(lambda: dist.sample(EVAL_POINTS))
    passes["log_prob-fn"] = lambda: log_prob(x)
    forward = model._compiled("forward", "bfloat16")
    passes["forward-bf16"] = lambda: forward(z)
    report = {name: _profile(fn) for name, fn in passes.items()}
    for name, ops in report.items():
        total = sum(ops.values())
        top = ", ".join(f"{op} {ms:.1f}" for op, ms in list(ops.items())[:8])
        print(f"{name}: {total:.1f} ms of op time per call; {top}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
