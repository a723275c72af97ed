"""The peer side of ``benchmarks/scaling.py``: nflows' affine-coupling RealNVP on the same
workload, its train step under ``torch.compile`` (its fastest mode on this CPU), run in the
peers' own environment (``benchmarks/peers/requirements.txt``).

Protocol (one JSON object a line): builds and compiles the step for ``--dims``, prints
``{"ready": ...}``; then, for every ``round`` line on stdin, runs ``--steps`` steps and prints
``{"nflows-compile": steps/s}``; stops at end of input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from nflows import distributions, flows, transforms
from torch import nn

BATCH, HIDDEN, COUPLINGS = 512, 256, 8


def build(dims: int) -> flows.Flow:
    half = dims // 2

    class MLP(nn.Sequential):
        def forward(self, x, context=None):  # nflows passes a context
            return super().forward(x)

    def net(features_in, features_out):
        return MLP(
            nn.Linear(features_in, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, features_out),
        )

    layers = []
    for i in range(COUPLINGS):  # halves swapped between couplings, as in the TF workload
        mask = torch.zeros(dims)
        mask[half:] = 1 if i % 2 == 0 else 0
        mask[:half] = 0 if i % 2 == 0 else 1
        layers.append(transforms.AffineCouplingTransform(mask, net))
    return flows.Flow(transforms.CompositeTransform(layers), distributions.StandardNormal([dims]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dims", type=int, required=True)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    flow = build(args.dims)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    data = torch.randn(8 * BATCH, args.dims)
    batches = data.split(BATCH)

    @torch.compile
    def loss_and_grads(x):
        loss = -flow.log_prob(x).mean()
        loss.backward()
        return loss

    def run(steps: int) -> float:
        loss = None
        for i in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_and_grads(batches[i % len(batches)])
            optimizer.step()
        return float(loss.detach())

    t0 = time.perf_counter()
    run(2)  # compile
    params = sum(p.numel() for p in flow.parameters())
    print(json.dumps({"ready": time.perf_counter() - t0, "parameters": params}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        t0 = time.perf_counter()
        run(args.steps)
        print(json.dumps({"nflows-compile": args.steps / (time.perf_counter() - t0)}), flush=True)


if __name__ == "__main__":
    main()
