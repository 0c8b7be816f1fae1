#!/usr/bin/env python3
"""PyTorch's side of `cargo run --release -p alexnet-cli --example fully_connected -- ROWS`:
`torch.nn.Linear` at the shapes of fc6, fc7 and fc8 for ROWS images (default 1), in inference
and in training (forward + backward), on 2 threads, best of 10, with the rate at which
inference reads the weights; then one streaming read of 256 MB (`sum`), the rate memory gives
both cores, against which the layers' rates are read."""
import sys
import time

import torch

torch.set_num_threads(2)
rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1


def best_ms(run):
    best = float("inf")
    for _ in range(10):
        started = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - started) * 1e3)
    return best


print(f"{rows} row(s); inference ms and the weights' GB/s, training ms")
for name, inputs, outputs in [("fc6", 9216, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)]:
    linear = torch.nn.Linear(inputs, outputs)
    x = torch.randn(rows, inputs)
    probe = torch.randn(rows, outputs)
    with torch.no_grad():
        inference = best_ms(lambda: linear(x))

    def step():
        x_tracked = x.clone().requires_grad_(True)
        linear.zero_grad()
        (linear(x_tracked) * probe).sum().backward()

    training = best_ms(step)
    gigabytes = inputs * outputs * 4 / 1e9
    print(f"{name:<6} {inference:7.2f} {gigabytes / inference * 1e3:5.1f} GB/s {training:8.2f}")
values = torch.ones(64 * 1024 * 1024)
streamed = best_ms(lambda: values.sum())
print(f"sum over 256 MB: {streamed:.2f} ms, {values.numel() * 4 / streamed / 1e6:.1f} GB/s")
