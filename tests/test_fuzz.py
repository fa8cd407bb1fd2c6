"""Fuzz-style robustness of everything the harness reads from a user: sweep mappings, sweep
files and the data files of every task. Valid inputs are mutated at random (keys dropped,
types swapped, unicode, huge, negative, NaN and nested values inserted, text truncated,
bytes flipped) and each result must be either accepted as valid or refused with the
harness's own error (SweepError; DataFormatError / DataNotFoundError naming the file),
never a TypeError, KeyError, ... or a crash, and never by running what a file asks for.

Seeded and deterministic: every case draws from its own ``random.Random(<kind>-<number>)``,
and a failure names the case, so it can be replayed alone."""
from __future__ import annotations

import bz2
import copy
import csv
import datetime
import gzip
import io
import json
import math
import pickle
import random
import re
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import scipy.io
import yaml
from helpers_text import write_rt_corpus

from benchmark.sweeps.cells import MAX_SEED, Sweep, SweepError, load_sweep, parse_sweep
from benchmark.api.registry import METHODS, TASKS
from benchmark.api.task import DataFormatError, DataNotFoundError
from tasks.cwru.matfile import read_drive_end
from tasks.text.glue_formats import read_glue_tsv
from tasks.text.rotten_tomatoes import read_corpus
from tasks.vision.cifar_format import read_cifar_batch, write_cifar_batch
from tasks.vision.idx import read_idx, write_idx

SWEEP_DICT_CASES = 300
SWEEP_TEXT_CASES = 160
DATA_CASES_PER_FORMAT = 24  # random corruptions per data format, on top of the fixed ones

#: valid sweeps (with check_data=False) that the mutations start from
BASE_SWEEPS: list[dict[str, Any]] = [
    {"name": "fuzz", "profile": "smoke", "seeds": [0], "ratios": [0.5], "tasks": ["fashion-mnist"],
     "methods": ["random"]},
    {"name": "fuzz-rich", "description": "every kind of field", "profile": "smoke", "budget": "steps",
     "seeds": [0, 1, 2], "ratios": [0.0, 0.3, 0.9],
     "tasks": ["fashion-mnist", {"name": "cifar10", "options": {"epochs": 1, "milestones": [0.5]},
                                 "data_dir": "/nonexistent/cifar"}],
     "methods": ["random", {"name": "el2n", "options": {"proxy_runs": 1, "mode": "offset", "offset": 0.1}},
                 {"name": "magnitude", "ratios": [0.5, 0.8]},
                 {"name": "random", "label": "random-dynamic", "options": {"dynamic": True}}]},
    {"name": "fuzz-cwru", "profile": "smoke", "seeds": [3], "ratios": [0.7],
     "tasks": [{"name": "cwru-sim", "options": {"load": 1, "classes": 4, "window": 512, "seconds": 5,
                                                "model_options": {"width": 8, "hidden": 16}}}],
     "methods": [{"name": "ted", "options": {"stages": 2}}, {"name": "emp", "options": {"beta": 0.5}},
                 {"name": "seven", "options": {"variant": "pre", "pre_batches": 4}}]},
]

#: characters YAML, TOML, CSV and TSV treat specially, and unicode that trips naive code
TRICKY_CHARS = list(":-[]{}&*!|>'\"%@`#,?=\t\n\r\\ ") + [
    "\x00", "\x07", "\x1b", "\x7f", "\x85", "\xa0", "\u2028", "\u2029", "\ufeff", "\u202e", "\u0301", "é", "ß",
    "漢", "ﬁ", "²", "١", "🙂", "\U0010fffd",
]


def random_text(rng: random.Random, length: int) -> str:
    pool = "abcdefghijklmnopqrstuvwxyz0123456789_"
    return "".join(rng.choice(TRICKY_CHARS) if rng.random() < 0.3 else rng.choice(pool) for _ in range(length))


def nested(depth: int, mapping: bool) -> Any:
    value: Any = 0.5
    for level in range(depth):
        value = {f"k{level}": value} if mapping else [value]
    return value


