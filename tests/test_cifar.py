"""CIFAR-10/100: the real pickle format, byte-exact pixels, the restricted unpickler, safe extraction."""
from __future__ import annotations

import importlib.util
import io
import os
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.api.registry import get_task
from benchmark.api.task import DataFormatError, DataNotFoundError
from tasks.vision.cifar import safe_extract
from tasks.vision.cifar_format import read_cifar_batch, write_cifar_batch

N = 12  # images per batch file


def write_cifar10(root: Path, batches: list[tuple[np.ndarray, list[int]]]) -> Path:
    """Five training batches then the test batch, as in cifar-10-batches-py."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (data, labels) in zip(names, batches):
        write_cifar_batch(folder / name, data, labels, batch_label=name.encode())
    return folder


def write_cifar100(root: Path, train: tuple, test: tuple) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, (data, labels) in (("train", train), ("test", test)):
        write_cifar_batch(folder / name, data, labels, key=b"fine_labels", coarse_labels=[l // 5 for l in labels])
    return folder


def random_batch(rng: np.random.Generator, n: int, num_classes: int) -> tuple[np.ndarray, list[int]]:
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, num_classes, n).tolist()


def pixel(row: np.ndarray, channel: int, r: int, c: int) -> int:
    """Pixel from a flat 3072 row by the documented layout: R plane, G plane, B plane, each row-major."""
    return int(row[channel * 1024 + r * 32 + c])


def test_cifar10_tiny_dir_loads_exact_counts_and_pixels(tmp_path):
    rng = np.random.default_rng(1234)
    batches = [random_batch(rng, N, 10) for _ in range(6)]
    write_cifar10(tmp_path, batches)

    task = get_task("cifar10")("smoke", data_dir=str(tmp_path))
    task.check_data()
    x_train, y_train, x_test, y_test = task.read_arrays()
    assert x_train.shape == (5 * N, 3, 32, 32) and x_train.dtype == np.uint8
    assert x_test.shape == (N, 3, 32, 32)
    assert y_train.tolist() == sum((labels for _, labels in batches[:5]), [])
    assert y_test.tolist() == batches[5][1]
    # batch 3 (0-based 2), image 7 sits at training index 2 * N + 7
    row = batches[2][0][7]
    for channel, r, c in [(0, 0, 0), (0, 5, 17), (1, 0, 31), (1, 31, 0), (2, 12, 3), (2, 31, 31)]:
        assert x_train[2 * N + 7, channel, r, c] == pixel(row, channel, r, c)
    assert x_test[4, 2, 20, 9] == pixel(batches[5][0][4], 2, 20, 9)

    splits = task.load_splits()
    assert len(splits.train) + len(splits.val) == 5 * N and len(splits.val) == (5 * N) // 10
    assert len(splits.test) == N
    assert splits.test.x.shape == (N, 3, 32, 32) and splits.test.x.dtype == torch.uint8
    assert splits.test.y.tolist() == batches[5][1]
    assert splits.test.x[4, 2, 20, 9].item() == pixel(batches[5][0][4], 2, 20, 9)


def test_cifar100_tiny_dir_uses_fine_labels(tmp_path):
    rng = np.random.default_rng(99)
    train, test = random_batch(rng, 3 * N, 100), random_batch(rng, N, 100)
    write_cifar100(tmp_path, train, test)

    # the folder itself works as data_dir too
    task = get_task("cifar100")("smoke", data_dir=str(tmp_path / "cifar-100-python"))
    x_train, y_train, x_test, y_test = task.read_arrays()
    assert x_train.shape == (3 * N, 3, 32, 32) and x_test.shape == (N, 3, 32, 32)
    assert y_train.tolist() == train[1] and y_test.tolist() == test[1]
    for i, channel, r, c in [(0, 0, 0, 0), (20, 1, 7, 30), (35, 2, 31, 31)]:
        assert x_train[i, channel, r, c] == pixel(train[0][i], channel, r, c)
    splits = task.load_splits()
    assert len(splits.train) + len(splits.val) == 3 * N and len(splits.test) == N
    assert task.num_classes == 100 and task.chance_level == pytest.approx(0.01)


def test_prunebench_data_env_is_searched(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    write_cifar100(tmp_path, random_batch(rng, N, 100), random_batch(rng, N, 100))
    monkeypatch.setenv("PRUNEBENCH_DATA", str(tmp_path))
    assert get_task("cifar100")("smoke").resolve_dir() == tmp_path / "cifar-100-python"


# --- real CIFAR images shipped by foolbox -------------------------------------------------------


def foolbox_cifar_pngs(prefix: str) -> tuple[np.ndarray, list[int]]:
    """uint8 (N, 3, 32, 32) images and file-name labels of foolbox's ``<prefix>_NN_<label>.png``."""
    Image = pytest.importorskip("PIL.Image", reason="Pillow reads the foolbox PNGs")
    spec = importlib.util.find_spec("foolbox")
    if spec is None:
        pytest.skip("foolbox==3.3.4 is not installed; it ships the 40 real CIFAR test images")
    data = Path(spec.submodule_search_locations[0]) / "data"
    pattern = re.compile(rf"^{prefix}_(\d\d)_(\d+)\.png$")
    found = sorted((int(m[1]), int(m[2]), path) for path in data.iterdir() if (m := pattern.match(path.name)))
    assert [i for i, _, _ in found] == list(range(20)), f"expected 20 {prefix} PNGs in {data}"
    images = []
    for _, _, path in found:
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == (32, 32)
            images.append(np.asarray(image).transpose(2, 0, 1))  # HWC -> CHW
    return np.stack(images), [label for _, label, _ in found]


