"""Peak memory of a cell: a 200 MiB allocation inside the measured block shows in the peak,
and an allocation freed before the block does not."""
import time

import torch

from benchmark.training.memory import PeakMemory


def test_peak_rss_sees_an_allocation_freed_inside_the_block():
    with PeakMemory(torch.device("cpu"), interval=0.01) as peak:
        before = peak.peak_rss
        block = torch.ones(200 * 2**20 // 4)  # 200 MiB, touched
        time.sleep(0.1)
        del block
    grew = (peak.peak_rss - before) / 2**20
    assert 190 <= grew <= 260, grew
    figures = peak.figures()
    assert set(figures) == {"peak_rss_mb"} and figures["peak_rss_mb"] == peak.peak_rss / 2**20
