"""Instruction records to token tensors, with the loss on response tokens only.

Prompt and response. With a chat template (SmolLM2-Instruct has one), the prompt is the
template applied to the user turn with the generation prompt, and the response is what the
template adds for the assistant turn (the answer and its end-of-turn tokens). Without one,
the prompt is the Alpaca template and the response is the answer followed by the
tokenizer's end-of-sequence token. Prompt and response are tokenised separately and
concatenated, so the boundary between them is exact.

Tensors. ``x`` is ``[n, 2, max_length]`` int32 (token ids, attention mask; right padding).
``y`` is ``[n, max_length]`` int64, already shifted for next-token prediction: ``y[i, t]``
is the token that position t must predict (``ids[t + 1]``), and ``IGNORE_INDEX`` (-100)
wherever that token is a prompt token or padding (see :mod:`benchmark.api.sequence`).

Truncation. A record longer than ``max_length`` loses the start of its prompt first (the
part farthest from the answer; at most three quarters of ``max_length`` go to the
response), then the end of its response; every record keeps at least one prompt token and
one response token. The number of records cut is reported.
"""
from __future__ import annotations

import hashlib
import json
import sys

import torch

from benchmark.api.sequence import IGNORE_INDEX

from .records import InstructionRecord

ALPACA_PROMPT = ("Below is an instruction that describes a task{context}. Write a response that appropriately "
                 "completes the request.\n\n### Instruction:\n{instruction}\n\n{input}### Response:\n")
VERSION = 1


def prompt_and_response(record: InstructionRecord, tokenizer) -> tuple[str, str]:
    if getattr(tokenizer, "chat_template", None):
        user = [{"role": "user", "content": record.user_text}]
        prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": record.output}], tokenize=False)
        if not full.startswith(prompt):
            raise ValueError("the tokenizer's chat template renders the generation prompt differently from the "
                             "start of a whole conversation; the response tokens cannot be separated")
        return prompt, full[len(prompt):]
    context = ", paired with an input that provides further context" if record.input else ""
    given = f"### Input:\n{record.input}\n\n" if record.input else ""
    prompt = ALPACA_PROMPT.format(context=context, instruction=record.instruction, input=given)
    return prompt, record.output + (tokenizer.eos_token or "")


def token_ids(record: InstructionRecord, tokenizer) -> tuple[list[int], list[int]]:
    prompt, response = prompt_and_response(record, tokenizer)
    # a template's text carries its own special tokens; a plain prompt takes the tokenizer's (a BOS)
    templated = bool(getattr(tokenizer, "chat_template", None))
    prompt_ids = tokenizer(prompt, add_special_tokens=not templated)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return prompt_ids, response_ids


def fit(prompt_ids: list[int], response_ids: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Cut a record to ``max_length`` tokens (see the module docstring)."""
    if len(prompt_ids) + len(response_ids) <= max_length:
        return prompt_ids, response_ids
    prompt_floor = min(len(prompt_ids), max_length - (3 * max_length) // 4)  # at least 1 for max_length >= 2
    response_ids = response_ids[: max_length - prompt_floor]
    return prompt_ids[len(prompt_ids) + len(response_ids) - max_length:], response_ids


def encode_records(records: list[InstructionRecord], tokenizer, max_length: int) -> dict[str, torch.Tensor]:
    """``{"x": [n, 2, L] int32, "y": [n, L] int64}`` (see the module docstring)."""
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 (a prompt and a response token), got {max_length}")
    x = torch.zeros(len(records), 2, max_length, dtype=torch.int32)
    y = torch.full((len(records), max_length), IGNORE_INDEX, dtype=torch.long)
    cut = 0
    for i, record in enumerate(records):
        prompt_ids, response_ids = token_ids(record, tokenizer)
        if not prompt_ids or not response_ids:
            raise ValueError(f"record {i} tokenises to an empty prompt or response: {record}")
        fitted = fit(prompt_ids, response_ids, max_length)
        cut += fitted != (prompt_ids, response_ids)
        ids = fitted[0] + fitted[1]
        x[i, 0, : len(ids)] = torch.tensor(ids, dtype=torch.int32)
        x[i, 1, : len(ids)] = 1
        first = len(fitted[0])  # position of the first response token
        y[i, first - 1 : len(ids) - 1] = torch.tensor(ids[first:], dtype=torch.long)
    if cut:
        print(f"  {cut} of {len(records)} records were longer than {max_length} tokens and were cut",
              file=sys.stderr, flush=True)
    return {"x": x, "y": y}


def records_key(records: list[InstructionRecord], tokenizer, max_length: int) -> str:
    from tasks.text.encoders import tokenizer_identity

    digest = hashlib.sha256()
    digest.update(json.dumps({"v": VERSION, "tok": tokenizer_identity(tokenizer), "max": max_length,
                              "template": getattr(tokenizer, "chat_template", None) or ""},
                             sort_keys=True).encode())
    for record in records:
        digest.update(json.dumps([record.instruction, record.input, record.output]).encode())
    return digest.hexdigest()[:20]


def encode_cached(label: str, records: list[InstructionRecord], tokenizer, max_length: int):
    from tasks.text.tokenized import cached, check_tensors

    shapes = {"x": ((len(records), 2, max_length), torch.int32), "y": ((len(records), max_length), torch.long)}
    return cached(label, records_key(records, tokenizer, max_length),
                  lambda: encode_records(records, tokenizer, max_length),
                  f"{len(records)} instruction records, max length {max_length}",
                  check=lambda value: check_tensors(value, shapes))
