#!/usr/bin/env python3
"""The torchvision side of `alexnet bench data`: the same images, the same work, a PyTorch DataLoader.

Per image: decode the JPEG (Pillow), shorter side to 256, centre 256x256, random 224x224 crop,
random horizontal flip, to a float tensor, PCA colour noise (AlexNet's "lighting", as in
fb.resnet.torch and torchvision's references), mean/std normalisation; then batches of 128.

One core: num_workers=0 and torch.set_num_threads(1). N cores: num_workers=N, one thread each.
Prints one JSON object per row, like `alexnet bench data --json`.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torchvision
from torchvision import transforms as T


class Lighting:
    """AlexNet-style PCA colour noise: add eigvec @ (alpha * eigval), alpha ~ N(0, 0.1)."""

    def __init__(self, std, eigval, eigvec):
        self.std, self.eigval, self.eigvec = std, torch.tensor(eigval), torch.tensor(eigvec)

    def __call__(self, img):
        alpha = torch.randn(3) * self.std
        rgb = (self.eigvec * alpha * self.eigval).sum(dim=1)
        return img + rgb.view(3, 1, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True, help="an image folder split (<class>/<image>)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--threads", default="1,%d" % os.cpu_count())
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-images", type=int, default=0,
                        help="also time the transforms on this many images held decoded in memory "
                             "as uint8 256x256 tensors (what our shards give)")
    args = parser.parse_args()

    transform = T.Compose([
        T.Resize(args.side),
        T.CenterCrop(args.side),
        T.RandomCrop(args.crop),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        Lighting(0.1, [0.2175, 0.0188, 0.0045],
                 [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = torchvision.datasets.ImageFolder(args.folder, transform=transform)
    # The same files as `alexnet bench data`: every k-th of the sorted list.
    step = max(len(dataset) // max(args.images, 1), 1)
    subset = torch.utils.data.Subset(dataset, list(range(0, len(dataset), step))[: args.images])

    sources = [("torchvision-folder", subset)]
    if args.memory_images:
        sources.append(("torchvision-memory", MemorySet(subset, args.side, args.crop, args.memory_images)))
    for name, dataset in sources:
        for threads in [int(t) for t in args.threads.split(",")]:
            print(json.dumps(time_loader(name, dataset, threads, args)), flush=True)


class MemorySet(torch.utils.data.Dataset):
    """Images decoded once to uint8 [3, side, side] tensors; each access is crop, flip, float,
    lighting, normalise: the work our loader does on shards."""

    def __init__(self, subset, side, crop, count):
        prepare = T.Compose([T.Resize(side), T.CenterCrop(side), T.PILToTensor()])
        base = subset.dataset
        paths = [base.samples[i][0] for i in subset.indices]
        decoded = [prepare(base.loader(p)) for p in paths]
        self.images = [decoded[i % len(decoded)] for i in range(count)]
        self.transform = T.Compose([
            T.RandomCrop(crop),
            T.RandomHorizontalFlip(),
            T.ConvertImageDtype(torch.float32),
            Lighting(0.1, [0.2175, 0.0188, 0.0045],
                     [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), 0


def time_loader(name, dataset, threads, args):
    torch.set_num_threads(1)
    workers = 0 if threads == 1 else threads
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=False, num_workers=workers,
        persistent_workers=workers > 0,
    )

    def one_pass():
        for images, _ in loader:
            pass

    one_pass()  # warm-up: page cache, worker start
    seconds = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        one_pass()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    rate = len(dataset) / median
    return {
        "source": name, "threads": threads, "images": len(dataset),
        "seconds": median, "images_per_second": rate,
        "images_per_second_per_core": rate / threads,
    }


if __name__ == "__main__":
    main()
