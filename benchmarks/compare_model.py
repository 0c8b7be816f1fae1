#!/usr/bin/env python3
"""`alexnet bench model` against PyTorch, alternating, with medians and ratios.

    python3 benchmarks/compare_model.py [--rounds 3] [--threads 2] [--only alexnet-owt]
        [--mode train] [--iterations 5] [--warmup 2] [--precision bf16]

For each row (model, mode, batch) it runs our benchmark and benchmarks/model_pytorch.py (plain and
channels_last), one after the other, `--rounds` times, each in its own process, and prints the
median images/s of each and the ratio ours / PyTorch's best, with both peak memories and both
sides' GFLOP/s and share of this machine's peak (the same multiply-adds per image on both sides:
ours counts them from the layer table).
With --precision bf16 both sides run their bf16 option: ours model.precision = "bf16" (the
convolutions' products), PyTorch's CPU autocast to bfloat16 (convolutions and linear layers).
Needs torch (`pip install torch`); the binary is built with `cargo build --release`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = [
    ("alexnet-owt", "train", 32, 1000),
    ("alexnet-owt", "train", 128, 1000),
    ("alexnet", "train", 32, 1000),
    ("alexnet", "train", 128, 1000),
    ("alexnet-cifar", "train", 128, 10),
    ("alexnet-owt", "inference", 1, 1000),
    ("alexnet-owt", "inference", 64, 1000),
    ("alexnet", "inference", 1, 1000),
    ("alexnet", "inference", 64, 1000),
    ("alexnet-cifar", "inference", 1, 10),
    ("alexnet-cifar", "inference", 64, 10),
]


def ours(binary, model, mode, batch, classes, iterations, warmup, precision):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, "bench", "model", "--model", model, "--mode", mode,
                        "--batch-size", str(batch), "--classes", str(classes),
                        "--iterations", str(iterations), "--warmup", str(warmup),
                        "--precision", precision, "--json", out.name],
                       check=True, stdout=subprocess.DEVNULL)
        return json.load(open(out.name))


def pytorch(model, mode, batch, classes, iterations, warmup, threads, channels_last, precision):
    command = [sys.executable, os.path.join(ROOT, "benchmarks/model_pytorch.py"), "--model", model,
               "--mode", mode, "--batch-size", str(batch), "--classes", str(classes),
               "--iterations", str(iterations), "--warmup", str(warmup),
               "--threads", str(threads)]
    if channels_last:
        command.append("--channels-last")
    if precision == "bf16":
        command.append("--bf16")
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/alexnet"))
    parser.add_argument("--only", help="run only rows whose model matches")
    parser.add_argument("--mode", help="run only rows of this mode (train or inference)")
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    parser.add_argument("--batch", type=int, help="run only rows of this batch size")
    args = parser.parse_args()

    print(f"{'model':<14} {'mode':<9} {'batch':>5} {'ours img/s':>10} {'torch':>8} {'torch CL':>9} "
          f"{'ratio':>6} {'ours MB':>8} {'torch MB':>9} {'ours GF/s':>9} {'torch GF/s':>10} "
          f"{'peak':>5}", flush=True)
    for model, mode, batch, classes in ROWS:
        if (args.only and args.only != model) or (args.mode and args.mode != mode) or (
                args.batch and args.batch != batch):
            continue
        runs = {"ours": [], "plain": [], "cl": []}
        memory = {"ours": [], "torch": []}
        flops_per_image, peak = 0.0, 0.0
        for _ in range(args.rounds):
            a = ours(args.binary, model, mode, batch, classes, args.iterations, args.warmup,
                     args.precision)
            b = pytorch(model, mode, batch, classes, args.iterations, args.warmup, args.threads,
                        False, args.precision)
            c = pytorch(model, mode, batch, classes, args.iterations, args.warmup, args.threads,
                        True, args.precision)
            flops_per_image = a["gflops"] / a["images_per_second"]
            peak = a["peak_gflops"]
            runs["ours"].append(a["images_per_second"])
            runs["plain"].append(b["images_per_second"])
            runs["cl"].append(c["images_per_second"])
            memory["ours"].append(a["peak_memory_mb"])
            memory["torch"].append(min(b["peak_memory_mb"], c["peak_memory_mb"]))
        m = {k: statistics.median(v) for k, v in runs.items()}
        best = max(m["plain"], m["cl"])
        ours_gf, torch_gf = m["ours"] * flops_per_image, best * flops_per_image
        print(f"{model:<14} {mode:<9} {batch:>5} {m['ours']:>10.1f} {m['plain']:>8.1f} {m['cl']:>9.1f} "
              f"{m['ours'] / best:>6.2f} {statistics.median(memory['ours']):>8.0f} "
              f"{statistics.median(memory['torch']):>9.0f} {ours_gf:>9.1f} {torch_gf:>10.1f} "
              f"{peak:>5.0f}", flush=True)


if __name__ == "__main__":
    main()
