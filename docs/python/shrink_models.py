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


class ResidualBlock(nn.Module):
    """body (conv3x3-BN-ReLU-conv3x3-BN) + shortcut (identity, or conv1x1-BN when the shape changes), then ReLU."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        shortcut = []
        if stride != 1 or c_in != c_out:
            shortcut = [nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)]
        self.shortcut = nn.Sequential(*shortcut)

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet(in_shape=(1, 28, 28), widths=(16, 32, 64), blocks=3, classes=10):
    c = widths[0]
    features = [nn.Conv2d(in_shape[0], c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for stage, w in enumerate(widths):
        for b in range(blocks):
            features.append(ResidualBlock(c, w, 2 if stage > 0 and b == 0 else 1))
            c = w
    features.append(nn.AdaptiveAvgPool2d(1))
    return Classifier(features, [nn.Linear(c, classes)])


def from_blueprint(blueprint):
    """The float model a shrink file describes: its blueprint is the `model` entry of `<file>.pth.json`."""
    shape, classes = blueprint["input"]["shape"], blueprint["input"]["num_classes"]
    o = blueprint["options"]
    arch = blueprint["arch"]
    if arch == "mlp":
        return mlp(math.prod(shape), o["hidden"], classes, o["batch_norm"], o["dropout"])
    if arch == "lenet5":
        return lenet5(tuple(shape), classes)
    if arch == "convnet":
        return convnet(tuple(shape), o["channels"], o["kernel_size"], o["fc"], o["batch_norm"], o["dropout"], classes)
    if arch == "resnet":
        return resnet(tuple(shape), o["widths"], o["blocks"], classes)
    raise ValueError(f"no PyTorch equivalent here for architecture '{arch}'")


def dequantize(model, state, blueprint):
    """Loads an int8 shrink .pth (`state`, from torch.load) into the float `model` (from_blueprint).

    Each int8 layer stores weight (int8), weight_scale and weight_zero_point (one per output
    channel, or one), a float bias with any BatchNorm already folded in, and its activations'
    scale/zero point. The weight becomes (weight - zero_point) * scale; a folded BatchNorm becomes
    the identity (weight 1, running_var 1 - eps) carrying the bias when the layer itself has none.
    """
    int8 = [t for t in blueprint["transforms"] if t["kind"] == "int8"]
    assert len(int8) == 1, "not an int8 model"
    float_state = model.state_dict()
    mods = dict(model.named_modules())

    def path(stack, index):
        return f"{stack}.{index}" if stack else str(index)

    for layer in int8[0]["settings"]["layers"]:
        p = path(layer["stack"], layer["first"])
        q = state[p + ".weight"].to(torch.float32)
        shape = (-1,) + (1,) * (q.dim() - 1)
        scale = state[p + ".weight_scale"].reshape(shape)
        zero = state[p + ".weight_zero_point"].to(torch.float32).reshape(shape)
        float_state[p + ".weight"] = (q - zero) * scale
        bias = state[p + ".bias"]
        bn_path = path(layer["stack"], layer["first"] + 1)
        bn = mods.get(bn_path)
        has_bn = layer["count"] > 1 and isinstance(bn, nn.modules.batchnorm._BatchNorm)
        if mods[p].bias is not None:
            float_state[p + ".bias"] = bias
            bias = torch.zeros_like(bias)
        if has_bn:
            float_state[bn_path + ".weight"] = torch.ones_like(bias)
            float_state[bn_path + ".bias"] = bias
            float_state[bn_path + ".running_mean"] = torch.zeros_like(bias)
            float_state[bn_path + ".running_var"] = torch.full_like(bias, 1.0 - bn.eps)
    for key, value in state.items():
        if key in float_state and value.dtype.is_floating_point and not key.endswith(("scale", "zero_point")):
            if not any(key.startswith(path(l["stack"], l["first"]) + ".") for l in int8[0]["settings"]["layers"]):
                float_state[key] = value
    model.load_state_dict(float_state, strict=True)
    return model
