"""movement, soft-movement and platon against the figures their reference code produced on the
tiny encoder (tests/fixtures/finetune_prune_reference.json, scripts/finetune_prune_reference_fixture.py):
Hugging Face's movement-pruning code, official PLATON, and SEVEN's PLATON and "movement"."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers_finetune_prune import replay, unpack_mask
from helpers_tiny import one_cpu_thread  # noqa: F401  (autouse fixture)
from methods.model.movement import Movement, SoftMovement, schedule_threshold
from methods.model.platon import Platon, platon_schedule

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "finetune_prune_reference.json").read_text())
ENCODER = ("intermediate.dense.weight", "output.dense.weight")


def classifier(model):
    return model.head.classifier  # the pooler is prunable (SEVEN prunes it; official PLATON drops it by name)


def whole_head(model):
    return model.head  # Hugging Face's masked BERT masks the encoder's matrices only


def tensor(entry) -> torch.Tensor:
    return torch.tensor(entry["values"], dtype=torch.float64).view(*entry["shape"])


def close_at_scale(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Float32 scores against the reference's, to 1e-5 relative and 1e-5 of the tensor's largest
    entry: on another CPU an entry that is a sum with cancellation (a gradient near 0) differs by a
    few rounding steps at the tensor's scale (seen on an AMD EPYC: 3.2e-7 of the largest PLATON
    |W x G|, 1.6e-5 of that entry's own value)."""
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))


def masks_of(bits: dict, like: dict) -> dict:
    return {n: unpack_mask(b, like[n].shape) for n, b in bits.items()}


def test_sources_name_repository_and_commit():
    sources = FIXTURE["sources"]
    assert sources["platon"]["commit"] == "c1776cf1289d074afa824eebf4a4a60838e20809"
    assert sources["seven"]["commit"] == "85e5903f1fe82e7fbe7af993d5640e271db54092"
    assert "97903a6352fdc897e13bc4f221fc57aa73e2697b" in sources["movement"]["commits"]


# -- official PLATON ---------------------------------------------------------------------------
def platon_official(count_rule: str) -> Platon:
    cfg = FIXTURE["platon"]["config"]
    # warm-up over the whole run (as the reference run): the one mask comes at the run's end
    method = Platon(1.0 - cfg["remaining"], variant="official", beta1=cfg["beta1"], beta2=cfg["beta2"],
                    deltaT=cfg["deltaT"], warmup_steps=0.95, initial_warmup=1, final_warmup=0, count_rule=count_rule)
    _, state = replay(method, cfg["steps"], classifier)
    method.on_run_end(state)
    return method


def test_platon_official_scores_match_the_official_code():
    method = platon_official("reference")
    ref = FIXTURE["platon"]
    assert set(method._weights) == set(ENCODER)  # the pooler left dense, as the official names select
    for name in ENCODER:
        for field in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
            close_at_scale(getattr(method.score, field)[name].double(), tensor(ref[field][name]))
    assert method.mask_steps == [(10, 0.5)]


