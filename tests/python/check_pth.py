"""Loads a shrink .pth into the equivalent PyTorch model, checks its output, and re-saves the values.

usage: check_pth.py WEIGHTS.pth PROBE.pth ARCH OUT.pth
PROBE holds {"input": x, "output": y} computed by shrink; ARCH is "mlp" or "convnet" (test shapes).
Exit 0 on success; any mismatch raises.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python"))
import shrink_models  # noqa: E402

weights, probe, arch, out = sys.argv[1:5]
# weights_only=True: what torch.load does by default since PyTorch 2.6; shrink's files must pass it.
state = torch.load(weights, weights_only=True)
assert isinstance(state, dict), type(state)
if arch == "mlp":
    model = shrink_models.mlp(in_features=64, hidden=[32, 16], classes=4)
else:
    model = shrink_models.convnet(in_shape=(1, 8, 8), channels=[4, 8], kernel_size=3, fc=[16], classes=4)
model.load_state_dict(state, strict=True)
model.eval()
p = torch.load(probe, weights_only=True)
with torch.no_grad():
    y = model(p["input"])
max_diff = (y - p["output"]).abs().max().item()
assert max_diff < 1e-5, f"outputs differ by {max_diff}"
torch.save({k: v.clone() for k, v in state.items()}, out)
print(f"ok: {len(state)} tensors, max output difference {max_diff:.2e}")
