"""How the leaderboard's numbers are written: one definition of every column, shared by
the markdown and the HTML renderings so that both show exactly the same text."""
from __future__ import annotations

import math

import pandas as pd

from .leaderboard import FAMILY_BASELINE, Board

NOISE_MARK = "≈"  # the difference is within noise (paired t-test p >= 0.05)
FEW_SEEDS = "too few seeds"


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def number(value, spec: str = ".4f", signed: bool = False) -> str:
    if missing(value):
        return "-"
    return f"{value:+{spec}}" if signed else f"{value:{spec}}"


def mean_std(mean, std) -> str:
    return f"{number(mean)} ± {number(std)}" if not missing(std) else f"{number(mean)} (1 seed)"


def interval(low, high) -> str:
    return FEW_SEEDS if missing(low) else f"[{low:.4f}, {high:.4f}]"


def delta(mean_diff, p_value, noise, wins, pairs) -> str:
    """Paired difference, e.g. ``+0.0123 (p=0.041, won 3/3)``; ``≈`` marks noise."""
    if missing(mean_diff):
        return "-"
    text = f"{mean_diff:+.4f}"
    if missing(p_value):
        return f"{text} ({int(pairs)} seed{'s' if pairs != 1 else ''}: no test)"
    mark = f" {NOISE_MARK}" if noise else ""
    return f"{text}{mark} (p={p_value:.3f}, won {int(wins)}/{int(pairs)})"


def count(value) -> str:
    if missing(value):
        return "-"
    return f"{value / 1e6:.3f}M" if value >= 1e5 else f"{value:,.0f}"


def peak_memory(rss_mb, device_mb) -> str:
    """``6,239`` (process RSS, MB), with the accelerator's peak after a slash when there is one."""
    if missing(rss_mb):
        return "-"
    return f"{rss_mb:,.0f}" if missing(device_mb) else f"{rss_mb:,.0f} / {device_mb:,.0f} GPU"


def detail_columns(family: str, metric: str) -> list[str]:
    cost = (["kept", "passes ×full", "speedup ×full"] if family == "data"
            else ["sparsity", "params left", "FLOPs ×dense"])
    return ["method", "ratio", f"{metric} mean ± std", "95% CI", "seeds", "Δ full",
            f"Δ {FAMILY_BASELINE[family]}", "test loss", *cost, "seconds", "peak MB", "provenance"]


def detail_rows(table: pd.DataFrame, family: str) -> list[list[tuple[str, object]]]:
    """Each cell as (text, sort key); the sort key is the number behind the text."""
    out = []
    for _, r in table.iterrows():
        if family == "data":
            cost = [(number(r.realised, ".3f"), r.realised), (number(r.passes_rel, ".2f"), r.passes_rel),
                    (number(r.speedup, ".2f"), r.speedup)]
        else:
            cost = [(number(r.realised, ".3f"), r.realised), (count(r.params_remaining), r.params_remaining),
                    (number(r.flops_rel, ".3f"), r.flops_rel)]
        out.append([
            (r.method, r.method), (f"{r.ratio:g}", r.ratio), (mean_std(r["mean"], r["std"]), r["mean"]),
            (interval(r.ci_low, r.ci_high), r.ci_low), (str(r.seeds), r.seeds),
            (delta(r.delta_full, r.p_full, r.noise_full, r.wins_full, r.pairs_full), r.delta_full),
            (delta(r.delta_random, r.p_random, r.noise_random, r.wins_random, r.pairs_random), r.delta_random),
            (number(r.loss), r.loss), *cost, (number(r.seconds, ".0f"), r.seconds),
            (peak_memory(r.peak_rss_mb, r.peak_device_mb), r.peak_rss_mb), (r.provenance, r.provenance),
        ])
    return out


def overview(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Method x ratio grid of mean ± std."""
    grid = table.assign(shown=[mean_std(m, s) for m, s in zip(table["mean"], table["std"])])
    grid = grid.pivot(index="method", columns="ratio", values="shown").fillna("")
    return ["method"] + [f"r={r:g}" for r in grid.columns], grid.reset_index().values.tolist()


def normalised_grid(board: Board, family: str) -> tuple[list[str], list[list[str]]]:
    rows = board.normalised[board.normalised.family == family] if not board.normalised.empty else board.normalised
    if rows.empty:
        return [], []
    grid = rows.assign(shown=[f"{s:.1f} ({t} task{'s' if t != 1 else ''})" for s, t in zip(rows.score, rows.tasks)])
    grid = grid.pivot(index="method", columns="ratio", values="shown").fillna("")
    return ["method"] + [f"r={r:g}" for r in grid.columns], grid.reset_index().values.tolist()


def task_heading(board: Board, task: str) -> str:
    info = board.task_info(task)
    origin = "SIMULATED data" if info["data_origin"] == "simulated" else f"{info['data_origin']} data"
    return f"{task} ({origin}), test {info['metric']}"


def reference_line(board: Board, task: str) -> str:
    full = board.task_info(task)["full"]
    if full.n == 0:
        return "No full-data / dense reference cell finished yet: Δ full is empty."
    if full.n == 1:
        return f"Full data / dense reference: {number(full.mean)}, one seed ({FEW_SEEDS} for an interval)."
    return (f"Full data / dense reference: {mean_std(full.mean, full.std)} over {full.n} seeds, "
            f"95% CI {interval(full.ci_low, full.ci_high)}.")


LEGEND = (
    "Headline: the test metric at the END of training (never an epoch picked on test), mean ± sample std over "
    "seeds, with the 95% confidence interval of the mean (Student's t). Δ full / Δ baseline: mean paired "
    f"difference (same task, ratio and seed), two-sided paired t-test p-value and wins; {NOISE_MARK} marks a "
    "difference within noise (p ≥ 0.05); with one common seed there is no test. *kept*: realised fraction of "
    "training samples per epoch; *passes ×full*: sample forward/backward passes (training + the method's own "
    "scoring or proxy training) over the full-data cell's; *speedup ×full*: the full-data cell's wall-clock over "
    "the method's (training + scoring), paired by seed; *sparsity*: realised fraction of prunable weights that are "
    "zero; *params left*: parameters not zeroed; *FLOPs ×dense*: theoretical FLOPs of the masked model's weight "
    "layers over the dense model's; *test loss*: the task's loss on the test split (for SFT, per response token), "
    "mean over seeds; *seconds*: training + scoring wall-clock per cell; *peak MB*: the cell's peak resident "
    "memory (process RSS, sampled), then the GPU's peak allocation on CUDA. Normalised score: each "
    "task's metric rescaled so that chance is 0 and its full / dense model is 100, averaged over tasks."
)
