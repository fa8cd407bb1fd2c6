"""GLUE, Rotten Tomatoes and Alpaca from the Hugging Face hub through the real ``datasets`` code path,
on parquet files written in the hub's repository layout; the classic GLUE TSV files written
with the same rows give the same examples; provenance tags; unlabeled rows refused; the
offline-and-uncached message of ``prunebench validate``, before any compute."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.api.registry import get_task
from benchmark.api.task import DataFormatError, DataNotFoundError
from helpers_hub import hf_cache, write_hub_repo  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent

# the hub's columns and ClassLabel names per config, spelled out as nyu-mll/glue has them
HUB = {
    "sst2": (("sentence",), ("negative", "positive")),
    "cola": (("sentence",), ("unacceptable", "acceptable")),
    "mrpc": (("sentence1", "sentence2"), ("not_equivalent", "equivalent")),
    "qqp": (("question1", "question2"), ("not_duplicate", "duplicate")),
    "stsb": (("sentence1", "sentence2"), ()),
    "mnli": (("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
    "qnli": (("question", "sentence"), ("entailment", "not_entailment")),
    "rte": (("sentence1", "sentence2"), ("entailment", "not_entailment")),
}
# the classic files: directory, header (None: CoLA has none), text columns, label column, how a
# label is spelled there (hub label name -> TSV spelling), dev file
TSV = {
    "sst2": ("SST-2", ("sentence", "label"), ("sentence",), "label", {"negative": "0", "positive": "1"}),
    "cola": ("CoLA", None, ("sentence",), "label", {"unacceptable": "0", "acceptable": "1"}),
    "mrpc": ("MRPC", ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"), ("#1 String", "#2 String"),
             "Quality", {"not_equivalent": "0", "equivalent": "1"}),
    "qqp": ("QQP", ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"), ("question1", "question2"),
            "is_duplicate", {"not_duplicate": "0", "duplicate": "1"}),
    "stsb": ("STS-B", ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                       "sentence2", "score"), ("sentence1", "sentence2"), "score", None),
    "mnli": ("MNLI", None, ("sentence1", "sentence2"), "gold_label",
             {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"}),
    "qnli": ("QNLI", ("index", "question", "sentence", "label"), ("question", "sentence"), "label",
             {"entailment": "entailment", "not_entailment": "not_entailment"}),
    "rte": ("RTE", ("index", "sentence1", "sentence2", "label"), ("sentence1", "sentence2"), "label",
            {"entailment": "entailment", "not_entailment": "not_entailment"}),
}
MNLI_TRAIN = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label")
MNLI_DEV = MNLI_TRAIN[:-1] + ("label2", "label3", "label4", "label5", "gold_label")
# the class ids of the TSV reader (glue_formats): the position of the spelling among its labels
TSV_CLASS_ORDER = {"sst2": ("0", "1"), "cola": ("0", "1"), "mrpc": ("0", "1"), "qqp": ("0", "1"),
                   "mnli": ("contradiction", "entailment", "neutral"),
                   "qnli": ("entailment", "not_entailment"), "rte": ("entailment", "not_entailment")}
COUNTS = {"train": 20, "dev": 7, "test": 3}


def rows(config: str, split: str) -> dict[str, list]:
    """Deterministic rows; texts with quotes and non-ASCII, as GLUE's have."""
    texts, names = HUB[config]
    n = COUNTS[split]
    columns = {c: [f'{config} {split} {c} #{i}: "quoted" café {i * 7 % 5}' for i in range(n)] for c in texts}
    if split == "test":
        columns["label"] = [-1.0 if not names else -1] * n
    elif names:
        columns["label"] = [(3 * i + len(split)) % len(names) for i in range(n)]
    else:
        columns["label"] = [round((i * 0.37) % 5.0, 3) for i in range(n)]
    columns["idx"] = list(range(n))
    return columns


def hub_features(config: str) -> dict:
    import datasets

    texts, names = HUB[config]
    label = datasets.ClassLabel(names=list(names)) if names else datasets.Value("float32")
    return {**{c: datasets.Value("string") for c in texts}, "label": label, "idx": datasets.Value("int32")}


