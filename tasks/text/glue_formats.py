"""Readers of the classic GLUE layout ``glue_data/<TASK>/{train,dev}.tsv``.

Each of the eight tasks has its own file names, columns, header rule and label set; they
are spelled out in :data:`GLUE_FORMATS`. Rules shared by every format:

- Files are UTF-8 (a leading byte-order mark, which MRPC's files may carry, is dropped).
- No quote processing: GLUE sentences contain ``"`` characters, so each line is split on
  ``\\t`` as is, and only ``\\n`` ends a line (``str.splitlines`` would also split on
  characters such as U+2028 that can occur inside a sentence). A trailing ``\\r`` is dropped.
- Completely empty lines carry no data and are ignored; all line numbers are 1-based
  positions in the file.
- Columns are selected by their header name; the header must be one of the format's known
  headers (MNLI has two: 12 columns in train, 16 in dev). CoLA has no header line.
- Every row must have as many fields as the header. Only QQP relaxes this: the real QQP
  train file holds a few rows with missing fields (questions broken by stray newlines), and
  GLUE's reference processors skip them. QQP therefore skips rows with *fewer* fields than
  its header and reports their count in :attr:`TextExamples.skipped`; a row with more
  fields, and any bad row of any other format, raises :class:`DataFormatError`.

Class ids: the position of the label's spelling in ``label_values``. For MNLI that is
``contradiction=0, entailment=1, neutral=2``, the order of GLUE's reference processor
(which differs from the Hugging Face ``datasets`` order entailment, neutral, contradiction).

Headline metric (one number per task for the leaderboard): ``matthews`` for CoLA, ``f1``
for MRPC and QQP (their imbalanced classes make accuracy flattering), ``pearson`` for STS-B
and ``accuracy`` for the rest. The GLUE leaderboard itself averages F1 with accuracy and
Pearson with Spearman; all of them are still computed, see ``metrics``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from benchmark.api.task import DataFormatError, DataNotFoundError


@dataclass
class TextExamples:
    """Sentences (or sentence pairs) and their labels: class ids, or floats for STS-B."""

    text_a: list[str]
    text_b: list[str] | None
    labels: list
    skipped: int = 0  # rows left out under the format's skip policy (QQP only)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class GlueFormat:
    """How one GLUE task's files are laid out."""

    name: str
    directory: str
    train_file: str
    dev_file: str
    headers: tuple[tuple[str, ...], ...]  # accepted headers; CoLA's single one names its unnamed columns
    has_header: bool
    text_a: str  # column names
    text_b: str | None
    label: str
    label_values: tuple[str, ...]  # the labels as spelled in the file; position = class id; empty = regression
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    headline: str
    dev_mismatched_file: str | None = None
    skip_short_rows: bool = False

    @property
    def is_regression(self) -> bool:
        return not self.label_values

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.label_values)


BINARY = ("0", "1")
NLI3 = ("contradiction", "entailment", "neutral")
NLI2 = ("entailment", "not_entailment")
MNLI_TRAIN = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label")
MNLI_DEV = MNLI_TRAIN[:-1] + ("label2", "label3", "label4", "label5", "gold_label")

