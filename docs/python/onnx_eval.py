"""Accuracy of an ONNX file shrink exported, in ONNX Runtime, on Fashion-MNIST's test set.

usage: onnx_eval.py MODEL.onnx [--data /usr/share/datasets/fashion-mnist] [--mean 0.2860 --std 0.3530]
Needs onnxruntime and numpy (scripts/install-onnxruntime.sh makes a venv with both). The input is
normalised as shrink's fashion-mnist manifest says (datasets/fashion-mnist.yaml).
"""
import argparse
import gzip
import os

import numpy as np
import onnxruntime as ort


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("model")
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
ap.add_argument("--mean", type=float, default=0.2860)
ap.add_argument("--std", type=float, default=0.3530)
args = ap.parse_args()

images = idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
labels = idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
x = ((images - args.mean) / args.std)[:, None, :, :]
session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
predictions = np.concatenate(
    [session.run(["logits"], {"input": x[i:i + 1000]})[0].argmax(1) for i in range(0, len(x), 1000)])
print(f"accuracy {(predictions == labels).mean():.4f}  ({len(labels)} test samples, "
      f"shrink {meta.get('shrink_version', '?')}, BatchNorm {meta.get('batch_norm', '?')})")