def write_glue_hub(root: Path) -> Path:
    dev = {"mnli": "validation_matched"}
    configs = {c: {"train": rows(c, "train"), dev.get(c, "validation"): rows(c, "dev"), "test": rows(c, "test")}
               for c in HUB}
    return write_hub_repo(root / "nyu-mll" / "glue", configs, {c: hub_features(c) for c in HUB})


def write_glue_tsv(glue_dir: Path, config: str) -> None:
    directory, header, texts, label, spelling = TSV[config]
    names = HUB[config][1]
    for split, file_name in (("train", "train.tsv"), ("dev", "dev_matched.tsv" if config == "mnli" else "dev.tsv")):
        columns = rows(config, split)
        head = (MNLI_TRAIN if split == "train" else MNLI_DEV) if config == "mnli" else header
        order = head or ("source", "label", "original_label", "sentence")
        lines = ["\t".join(head)] if head else []
        for i in range(COUNTS[split]):
            value = {t: columns[h][i] for t, h in zip(texts, HUB[config][0])}
            value[label] = spelling[names[columns["label"][i]]] if spelling else repr(columns["label"][i])
            lines.append("\t".join(value.get(c, "x") for c in order))
        path = glue_dir / directory / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def expected_label(config: str, hub_label):
    names = HUB[config][1]
    if not names:
        return pytest.approx(hub_label, abs=1e-6)  # float32 on the hub, text in the TSV
    return TSV_CLASS_ORDER[config].index(TSV[config][4][names[hub_label]])


@pytest.fixture
def glue_hub(tmp_path, monkeypatch, hf_cache):
    repo = write_glue_hub(tmp_path / "hub")
    monkeypatch.setenv("PRUNEBENCH_HUB_ROOT", str(tmp_path / "hub"))
    monkeypatch.delenv("PRUNEBENCH_DATA", raising=False)
    return repo


@pytest.mark.parametrize("config", sorted(HUB))
def test_each_glue_config_from_the_hub_layout_with_exact_rows(glue_hub, config):
    task = get_task(config)("smoke")
    assert task.glue_dir() is None  # no data_dir: the hub
    train, dev = task.read_train_dev()
    texts, _ = HUB[config]
    for examples, split in ((train, "train"), (dev, "dev")):
        written = rows(config, split)
        assert len(examples) == COUNTS[split]
        for position in (0, -1):  # first and last example of the split
            assert examples.text_a[position] == written[texts[0]][position]
            if len(texts) == 2:
                assert examples.text_b[position] == written[texts[1]][position]
            else:
                assert examples.text_b is None
            assert examples.labels[position] == expected_label(config, written["label"][position])
        assert examples.labels == [expected_label(config, v) for v in written["label"]]
    tags = task.data_provenance()
    assert tags["data.hub_id"] == "nyu-mll/glue" and tags["data.hub_config"] == config
    assert tags["data.hub_split.train"] == "train"
    assert tags["data.hub_split.test"] == ("validation_matched" if config == "mnli" else "validation")
    assert tags["data.hub_local_copy"] == str(glue_hub)


@pytest.mark.parametrize("config", sorted(HUB))
def test_tsv_and_hub_sources_give_the_same_examples(glue_hub, tmp_path, config):
    write_glue_tsv(tmp_path / "glue_data", config)
    from_hub = get_task(config)("smoke").read_examples()
    tsv_task = get_task(config)("smoke", data_dir=str(tmp_path / "glue_data"))
    from_tsv = tsv_task.read_examples()
    for hub_part, tsv_part in zip(from_hub, from_tsv):
        assert hub_part.text_a == tsv_part.text_a and hub_part.text_b == tsv_part.text_b
        assert hub_part.labels == pytest.approx(tsv_part.labels, abs=1e-6)
    # validation is carved from train alike (10%, stratified; STS-B by rounded score)
    assert len(from_tsv[0]) + len(from_tsv[1]) == 20 and len(from_tsv[1]) >= 1 and len(from_tsv[2]) == 7
    assert tsv_task.data_provenance()["data.source"] == "glue-tsv"


