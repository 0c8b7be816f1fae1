#!/usr/bin/env python3
"""torchvision's own alexnet against `alexnet import` and `alexnet export`, both ways (run by
crates/alexnet-interop/tests/interop.rs when torch, torchvision and safetensors import).

    python3 benchmarks/torchvision_interop.py write DIR   # DIR/torchvision.pth, DIR/case.json
    python3 benchmarks/torchvision_interop.py check DIR   # DIR/exported.safetensors vs the .pth

`write` saves a torchvision alexnet (10 classes; weights drawn by PyTorch, seed 0, and scaled by
1/sqrt(fan-in) so the logits are of order 1) and the logits of two images, given as RGB 0..255
pixels, under torchvision's normalisation. `check` loads the exported state dict into a fresh
torchvision alexnet with strict=True and prints the largest difference from the original weights,
relative to each tensor's largest value.
"""
import json
import math
import pathlib
import sys

import torch
import torchvision

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def write(out):
    torch.manual_seed(0)
    model = torchvision.models.alexnet(weights=None, num_classes=10)
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 1.0 / math.sqrt(param[0].numel()) if name.endswith("weight") else 0.1
            param.copy_(torch.randn_like(param) * scale)
    model.eval()
    torch.save(model.state_dict(), out / "torchvision.pth")
    pixels = torch.randint(0, 256, (2, 3, 224, 224)).float()
    with torch.no_grad():
        logits = model((pixels / 255.0 - MEAN) / STD)
    (out / "case.json").write_text(json.dumps({
        "pixels": pixels.flatten().tolist(),
        "logits": logits.flatten().tolist(),
    }))


def check(out):
    from safetensors.torch import load_file
    original = torch.load(out / "torchvision.pth")
    exported = load_file(out / "exported.safetensors")
    model = torchvision.models.alexnet(weights=None, num_classes=10)
    model.load_state_dict(exported, strict=True)
    worst = max(
        ((original[k] - exported[k]).abs().max() / original[k].abs().max()).item() for k in original
    )
    print(json.dumps({"keys": len(exported), "max_relative_difference": worst}))


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](pathlib.Path(sys.argv[2]))
