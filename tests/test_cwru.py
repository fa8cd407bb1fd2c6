"""CWRU bearing tasks: exact window counts, leak-free segment splits, the .mat key rules and
errors, the simulator's physics (envelope spectrum at the defect frequency) and file layout,
the cwru-sim task end to end, and the 1-D CNN's feature convention."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from scipy.signal import hilbert, resample_poly

from benchmark.training.flops import weight_layer_flops
from benchmark.api.registry import get_task
from benchmark.api.task import DataFormatError, DataNotFoundError
from helpers_tiny import fit, one_cpu_thread  # noqa: F401  (autouse fixture)
from tasks.cwru import windows
from tasks.cwru.catalogue import CONDITIONS, LOCATIONS, Condition, file_number, label, shaft_hz
from tasks.cwru.matfile import read_drive_end
from tasks.cwru.models import CNN1d
from tasks.cwru.simulator import DRIVE_END, SimulatorSettings, simulate, write_cwru_file, write_simulated_set

FS = 12_000


# --- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, length, stride, expected", [
    (1023, 1024, 1024, 0), (1024, 1024, 1024, 1), (2047, 1024, 1024, 1), (2048, 1024, 1024, 2),
    (10_000, 1024, 1024, 9), (10_000, 1024, 512, 18), (5_000, 1000, 300, 14), (121_265, 1024, 1024, 118),
    (0, 256, 1, 0), (300, 256, 1, 45),
])
def test_window_count_is_exact(n, length, stride, expected):
    assert windows.window_count(n, length, stride) == expected
    starts = windows.window_starts(0, n, length, stride)
    brute = [s for s in range(0, n, stride) if s + length <= n]
    assert starts.tolist() == brute and len(brute) == expected


def test_gather_cuts_the_windows_at_their_starts():
    signal = np.arange(5000, dtype=np.float64)
    starts = windows.window_starts(100, 5000, 1000, 700)
    cut = windows.gather(signal, starts, 1000)
    assert cut.shape == (len(starts), 1000)
    for row, s in zip(cut, starts):
        assert np.array_equal(row, signal[s:s + 1000])


def test_normalise_gives_zero_mean_unit_std_per_window():
    x = np.random.default_rng(0).normal(3.0, 5.0, (4, 1024)) * np.array([[1], [10], [0.1], [2]])
    out = windows.normalise(x)
    assert np.allclose(out.mean(axis=1), 0, atol=1e-12) and np.allclose(out.std(axis=1), 1, atol=1e-6)


def covered(starts: np.ndarray, length: int) -> set[int]:
    return {int(i) for s in starts for i in range(s, s + length)}


@pytest.mark.parametrize("stride", [1024, 256])
def test_segment_split_shares_no_sample_between_splits(stride):
    n, length = 24_000, 1024
    train, val, test = windows.split_segments(n, length, stride)
    bounds = windows.segment_bounds(n, windows.FRACTIONS)
    assert bounds == [(0, 16_800), (16_800, 19_200), (19_200, 24_000)]
    for starts, (a, b) in zip((train, val, test), bounds):
        assert len(starts) == windows.window_count(b - a, length, stride)
        assert starts.min() >= a and starts.max() + length <= b
    sets = [covered(s, length) for s in (train, val, test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])


def test_random_window_protocol_is_the_leaky_one():
    n, length = 24_000, 1024
    train, val, test = windows.split_random_windows(n, length, 512)
    every = windows.window_starts(0, n, length, 512)
    assert sorted(np.concatenate([train, val, test]).tolist()) == every.tolist()
    assert (len(val), len(test)) == (round(0.1 * len(every)), round(0.2 * len(every)))
    # overlapping windows put the same samples in train and test: the leak the default avoids
    assert covered(train, length) & covered(test, length)
    # the assignment is fixed, whatever the caller's seed
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), windows.split_random_windows(n, length, 512)))


# --- catalogue --------------------------------------------------------------------------------------


def test_catalogue_file_numbers_and_labels():
    assert [file_number(c, 0) for c in CONDITIONS] == [97, 105, 169, 209, 118, 185, 222, 130, 197, 234]
    assert [file_number(c, 3) for c in CONDITIONS] == [100, 108, 172, 212, 121, 188, 225, 133, 200, 237]
    assert [label(c, 10) for c in CONDITIONS] == list(range(10))
    assert [LOCATIONS[label(c, 4)] for c in CONDITIONS] == ["normal"] + ["inner"] * 3 + ["ball"] * 3 + ["outer"] * 3
    assert shaft_hz(0) == pytest.approx(1797 / 60)
    with pytest.raises(ValueError, match="load"):
        file_number(CONDITIONS[0], 4)


# --- reading .mat files ------------------------------------------------------------------------------


def savemat(path: Path, **arrays) -> Path:
    scipy.io.savemat(str(path), {k: np.asarray(v) for k, v in arrays.items()})
    return path


def test_reads_the_key_matching_the_file_number(tmp_path):
    de, other = np.arange(50.0).reshape(-1, 1), -np.ones((40, 1))
    path = savemat(tmp_path / "98.mat", X098_DE_time=de, X098_FE_time=other, X099_DE_time=other, X098RPM=[[1772]])
    assert np.array_equal(read_drive_end(path), de.ravel())
    # 3-digit numbers are matched by value, whatever the zero-padding
    path = savemat(tmp_path / "97.mat", X97_DE_time=other, X0097_FE_time=de)
    assert np.array_equal(read_drive_end(path), other.ravel())


def test_falls_back_to_the_single_drive_end_key(tmp_path):
    de = np.linspace(-1, 1, 64).reshape(-1, 1)
    path = savemat(tmp_path / "105.mat", X097_DE_time=de, X097_FE_time=de * 2, X097RPM=[[1797]])
    assert np.array_equal(read_drive_end(path), de.ravel())


def test_two_drive_end_keys_none_matching_is_an_error_listing_them(tmp_path):
    path = savemat(tmp_path / "105.mat", X097_DE_time=np.ones((8, 1)), X099_DE_time=np.zeros((8, 1)))
    with pytest.raises(DataFormatError) as error:
        read_drive_end(path)
    message = str(error.value)
    assert str(path) in message and "X097_DE_time" in message and "X099_DE_time" in message


def test_no_drive_end_key_names_the_file(tmp_path):
    path = savemat(tmp_path / "105.mat", X105_FE_time=np.ones((8, 1)))
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + ".*X105_FE_time"):
        read_drive_end(path)


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        read_drive_end(tmp_path / "130.mat")
    assert str(tmp_path / "130.mat") in str(error.value) and "data_dir" in str(error.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_file_names_the_file(tmp_path, damage):
    good = savemat(tmp_path / "good.mat", X105_DE_time=np.random.default_rng(0).normal(size=(4000, 1)))
    path = tmp_path / "105.mat"
    contents = {"garbage": b"this is not a MATLAB file at all " * 10,
                "truncated": good.read_bytes()[: good.stat().st_size // 2], "empty": b""}[damage]
    path.write_bytes(contents)
    with pytest.raises(DataFormatError, match=re.escape(str(path))):
        read_drive_end(path)


def test_real_task_check_data_names_missing_files_and_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("PRUNEBENCH_DATA", raising=False)
    write_simulated_set(tmp_path, loads=(0,), settings=SimulatorSettings(seconds=0.2),
                        conditions=[c for c in CONDITIONS if c.location != "outer"])
    task = get_task("cwru")("smoke", data_dir=str(tmp_path))
    with pytest.raises(DataNotFoundError) as error:
        task.check_data()
    message = str(error.value)
    assert f"{tmp_path} lacks 130.mat, 197.mat, 234.mat (searched" in message
    assert "CWRU Bearing Data Center" in message and "cwru-sim" in message
    with pytest.raises(DataNotFoundError, match="PRUNEBENCH_DATA"):
        get_task("cwru")("smoke").check_data()


# --- the simulator ------------------------------------------------------------------------------------


def test_bearing_geometry_gives_the_published_defect_orders():
    # the CWRU data center's table for the drive-end SKF 6205-2RS JEM
    assert DRIVE_END.bpfi == pytest.approx(5.4152, abs=1e-4)
    assert DRIVE_END.bpfo == pytest.approx(3.5848, abs=1e-4)
    assert DRIVE_END.bsf == pytest.approx(4.7135, abs=1e-4)
    assert DRIVE_END.ftf == pytest.approx(0.3983, abs=1e-4)


def envelope_peak_hz(signal: np.ndarray, low: float = 40.0, high: float = 400.0) -> float:
    """Frequency of the largest line of the Hilbert envelope's spectrum between low and high."""
    envelope = np.abs(hilbert(signal))
    spectrum = np.abs(np.fft.rfft(envelope - envelope.mean()))
    freqs = np.fft.rfftfreq(len(signal), 1 / FS)
    band = (freqs >= low) & (freqs <= high)
    return float(freqs[band][np.argmax(spectrum[band])])


