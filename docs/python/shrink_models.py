"""PyTorch equivalents of shrink's model zoo: load_state_dict(strict=True) accepts shrink's .pth files.

    import torch, shrink_models
    model = shrink_models.mlp(in_features=784, hidden=[300, 100], classes=10)
    model.load_state_dict(torch.load("runs/quickstart/stage-0-train/lenet300.pth"))
"""
import math

import torch
from torch import nn


class Classifier(nn.Module):
    """`features` (conv part) -> flatten -> `classifier` (fully connected part), like torchvision."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def _fc(in_features, hidden, classes, batch_norm=False, dropout=0.0):
    layers = []
    for h in hidden:
        layers.append(nn.Linear(in_features, h))
        if batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = h
    layers.append(nn.Linear(in_features, classes))
    return layers


def mlp(in_features, hidden=(300, 100), classes=10, batch_norm=False, dropout=0.0):
    return Classifier([], _fc(in_features, hidden, classes, batch_norm, dropout))


def lenet5(in_shape=(1, 28, 28), classes=10):
    c, h, w = in_shape
    features = [nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)]
    side_h, side_w = (h // 2 - 4) // 2, (w // 2 - 4) // 2
    return Classifier(features, _fc(16 * side_h * side_w, [120, 84], classes))


def convnet(in_shape=(1, 28, 28), channels=(32, 64), kernel_size=3, fc=(128,), batch_norm=True,
            dropout=0.0, classes=10):
    c, h, w = in_shape
    features = []
    for out in channels:
        features.append(nn.Conv2d(c, out, kernel_size, padding=kernel_size // 2, bias=not batch_norm))
        if batch_norm:
            features.append(nn.BatchNorm2d(out))
        features += [nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = out, h // 2, w // 2
    return Classifier(features, _fc(c * h * w, fc, classes, False, dropout))
