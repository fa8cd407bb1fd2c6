"""Perplexity text as the Wanda repository evaluates it: documents joined with ``"\\n\\n"``,
tokenised once, cut into non-overlapping windows of the context length (the tail that does not
fill a window is dropped); each window predicts its tokens 2..T from the ones before."""
from __future__ import annotations

import torch

from benchmark.api.sequence import IGNORE_INDEX

JOIN = "\n\n"


def token_windows(text: str, tokenizer, length: int) -> torch.Tensor:
    """``[n, length]`` token ids of ``text`` tokenised once (special tokens as the tokenizer adds them)."""
    ids = torch.tensor(tokenizer(text)["input_ids"], dtype=torch.int64)
    n = ids.numel() // length
    return ids[: n * length].view(n, length)


def as_split_tensors(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model input ``[n, 2, T]`` (ids, attention mask of ones, as :mod:`tasks.sft.models` takes)
    and aligned targets ``[n, T]``: position t holds token t + 1; the last position counts not."""
    x = torch.stack([windows, torch.ones_like(windows)], dim=1).to(torch.int32)
    y = torch.full_like(windows, IGNORE_INDEX)
    y[:, :-1] = windows[:, 1:]
    return x, y
