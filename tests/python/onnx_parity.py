"""Runs an ONNX file in ONNX Runtime on a batch and compares its logits with shrink's.

usage: onnx_parity.py MODEL.onnx INPUT.f32 EXPECTED.f32 D0 D1 ...
INPUT.f32 and EXPECTED.f32 hold raw little-endian float32 (input of shape D0 x D1 x ..., shrink's
logits of shape D0 x classes). Prints one JSON line: max_abs_diff, top1_agreement, classes.
"""
import json
import sys

import numpy as np
import onnxruntime as ort

model, inputs, expected = sys.argv[1:4]
shape = [int(d) for d in sys.argv[4:]]
x = np.fromfile(inputs, dtype="<f4").reshape(shape)
want = np.fromfile(expected, dtype="<f4").reshape(shape[0], -1)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
(got,) = session.run(["logits"], {"input": x})
assert got.shape == want.shape, (got.shape, want.shape)
print(json.dumps({
    "max_abs_diff": float(np.abs(got - want).max()),
    "top1_agreement": float((got.argmax(1) == want.argmax(1)).mean()),
    "classes": int(got.shape[1]),
}))
