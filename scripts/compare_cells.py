"""Paired comparison of two method labels at one ratio, from the finished cells in MLflow.

    python scripts/compare_cells.py --tracking-uri URI --experiment NAME --task TASK \
        --ratio 0.7 emp emp-loss-only

Prints each side's mean over seeds, the mean paired difference (same task, ratio, seed),
the two-sided paired t-test p-value and the wins: the statistics of the leaderboard
(benchmark/boards/stats.py), for pairs the board does not put side by side.
"""
from __future__ import annotations

import argparse

from benchmark.boards.leaderboard import load_runs
from benchmark.boards.stats import compare_paired, summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--ratio", type=float, required=True)
    parser.add_argument("a", help="method label")
    parser.add_argument("b", help="method label to compare against")
    args = parser.parse_args()

    runs = load_runs(args.tracking_uri, args.experiment)
    runs = runs[(runs.task == args.task) & (runs.ratio == args.ratio)]
    sides = {label: runs[runs.label == label].set_index("seed")["value"] for label in (args.a, args.b)}
    for label, values in sides.items():
        if values.empty:
            raise SystemExit(f"no finished cell of {label!r} at ratio {args.ratio} on {args.task}")
        s = summarise(values)
        shown = ", ".join(f"seed {seed}: {value:.4f}" for seed, value in values.sort_index().items())
        print(f"{label}: mean {s.mean:.4f} over {s.n} seed(s) ({shown})")
    c = compare_paired(sides[args.a], sides[args.b])
    p = "no test (fewer than 2 common seeds)" if c.p_value is None else f"p={c.p_value:.3f}"
    print(f"{args.a} - {args.b}: {c.mean_diff:+.4f} over {c.n} common seed(s), {p}, "
          f"{args.a} won {c.wins}/{c.n}" + (" (within noise)" if c.within_noise else ""))


if __name__ == "__main__":
    main()
