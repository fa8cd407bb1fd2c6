"""Alpaca-style instruction records ``{instruction, input, output}`` from JSON or JSONL.

- ``.json``: one top-level array of objects (the layout of Stanford Alpaca's
  ``alpaca_data.json``); ``.jsonl``: one object per line, blank lines ignored. Either may
  be gzip-compressed (``.json.gz``, ``.jsonl.gz``), as HumanEval ships.
- ``instruction`` and ``output`` are required, non-empty strings; ``input`` is optional
  (a string, empty when absent). Other keys are kept out of the record and ignored.
- Every problem (a JSON syntax error, a record that is not an object, a missing or
  mistyped field, nesting too deep for the JSON parser) raises :class:`DataFormatError` naming the file and the 1-based line
  where the record starts.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from benchmark.api.task import DataFormatError, DataNotFoundError

REQUIRED = ("instruction", "output")
SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
TOO_DEEP = ("a record is nested too deeply to parse (thousands of levels of arrays or objects); an instruction "
            "record is one object of strings")


@dataclass(frozen=True)
class InstructionRecord:
    instruction: str
    input: str
    output: str

    @property
    def user_text(self) -> str:
        """What the user says: the instruction, then the input after a blank line when there is one."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


def read_records(path: Path) -> list[InstructionRecord]:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found: instruction data is a JSON array or JSONL file of "
                                f"{{instruction, input, output}} records")
    name = path.name.lower()
    if not name.endswith(SUFFIXES):
        raise DataFormatError(f"{path}: unknown suffix; instruction data must end in one of {SUFFIXES}")
    text = read_text(path)
    located = _jsonl_objects(path, text) if ".jsonl" in name else _json_array_objects(path, text)
    records = [record_of(value, f"{path}, line {line}") for line, value in located]
    if not records:
        raise DataFormatError(f"{path}: no records")
    return records


def read_text(path: Path) -> str:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.lower().endswith(".gz") else path.read_bytes()
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataFormatError(f"{path}: not a readable gzip file ({error})") from error
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataFormatError(f"{path}, line {line}: not UTF-8 ({error.reason})") from error


def _jsonl_objects(path: Path, text: str):
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}, line {number}: invalid JSON ({error.msg}, column {error.colno})") from error
        except RecursionError:
            raise DataFormatError(f"{path}, line {number}: {TOO_DEEP}") from None


def _json_array_objects(path: Path, text: str):
    """The elements of a top-level JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()

    def fail(position: int, what: str):
        raise DataFormatError(f"{path}, line {text.count(chr(10), 0, position) + 1}: {what}")

    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        fail(position, "a .json instruction file must hold one array of records "
                       "(use .jsonl for one record per line)")
    position = _skip_space(text, position + 1)
    if text.startswith("]", position):
        return
    while True:
        start = position
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}, line {error.lineno}: invalid JSON ({error.msg}, column {error.colno})") \
                from error
        except RecursionError:
            fail(start, TOO_DEEP)
        yield text.count("\n", 0, start) + 1, value
        position = _skip_space(text, position)
        if text.startswith(",", position):
            position = _skip_space(text, position + 1)
        elif text.startswith("]", position):
            break
        else:
            fail(position, "expected ',' or ']' after a record")
    if _skip_space(text, position + 1) != len(text):
        fail(position + 1, "unexpected content after the array")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def record_of(value, where: str) -> InstructionRecord:
    """The record ``value`` (a JSON object); ``where`` names it in an error."""
    if not isinstance(value, dict):
        raise DataFormatError(f"{where}: a record must be an object with instruction, input and output; "
                              f"got {type(value).__name__}")
    for key in REQUIRED:
        if key not in value:
            raise DataFormatError(f"{where}: record has no {key!r} (keys: {sorted(value)})")
    fields = {}
    for key in ("instruction", "input", "output"):
        field = value.get(key, "")
        if field is None and key == "input":
            field = ""
        if not isinstance(field, str):
            raise DataFormatError(f"{where}: {key!r} must be a string, got {type(field).__name__}")
        fields[key] = field
    for key in REQUIRED:
        if not fields[key].strip():
            raise DataFormatError(f"{where}: {key!r} is empty")
    return InstructionRecord(**fields)
