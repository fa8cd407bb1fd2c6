"""Reader and writer of the CIFAR-10 / CIFAR-100 "python version" batch files.

Each file (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``;
``cifar-100-python/train``, ``test``) is a dict pickled by Python 2 with protocol 2.
Its keys are byte strings: ``b"data"`` is an N x 3072 uint8 array whose rows hold
the red, then green, then blue 32x32 plane in row-major order; ``b"labels"``
(CIFAR-10) or ``b"fine_labels"`` and ``b"coarse_labels"`` (CIFAR-100) are lists of
ints; ``b"batch_label"`` and ``b"filenames"`` are byte strings.

Unpickling can run arbitrary code, so these files are read with an unpickler that
only resolves the few globals a numpy array needs, never with plain ``pickle.load``.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Sequence

from benchmark.api.lazy import lazy_import
from benchmark.api.task import DataFormatError, DataNotFoundError

np = lazy_import("numpy")

try:  # numpy >= 2 moved the module; old pickles still name numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct

IMAGE_SHAPE = (3, 32, 32)
ROW_LENGTH = 3 * 32 * 32

# Everything a pickled uint8 array (and the dict and lists around it) refers to by name.
# Python 2 pickles name builtins "__builtin__"; the containers normally use opcodes.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{
        (module, container.__name__): container
        for module in ("builtins", "__builtin__")
        for container in (dict, list, tuple, set, frozenset)
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle: io.BufferedIOBase, path: Path):
        super().__init__(handle, encoding="bytes")  # Python 2 str -> bytes, as the files expect
        self.path = path

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataFormatError(
                f"{self.path}: refused to unpickle the global {module}.{name}; a CIFAR batch file only "
                "holds numpy arrays, lists and byte strings, so this file is not one (or was tampered with)"
            ) from None


def read_cifar_batch(
    path: str | Path, label_key: bytes = b"labels", num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (N, 3, 32, 32) and labels as int64 (N,) from one batch file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"CIFAR batch file {path} does not exist. Fix: download and extract the official python-version "
            "tarball (`prunebench download cifar10 DIR` or `prunebench download cifar100 DIR`) and point "
            "data_dir (or $PRUNEBENCH_DATA) at DIR."
        )
    try:
        with open(path, "rb") as handle:
            batch = _RestrictedUnpickler(handle, path).load()
    except DataFormatError:
        raise
    except Exception as error:  # truncated or corrupt: EOFError, UnpicklingError, ValueError, ...
        raise DataFormatError(f"{path}: not a readable CIFAR batch pickle ({type(error).__name__}: {error})") from error

    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataFormatError(f"{path}: expected a dict with keys b'data' and {label_key!r}, found {keys}")
    data, labels = batch[b"data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_LENGTH:
        described = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataFormatError(f"{path}: b'data' must be a uint8 N x {ROW_LENGTH} array, found {described}")
    try:
        values = np.asarray(labels)
    except (TypeError, ValueError, OverflowError, RecursionError) as error:
        raise DataFormatError(f"{path}: {label_key!r} is not a list of integers ({error})") from error
    if values.size and values.dtype.kind not in "iu":  # not silently truncate 1.5 or wrap 2**70
        raise DataFormatError(f"{path}: {label_key!r} must be a list of integers, found {values.dtype} values")
    labels = values.astype(np.int64)
    if labels.shape != (len(data),):
        raise DataFormatError(f"{path}: {len(data)} images but {label_key!r} has shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)):
        raise DataFormatError(
            f"{path}: labels must lie in [0, {num_classes}), found [{labels.min()}, {labels.max()}]"
        )
    # each row is the R plane, then G, then B, each 32 rows of 32 pixels: exactly C-order NCHW
    return data.reshape(len(data), *IMAGE_SHAPE), labels


class _Python2Pickler(pickle._Pickler):
    """Writes what Python 2 wrote: byte strings as STRING opcodes (Python 3 would call
    ``_codecs.encode``) and numpy's array reconstructor under its old module name."""

    _GLOBAL_NAMES = {
        _reconstruct: b"numpy.core.multiarray\n_reconstruct\n",
        np.ndarray: b"numpy\nndarray\n",
        np.dtype: b"numpy\ndtype\n",
    }

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:  # numpy's dtype state holds str; Python 2 had bytes there
        self.save_bytes(obj.encode("latin-1"))

    def save_global(self, obj, name=None) -> None:
        self.write(pickle.GLOBAL + self._GLOBAL_NAMES[obj])
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def write_cifar_batch(
    path: str | Path,
    data: np.ndarray,
    labels: Sequence[int],
    key: bytes = b"labels",
    coarse_labels: Sequence[int] | None = None,
    batch_label: bytes = b"training batch 1 of 1",
    filenames: Sequence[bytes] | None = None,
) -> None:
    """Write one batch file in the real format (used by tests and fixtures).

    ``data`` is uint8 N x 3072 (R plane, G plane, B plane). With ``key=b"fine_labels"``
    the file is a CIFAR-100 one and also gets ``b"coarse_labels"`` (zeros unless given:
    the reader does not use them)."""
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_LENGTH:
        raise ValueError(f"data must be uint8 N x {ROW_LENGTH}, got {data.dtype} {data.shape}")
    n = len(data)
    batch = {b"batch_label": batch_label, key: [int(label) for label in labels]}
    if key == b"fine_labels":
        batch[b"coarse_labels"] = [int(label) for label in (coarse_labels if coarse_labels is not None else [0] * n)]
    batch[b"data"] = np.ascontiguousarray(data)
    batch[b"filenames"] = list(filenames) if filenames is not None else [b"image_%05d.png" % i for i in range(n)]
    with open(path, "wb") as handle:
        _Python2Pickler(handle, protocol=2).dump(batch)
