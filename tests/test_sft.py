"""SFT task family: record files, prompt masking, per-token method scores, metrics, and a
smoke cell of every method on the tiny Llama tracked in MLflow."""
from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.api.sequence import IGNORE_INDEX
from benchmark.api.task import DataFormatError, DataNotFoundError
from methods.data.el2n import el2n_scores
from methods.data.emp import emp_score
from tasks.sft.encoding import encode_records, fit, prompt_and_response
from tasks.sft.models import byte_tokenizer
from tasks.sft.records import InstructionRecord, read_records
from tasks.sft.sources import find_humaneval, humaneval_records
from tasks.sft.task import Alpaca, RtInstruct

from helpers_text import write_rt_corpus
from helpers_tiny import one_cpu_thread  # noqa: F401  (autouse)

RECORDS = [
    {"instruction": "Say hi.", "input": "", "output": "hi"},
    {"instruction": "Label the review.", "input": "A fine film.", "output": "positive", "extra": 1},
    {"instruction": "Add.", "output": "3"},
]


# --- record files ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".json.gz", ".jsonl.gz"])
def test_records_read_from_every_layout(tmp_path, suffix):
    if ".jsonl" in suffix:
        text = "\n".join(json.dumps(r) for r in RECORDS) + "\n\n"
    else:
        text = json.dumps(RECORDS, indent=2)
    path = tmp_path / f"data{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    records = read_records(path)
    assert records == [InstructionRecord("Say hi.", "", "hi"),
                       InstructionRecord("Label the review.", "A fine film.", "positive"),
                       InstructionRecord("Add.", "", "3")]
    assert records[1].user_text == "Label the review.\n\nA fine film."


def _json_array(records: list[str]) -> str:
    return "[\n" + ",\n".join(records) + "\n]\n"


@pytest.mark.parametrize("body, line, words", [
    # JSON array: each record on its own line (line 1 is the '[')
    (_json_array(['{"instruction": "a", "output": "b"}', '{"instruction": "a"}']), 3, "no 'output'"),
    (_json_array(['{"instruction": "a", "output": "b"}', '{"instruction": "a", "output": 5}']), 3,
     "'output' must be a string"),
    (_json_array(['{"instruction": "a", "output": "b"}', '["not", "an", "object"]']), 3, "must be an object"),
    (_json_array(['{"instruction": "a", "output": "b"}', '{"instruction": "", "output": "b"}']), 3,
     "'instruction' is empty"),
    (_json_array(['{"instruction": "a", "output": "b"}', '{"instruction": "a", "output": "b",}']), 3, "invalid JSON"),
    ('{"instruction": "a", "output": "b"}', 1, "one array of records"),
])
def test_malformed_json_names_file_and_line(tmp_path, body, line, words):
    path = tmp_path / "bad.json"
    path.write_text(body)
    with pytest.raises(DataFormatError) as error:
        read_records(path)
    assert f"{path}, line {line}:" in str(error.value) and words in str(error.value)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "a", "output": "b"\n')
    with pytest.raises(DataFormatError, match=rf"{path}, line 3: invalid JSON"):
        read_records(path)
    path.write_text('{"instruction": "a", "output": "b"}\n{"output": "b"}\n')
    with pytest.raises(DataFormatError, match=rf"{path}, line 2: record has no 'instruction'"):
        read_records(path)


def test_missing_and_misnamed_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="not found"):
        read_records(tmp_path / "absent.jsonl")
    (tmp_path / "data.csv").write_text("x")
    with pytest.raises(DataFormatError, match="unknown suffix"):
        read_records(tmp_path / "data.csv")
    (tmp_path / "broken.json.gz").write_bytes(b"not gzip")
    with pytest.raises(DataFormatError, match="gzip"):
        read_records(tmp_path / "broken.json.gz")


