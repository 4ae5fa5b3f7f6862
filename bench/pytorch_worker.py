"""PyTorch's side of bench/bench_vs_pytorch.cpp: answers one JSON request a line on stdin with one
JSON line on stdout, so the C++ benchmark can interleave its own rounds with PyTorch's.

Models are docs/python/shrink_models.py's equivalents of shrink's zoo; the training loop is the
one a PyTorch user writes (shuffle, index, step, loss.item() each step)."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "python"))
try:
    import torch
    import torch.nn.functional as F
    import shrink_models
except Exception as e:  # no torch here: the benchmark skips
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
    sys.exit(0)


def build(spec):
    torch.manual_seed(0)
    arch = spec["arch"]
    if arch == "mlp":
        return shrink_models.mlp(784, hidden=tuple(spec.get("hidden", (300, 100))),
                                 batch_norm=spec.get("batch_norm", False), dropout=spec.get("dropout", 0.0))
    if arch == "convnet":
        return shrink_models.convnet(channels=tuple(spec.get("channels", (32, 64))), fc=tuple(spec.get("fc", (128,))),
                                     batch_norm=spec.get("batch_norm", True), dropout=spec.get("dropout", 0.0))
    if arch == "lenet5":
        return shrink_models.lenet5()
    if arch == "resnet":
        return shrink_models.resnet(widths=tuple(spec.get("widths", (16, 32, 64))), blocks=spec.get("blocks", 3))
    raise ValueError(f"unknown arch {arch}")


models = {}


def model_for(req, mode):
    key = (json.dumps(req["model"], sort_keys=True), mode)
    if key not in models:
        models[key] = build(req["model"])
    return models[key]


def train(req):
    m = model_for(req, "train")
    opt = getattr(m, "_bench_opt", None)
    if opt is None:
        opt = m._bench_opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    n, batch = req["samples"], req["batch"]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    m.train()
    start = time.perf_counter()
    perm = torch.randperm(n)
    total = 0.0
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        opt.zero_grad()
        loss = F.cross_entropy(m(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.item()
    return {"seconds": time.perf_counter() - start}


def infer(req):
    m = model_for(req, "infer")
    m.eval()
    x = torch.randn(req["batch"], 1, 28, 28, generator=torch.Generator().manual_seed(2))
    ms = []
    with torch.inference_mode():
        m(x)
        for _ in range(req["calls"]):
            t = time.perf_counter()
            m(x)
            ms.append((time.perf_counter() - t) * 1e3)
    return {"ms": ms}


def main():
    print(json.dumps({"ready": torch.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            torch.set_num_threads(req.get("threads", 1))
            out = train(req) if req["op"] == "train" else infer(req)
        except Exception as e:
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


main()