def random_value(rng: random.Random) -> Any:
    """A value of a random kind: scalars at the edges, unicode, huge, nested, odd YAML types."""
    choices: list[Callable[[], Any]] = [
        lambda: None, lambda: True, lambda: False, lambda: 0, lambda: -1, lambda: -(10**30), lambda: 2**64,
        lambda: 10**400, lambda: 0.5, lambda: 1.0, lambda: -0.0, lambda: 1e308, lambda: 5e-324,
        lambda: math.nan, lambda: math.inf, lambda: -math.inf,
        lambda: "", lambda: " ", lambda: random_text(rng, rng.randint(1, 12)), lambda: "x" * 100_000,
        lambda: rng.choice(["random", "el2n", "magnitude", "none", "fashion-mnist", "cifar10", "smoke", "cpu",
                            "paper", "steps", "epochs", "full", "hardest"]),
        list, dict, lambda: [0.5, 0.5], lambda: [rng.random() for _ in range(3)],
        lambda: [random_value(rng)], lambda: {"name": random_value(rng)},
        lambda: {random_text(rng, 4): random_value(rng)},
        lambda: nested(rng.randint(2, 40), mapping=rng.random() < 0.5),
        lambda: list(range(rng.choice([2, 50, 3000]))),
        lambda: datetime.date(2024, 2, 29), lambda: b"\x00\xffbytes", lambda: {1, 2}, lambda: (0.5,),
        lambda: complex(1, 2), lambda: object(),
    ]
    return rng.choice(choices)()


def random_key(rng: random.Random) -> Any:
    return rng.choice([
        "name", "profile", "budget", "seeds", "ratios", "tasks", "methods", "description", "options", "label",
        "data_dir", "ratio", "seed", "epochs", "proxy_runs", "mode", "dynamic", "model_options", "", "NAME",
        random_text(rng, 6), 3, None, 1.5, True, (1, 2),
    ])


