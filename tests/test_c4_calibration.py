"""C4 as a perplexity task's calibration source (``calibration: c4``), read through the hub
loader from a copy in ``allenai/c4``'s exact layout (the card's ``en`` config over
``en/c4-train.*.json.gz``, gzipped JSON lines with ``text``, ``timestamp``, ``url``): only the
reference's shard is read, the windows are the ones the Wanda repository's ``get_c4`` rule
draws (computed here independently from the raw file), and offline without a copy the one
message names the data set and the fix."""
from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.api.registry import get_task
from benchmark.api.task import DataNotFoundError
from helpers_hub import hf_cache  # noqa: F401  (fixture)
from test_perplexity import write_speeches

ROOT = Path(__file__).resolve().parents[1]
SHARD = "en/c4-train.00000-of-01024.json.gz"
CARD = """---
pretty_name: C4
configs:
- config_name: en
  default: true
  data_files:
  - split: train
    path: en/c4-train.*.json.gz
  - split: validation
    path: en/c4-validation.*.json.gz
dataset_info:
- config_name: en
  features:
  - name: text
    dtype: string
  - name: timestamp
    dtype: string
  - name: url
    dtype: string
---

A local copy of allenai/c4 in the hub layout (three small shards).
"""


def c4_document(shard: str, row: int) -> str:
    """Documents of many lengths: every third one shorter than a 64-byte window; the other
    files' documents in words of their own."""
    if row % 3 == 1:
        return f"short {row}."
    words = ("web text crawled in april two thousand nineteen cleaned of boilerplate" if "train.00000" in shard
             else "zebra quokka").split()
    return f"[{shard} {row}] " + " ".join(words[(row + k) % len(words)] for k in range(8 + 5 * row))


def write_c4(hub_root: Path) -> Path:
    repo = hub_root / "allenai" / "c4"
    (repo / "en").mkdir(parents=True)
    (repo / "README.md").write_text(CARD)
    for name, rows in (("c4-train.00000-of-01024", 30), ("c4-train.00001-of-01024", 12),
                       ("c4-validation.00000-of-00008", 6)):
        with gzip.open(repo / "en" / f"{name}.json.gz", "wt", encoding="utf-8") as handle:
            for row in range(rows):
                handle.write(json.dumps({"text": c4_document(name, row), "timestamp": "2019-04-25T12:57:54Z",
                                         "url": f"https://example.org/{name}/{row}"}) + "\n")
    return repo


