"""The text tasks end to end on small files in the real formats: the Rotten Tomatoes
reader and split, tokenisation and its cache, the encoder wrapper, GLUE tasks from
TSV fixtures, and every method on a tiny BERT through the runner into MLflow."""
from __future__ import annotations

import bz2
from collections import Counter

import numpy as np
import pytest
import torch
from helpers_text import write_rt_corpus, write_tiny_bert
from helpers_tiny import one_cpu_thread  # noqa: F401  (autouse fixture)

from benchmark.api.masks import prunable_weights
from benchmark.api.registry import get_method, get_task
from benchmark.api.task import DataFormatError, DataNotFoundError
from tasks.text import tokenized
from tasks.text.rotten_tomatoes import read_corpus, stratified_split
from tasks.text.task import RtPolarity, uniform_guess_f1


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_corpus_reader_keeps_reviews_and_drops_plots(tmp_path):
    path = write_rt_corpus(tmp_path, n_fresh=7, n_rotten=5, n_plot=3)
    examples = read_corpus(path)
    assert len(examples) == 12
    assert Counter(examples.labels) == {1: 7, 0: 5}
    assert examples.text_a[0] == 'the film was good and great, "story"'
    assert not any("synopsis" in t for t in examples.text_a)


def test_corpus_errors_name_the_file(tmp_path):
    bad = tmp_path / "rotten_tomatoes_corpus_full.csv.bz2"
    bad.write_bytes(b"not bz2 at all")
    with pytest.raises(DataFormatError, match="rotten_tomatoes_corpus_full.csv.bz2.*not a readable bz2 CSV"):
        read_corpus(bad)
    bad.write_bytes(bz2.compress(b"category,text\nfresh,nice\nsplendid,odd\n"))
    with pytest.raises(DataFormatError, match="data row 2: category 'splendid'"):
        read_corpus(bad)
    bad.write_bytes(bz2.compress(b"label,text\nfresh,nice\n"))
    with pytest.raises(DataFormatError, match="missing column"):
        read_corpus(bad)
    with pytest.raises(DataNotFoundError, match="empty-dir.*rotten_tomatoes_corpus_full"):
        RtPolarity("smoke", data_dir=str(tmp_path / "empty-dir")).check_data()


def test_stratified_split_sizes_are_exact_and_disjoint():
    labels = [1] * 7403 + [0] * 5405
    test, val, train = stratified_split(labels, (0.1, 0.1), seed=3)
    y = np.array(labels)
    assert [int((y[p] == 1).sum()) for p in (test, val, train)] == [740, 740, 5923]
    assert [int((y[p] == 0).sum()) for p in (test, val, train)] == [540, 540, 4325]  # round(540.5) == 540
    assert len(set(test) | set(val) | set(train)) == 12808
    again = stratified_split(labels, (0.1, 0.1), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((test, val, train), again))


def test_tokenisation_is_cached_and_batches_are_trimmed(tiny_bert, cache, monkeypatch):
    from tasks.text.encoders import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_bert))
    texts = ["good film", "the movie was very dull and slow"]
    first = tokenized.encode_cached("t", texts, None, tokenizer, 16)
    assert first.shape == (2, 3, 16) and first.dtype == torch.int32
    assert first[:, 2].sum(dim=1).tolist() == [4, 9]  # [CLS] + words + [SEP]
    monkeypatch.setattr(tokenized, "encode", lambda *a: pytest.fail("re-tokenised a cached split"))
    assert torch.equal(tokenized.encode_cached("t", texts, None, tokenizer, 16), first)
    assert tokenized.trim_padding(first[:1]).shape == (1, 3, 4)
    assert tokenized.trim_padding(first).shape == (2, 3, 9)
    # another text: another key, so a stale cache is never served
    monkeypatch.setattr(tokenized, "encode", lambda *a: "encoded again")
    assert tokenized.encode_cached("t", ["good film", "bad"], None, tokenizer, 16) == "encoded again"


def test_pairs_get_token_types(tiny_bert, cache):
    from tasks.text.encoders import load_tokenizer

    tokens = tokenized.encode(["good film"], ["bad plot"], load_tokenizer(str(tiny_bert)), 12)
    assert tokens[0, 1, :8].tolist() == [0, 0, 0, 0, 1, 1, 1, 0]  # [CLS] good film [SEP] | bad plot [SEP] | pad


def test_encoder_wrapper_features_feed_the_head(tiny_bert):
    from tasks.text.encoders import load_encoder_classifier

    torch.manual_seed(0)
    model = load_encoder_classifier(str(tiny_bert), 3).eval()
    x = torch.tensor([[[2, 5, 6, 3, 0], [0] * 5, [1, 1, 1, 1, 0]]])
    assert torch.allclose(model.head(model.features(x)), model(x))
    assert model(x).shape == (1, 3)
    weights = prunable_weights(model, exclude=model.head)
    assert "encoder.classifier.weight" not in weights and "encoder.bert.pooler.dense.weight" in weights
    assert "head.weight" not in dict(model.named_parameters())  # the head is not registered twice


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="no config.json"):
        RtPolarity("smoke", model=str(tmp_path)).check_data()