def test_humaneval_layout(tmp_path):
    problems = [{"task_id": f"HumanEval/{i}", "prompt": f"def f{i}():\n", "canonical_solution": f"    return {i}\n",
                 "test": "", "entry_point": f"f{i}"} for i in range(3)]
    path = tmp_path / "HumanEval.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(p) for p in problems).encode()))
    records = humaneval_records(path)
    assert [r.input for r in records] == ["def f0():\n", "def f1():\n", "def f2():\n"]
    assert records[2].output == "    return 2\n"
    assert find_humaneval(str(tmp_path)) == path
    with pytest.raises(DataNotFoundError, match=rf"{tmp_path / 'no' / 'HumanEval.jsonl.gz'} not found: humaneval reads"):
        find_humaneval(str(tmp_path / "no"))


# --- prompt masking -------------------------------------------------------------------------


def _chat_tokenizer():
    tokenizer = byte_tokenizer()
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    return tokenizer


@pytest.mark.parametrize("templated", [False, True])
def test_labels_are_ignored_exactly_on_prompt_and_padding(templated):
    tokenizer = _chat_tokenizer() if templated else byte_tokenizer()
    records = [InstructionRecord("Label it.", "A fine film.", "positive"), InstructionRecord("Say hi.", "", "hi")]
    max_length = 400
    tensors = encode_records(records, tokenizer, max_length)
    x, y = tensors["x"], tensors["y"]
    for i, record in enumerate(records):
        prompt, response = prompt_and_response(record, tokenizer)
        # independent: tokenise each part on its own and lay them out by hand
        prompt_ids = tokenizer(prompt, add_special_tokens=not templated)["input_ids"]
        response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        ids = prompt_ids + response_ids
        assert x[i, 0, : len(ids)].tolist() == ids and x[i, 0, len(ids):].eq(0).all()
        assert x[i, 1].tolist() == [1] * len(ids) + [0] * (max_length - len(ids))
        expected = [IGNORE_INDEX] * max_length
        for t in range(len(prompt_ids) - 1, len(ids) - 1):  # position t predicts ids[t + 1], a response token
            expected[t] = ids[t + 1]
        assert y[i].tolist() == expected
        assert (y[i] != IGNORE_INDEX).sum() == len(response_ids)
        assert tokenizer.decode(y[i][y[i] != IGNORE_INDEX].tolist()) == response
    if templated:
        assert prompt_and_response(records[1], tokenizer) == ("<|user|>Say hi.</s><|assistant|>", "hi</s>")
    else:
        assert prompt_and_response(records[1], tokenizer)[1] == "hi</s>"


def test_truncation_keeps_the_answer_and_a_prompt_tail():
    prompt, response = list(range(100)), list(range(1000, 1010))
    p, r = fit(prompt, response, 64)
    assert r == response and p == prompt[-54:]
    p, r = fit(list(range(10)), list(range(1000, 1100)), 64)
    assert p == list(range(10)) and r == list(range(1000, 1054))
    p, r = fit(prompt, list(range(1000, 1100)), 64)
    assert len(p) == 16 and p == prompt[-16:] and r == list(range(1000, 1048))
    assert fit([1, 2], [3], 64) == ([1, 2], [3])


# --- per-token method scores -----------------------------------------------------------------


def _sequence_batch(seed=0, batch=4, length=7, vocab=11):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=gen) * 3
    y = torch.randint(0, vocab, (batch, length), generator=gen)
    y[:, :2] = IGNORE_INDEX  # prompt
    y[0, 5:] = IGNORE_INDEX  # padding
    y[2, 3:] = IGNORE_INDEX
    return logits, y


def test_sequence_scores_are_means_over_response_tokens():
    logits, y = _sequence_batch()
    probs = np.exp(logits.double().numpy())
    probs /= probs.sum(-1, keepdims=True)
    el2n, entropy, ce = [], [], []
    for i in range(len(y)):
        positions = [t for t in range(y.shape[1]) if y[i, t] != IGNORE_INDEX]
        norms, ents, losses = [], [], []
        for t in positions:
            onehot = np.zeros(probs.shape[-1])
            onehot[int(y[i, t])] = 1
            norms.append(np.linalg.norm(probs[i, t] - onehot))
            ents.append(-(probs[i, t] * np.log(probs[i, t])).sum())
            losses.append(-np.log(probs[i, t, int(y[i, t])]))
        el2n.append(np.mean(norms))
        entropy.append(np.mean(ents))
        ce.append(np.mean(losses))
    np.testing.assert_allclose(el2n_scores(logits, y).numpy(), el2n, rtol=1e-5)
    task = RtInstruct("smoke")
    losses = task.per_sample_loss(logits, y)
    np.testing.assert_allclose(losses.numpy(), ce, rtol=1e-5)
    np.testing.assert_allclose(emp_score(losses, logits, y, 0.5).numpy(), np.array(ce) + 0.5 * np.array(entropy),
                               rtol=1e-5)


