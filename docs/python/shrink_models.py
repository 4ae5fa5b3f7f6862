"""PyTorch equivalents of shrink's model zoo: load_state_dict(strict=True) accepts shrink's .pth files.

    import torch, shrink_models
    model = shrink_models.mlp(in_features=784, hidden=[300, 100], classes=10)
    model.load_state_dict(torch.load("runs/quickstart/stage-0-train/lenet300.pth"))

An int8 file has two Python readings: `dequantize` gives the float model with the int8 weights
(activations stay float), and `simulate_int8` gives what shrink's int8 kernels compute (activations
quantized at the stored scales, integer sums, the same rounding), as a reference for them.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F


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


def _zoo_model(blueprint):
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


def _remove_channels(model, settings):
    """Gives the layers a `prune_channels` transform touched their smaller sizes (the weights come
    from the file): each group's producers and followers keep len(kept) output channels, each
    consumer len(kept) x its group inputs. Files written before residual channels could be pruned
    together name one "producer" and one "consumer" with its "consumer_group"."""

    def replace(path, make):
        parent, _, index = path.rpartition(".")
        stack = model.get_submodule(parent) if parent else model
        stack[int(index)] = make(stack[int(index)])

    def conv(m, c_in, c_out, groups):
        return nn.Conv2d(c_in, c_out, m.kernel_size, m.stride, m.padding, m.dilation, groups, m.bias is not None,
                         m.padding_mode)

    for group in settings["groups"]:
        k = len(group["kept"])
        if "producers" in group:
            producers, consumers = group["producers"], [(c["layer"], c["group"]) for c in group["consumers"]]
        else:
            producers, consumers = [group["producer"]], [(group["consumer"], group["consumer_group"])]

        def outputs(m):
            if isinstance(m, nn.Conv2d):
                depthwise = m.groups > 1
                return conv(m, k if depthwise else m.in_channels, k, k if depthwise else 1)
            if isinstance(m, nn.Linear):
                return nn.Linear(m.in_features, k, m.bias is not None)
            return type(m)(k, m.eps, m.momentum, m.affine, m.track_running_stats)  # BatchNorm

        def inputs(n_in):
            def make(m):
                if isinstance(m, nn.Conv2d):
                    return conv(m, n_in, m.out_channels, 1)
                return nn.Linear(n_in, m.out_features, m.bias is not None)

            return make

        for path in producers + group["followers"]:
            replace(path, outputs)
        for path, per_channel in consumers:
            replace(path, inputs(k * per_channel))


def from_blueprint(blueprint):
    """The float model a shrink file describes: its blueprint is the `model` entry of `<file>.pth.json`.
    Channel-pruned layers get the widths the file's `prune_channels` transforms give them."""
    model = _zoo_model(blueprint)
    for t in blueprint.get("transforms", []):
        if t["kind"] == "prune_channels":
            _remove_channels(model, t["settings"])
    return model


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


class QuantizedActivation:
    """An activation as shrink's int8 kernels hand it on: integers `q` (held exactly in float64) that
    stand for (q - zero_point) * scale, quint8 (0..255)."""

    def __init__(self, q, scale, zero_point):
        self.q, self.scale, self.zero_point = q, scale, zero_point

    def real(self):
        return (self.q - self.zero_point) * self.scale

    def same_grid(self, q):
        return QuantizedActivation(q, self.scale, self.zero_point)


def _requantize(real, scale, zero_point, relu=False):
    """quint8 of float64 values: round half to even (nearbyint), then clamp; a fused ReLU clamps at 0 first."""
    if relu:
        real = real.clamp(min=0)
    return QuantizedActivation((torch.round(real / scale) + zero_point).clamp(0, 255), scale, zero_point)


def _choose_qparams(x):
    """Per-batch quint8 parameters of a dynamic layer's input (PyTorch's ChooseQuantizationParams)."""
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = float(torch.tensor((hi - lo) / 255, dtype=torch.float32)) or 0.1
    zero_point = int(min(255, max(0, round(-lo / scale))))
    return scale, zero_point


