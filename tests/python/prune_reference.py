"""Computes torch.nn.utils.prune masks for tensors shrink saved, so the C++ test can compare.

usage: prune_reference.py IN.pth OUT.pth
IN holds {"layer.<i>": tensor, "amount": tensor(a)}; OUT gets {"layer.<i>": l1_unstructured mask,
"global.<i>": global_unstructured mask over all layers in index order}.
"""
import sys

import torch
from torch import nn
from torch.nn.utils import prune

inp, out = sys.argv[1:3]
data = torch.load(inp)
amount = float(data["amount"].item())
names = sorted((k for k in data if k.startswith("layer.")), key=lambda k: int(k.split(".")[1]))
result = {}
holders = []
for name in names:
    holder = nn.Module()
    holder.weight = nn.Parameter(data[name].clone())
    prune.l1_unstructured(holder, "weight", amount=amount)
    result[name] = holder.weight_mask.clone()
    fresh = nn.Module()
    fresh.weight = nn.Parameter(data[name].clone())
    holders.append(fresh)
prune.global_unstructured([(h, "weight") for h in holders], pruning_method=prune.L1Unstructured, amount=amount)
for name, h in zip(names, holders):
    result["global." + name.split(".")[1]] = h.weight_mask.clone()
torch.save(result, out)
print("ok", len(names), "tensors, amount", amount)
