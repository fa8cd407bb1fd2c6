"""Pre-trained Hugging Face encoders as harness models.

A model is named in the recipe by an alias below, a local directory, or a Hugging Face
hub name (which needs the hub cache or internet). :class:`EncoderClassifier` wraps an
``AutoModelForSequenceClassification`` so that it takes the harness's one input tensor
and follows the task feature convention: ``model.head`` is the task head (never pruned)
and ``model.features(x)`` is what the head reads.

Input tensor layout, shape ``[batch, 3, length]`` of token ids: channel 0 the input ids,
1 the token-type ids, 2 the attention mask (right padding).
"""
from __future__ import annotations

import torch
from torch import nn

from benchmark.api.task import DataNotFoundError

from .model_names import resolve_model

IDS, TYPES, ATTENTION = 0, 1, 2

def quiet_transformers():
    # the "newly initialised classifier" warning is expected for every fine-tuning run
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    quiet_transformers()
    source = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise DataNotFoundError(f"tokenizer of model {name!r} could not be loaded from {source!r} ({error}); "
                                f"offline, give a local model directory") from error


def tokenizer_identity(tokenizer) -> dict:
    """What makes two tokenizers encode alike, for cache keys."""
    return {"class": type(tokenizer).__name__, "name": str(tokenizer.name_or_path), "vocab": len(tokenizer),
            "lower": bool(getattr(tokenizer, "do_lower_case", False))}


class EncoderClassifier(nn.Module):
    """An ``AutoModelForSequenceClassification`` taking ``[batch, 3, length]`` token tensors."""

    def __init__(self, model: nn.Module, uses_token_types: bool):
        super().__init__()
        self.encoder = model
        self.uses_token_types = uses_token_types
        self._head_name = next((n for n in ("classifier", "score") if isinstance(getattr(model, n, None), nn.Module)),
                               None)
        if self._head_name is None:
            raise ValueError(f"{type(model).__name__} has no 'classifier' or 'score' head; the harness needs one "
                             f"to keep the task head out of pruning")

    @property
    def head(self) -> nn.Module:
        return getattr(self.encoder, self._head_name)

    def _inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = x.long()
        inputs = {"input_ids": x[:, IDS], "attention_mask": x[:, ATTENTION]}
        if self.uses_token_types:
            inputs["token_type_ids"] = x[:, TYPES]
        return inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(**self._inputs(x)).logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's input (for BERT: the pooled [CLS] vector after dropout)."""
        captured = []
        handle = self.head.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        try:
            self.encoder(**self._inputs(x))
        finally:
            handle.remove()
        return captured[0]


def load_encoder_classifier(name: str, num_labels: int) -> EncoderClassifier:
    """The pre-trained encoder with a fresh head of ``num_labels`` outputs (1: regression).
    The head's initialisation draws from torch's global generator, which the trainer seeds."""
    from transformers import AutoModelForSequenceClassification

    quiet_transformers()
    source = resolve_model(name)
    # a checkpoint fine-tuned elsewhere may carry a head of another size: it is replaced anyway
    options = {"num_labels": num_labels, "ignore_mismatched_sizes": True}
    if num_labels == 1:
        options["problem_type"] = "regression"
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, **options)
    except OSError as error:
        raise DataNotFoundError(f"model {name!r} could not be loaded from {source!r} ({error}); "
                                f"offline, give a local model directory") from error
    tokenizer_inputs = load_tokenizer(name).model_input_names
    return EncoderClassifier(model, uses_token_types="token_type_ids" in tokenizer_inputs)
