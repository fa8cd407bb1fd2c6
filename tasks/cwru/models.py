"""1-D signal models in plain torch. Each exposes ``features(x)`` and ``head`` (see benchmark.api.task)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# PyTorch has no channels-last layout for 3-D [N, C, L] tensors. The "rows" layout runs the
# same 1-D network on [N, C, 1, L] in channels-last (NHWC) memory with 2-D kernels. Its
# modules are subclasses of the 1-D ones: the same parameters (shapes, names, initial
# values), the same masks, FLOPs and checkpoints; only the kernels that run differ.


class RowConv1d(nn.Conv1d):
    """A Conv1d whose forward is a 2-D convolution of [N, C, 1, L] inputs with the
    (out, in, 1, k) view of the same weight."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError(f"RowConv1d supports zero padding by a number only, got {self.padding_mode!r}, "
                             f"{self.padding!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                        (1, self.dilation[0]), self.groups)


class RowBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d over [N, C, 1, L] (the arithmetic is per channel whatever the rank)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"RowBatchNorm1d expects [N, C, 1, L] input, got shape {tuple(input.shape)}")


class RowMaxPool1d(nn.MaxPool1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, (1, self.kernel_size), (1, self.stride), (0, self.padding), (1, self.dilation),
                            self.ceil_mode)


class RowAdaptiveAvgPool1d(nn.AdaptiveAvgPool1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, (1, self.output_size))


PLAIN = {"conv": nn.Conv1d, "norm": nn.BatchNorm1d, "max_pool": nn.MaxPool1d, "avg_pool": nn.AdaptiveAvgPool1d}
ROWS = {"conv": RowConv1d, "norm": RowBatchNorm1d, "max_pool": RowMaxPool1d, "avg_pool": RowAdaptiveAvgPool1d}


def _conv_bn_pool(layers: dict, c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        layers["conv"](c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        layers["norm"](c_out),
        nn.ReLU(inplace=True),
        layers["max_pool"](2),
    )


class CNN1d(nn.Module):
    """A wide first kernel (64 taps, stride 8: it sees several cycles of a few-kHz ringing
    and shortens the signal cheaply, as in WDCNN), three 3-tap blocks, a global average
    pool (so any input of at least 128 samples works: a raw window or its FFT magnitude), a
    hidden linear layer and a linear head. At width 16: ~17k parameters.

    ``memory_format=torch.channels_last`` runs it in the rows layout (see above); the
    parameters, their initial values and the function computed are the same."""

    min_length = 128

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16, hidden: int = 64,
                 memory_format: torch.memory_format = torch.contiguous_format):
        super().__init__()
        if memory_format not in (torch.contiguous_format, torch.channels_last):
            raise ValueError(f"CNN1d runs in torch.contiguous_format or torch.channels_last, got {memory_format}")
        self.memory_format = memory_format
        layers = ROWS if memory_format == torch.channels_last else PLAIN
        self.body = nn.Sequential(
            _conv_bn_pool(layers, in_channels, width, 64, stride=8),
            _conv_bn_pool(layers, width, 2 * width, 3),
            _conv_bn_pool(layers, 2 * width, 2 * width, 3),
            _conv_bn_pool(layers, 2 * width, 4 * width, 3),
            layers["avg_pool"](1),
            nn.Flatten(),
            nn.Linear(4 * width, hidden),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.min_length:
            raise ValueError(f"CNN1d needs inputs of at least {self.min_length} samples, got shape {tuple(x.shape)}")
        if self.memory_format == torch.channels_last:
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS = {"cnn1d": CNN1d}
#: the layout each model trains in. Measured on the CPU (scripts/bench_speed.py), the rows layout
#: is no faster for cnn1d (0.95x median, 1.08x fastest on a quiet machine; the weights come out
#: bit-identical, so the same convolution kernels run), so NCL stays: fewer copies, plain modules
MEMORY_FORMATS = {"cnn1d": torch.contiguous_format}


def build_signal_model(name: str, num_classes: int, **options) -> nn.Module:
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown signal model {name!r}; choose one of {sorted(MODELS)}") from None
    options.setdefault("memory_format", MEMORY_FORMATS.get(name, torch.contiguous_format))
    return factory(num_classes, **options)
