"""``prunebench status`` on a sweep submitted through ``--executor slurm``: where no Slurm answers,
one note instead of the job array's task counts; a sweep never submitted to Slurm has no such
line. (The counts themselves, from a real ``squeue``: tests/test_cluster.py.)"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from benchmark.cli import main
from benchmark.sweeps.slurm_executor import ARRAY_TAG
from benchmark.sweeps.tracking import Tracker


def test_status_says_the_array_cannot_be_asked_where_there_is_no_squeue(tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                                     "tasks": ["fashion-mnist"], "methods": ["random"]}))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    tracker = Tracker(uri, "s")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python only: no squeue on this PATH
    assert main(["status", str(sweep), "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert "2 cells: 0 finished, 0 running, 0 failed, 2 pending" in out
    assert "Slurm" not in out  # never submitted through Slurm: nothing to say
    tracker.client.set_experiment_tag(tracker.experiment_id, ARRAY_TAG, "4242:3")
    assert main(["status", str(sweep), "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Slurm job array 4242 (3 tasks): its tasks' states are unknown here (squeue is not on this machine's "
        "PATH); run `prunebench status` where Slurm answers, or `squeue -r -j 4242` on the cluster")