def test_platon_official_mask_matches_and_the_harness_count_removes_one_more():
    ref = FIXTURE["platon"]
    reference = platon_official("reference")
    expected = masks_of(ref["keep_bits"], reference._weights)
    for name in ENCODER:
        assert torch.equal(reference.masker.masks[name], expected[name]), name
    harness = platon_official("harness")
    n = sum(m.numel() for m in expected.values())
    kept_ref = sum(int(m.sum()) for m in expected.values())
    assert kept_ref == n - (n // 2 - 1)  # strict '<' at kthvalue(int(n * 0.5)): one fewer removed
    extra = {name: expected[name] & ~harness.masker.masks[name] for name in ENCODER}
    assert sum(int(e.sum()) for e in extra.values()) == 1
    assert all(torch.equal(harness.masker.masks[name] & ~expected[name], torch.zeros_like(expected[name]))
               for name in ENCODER)
    # the one extra entry removed is the lowest score the reference kept
    scores = reference.score.scores()
    lowest_kept = min(float(scores[n][expected[n]].min()) for n in ENCODER)
    assert any(bool((scores[n][extra[n]] == lowest_kept).all()) and int(extra[n].sum()) == 1 for n in ENCODER)


def test_platon_schedule_matches_the_official_code():
    cfg = FIXTURE["platon"]["schedule_config"]
    for step, (kept, mask_now) in enumerate(FIXTURE["platon"]["schedule"]):
        ours = platon_schedule(step, cfg["total_step"], cfg["warmup_steps"], cfg["final_threshold"],
                               cfg["initial_warmup"], cfg["final_warmup"], cfg["deltaT"])
        assert ours[1] == mask_now, step
        assert ours[0] == pytest.approx(kept, abs=1e-12), step


# -- SEVEN's PLATON and "movement" -------------------------------------------------------------
def seven_run(method_cls, key: str):
    cfg = FIXTURE[key]["config"]
    steps = cfg["steps"]
    window = (cfg["t_i"] / steps, cfg["iter_num"] / steps)
    method = method_cls(cfg["target_ratio"], variant="seven", count_rule="reference", start=window[0],
                        length=window[1])
    seen = {}

    def after(state):
        seen[state.step] = ({n: m.clone() for n, m in method.masker.masks.items()},
                            method.score.scores() if hasattr(method, "score") else None)

    replay(method, steps, classifier, after_step=after)
    return method, seen


@pytest.mark.parametrize("method_cls,key", [(Platon, "seven_platon"), (Movement, "seven_movement")])
def test_seven_variants_mask_every_step_as_seven_does(method_cls, key):
    method, seen = seven_run(method_cls, key)
    reference = FIXTURE[key]["masks"]
    assert [r["step"] for r in reference] == [2, 3, 4, 5, 6]
    assert set(method._weights) == {*ENCODER, "head.pooler.dense.weight"}  # SEVEN prunes the pooler
    for record in reference:
        ours, _ = seen[record["step"]]
        expected = masks_of(record["keep_bits"], method._weights)
        for name in expected:
            assert torch.equal(ours[name], expected[name]), (record["step"], name)
    # the harness's window also takes the reference's last step (t = T - 1): the target exactly
    last, _ = seen[7]
    assert sum(int(m.sum()) for m in last.values()) == int(0.5 * sum(m.numel() for m in last.values()))


def test_seven_platon_importance_matches():
    method, seen = seven_run(Platon, "seven_platon")
    masks, scores = seen[6]
    for name, entry in FIXTURE["seven_platon"]["final_importance"].items():
        expected = tensor(entry)
        close_at_scale(scores[name].double()[masks[name]], expected[masks[name]])


# -- Hugging Face's movement and soft movement ---------------------------------------------------
def movement_run(ratio: float):
    cfg = FIXTURE["movement"]["config"]
    method = Movement(ratio, variant="paper", count_rule="reference", warmup_steps=0.95, initial_warmup=1,
                      final_warmup=0, mask_scores_learning_rate=cfg["mask_scores_learning_rate"])
    _, state = replay(method, cfg["steps"], whole_head)
    method.on_run_end(state)
    return method


@pytest.mark.parametrize("keep", [0.5, 0.3])
def test_movement_scores_and_topk_masks_match_huggingface(keep):
    method = movement_run(1.0 - keep)
    assert method.scope == "layer" and set(method.scores) == set(ENCODER)
    ref = FIXTURE["movement"]
    for name in ENCODER:
        torch.testing.assert_close(method.scores[name].double(), tensor(ref["scores"][name]), rtol=1e-5, atol=1e-9)
    expected = masks_of(ref["keep_bits"][str(keep)], method._weights)
    for name in ENCODER:
        assert torch.equal(method.masker.masks[name], expected[name]), name
        assert int(expected[name].sum()) == int(keep * expected[name].numel())


def test_movement_score_is_minus_the_accumulated_weight_times_gradient():
    """Independent of the reference: S = -lr * sum_t W_t * G_t with W_t the forward pass's weight."""
    cfg = FIXTURE["movement"]["config"]
    lr = cfg["mask_scores_learning_rate"]
    method = Movement(0.5, warmup_steps=0.95, initial_warmup=1, final_warmup=0, mask_scores_learning_rate=lr)
    from helpers_finetune_prune import WEIGHT_LR, TinyEncoder, batch, data

    model, x_y = TinyEncoder(), data()
    expected = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in model.named_parameters() if n in ENCODER}
    for step in range(cfg["steps"]):
        xb, yb = batch(step, *x_y)
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in expected:
                    expected[n] -= lr * p.double() * p.grad.double()
                p -= WEIGHT_LR * p.grad
    replay(method, cfg["steps"], whole_head)
    for name in ENCODER:
        torch.testing.assert_close(method.scores[name].double(), expected[name], rtol=1e-5, atol=1e-9)


