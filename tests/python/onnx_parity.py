"""Runs an ONNX file in ONNX Runtime on a batch and compares its output with shrink's.

usage: onnx_parity.py MODEL.onnx INPUT.f32 EXPECTED.f32 D0 D1 ...
INPUT.f32 and EXPECTED.f32 hold raw little-endian float32 (input of shape D0 x D1 x ..., shrink's
output of shape D0 x width: logits or embeddings); an INPUT named *.i64 holds int64 token ids. The
graph's first input and output are used. Prints one JSON line: max_abs_diff, top1_agreement,
min_cosine (the least cosine between a row of ONNX Runtime's and shrink's), classes (the width).
"""
import json
import sys

import numpy as np
import onnxruntime as ort

model, inputs, expected = sys.argv[1:4]
shape = [int(d) for d in sys.argv[4:]]
x = np.fromfile(inputs, dtype="<i8" if inputs.endswith(".i64") else "<f4").reshape(shape)
want = np.fromfile(expected, dtype="<f4").reshape(shape[0], -1)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
(got,) = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: x})
assert got.shape == want.shape, (got.shape, want.shape)
cosine = (got * want).sum(1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1), 1e-12)
print(json.dumps({
    "max_abs_diff": float(np.abs(got - want).max()),
    "top1_agreement": float((got.argmax(1) == want.argmax(1)).mean()),
    "min_cosine": float(cosine.min()),
    "classes": int(got.shape[1]),
}))
