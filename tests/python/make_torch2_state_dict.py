"""Writes tests/data/torch2_state_dict.pth (StateDict.AStateDictSavedByPyTorch2ReadsWithItsValuesAndViews).

usage: PYTHON_WITH_TORCH_2X make_torch2_state_dict.py OUT.pth
PyTorch 2.x's torch.save adds byteorder, .storage_alignment and .data/serialization_id records to
1.13's layout; shrink reads such files (init:, eval) and the test keeps one.
"""
import collections
import sys

import torch

sd = collections.OrderedDict()
sd["fc.weight"] = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4
sd["fc.bias"] = torch.tensor([-1.5, 2.25])
sd["bn.num_batches_tracked"] = torch.tensor(7)
sd["fc.weight_t"] = sd["fc.weight"].t()  # a view: stride (1, 3) over the same storage
torch.save(sd, sys.argv[1])
print(torch.__version__)
