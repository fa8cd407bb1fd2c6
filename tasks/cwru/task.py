"""The CWRU tasks: ``cwru`` on the real 12 kHz drive-end files, ``cwru-sim`` on simulated
files in the same layout, read by the same code.

Real data is found, in order, in: the task's ``data_dir`` (the folder holding ``97.mat``,
``105.mat``, ..., or the folder holding a ``cwru`` folder of them); ``$PRUNEBENCH_DATA/cwru``.

Task options. Besides the recipe fields, both tasks take these keyword options (in a
sweep: the task entry's ``options``, next to recipe overrides; they are part of the cell):

- ``load`` (0-3, default 0): motor load in hp of the recordings used;
- ``classes`` (10 or 4): normal + 9 faults, or normal / inner / ball / outer;
- ``window`` (default 1024, at least 256) and ``stride`` (default = window: non-overlapping);
- ``split``: ``segment`` (default; contiguous 70/10/20% of each recording, no sample
  shared between splits) or ``random-window`` (windows shuffled into 70/10/20%: leaky,
  for comparability with the literature only; see :mod:`.windows`);
- ``test_load`` (default none): cross-load evaluation; train and validation come from
  ``load`` (the first 87.5% / last 12.5% of each recording, i.e. 70:10), the test split
  is every window of the ``test_load`` recordings;
- ``fft`` (default false): the model sees each normalised window's FFT magnitude
  (``window // 2 + 1`` bins) instead of the waveform;
- ``resample_normal`` (default true): the normal-baseline files 97-100 were recorded at
  48 kHz, the fault files at 12 kHz; by default the normal recordings are resampled to
  12 kHz (scipy's polyphase resampler, ``scipy.signal.resample_poly``, whose FIR filter
  removes what lies above the new Nyquist frequency of 6 kHz before decimating), so that a
  window spans the same time and a line the same frequency in every class, and the normal
  class gets windows in proportion to its duration. ``false`` reads them raw, as 12 kHz
  (what Zhao et al.'s benchmark and several public loaders do), for comparison with papers
  that did so: the normal class then gets four times the windows, each a quarter of the time.
  Every cell records which was done (tag ``data.normal_sample_rate``).

``cwru-sim`` also takes ``seconds`` (length of each simulated recording, default 10) and
writes its files once into a cache: ``data_dir`` if given, else ``$PRUNEBENCH_CACHE`` or
``.prunebench-cache``, under ``cwru-sim/``.

They are constructor keywords rather than recipe fields because they choose the data, not
how to train; the harness passes a task entry's options to the constructor unchanged.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_task
from benchmark.api.task import DataFormatError, DataNotFoundError, Recipe, Split, Splits, Task

from . import windows
from .catalogue import CLASS_SETS, CONDITIONS, LOADS, NORMAL, SAMPLE_RATE, Condition, file_number, label, recorded_rate
from .matfile import FIX, read_drive_end

np = lazy_import("numpy")
torch = lazy_import("torch")
nn = lazy_import("torch.nn")

MIN_WINDOW = 256  # the CNN needs 128 inputs, and the FFT halves the window
MAX_WINDOW = 1 << 20  # samples (87 s at 12 kHz): longer than any recording's usable stretch

PROFILES = {
    "smoke": Recipe(model="cnn1d", epochs=2, batch_size=32, lr=0.05, augment=False, train_limit=320,
                    test_limit=128, model_options={"width": 8, "hidden": 32}),
    "cpu": Recipe(model="cnn1d", epochs=20, batch_size=64, lr=0.05, augment=False,
                  model_options={"width": 16, "hidden": 64}),
    # the training setting of Zhao et al.'s benchmark: Adam-type, lr 1e-3, batch 64, 100 epochs
    "paper": Recipe(model="cnn1d", epochs=100, batch_size=64, lr=1e-3, optimizer="adamw", weight_decay=1e-4,
                    augment=False, model_options={"width": 32, "hidden": 128}),
}


@dataclass(frozen=True)
class CwruOptions:
    """Which recordings, labels, windows and split a CWRU task uses (see the module docstring)."""

    load: int = 0
    classes: int = 10
    window: int = 1024
    stride: int | None = None
    split: str = "segment"
    test_load: int | None = None
    fft: bool = False
    resample_normal: bool = True

    def __post_init__(self):
        def integer(value):
            return isinstance(value, int) and not isinstance(value, bool)

        problems = []
        if self.load not in LOADS or not integer(self.load):
            problems.append(f"load must be one of {LOADS} (hp), got {self.load!r}")
        if self.test_load is not None and (self.test_load not in LOADS or not integer(self.test_load)
                                           or self.test_load == self.load):
            problems.append(f"test_load must be null or a load in {LOADS} other than load={self.load}, "
                            f"got {self.test_load!r}")
        if self.classes not in CLASS_SETS or not integer(self.classes):
            problems.append(f"classes must be one of {CLASS_SETS}, got {self.classes!r}")
        if not integer(self.window) or not MIN_WINDOW <= self.window <= MAX_WINDOW:
            problems.append(f"window must be an integer in [{MIN_WINDOW}, {MAX_WINDOW}] samples, got {self.window!r}")
        if self.stride is not None and (not integer(self.stride) or not 1 <= self.stride <= MAX_WINDOW):
            problems.append(f"stride must be null (= window) or an integer in [1, {MAX_WINDOW}], got {self.stride!r}")
        if self.split not in windows.PROTOCOLS:
            problems.append(f"split must be one of {windows.PROTOCOLS}, got {self.split!r}")
        if not isinstance(self.fft, bool):
            problems.append(f"fft must be true or false, got {self.fft!r}")
        if not isinstance(self.resample_normal, bool):
            problems.append(f"resample_normal must be true or false, got {self.resample_normal!r}")
        if problems:
            raise ValueError("CWRU task option(s): " + "; ".join(problems))

    @property
    def hop(self) -> int:
        return self.window if self.stride is None else self.stride

    @property
    def loads(self) -> tuple[int, ...]:
        return (self.load,) if self.test_load is None else (self.load, self.test_load)


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(CwruOptions))


def resample_to(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``signal`` sampled at ``rate`` Hz, resampled to ``target`` Hz by polyphase filtering
    (an anti-aliasing FIR filter, then decimation); amplitudes in the pass band are kept."""
    from math import gcd

    from scipy.signal import resample_poly  # heavy: only when a file is read

    common = gcd(rate, target)
    return resample_poly(signal, target // common, rate // common)


def _interleave(rank: np.ndarray) -> np.ndarray:
    """Order samples by their window rank within their recording, so that the first N
    samples (``train_limit``) cover every class evenly."""
    return np.argsort(rank, kind="stable")


class CwruTask(Task):
    """Shared by the real and the simulated task: everything but where the files come from."""

    family = "cwru"
    num_classes = 10  # the default; an instance with classes=4 has 4
    chance_level = 0.1
    profiles = PROFILES
    extra_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, profile: str = "cpu", data_dir: str | None = None, **overrides: Any):
        recipe_fields = [f.name for f in dataclasses.fields(Recipe)]
        task_fields = OPTION_NAMES + self.extra_options
        unknown = set(overrides) - set(recipe_fields) - set(task_fields)
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} for task {self.name!r}; "
                             f"task options: {list(task_fields)}; recipe fields: {recipe_fields}")
        self.options = CwruOptions(**{k: overrides.pop(k) for k in OPTION_NAMES if k in overrides})
        extra = {k: overrides.pop(k) for k in self.extra_options if k in overrides}
        super().__init__(profile, data_dir, **overrides)
        self.configure(**extra)
        self.num_classes = self.options.classes
        self.chance_level = 1.0 / self.options.classes

    def configure(self, **extra: Any) -> None:
        """Take the subclass's own options (see ``extra_options``)."""

    # --- where the files are ------------------------------------------------
    def needed_files(self) -> list[str]:
        return [f"{file_number(c, load)}.mat" for load in self.options.loads for c in CONDITIONS]

    def resolve_dir(self) -> Path:
        raise NotImplementedError

    def check_data(self) -> None:
        self.resolve_dir()

    # --- data ----------------------------------------------------------------
    def recording(self, directory: Path, condition: Condition, load: int) -> tuple[Path, np.ndarray]:
        """The drive-end signal of one file, at 12 kHz unless ``resample_normal`` is off."""
        path = directory / f"{file_number(condition, load)}.mat"
        signal = read_drive_end(path)
        rate = recorded_rate(condition)
        if rate != SAMPLE_RATE and self.options.resample_normal:
            signal = resample_to(signal, rate, SAMPLE_RATE)
        return path, signal

    def data_provenance(self) -> dict[str, str]:
        rate = recorded_rate(NORMAL)
        done = (f"{rate} Hz resampled to {SAMPLE_RATE} Hz (scipy.signal.resample_poly)"
                if self.options.resample_normal else f"{rate} Hz read raw as {SAMPLE_RATE} Hz (not resampled)")
        return {"data.normal_sample_rate": done}

    def window_starts(self, path: Path, n: int, role: str) -> list[np.ndarray]:
        """Start positions (train, val, test) of the windows of one recording; ``role`` is
        ``all`` (one load for every split), ``train-val`` or ``test`` (cross-load)."""
        o = self.options
        train, val, test = windows.FRACTIONS
        fractions = {"all": (train, val, test), "train-val": (train / (train + val), val / (train + val), 0.0),
                     "test": (0.0, 0.0, 1.0)}[role]
        starts = windows.split_windows(n, o.window, o.hop, o.split, fractions)
        for name, share, s in zip(("train", "val", "test"), fractions, starts):
            if share > 0 and len(s) == 0:
                raise DataFormatError(f"{path}: a recording of {n} samples leaves no {name} window of "
                                      f"{o.window} samples; use a smaller window")
        return starts

    def load_splits(self) -> Splits:
        o, directory = self.options, self.resolve_dir()
        roles = [(o.load, "all")] if o.test_load is None else [(o.load, "train-val"), (o.test_load, "test")]
        parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"train": [], "val": [], "test": []}
        for load, role in roles:
            for condition in CONDITIONS:
                path, signal = self.recording(directory, condition, load)
                for name, starts in zip(parts, self.window_starts(path, len(signal), role)):
                    x = windows.normalise(windows.gather(signal, starts, o.window))
                    parts[name].append((x, np.full(len(starts), label(condition, o.classes)), np.arange(len(starts))))
        splits = {name: self._to_split(chunks) for name, chunks in parts.items()}
        r = self.recipe
        if r.train_limit is not None:
            splits["train"] = Split(splits["train"].x[: r.train_limit], splits["train"].y[: r.train_limit])
        if r.test_limit is not None:
            splits["test"] = Split(splits["test"].x[: r.test_limit], splits["test"].y[: r.test_limit])
        return Splits(**splits)

    def _to_split(self, chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Split:
        x = np.concatenate([c[0] for c in chunks])
        y = np.concatenate([c[1] for c in chunks]).astype(np.int64)
        order = _interleave(np.concatenate([c[2] for c in chunks]))
        x, y = x[order], y[order]
        if self.options.fft:
            x = windows.fft_magnitude(x)
        return Split(torch.from_numpy(np.ascontiguousarray(x[:, None], dtype=np.float32)), torch.from_numpy(y))

    # --- model ---------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from .models import build_signal_model  # nn.Module subclasses: imports torch

        return build_signal_model(self.recipe.model, self.num_classes, **self.recipe.model_options)


@register_task("cwru")
class Cwru(CwruTask):
    """The real Case Western Reserve recordings."""

    data_origin = "real"
    data_summary = "CWRU 12 kHz drive-end .mat files (40; normals 97-100 recorded at 48 kHz, resampled to 12 kHz)"

    def candidate_dirs(self) -> list[Path]:
        roots = [Path(self.data_dir)] if self.data_dir else []
        if not roots and os.environ.get("PRUNEBENCH_DATA"):
            roots.append(Path(os.environ["PRUNEBENCH_DATA"]))
        return [d for root in roots for d in (root / "cwru", root)]

    def download(self, dest: Path) -> str:
        """All 40 catalogue files (every load), checked on arrival; see :mod:`.fetch`."""
        from .fetch import download_cwru

        return download_cwru(Path(dest))

    def resolve_dir(self) -> Path:
        files, missing = self.needed_files(), {}
        for directory in self.candidate_dirs():
            missing[directory] = [f for f in files if not (directory / f).is_file()]
            if not missing[directory]:
                return directory
        if not missing:
            raise DataNotFoundError(f"CWRU data: no data_dir given and $PRUNEBENCH_DATA is not set. {FIX}")
        closest = min(missing, key=lambda d: len(missing[d]))  # the folder the user most likely meant
        raise DataNotFoundError(
            f"CWRU files for load(s) {list(self.options.loads)} not found: {closest} lacks "
            f"{', '.join(missing[closest])} (searched: {', '.join(str(d) for d in missing)}). {FIX}"
        )


@register_task("cwru-sim")
class CwruSim(CwruTask):
    """Simulated recordings in the CWRU layout (see :mod:`.simulator`), written once into a
    cache and then read exactly as the real files are."""

    data_origin = "simulated"
    data_summary = "SIMULATED: physics-based recordings in the CWRU .mat layout (normals at 48 kHz, as the real ones)"
    extra_options = ("seconds",)
    seed: ClassVar[int] = 0  # the simulator's seed: one fixed stand-in data set

    def configure(self, seconds: float = 10.0) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 600:
            raise ValueError(f"cwru-sim option seconds must be a number in (0, 600], got {seconds!r}")
        self.seconds = float(seconds)

    def cache_dir(self) -> Path:
        root = Path(self.data_dir) if self.data_dir else Path(os.environ.get("PRUNEBENCH_CACHE", ".prunebench-cache"))
        from .simulator import VERSION

        return root / "cwru-sim" / f"v{VERSION}-{self.seconds:g}s-seed{self.seed}"

    def check_data(self) -> None:
        """Nothing to find: the files are simulated on first use."""

    def resolve_dir(self) -> Path:
        from .simulator import SimulatorSettings, write_simulated_set

        directory = self.cache_dir()
        write_simulated_set(directory, self.options.loads, SimulatorSettings(seconds=self.seconds), seed=self.seed)
        return directory
