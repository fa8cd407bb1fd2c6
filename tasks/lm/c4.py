"""C4 as the calibration source of a perplexity task, drawn as the Wanda repository draws it
(``lib/data.py``, ``get_c4``): from the one training shard ``en/c4-train.00000-of-01024.json.gz``
of the hub data set ``allenai/c4`` (config ``en``), Python's ``random`` seeded once; for each
window a random document is drawn until one tokenises to MORE tokens than the window, then a
random start ``randint(0, len - window - 1)`` in it, and the window is the ``window`` tokens
from there (the tokenizer's special tokens included, as the reference tokenises).

Only that shard is read (about 320 MB compressed, some 356,000 documents), through the project's hub
loader (:mod:`tasks.hub`): the same cache, offline rule, local copies and messages as every hub
data set.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Sequence

import torch

from benchmark.api.task import DataFormatError

C4_ID, C4_CONFIG = "allenai/c4", "en"
C4_SHARD = "en/c4-train.00000-of-01024.json.gz"
#: consecutive documents drawn without one long enough before the draw gives up (a shard of
#: short documents, or a window longer than any of them, would otherwise loop for ever)
MAX_SHORT_DRAWS = 10_000


def c4_source(task: str, hub_id: str = C4_ID, revision: str | None = None):
    """The C4 shard the reference calibrates on, as a :class:`tasks.hub.HubDataset`."""
    from tasks.hub import HubDataset

    return HubDataset(task, hub_id, C4_CONFIG, revision, data_files=(("train", C4_SHARD),),
                      download_command=f"prunebench download {task} --task-option calibration=c4")


def draw_c4_windows(documents: Sequence[str] | Callable[[int], str], count: int, tokenize: Callable[[str], list[int]],
                    window: int, seed: int, size: int | None = None) -> torch.Tensor:
    """``[count, window]`` token ids by the reference's rule. ``documents`` is a sequence of
    texts, or a function of the row (then ``size`` rows); ``tokenize`` gives a text's ids."""
    text_of = documents if callable(documents) else documents.__getitem__
    size = len(documents) if size is None else size
    if size < 1:
        raise DataFormatError("the C4 calibration shard holds no document")
    draw = random.Random(seed)
    windows = []
    for _ in range(count):
        for _short in range(MAX_SHORT_DRAWS):
            ids = tokenize(text_of(draw.randint(0, size - 1)))
            if len(ids) > window:
                break
        else:
            raise DataFormatError(f"C4 calibration: {MAX_SHORT_DRAWS:,} documents drawn in a row, none longer than "
                                  f"the window of {window} tokens; shorten the window (model_options.max_length) "
                                  f"or use calibration: train")
        start = draw.randint(0, len(ids) - window - 1)
        windows.append(ids[start : start + window])
    return torch.tensor(windows, dtype=torch.int64).view(count, window)


def check_calibration_options(task: str, calibration: Any, seed: Any) -> None:
    if calibration not in CALIBRATION_SOURCES:
        raise ValueError(f"task {task!r}: option calibration must be one of {list(CALIBRATION_SOURCES)} (where the "
                         f"calibration windows come from), got {calibration!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"task {task!r}: option c4_seed must be an integer >= 0, got {seed!r}")


#: ``train``: windows of the task's own training text; ``c4``: the reference's C4 draw
CALIBRATION_SOURCES = ("train", "c4")