def reference_windows(shard_file: Path, tokenize, count: int, window: int, seed: int) -> torch.Tensor:
    """The rule of the Wanda repository's ``get_c4``, over the raw shard read with gzip + json."""
    with gzip.open(shard_file, "rt", encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    random.seed(seed)  # the reference seeds the module's generator
    out = []
    for _ in range(count):
        while True:
            i = random.randint(0, len(texts) - 1)
            ids = tokenize(texts[i])
            if len(ids) > window:
                break
        i = random.randint(0, len(ids) - window - 1)
        out.append(ids[i : i + window])
    return torch.tensor(out)


@pytest.fixture
def c4_hub(tmp_path, monkeypatch, hf_cache):  # noqa: F811
    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PRUNEBENCH_HUB_ROOT", str(tmp_path / "hub"))
    return write_c4(tmp_path / "hub")


@pytest.mark.parametrize("seed", [0, 7])
def test_c4_windows_are_the_reference_draw_from_its_one_shard(c4_hub, tmp_path, seed):
    from tasks.sft.models import byte_tokenizer

    speeches = write_speeches(tmp_path / "speeches")
    task = get_task("ppl-speeches")("smoke", data_dir=str(speeches), calibration="c4", c4_seed=seed, train_limit=20)
    task.check_data()
    splits = task.load_splits()
    tokenizer = byte_tokenizer()
    expected = reference_windows(c4_hub / SHARD, lambda text: tokenizer(text)["input_ids"], 20, 64, seed)
    assert torch.equal(splits.train.x[:, 0].long(), expected)
    assert torch.equal(splits.train.y[:, :-1], expected[:, 1:]) and (splits.train.y[:, -1] == -100).all()
    # only the reference's shard: no window holds a word of the other files
    text = tokenizer.decode(splits.train.x[:, 0].flatten().tolist())
    assert "zebra" not in text and "quokka" not in text and "boilerplate" in text
    # validation and test are still the task's own text
    plain = get_task("ppl-speeches")("smoke", data_dir=str(speeches))
    assert torch.equal(splits.test.x, plain.load_splits().test.x)
    tags = task.data_provenance()
    assert tags["data.calibration.hub_id"] == "allenai/c4" and tags["data.calibration.hub_config"] == "en"
    assert tags["data.calibration.hub_files"] == f"train={SHARD}"
    assert tags["data.calibration.hub_split.train"] == "train"
    assert tags["data.calibration"] == (f"c4: 20 windows of 64 tokens drawn as the Wanda repository's get_c4, "
                                        f"seed {seed}")


def test_wikitext2_calibrates_on_c4_and_evaluates_on_its_test_split(c4_hub, tmp_path):
    from helpers_hub import write_hub_repo
    from tasks.sft.models import byte_tokenizer

    lines = [" = Heading = \n", "", " " + " ".join(["the text of wikipedia articles"] * 12) + " \n"] * 4
    write_hub_repo(tmp_path / "hub" / "Salesforce" / "wikitext",
                   {"wikitext-2-raw-v1": {split: {"text": lines} for split in ("train", "validation", "test")}})
    task = get_task("wikitext2")("smoke", calibration="c4", train_limit=5)
    splits = task.load_splits()
    tokenizer = byte_tokenizer()
    expected = reference_windows(c4_hub / SHARD, lambda text: tokenizer(text)["input_ids"], 5, 64, 0)
    assert torch.equal(splits.train.x[:, 0].long(), expected)
    tags = task.data_provenance()
    assert tags["data.hub_id"] == "Salesforce/wikitext" and tags["data.calibration.hub_id"] == "allenai/c4"


def test_calibration_options_are_checked():
    with pytest.raises(ValueError, match=r"task 'ppl-speeches': option calibration must be one of \['train', 'c4'\]"
                                         r".*got 'wiki'"):
        get_task("ppl-speeches")("smoke", calibration="wiki")
    with pytest.raises(ValueError, match=r"option c4_seed must be an integer >= 0, got -1"):
        get_task("ppl-speeches")("smoke", calibration="c4", c4_seed=-1)


def test_a_window_longer_than_every_document_is_refused(c4_hub, tmp_path, monkeypatch):
    import tasks.lm.c4

    monkeypatch.setattr(tasks.lm.c4, "MAX_SHORT_DRAWS", 50)
    task = get_task("ppl-speeches")("smoke", data_dir=str(write_speeches(tmp_path / "s")), calibration="c4",
                                    model_options={"max_length": 4096})
    with pytest.raises(ValueError, match=r"C4 calibration: 50 documents drawn in a row, none longer than the window "
                                         r"of 4096 tokens"):
        task.load_splits()


def test_an_unreachable_hub_names_c4_and_the_fix(hf_cache, monkeypatch, tmp_path):  # noqa: F811
    import tasks.hub

    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "PRUNEBENCH_HUB_ROOT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(tasks.hub, "hub_unreachable", lambda: "huggingface.co:443: No route to host")
    task = get_task("ppl-speeches")("smoke", data_dir=str(write_speeches(tmp_path / "s")), calibration="c4")
    with pytest.raises(DataNotFoundError) as error:
        task.check_data()
    message = str(error.value)
    assert message.startswith(f"the Hugging Face dataset allenai/c4, config en, file(s) {SHARD} is not in the "
                              f"Hugging Face cache ({hf_cache}) and the hub cannot be reached")
    assert "prunebench download ppl-speeches --task-option calibration=c4" in message
    assert "c4_hub_id to a local folder in the hub layout" in message
    # what datasets prepares from that one shard: a folder en-<hash of the files>
    (hf_cache / "allenai___c4" / "en-0123456789abcdef").mkdir(parents=True)
    task.check_data()  # cached: the run will read it


def test_validate_offline_and_uncached_names_c4_before_any_compute(tmp_path):
    from test_hub_data import offline_env

    speeches = write_speeches(tmp_path / "speeches")
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nprofile: smoke\nseeds: [0]\nratios: [0.5]\nmethods: [wanda]\ntasks:\n"
                     f"  - name: ppl-speeches\n    data_dir: {speeches}\n    options: {{calibration: c4}}\n")
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "validate", str(sweep)], cwd=tmp_path,
                         env=offline_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[0] == f"invalid sweep {sweep}: 1 problem(s):" and len(lines) == 2, out.stderr
    assert "the Hugging Face dataset allenai/c4, config en, file(s) en/c4-train.00000-of-01024.json.gz" in lines[1]
    assert "offline mode is on" in lines[1] and "--task-option calibration=c4" in lines[1]
    assert not (tmp_path / "mlflow.db").exists()


def test_download_fetches_the_c4_shard_into_the_cache(tmp_path):
    from test_hub_data import offline_env

    write_c4(tmp_path / "hub")
    env = {**offline_env(tmp_path), "PRUNEBENCH_HUB_ROOT": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "download", "ppl-speeches", "--task-option",
                          "calibration=c4"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ppl-speeches: the Hugging Face dataset allenai/c4, config en, file(s) "
                                 f"{SHARD} (local copy {tmp_path / 'hub' / 'allenai' / 'c4'}) (train 30) is in")
