"""Quantization parameters from torch.ao.quantization's observers for the tensors in a .pth.

usage: observer_qparams.py INPUT.pth OUTPUT.pth
INPUT holds tensors named a, b, c (activations) and w (a weight [out, ...]). OUTPUT gets
<case>.scale and <case>.zero_point for every case below; test_quantize.cpp builds the same
observers in shrink and compares.
"""
import sys

import torch
from torch.ao.quantization import observer as O

CASES = {
    # name: (observer, tensors observed in order)
    "minmax_affine_quint8": (lambda: O.MinMaxObserver(dtype=torch.quint8), "ab"),
    "minmax_symmetric_qint8": (lambda: O.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric), "ab"),
    "minmax_symmetric_quint8": (lambda: O.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric), "a"),
    "minmax_reduce_range_qint8": (lambda: O.MinMaxObserver(dtype=torch.qint8, reduce_range=True), "ab"),
    "moving_average_affine_quint8": (lambda: O.MovingAverageMinMaxObserver(dtype=torch.quint8), "abc"),
    "per_channel_symmetric_qint8": (
        lambda: O.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric), "w"),
    "per_channel_affine_quint8_reduce_range": (
        lambda: O.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine,
                                           reduce_range=True), "w"),
    "moving_average_per_channel_affine_qint8": (
        lambda: O.MovingAveragePerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                        qscheme=torch.per_channel_affine), "ww"),
    "histogram_affine_quint8": (lambda: O.HistogramObserver(dtype=torch.quint8), "a"),
    "histogram_symmetric_qint8": (lambda: O.HistogramObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric), "a"),
    "histogram_affine_quint8_same_range_batches": (lambda: O.HistogramObserver(dtype=torch.quint8), "add"),
}


def main():
    src = torch.load(sys.argv[1])
    out = {}
    for name, (make, order) in CASES.items():
        obs = make()
        for key in order:
            obs(src[key])
        scale, zero_point = obs.calculate_qparams()
        out[name + ".scale"] = scale.reshape(-1).to(torch.float32)
        out[name + ".zero_point"] = zero_point.reshape(-1).to(torch.int64)
    torch.save(out, sys.argv[2])


if __name__ == "__main__":
    main()
