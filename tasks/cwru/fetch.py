"""Download the CWRU files of :data:`.catalogue.CATALOGUE` and check each on arrival.

The Bearing Data Center publishes no checksums, so a file is accepted only if it opens as a
MATLAB file, holds the drive-end array of its own number (``X097_DE_time`` in ``97.mat``) as the
loader reads it, and that array is a plausible recording: between :data:`MIN_SECONDS` and
:data:`MAX_SECONDS` long at the file's sample rate (the real ones last about 5 to 10 s). A bad
file is deleted with a message; the other files still download, and the command fails at
the end naming every file that did not arrive. Files already present are checked the same
way and kept when they pass.
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchmark.api.task import DataFormatError

from .catalogue import CATALOGUE, LOADS, CatalogueFile
from .matfile import DE_KEY, read_drive_end

MIN_SECONDS, MAX_SECONDS = 4.0, 60.0


def check_recording(path: Path, entry: CatalogueFile) -> None:
    """Raise DataFormatError unless ``path`` holds a plausible recording of file ``entry``."""
    import scipy.io

    try:
        keys = [name for name, _, _ in scipy.io.whosmat(str(path))]
    except Exception as error:  # scipy raises many types for a file that is not MATLAB
        raise DataFormatError(f"not a readable MATLAB file ({type(error).__name__}: {error})") from error
    if not any(DE_KEY.match(k) and int(DE_KEY.match(k)[1]) == entry.number for k in keys):
        raise DataFormatError(f"no {entry.drive_end_key} array (keys: {sorted(keys)}), so it is not CWRU file "
                              f"{entry.name}")
    signal = read_drive_end(path, entry.number)
    seconds = len(signal) / entry.sample_rate
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise DataFormatError(f"{entry.drive_end_key} holds {len(signal):,} samples, {seconds:.1f} s at "
                              f"{entry.sample_rate} Hz; a CWRU recording lasts {MIN_SECONDS:g}-{MAX_SECONDS:g} s")


def download_cwru(dest: Path, loads: tuple[int, ...] = LOADS) -> str:
    """Every catalogue file at ``loads`` into ``dest``; a summary line. Raises IOError naming
    the files that failed, after trying them all; stops at the first connection failure
    (offline: every other file would fail alike)."""
    from tasks.download import DownloadCheckError, RemoteFileError, fetch

    dest = Path(dest)
    entries = [e for e in CATALOGUE.values() if e.load in loads]
    failed: dict[str, str] = {}
    kept = fetched = 0
    for position, entry in enumerate(entries, start=1):
        path = dest / entry.name
        if path.is_file():
            try:
                check_recording(path, entry)
                kept += 1
                continue
            except DataFormatError as error:
                print(f"[{position}/{len(entries)}] {path} is bad ({error}); downloading it again", file=sys.stderr)
        print(f"[{position}/{len(entries)}] {entry.name}: {entry.condition.name}, {entry.load} hp", file=sys.stderr)
        try:
            fetch(entry.url, path, lambda arrived, entry=entry: check_recording(arrived, entry))
            fetched += 1
        except (DownloadCheckError, RemoteFileError) as error:  # this file only; the next may still be good
            print(f"    {error}", file=sys.stderr)
            failed[entry.name] = str(error)
        except ConnectionError as error:  # offline or the server is down: the other files would fail alike
            raise ConnectionError(f"{error} ({fetched} downloaded and {kept} already in {dest} are kept; run the "
                                  "same command again to fetch the rest)") from error
    if failed:
        raise DownloadCheckError(f"{len(failed)} of {len(entries)} CWRU files did not arrive or arrived bad "
                                 f"({', '.join(sorted(failed, key=lambda name: int(name.split('.')[0])))}); the first: "
                                 f"{next(iter(failed.values()))}")
    return (f"cwru: {len(entries)} files in {dest} ({fetched} downloaded, {kept} already there and checked); "
            f"pass data_dir: {dest} in the sweep, or set PRUNEBENCH_DATA to its parent if it is named cwru")
