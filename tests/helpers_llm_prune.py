"""A tiny decoder-shaped model with the interface the Wanda repository's pruning code drives
(``model.model.layers``, layers called as ``layer(x, attention_mask=..., position_ids=...)``
returning a tuple, ``model.config.use_cache``, ``model.seqlen``, ``model.hf_device_map``),
and its fixed weights and calibration tokens: what ``scripts/wanda_reference_fixture.py`` ran
the reference code on, and what the tests run the harness's methods on."""
from __future__ import annotations

import base64
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

HIDDEN, FFN, VOCAB, LAYERS = 64, 160, 97, 2  # FFN 160: SparseGPT's down layer spans a 128 block and a 32 one
SEQLEN, NSAMPLES = 64, 8  # 512 calibration tokens: more than any layer's 160 inputs, so H is full rank
MODEL_SEED, DATA_SEED = 1234, 99


class Block(nn.Module):
    """A residual MLP and a residual mixing layer, with norms: nonlinear, so that layer k's
    inputs depend on whether layers below it were pruned."""

    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.up = nn.Linear(HIDDEN, FFN)
        self.down = nn.Linear(FFN, HIDDEN)
        self.mix = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, x, attention_mask=None, position_ids=None):
        x = x + self.down(torch.tanh(self.up(self.norm1(x))))
        x = x + self.mix(self.norm2(x))
        return (x,)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList(Block() for _ in range(LAYERS))

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, attention_mask=None, position_ids=None)[0]
        return x


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = Decoder()
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)
        self.config = SimpleNamespace(use_cache=False, hidden_size=HIDDEN)
        self.seqlen = SEQLEN
        self.hf_device_map = {}

    @property
    def head(self) -> nn.Module:
        return self.lm_head

    def forward(self, ids):
        return self.lm_head(self.model(ids))


def tiny_lm() -> TinyLM:
    """The fixed model: weights from ``MODEL_SEED``, scaled so that a few inputs dominate
    (as in trained transformers, where Wanda and magnitude then disagree)."""
    generator = torch.Generator().manual_seed(MODEL_SEED)
    model = TinyLM()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * (0.02 if "bias" in name else 0.3))
        # a few outlier embedding features, as LLMs have: input norms then differ by feature
        model.model.embed_tokens.weight[:, :4] *= 8.0
    return model.eval()


def calibration_ids() -> torch.Tensor:
    """``[NSAMPLES, SEQLEN]`` token ids from ``DATA_SEED``."""
    return torch.randint(0, VOCAB, (NSAMPLES, SEQLEN), generator=torch.Generator().manual_seed(DATA_SEED))


def prunable_layers(model: TinyLM) -> dict[str, nn.Linear]:
    """``{weight name: Linear}`` of every Linear inside the blocks, in module order."""
    return {f"{name}.weight": m for name, m in model.model.named_modules() if isinstance(m, nn.Linear)}


def pack_mask(keep: torch.Tensor) -> str:
    return base64.b64encode(np.packbits(keep.flatten().numpy().astype(np.uint8)).tobytes()).decode()


def unpack_mask(text: str, shape) -> torch.Tensor:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[: int(np.prod(shape))]
    return torch.from_numpy(bits.astype(bool)).reshape(shape)


SAMPLE_INDICES = (0, 1, 7, 63, 64, 100, 511, 1000, 2047, 4095)  # flat entries whose exact values are kept


def relative_output_error(model: TinyLM, dense: TinyLM, ids: torch.Tensor) -> float:
    """||f(x) - f_dense(x)|| / ||f_dense(x)|| of the last hidden states on ``ids``."""
    with torch.no_grad():
        out, ref = model.model(ids), dense.model(ids)
    return float((out - ref).norm() / ref.norm())