@pytest.mark.parametrize("location, order", [("inner", 5.4152), ("outer", 3.5848), ("ball", 4.7135)])
@pytest.mark.parametrize("load", [0, 3])
def test_envelope_spectrum_peaks_at_the_defect_frequency(location, order, load):
    drive_end, _ = simulate(Condition(location, 0.007), load, SimulatorSettings(seconds=2.0),
                            np.random.default_rng(load))
    expected = order * shaft_hz(load)
    assert envelope_peak_hz(drive_end) == pytest.approx(expected, abs=1.0)  # bins are 0.5 Hz


def test_fault_size_raises_the_vibration_and_normal_has_no_fault_line():
    settings, rng = SimulatorSettings(seconds=1.0), np.random.default_rng
    rms = [simulate(Condition("outer", size), 0, settings, rng(0))[0].std() for size in (0.007, 0.014, 0.021)]
    assert rms[0] < rms[1] < rms[2]
    normal = resample_poly(simulate(CONDITIONS[0], 0, settings, rng(0))[0], 1, 4)  # 48 kHz -> 12 kHz
    assert normal.std() < rms[0]
    bpfo = DRIVE_END.bpfo * shaft_hz(0)
    assert abs(envelope_peak_hz(normal) - bpfo) > 5  # no strike train in a healthy bearing


