"""A physics-based stand-in for the CWRU recordings, written in the exact CWRU file layout.

Nothing ships the CWRU data, so this lets the real loader run offline. Anything trained on
it is simulated, and the task that uses it says so (``data_origin = "simulated"``).

A localised bearing defect is struck once per passage of a rolling element; each strike
rings a structural resonance of the housing (a few kHz) that decays within about a
millisecond. The strike rate is a fixed multiple of the shaft speed set by the bearing's
geometry (BPFI, BPFO, and twice the ball spin frequency for a ball defect, which hits both
races once per spin). Defects that move relative to the load zone are amplitude-modulated:
an inner-race defect at the shaft rate, a ball defect at the cage rate; the outer-race
defect at 6 o'clock sits in the load zone and is not. Every recording also carries shaft
harmonics (imbalance, misalignment) and broadband sensor noise. Strike intervals jitter by
about 1% (rolling elements slip), and strike amplitudes grow with the defect size.

Like the real set, the normal-baseline recordings (97-100) are written at 48 kHz and the
fault recordings at 12 kHz, so the loader's resampling of the normal files runs on every
simulated run too. The sensor noise has the same density per hertz at both rates, so a normal
recording resampled to 12 kHz carries the noise level of a 12 kHz one.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmark.api.lazy import lazy_import

from .catalogue import CONDITIONS, NORMAL_SAMPLE_RATE, SAMPLE_RATE, SHAFT_RPM, Condition, file_number, shaft_hz

np = lazy_import("numpy")

#: bump when the simulated signals change, so cached files of an older simulator are not reused
VERSION = 2  # 2: normal recordings at 48 kHz, as the real ones


@dataclass(frozen=True)
class BearingGeometry:
    """Rolling-bearing geometry; the default is the drive-end SKF 6205-2RS JEM of the CWRU
    rig (inches, radians)."""

    balls: int = 9
    ball_diameter: float = 0.3126
    pitch_diameter: float = 1.537
    contact_angle: float = 0.0

    @property
    def _ratio(self) -> float:
        return self.ball_diameter / self.pitch_diameter * math.cos(self.contact_angle)

    # the defect frequencies as multiples of the shaft frequency
    @property
    def ftf(self) -> float:
        """Cage (fundamental train) frequency."""
        return 0.5 * (1.0 - self._ratio)

    @property
    def bpfo(self) -> float:
        return 0.5 * self.balls * (1.0 - self._ratio)

    @property
    def bpfi(self) -> float:
        return 0.5 * self.balls * (1.0 + self._ratio)

    @property
    def bsf(self) -> float:
        """Ball spin frequency, counted as CWRU does: twice the spin rate (4.7135 for the
        6205), since a ball defect strikes the inner and the outer race once per spin."""
        return self.pitch_diameter / self.ball_diameter * (1.0 - self._ratio ** 2)

    def defect_order(self, location: str) -> float:
        """Strikes per shaft revolution of a defect at ``location``."""
        orders = {"inner": self.bpfi, "outer": self.bpfo, "ball": self.bsf}
        if location not in orders:
            raise ValueError(f"no defect frequency for bearing location {location!r}; choose one of {sorted(orders)}")
        return orders[location]

    def modulation_order(self, location: str) -> float:
        """Rate (per shaft revolution) at which the defect passes through the load zone; 0 for
        the stationary outer race."""
        return {"inner": 1.0, "ball": self.ftf, "outer": 0.0}[location]


DRIVE_END = BearingGeometry()


@dataclass(frozen=True)
class SimulatorSettings:
    """Signal parameters; accelerations in g, like the CWRU files. The defaults give a
    normal recording of about 0.07 g RMS and 0.007 in defects whose strikes stand well
    clear of the noise, as in the real drive-end data."""

    seconds: float = 10.0
    sample_rate: int = SAMPLE_RATE  # of the fault recordings
    normal_sample_rate: int = NORMAL_SAMPLE_RATE  # of the normal-baseline recordings
    resonance_hz: float = 3_300.0  # drive-end structural resonance excited by the strikes
    damping: float = 0.05  # damping ratio: the ringing decays in ~1 ms
    fan_end_resonance_hz: float = 2_600.0
    fan_end_gain: float = 0.3  # strikes reach the fan-end sensor attenuated
    strike_g: float = 0.5  # strike amplitude of a 0.007 in defect; grows in proportion to the size
    strike_spread: float = 0.1  # relative scatter of strike amplitudes
    modulation_depth: float = 0.6  # load-zone modulation of rotating defects
    slip: float = 0.01  # relative jitter of strike intervals
    shaft_harmonics_g: tuple[float, ...] = (0.04, 0.02, 0.01)  # 1x, 2x, 3x shaft
    noise_g: float = 0.05
    geometry: BearingGeometry = DRIVE_END


def _ringing(settings: SimulatorSettings, resonance_hz: float) -> np.ndarray:
    """Impulse response of the resonance: a decaying sinusoid, cut after 8 time constants."""
    fs = settings.sample_rate
    tau = 1.0 / (settings.damping * 2 * math.pi * resonance_hz)
    t = np.arange(int(math.ceil(8 * tau * fs))) / fs
    return np.exp(-t / tau) * np.sin(2 * math.pi * resonance_hz * t)


def strike_train(condition: Condition, load: int, n: int, settings: SimulatorSettings,
                 rng: np.random.Generator) -> np.ndarray:
    """Strike amplitudes per sample (zero between strikes) of a defect at ``condition``."""
    fs, g = settings.sample_rate, settings.geometry
    fr = shaft_hz(load)
    period = fs / (g.defect_order(condition.location) * fr)  # samples between strikes
    count = int(n / period) + 2
    times = rng.uniform(0, period) + np.cumsum(period * (1 + settings.slip * rng.standard_normal(count)))
    times = times[times < n - 1]
    amplitude = settings.strike_g * condition.size / 0.007
    amplitude = amplitude * (1 + settings.strike_spread * rng.standard_normal(len(times)))
    rate = g.modulation_order(condition.location) * fr
    if rate > 0:
        phase = 2 * math.pi * rate * times / fs + rng.uniform(0, 2 * math.pi)
        amplitude = amplitude * (1 - settings.modulation_depth * (1 - np.cos(phase)) / 2)
    train = np.zeros(n)
    np.add.at(train, np.round(times).astype(np.int64), amplitude)
    return train


def recording_rate(condition: Condition, settings: SimulatorSettings) -> int:
    """Hz: ``normal_sample_rate`` for the normal baseline, ``sample_rate`` for a fault."""
    return settings.normal_sample_rate if condition.size is None else settings.sample_rate


def simulate(condition: Condition, load: int, settings: SimulatorSettings,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(drive-end, fan-end) accelerations in g of one recording, at the rate the real file
    of ``condition`` has (:func:`recording_rate`)."""
    fs = recording_rate(condition, settings)
    n = int(round(settings.seconds * fs))
    t = np.arange(n) / fs
    fr = shaft_hz(load)
    shaft = sum(a * np.sin(2 * math.pi * (k + 1) * fr * t + rng.uniform(0, 2 * math.pi))
                for k, a in enumerate(settings.shaft_harmonics_g))
    noise_g = settings.noise_g * math.sqrt(fs / settings.sample_rate)  # same density per Hz at any rate
    drive_end = shaft + noise_g * rng.standard_normal(n)
    fan_end = 0.5 * shaft + noise_g * rng.standard_normal(n)
    if condition.size is not None:
        strikes = strike_train(condition, load, n, settings, rng)
        drive_end = drive_end + np.convolve(strikes, _ringing(settings, settings.resonance_hz))[:n]
        fan_end = fan_end + settings.fan_end_gain * np.convolve(
            strikes, _ringing(settings, settings.fan_end_resonance_hz))[:n]
    return drive_end, fan_end


