"""Where `sample` spends its time: the whole compiled forward pass against its conditioner MLPs
alone on the same inputs (D=64, 8 couplings, 256-256 MLPs, 8192 draws).

Run:  python benchmarks/sample_breakdown.py
"""

import time

import tensorflow as tf

import tfp_realnvp as trn

N, D = 8192, 64


def best_of(fn, reps=20, rounds=5):
    fn().numpy()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            out = fn()
        out.numpy()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main() -> None:
    model = trn.FlowModel(trn.real_nvp([D], 8, [256, 256]))
    couplings = model.bijector.bijectors
    z = tf.random.normal([N, D])
    half = tf.random.normal([N, D // 2])
    nets = [c.conditioner for c in couplings]
    for jit in (False, True):
        mlps = tf.function(lambda h: tf.add_n([net(h)[0] for net in nets]), jit_compile=jit)
        noise = tf.function(lambda: tf.random.normal([N, D]), jit_compile=jit)
        forward = tf.function(model.bijector.forward, jit_compile=jit)
        t_fwd = best_of(lambda forward=forward: forward(z))
        t_mlp = best_of(lambda mlps=mlps: mlps(half))
        t_noise = best_of(noise)
        mode = "XLA" if jit else "tf.function"
        print(
            f"{mode:12s} forward {t_fwd * 1e3:6.1f} ms | 8 conditioner MLPs alone "
            f"{t_mlp * 1e3:6.1f} ms ({t_mlp / t_fwd:.0%}) | noise {t_noise * 1e3:5.2f} ms"
        )


if __name__ == "__main__":
    main()