def test_simulated_files_have_exactly_the_cwru_layout_and_are_deterministic(tmp_path):
    settings = SimulatorSettings(seconds=0.5)
    paths = write_simulated_set(tmp_path / "a", loads=(1,), settings=settings, seed=3)
    assert sorted(p.name for p in paths) == sorted(f"{file_number(c, 1)}.mat" for c in CONDITIONS)
    for path in paths:
        number = int(path.stem)
        contents = scipy.io.loadmat(str(path))
        keys = {k for k in contents if not k.startswith("__")}
        assert keys == {f"X{number:03d}_DE_time", f"X{number:03d}_FE_time", f"X{number:03d}RPM"}
        samples = 24_000 if number in (97, 98, 99, 100) else 6000  # normals at 48 kHz, faults at 12 kHz
        for key in (f"X{number:03d}_DE_time", f"X{number:03d}_FE_time"):
            assert contents[key].shape == (samples, 1) and contents[key].dtype == np.float64
        assert contents[f"X{number:03d}RPM"].shape == (1, 1) and contents[f"X{number:03d}RPM"][0, 0] == 1772
    assert "X098_DE_time" in scipy.io.loadmat(str(tmp_path / "a" / "98.mat"))  # zero-padded like the real 98.mat
    # same seed, same files; a subset written alone equals the same files of the full set
    subset = write_simulated_set(tmp_path / "b", loads=(1,), settings=settings, seed=3, conditions=CONDITIONS[7:])
    for path in subset:
        assert np.array_equal(read_drive_end(path), read_drive_end(tmp_path / "a" / path.name))
    other = write_simulated_set(tmp_path / "c", loads=(1,), settings=settings, seed=4, conditions=CONDITIONS[7:8])
    assert not np.array_equal(read_drive_end(other[0]), read_drive_end(tmp_path / "a" / other[0].name))


# --- the tasks ----------------------------------------------------------------------------------------


def sim_task(tmp_path, profile="smoke", **options):
    return get_task("cwru-sim")(profile, data_dir=str(tmp_path), seconds=2.0, **options)


def test_cwru_sim_smoke_splits_have_the_expected_shapes_and_counts(tmp_path):
    task = sim_task(tmp_path)
    assert task.data_origin == "simulated" and get_task("cwru").data_origin == "real"
    splits = task.load_splits()
    # 24,000 samples: segments of 16,800 / 2,400 / 4,800 -> 16 / 2 / 4 windows per recording
    for split, per_class in ((splits.train, 16), (splits.val, 2), (splits.test, 4)):
        assert split.x.shape == (10 * per_class, 1, 1024) and split.x.dtype == torch.float32
        assert np.bincount(split.y.numpy(), minlength=10).tolist() == [per_class] * 10
    # read by the real loader: test window 0 is the normal recording's first test window, normalised
    # (the 48 kHz normal file resampled to 12 kHz: 96,000 samples in, 24,000 out)
    signal = read_drive_end(task.cache_dir() / "97.mat")
    assert len(signal) == 96_000
    resampled = resample_poly(signal, 1, 4)
    assert np.allclose(splits.test.x[0, 0].numpy(), windows.normalise(resampled[19_200:20_224]), atol=1e-5)
    assert task.data_provenance() == {
        "data.normal_sample_rate": "48000 Hz resampled to 12000 Hz (scipy.signal.resample_poly)"}
    assert splits.test.y[0] == 0 and splits.test.y[1] == 1  # classes interleaved: limits stay balanced

    limited = sim_task(tmp_path, train_limit=30).load_splits()
    assert np.bincount(limited.train.y.numpy(), minlength=10).tolist() == [3] * 10


