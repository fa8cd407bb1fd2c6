"""Peak memory of one cell, measured while it runs.

On CUDA the allocator's peak (``torch.cuda.max_memory_allocated``, reset when the cell
starts). On the CPU the peak resident set size of the process during the cell, sampled
from ``/proc/self/statm`` every ``interval`` seconds by a daemon thread (Linux); elsewhere
the process's lifetime peak from ``getrusage``, which is an upper bound when a process runs
several cells. Sampling can miss a spike shorter than the interval.
"""
from __future__ import annotations

import os
import threading

import torch

MB = 2**20


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _lifetime_peak_bytes() -> int:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.figures()``."""

    def __init__(self, device: torch.device, interval: float = 0.1):
        self.device, self.interval = device, interval
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if _rss_bytes() is not None:
            self.peak_rss = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_rss = max(self.peak_rss, _rss_bytes() or 0)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.peak_rss = max(self.peak_rss, _rss_bytes() or 0)
        else:
            self.peak_rss = _lifetime_peak_bytes()

    def figures(self) -> dict[str, float]:
        out = {"peak_rss_mb": self.peak_rss / MB}
        if self.device.type == "cuda":
            out["peak_device_mb"] = torch.cuda.max_memory_allocated(self.device) / MB
        return out
