#!/usr/bin/env python3
"""Runs an ONNX graph written by `alexnet export --format onnx` in onnxruntime (run by
crates/alexnet-interop/tests/interop.rs when onnxruntime imports).

    python3 benchmarks/onnx_check.py MODEL.onnx CASE.json

CASE.json holds `shape` ([N, 3, S, S]), `pixels` (RGB 0..255, flattened) and `logits` (what our
network computes for them). Prints the largest difference between onnxruntime's logits and ours,
relative to the largest of ours, as JSON.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime

model_path, case_path = sys.argv[1], sys.argv[2]
onnx.checker.check_model(model_path)
case = json.load(open(case_path))
pixels = np.array(case["pixels"], dtype=np.float32).reshape(case["shape"])
ours = np.array(case["logits"], dtype=np.float32).reshape(pixels.shape[0], -1)
session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
theirs = session.run(["logits"], {"pixels": pixels})[0]
print(json.dumps({
    "onnxruntime": onnxruntime.__version__,
    "max_relative_difference": float(np.abs(theirs - ours).max() / np.abs(ours).max()),
}))