def write_cwru_file(path: str | Path, number: int, drive_end: np.ndarray, fan_end: np.ndarray, rpm: float) -> Path:
    """Write one recording as CWRU does: ``X<nnn>_DE_time`` and ``X<nnn>_FE_time`` as (n, 1)
    float64 columns and ``X<nnn>RPM`` as a 1x1 array, MATLAB v5. The file appears
    atomically, so concurrent writers of the same cache never expose half a file."""
    import scipy.io  # heavy: only when files are written

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        f"X{number:03d}_DE_time": np.asarray(drive_end, np.float64).reshape(-1, 1),
        f"X{number:03d}_FE_time": np.asarray(fan_end, np.float64).reshape(-1, 1),
        f"X{number:03d}RPM": np.array([[float(rpm)]]),
    }
    handle, temporary = tempfile.mkstemp(suffix=".mat.tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            scipy.io.savemat(stream, arrays, format="5")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_simulated_set(directory: str | Path, loads=(0, 1, 2, 3), settings: SimulatorSettings = SimulatorSettings(),
                        seed: int = 0, conditions=CONDITIONS) -> list[Path]:
    """Write ``<number>.mat`` for every condition at every load into ``directory``, skipping
    files already there. Each file has its own random stream (from ``seed`` and its number),
    so writing a subset gives the same files as writing them all."""
    paths = []
    for load in loads:
        for condition in conditions:
            number = file_number(condition, load)
            path = Path(directory) / f"{number}.mat"
            if not path.is_file():
                rng = np.random.default_rng([seed, number])
                drive_end, fan_end = simulate(condition, load, settings, rng)
                write_cwru_file(path, number, drive_end, fan_end, SHAFT_RPM[load])
            paths.append(path)
    return paths