def flat_rows(images: np.ndarray) -> np.ndarray:
    """The CIFAR row layout built by hand: all red pixels row by row, then green, then blue."""
    return np.stack([np.concatenate([img[ch].ravel() for ch in range(3)]) for img in images])


def test_real_cifar10_images_round_trip_byte_identical(tmp_path):
    images, labels = foolbox_cifar_pngs("cifar10")
    assert labels[:10] == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # the first labels of the real CIFAR-10 test set
    rows = flat_rows(images)
    # every training batch holds 4 of the 20 images; the test batch holds all 20
    write_cifar10(tmp_path, [(rows[4 * b: 4 * b + 4], labels[4 * b: 4 * b + 4]) for b in range(5)] + [(rows, labels)])

    task = get_task("cifar10")("cpu", data_dir=str(tmp_path))
    x_train, y_train, x_test, y_test = task.read_arrays()
    assert np.array_equal(x_test, images) and y_test.tolist() == labels
    assert np.array_equal(x_train, images) and y_train.tolist() == labels
    splits = task.load_splits()
    assert np.array_equal(splits.test.x.numpy(), images) and splits.test.y.tolist() == labels


def test_real_cifar100_images_round_trip_byte_identical(tmp_path):
    images, labels = foolbox_cifar_pngs("cifar100")
    assert labels[:3] == [49, 33, 72]  # the first fine labels of the real CIFAR-100 test set
    rows = flat_rows(images)
    write_cifar100(tmp_path, (rows, labels), (rows[::-1], labels[::-1]))

    x_train, y_train, x_test, y_test = get_task("cifar100")("cpu", data_dir=str(tmp_path)).read_arrays()
    assert np.array_equal(x_train, images) and y_train.tolist() == labels
    assert np.array_equal(x_test, images[::-1]) and y_test.tolist() == labels[::-1]


# --- what must be refused ---------------------------------------------------------------------


class _Payload:
    """Unpickling this runs ``os.system(command)``."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_restricted_unpickler_refuses_code_execution(tmp_path, protocol):
    marker = tmp_path / "pwned"
    evil = tmp_path / "data_batch_1"
    # str keys: under protocol 2 Python 3 would pickle bytes keys via _codecs.encode, refused first
    evil.write_bytes(pickle.dumps({"data": _Payload(f"touch {marker}"), "labels": [0]}, protocol=protocol))
    with pytest.raises(DataFormatError) as error:
        read_cifar_batch(evil)
    assert str(evil) in str(error.value) and "system" in str(error.value)
    assert not marker.exists(), "the malicious pickle's payload ran"


def test_missing_file_names_path_and_fix(tmp_path):
    missing = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    with pytest.raises(DataNotFoundError) as error:
        read_cifar_batch(missing)
    assert str(missing) in str(error.value) and "prunebench download" in str(error.value)

    task = get_task("cifar10")("smoke", data_dir=str(tmp_path))
    with pytest.raises(DataNotFoundError) as error:
        task.check_data()
    assert str(tmp_path) in str(error.value) and "prunebench download cifar10" in str(error.value)


def test_truncated_and_wrong_shaped_files_name_the_file(tmp_path):
    good = tmp_path / "test_batch"
    write_cifar_batch(good, np.zeros((N, 3072), np.uint8), [0] * N)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataFormatError, match=re.escape(str(truncated))):
        read_cifar_batch(truncated)

    wrong_shape = tmp_path / "wrong_shape"
    write_cifar_batch(wrong_shape, np.zeros((N, 3072), np.uint8), [0] * (N - 1))
    with pytest.raises(DataFormatError, match=re.escape(str(wrong_shape))):
        read_cifar_batch(wrong_shape)

    wrong_key = tmp_path / "cifar100_file"
    write_cifar_batch(wrong_key, np.zeros((N, 3072), np.uint8), [0] * N, key=b"fine_labels")
    with pytest.raises(DataFormatError, match="b'labels'"):
        read_cifar_batch(wrong_key)  # a CIFAR-100 file read as CIFAR-10

    out_of_range = tmp_path / "out_of_range"
    write_cifar_batch(out_of_range, np.zeros((N, 3072), np.uint8), [10] * N)
    with pytest.raises(DataFormatError, match=re.escape(str(out_of_range))):
        read_cifar_batch(out_of_range, num_classes=10)


def test_safe_extract_rejects_parent_traversal(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ["cifar-10-batches-py/readme.html", "cifar-10-batches-py/../../escaped.txt"]:
            payload = b"hello"
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    dest = tmp_path / "a" / "b"
    with pytest.raises(DataFormatError, match=re.escape("../../escaped.txt")):
        safe_extract(archive, dest)
    assert not (tmp_path / "a" / "escaped.txt").exists() and not (dest / "cifar-10-batches-py").exists()


def test_safe_extract_unpacks_a_clean_tarball(tmp_path):
    rng = np.random.default_rng(0)
    source = tmp_path / "src"
    write_cifar10(source, [random_batch(rng, 2, 10) for _ in range(6)])
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    safe_extract(archive, tmp_path / "data")
    get_task("cifar10")("smoke", data_dir=str(tmp_path / "data")).check_data()