def slots(tree: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every value below ``tree``; a container met again (a cycle, or an
    alias bomb's shared halves) is not walked twice."""
    found, stack, seen = [], [tree], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in list(items):
            found.append((node, key))
            stack.append(value)
    return found


def retyped(rng: random.Random, value: Any) -> Any:
    """The same content in another type: list <-> mapping / tuple / string, number <-> string."""
    if isinstance(value, list):
        return rng.choice([{str(i): v for i, v in enumerate(value)}, tuple(value), ",".join(map(str, value))])
    if isinstance(value, dict):
        return rng.choice([list(value.items()), list(value), list(value.values())])
    if isinstance(value, str):
        return rng.choice([[value], {"name": value}, value.encode(), len(value), value.upper()])
    if isinstance(value, (int, float)):
        return rng.choice([str(value), [value], float(value) if isinstance(value, int) else int(value or 0)])
    return str(value)


def alias_bomb(levels: int) -> list:
    """A billion-laughs value: 2**levels leaves, each level one object referenced twice."""
    value: list = [0.5]
    for _ in range(levels):
        value = [value, value]
    return value


def mutate(rng: random.Random, data: dict) -> tuple[Any, list[str]]:
    """Apply one to three random mutations; return the result and what was done."""
    done: list[str] = []
    for _ in range(rng.randint(1, 3)):
        places = slots(data)
        op = rng.choices(["drop", "replace", "retype", "insert", "duplicate", "cycle", "bomb", "root"],
                         weights=[6, 10, 5, 5, 2, 1, 1, 1])[0]
        if op == "root":
            data = random_value(rng)
        elif op == "insert" or not places:
            targets = [data] + [c[k] for c, k in places if isinstance(c[k], (dict, list))]
            target = rng.choice(targets) if isinstance(data, (dict, list)) else None
            if isinstance(target, dict):
                key = random_key(rng)
                target[key] = random_value(rng)
                op = f"insert {key!r}"
            elif isinstance(target, list):
                target.insert(rng.randint(0, len(target)), random_value(rng))
        else:
            container, key = rng.choice(places)
            if op == "drop":
                del container[key]
            elif op == "replace":
                container[key] = random_value(rng)
            elif op == "retype":
                container[key] = retyped(rng, container[key])
            elif op == "duplicate" and isinstance(container, list):
                container.append(copy.deepcopy(container[key]))
            elif op == "cycle":
                container[key] = container  # what a YAML alias to its own anchor gives
            elif op == "bomb":
                container[key] = alias_bomb(rng.choice([18, 40]))
            op = f"{op} {key!r}"
        done.append(op)
        if not isinstance(data, dict):
            break
    return data, done


def check_valid(sweep: Sweep) -> None:
    """What a sweep that passed validation must be."""
    assert isinstance(sweep.name, str) and sweep.name.strip()
    assert sweep.seeds and all(type(s) is int and 0 <= s < MAX_SEED for s in sweep.seeds)
    assert len(set(sweep.seeds)) == len(sweep.seeds)
    for ratios in [sweep.ratios] + [m.ratios for m in sweep.methods if m.ratios is not None]:
        assert ratios and all(type(r) is float and 0 <= r < 1 for r in ratios), ratios
        assert len(set(ratios)) == len(ratios)
    assert sweep.tasks and all(t.name in TASKS for t in sweep.tasks)
    assert sweep.methods and all(m.name in METHODS and isinstance(m.label, str) and m.label for m in sweep.methods)
    assert all(t.data_dir is None or isinstance(t.data_dir, str) for t in sweep.tasks)
    cells = sweep.cells()
    assert len(set(cells)) == len(cells) == len({c.id for c in cells})  # hashable, distinct
    for cell in cells:  # plain, finite JSON: what the id is computed from and MLflow logs
        json.dumps(cell.content(), sort_keys=True, allow_nan=False)


def outcome_of_sweep(parse: Callable[[], Sweep], source: str) -> str:
    try:
        sweep = parse()
    except SweepError as error:
        assert error.problems and all(isinstance(p, str) and p.strip() for p in error.problems), error.problems
        assert source in str(error)
        return "refused"
    check_valid(sweep)
    return "accepted"


def run_cases(kind: str, count: int, case: Callable[[random.Random, int, list[str]], str]) -> dict[str, int]:
    """Run ``count`` cases, each with its own seeded generator; collect every failure with the
    case number and what the case noted it did, then fail once listing them."""
    outcomes: dict[str, int] = {}
    failures = []
    for number in range(count):
        rng = random.Random(f"{kind}-{number}")
        notes: list[str] = []
        try:
            outcome = case(rng, number, notes)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        except Exception as error:  # noqa: BLE001 - every escape is a finding, reported below
            failures.append(f"{kind} case {number} ({', '.join(notes)}): {type(error).__name__}: {str(error)[:300]}")
    assert not failures, f"{len(failures)} of {count} cases failed:\n" + "\n".join(failures[:25])
    return outcomes


# --- sweep mappings --------------------------------------------------------------------------------


def test_base_sweeps_are_valid():
    for base in BASE_SWEEPS:
        check_valid(parse_sweep(copy.deepcopy(base), check_data=False))


def test_fuzzed_sweep_mappings_are_accepted_or_refused_with_a_sweep_error():
    def case(rng: random.Random, number: int, notes: list[str]) -> str:
        data, done = mutate(rng, copy.deepcopy(rng.choice(BASE_SWEEPS)))
        notes.extend(done)
        return outcome_of_sweep(lambda: parse_sweep(data, source="<fuzz>", check_data=False), "<fuzz>")

    outcomes = run_cases("sweep-dict", SWEEP_DICT_CASES, case)
    # both paths must be exercised: mutations that keep a sweep valid and ones that break it
    assert outcomes.get("accepted", 0) >= 10 and outcomes.get("refused", 0) >= SWEEP_DICT_CASES // 2, outcomes


# --- sweep files -----------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # an ASCII JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def sweep_texts() -> list[tuple[str, str]]:
    """(suffix, text) of every base sweep, as YAML and as TOML."""
    texts = []
    for base in BASE_SWEEPS:
        texts.append((".yaml", yaml.safe_dump(base, sort_keys=False)))
        texts.append((".toml", "".join(f"{k} = {toml_value(v)}\n" for k, v in base.items())))
    return texts


def mutate_text(rng: random.Random, text: str) -> tuple[str | bytes, str]:
    lines = text.split("\n")
    at = rng.randrange(len(lines))
    op = rng.choice(["truncate", "drop-line", "repeat-line", "swap-lines", "insert", "replace-char", "indent",
                     "dedent", "bytes", "invalid-utf8", "crlf", "bom"])
    if op == "truncate":
        return text[: rng.randrange(len(text))], op
    if op == "drop-line":
        del lines[at]
    elif op == "repeat-line":
        lines.insert(at, lines[at])
    elif op == "swap-lines" and at + 1 < len(lines):
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    elif op == "indent":
        lines[at] = rng.choice(["  ", "\t", " "]) + lines[at]
    elif op == "dedent":
        lines[at] = lines[at].lstrip()
    elif op in ("insert", "replace-char"):
        pos = rng.randrange(len(text))
        new = random_text(rng, rng.randint(1, 4))
        return text[:pos] + new + text[pos + (op == "replace-char"):], f"{op} {new!r} at {pos}"
    elif op == "bytes":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 400))), op
    elif op == "invalid-utf8":
        raw = text.encode()
        pos = rng.randrange(len(raw))
        return raw[:pos] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]) + raw[pos:], f"{op} at {pos}"
    elif op == "crlf":
        return text.replace("\n", "\r\n"), op
    elif op == "bom":
        return "\ufeff" + text, op
    return "\n".join(lines), f"{op} line {at + 1}"