def write_glue(root, directory, name, text):
    folder = root / directory
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_glue_tasks_read_their_files_carve_validation_and_score(tmp_path, tiny_bert, cache):
    sst = "sentence\tlabel\n" + "".join(f"{'good fun' if i % 2 else 'dull mess'} {i}\t{i % 2}\n" for i in range(40))
    write_glue(tmp_path, "SST-2", "train.tsv", sst)
    write_glue(tmp_path, "SST-2", "dev.tsv", "sentence\tlabel\ngood\t1\nbad \"flat\"\t0\nfine\t1\n")
    task = get_task("sst2")("smoke", data_dir=str(tmp_path), model=str(tiny_bert))
    task.check_data()
    splits = task.load_splits()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (36, 4, 3)
    assert splits.test.y.tolist() == [1, 0, 1]
    assert Counter(splits.val.y.tolist()) == {0: 2, 1: 2}

    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    rows = [f"{i}\tg\tf\ty\t{i}\ts\ts\tgood film {i}\tbad film\t{i % 6}.0\n" for i in range(30)]
    write_glue(tmp_path, "STS-B", "train.tsv", header + "".join(rows))
    write_glue(tmp_path, "STS-B", "dev.tsv", header + "".join(rows[:5]))
    stsb = get_task("stsb")("smoke", data_dir=str(tmp_path), model=str(tiny_bert))
    splits = stsb.load_splits()
    assert splits.train.y.dtype == torch.float32 and splits.train.x[0, 1].max() == 1  # pairs
    predictions = torch.tensor([[0.5], [2.0], [1.0], [4.0]])
    scores = stsb.metrics(predictions, torch.tensor([1.0, 2.0, 0.0, 5.0]))
    assert scores["pearson"] == pytest.approx(np.corrcoef([0.5, 2, 1, 4], [1, 2, 0, 5])[0, 1])
    assert scores["loss"] == pytest.approx(np.mean([0.25, 0, 1, 1]))
    assert set(scores) == {"loss", "pearson", "spearman"}

    mrpc = get_task("mrpc")
    assert mrpc.metric == "f1" and mrpc.chance_level == pytest.approx(uniform_guess_f1(0.68))
    assert get_task("mnli").chance_level == pytest.approx(1 / 3)
    with pytest.raises(DataNotFoundError, match="MRPC"):
        mrpc("smoke", data_dir=str(tmp_path), model=str(tiny_bert)).check_data()


def test_classification_methods_refuse_regression_before_any_compute():
    stsb = get_task("stsb")
    for name in ("el2n", "emp", "ted"):
        assert "regression" in get_method(name).incompatibility(stsb)
    for name in ("random", "magnitude", "seven", "random-weights"):
        assert get_method(name).incompatibility(stsb) is None


def test_every_method_runs_on_a_text_task_and_is_tracked(tmp_path, tiny_bert, cache):
    from mlflow.tracking import MlflowClient

    from benchmark.sweeps.cells import parse_sweep
    from benchmark.sweeps.runner import run_sweep
    from benchmark.sweeps.tracking import Tracker

    write_rt_corpus(tmp_path / "rt", n_fresh=40, n_rotten=40)
    methods = ["random", {"name": "el2n", "options": {"proxy_runs": 1, "score_epochs": 1}}, "emp", "ted",
               "magnitude", "random-weights", "seven",
               {"name": "seven", "label": "seven-pre", "options": {"variant": "pre", "pre_batches": 2}}]
    sweep = parse_sweep({"name": "text", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                         "tasks": [{"name": "rt-polarity", "data_dir": str(tmp_path / "rt"),
                                    "options": {"model": str(tiny_bert), "batch_size": 16}}],
                         "methods": methods})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    report = run_sweep(sweep, Tracker(uri, "text"), torch.device("cpu"), tmp_path / "scores", quiet=True)
    assert report.failed == {}
    assert len(report.finished) == 9  # the full cell + 8 methods
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("text").experiment_id])
    by_label = {r.data.tags["label"]: r for r in runs}
    assert set(by_label) == {"full", "random", "el2n", "emp", "ted", "magnitude", "random-weights", "seven",
                             "seven-pre"}
    assert {r.info.status for r in runs} == {"FINISHED"}
    prunable = by_label["seven"].data.metrics["prunable_params"]
    for label in ("magnitude", "random-weights", "seven", "seven-pre"):
        metrics = by_label[label].data.metrics
        assert metrics["realised_sparsity"] == round(0.5 * prunable) / prunable, label
    assert by_label["random"].data.metrics["kept_fraction"] == 0.5  # 64 training snippets, 32 kept
    assert by_label["seven-pre"].data.metrics["scoring_sample_passes"] == 2 * 16