def test_provenance_names_the_revision_and_the_fingerprints(glue_hub):
    import datasets

    task = get_task("rte")("smoke")
    task.read_examples()
    tags = task.data_provenance()
    from tasks.hub import folder_digest

    # a local copy's revision is its files' hash (issue 28: datasets' builder hash is one constant)
    assert tags["data.hub_revision"] == "sha256:" + folder_digest(glue_hub)
    assert tags["data.hub_revision_requested"] == "main"
    again = datasets.load_dataset(str(glue_hub), "rte", split="validation")
    assert tags["data.fingerprint.test"] == again._fingerprint
    assert tags["data.fingerprint.train"] != tags["data.fingerprint.test"]


def test_a_label_minus_one_in_a_labeled_split_is_refused(glue_hub):
    from tasks.hub import HubDataset
    from tasks.text.glue_hub import read_glue_hub

    source = HubDataset("sst2", str(glue_hub), "sst2")
    with pytest.raises(DataFormatError, match=r"split test, row 0: label -1 .*unlabeled"):
        read_glue_hub("sst2", source, source.load({"test": "test"}, "")[0]["test"])
    with pytest.raises(DataFormatError, match=r"row 0: the STS-B score -1.0 is outside \[0, 5\] \(an unlabeled"):
        source = HubDataset("stsb", str(glue_hub), "stsb")
        read_glue_hub("stsb", source, source.load({"test": "test"}, "")[0]["test"])


def test_label_names_in_another_order_are_refused(tmp_path, hf_cache):
    import datasets

    columns = {"premise": ["a"], "hypothesis": ["b"], "label": [0], "idx": [0]}
    features = {"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["contradiction", "entailment", "neutral"]),
                "idx": datasets.Value("int32")}
    repo = write_hub_repo(tmp_path / "glue", {"mnli": {"train": columns, "validation_matched": columns}},
                          {"mnli": features})
    with pytest.raises(DataFormatError, match="label names .*expected \\['entailment', 'neutral', 'contradiction'\\]"):
        get_task("mnli")("smoke", hub_id=str(repo)).read_examples()


def test_hub_options_are_checked():
    with pytest.raises(ValueError, match="hub_id must be"):
        get_task("sst2")("smoke", hub_id="")
    with pytest.raises(ValueError, match="revision must be"):
        get_task("rotten-tomatoes")("smoke", revision=3)
    with pytest.raises(ValueError, match="unknown recipe field"):
        get_task("sst2")("smoke", hub="nyu-mll/glue")


# --- Rotten Tomatoes from the hub ---------------------------------------------------------------

RT_COUNTS = {"train": 30, "validation": 6, "test": 5}


