"""Tokenise a split once per (texts, tokenizer, max length) and keep it in a cache.

The stored tensor is ``[n, 3, max_length]`` int32 (ids, token types, attention mask; see
:mod:`.encoders`), padded to ``max_length``; batches are trimmed to their longest row when
they are used (:func:`trim_padding`), so padding costs memory, not compute. The cache key
hashes the texts themselves, so an edited data file is never served stale, and every
entry is validated when it is read (type and shape; see :mod:`benchmark.api.cache_files`).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from benchmark.api.cache_files import check_tensor, load_entry, require, save_entry

from .encoders import ATTENTION, tokenizer_identity

VERSION = 1
BATCH = 2048  # texts per tokenizer call: bounds the memory of the Python-side lists


def cache_root() -> Path:
    return Path(os.environ.get("PRUNEBENCH_CACHE", ".prunebench-cache")) / "tokenized"


def cache_key(text_a: list[str], text_b: list[str] | None, tokenizer, max_length: int) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"v": VERSION, "tok": tokenizer_identity(tokenizer), "max": max_length,
                              "pairs": text_b is not None}, sort_keys=True).encode())
    for texts in (text_a, text_b or []):
        for text in texts:
            digest.update(text.encode())
            digest.update(b"\0")
    return digest.hexdigest()[:20]


def encode(text_a: list[str], text_b: list[str] | None, tokenizer, max_length: int) -> torch.Tensor:
    """Token tensor ``[n, 3, max_length]``; pairs are truncated longest-first, as BERT's GLUE runs do."""
    out = torch.zeros(len(text_a), 3, max_length, dtype=torch.int32)
    for first in range(0, len(text_a), BATCH):
        a = text_a[first : first + BATCH]
        b = text_b[first : first + BATCH] if text_b is not None else None
        enc = tokenizer(a, b, truncation=True, max_length=max_length, padding="max_length",
                        return_token_type_ids=True, return_attention_mask=True)
        for channel, key in enumerate(("input_ids", "token_type_ids", "attention_mask")):
            out[first : first + len(a), channel] = torch.tensor(enc[key], dtype=torch.int32)
    return out


def encode_cached(label: str, text_a: list[str], text_b: list[str] | None, tokenizer, max_length: int,
                  root: Path | None = None) -> torch.Tensor:
    """:func:`encode`, read from the cache when these texts were encoded alike before."""
    return cached(label, cache_key(text_a, text_b, tokenizer, max_length),
                  lambda: encode(text_a, text_b, tokenizer, max_length),
                  f"{len(text_a)} texts, max length {max_length}", root,
                  check=lambda value: check_tensor(value, "tokens", (len(text_a), 3, max_length), (torch.int32,)))


def check_tensors(value, shapes: dict[str, tuple[tuple[int | None, ...], torch.dtype]]) -> None:
    """``value`` is a dict holding exactly the tensors ``shapes`` names, each of its shape and dtype."""
    require(isinstance(value, dict), f"holds a {type(value).__name__}, not a dict of tensors")
    require(set(value) == set(shapes), f"holds {sorted(value, key=str)}, expected {sorted(shapes)}")
    for name, (shape, dtype) in shapes.items():
        check_tensor(value[name], name, shape, (dtype,))


def cached(label: str, key: str, build, what: str, root: Path | None = None, check=None):
    """``build()``'s tensors, saved under ``label`` and ``key`` the first time and read back
    after if they pass ``check`` (which raises on a bad entry: it is deleted and built again);
    ``what`` describes the work in the progress message."""
    path = (root or cache_root()) / f"{label}-{key}.pt"
    value = load_entry(path, check or (lambda value: None), "token cache")
    if value is not None:
        return value
    print(f"tokenising {label}: {what} (cached for later runs) ...", file=sys.stderr, flush=True)
    value = build()
    save_entry(path, value, "token cache")  # atomic; best effort: a full disk costs a rebuild later, not this run
    return value


def trim_padding(tokens: torch.Tensor, attention_channel: int = ATTENTION) -> torch.Tensor:
    """Cut a batch to its longest row (right padding), keeping at least one position."""
    longest = int(tokens[:, attention_channel].sum(dim=1).max().item()) if len(tokens) else 1
    return tokens[:, :, : max(longest, 1)]