def test_cwru_sim_options(tmp_path):
    four = sim_task(tmp_path, classes=4)
    splits = four.load_splits()
    assert four.num_classes == 4 and four.chance_level == 0.25
    assert np.bincount(splits.train.y.numpy()).tolist() == [16, 48, 48, 48]

    spectra = sim_task(tmp_path, fft=True, stride=512).load_splits()
    assert spectra.train.x.shape == (10 * windows.window_count(16_800, 1024, 512), 1, 513)
    assert (spectra.train.x >= 0).all()

    # cross-load: train / val from 0 hp (87.5% / 12.5%), test = whole 2 hp recordings
    cross = sim_task(tmp_path, test_load=2, test_limit=None)
    splits = cross.load_splits()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (10 * 20, 10 * 2, 10 * 23)
    assert (Path(cross.cache_dir()) / "99.mat").is_file()  # the 2 hp normal recording

    leaky = sim_task(tmp_path, split="random-window").load_splits()
    assert (len(leaky.train), len(leaky.val), len(leaky.test)) == (10 * 16, 10 * 2, 10 * 5)


# --- the 48 kHz normal-baseline files -------------------------------------------------------------------

TONE_HZ, ALIAS_PROBE_HZ = 1000.0, 9000.0  # 9 kHz lies above 6 kHz, the Nyquist frequency of 12 kHz


def write_tone_set(directory: Path, seconds: float = 2.0) -> None:
    """Load-0 files in the CWRU layout holding a 1 kHz tone: the normal one at 48 kHz (plus a
    9 kHz tone that plain decimation by 4 would fold onto 3 kHz), the faults at 12 kHz."""
    for condition in CONDITIONS:
        rate = 48_000 if condition.size is None else FS
        t = np.arange(int(seconds * rate)) / rate
        signal = np.sin(2 * np.pi * TONE_HZ * t)
        if condition.size is None:
            signal = signal + np.sin(2 * np.pi * ALIAS_PROBE_HZ * t)
        number = file_number(condition, 0)
        write_cwru_file(directory / f"{number}.mat", number, signal, signal, 1797.0)


def peak_hz(window: np.ndarray, rate: float = FS) -> float:
    spectrum = np.abs(np.fft.rfft(window))
    return float(np.fft.rfftfreq(len(window), 1 / rate)[np.argmax(spectrum)])


def test_normal_files_are_resampled_to_12_khz_so_a_tone_keeps_its_frequency(tmp_path):
    write_tone_set(tmp_path)
    task = get_task("cwru")("cpu", data_dir=str(tmp_path))
    splits = task.load_splits()
    y = splits.train.y.numpy()
    # 2 s of every class -> 24,000 samples at 12 kHz: 16 / 2 / 4 windows each, normal included
    assert np.bincount(y, minlength=10).tolist() == [16] * 10
    assert np.bincount(splits.test.y.numpy(), minlength=10).tolist() == [4] * 10
    bin_hz = FS / 1024
    normal, fault = splits.train.x[y == 0, 0].numpy(), splits.train.x[y == 1, 0].numpy()
    for window in (normal[0], normal[-1], fault[0]):
        assert abs(peak_hz(window) - TONE_HZ) <= bin_hz / 2
    # the anti-aliasing filter removed the 9 kHz tone instead of folding it onto 3 kHz
    spectrum = np.abs(np.fft.rfft(normal[3] * np.hanning(1024)))
    alias_bin, tone_bin = round((FS - ALIAS_PROBE_HZ) / bin_hz), round(TONE_HZ / bin_hz)
    assert spectrum[alias_bin - 2 : alias_bin + 3].max() < 1e-3 * spectrum[tone_bin]
    path, signal = task.recording(tmp_path, CONDITIONS[0], 0)
    assert path.name == "97.mat" and len(signal) == 24_000
    middle = np.arange(2_000, 22_000)  # the 1 kHz tone keeps its amplitude, away from the edges
    expected = np.sin(2 * np.pi * TONE_HZ * middle / FS)
    assert np.max(np.abs(signal[middle] - expected)) < 1e-2
    assert task.data_provenance()["data.normal_sample_rate"].startswith("48000 Hz resampled to 12000 Hz")