def test_fuzzed_sweep_files_are_accepted_or_refused_naming_the_file(tmp_path):
    texts = sweep_texts()

    def case(rng: random.Random, number: int, notes: list[str]) -> str:
        suffix, text = rng.choice(texts)
        content: str | bytes = text
        notes.append(suffix)
        for _ in range(rng.randint(1, 2)):
            content, op = mutate_text(rng, content if isinstance(content, str) else content.decode("latin-1"))
            notes.append(op)
        path = tmp_path / f"case-{number}{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8", "surrogatepass"))
        return outcome_of_sweep(lambda: load_sweep(path, check_data=False), str(path))

    outcomes = run_cases("sweep-text", SWEEP_TEXT_CASES, case)
    assert outcomes.get("accepted", 0) >= 5 and outcomes.get("refused", 0) >= SWEEP_TEXT_CASES // 2, outcomes


BASE_YAML = "profile: smoke\nseeds: [0]\nratios: [0.5]\ntasks: [fashion-mnist]\nmethods: [random]\n"


@pytest.mark.parametrize("text, fragment", [
    ("", "top level must be a mapping"),
    ("# only a comment\n", "top level must be a mapping"),
    ("~\n", "top level must be a mapping"),
    ("[fashion-mnist, random]\n", "top level must be a mapping"),
    ("42\n", "top level must be a mapping"),
    ("tasks: " + "[" * 5000 + "\n", "cannot parse"),
    ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60)), "nested deeper"),
    (BASE_YAML + "name: x\0y\n", "line 6"),
    (BASE_YAML + "name: [unclosed\nother: 1\n", "line 7"),
    (BASE_YAML.replace("seeds: [0]", "seeds: &s [0, *s]"), "contains itself"),
    (BASE_YAML + "description: &a0 [x, x]\n" + "".join(
        f"x{i}: &a{i + 1} [*a{i}, *a{i}, *a{i}, *a{i}, *a{i}, *a{i}, *a{i}, *a{i}, *a{i}, *a{i}]\n" for i in range(8))
     + "extra: *a8\n", "more than 100000 values"),
    (BASE_YAML + "name: 2024-02-29\n", "'name'"),
    (BASE_YAML + "description: !!binary aGVsbG8=\n", "'description'"),
    (BASE_YAML.replace("methods: [random]", "methods: [{name: random, options: {dynamic: !!set {a}}}]"),
     "'dynamic'"),
    (BASE_YAML.replace("ratios: [0.5]", "ratios: [.nan, .inf]"), "ratio nan"),
])
def test_malformed_sweep_files_give_a_sweep_error_naming_the_problem(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SweepError) as info:
        load_sweep(path, check_data=False)
    assert str(path) in str(info.value)
    assert any(fragment in p for p in info.value.problems), info.value.problems


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.call [[touch, '{marker}']]",
    "!!python/object/new:subprocess.Popen [[touch, '{marker}']]",
    "!!python/name:os.system",
    "!!python/module:os",
])
def test_code_tags_in_sweep_files_are_refused_and_never_run(tmp_path, tag):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(BASE_YAML + f"name: {tag.format(marker=marker)}\n")
    with pytest.raises(SweepError, match="cannot parse"):
        load_sweep(path, check_data=False)
    assert not marker.exists(), "the sweep file's payload ran"


# --- data files --------------------------------------------------------------------------------------