class _Int8Layer:
    """One int8 group (Conv2d/Linear with BatchNorm folded in, ReLU fused) of an int8 file."""

    def __init__(self, float_layer, state, prefix, relu, static):
        self.layer, self.relu, self.static = float_layer, relu, static
        self.w = state[prefix + ".weight"].to(torch.float64)
        channels = self.w.shape[0]
        self.w_scale = state[prefix + ".weight_scale"].to(torch.float64).reshape(-1).expand(channels)
        w_zero = state[prefix + ".weight_zero_point"].to(torch.float64).reshape(-1).expand(channels)
        self.w = self.w - w_zero.reshape((-1,) + (1,) * (self.w.dim() - 1))
        self.bias = state[prefix + ".bias"].to(torch.float64)
        if static:
            self.in_q = (state[prefix + ".input_scale"].item(), int(state[prefix + ".input_zero_point"].item()))
            self.out_q = (state[prefix + ".scale"].item(), int(state[prefix + ".zero_point"].item()))

    def _sums(self, x):
        if isinstance(self.layer, nn.Conv2d):
            c = self.layer
            return F.conv2d(x, self.w, None, c.stride, c.padding, c.dilation, c.groups)
        return F.linear(x, self.w)

    def __call__(self, x):
        channel = (1, -1) + (1,) * (self.w.dim() - 2)
        if not self.static:
            real = x.real() if isinstance(x, QuantizedActivation) else x.to(torch.float64)
            x = _requantize(real, *_choose_qparams(real))
            y = self._sums(x.q - x.zero_point) * (x.scale * self.w_scale).reshape(channel) + self.bias.reshape(channel)
            return y.clamp(min=0) if self.relu else y
        if not isinstance(x, QuantizedActivation):  # a float input is quantized at the stored input scale
            x = _requantize(x.to(torch.float64), *self.in_q)
        y = self._sums(x.q - x.zero_point) * (x.scale * self.w_scale).reshape(channel) + self.bias.reshape(channel)
        return _requantize(y, *self.out_q, relu=self.relu)


class Int8Simulation(nn.Module):
    """What shrink's int8 kernels compute for an int8 file, in float64 on the stored integers:
    activations quantized at the stored input scales (an input that is already int8 keeps its own
    grid, as in shrink), integer sums, requantization to each layer's output scale with rounding
    half to even, ReLU/max pooling/flatten on the integers, average pooling and residual adds
    rounded to their output grids. Layers the file keeps float run in float on dequantized input."""

    def __init__(self, model, state, blueprint):
        super().__init__()
        int8 = [t for t in blueprint["transforms"] if t["kind"] == "int8"]
        assert len(int8) == 1, "not an int8 model"
        settings = int8[0]["settings"]
        self.model = dequantize(model, state, blueprint)  # float layers outside the groups, with their weights
        mods = dict(self.model.named_modules())
        static = settings["method"] == "static"
        self.groups, self.skipped = {}, set()
        for layer in settings["layers"]:
            stack, first = layer["stack"], layer["first"]
            prefix = f"{stack}.{first}" if stack else str(first)
            self.groups[prefix] = _Int8Layer(mods[prefix], state, prefix, layer["relu"], static)
            for k in range(1, layer["count"]):
                self.skipped.add(f"{stack}.{first + k}" if stack else str(first + k))
        self.adds = {path: (state[path + ".scale"].item(), int(state[path + ".zero_point"].item()))
                     for path in settings["adds"]}

    def forward(self, x):
        with torch.no_grad():
            y = self._run(self.model, "", x)
        return (y.real() if isinstance(y, QuantizedActivation) else y).to(torch.float32)

    def _run(self, m, path, x):
        if path in self.groups:
            return self.groups[path](x)
        if path in self.skipped or isinstance(m, (nn.Identity, nn.Dropout)):
            return x
        join = (lambda name: f"{path}.{name}" if path else name)
        if isinstance(m, Classifier):
            x = self._run(m.features, join("features"), x)
            x = x.same_grid(torch.flatten(x.q, 1)) if isinstance(x, QuantizedActivation) else torch.flatten(x, 1)
            return self._run(m.classifier, join("classifier"), x)
        if isinstance(m, nn.Sequential):
            for name, child in m.named_children():
                x = self._run(child, join(name), x)
            return x
        if isinstance(m, ResidualBlock):
            a = self._run(m.body, join("body"), x)
            b = self._run(m.shortcut, join("shortcut"), x)
            if join("add") not in self.adds:
                return torch.relu(_real(a) + _real(b))
            return _requantize(_real(a) + _real(b), *self.adds[join("add")], relu=True)
        if isinstance(x, QuantizedActivation):
            if isinstance(m, nn.ReLU):
                return x.same_grid(x.q.clamp(min=x.zero_point))
            if isinstance(m, nn.MaxPool2d):  # monotone: the same on the integers
                return x.same_grid(F.max_pool2d(x.q, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode))
            if isinstance(m, nn.AdaptiveAvgPool2d):  # the mean of the integers, rounded on the same grid
                mean = F.adaptive_avg_pool2d(x.q - x.zero_point, m.output_size)
                return x.same_grid((torch.round(mean) + x.zero_point).clamp(0, 255))
            x = x.real()
        return m(x.to(torch.float32))


def _real(x):
    return x.real() if isinstance(x, QuantizedActivation) else x.to(torch.float64)


def simulate_int8(model, state, blueprint):
    """The reference computation of an int8 shrink file (see Int8Simulation)."""
    return Int8Simulation(model, state, blueprint).eval()
