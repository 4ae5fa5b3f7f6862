"""PyTorch's KD loss on the logits in a .pth: F.kl_div(log_softmax(s/T), softmax(t/T), 'batchmean') * T².

usage: kd_reference.py IN.pth OUT.pth   (IN: student, teacher, targets; OUT: soft_T2, soft_T4, kd_T4_a05)
"""
import sys

import torch
import torch.nn.functional as F

d = torch.load(sys.argv[1])
s, t, y = d["student"], d["teacher"], d["targets"]


def soft(T):
    return F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean") * T * T


out = {"soft_T2": soft(2.0).reshape(1), "soft_T4": soft(4.0).reshape(1),
       "kd_T4_a05": (0.5 * soft(4.0) + 0.5 * F.cross_entropy(s, y)).reshape(1)}
torch.save(out, sys.argv[2])