def rt_rows(split: str) -> dict[str, list]:
    n = RT_COUNTS[split]
    return {"text": [f"{split} review {i} , with its spacing ." for i in range(n)],
            "label": [int(i < n // 2) for i in range(n)]}  # pos first, then neg, as the hub's files


@pytest.fixture
def rt_hub(tmp_path, monkeypatch, hf_cache):
    import datasets

    features = {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    # one default config, as the hub repository declares it
    repo = tmp_path / "hub" / "cornell-movie-review-data" / "rotten_tomatoes"
    write_hub_repo(repo, {"default": {s: rt_rows(s) for s in RT_COUNTS}}, {"default": features})
    monkeypatch.setenv("PRUNEBENCH_HUB_ROOT", str(tmp_path / "hub"))
    return repo


def test_rotten_tomatoes_from_the_hub_keeps_its_splits(rt_hub):
    task = get_task("rotten-tomatoes")("smoke")
    task.check_data()
    parts = task.read_examples()
    for examples, split in zip(parts, ("train", "validation", "test")):
        written = rt_rows(split)
        assert len(examples) == RT_COUNTS[split] and examples.text_b is None
        assert examples.text_a == written["text"] and examples.labels == written["label"]
        assert (examples.text_a[0], examples.text_a[-1]) == (written["text"][0], written["text"][-1])
    tags = task.data_provenance()
    assert tags["data.hub_id"] == "cornell-movie-review-data/rotten_tomatoes"
    assert [tags[f"data.hub_split.{p}"] for p in ("train", "val", "test")] == ["train", "validation", "test"]


def test_a_hub_cell_records_its_data_in_its_mlflow_run(rt_hub, tmp_path, monkeypatch):
    import datasets
    import torch
    from mlflow.tracking import MlflowClient

    from benchmark.sweeps.cells import parse_sweep
    from benchmark.sweeps.runner import run_sweep
    from benchmark.sweeps.tracking import Tracker
    from helpers_text import write_tiny_bert

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    model = write_tiny_bert(tmp_path / "tiny-bert")
    sweep = parse_sweep({"name": "rt-hub", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                         "tasks": [{"name": "rotten-tomatoes", "options": {"model": str(model), "batch_size": 8}}],
                         "methods": ["random"]})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    report = run_sweep(sweep, Tracker(uri, "rt-hub"), torch.device("cpu"), tmp_path / "scores", quiet=True)
    assert report.failed == {} and len(report.finished) == 2
    client = MlflowClient(uri)
    expected_train = datasets.load_dataset(str(rt_hub), split="train")._fingerprint
    for run in client.search_runs([client.get_experiment_by_name("rt-hub").experiment_id]):
        tags = run.data.tags
        assert tags["data.hub_id"] == "cornell-movie-review-data/rotten_tomatoes"
        assert tags["data.hub_split.test"] == "test" and tags["data.fingerprint.train"] == expected_train
        assert tags["data.hub_revision"] == "sha256:" + __import__("tasks.hub").hub.folder_digest(rt_hub)
        assert run.data.metrics["n_train"] == 30


def test_rotten_tomatoes_refuses_a_data_dir(rt_hub, tmp_path):
    with pytest.raises(DataNotFoundError, match="takes no data_dir.*hub_id"):
        get_task("rotten-tomatoes")("smoke", data_dir=str(tmp_path)).check_data()


# --- Alpaca from the hub ------------------------------------------------------------------------------


def alpaca_rows(n: int = 40) -> dict[str, list]:
    rows = {"instruction": [f"Instruction {i}: name a colour." for i in range(n)],
            "input": ["" if i % 3 else f"context {i}" for i in range(n)],
            "output": [f"colour {i}" for i in range(n)]}
    rows["output"][7] = ""  # the original release holds a few records without an output
    rows["text"] = [f"### Instruction: {a}" for a in rows["instruction"]]
    return rows


@pytest.fixture
def alpaca_hub(tmp_path, monkeypatch, hf_cache):
    repo = tmp_path / "hub" / "tatsu-lab" / "alpaca"
    write_hub_repo(repo, {"default": {"train": alpaca_rows()}})
    monkeypatch.setenv("PRUNEBENCH_HUB_ROOT", str(tmp_path / "hub"))
    return repo


def test_alpaca_from_the_hub_by_default(alpaca_hub):
    from tasks.sft.sources import shuffled_split
    from tasks.sft.task import SPLIT_SEED

    task = get_task("alpaca")("smoke")
    task.check_data()
    train, val, test = task.read_splits()
    written = alpaca_rows()
    kept = [i for i in range(40) if i != 7]
    assert (len(train), len(val), len(test)) == (31, 4, 4)  # 39 records, 80/10/10
    # the same fixed shuffle a local file gets: the i-th kept record goes where index i goes
    test_idx, val_idx, train_idx = shuffled_split(39, (0.1, 0.1), SPLIT_SEED)
    for part, indices in ((train, train_idx), (val, val_idx), (test, test_idx)):
        for position in (0, -1):
            source = kept[indices[position]]
            record = part[position]
            assert (record.instruction, record.input, record.output) == (
                written["instruction"][source], written["input"][source], written["output"][source])
    tags = task.data_provenance()
    assert tags["data.hub_id"] == "tatsu-lab/alpaca" and tags["data.records_left_out"] == "1"
    assert tags["data.hub_split.train"] == "train" and tags["data.fingerprint.train"]


def test_alpaca_local_file_still_wins_over_the_hub(alpaca_hub, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n' * 10)
    task = get_task("alpaca")("smoke", data_dir=str(path))
    assert sum(len(p) for p in task.read_splits()) == 10
    assert task.data_provenance() == {"data.source": "local-file", "data.files": str(path)}


# --- offline, nothing cached: one message from validate, before any compute -------------------------


def offline_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRUNEBENCH_", "HF_"))}
    return {**env, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "empty-hf-home"), "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("task, hub_id", [("sst2", "nyu-mll/glue"), ("alpaca", "tatsu-lab/alpaca"),
                                          ("rotten-tomatoes", "cornell-movie-review-data/rotten_tomatoes")])
def test_validate_offline_and_uncached_says_what_is_missing_and_how_to_fix_it(tmp_path, task, hub_id):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nprofile: smoke\nseeds: [0]\nratios: [0.5]\ntasks: [{task}]\nmethods: [random]\n")
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "validate", str(sweep)], cwd=tmp_path,
                         env=offline_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[0] == f"invalid sweep {sweep}: 1 problem(s):"
    assert len(lines) == 2, out.stderr
    message = lines[1]
    assert f"task {task!r}: the Hugging Face dataset {hub_id}" in message
    assert "offline mode is on" in message and str(tmp_path / "empty-hf-home") in message
    assert f"prunebench download {task}" in message and "hub_id" in message
    assert not (tmp_path / "mlflow.db").exists()  # nothing ran


def test_an_unreachable_hub_is_reported_at_once_unless_the_data_is_cached(hf_cache, monkeypatch):
    import tasks.hub

    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "PRUNEBENCH_HUB_ROOT", "PRUNEBENCH_DATA"):
        monkeypatch.delenv(variable, raising=False)
    # the network's state, not datasets, is what is replaced here: a host that does not answer
    monkeypatch.setattr(tasks.hub, "hub_unreachable", lambda: "huggingface.co:443: No route to host")
    task = get_task("qnli")("smoke")
    with pytest.raises(DataNotFoundError) as error:
        task.check_data()
    assert ("the Hugging Face dataset nyu-mll/glue, config qnli is not in the Hugging Face cache "
            f"({hf_cache}) and the hub cannot be reached (huggingface.co:443: No route to host)") in str(error.value)
    (hf_cache / "nyu-mll___glue" / "qnli").mkdir(parents=True)  # where datasets keeps a fetched copy
    assert task.hub.cached_copy() == hf_cache / "nyu-mll___glue" / "qnli"
    task.check_data()  # cached: the run will read it


def test_the_hugging_face_cache_is_honoured(tmp_path):
    """HF_HOME decides where the loaded data is cached; offline, a local copy still loads."""
    write_glue_hub(tmp_path / "hub")
    code = ("from benchmark.api.registry import get_task; t = get_task('sst2')('smoke'); "
            "print(len(t.read_examples()[0]))")
    env = {**offline_env(tmp_path), "PRUNEBENCH_HUB_ROOT": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "18"
    # a local copy is prepared under prunebench-local/<its content hash>/ (tasks/hub.py)
    assert list((tmp_path / "empty-hf-home" / "datasets").glob("prunebench-local/*/glue/sst2/*/*/glue-train.arrow"))


def test_download_fills_the_hugging_face_cache(tmp_path):
    write_glue_hub(tmp_path / "hub")
    env = {**offline_env(tmp_path), "PRUNEBENCH_HUB_ROOT": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "download", "mnli"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    cache = tmp_path / "empty-hf-home" / "datasets"
    assert out.stdout.strip() == (
        f"mnli: the Hugging Face dataset nyu-mll/glue, config mnli (local copy {tmp_path / 'hub' / 'nyu-mll' / 'glue'})"
        f" (train 20, validation_matched 7, test 3) is in the Hugging Face cache ({cache}); later runs read it "
        "from there, offline too (HF_DATASETS_OFFLINE=1)")
    assert {p.name for p in cache.glob("glue/mnli/*/*/*.arrow")} == {
        "glue-train.arrow", "glue-validation_matched.arrow", "glue-test.arrow"}


def test_download_offline_and_uncached_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "download", "sst2"], cwd=tmp_path,
                         env=offline_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (line,) = [line for line in out.stderr.splitlines() if line.strip()]
    assert line.startswith("error: the Hugging Face dataset nyu-mll/glue, config sst2 is not in the Hugging Face "
                           "cache") and "offline mode is on" in line