def test_movement_schedule_matches_huggingface():
    cfg = FIXTURE["movement"]["schedule_config"]
    for step, (threshold, regu_lambda) in enumerate(FIXTURE["movement"]["schedule"]):
        ours = schedule_threshold(step, cfg["total_step"], cfg["warmup_steps"], cfg["initial_threshold"],
                                  cfg["final_threshold"], cfg["initial_warmup"], cfg["final_warmup"])
        assert ours == pytest.approx(threshold, abs=1e-12), step
        assert cfg["final_lambda"] * ours / cfg["final_threshold"] == pytest.approx(regu_lambda, rel=1e-12)


def test_soft_movement_scores_with_regularisation_and_sigmoid_mask_match_huggingface():
    cfg = FIXTURE["soft_movement"]["config"]
    method = SoftMovement(0.5, selection="sigmoid_threshold", initial_threshold=cfg["initial_threshold"],
                          final_threshold=cfg["final_threshold"], final_lambda=cfg["final_lambda"],
                          warmup_steps=0.95, initial_warmup=1, final_warmup=0,
                          mask_scores_learning_rate=cfg["mask_scores_learning_rate"])
    _, state = replay(method, cfg["steps"], whole_head)
    method.on_run_end(state)
    ref = FIXTURE["soft_movement"]
    for name in ENCODER:
        torch.testing.assert_close(method.scores[name].double(), tensor(ref["scores"][name]), rtol=1e-5, atol=1e-9)
    expected = masks_of(ref["keep_bits"], method._weights)
    assert 0 < sum(int(m.sum()) for m in expected.values()) < sum(m.numel() for m in expected.values())
    for name in ENCODER:
        assert torch.equal(method.masker.masks[name], expected[name]), name


def test_soft_movement_regulariser_moves_the_scores():
    """Without the regulariser the scores are movement's; with it every score is pulled down by
    lr * lambda * sigmoid'(S) / (numel * matrices) per step, so the difference is negative."""
    cfg = FIXTURE["soft_movement"]["config"]
    common = dict(selection="sigmoid_threshold", initial_threshold=cfg["initial_threshold"],
                  final_threshold=cfg["final_threshold"], warmup_steps=0.95, initial_warmup=1, final_warmup=0,
                  mask_scores_learning_rate=cfg["mask_scores_learning_rate"])
    with_reg, without = SoftMovement(0.5, final_lambda=cfg["final_lambda"], **common), SoftMovement(
        0.5, final_lambda=0.0, **common)
    replay(with_reg, cfg["steps"], whole_head)
    replay(without, cfg["steps"], whole_head)
    for name in ENCODER:
        difference = with_reg.scores[name] - without.scores[name]
        assert bool((difference < 0).all()), name


def test_soft_movement_reference_count_is_global_topk_one_more():
    """The reference's global_topk cut keeps the scores above the (n - (int(n * keep) + 1))-th
    smallest: int(n * keep) + 1 weights, the highest scores (independent computation)."""
    cfg = FIXTURE["soft_movement"]["config"]
    method = SoftMovement(0.5, count_rule="reference", warmup_steps=0.95, initial_warmup=1, final_warmup=0,
                          mask_scores_learning_rate=cfg["mask_scores_learning_rate"])
    _, state = replay(method, cfg["steps"], whole_head)
    method.on_run_end(state)
    scores = torch.cat([method.scores[n].flatten() for n in ENCODER])
    kept = torch.cat([method.masker.masks[n].flatten() for n in ENCODER])
    n = scores.numel()
    assert int(kept.sum()) == int(n * 0.5) + 1
    assert float(scores[kept].min()) > float(scores[~kept].max())


@pytest.mark.parametrize("method_cls", [Movement, Platon])
def test_seven_variants_cut_short_still_end_at_the_target(method_cls):
    method = method_cls(0.5, variant="seven", start=0.25, length=0.75)
    _, state = replay(method, 4, classifier, total_steps=8)  # the window is steps 2..7; 4 taken
    before = sum(int(m.sum()) for m in method.masker.masks.values())
    total = sum(w.numel() for w in method._weights.values())
    assert before > total - round(0.5 * total)
    method.on_run_end(state)
    assert sum(int(m.sum()) for m in method.masker.masks.values()) == total - round(0.5 * total)
