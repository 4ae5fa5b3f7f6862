"""Loads a channel-pruned shrink .pth into docs/python/shrink_models.py's model, sized from its blueprint.

usage: channel_pruned.py WEIGHTS.pth PROBE.pth
PROBE holds {"input": x, "output": y} computed by shrink. Prints one JSON line: the layers' shapes
and the largest output difference. Exit 0 when the file loads strictly.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python"))
import shrink_models  # noqa: E402

weights, probe = sys.argv[1:3]
with open(weights + ".json") as f:
    blueprint = json.load(f)["model"]
model = shrink_models.from_blueprint(blueprint)
model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
model.eval()
p = torch.load(probe, weights_only=True)
with torch.no_grad():
    y = model(p["input"])
shapes = {k: list(v.shape) for k, v in model.state_dict().items() if k.endswith("weight")}
print(json.dumps({"max_abs_diff": (y - p["output"]).abs().max().item(), "shapes": shapes}))
