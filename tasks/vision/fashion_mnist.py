"""Fashion-MNIST (Xiao et al. 2017): 60k/10k 28x28 grey images of 10 clothing classes.

Data is found, in order, in: the task's ``data_dir``; ``$PRUNEBENCH_DATA/fashion-mnist``;
Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).
``prunebench download fashion-mnist DIR`` fetches the official files with their MD5s.
"""
from __future__ import annotations

import os
from pathlib import Path

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_task
from benchmark.api.task import DataFormatError, DataNotFoundError, Recipe
from tasks.download import download

from .base import ImageTask
from .idx import read_idx, read_idx_shape, write_idx

np = lazy_import("numpy")

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# MD5s published by the Fashion-MNIST project for its gzipped files
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
IMAGE_SHAPE = (28, 28)


def write_synthetic(directory: str | Path, n_train: int = 200, n_test: int = 100, size: int = 28,
                    seed: int = 0) -> Path:
    """SIMULATED data in the four files' real format (gzipped IDX): random images and labels, for
    tests and fault probes of the loader and the runner, never for results. ``size`` other than 28
    writes a file the loader must refuse."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for part, n in (("train", n_train), ("test", n_test)):
        write_idx(directory / FILES[f"{part}_images"], rng.integers(0, 255, (n, size, size), dtype=np.uint8))
        write_idx(directory / FILES[f"{part}_labels"], rng.integers(0, 10, n, dtype=np.uint8))
    return directory


@register_task("fashion-mnist")
class FashionMNIST(ImageTask):
    num_classes = 10
    chance_level = 0.1
    mean = (0.2860,)
    std = (0.3530,)
    crop_padding = 2
    # cpu: 4.1 s a cell (the intercept of seconds against sample-passes over 51 cells of
    # results/fashion-mnist-cpu: mostly evaluation) and 1.9e-4 s a training sample-pass (the small CNN's
    # channels-last step in results/bench-speed.md: 1.466 s for 60 steps of 128 on a nearly idle machine)
    PASS_SECONDS = {"cpu": (4.1, 1.9e-4)}
    profiles = {
        "smoke": Recipe(model="small-cnn", epochs=2, batch_size=64, lr=0.05, train_limit=640, test_limit=256,
                        model_options={"width": 8}),
        "cpu": Recipe(model="small-cnn", epochs=6, batch_size=128, lr=0.05),
        "paper": Recipe(model="resnet18", epochs=200, batch_size=128, lr=0.1, schedule="step",
                        milestones=(0.3, 0.6, 0.8), gamma=0.2),
    }

    def candidate_dirs(self) -> list[Path]:
        if self.data_dir:
            return [Path(self.data_dir)]
        dirs = []
        if os.environ.get("PRUNEBENCH_DATA"):
            dirs.append(Path(os.environ["PRUNEBENCH_DATA"]) / "fashion-mnist")
        dirs.append(Path(DEBIAN_DIR))
        return dirs

    def resolve_dir(self) -> Path:
        for directory in self.candidate_dirs():
            if all((directory / f).is_file() for f in FILES.values()):
                return directory
        searched = ", ".join(str(d) for d in self.candidate_dirs())
        raise DataNotFoundError(
            f"Fashion-MNIST files {sorted(FILES.values())} not found in: {searched}. "
            "Fix: `apt-get install dataset-fashion-mnist`, or `prunebench download fashion-mnist DIR` "
            "and set data_dir (or $PRUNEBENCH_DATA) to it."
        )

    def check_data(self) -> None:
        """The files exist, their headers declare 28x28 images, and they hold enough images for
        every split (read before any compute)."""
        directory = self.resolve_dir()
        for part in ("train", "test"):
            path = directory / FILES[f"{part}_images"]
            shape = read_idx_shape(path)
            if len(shape) != 3 or shape[1:] != IMAGE_SHAPE:
                raise DataFormatError(f"{path}: holds images of shape {shape[1:]}; Fashion-MNIST images are "
                                      f"{IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} (is it another data set's file?)")
        self.check_split_sizes(self.split_sizes(*self.file_sizes()))

    def file_sizes(self) -> tuple[int, int]:
        directory = self.resolve_dir()
        return tuple(read_idx_shape(directory / FILES[f"{part}_images"])[0] for part in ("train", "test"))

    def read_arrays(self):
        directory = self.resolve_dir()
        arrays = {key: read_idx(directory / name) for key, name in FILES.items()}
        for part in ("train", "test"):
            images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
            image_file = directory / FILES[f"{part}_images"]
            if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
                raise DataFormatError(
                    f"{image_file}: holds {images.dtype} images of shape {images.shape[1:]}; Fashion-MNIST "
                    f"images are uint8 {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} (is it another data set's file?)"
                )
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataFormatError(
                    f"{directory}: {part} images {images.shape} and labels {labels.shape} do not match"
                )
            if labels.max(initial=0) >= self.num_classes:
                raise DataFormatError(f"{directory / FILES[part + '_labels']}: label {labels.max()} >= 10")
        return (
            arrays["train_images"][:, None], arrays["train_labels"].astype(np.int64),
            arrays["test_images"][:, None], arrays["test_labels"].astype(np.int64),
        )

    @staticmethod
    def download(dest: str | Path) -> str:
        for name, md5 in MD5.items():
            download(URL + name, Path(dest) / name, md5)
        return f"fashion-mnist: data in {dest}; pass data_dir: {dest} in the sweep"
