#!/usr/bin/env python3
"""`alexnet bench data` against torchvision, alternating, with medians and ratios.

    python3 benchmarks/compare_data.py --folder DATA/train --shards PREPARED [--rounds 3]

Runs our benchmark and benchmarks/data_torchvision.py one after the other, `--rounds` times each
(so that both see the same machine state), takes the median images/s of every row over the rounds
and prints ours / torchvision per core: folder against torchvision's ImageFolder + transforms,
shards against torchvision's transforms on images already decoded in memory.
Needs torch and torchvision (`pip install torch torchvision`); the binary is built with
`cargo build --release`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--shards", required=True)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--shard-images", type=int, default=4096)
    parser.add_argument("--threads", default="1,%d" % os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/alexnet"))
    args = parser.parse_args()

    results = {}
    for round_ in range(args.rounds):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([
                args.binary, "bench", "data", "--folder", args.folder, "--shards", args.shards,
                "--images", str(args.images), "--shard-images", str(args.shard_images),
                "--threads", args.threads, "--json", out.name,
            ], check=True, stdout=subprocess.DEVNULL)
            ours = json.load(open(out.name))
        torch = subprocess.run([
            sys.executable, os.path.join(ROOT, "benchmarks/data_torchvision.py"),
            "--folder", args.folder, "--images", str(args.images),
            "--memory-images", str(args.shard_images), "--threads", args.threads,
        ], check=True, capture_output=True, text=True).stdout
        rows = ours + [json.loads(line) for line in torch.splitlines() if line.strip()]
        for row in rows:
            results.setdefault((row["source"], row["threads"]), []).append(row["images_per_second"])
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    def rate(source, threads):
        return statistics.median(results[(source, threads)])

    print(f"{'pipeline':<10} {'threads':>7} {'ours img/s':>11} {'torch img/s':>12} "
          f"{'ours/core':>10} {'torch/core':>11} {'ratio':>6}")
    for ours, theirs, label in [("folder", "torchvision-folder", "folder"),
                                ("shards", "torchvision-memory", "shards")]:
        for threads in [int(t) for t in args.threads.split(",")]:
            a, b = rate(ours, threads), rate(theirs, threads)
            print(f"{label:<10} {threads:>7} {a:>11.1f} {b:>12.1f} {a / threads:>10.1f} "
                  f"{b / threads:>11.1f} {a / b:>6.2f}")


if __name__ == "__main__":
    main()
