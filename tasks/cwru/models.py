"""1-D signal models in plain torch. Each exposes ``features(x)`` and ``head`` (see benchmark.task)."""
from __future__ import annotations

import torch
from torch import nn


def _conv_bn_pool(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool1d(2),
    )


class CNN1d(nn.Module):
    """A wide first kernel (64 taps, stride 8: it sees several cycles of a few-kHz ringing
    and shortens the signal cheaply, as in WDCNN), three 3-tap blocks, a global average
    pool (so any input of at least 128 samples works: a raw window or its FFT magnitude), a
    hidden linear layer and a linear head. At width 16: ~17k parameters."""

    min_length = 128

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn_pool(in_channels, width, 64, stride=8),
            _conv_bn_pool(width, 2 * width, 3),
            _conv_bn_pool(2 * width, 2 * width, 3),
            _conv_bn_pool(2 * width, 4 * width, 3),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(4 * width, hidden),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.min_length:
            raise ValueError(f"CNN1d needs inputs of at least {self.min_length} samples, got shape {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS = {"cnn1d": CNN1d}


def build_signal_model(name: str, num_classes: int, **options) -> nn.Module:
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown signal model {name!r}; choose one of {sorted(MODELS)}") from None
    return factory(num_classes, **options)
