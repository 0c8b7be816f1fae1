#!/usr/bin/env python3
"""The scaling model of docs/scaling.md: images/s of synchronous data-parallel AlexNet training
on N ranks, a step being the compute of one rank's share of the batch followed by a ring
all-reduce of every gradient (we do not overlap the two):

    t_step(N) = b / r + 2 (N - 1) alpha + 2 (N - 1) / N * S / B
    images/s  = N b / t_step(N)

b: images per rank per step; r: one rank's training rate (images/s) on its own; S: bytes of
gradients (AlexNet: 60,965,224 f32 = 243.9 MB); B: link bandwidth (bytes/s); alpha: latency of
one message. Prints the table of docs/scaling.md; `--json` for the rows."""
import json
import sys

GRADIENT_BYTES = 60_965_224 * 4
NETWORKS = {
    # name: (bandwidth in bytes/s, latency of one message in s)
    "25 GbE (TCP)": (25e9 / 8, 25e-6),
    "100 Gb/s EDR InfiniBand": (100e9 / 8, 2e-6),
}
# One rank = one Intel Xeon Platinum 8160 (24 cores), at the rate You et al. (ICPP 2018) reached
# per processor: 100 epochs of ImageNet (128.1M images) in 11 minutes on 2,048 of them.
RATE = 100 * 1_281_167 / (11 * 60) / 2048


def step_seconds(ranks, per_rank_batch, rate, bandwidth, latency):
    compute = per_rank_batch / rate
    if ranks == 1:
        return compute, 0.0
    communicate = 2 * (ranks - 1) * latency + 2 * (ranks - 1) / ranks * GRADIENT_BYTES / bandwidth
    return compute, communicate


def rows(per_rank_batch=32, rate=RATE):
    out = []
    for network, (bandwidth, latency) in NETWORKS.items():
        for ranks in (8, 64, 1024):
            compute, communicate = step_seconds(ranks, per_rank_batch, rate, bandwidth, latency)
            images_per_second = ranks * per_rank_batch / (compute + communicate)
            out.append({
                "network": network,
                "ranks": ranks,
                "batch": ranks * per_rank_batch,
                "compute_ms": 1e3 * compute,
                "allreduce_ms": 1e3 * communicate,
                "images_per_second": images_per_second,
                "efficiency": images_per_second / (ranks * rate),
                "minutes_for_100_epochs": 100 * 1_281_167 / images_per_second / 60,
            })
    return out


if __name__ == "__main__":
    table = rows()
    if "--json" in sys.argv:
        print(json.dumps(table, indent=1))
    else:
        print(f"one rank: {RATE:.1f} img/s, {32} images a step; gradients {GRADIENT_BYTES / 1e6:.1f} MB")
        print("| network | ranks | batch | compute ms | all-reduce ms | img/s | efficiency | 100 epochs |")
        print("|---|---|---|---|---|---|---|---|")
        for r in table:
            print(f"| {r['network']} | {r['ranks']:,} | {r['batch']:,} | {r['compute_ms']:.0f} | "
                  f"{r['allreduce_ms']:.1f} | {r['images_per_second']:,.0f} | {100 * r['efficiency']:.0f}% | "
                  f"{r['minutes_for_100_epochs']:.0f} min |")
