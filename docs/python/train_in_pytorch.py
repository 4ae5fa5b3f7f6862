"""Trains a model in plain PyTorch and saves `torch.save(model.state_dict(), OUT)`: the file a
recipe starts from with `models.NAME.init` (recipes/fmnist/lenet300_from_pytorch.yaml).

    /usr/bin/python3 docs/python/train_in_pytorch.py            # LeNet-300-100 on Fashion-MNIST
    shrink run recipes/fmnist/lenet300_from_pytorch.yaml --out runs/lenet300-from-pytorch

The model is `shrink_models.mlp` (the zoo's `arch: mlp` in PyTorch) and the data is read from the
same IDX files, normalised as the dataset manifest says, so shrink measures what PyTorch measured.
`--prefix module.` saves the names as DistributedDataParallel does (the recipe's `init_prefix`).
"""
import argparse
import gzip
import json
import os
import struct
import sys

import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shrink_models  # noqa: E402

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_NORM = (0.2860, 0.3530)  # datasets/fashion-mnist.yaml


def read_idx(path):
    """An IDX file (optionally gzipped) as a tensor of its stored type."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, rank = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, f"{path}: not an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return torch.frombuffer(bytearray(data[4 + 4 * rank:]), dtype=torch.uint8).reshape(dims)


def write_idx(path, tensor):
    """`tensor` (uint8) as an uncompressed IDX file."""
    t = tensor.to(torch.uint8).contiguous()
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, t.dim()))
        f.write(struct.pack(">" + "I" * t.dim(), *t.shape))
        f.write(t.numpy().tobytes())


def samples(images, norm):
    """uint8 images -> float samples with a channel axis, as shrink's loader makes them."""
    x = images.to(torch.float32).unsqueeze(1) / 255.0
    return (x - norm[0]) / norm[1]


def train(model, x, y, epochs, batch_size=128, lr=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=FASHION_MNIST, help="folder with Fashion-MNIST's IDX files")
    ap.add_argument("--out", default="runs/pytorch/lenet300.pth")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--prefix", default="", help="prepended to every name (DDP's 'module.')")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    x = samples(read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz")), FASHION_MNIST_NORM)
    y = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).long()
    tx = samples(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")), FASHION_MNIST_NORM)
    ty = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).long()
    model = train(shrink_models.mlp(in_features=784, hidden=[300, 100], classes=10), x, y, args.epochs,
                  seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save({args.prefix + k: v for k, v in model.state_dict().items()}, args.out)
    print(json.dumps({"file": args.out, "test_accuracy": round(accuracy(model, tx, ty), 4)}))


if __name__ == "__main__":
    main()