def corruptions(rng: random.Random, good: bytes) -> list[tuple[str, bytes]]:
    """Damaged versions of ``good``: fixed kinds, then DATA_CASES_PER_FORMAT random ones."""
    cases = [("empty", b""), ("one byte", good[:1]), ("last byte missing", good[:-1]),
             ("zeroed", bytes(len(good))), ("wrong magic", b"\xde\xad\xbe\xef" + good[4:]),
             ("garbage appended", good + b"\x00garbage\xff"), ("text", b"this is not a data file\n" * 8)]
    for _ in range(DATA_CASES_PER_FORMAT):
        kind = rng.choice(["truncated", "bit flip", "byte run", "random bytes"])
        pos = rng.randrange(len(good))
        if kind == "truncated":
            cases.append((f"truncated at {pos}", good[:pos]))
        elif kind == "bit flip":
            flipped = bytearray(good)
            flipped[pos] ^= 1 << rng.randrange(8)
            cases.append((f"bit flip at {pos}", bytes(flipped)))
        elif kind == "byte run":
            run = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            cases.append((f"bytes {run.hex()} at {pos}", good[:pos] + run + good[pos + len(run):]))
        else:
            cases.append(("random bytes", bytes(rng.randrange(256) for _ in range(rng.randint(0, len(good))))))
    return cases


def reads_or_refuses(read: Callable[[Path], Any], path: Path, what: str, failures: list[str]) -> str:
    """Read ``path``: success, or a DataFormatError naming the file; anything else is a failure."""
    try:
        read(path)
        return "read"
    except DataFormatError as error:
        if str(path) not in str(error):
            failures.append(f"{what}: the DataFormatError does not name the file: {error}")
        return "refused"
    except Exception as error:  # noqa: BLE001 - the finding
        failures.append(f"{what}: {type(error).__name__}: {str(error)[:300]}")
        return "failed"


def fuzz_file(kind: str, good: bytes, name: str, read: Callable[[Path], Any], tmp_path: Path,
              extra: list[tuple[str, bytes]] = ()) -> dict[str, int]:
    """The good file reads; every corruption of it reads or is refused naming the file; a missing
    file is a DataNotFoundError naming it."""
    folder = tmp_path / kind
    folder.mkdir()
    path = folder / name
    path.write_bytes(good)
    read(path)
    failures: list[str] = []
    outcomes: dict[str, int] = {}
    for label, content in corruptions(random.Random(kind), good) + list(extra):
        path.write_bytes(content)
        outcome = reads_or_refuses(read, path, f"{kind} {label}", failures)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    path.unlink()
    with pytest.raises(DataNotFoundError, match=re.escape(str(path))):
        read(path)
    assert not failures, "\n".join(failures)
    assert outcomes.get("refused", 0) >= 7, outcomes  # at least the fixed kinds are caught
    return outcomes


def idx_bytes(shape: tuple[int, ...], data: bytes, type_code: int = 0x08) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}i", *shape) + data


def test_fuzzed_fashion_mnist_idx_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "good.gz", images)
    good_gz = (tmp_path / "good.gz").read_bytes()
    raw = gzip.decompress(good_gz)
    rng = random.Random("idx-raw")
    # the IDX parser itself behind a valid gzip stream: damaged headers, odd shapes and types
    extra = [(f"gzipped {label}", gzip.compress(content)) for label, content in corruptions(rng, raw)[:20]]
    extra += [
        ("negative dimensions", gzip.compress(idx_bytes((-2, -3, 5), bytes(30)))),
        ("zero and negative dimensions", gzip.compress(idx_bytes((0, -5), b""))),
        ("overflowing dimensions", gzip.compress(idx_bytes((2**31 - 1,) * 3, bytes(8)))),
        ("255 dimensions", gzip.compress(bytes([0, 0, 8, 255]) + bytes(100))),
        ("unknown type code", gzip.compress(idx_bytes((2,), bytes(2), type_code=0x07))),
        ("not gzipped", raw),
    ]
    fuzz_file("fashion-mnist", good_gz, "train-images-idx3-ubyte.gz", read_idx, tmp_path, extra)


class _Payload:
    """Unpickling this calls ``function(*args)``."""

    def __init__(self, function: Callable, *args: Any):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def global_call(module: str, name: str, arg: str) -> bytes:
    """A protocol-0 pickle calling ``module.name(arg)`` (no need to import it to write it)."""
    return f"c{module}\n{name}\n(V{arg}\ntR.".encode()