def test_eval_metrics_against_a_token_by_token_count():
    logits, y = _sequence_batch(seed=1)
    logits[1, 2:, :] = -10.0  # sample 1: every response token right
    for t in range(2, y.shape[1]):
        logits[1, t, y[1, t]] = 10.0
    task = RtInstruct("smoke")
    outputs = torch.cat([task.eval_outputs(logits[:2], y[:2]), task.eval_outputs(logits[2:], y[2:])])
    figures = task.metrics(outputs, y)
    counted = y != IGNORE_INDEX
    token_losses = F.cross_entropy(logits[counted], y[counted], reduction="none")
    right = logits.argmax(-1)[counted] == y[counted]
    assert figures["loss"] == pytest.approx(token_losses.mean().item(), rel=1e-5)
    assert figures["perplexity"] == pytest.approx(math.exp(token_losses.mean().item()), rel=1e-5)
    assert figures["token_accuracy"] == pytest.approx(right.float().mean().item())
    whole = [bool((logits[i].argmax(-1) == y[i])[counted[i]].all()) for i in range(len(y))]
    assert whole[1] and figures["exact_match"] == pytest.approx(sum(whole) / len(whole))


def test_ted_alignment_of_a_sequence_sample_is_the_mean_over_its_tokens():
    from methods.data.ted import TED

    logits, y = _sequence_batch(seed=2)
    gen = torch.Generator().manual_seed(5)
    features = torch.randn(*y.shape, 6, generator=gen)
    head = torch.nn.Linear(6, logits.shape[-1], bias=False)
    logits = head(features).detach()
    ted = TED(0.5, 0)
    ted.scores, ted.seen = torch.zeros(4), torch.zeros(4, dtype=torch.bool)
    ted.mean_gradient, ted.has_bias, ted.upkeep_seconds = None, False, 0.0
    ted.on_batch_loss(None, torch.arange(4), logits, None, y, features)
    # independent: autograd of each sample's mean response-token loss w.r.t. the head weight
    grads = []
    for i in range(4):
        counted = y[i] != IGNORE_INDEX
        loss = F.cross_entropy(head(features[i][counted]), y[i][counted])
        grads.append(torch.autograd.grad(loss, head.weight)[0])
    mean_gradient = torch.stack(grads).mean(0)
    torch.testing.assert_close(ted.mean_gradient, mean_gradient, rtol=1e-5, atol=1e-6)
    expected = torch.stack([(g * mean_gradient).sum() for g in grads])
    torch.testing.assert_close(ted.scores, expected, rtol=1e-4, atol=1e-6)


def test_gradient_checkpointing_recomputes_the_blocks_and_keeps_the_gradients():
    from tasks.sft.models import load_causal_lm

    def gradients(checkpointing: bool):
        torch.manual_seed(0)  # the tiny model's weights come from the global generator
        model = load_causal_lm("tiny-llama", gradient_checkpointing=checkpointing).train()
        calls = []
        # a pre-hook inside the block: hooks on the block itself stay outside the checkpoint, and
        # the recompute stops early once the saved tensors are back (so no post-hook)
        model.lm.get_decoder().layers[0].mlp.register_forward_pre_hook(lambda *_: calls.append(1))
        x = torch.stack([torch.randint(3, 200, (2, 9), generator=torch.Generator().manual_seed(1)),
                         torch.ones(2, 9, dtype=torch.long)], dim=1)  # [B, ids/attention, T]
        y = x[:, 0].roll(-1, dims=1)
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        return len(calls), {n: p.grad.clone() for n, p in model.named_parameters()}

    plain_calls, plain = gradients(False)
    checkpointed_calls, checkpointed = gradients(True)
    assert (plain_calls, checkpointed_calls) == (1, 2)  # the block's MLP runs again in backward
    assert plain.keys() == checkpointed.keys() and len(plain) > 0
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