GLUE_FORMATS: dict[str, GlueFormat] = {f.name: f for f in (
    GlueFormat("sst2", "SST-2", "train.tsv", "dev.tsv", (("sentence", "label"),), True,
               "sentence", None, "label", BINARY, ("negative", "positive"), ("accuracy",), "accuracy"),
    GlueFormat("cola", "CoLA", "train.tsv", "dev.tsv",
               (("source", "label", "original_label", "sentence"),), False,
               "sentence", None, "label", BINARY, ("unacceptable", "acceptable"), ("matthews",), "matthews"),
    GlueFormat("mrpc", "MRPC", "train.tsv", "dev.tsv",
               (("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),), True,
               "#1 String", "#2 String", "Quality", BINARY, ("not_equivalent", "equivalent"),
               ("accuracy", "f1"), "f1"),
    GlueFormat("qqp", "QQP", "train.tsv", "dev.tsv",
               (("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),), True,
               "question1", "question2", "is_duplicate", BINARY, ("not_duplicate", "duplicate"),
               ("accuracy", "f1"), "f1", skip_short_rows=True),
    GlueFormat("stsb", "STS-B", "train.tsv", "dev.tsv",
               (("index", "genre", "filename", "year", "old_index", "source1", "source2",
                 "sentence1", "sentence2", "score"),), True,
               "sentence1", "sentence2", "score", (), (), ("pearson", "spearman"), "pearson"),
    GlueFormat("mnli", "MNLI", "train.tsv", "dev_matched.tsv", (MNLI_TRAIN, MNLI_DEV), True,
               "sentence1", "sentence2", "gold_label", NLI3, NLI3, ("accuracy",), "accuracy",
               dev_mismatched_file="dev_mismatched.tsv"),
    GlueFormat("qnli", "QNLI", "train.tsv", "dev.tsv", (("index", "question", "sentence", "label"),), True,
               "question", "sentence", "label", NLI2, NLI2, ("accuracy",), "accuracy"),
    GlueFormat("rte", "RTE", "train.tsv", "dev.tsv", (("index", "sentence1", "sentence2", "label"),), True,
               "sentence1", "sentence2", "label", NLI2, NLI2, ("accuracy",), "accuracy"),
)}

STS_RANGE = (0.0, 5.0)


def glue_format(task: str) -> GlueFormat:
    try:
        return GLUE_FORMATS[task]
    except KeyError:
        raise ValueError(f"unknown GLUE task {task!r}; known: {sorted(GLUE_FORMATS)}") from None


def glue_file(task: str, glue_dir: str | Path, split: str, *, mismatched: bool = False) -> Path:
    """The path of ``split`` ("train" or "dev") of ``task`` under the ``glue_data`` folder
    ``glue_dir``. ``mismatched=True`` picks MNLI's ``dev_mismatched.tsv``. The file need not exist."""
    fmt = glue_format(task)
    if split not in ("train", "dev"):
        raise ValueError(f"unknown GLUE split {split!r}; expected 'train' or 'dev'")
    if mismatched and (split != "dev" or fmt.dev_mismatched_file is None):
        raise ValueError(f"mismatched=True only applies to MNLI's dev split, not {task} {split}")
    name = fmt.train_file if split == "train" else fmt.dev_mismatched_file if mismatched else fmt.dev_file
    return Path(glue_dir) / fmt.directory / name


def layout_hint(fmt: GlueFormat) -> str:
    files = [fmt.train_file, fmt.dev_file] + ([fmt.dev_mismatched_file] if fmt.dev_mismatched_file else [])
    listed = ", ".join(f"glue_data/{fmt.directory}/{name}" for name in files)
    return (f"Expected the classic GLUE layout ({listed}); point the task's data_dir at the glue_data folder, "
            "or leave data_dir out to read nyu-mll/glue from the Hugging Face hub.")


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """The non-empty lines of ``path`` with their 1-based numbers, split on ``\\n`` only."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataFormatError(f"{path}, line {line}: not valid UTF-8 ({error.reason})") from error
    lines = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line[:-1] if line.endswith("\r") else line
        if line:
            lines.append((number, line))
    return lines


def check_header(fmt: GlueFormat, path: Path, lines: list[tuple[int, str]]) -> tuple[str, ...]:
    """The header the file uses (CoLA's implied one when it has none)."""
    if not fmt.has_header:
        return fmt.headers[0]
    number, line = lines[0]
    header = tuple(line.split("\t"))
    if header not in fmt.headers:
        expected = " or ".join(repr("\t".join(h)) for h in fmt.headers)
        raise DataFormatError(f"{path}, line {number}: expected the {fmt.directory} header {expected}, "
                              f"got {line!r}")
    return header


def parse_label(fmt: GlueFormat, value: str, ids: dict[str, int], where: str) -> int | float:
    if not fmt.is_regression:
        if value not in ids:
            raise DataFormatError(f"{where}: unknown label {value!r} in column {fmt.label!r}; "
                                  f"allowed: {', '.join(repr(v) for v in fmt.label_values)}")
        return ids[value]
    try:
        score = float(value)
    except ValueError:
        raise DataFormatError(f"{where}: the {fmt.directory} score {value!r} is not a number") from None
    low, high = STS_RANGE
    if not (math.isfinite(score) and low <= score <= high):
        raise DataFormatError(f"{where}: the {fmt.directory} score {value!r} is outside [{low:g}, {high:g}]")
    return score


def read_glue_tsv(task: str, path: str | Path) -> TextExamples:
    """All examples of one GLUE ``.tsv`` file of ``task``, in file order."""
    fmt, path = glue_format(task), Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"GLUE {fmt.directory} file {path} not found. {layout_hint(fmt)}")
    lines = numbered_lines(path)
    if not lines:
        raise DataFormatError(f"{path}, line 1: the file is empty; expected {fmt.directory} examples")
    header = check_header(fmt, path, lines)
    rows = lines[1:] if fmt.has_header else lines
    a, label = header.index(fmt.text_a), header.index(fmt.label)
    b = header.index(fmt.text_b) if fmt.text_b else None
    ids = {value: i for i, value in enumerate(fmt.label_values)}
    text_a, text_b, labels, skipped = [], [], [], 0
    for number, line in rows:
        fields = line.split("\t")
        if len(fields) != len(header):
            if fmt.skip_short_rows and len(fields) < len(header):
                skipped += 1
                continue
            raise DataFormatError(f"{path}, line {number}: expected {len(header)} tab-separated fields, "
                                  f"got {len(fields)}")
        labels.append(parse_label(fmt, fields[label], ids, f"{path}, line {number}"))
        text_a.append(fields[a])
        if b is not None:
            text_b.append(fields[b])
    if not labels:
        after = lines[-1][0] + 1
        raise DataFormatError(f"{path}, line {after}: no {fmt.directory} examples in the file"
                              + (f" ({skipped} short rows skipped)" if skipped else ""))
    return TextExamples(text_a, text_b if b is not None else None, labels, skipped)