def deep_labels_pickle(image: np.ndarray, depth: int) -> bytes:
    """A batch whose labels are lists nested ``depth`` deep, written opcode by opcode (pickling
    such a value would exhaust the writer's own recursion): EMPTY_LIST x depth, APPEND x depth-1."""
    def short_bytes(b: bytes) -> bytes:
        return b"C" + bytes([len(b)]) + b

    array = pickle.dumps(image, protocol=3)[2:-1]  # without the PROTO header and STOP
    return (b"\x80\x03}(" + short_bytes(b"data") + array + short_bytes(b"labels")
            + b"]" * depth + b"a" * (depth - 1) + b"u.")


def test_fuzzed_cifar_batches(tmp_path):
    rng = np.random.default_rng(1)
    write_cifar_batch(tmp_path / "good", rng.integers(0, 256, (4, 3072), dtype=np.uint8), [0, 3, 9, 1])
    good = (tmp_path / "good").read_bytes()
    image = np.zeros((1, 3072), np.uint8)

    def dumped(batch: Any) -> bytes:
        return pickle.dumps(batch, protocol=3)  # protocol 3 keeps bytes keys as bytes

    extra = [
        ("top level a list", dumped([image, [0]])),
        ("no labels", dumped({b"data": image})),
        ("labels too large for int64", dumped({b"data": image, b"labels": [2**70]})),
        ("labels a mapping", dumped({b"data": image, b"labels": {1: 2}})),
        ("labels a string", dumped({b"data": image, b"labels": b"\x00"})),
        ("labels nested", dumped({b"data": image, b"labels": [[0]]})),
        ("label out of range", dumped({b"data": image, b"labels": [10]})),
        ("negative label", dumped({b"data": image, b"labels": [-1]})),
        ("data a list", dumped({b"data": [[0] * 3072], b"labels": [0]})),
        ("data float", dumped({b"data": image.astype(np.float32), b"labels": [0]})),
        ("data 3-d", dumped({b"data": image.reshape(1, 3, 1024), b"labels": [0]})),
        ("data object array", dumped({b"data": np.array([None], dtype=object), b"labels": [0]})),
        ("labels a fraction", dumped({b"data": image, b"labels": [1.5]})),
        ("labels booleans", dumped({b"data": image, b"labels": [True]})),
        ("labels nested 5000 deep", deep_labels_pickle(image, 5000)),
    ]
    fuzz_file("cifar", good, "data_batch_1", lambda p: read_cifar_batch(p, num_classes=10), tmp_path, extra)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_cifar_pickle_calling_os_system_is_refused_and_not_run(tmp_path, protocol):
    import os

    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    payload = _Payload(os.system, f"touch {marker}")
    path.write_bytes(pickle.dumps({"data": payload, "labels": [0]}, protocol=protocol))
    with pytest.raises(DataFormatError, match="refused to unpickle the global"):
        read_cifar_batch(path)
    assert not marker.exists(), "the malicious pickle's payload ran"


@pytest.mark.parametrize("module, name", [
    ("os", "system"), ("posix", "system"), ("nt", "system"), ("subprocess", "getoutput"),
    ("builtins", "eval"), ("builtins", "exec"), ("__builtin__", "eval"), ("builtins", "getattr"),
    ("builtins", "__import__"), ("numpy", "load"), ("numpy.core.multiarray", "scalar"), ("_codecs", "encode"),
    ("pickle", "loads"), ("shutil", "rmtree"),
])
def test_cifar_pickle_naming_any_other_global_is_refused(tmp_path, module, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "test_batch"
    arg = f"touch {marker}" if name != "eval" else f"open({str(marker)!r}, 'w')"
    path.write_bytes(global_call(module, name, arg))
    with pytest.raises(DataFormatError) as error:
        read_cifar_batch(path)
    assert str(path) in str(error.value) and f"{module}.{name}" in str(error.value)
    assert not marker.exists()


def test_fuzzed_cwru_mat_files(tmp_path):
    signal = np.random.default_rng(2).normal(size=(3000, 1))
    scipy.io.savemat(str(tmp_path / "good.mat"), {"X105_DE_time": signal, "X105_FE_time": signal, "X105RPM": [[1797]]})

    def mat(**arrays: Any) -> bytes:
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, arrays)
        return buffer.getvalue()

    extra = [
        ("no drive-end key", mat(X105_FE_time=signal)),
        ("text", mat(X105_DE_time="not a signal")),
        ("cell array", mat(X105_DE_time=np.array([[1.0], "x"], dtype=object))),
        ("struct", mat(X105_DE_time={"a": signal})),
        ("complex", mat(X105_DE_time=signal + 1j)),
        ("NaN", mat(X105_DE_time=np.full((10, 1), np.nan))),
        ("empty", mat(X105_DE_time=np.zeros((0, 1)))),
        ("matrix", mat(X105_DE_time=np.ones((10, 10)))),
        ("booleans", mat(X105_DE_time=np.ones((10, 1), dtype=bool))),
        ("sparse", mat(X105_DE_time=scipy.sparse.csc_matrix(np.eye(3)))),
        ("two unnumbered drive ends", mat(X001_DE_time=signal, X002_DE_time=signal)),
        ("MATLAB v7.3 (HDF5)", b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(12) + b"\x89HDF" * 20),
    ]
    fuzz_file("cwru", (tmp_path / "good.mat").read_bytes(), "105.mat", read_drive_end, tmp_path, extra)


