#!/usr/bin/env python3
"""Writes fixtures/pytorch-reference/whole-model.json: what PyTorch computes for the paper's
AlexNet and for alexnet-cifar on a fixed input with fixed weights (in the style of llm.c's
reference check): the logits, the cross-entropy loss, and every parameter's gradient.

    pip install torch && python3 benchmarks/whole_model_reference.py

The networks come from the same layer tables as `benchmarks/model_pytorch.py` (PyTorch's LRN
divides alpha by n, so alpha = 5 * 1e-4 there), with dropout off (its masks are random). Weights
and inputs are not random either: each value is an integer hash of its position turned into a
float, a rule crates/alexnet-model/tests/pytorch_reference.rs computes the same way, so the file
needs no tensors of its own. A gradient is summarised (sum, sum of absolute values, largest
absolute value, and 16 values at fixed positions) so the file stays small for the 57 million
parameters of the paper's net. The Rust test reads the file; it needs no Python.
"""
import json
import math
import pathlib

import torch
from torch import nn

from model_pytorch import build

CASES = [
    # (model, classes, batch)
    ("alexnet-cifar", 10, 4),
    ("alexnet", 10, 2),
]
SAMPLES = 16


def uniform(count, seed):
    """count values in [-0.5, 0.5): ((e * 2654435761 + seed * 40503) mod 2^32) / 2^32 - 0.5."""
    e = torch.arange(count, dtype=torch.int64)
    h = (e * 2654435761 + seed * 40503) % (1 << 32)
    return h.to(torch.float64) / float(1 << 32) - 0.5


def fill(model):
    """Weights scaled by 1 / sqrt(fan-in) (so activations neither vanish nor explode), biases
    by 0.1; parameter p (in order) uses seed p + 1."""
    with torch.no_grad():
        for p, (name, param) in enumerate(model.named_parameters()):
            if name.endswith("weight"):
                fan_in = param[0].numel()
                scale = 1.0 / math.sqrt(fan_in)
            else:
                scale = 0.1
            values = uniform(param.numel(), p + 1) * scale
            param.copy_(values.to(torch.float32).reshape(param.shape))


def our_names(model):
    """Our parameter paths, in PyTorch's order: features.i.conv.*, classifier.j.linear.*."""
    names, conv, linear = [], 0, 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            names += [f"features.{conv}.conv.weight", f"features.{conv}.conv.bias"]
            conv += 1
        elif isinstance(module, nn.Linear):
            names += [f"classifier.{linear}.linear.weight", f"classifier.{linear}.linear.bias"]
            linear += 1
    return names


def sample_positions(count):
    step = max(1, count // SAMPLES)
    return sorted({min(count - 1, k * step + (k * 31) % step) for k in range(SAMPLES)})


def case(name, classes, batch):
    torch.manual_seed(0)
    model, side = build(name, classes)
    model.eval()  # dropout off; nothing else in these networks depends on the mode
    fill(model)
    images = (uniform(batch * 3 * side * side, 1000) * 100.0).to(torch.float32)
    images = images.reshape(batch, 3, side, side)
    targets = torch.arange(batch) % classes
    logits = model(images)
    loss = nn.functional.cross_entropy(logits, targets)
    loss.backward()
    gradients = {}
    for our_name, param in zip(our_names(model), model.parameters()):
        g = param.grad.detach().flatten().to(torch.float64)
        positions = sample_positions(g.numel())
        gradients[our_name] = {
            "shape": list(param.shape),
            "sum": g.sum().item(),
            "sum_abs": g.abs().sum().item(),
            "max_abs": g.abs().max().item(),
            "samples": [[i, g[i].item()] for i in positions],
        }
    return {
        "model": name,
        "classes": classes,
        "batch": batch,
        "side": side,
        "logits": logits.detach().flatten().tolist(),
        "loss": loss.item(),
        "gradients": gradients,
    }


def main():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = pathlib.Path(__file__).resolve().parent.parent / "fixtures/pytorch-reference"
    out.mkdir(parents=True, exist_ok=True)
    cases = [case(*c) for c in CASES]
    document = {
        "torch": torch.__version__,
        "rule": "value = scale * (((e * 2654435761 + seed * 40503) mod 2^32) / 2^32 - 0.5)",
        "cases": cases,
    }
    path = out / "whole-model.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
