"""A model trained in plain PyTorch for the "bring your own model" tests, and the check of what
shrink hands back.

usage: byom.py make OUT PREFIX   small IDX data in OUT, an mlp trained on it, OUT/m.pth saved
                                 with torch.save(model.state_dict()) under PREFIX ("" for none)
       byom.py eval OUT WEIGHTS  WEIGHTS (a shrink .pth) loaded strictly into the same class, its
                                 accuracy on OUT's test data
       byom.py script OUT HOW    Net (below: no zoo architecture) trained on OUT's data, saved by
                                 torch.jit.HOW (script or trace) as OUT/net.ts
       byom.py eval_net OUT WEIGHTS   as eval, for Net
       byom.py convnet FILE HOW  shrink_models.convnet (1x8x8 in, conv blocks of 4 and 8 channels,
                                 no batch norm, 4 classes) saved by torch.jit.HOW, untrained
       byom.py logits TS PROBE   TS (a TorchScript file) run in PyTorch on PROBE's "input"; the
                                 largest difference from PROBE's "output"
       byom.py pytorch_dynamic OUT WEIGHTS PROBE   PyTorch's own graph-mode dynamic int8 of OUT/net.ts
                                 (per-channel weights): its accuracy, its logits' largest difference
                                 from PROBE's "output", and how its int8 weights and scales differ
                                 from those in WEIGHTS (shrink's int8 .pth of the same net)
All print one JSON line. The mlp is shrink_models.mlp(64, [32, 16], 4): shrink's `arch: mlp,
hidden: [32, 16]` on 1x8x8 samples of 4 classes.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "docs", "python"))
import shrink_models  # noqa: E402
import train_in_pytorch as tp  # noqa: E402

NORM = (0.0, 1.0)


class Net(torch.nn.Module):
    """A depthwise-separable block with a residual add, GELU and LayerNorm: nothing in shrink's zoo."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.depthwise = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pointwise = torch.nn.Conv2d(8, 8, 1)
        self.norm = torch.nn.LayerNorm(8 * 4 * 4)
        self.head = torch.nn.Sequential(torch.nn.Linear(8 * 4 * 4, 32), torch.nn.GELU(), torch.nn.Linear(32, 4))

    def forward(self, x):
        x = torch.nn.functional.gelu(self.stem(x))
        x = x + self.pointwise(torch.nn.functional.gelu(self.depthwise(x)))
        x = torch.nn.functional.max_pool2d(x, 2)
        return self.head(self.norm(torch.flatten(x, 1)))


def model():
    return shrink_models.mlp(in_features=64, hidden=[32, 16], classes=4)


def make_split(g, prototypes, n):
    labels = torch.randint(0, 4, (n,), generator=g)
    images = prototypes[labels] + 90.0 * torch.randn(n, 8, 8, generator=g)
    return images.clamp(0, 255).round().to(torch.uint8), labels.to(torch.uint8)


def make(out, prefix):
    g = torch.Generator().manual_seed(5)
    prototypes = 64 + torch.rand(4, 8, 8, generator=g) * 128
    os.makedirs(out, exist_ok=True)
    for split, n in (("train", 800), ("test", 400)):
        images, labels = make_split(g, prototypes, n)
        tp.write_idx(os.path.join(out, f"{split}-images.idx"), images)
        tp.write_idx(os.path.join(out, f"{split}-labels.idx"), labels)
    torch.manual_seed(3)
    x, y = test_data(out, "train")
    m = tp.train(model(), x, y, epochs=8, batch_size=32, lr=0.02, seed=3)
    torch.save({prefix + k: v for k, v in m.state_dict().items()}, os.path.join(out, "m.pth"))
    tx, ty = test_data(out, "test")
    return {"test_accuracy": tp.accuracy(m, tx, ty)}


def test_data(out, split="test"):
    x = tp.samples(tp.read_idx(os.path.join(out, f"{split}-images.idx")), NORM)
    y = tp.read_idx(os.path.join(out, f"{split}-labels.idx")).long()
    return x, y