@pytest.mark.parametrize("stem", ["²", "abc", "-1", "٣"])
def test_cwru_mat_file_with_an_odd_name(tmp_path, stem):
    path = tmp_path / f"{stem}.mat"
    scipy.io.savemat(str(path), {"X105_DE_time": np.ones((8, 1))})
    assert read_drive_end(path).shape == (8,)  # the single drive-end key, whatever the name


def tsv_file(rows: list[list[str]]) -> bytes:
    return "".join("\t".join(row) + "\n" for row in rows).encode()


@pytest.mark.parametrize("task", ["sst2", "stsb", "cola"])
def test_fuzzed_glue_tsv_files(tmp_path, task):
    rows = {
        "sst2": [["sentence", "label"], ["a fine film ", "1"], ['"quoted" bad', "0"]],
        "stsb": [["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
                  "score"], ["0", "g", "f", "2012", "1", "s", "s", "a man plays", "a man sings", "2.5"]],
        "cola": [["gj04", "1", "", "The sailors rode the breeze."], ["gj04", "0", "*", "The more we study."]],
    }[task]
    good = tsv_file(rows)
    header, body = rows[0], rows[-1]
    extra = [
        ("label spelled out", tsv_file(rows[:-1] + [body[:-1] + ["positive"]])),
        ("label nan", tsv_file(rows[:-1] + [body[:-1] + ["nan"]])),
        ("label inf", tsv_file(rows[:-1] + [body[:-1] + ["1e999"]])),
        ("label empty", tsv_file(rows[:-1] + [body[:-1] + [""]])),
        ("extra field", tsv_file(rows + [body + ["x"]])),
        ("missing field", tsv_file(rows + [body[:-1]])),
        ("header only", tsv_file([header])),
        ("blank lines only", b"\n\n\r\n"),
        ("NUL in a sentence", tsv_file(rows[:-1] + [[c.replace("a", "\x00") for c in body]])),
        ("latin-1", good.replace(b"a", "\xe9".encode("latin-1"), 1)),
        ("UTF-16", good.decode().encode("utf-16")),
        ("BOM mid-file", good + "\ufeff".encode() + tsv_file([body])),
    ]
    fuzz_file(f"glue-{task}", good, "train.tsv", lambda p: read_glue_tsv(task, p), tmp_path, extra)


def test_fuzzed_rotten_tomatoes_corpus(tmp_path):
    good = write_rt_corpus(tmp_path / "good", n_fresh=4, n_rotten=3, n_plot=2).read_bytes()
    text = bz2.decompress(good)

    def csv_bz2(rows: list[list[str]]) -> bytes:
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        return bz2.compress(out.getvalue().encode())

    rng = random.Random("rt-raw")
    extra = [(f"compressed {label}", bz2.compress(content)) for label, content in corruptions(rng, text)[:20]]
    extra += [
        ("header only", csv_bz2([["category", "text", "movie_name", "has_plot_and_reviews"]])),
        ("plot rows only", csv_bz2([["category", "text"], ["plot", "a synopsis"]])),
        ("short row", csv_bz2([["category", "text", "movie_name"], ["fresh"]])),
        ("unbalanced quote", bz2.compress(b'category,text\nfresh,"never closed\nrotten,x\n')),
        ("duplicate columns", csv_bz2([["category", "text", "text"], ["fresh", "a", "b"]])),
        ("not compressed", text),
        ("empty stream", bz2.compress(b"")),
    ]
    fuzz_file("rt", good, "rotten_tomatoes_corpus_full.csv.bz2", read_corpus, tmp_path, extra)
