"""Names that become file names, and labels that become text in a board.

A sweep's name is its MLflow experiment and the stem of its board files
(``results/NAME.md``, ``NAME.html``, ``NAME-plots/``), so it is held to characters that are
safe in a file name on every system: it can never hold a path separator or be ``..``,
and so never points outside the output folder. Method labels are free text, shown in
tables and plots: each renderer escapes them for its format (:func:`markdown_cell`,
:func:`markdown_text` for free text in prose, :func:`mathtext_safe`; HTML through ``html.escape``).
"""
from __future__ import annotations

import re

MAX_NAME_LENGTH = 100  # MLflow allows more; a file name on most systems allows 255 bytes
MAX_LABEL_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def name_problem(name: object, what: str = "name") -> str | None:
    """Why ``name`` cannot be a sweep / experiment name, or None."""
    if not isinstance(name, str) or not name.strip():
        return (f"{what} must be a non-empty string, got {repr(name)[:80]}; "
                "quote it if it looks like a number or a date")
    if len(name) > MAX_NAME_LENGTH:
        return f"{what} is {len(name)} characters long; use at most {MAX_NAME_LENGTH}"
    if not _NAME.fullmatch(name):
        return (f"{what} {name[:80]!r} may hold only letters, digits, '.', '_' and '-', starting with a "
                "letter or digit (it names the board's files, e.g. results/NAME.md); e.g. 'cifar10-cpu'")
    return None


def check_name(name: object, what: str = "name") -> str:
    """``name`` if it is a valid sweep / experiment name, else a ValueError saying why."""
    problem = name_problem(name, what)
    if problem:
        raise ValueError(problem)
    return name  # type: ignore[return-value]


def label_problem(label: object) -> str | None:
    if not isinstance(label, str) or not label.strip():
        return f"'label' must be a non-empty string, got {repr(label)[:80]}"
    if len(label) > MAX_LABEL_LENGTH:
        return f"'label' is {len(label)} characters long; use at most {MAX_LABEL_LENGTH}"
    if any(ch in label for ch in "\r\n\t\0"):
        return "'label' must be one line of text (no newline, tab or NUL)"
    return None


def one_line(text: object) -> str:
    return re.sub(r"[\r\n\t\0]+", " ", str(text))


def markdown_cell(text: object) -> str:
    """``text`` as literal markdown table text: a ``|`` cannot open a column, nor ``<`` a tag
    (``>`` is left as it is: it opens nothing inside a cell, and rankings read ``a > b``)."""
    return one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]~])")


def markdown_text(text: object) -> str:
    """Free text (a run tag: task, data origin, code version, label) as literal markdown anywhere,
    prose or table cell: what :func:`markdown_cell` escapes, and the punctuation that would start
    emphasis, code, a link or an image (``*`` ``_`` `````` ``[`` ``]`` ``~`` ``\\``) backslash-escaped."""
    return markdown_cell(_MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line(text)))


def markdown_code(text: object) -> str:
    """``text`` as one inline code span, whatever backticks it holds (a fence longer than any
    run of them, CommonMark's rule); markup inside a code span is shown, never interpreted."""
    shown = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def mathtext_safe(text: object) -> str:
    """``text`` shown literally by matplotlib: ``$`` would start math mode (and an unbalanced
    or invalid one fails the whole figure), and a label starting with ``_`` is hidden from
    the legend."""
    shown = one_line(text).replace("$", r"\$")
    return f"\u200b{shown}" if shown.startswith("_") else shown
