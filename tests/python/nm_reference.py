"""Computes torch.ao's N:M masks (WeightNormSparsifier, blocks (1, m)) for Linear weights shrink
saved, so the C++ test can compare.

usage: nm_reference.py IN.pth OUT.pth
IN holds {"layer.<i>": [out, in] tensor, "m": tensor(m), "zeros": tensor(z)}; OUT gets
{"layer.<i>": the sparsifier's mask as float}.
"""
import sys

import torch
from torch import nn

try:
    from torch.ao.pruning import WeightNormSparsifier
except ImportError:  # PyTorch 1.13 names the package torch.ao.sparsity
    from torch.ao.sparsity import WeightNormSparsifier

inp, out = sys.argv[1:3]
data = torch.load(inp)
m, zeros = int(data["m"].item()), int(data["zeros"].item())
result = {}
for name in sorted(k for k in data if k.startswith("layer.")):
    w = data[name]
    model = nn.Sequential(nn.Linear(w.shape[1], w.shape[0], bias=False))
    with torch.no_grad():
        model[0].weight.copy_(w)
    sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, m), zeros_per_block=zeros)
    sparsifier.prepare(model, [{"tensor_fqn": "0.weight"}])
    sparsifier.step()
    result[name] = model[0].parametrizations.weight[0].mask.to(torch.float32).clone()
torch.save(result, out)
print("ok", len(result), "tensors,", zeros, "zeros of every", m)
