#!/usr/bin/env python3
"""PyTorch's side of `cargo run --release -p alexnet-cli --example conv_split`: forward, forward +
input gradient, forward + weight gradient and both, for the paper's conv2 and conv3 at batch 32,
on 2 threads (best of 4)."""
import time

import torch

torch.set_num_threads(2)
for name, cin, cout, k, pad, groups, side in [("conv2", 96, 256, 5, 2, 2, 27),
                                                ("conv3", 256, 384, 3, 1, 1, 13)]:
    x0 = torch.randn(32, cin, side, side)
    w0 = torch.randn(cout, cin // groups, k, k) * 0.01
    for label, x_grad, w_grad in [("forward", False, False), ("forward + x grad", True, False),
                                  ("forward + w grad", False, True), ("forward + both", True, True)]:
        best = float("inf")
        for _ in range(4):
            x = x0.clone().requires_grad_(x_grad)
            w = w0.clone().requires_grad_(w_grad)
            started = time.perf_counter()
            y = torch.nn.functional.conv2d(x, w, None, 1, pad, 1, groups)
            if x_grad or w_grad:
                y.sum().backward()
            else:
                y.sum().item()
            best = min(best, (time.perf_counter() - started) * 1e3)
        print(f"{name} {label}: {best:.1f} ms")