# --- tasks ----------------------------------------------------------------------------------


def test_rt_instruct_splits_like_rt_polarity(tmp_path, monkeypatch):
    from tasks.text.task import RtPolarity

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    corpus = write_rt_corpus(tmp_path / "rt", n_fresh=30, n_rotten=20)
    task = RtInstruct("smoke", data_dir=str(corpus.parent), train_limit=None, test_limit=None)
    train, val, test = task.read_splits()
    assert (len(train), len(val), len(test)) == (40, 5, 5)
    polarity = RtPolarity("smoke", data_dir=str(corpus.parent)).read_examples()
    assert [r.input for r in test] == polarity[2].text_a
    assert [r.output for r in test] == [("negative", "positive")[label] for label in polarity[2].labels]
    splits = task.load_splits()
    assert splits.train.x.shape == (40, 2, 384) and splits.train.y.shape == (40, 384)
    assert ((splits.train.y != IGNORE_INDEX).sum(1) == torch.tensor(
        [len(r.output) + 1 for r in train])).all()  # a byte token per letter of the answer, and EOS


def test_alpaca_task_options_and_errors(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"instruction": f"q{i}", "output": "yes" if i % 2 else "no"})
                              for i in range(20)))
    task = Alpaca("smoke", data_dir=str(tmp_path), choices=["no", "yes"])
    assert task.metric == "exact_match" and task.chance_level == 0.5 and task.data_file() == path
    train, val, test = task.read_splits()
    assert (len(train), len(val), len(test)) == (16, 2, 2)
    assert sorted(r.instruction for r in train + val + test) == sorted(f"q{i}" for i in range(20))
    with pytest.raises(DataFormatError, match="'no' is not one of the declared choices"):
        Alpaca("smoke", data_dir=str(path), choices=["yes", "maybe"]).load_splits()
    with pytest.raises(ValueError, match="at least two"):
        Alpaca("smoke", data_dir=str(path), choices=["yes"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="holds none of"):
        Alpaca("smoke", data_dir=str(tmp_path / "empty")).check_data()


# --- every method end to end on the tiny Llama, tracked in MLflow ------------------------------


@pytest.mark.slow
def test_smoke_cell_of_every_method_runs_and_is_tracked(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from benchmark.sweeps.cells import load_sweep
    from benchmark.sweeps.runner import run_sweep
    from benchmark.sweeps.tracking import Tracker

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    corpus = write_rt_corpus(tmp_path / "rt", n_fresh=60, n_rotten=40)
    sweep_file = tmp_path / "sft.yaml"
    sweep_file.write_text(f"""
name: sft-test
profile: smoke
seeds: [0]
ratios: [0.5]
tasks:
  - name: rt-instruct
    data_dir: {corpus.parent}
    options: {{train_limit: 32, test_limit: 16}}
methods:
  - random
  - name: el2n
    options: {{proxy_runs: 1, score_epochs: 1}}
  - emp
  - ted
  - magnitude
  - random-weights
  - seven
""")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = run_sweep(load_sweep(sweep_file), Tracker(uri, "sft-test"), torch.device("cpu"), tmp_path / "scores",
                       quiet=True)
    assert not report.failed
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("sft-test").experiment_id])
    finished = {r.data.tags["method"]: r for r in runs if r.data.tags.get("status") == "finished"}
    assert sorted(finished) == ["el2n", "emp", "magnitude", "none", "random", "random-weights", "seven", "ted"]
    for method, run in finished.items():
        m = run.data.metrics
        assert 0 <= m["test_exact_match"] <= 1 and m["test_loss"] > 0
        assert m["test_perplexity"] == pytest.approx(math.exp(m["test_loss"]), rel=1e-6)
        assert run.data.tags["task_family"] == "sft" and run.data.tags["metric"] == "exact_match"
    for method in ("magnitude", "random-weights", "seven"):
        assert finished[method].data.metrics["realised_sparsity"] == pytest.approx(0.5, abs=1e-4)
    assert finished["random"].data.metrics["kept_fraction"] == pytest.approx(0.5)
