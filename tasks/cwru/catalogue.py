"""Which CWRU file holds which bearing condition, and how conditions map to labels.

The 12 kHz drive-end set numbers its files by condition and motor load: each condition
has four consecutive numbers, one per load of 0, 1, 2 and 3 hp (e.g. inner race 0.007 in
is 105-108). Outer-race faults are the ones centred at 6 o'clock (in the load zone).
"""
from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 12_000  # Hz, the drive-end fault recordings of this set, and what the task feeds the model
#: Hz, the normal-baseline recordings 97-100: the CWRU rig recorded them at 48 kHz, unlike the
#: 12 kHz drive-end fault files (Smith and Randall 2015, Appendix A)
NORMAL_SAMPLE_RATE = 48_000
LOADS = (0, 1, 2, 3)  # motor load in hp
#: approximate shaft speed per load, as the CWRU data center lists it
SHAFT_RPM = {0: 1797.0, 1: 1772.0, 2: 1750.0, 3: 1730.0}
LOCATIONS = ("normal", "inner", "ball", "outer")  # the 4-class label set, in label order
FAULT_SIZES = (0.007, 0.014, 0.021)  # defect diameter in inches


@dataclass(frozen=True)
class Condition:
    """A bearing state: ``location`` is one of :data:`LOCATIONS`; ``size`` is the defect
    diameter in inches (None for the normal bearing)."""

    location: str
    size: float | None = None

    @property
    def name(self) -> str:
        return self.location if self.size is None else f"{self.location}-{self.size:.3f}"


NORMAL = Condition("normal")
#: the usual 10-class set, in label order: normal, then each location at each size
CONDITIONS = (NORMAL,) + tuple(
    Condition(location, size) for location in ("inner", "ball", "outer") for size in FAULT_SIZES
)
CLASS_SETS = (10, 4)  # 10: normal + 9 faults; 4: by location only

# the number of the 0 hp file of each condition; loads 1-3 follow consecutively
_FIRST_FILE = {
    NORMAL: 97,
    Condition("inner", 0.007): 105, Condition("inner", 0.014): 169, Condition("inner", 0.021): 209,
    Condition("ball", 0.007): 118, Condition("ball", 0.014): 185, Condition("ball", 0.021): 222,
    Condition("outer", 0.007): 130, Condition("outer", 0.014): 197, Condition("outer", 0.021): 234,
}


def file_number(condition: Condition, load: int) -> int:
    """The CWRU file number (``<number>.mat``) of ``condition`` at ``load`` hp."""
    if load not in LOADS:
        raise ValueError(f"CWRU load must be one of {LOADS} (hp), got {load!r}")
    return _FIRST_FILE[condition] + load


def label(condition: Condition, classes: int) -> int:
    """The class index of ``condition`` in the 10-class or the 4-class (by location) set."""
    if classes == 10:
        return CONDITIONS.index(condition)
    if classes == 4:
        return LOCATIONS.index(condition.location)
    raise ValueError(f"CWRU classes must be one of {CLASS_SETS}, got {classes!r}")


def recorded_rate(condition: Condition) -> int:
    """The sample rate in Hz at which the CWRU file of ``condition`` was recorded."""
    return NORMAL_SAMPLE_RATE if condition == NORMAL else SAMPLE_RATE


def shaft_hz(load: int) -> float:
    return SHAFT_RPM[load] / 60.0


# --- where the files are published ----------------------------------------------------------------

#: the CWRU Bearing Data Center's download address of ``<number>.mat``
CWRU_URL = "https://engineering.case.edu/sites/default/files/{number}.mat"


@dataclass(frozen=True)
class CatalogueFile:
    """One file of the 12 kHz drive-end set as the task uses it."""

    number: int
    condition: Condition
    load: int

    @property
    def name(self) -> str:
        return f"{self.number}.mat"

    @property
    def url(self) -> str:
        return CWRU_URL.format(number=self.number)

    @property
    def drive_end_key(self) -> str:
        return f"X{self.number:03d}_DE_time"

    @property
    def sample_rate(self) -> int:
        return recorded_rate(self.condition)


#: every file the task reads: normal 97-100, and inner race, ball and outer race (6 o'clock)
#: at 0.007 / 0.014 / 0.021 in, at loads 0-3 hp; 40 files, keyed by number
CATALOGUE = {entry.number: entry for entry in (
    CatalogueFile(file_number(condition, load), condition, load) for condition in CONDITIONS for load in LOADS)}
