"""Cut recordings into windows and split them into train / validation / test.

Windows are given by their start positions in the recording, so a split can be checked
sample by sample. Two protocols:

- ``segment`` (default): each recording is cut into contiguous segments (by default the
  first 70% for training, the next 10% for validation, the last 20% for test) and windows
  are cut inside each segment only, so no sample is shared between splits.
- ``random-window``: windows are cut over the whole recording and then assigned to the
  splits at random (the common protocol of Zhao et al.'s benchmark, offered for
  comparability). It LEAKS: neighbouring windows, and with a stride below the window
  length overlapping samples, land in different splits, so test accuracy is optimistic.
"""
from __future__ import annotations

from benchmark.api.lazy import lazy_import

np = lazy_import("numpy")

PROTOCOLS = ("segment", "random-window")
#: train / validation / test share of each recording
FRACTIONS = (0.7, 0.1, 0.2)
#: the random-window assignment is the same for every cell, whatever its seed
RANDOM_WINDOW_SEED = 20_240_906


def window_count(n: int, length: int, stride: int) -> int:
    """How many windows of ``length`` with ``stride`` fit in ``n`` samples."""
    return 0 if n < length else (n - length) // stride + 1


def window_starts(start: int, stop: int, length: int, stride: int) -> np.ndarray:
    """Start positions of the windows lying wholly inside ``[start, stop)``."""
    return start + stride * np.arange(window_count(stop - start, length, stride), dtype=np.int64)


def segment_bounds(n: int, fractions: tuple[float, ...]) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` segments of ``n`` samples in proportion to ``fractions``."""
    if any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    cuts = [0] + [int(round(n * c)) for c in np.cumsum(fractions)[:-1]] + [n]
    return list(zip(cuts[:-1], cuts[1:]))


def split_segments(n: int, length: int, stride: int, fractions=FRACTIONS) -> list[np.ndarray]:
    """Window starts per split, windows never crossing a segment boundary."""
    return [window_starts(a, b, length, stride) for a, b in segment_bounds(n, fractions)]


def split_random_windows(n: int, length: int, stride: int, fractions=FRACTIONS,
                         seed: int = RANDOM_WINDOW_SEED) -> list[np.ndarray]:
    """Window starts per split, windows cut over the whole recording then shuffled into the
    splits (leaky; see the module docstring). The counts are ``round(k * fraction)`` for
    every split but the first, which takes the rest."""
    starts = window_starts(0, n, length, stride)
    order = np.random.default_rng(seed).permutation(len(starts))
    sizes = [int(round(len(starts) * f)) for f in fractions[1:]]
    sizes.insert(0, len(starts) - sum(sizes))
    bounds = np.cumsum([0] + sizes)
    return [np.sort(starts[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def split_windows(n: int, length: int, stride: int, protocol: str, fractions=FRACTIONS) -> list[np.ndarray]:
    if protocol == "segment":
        return split_segments(n, length, stride, fractions)
    if protocol == "random-window":
        return split_random_windows(n, length, stride, fractions)
    raise ValueError(f"unknown CWRU split protocol {protocol!r}; choose one of {PROTOCOLS}")


def gather(signal: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The windows at ``starts`` as a ``(len(starts), length)`` array."""
    return signal[starts[:, None] + np.arange(length)]


def normalise(windows: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Each window to zero mean and unit standard deviation: the classifier then sees the
    waveform's shape, not the sensor gain or the overall vibration level of a run."""
    centred = windows - windows.mean(axis=-1, keepdims=True)
    return centred / (centred.std(axis=-1, keepdims=True) + eps)


def fft_magnitude(windows: np.ndarray) -> np.ndarray:
    """One-sided amplitude spectrum, ``length // 2 + 1`` bins; orthonormal scaling keeps the
    values of a unit-variance window of order one."""
    return np.abs(np.fft.rfft(windows, axis=-1, norm="ortho"))
