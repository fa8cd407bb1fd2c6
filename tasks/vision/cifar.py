"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 50k/10k 32x32 colour images of 10 or 100 classes.

Data is the official "python version" (see :mod:`tasks.vision.cifar_format`), found, in
order, in: the task's ``data_dir`` (the folder holding ``cifar-10-batches-py`` /
``cifar-100-python``, or that folder itself); ``$PRUNEBENCH_DATA``.
``prunebench download cifar10 DIR`` fetches the official tarball, checks its MD5 and
extracts it into DIR.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import ClassVar

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_task
from benchmark.api.task import DataFormatError, DataNotFoundError, Recipe
from tasks.download import download

from .base import ImageTask

np = lazy_import("numpy")

URL = "https://www.cs.toronto.edu/~kriz/"

# The Data Diet recipe (Paul et al. 2021) for the paper profile; small CNNs elsewhere.
PROFILES = {
    "smoke": Recipe(model="small-cnn", epochs=2, batch_size=64, lr=0.05, train_limit=640, test_limit=256,
                    model_options={"width": 8}),
    "cpu": Recipe(model="small-cnn", epochs=15, batch_size=128, lr=0.05, model_options={"width": 32}),
    "paper": Recipe(model="resnet18", epochs=200, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9,
                    nesterov=True, weight_decay=5e-4, schedule="step", milestones=(0.3, 0.6, 0.8), gamma=0.2),
}


def safe_extract(archive: str | Path, dest: str | Path) -> None:
    """Extract a tarball into ``dest``, refusing members that could land outside it."""
    dest = Path(dest)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if member.name.startswith(("/", "\\")) or ".." in parts or not (member.isfile() or member.isdir()):
                raise DataFormatError(
                    f"{archive}: refusing to extract member {member.name!r} (absolute path, '..' or a link/device); "
                    "the official CIFAR tarballs hold only plain files and folders"
                )
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: a second line of defence
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)


class _CIFAR(ImageTask):
    """What CIFAR-10 and CIFAR-100 share; subclasses name their files."""

    in_channels = 3
    image_size = 32
    crop_padding = 4
    horizontal_flip = True
    profiles = PROFILES
    folder: ClassVar[str]
    tarball: ClassVar[str]
    tarball_md5: ClassVar[str]
    train_files: ClassVar[tuple[str, ...]]
    test_files: ClassVar[tuple[str, ...]]
    label_key: ClassVar[bytes]

    def candidate_dirs(self) -> list[Path]:
        roots = [Path(self.data_dir)] if self.data_dir else []
        if not roots and os.environ.get("PRUNEBENCH_DATA"):
            roots.append(Path(os.environ["PRUNEBENCH_DATA"]))
        # a root may be the folder itself or the folder that holds it
        return [d for root in roots for d in (root / self.folder, root)]

    def resolve_dir(self) -> Path:
        files = self.train_files + self.test_files
        for directory in self.candidate_dirs():
            if all((directory / f).is_file() for f in files):
                return directory
        searched = ", ".join(str(d) for d in self.candidate_dirs()) or "nowhere (no data_dir and no $PRUNEBENCH_DATA)"
        raise DataNotFoundError(
            f"{self.name} files {list(files)} (folder {self.folder}/) not found in: {searched}. "
            f"Fix: `prunebench download {self.name} DIR` (or extract {URL}{self.tarball} into DIR) "
            "and set data_dir (or $PRUNEBENCH_DATA) to DIR."
        )

    def check_data(self) -> None:
        self.resolve_dir()

    def read_arrays(self):
        from .cifar_format import read_cifar_batch  # its unpickler names numpy's classes: imports numpy

        directory = self.resolve_dir()

        def read(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
            parts = [read_cifar_batch(directory / f, self.label_key, self.num_classes) for f in files]
            return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

        return (*read(self.train_files), *read(self.test_files))

    @classmethod
    def download(cls, dest: str | Path) -> str:
        dest = Path(dest)
        if not all((dest / cls.folder / f).is_file() for f in cls.train_files + cls.test_files):
            archive = download(URL + cls.tarball, dest / cls.tarball, cls.tarball_md5)
            safe_extract(archive, dest)
        return f"{cls.name}: data in {dest}; pass data_dir: {dest} in the sweep or set PRUNEBENCH_DATA"


@register_task("cifar10")
class CIFAR10(_CIFAR):
    num_classes = 10
    chance_level = 1 / 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    folder = "cifar-10-batches-py"
    tarball = "cifar-10-python.tar.gz"
    tarball_md5 = "c58f30108f718f92721af3b95e74349a"  # published on the CIFAR page
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    label_key = b"labels"


@register_task("cifar100")
class CIFAR100(_CIFAR):
    num_classes = 100
    chance_level = 1 / 100
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    folder = "cifar-100-python"
    tarball = "cifar-100-python.tar.gz"
    tarball_md5 = "eb9058c3a382ffc7106e4002c42a8d85"  # published on the CIFAR page
    train_files = ("train",)
    test_files = ("test",)
    label_key = b"fine_labels"  # the 100-class labels; coarse_labels are the 20 superclasses
