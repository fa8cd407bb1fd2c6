"""The leaderboard: a pure function of the finished runs MLflow holds.

Per task and family, one row per (method label, ratio): the headline test metric
as mean +- std over seeds, the paired difference from the full-data / dense cell
and from the family's random baseline (same task, ratio and seed), and the cost.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from tabulate import tabulate

FAMILY_BASELINE = {"data": "random", "model": "random-weights"}
FAMILY_TITLE = {"data": "data pruning (ratio = fraction of training samples removed)",
                "model": "model pruning (ratio = fraction of prunable weights removed)"}


def load_runs(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """One row per finished cell (the latest run if a cell somehow has several)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"no MLflow experiment {experiment!r} at {tracking_uri}; run a sweep first "
                         "or pass --experiment with the sweep's name")
    rows, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], filter_string="tags.status = 'finished'",
                                  max_results=1000, page_token=token)
        for run in page:
            tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
            metric = tags.get("metric", "accuracy")
            rows.append({
                "cell_id": tags["cell_id"], "task": tags["task"], "method": tags["method"],
                "label": tags.get("label", tags["method"]), "family": tags.get("family", ""),
                "provenance": tags.get("provenance", ""), "data_origin": tags.get("data_origin", ""),
                "code_version": tags.get("code_version", ""), "metric": metric,
                "ratio": float(params["ratio"]), "seed": int(params["seed"]),
                "value": metrics.get(f"test_{metric}"),
                "kept_fraction": metrics.get("kept_fraction"),
                "realised_sparsity": metrics.get("realised_sparsity"),
                "total_sample_passes_rel": metrics.get("total_sample_passes_rel"),
                "seconds": metrics.get("train_seconds", 0.0) + metrics.get("scoring_seconds", 0.0),
                "start_time": run.info.start_time,
            })
        token = page.token
        if not token:
            break
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("start_time").drop_duplicates("cell_id", keep="last").reset_index(drop=True)


def _paired_delta(rows: pd.DataFrame, reference: pd.Series) -> float | None:
    """Mean over seeds of (value - reference value at the same seed); None without common seeds."""
    paired = rows.set_index("seed")["value"] - reference
    paired = paired.dropna()
    return float(paired.mean()) if len(paired) else None


def family_table(runs: pd.DataFrame, task: str, family: str) -> pd.DataFrame:
    task_runs = runs[runs.task == task]
    full = task_runs[task_runs.family == "reference"].set_index("seed")["value"]
    rows = task_runs[task_runs.family == family]
    baseline = FAMILY_BASELINE.get(family)
    out = []
    for (label, ratio), group in rows.groupby(["label", "ratio"], sort=True):
        base = rows[(rows.label == baseline) & (rows.ratio == ratio)].set_index("seed")["value"]
        realised = group["kept_fraction" if family == "data" else "realised_sparsity"]
        out.append({
            "method": label, "ratio": ratio, "seeds": len(group),
            "mean": group["value"].mean(), "std": group["value"].std(ddof=1) if len(group) > 1 else float("nan"),
            "delta_full": _paired_delta(group, full),
            "delta_random": None if label == baseline else _paired_delta(group, base),
            "realised": realised.mean(), "passes_rel": group["total_sample_passes_rel"].mean(),
            "seconds": group["seconds"].mean(), "provenance": group["provenance"].iloc[0],
        })
    table = pd.DataFrame(out)
    return table.sort_values(["ratio", "method"]).reset_index(drop=True) if not table.empty else table


def _fmt(value, spec: str = ".4f", signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{value:+{spec}}" if signed else f"{value:{spec}}"


def render(runs: pd.DataFrame, experiment: str) -> str:
    lines = [f"# Leaderboard: {experiment}", ""]
    if runs.empty:
        return "\n".join(lines + ["No finished cells yet."])
    lines += [
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from {len(runs)} finished cells; "
        f"code version(s): {', '.join(sorted(runs.code_version.unique()))}.",
        "Headline: the test metric at the END of training (never an epoch picked on test). "
        "mean ± std over seeds; Δ full / Δ random are paired by seed (same task, ratio, seed).",
        "",
    ]
    for task in sorted(runs.task.unique()):
        task_runs = runs[runs.task == task]
        metric = task_runs.metric.iloc[0]
        origin = task_runs.data_origin.iloc[0]
        full = task_runs[task_runs.family == "reference"]["value"]
        lines += [f"## {task} ({'SIMULATED data' if origin == 'simulated' else origin + ' data'}), test {metric}", ""]
        if len(full):
            lines += [f"Full data / dense reference: {full.mean():.4f} ± {_fmt(full.std(ddof=1) if len(full) > 1 else None)} "
                      f"over {len(full)} seed(s).", ""]
        for family in ("data", "model"):
            table = family_table(runs, task, family)
            if table.empty:
                continue
            pivot = table.assign(shown=[f"{_fmt(m)} ± {_fmt(sd)}" for m, sd in zip(table["mean"], table["std"])])
            pivot = pivot.pivot(index="method", columns="ratio", values="shown").fillna("")
            realised_name = "kept" if family == "data" else "sparsity"
            body = [[r.method, f"{r.ratio:g}", f"{_fmt(r['mean'])} ± {_fmt(r['std'])}", r.seeds,
                     _fmt(r.delta_full, signed=True), _fmt(r.delta_random, signed=True),
                     _fmt(r.realised, ".3f"), _fmt(r.passes_rel, ".2f"), _fmt(r.seconds, ".0f"), r.provenance]
                    for _, r in table.iterrows()]
            lines += [f"### {FAMILY_TITLE[family]}", "",
                      tabulate(pivot.reset_index().values.tolist(),
                               headers=["method"] + [f"r={r:g}" for r in pivot.columns], tablefmt="github", disable_numparse=True), "",
                      tabulate(body, headers=["method", "ratio", f"{metric} (mean ± std)", "seeds", "Δ full",
                                              f"Δ {FAMILY_BASELINE[family]}", realised_name, "passes ×full",
                                              "seconds", "provenance"], tablefmt="github", disable_numparse=True), ""]
    lines += ["Columns: *kept* = realised fraction of training samples per epoch; *sparsity* = realised "
              "fraction of prunable weights that are zero at the end; *passes ×full* = sample forward/backward "
              "passes (training + the method's own scoring or proxy training) over the full-data cell's; "
              "*seconds* = training + scoring wall-clock per cell."]
    return "\n".join(lines) + "\n"


def build_leaderboard(tracking_uri: str, experiment: str, out_dir: Path | None) -> tuple[str, Path | None]:
    text = render(load_runs(tracking_uri, experiment), experiment)
    path = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{experiment}.md"
        path.write_text(text)
    return text, path
