"""Reader of the IDX format used by MNIST and Fashion-MNIST (optionally gzipped).

Layout: two zero bytes, a type code, the number of dimensions, then one
big-endian int32 per dimension, then the data in C order.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

from benchmark.api.lazy import lazy_import
from benchmark.api.task import DataFormatError, DataNotFoundError

np = lazy_import("numpy")

_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}  # numpy dtype codes


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"IDX file {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:  # bad gzip stream
        raise DataFormatError(f"{path}: cannot be read as {'gzip' if opener is gzip.open else 'IDX'}: {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataFormatError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    if any(size < 0 for size in shape):
        raise DataFormatError(f"{path}: negative dimension in the IDX header {shape}")
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: numpy's product could overflow
    if len(raw) - header != expected:
        raise DataFormatError(
            f"{path}: header promises {shape} ({expected} bytes of data) but the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_shape(path: str | Path) -> tuple[int, ...]:
    """The shape an IDX file's header declares, reading only the header (cheap on a 30 MB file)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise DataFormatError(f"{path}: not an IDX file (bad magic number {head.hex()})")
            dims = handle.read(4 * head[3])
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{path}: cannot be read as {'gzip' if opener is gzip.open else 'IDX'}: {error}") from error
    if len(dims) < 4 * head[3]:
        raise DataFormatError(f"{path}: truncated IDX header")
    return struct.unpack(f">{head[3]}i", dims)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in IDX format, gzipped if the name ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(payload)
