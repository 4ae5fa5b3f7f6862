"""A model trained in plain PyTorch for the "bring your own model" tests, and the check of what
shrink hands back.

usage: byom.py make OUT PREFIX   small IDX data in OUT, an mlp trained on it, OUT/m.pth saved
                                 with torch.save(model.state_dict()) under PREFIX ("" for none)
       byom.py eval OUT WEIGHTS  WEIGHTS (a shrink .pth) loaded strictly into the same class, its
                                 accuracy on OUT's test data
Both print one JSON line. The mlp is shrink_models.mlp(64, [32, 16], 4): shrink's `arch: mlp,
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


def evaluate(out, weights):
    state = torch.load(weights)
    # A pruned file carries its masks as `<param>_mask` (docs/formats.md); the class has none.
    masks = {k: v for k, v in state.items() if k.endswith("_mask")}
    for name, mask in masks.items():
        weight = state[name[:-len("_mask")]]
        assert bool((weight[mask == 0] == 0).all()), f"{name}: a masked weight is not zero"
    m = model()
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
    else:
        sys.exit(f"unknown command {cmd}")
