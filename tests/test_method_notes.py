"""A board states what each method ran as: every option (defaults included) from the cells'
logged settings, what its ratio means, and a marked fallback for cells logged before settings were."""
from __future__ import annotations

import json

from benchmark.api.registry import get_method
from benchmark.boards.leaderboard import build_board, load_runs
from benchmark.boards.markdown import render_markdown
from benchmark.boards.method_notes import FILLED_NOTE, NOT_RECORDED, notes_table
from benchmark.sweeps.cells import Cell
from benchmark.sweeps.tracking import Tracker

TAGS = {"data_origin": "real", "task_family": "vision", "metric": "accuracy", "chance_level": "0.1"}


def test_settings_are_the_declared_defaults_with_the_options_on_top():
    infobatch = get_method("infobatch")
    assert infobatch.settings({}) == {"delta": 0.875, "ratio_of": "well-learned"}
    assert infobatch.settings({"ratio_of": "dataset"}) == {"delta": 0.875, "ratio_of": "dataset"}
    assert get_method("forgetting").settings({})["never_learned"] == "zero"
    assert "well-learned" in infobatch.ratio_meaning({"ratio_of": "well-learned"})
    assert get_method("random").ratio_meaning({}) == "the fraction of training samples removed"
    assert get_method("magnitude").ratio_meaning({}) == "the fraction of prunable weights zeroed"


def _log(tracker: Tracker, method: str, options: dict, settings: dict | None, family: str, label: str = "",
         seeds: tuple[int, ...] = (0, 1)) -> None:
    for seed in seeds:
        cell = Cell("fashion-mnist", method, 0.5, seed, "cpu", label=label or method, method_options=tuple(options.items()))
        # as a cell of this version logs them (execute.CellPlan.params)
        extra = {"family": family} | ({"method_settings": json.dumps(settings, sort_keys=True),
                                       "method_ratio_means": get_method(method).ratio_meaning(settings)}
                                      if settings else {})
        run = tracker.start_cell(cell, "notes", extra, {**TAGS, "family": family, "provenance": "reference-code"})
        run.finish({"test_accuracy": 0.8 + 0.01 * seed, "train_seconds": 1.0, "scoring_seconds": 0.0,
                    "kept_fraction": 0.5, "total_sample_passes_rel": 0.5})


def test_the_board_lists_each_methods_settings_as_logged_or_marked_when_filled(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "notes")
    _log(tracker, "none", {}, None, "reference", label="full")
    _log(tracker, "infobatch", {"ratio_of": "dataset"}, {"delta": 0.875, "ratio_of": "dataset"}, "data",
         label="infobatch-dataset")
    _log(tracker, "forgetting", {}, None, "data")  # an older cell: no settings, no options
    # newer cells of the same method with the same settings: their own record wins over the filled one
    _log(tracker, "ucb", {}, None, "data")
    _log(tracker, "ucb", {}, get_method("ucb").settings({}), "data", seeds=(2,))
    # older, with options: logged flattened (method_options.margin), read back under the defaults
    _log(tracker, "aum", {"margin": "logit"}, None, "data")
    _log(tracker, "el2n", {"proxy_runs": 2, "score_epochs": 1}, None, "data")
    runs = load_runs(uri, "notes")
    headers, rows, filled = notes_table(runs)
    assert headers[0] == "method" and filled
    by_label = {row[0]: row for row in rows}
    assert sorted(by_label) == ["aum", "el2n", "forgetting", "infobatch-dataset", "ucb"]  # the reference has none
    assert by_label["ucb"][3] == "alpha=0.5, bonus=variance, c=1.0"  # no † : its newest cell logged them
    assert by_label["aum"][4] == "the fraction of training samples removed"  # never 'nan' 
    assert by_label["infobatch-dataset"][3] == "delta=0.875, ratio_of=dataset"
    assert by_label["infobatch-dataset"][4].startswith("the fraction of training samples skipped")
    assert by_label["forgetting"][3] == "class_balanced=False, never_learned=zero, proxy_epochs=None †"
    aum = {**get_method("aum").settings({}), "margin": "logit"}
    assert by_label["aum"][3] == ", ".join(f"{k}={v}" for k, v in sorted(aum.items())) + " †"
    el2n = by_label["el2n"][3]
    assert "proxy_runs=2," in el2n and "score_epochs=1" in el2n and el2n.endswith(" †")  # numbers, not '2'
    assert json.loads(runs[runs.label == "el2n"].method_options.iloc[0]) == {"proxy_runs": 2, "score_epochs": 1}
    # a method not installed where the board is built: its settings cannot be filled in
    plugin = runs[runs.label == "aum"].assign(method="not-installed-plugin", label="plugin")
    assert notes_table(plugin)[1][0][3] == NOT_RECORDED
    text = render_markdown(build_board(runs, "notes"))
    assert "## Methods on this board: settings as run" in text and FILLED_NOTE in text
    assert "delta=0.875, ratio_of=dataset" in text


def test_a_label_with_many_cells_of_one_record_is_read_once_per_record(tmp_path, monkeypatch):
    """The notes read each distinct record of a label once, not each cell (at 20,000 cells, reading
    every cell's settings made the notes most of the leaderboard's time)."""
    import pandas as pd

    from benchmark.boards import method_notes

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "notes")
    _log(tracker, "ucb", {}, None, "data")  # older cells: settings filled from the defaults
    _log(tracker, "ucb", {}, get_method("ucb").settings({}), "data", seeds=(2,))  # a cell's own record
    _log(tracker, "aum", {"margin": "logit"}, None, "data")
    runs = load_runs(uri, "notes")
    expected = notes_table(runs)[1]
    many = pd.concat([runs] * 500, ignore_index=True)  # 2,500 cells, the same 3 distinct records
    calls = []
    original = method_notes._settings_of
    monkeypatch.setattr(method_notes, "_settings_of", lambda row, cls: calls.append(1) or original(row, cls))
    assert notes_table(many)[1] == expected
    assert len(calls) == 3  # ucb: filled and its own record; aum: one
