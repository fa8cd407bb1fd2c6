"""The GLUE tasks as the hub data set ``nyu-mll/glue`` holds them (one config per task).

Columns are the hub's: ``sentence`` (SST-2, CoLA), ``sentence1/2`` (MRPC, STS-B, RTE),
``question1/2`` (QQP), ``question/sentence`` (QNLI), ``premise/hypothesis`` (MNLI), ``label``
and ``idx``. The hub's ``train`` split is GLUE's train file, its ``validation`` split
(MNLI: ``validation_matched``) GLUE's dev file; its ``test`` splits carry no labels (-1).

Labels are class ids in the hub's order, which for MNLI (entailment, neutral, contradiction)
differs from the classic files' (contradiction, entailment, neutral; see
:mod:`.glue_formats`). They are mapped by name onto the class ids of the TSV reader, so both
sources give the same examples with the same labels. STS-B labels are floats in [0, 5].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from benchmark.api.task import DataFormatError
from tasks.hub import HubDataset, class_names, require_columns

from .glue_formats import STS_RANGE, TextExamples, glue_format

GLUE_HUB_ID = "nyu-mll/glue"
UNLABELED = -1


@dataclass(frozen=True)
class GlueHubConfig:
    text_a: str
    text_b: str | None
    label_names: tuple[str, ...]  # the hub's ClassLabel names, in id order; empty for STS-B
    dev_split: str = "validation"


NLI2 = ("entailment", "not_entailment")
GLUE_HUB_CONFIGS = {
    "sst2": GlueHubConfig("sentence", None, ("negative", "positive")),
    "cola": GlueHubConfig("sentence", None, ("unacceptable", "acceptable")),
    "mrpc": GlueHubConfig("sentence1", "sentence2", ("not_equivalent", "equivalent")),
    "qqp": GlueHubConfig("question1", "question2", ("not_duplicate", "duplicate")),
    "stsb": GlueHubConfig("sentence1", "sentence2", ()),
    "mnli": GlueHubConfig("premise", "hypothesis", ("entailment", "neutral", "contradiction"),
                          dev_split="validation_matched"),
    "qnli": GlueHubConfig("question", "sentence", NLI2),
    "rte": GlueHubConfig("sentence1", "sentence2", NLI2),
}


def hub_split(task: str, split: str) -> str:
    """The hub split holding GLUE's ``train`` or ``dev`` file of ``task``."""
    return GLUE_HUB_CONFIGS[task].dev_split if split == "dev" else "train"


def hub_label_ids(task: str, source: HubDataset, dataset) -> dict[int, int]:
    """Hub class id -> the TSV reader's class id of ``task``, by label name."""
    fmt, config = glue_format(task), GLUE_HUB_CONFIGS[task]
    declared = class_names(dataset, "label")
    if declared is not None and tuple(declared) != config.label_names:
        raise DataFormatError(f"{source.describe()}, split {dataset.split}: label names {declared}, expected "
                              f"{list(config.label_names)} (the order nyu-mll/glue uses)")
    return {hub_id: fmt.label_names.index(name) for hub_id, name in enumerate(config.label_names)}


def read_glue_hub(task: str, source: HubDataset, dataset) -> TextExamples:
    """The examples of one loaded hub split of ``task``, in the split's order."""
    config, fmt = GLUE_HUB_CONFIGS[task], glue_format(task)
    columns = [config.text_a] + ([config.text_b] if config.text_b else []) + ["label"]
    require_columns(source, dataset, columns)
    data = dataset.select_columns(columns).to_dict()
    where = f"{source.describe()}, split {dataset.split}"
    labels = data["label"]
    if fmt.is_regression:
        low, high = STS_RANGE
        for row, score in enumerate(labels):
            if score is None or not (math.isfinite(score) and low <= score <= high):
                raise DataFormatError(f"{where}, row {row}: the STS-B score {score!r} is outside "
                                      f"[{low:g}, {high:g}]" + (" (an unlabeled row: the hub's test split has "
                                                                 "no labels)" if score == UNLABELED else ""))
        labels = [float(s) for s in labels]
    else:
        ids = hub_label_ids(task, source, dataset)
        for row, value in enumerate(labels):
            if value not in ids:
                hint = (" (an unlabeled row: the hub's test split has no labels; GLUE's dev split, the hub's "
                        f"'{config.dev_split}', is the benchmark's test split)") if value == UNLABELED else ""
                raise DataFormatError(f"{where}, row {row}: label {value!r} is not one of {sorted(ids)}{hint}")
        labels = [ids[v] for v in labels]
    for column in columns[:-1]:
        bad = next((row for row, text in enumerate(data[column]) if not isinstance(text, str)), None)
        if bad is not None:
            raise DataFormatError(f"{where}, row {bad}: column {column!r} holds {data[column][bad]!r}, not text")
    return TextExamples(data[config.text_a], data[config.text_b] if config.text_b else None, labels)
