"""Read the drive-end vibration signal of one CWRU ``.mat`` file.

A file ``105.mat`` holds arrays keyed ``X105_DE_time`` (drive end), ``X105_FE_time``
(fan end) and ``X105RPM``, numbers zero-padded to three digits (``X097_...`` in
``97.mat``). A few real files also carry another recording's keys, and a few carry keys
whose number differs from the file's; so the key whose number equals the file's wins, and
otherwise the single ``*_DE_time`` key present. scipy is imported only when a file is read.
"""
from __future__ import annotations

import re
from pathlib import Path

from benchmark.api.lazy import lazy_import
from benchmark.api.task import DataFormatError, DataNotFoundError

np = lazy_import("numpy")

DE_KEY = re.compile(r"^X(\d+)_DE_time$")
FIX = ("Fix: prunebench download cwru DIR fetches the 40 files of the 12 kHz drive-end set from the CWRU "
       "Bearing Data Center (https://engineering.case.edu/bearingdatacenter) into DIR, keeping their numeric "
       "names (97.mat, 105.mat, ...); set the task's data_dir (or $PRUNEBENCH_DATA/cwru) to that folder; "
       "or use the task cwru-sim, which needs no download.")


def drive_end_key(keys: list[str], number: int | None, path: str | Path) -> str:
    """The key of the drive-end array of file number ``number`` among ``keys``."""
    de_keys = [k for k in keys if DE_KEY.match(k)]
    matching = [k for k in de_keys if number is not None and int(DE_KEY.match(k)[1]) == number]
    if len(matching) == 1:
        return matching[0]
    if len(matching) > 1:
        raise DataFormatError(f"{path}: several drive-end arrays {matching} match file number {number}")
    if len(de_keys) == 1:
        return de_keys[0]
    found = sorted(k for k in keys if not k.startswith("__"))
    if not de_keys:
        raise DataFormatError(f"{path}: no drive-end array (a key like X{number or 0:03d}_DE_time); keys: {found}")
    raise DataFormatError(
        f"{path}: {len(de_keys)} drive-end arrays {sorted(de_keys)} and none is numbered {number}; "
        f"cannot tell which recording is this file's (keys: {found})"
    )


def file_number_of(path: Path) -> int | None:
    """``105`` for ``.../105.mat``; None when the name is not a number."""
    stem = path.stem
    return int(stem) if stem.isascii() and stem.isdigit() else None  # isdigit alone takes '²'


def read_drive_end(path: str | Path, number: int | None = None) -> np.ndarray:
    """The drive-end signal of ``path`` as a 1-D float64 array. ``number`` defaults to the
    number in the file name."""
    import scipy.io  # heavy: only when a file is read

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"CWRU file {path} not found. {FIX}")
    number = file_number_of(path) if number is None else number
    try:
        contents = scipy.io.loadmat(str(path))
    except Exception as error:  # scipy raises ValueError, MatReadError, NotImplementedError (v7.3), ...
        raise DataFormatError(
            f"{path}: not a readable MATLAB v4/v5 .mat file ({type(error).__name__}: {error}); "
            "re-download it from the CWRU Bearing Data Center"
        ) from error
    key = drive_end_key(list(contents), number, path)
    array = np.asarray(contents[key])
    real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)  # not complex
    if array.ndim != 2 or 1 not in array.shape or array.size == 0 or not real:
        raise DataFormatError(f"{path}: {key} should be a non-empty real numeric (n, 1) column, "
                              f"got shape {array.shape} dtype {array.dtype}")
    signal = array.reshape(-1).astype(np.float64)
    if not np.all(np.isfinite(signal)):
        raise DataFormatError(f"{path}: {key} holds NaN or infinite values")
    return signal