def script(out, how):
    torch.manual_seed(4)
    x, y = test_data(out, "train")
    net = tp.train(Net(), x, y, epochs=6, batch_size=32, lr=0.02, seed=4)
    saved = torch.jit.script(net) if how == "script" else torch.jit.trace(net, x[:2])
    saved.save(os.path.join(out, "net.ts"))
    tx, ty = test_data(out, "test")
    return {"test_accuracy": tp.accuracy(net, tx, ty)}


def logits(ts, probe):
    p = torch.load(probe, weights_only=True)
    net = torch.jit.load(ts)
    net.eval()
    with torch.no_grad():
        y = net(p["input"])
    return {"max_abs_diff": (y - p["output"]).abs().max().item()}


def pytorch_dynamic(out, weights, probe):
    net = torch.jit.load(os.path.join(out, "net.ts")).eval()
    q = torch.ao.quantization.quantize_dynamic_jit(net, {"": torch.ao.quantization.per_channel_dynamic_qconfig})
    x, y = test_data(out)
    p = torch.load(probe, weights_only=True)
    with torch.no_grad():
        diff = (q(p["input"]) - p["output"]).abs().max().item()
    # PyTorch's packed weights, matched to shrink's int8 layers by shape.
    state = torch.load(weights, weights_only=True)
    int8 = {v.shape: k[:-len(".weight")] for k, v in state.items() if k.endswith(".weight") and v.dtype == torch.int8}
    compared, value_mismatches, scale_diff = 0, 0, 0.0
    for node in q.graph.findAllNodes("prim::GetAttr"):
        field = node.s("name")
        if "packed_weight" not in field:
            continue
        weight, _ = torch.ops.quantized.linear_unpack(q._c.getattr(field))
        layer = int8[weight.shape]
        compared += 1
        value_mismatches += int((weight.int_repr() != state[layer + ".weight"]).sum())
        scale_diff = max(scale_diff, (weight.q_per_channel_scales().float() - state[layer + ".weight_scale"]).abs().max().item())
    return {"accuracy": tp.accuracy(q, x, y), "max_abs_diff": diff, "layers": compared,
            "int8_mismatches": value_mismatches, "max_scale_diff": scale_diff}


def evaluate(out, weights, make_model=model):
    state = torch.load(weights, weights_only=True)  # PyTorch >= 2.6 default
    # A pruned file carries its masks as `<param>_mask` (docs/formats.md); the class has none.
    masks = {k: v for k, v in state.items() if k.endswith("_mask")}
    for name, mask in masks.items():
        weight = state[name[:-len("_mask")]]
        assert bool((weight[mask == 0] == 0).all()), f"{name}: a masked weight is not zero"
    m = make_model()
    m.load_state_dict({k: v for k, v in state.items() if k not in masks}, strict=True)
    x, y = test_data(out)
    weights = [v for k, v in state.items() if k.endswith("weight") and k not in masks]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    return {"accuracy": tp.accuracy(m, x, y), "weight_sparsity": zeros / total, "masks": len(masks)}


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        print(json.dumps(make(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")))
    elif cmd == "eval":
        print(json.dumps(evaluate(sys.argv[2], sys.argv[3])))
    elif cmd == "script":
        print(json.dumps(script(sys.argv[2], sys.argv[3])))
    elif cmd == "eval_net":
        print(json.dumps(evaluate(sys.argv[2], sys.argv[3], Net)))
    elif cmd == "convnet":
        torch.manual_seed(1)
        net = shrink_models.convnet(in_shape=(1, 8, 8), channels=[4, 8], fc=[16], batch_norm=False, classes=4)
        saved = torch.jit.script(net) if sys.argv[3] == "script" else torch.jit.trace(net, torch.zeros(2, 1, 8, 8))
        saved.save(sys.argv[2])
        print(json.dumps({"file": sys.argv[2]}))
    elif cmd == "pytorch_dynamic":
        print(json.dumps(pytorch_dynamic(sys.argv[2], sys.argv[3], sys.argv[4])))
    elif cmd == "logits":
        print(json.dumps(logits(sys.argv[2], sys.argv[3])))
    else:
        sys.exit(f"unknown command {cmd}")
