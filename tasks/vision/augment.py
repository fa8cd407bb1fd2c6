"""Batched image augmentation as tensor ops (no torchvision, no per-sample Python loop)."""
from __future__ import annotations

from functools import lru_cache

from benchmark.api.lazy import lazy_import

torch = lazy_import("torch")
F = lazy_import("torch.nn.functional")


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad by ``padding`` (reflect) and crop back to the original size at a random offset per image."""
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=generator.device).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device).to(x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 NCHW -> float, scaled to [0, 1] and standardised per channel."""
    x = x.float().div_(255.0)
    return (x - channel_constant(mean, x.device)) / channel_constant(std, x.device)


@lru_cache(maxsize=64)
def channel_constant(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """``values`` as a ``[1, C, 1, 1]`` tensor on ``device``, built once: a tensor made from
    Python numbers per batch is a blocking host-to-device copy on a GPU."""
    return torch.tensor(values, device=device).view(1, -1, 1, 1)
