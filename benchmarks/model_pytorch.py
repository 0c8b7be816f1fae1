#!/usr/bin/env python3
"""The PyTorch side of `alexnet bench model`: the same networks, batch sizes and thread counts.

    python3 benchmarks/model_pytorch.py --model alexnet --batch-size 32 --mode train [--channels-last]
        [--bf16]

The networks are built from the same layer tables as crates/alexnet-model/src/alexnet.rs: the
paper's AlexNet (two towers as groups=2, LRN with the paper's constants: PyTorch divides alpha by
n, so alpha = 5 * 1e-4), torchvision's single-tower alexnet-owt, and cuda-convnet's CIFAR net.
A training step is forward, cross-entropy, backward and SGD (momentum 0.9, weight decay 5e-4);
inference is the forward pass under torch.inference_mode(). With --bf16 the forward pass (and so
its gradients) runs under torch.autocast("cpu", torch.bfloat16), PyTorch's mixed precision on CPU:
what a PyTorch user would set against our model.precision = "bf16". Prints one JSON line.
"""
import argparse
import json
import resource
import statistics
import time

import torch
from torch import nn

# (kernels, size, stride, padding, two towers, LRN, pool) per conv layer; hidden FC widths.
TABLES = {
    "alexnet": ([(96, 11, 4, 2, False, True, True), (256, 5, 1, 2, True, True, True),
                 (384, 3, 1, 1, False, False, False), (384, 3, 1, 1, True, False, False),
                 (256, 3, 1, 1, True, False, True)], [4096, 4096], 224, True),
    "alexnet-owt": ([(64, 11, 4, 2, False, False, True), (192, 5, 1, 2, False, False, True),
                     (384, 3, 1, 1, False, False, False), (256, 3, 1, 1, False, False, False),
                     (256, 3, 1, 1, False, False, True)], [4096, 4096], 224, False),
    "alexnet-cifar": ([(32, 5, 1, 2, False, True, True), (32, 5, 1, 2, False, True, True),
                       (64, 5, 1, 2, False, False, True)], [64], 32, False),
}


def build(name, classes):
    convs, hidden, side, towers = TABLES[name]
    layers, channels = [], 3
    for kernels, size, stride, padding, split, lrn, pool in convs:
        groups = 2 if split and towers else 1
        layers += [nn.Conv2d(channels, kernels, size, stride, padding, groups=groups), nn.ReLU()]
        if lrn:
            layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
        if pool:
            layers.append(nn.MaxPool2d(3, 2))
        channels = kernels
    features = nn.Sequential(*layers)
    with torch.no_grad():
        flat = features(torch.zeros(1, 3, side, side)).numel()
    fc, inputs = [], flat
    for width in hidden:
        fc += [nn.Linear(inputs, width), nn.ReLU(), nn.Dropout(0.5)]
        inputs = width
    fc.append(nn.Linear(inputs, classes))
    return nn.Sequential(features, nn.Flatten(), *fc), side


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="alexnet", choices=sorted(TABLES))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--mode", default="train", choices=["train", "inference"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, side = build(args.model, args.classes)
    images = torch.randn(args.batch_size, 3, side, side) * 50
    targets = torch.arange(args.batch_size) % args.classes
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    if args.mode == "train":
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        loss_function = nn.CrossEntropyLoss()

        def step():
            optimizer.zero_grad(set_to_none=True)
            with precision:
                loss = loss_function(model(images), targets)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode(), precision:
                model(images)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(max(args.iterations, 1)):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1e3)
    step_ms = statistics.median(times)
    print(json.dumps({
        "framework": "pytorch " + torch.__version__, "model": args.model, "mode": args.mode,
        "batch_size": args.batch_size, "threads": args.threads,
        "channels_last": args.channels_last, "bf16": args.bf16, "step_ms": step_ms,
        "images_per_second": args.batch_size / (step_ms / 1e3),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
