"""Image models in plain torch. Each exposes ``features(x)`` and ``head`` (see benchmark.api.task)."""
from __future__ import annotations

import torch
from torch import nn


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class SmallCNN(nn.Module):
    """Two conv blocks, a hidden linear layer and a linear head: the cpu-profile model.
    At width 16 on 28x28 inputs it has ~0.2M weights and costs ~1.2M MACs per image."""

    memory_format = torch.contiguous_format  # set by build_image_model

    def __init__(self, in_channels: int, num_classes: int, image_size: int = 28, width: int = 16, hidden: int = 128):
        super().__init__()
        side = image_size // 4
        self.body = nn.Sequential(
            _conv_bn(in_channels, width),
            nn.MaxPool2d(2),
            _conv_bn(width, 2 * width),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * side * side, hidden),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.contiguous(memory_format=self.memory_format))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """The CIFAR ResNet-18: 3x3 stem with stride 1 and no max-pool, four stages of two
    basic blocks (64-128-256-512 channels), global average pool, linear head."""

    memory_format = torch.contiguous_format  # set by build_image_model

    def __init__(self, in_channels: int, num_classes: int, image_size: int = 32, width: int = 64):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = [_conv_bn(in_channels, widths[0])]
        c_in = widths[0]
        for stage, c_out in enumerate(widths):
            for block in range(2):
                layers.append(BasicBlock(c_in, c_out, stride=2 if stage > 0 and block == 0 else 1))
                c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.contiguous(memory_format=self.memory_format))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS = {"small-cnn": SmallCNN, "resnet18": ResNet18}
#: the memory format each model trains fastest in, measured (scripts/bench_speed.py): NHWC
#: ("channels_last") on the CPU, where NCHW max-pooling and convolutions are slower
MEMORY_FORMATS = {"small-cnn": torch.channels_last, "resnet18": torch.channels_last}


def build_image_model(name: str, in_channels: int, num_classes: int, image_size: int, **options) -> nn.Module:
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown image model {name!r}; choose one of {sorted(MODELS)}") from None
    model = factory(in_channels, num_classes, image_size=image_size, **options)
    return in_memory_format(model, MEMORY_FORMATS.get(name, torch.contiguous_format))


def in_memory_format(model: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """``model`` with its 4-D weights, and the inputs it is given, in ``memory_format``. The
    numbers are the same either way (flattening and masks go by logical index)."""
    model.memory_format = memory_format
    return model.to(memory_format=memory_format)