def test_normal_files_read_raw_on_request_as_the_literature_did(tmp_path):
    write_tone_set(tmp_path)
    task = get_task("cwru")("cpu", data_dir=str(tmp_path), resample_normal=False)
    splits = task.load_splits()
    y = splits.train.y.numpy()
    # 96,000 raw samples -> segments of 67,200 / 9,600 / 19,200 -> 65 / 9 / 18 windows of 1024
    counts = [windows.window_count(n, 1024, 1024) for n in (67_200, 9_600, 19_200)]
    assert counts == [65, 9, 18]
    assert np.bincount(y, minlength=10).tolist() == [65] + [16] * 9
    assert np.bincount(splits.val.y.numpy(), minlength=10).tolist() == [9] + [2] * 9
    # read as if at 12 kHz, the normal file's tones sit at a quarter of their frequencies
    spectrum = np.abs(np.fft.rfft(splits.train.x[y == 0, 0][0].numpy() * np.hanning(1024)))
    freqs = np.fft.rfftfreq(1024, 1 / FS)
    two_largest = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert np.allclose(two_largest, [TONE_HZ / 4, ALIAS_PROBE_HZ / 4], atol=FS / 1024 / 2)
    assert task.data_provenance() == {"data.normal_sample_rate": "48000 Hz read raw as 12000 Hz (not resampled)"}


def test_simulated_normal_recordings_match_the_faults_in_band_after_resampling(tmp_path):
    task = sim_task(tmp_path)
    settings = SimulatorSettings(seconds=2.0)
    normal, _ = simulate(CONDITIONS[0], 0, settings, np.random.default_rng(0))
    assert len(normal) == 96_000
    resampled = task.recording(task.resolve_dir(), CONDITIONS[0], 0)[1]
    # the noise density is the same at both rates: in band the normal recording carries the
    # 12 kHz noise level (0.05 g) and the shaft harmonics (0.04, 0.02, 0.01 g amplitudes)
    expected = np.sqrt(0.05 ** 2 + (0.04 ** 2 + 0.02 ** 2 + 0.01 ** 2) / 2)
    assert resampled.std() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("options, message", [
    ({"load": 4}, "load must be one of"), ({"classes": 3}, "classes must be one of"),
    ({"window": 100}, "window must be"), ({"split": "random"}, "split must be one of"),
    ({"test_load": 0}, "test_load"), ({"laod": 1}, "task options"), ({"fft": "yes"}, "fft"),
    ({"resample_normal": 1}, "resample_normal must be true or false"),
])
def test_bad_options_are_refused_with_the_reason(options, message):
    with pytest.raises(ValueError, match=message):
        get_task("cwru")("smoke", **options)


def test_recipe_overrides_still_apply():
    task = get_task("cwru")("cpu", epochs=3, load=1)
    assert task.recipe.epochs == 3 and task.options.load == 1


# --- the model ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1024, 513, 256])
def test_cnn1d_forward_and_feature_convention(length):
    torch.manual_seed(0)
    model = CNN1d(10, width=8, hidden=32).eval()
    x = torch.randn(5, 1, length)
    features = model.features(x)
    assert features.shape == (5, 32) and isinstance(model.head, torch.nn.Linear)
    assert torch.allclose(model(x), model.head(features))
    dense, masked = weight_layer_flops(model, x[:1])
    assert dense == masked > 0


def test_cnn1d_refuses_too_short_input():
    with pytest.raises(ValueError, match="at least 128"):
        CNN1d(4)(torch.randn(2, 1, 64))


def test_smoke_training_runs_through_the_trainer(tmp_path):
    task = sim_task(tmp_path)
    model, result = fit(task)
    assert model.head.out_features == 10
    assert all(np.isfinite(epoch["train_loss"]) for epoch in result.state.history)


def test_registering_the_tasks_imports_no_scipy():
    code = "import sys; from benchmark.api.registry import TASKS; TASKS.get('cwru-sim'); print('scipy' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_cell_records_the_resampling_in_its_mlflow_run(tmp_path):
    from mlflow.tracking import MlflowClient

    from benchmark.sweeps.cells import parse_sweep
    from benchmark.sweeps.runner import run_sweep
    from benchmark.sweeps.tracking import Tracker

    sweep = parse_sweep({"name": "cwru-provenance", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                         "tasks": [{"name": "cwru-sim", "options": {"seconds": 2.0},
                                    "data_dir": str(tmp_path / "sim")}],
                         "methods": ["random"]})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    report = run_sweep(sweep, Tracker(uri, experiment="cwru-provenance"), torch.device("cpu"), tmp_path / "cache",
                       quiet=True)
    assert report.ok and len(report.finished) == 2  # random at 0.5 and the full-data reference
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("cwru-provenance").experiment_id])
    for run in runs:
        assert run.data.tags["data.normal_sample_rate"] == "48000 Hz resampled to 12000 Hz (scipy.signal.resample_poly)"
