"""Runs an int8 shrink .pth in PyTorch with docs/python/shrink_models.py alone, two ways.

usage: int8_reference.py MODEL.pth PROBE.pth OUT.pth
MODEL.pth.json is its sidecar; PROBE holds {"inputs": x, "targets": y}. OUT gets the logits of
the int8 simulation ("simulated") and of the dequantized float model ("dequantized"), and the
accuracy of each.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python"))
import shrink_models  # noqa: E402

model_path, probe_path, out_path = sys.argv[1:4]
blueprint = json.load(open(model_path + ".json"))["model"]
state = torch.load(model_path)
probe = torch.load(probe_path)
out = {}
for name, build in (("simulated", shrink_models.simulate_int8), ("dequantized", shrink_models.dequantize)):
    model = build(shrink_models.from_blueprint(blueprint), state, blueprint).eval()
    with torch.no_grad():
        logits = model(probe["inputs"]).to(torch.float32)
    accuracy = (logits.argmax(1) == probe["targets"]).float().mean()
    out[name] = logits
    out[name + "_accuracy"] = accuracy.reshape(1)
    print(f"{name} {blueprint['arch']}: accuracy {accuracy.item():.4f}")
torch.save(out, out_path)
