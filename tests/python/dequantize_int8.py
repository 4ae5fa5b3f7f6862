"""Dequantizes an int8 shrink .pth with docs/python/shrink_models.py alone and evaluates it.

usage: dequantize_int8.py MODEL.pth PROBE.pth OUT.pth
MODEL.pth.json is its sidecar; PROBE holds {"inputs": x, "targets": y}. OUT gets {"accuracy": a,
"logits": logits} of the dequantized float PyTorch model.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python"))
import shrink_models  # noqa: E402

model_path, probe_path, out_path = sys.argv[1:4]
blueprint = json.load(open(model_path + ".json"))["model"]
model = shrink_models.dequantize(shrink_models.from_blueprint(blueprint), torch.load(model_path), blueprint)
model.eval()
probe = torch.load(probe_path)
with torch.no_grad():
    logits = model(probe["inputs"])
accuracy = (logits.argmax(1) == probe["targets"]).float().mean()
torch.save({"accuracy": accuracy.reshape(1), "logits": logits}, out_path)
print(f"dequantized {blueprint['arch']}: accuracy {accuracy.item():.4f}")
