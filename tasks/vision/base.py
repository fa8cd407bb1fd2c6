"""Shared machinery of the image tasks: arrays in memory, a fixed validation carve-out,
batched augmentation and the model factory."""
from __future__ import annotations

from typing import ClassVar

from benchmark.api.lazy import lazy_import
from benchmark.api.task import Split, Splits, Task

from .augment import normalise, random_crop, random_hflip

np = lazy_import("numpy")
torch = lazy_import("torch")
nn = lazy_import("torch.nn")

#: every cell of a task shares one validation split, whatever its seed
VALIDATION_SPLIT_SEED = 20_240_901


def carve_validation(y: np.ndarray, n_val: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``n_val`` validation samples spread over classes in proportion."""
    rng = np.random.default_rng(VALIDATION_SPLIT_SEED)
    order = rng.permutation(len(y))
    if n_val <= 0:
        return np.sort(order), np.array([], dtype=np.int64)
    # per-class quotas by largest remainder, so the total is exactly n_val
    counts = np.bincount(y, minlength=num_classes)
    exact = counts * n_val / len(y)
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[: n_val - quota.sum()]] += 1
    val = np.concatenate([order[y[order] == c][: quota[c]] for c in range(num_classes)])
    val = np.sort(val)
    train = np.setdiff1d(np.arange(len(y)), val)
    return train, val


class ImageTask(Task):
    family = "vision"
    in_channels: ClassVar[int] = 1
    image_size: ClassVar[int] = 28
    mean: ClassVar[tuple[float, ...]] = (0.5,)
    std: ClassVar[tuple[float, ...]] = (0.5,)
    crop_padding: ClassVar[int] = 4
    horizontal_flip: ClassVar[bool] = True
    val_size: ClassVar[int] = 5000
    split_rule: ClassVar[str] = ("The validation split is a tenth of the training images (at most 5000) and "
                                 "train_limit / test_limit cut the files first: use a data folder with at least 10 "
                                 "training images and 1 test image, and limits that keep them.")

    def read_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x_train, y_train, x_test, y_test): uint8 NCHW images and int labels."""
        raise NotImplementedError

    def file_sizes(self) -> tuple[int, int] | None:
        """(training, test) images in the data files, from their headers; None if unknown."""
        return None

    def split_sizes(self, n_train_file: int, n_test_file: int) -> dict[str, int]:
        """The sizes :meth:`load_splits` gives from files of these sizes (the same rule)."""
        r = self.recipe
        n = min(n_train_file, r.train_limit) if r.train_limit is not None else n_train_file
        n_test = min(n_test_file, r.test_limit) if r.test_limit is not None else n_test_file
        n_val = min(self.val_size, n // 10)
        return {"train": n - n_val, "val": n_val, "test": n_test}

    def train_size(self) -> int | None:
        sizes = self.file_sizes()
        return None if sizes is None else self.split_sizes(*sizes)["train"]

    def load_splits(self) -> Splits:
        x_train, y_train, x_test, y_test = self.read_arrays()
        r = self.recipe
        if r.train_limit is not None:
            x_train, y_train = x_train[: r.train_limit], y_train[: r.train_limit]
        if r.test_limit is not None:
            x_test, y_test = x_test[: r.test_limit], y_test[: r.test_limit]
        n_val = min(self.val_size, len(y_train) // 10)
        train_idx, val_idx = carve_validation(y_train, n_val, self.num_classes)

        def split(x: np.ndarray, y: np.ndarray) -> Split:
            return Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)))

        return Splits(
            train=split(x_train[train_idx], y_train[train_idx]),
            val=split(x_train[val_idx], y_train[val_idx]),
            test=split(x_test, y_test),
        )

    def prepare_batch(self, x: torch.Tensor, train: bool, generator: torch.Generator | None) -> torch.Tensor:
        x = normalise(x, self.mean, self.std)
        if train and generator is not None:
            x = random_crop(x, self.crop_padding, generator)
            if self.horizontal_flip:
                x = random_hflip(x, generator)
        return x

    def build_model(self) -> nn.Module:
        from .models import build_image_model  # nn.Module subclasses: imports torch

        return build_image_model(
            self.recipe.model, self.in_channels, self.num_classes, self.image_size, **self.recipe.model_options
        )
