#!/usr/bin/env python3
"""Writes fixtures/interop/: a small state dict written by PyTorch for `alexnet import`'s test.

    pip install torch && python3 benchmarks/interop_fixture.py

The network is alexnet-cifar (cuda-convnet's CIFAR-10 net, 10 classes) built the way torchvision
builds its alexnet: `features` = (Conv2d, ReLU, LocalResponseNorm, MaxPool2d) ..., `classifier` =
(Dropout, Linear, ReLU), Linear; so its keys are `features.0.weight` ... `classifier.3.bias`, the
names `alexnet export` gives this net. PyTorch's LRN divides alpha by n, hence 5 * 1e-4.
Weights are drawn by PyTorch (seed 0) and scaled by 1/sqrt(fan-in) so the logits are of order 1.

Files:
- alexnet-cifar.pth: torch.save(model.state_dict()) (zip format, as torch.save writes today);
- image.png: a CIFAR-10 test image of the fixtures, as PNG (lossless, so both sides read the same
  pixels);
- expected.json: the logits PyTorch computes for it with torchvision's normalisation
  ((x / 255 - mean) / std), which `alexnet import --preprocess torchvision` folds into conv1.
"""
import json
import math
import pathlib

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "interop"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def alexnet_cifar(classes=10):
    features = nn.Sequential(
        nn.Conv2d(3, 32, 5, 1, 2), nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(32, 32, 5, 1, 2), nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(32, 64, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
    )
    classifier = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, classes),
    )
    model = nn.Module()
    model.features, model.classifier = features, classifier
    model.forward = lambda x: classifier(torch.flatten(features(x), 1))
    return model


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = alexnet_cifar()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("weight"):
                param.copy_(torch.randn_like(param) * (1.0 / math.sqrt(param[0].numel())))
            else:
                param.copy_(torch.randn_like(param) * 0.1)
    model.eval()
    torch.save(model.state_dict(), OUT / "alexnet-cifar.pth")

    image = Image.open(ROOT / "fixtures/cifar10-mini/test/ship/0000.jpg").convert("RGB")
    image.save(OUT / "image.png")
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model((pixels / 255.0 - mean) / std)[0]
    (OUT / "expected.json").write_text(json.dumps({
        "model": "alexnet-cifar",
        "torch": torch.__version__,
        "keys": list(model.state_dict().keys()),
        "logits": [float(v) for v in logits],
    }, indent=1) + "\n")
    print(f"wrote {OUT}: logits {logits.numpy().round(4)}")


if __name__ == "__main__":
    main()
