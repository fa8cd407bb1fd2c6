"""What each method on a board ran as: its settings (every option, defaults included), what its
ratio means and its provenance, read from the cells' logged params so a board states which rule
or variant produced its figures (e.g. forgetting's never-learned rule, InfoBatch's ratio)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

#: shown when a cell's settings cannot be told: logged before settings were, by a method not installed here
NOT_RECORDED = "not recorded (cells logged before settings were, by a method not installed here)"
#: what a family's ratio removes when the method is not installed where the board is built
FAMILY_RATIO = {"data": "the fraction of training samples removed", "model": "the fraction of prunable weights zeroed"}


@dataclass(frozen=True)
class MethodNote:
    label: str
    method: str
    family: str
    settings: str  # "k=v, k=v" or NOT_RECORDED
    ratio_means: str
    provenance: str
    from_current_code: bool  # settings filled with the current code's defaults (older cells)


def _settings_of(row: pd.Series, method_cls) -> tuple[dict | None, bool]:
    """(settings, whether they were filled from the current code's defaults)."""
    logged = row.get("method_settings")
    if isinstance(logged, str) and logged:
        try:
            return json.loads(logged), False
        except ValueError:
            pass
    explicit = row.get("method_options")  # older cells: their explicit options only (load_runs)
    if isinstance(explicit, str) and method_cls is not None:
        try:
            options = json.loads(explicit)
        except ValueError:
            return None, False
        if isinstance(options, dict):
            return method_cls.settings(options), True
    return None, False


def _method_class(name: str):
    from ..api.registry import METHODS

    try:
        return METHODS.get(name)
    except (KeyError, ValueError, ImportError):
        return None  # a plugin not installed here: the board still renders


def method_notes(runs: pd.DataFrame) -> list[MethodNote]:
    """One note per pruning method label on the board (the reference cells apart), in label order;
    a label whose cells ran with different settings lists each."""
    if runs.empty:
        return []
    pruned = runs[runs.family.isin(tuple(FAMILY_RATIO))]
    notes = []
    for label, group in sorted(pruned.groupby("label"), key=lambda item: item[0]):
        first = group.iloc[0]
        # the class is read only for cells that logged no settings (its module imports no torch)
        logged = group.get("method_settings", pd.Series([None] * len(group), index=group.index))
        recorded = logged.map(lambda v: isinstance(v, str) and bool(v)).all()
        method_cls = None if recorded else _method_class(first["method"])
        seen: dict[str, tuple[dict | None, bool, str]] = {}
        # one row per distinct record, in first-seen order: a label's thousands of cells share a few
        # (reading every row made the board's notes cost 17 CPU s at 20,000 cells)
        recorded_columns = [c for c in ("method_settings", "method_options", "method_ratio_means") if c in group]
        distinct = group.drop_duplicates(recorded_columns) if recorded_columns else group.iloc[:1]
        for _, row in distinct.iterrows():
            settings, filled = _settings_of(row, method_cls)
            meaning = row.get("method_ratio_means")
            if not isinstance(meaning, str) or not meaning:  # not logged (None, or NaN in a frame)
                meaning = (method_cls.ratio_meaning(settings) if method_cls is not None and settings is not None
                           else FAMILY_RATIO.get(first["family"], ""))
            key = json.dumps(settings, sort_keys=True, default=str)
            if key not in seen or (seen[key][1] and not filled):  # a cell's own record over a filled one
                seen[key] = (settings, filled, meaning)
        for settings, filled, meaning in seen.values():
            text = (NOT_RECORDED if settings is None
                    else ", ".join(f"{k}={v}" for k, v in sorted(settings.items())) or "no options")
            notes.append(MethodNote(label, first["method"], first["family"], text, meaning,
                                    first["provenance"] or "unknown", filled))
    return notes


def notes_table(runs: pd.DataFrame) -> tuple[list[str], list[list[str]], bool]:
    """(headers, rows, whether any settings came from the current code's defaults) for a board."""
    notes = method_notes(runs)
    rows = [[n.label, n.method, n.family, n.settings + (" †" if n.from_current_code else ""), n.ratio_means,
             n.provenance] for n in notes]
    return (["method", "registered as", "family", "settings", "ratio means", "provenance"], rows,
            any(n.from_current_code for n in notes))


FILLED_NOTE = ("†: the cells logged no settings, only the options they set; the other settings shown are the "
               "defaults of the code building this board (the cells' code_version tells which code ran).")
