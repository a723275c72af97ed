"""The physical limit: this machine's float32 matmul throughput, and the matmul FLOPs of one
training step of the benchmark flow (D=64, 8 couplings of 32 -> 256 -> 256 -> 64 MLPs, batch 512).

Run:  python benchmarks/matmul_limit.py [--steps-per-s 54.6]
"""

from __future__ import annotations

import argparse
import time

import tensorflow as tf

BATCH, LAYERS, COUPLINGS = 512, [(32, 256), (256, 256), (256, 64)], 8


def step_flops() -> float:
    """Matmul FLOPs of one step: forward (2*B*n_in*n_out per layer), plus the backward's
    gradients with respect to the weights and the inputs (twice the forward)."""
    forward = sum(2 * BATCH * n_in * n_out for n_in, n_out in LAYERS) * COUPLINGS
    return 3 * forward


def best_gflops(m: int, k: int, n: int, jit: bool, reps: int = 50) -> float:
    a = tf.random.normal([m, k])
    b = tf.random.normal([k, n])
    fn = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=jit)
    fn(a, b).numpy()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            out = fn(a, b)
        out.numpy()
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * m * k * n / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps-per-s", type=float, nargs="*", default=[])
    args = parser.parse_args()
    flops = step_flops()
    print(f"matmul FLOPs per training step: {flops / 1e9:.3f} GFLOP")
    peak = 0.0
    for m, k, n in [(512, 256, 256), (2048, 2048, 2048)]:
        for jit in (False, True):
            g = best_gflops(m, k, n, jit)
            peak = max(peak, g)
            mode = "XLA" if jit else "tf.function"
            print(f"matmul [{m}x{k}] @ [{k}x{n}] {mode}: {g:.0f} GFLOP/s")
    print(f"best: {peak:.0f} GFLOP/s -> limit {peak * 1e9 / flops:.1f} training steps/s")
    for s in args.steps_per_s:
        print(f"{s:.1f} steps/s reaches {s * flops / (peak * 1e9):.0%} of the limit")


if __name__ == "__main__":
    main()
