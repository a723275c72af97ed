"""How training cost grows with D (issue 25): steps/s of ``FlowModel.fit`` with its defaults,
our hand-written XLA step, TFP's ``tfb.RealNVP`` XLA step and the fastest peer measured on this
CPU (nflows under ``torch.compile``; ``benchmarks/peers/``), for D = 16, 64, 256, 1024.

The workload is ``bench_realnvp.py``'s at every D: 8 affine couplings, 256-256 ReLU MLPs, half
split with the halves swapped, batch 512, Adam 1e-3. Two long-lived worker processes (one
TensorFlow, one PyTorch) build and compile everything for one D, then take turns: each round
runs every configuration of one worker, then of the other, ``--steps`` steps each, so only one
of them computes at a time and every configuration sees the same drift of this shared machine.
The machine also switches, for seconds at a time, into a mode where TensorFlow's steps take
1.35-1.5x as long (whole rounds of 37.5 instead of 50 steps/s, with or without the peer's process
beside it): medians and the best round are both reported, and the ratios of each.

Run:  python -m venv .peers && .peers/bin/pip install -r benchmarks/peers/requirements.txt
      python benchmarks/scaling.py --peer-python .peers/bin/python [--dims 16 64 256 1024]
          [--rounds 9] [--steps 48] [--out benchmarks/results_scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def tf_worker(dims: int, steps: int) -> None:
    """The TensorFlow side of the protocol in ``peers/nflows_worker.py``."""
    import tensorflow as tf
    from bench_perf2 import _step_loop
    from bench_realnvp import BATCH, build

    from tfp_realnvp import keras

    keras.utils.set_random_seed(0)
    data = tf.random.normal([8 * BATCH, dims])
    ds = tf.data.Dataset.from_tensor_slices(data).batch(BATCH).repeat()
    model = build("ours", dims)[0]
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    runs = {
        "ours-fit": lambda: model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0),
        "ours-step-xla": _step_loop(*build("ours", dims)[1:], ds, steps),
        "tfp-step-xla": _step_loop(*build("tfp", dims)[1:], ds, steps),
    }
    t0 = time.perf_counter()
    for run in runs.values():
        run()  # trace and compile
    params = int(sum(v.shape.num_elements() for v in model.trainable_variables))
    print(json.dumps({"ready": time.perf_counter() - t0, "parameters": params}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        speeds = {}
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            speeds[name] = steps / (time.perf_counter() - t0)
        print(json.dumps(speeds), flush=True)


def _start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    return proc


def _reply(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"worker {proc.args} stopped (exit {proc.wait()})")
    return json.loads(line)


def one_dim(dims: int, rounds: int, steps: int, peer_python: str | None) -> dict:
    sizes = ["--steps", str(steps)]
    workers = {"tf": _start([sys.executable, __file__, "--worker", str(dims), *sizes])}
    if peer_python:
        script = str(HERE / "peers" / "nflows_worker.py")
        workers["nflows"] = _start([peer_python, script, "--dims", str(dims), *sizes])
    try:
        ready = {name: _reply(p) for name, p in workers.items()}  # both compile side by side
        speeds: dict[str, list[float]] = {}
        for _ in range(rounds):
            for proc in workers.values():  # one at a time
                proc.stdin.write("round\n")
                proc.stdin.flush()
                for name, value in _reply(proc).items():
                    speeds.setdefault(name, []).append(value)
    finally:
        for proc in workers.values():
            proc.stdin.close()
            proc.wait()
    result = {"parameters": ready["tf"]["parameters"], "rounds": speeds}
    result["compile_s"] = {name: r["ready"] for name, r in ready.items()}
    for kind, pick in (("median", statistics.median), ("best", max)):
        speed = {name: pick(v) for name, v in speeds.items()}
        peers = [v for k, v in speed.items() if not k.startswith(("ours", "tfp"))]
        result[f"{kind}_steps_per_s"] = speed
        result[f"{kind}_ratios"] = {
            "fit_vs_ours_step": speed["ours-fit"] / speed["ours-step-xla"],
            "fit_vs_tfp_xla": speed["ours-fit"] / speed["tfp-step-xla"],
            **({"fit_vs_best_peer": speed["ours-fit"] / max(peers)} if peers else {}),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--peer-python", help="the Python of the peers' environment")
    parser.add_argument("--out", default=str(HERE / "results_scaling.json"))
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tf_worker(args.worker, args.steps)
        return
    results = {"rounds": args.rounds, "steps_per_round": args.steps, "dims": {}}
    for dims in args.dims:
        results["dims"][str(dims)] = one_dim(dims, args.rounds, args.steps, args.peer_python)
        print(dims, json.dumps(results["dims"][str(dims)]["median_steps_per_s"]), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
