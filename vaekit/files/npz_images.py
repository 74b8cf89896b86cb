"""Images from an ``.npz`` file, read from the zip member in bounded row blocks.

An ``.npz`` file is a zip archive of ``.npy`` members.  Its array is never handed to
:func:`numpy.load`: the member's ``.npy`` header is read first (its length bounded by
:data:`MAX_NPY_HEADER_BYTES`, every parsing error a :class:`DataError`), the declared
shape and type are checked, and only then are pixels read, ``rows * row_bytes`` at a
time.  So a small file that inflates to gigabytes (a zip bomb: a 7 MB file of 25
million zero images) costs one block of memory when scoring or compressing
(:func:`iter_npz_blocks`), and a whole-array load (:func:`read_npz_images`, used by
``vaekit fit`` and ``vaekit report``) is refused above :data:`MAX_NPZ_ARRAY_BYTES`
before anything is allocated.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

import numpy as np

from ..errors import DataError

# Largest image read (pixels per image, 4096 x 4096): the size is read from the file's
# header and checked before any pixel is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096
# Longest ``.npy`` header accepted.  numpy writes ~128 bytes (padded to 64); the
# header is a Python literal, so a long one is only good for tripping its parser.
MAX_NPY_HEADER_BYTES = 4096
# Most bytes one whole-array read may allocate (``vaekit fit``, ``vaekit report``):
# 4 GiB, e.g. 5 million 28x28 grayscale or 1.4 million 32x32 RGB uint8 images.
# Larger image sets are split into several .npz files (fit samples across them).
MAX_NPZ_ARRAY_BYTES = 4 * 2**30
# Most bytes of pixels read at once when streaming (scoring, compression).
BLOCK_BYTES = 64 * 2**20
# What reading a damaged or unusual zip member can raise.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
                NotImplementedError, RuntimeError, struct.error)


def _key(path: str, archive: zipfile.ZipFile) -> str:
    names = archive.namelist()
    keys = [n[:-4] for n in names if n.endswith(".npy")]
    for key in ("X", "data"):
        if key + ".npy" in names:
            return key
    raise DataError(f"no array named 'X' or 'data' (found {keys})", file=path)


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise EOFError(f"the array ends after {len(data)} of {n} bytes")
    return data


def _header(path: str, fh: IO[bytes], key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a ``.npy`` member, its length bounded first."""
    fmt = np.lib.format
    magic = _read_exact(fh, fmt.MAGIC_LEN)
    if magic[:-2] != fmt.MAGIC_PREFIX or magic[-2] not in (1, 2, 3):
        raise DataError(f"array {key!r} is not a .npy array", file=path)
    width = 2 if magic[-2] == 1 else 4
    raw_length = _read_exact(fh, width)
    length = int.from_bytes(raw_length, "little")
    if length > MAX_NPY_HEADER_BYTES:
        raise DataError(f"array {key!r} has a .npy header of {length} bytes, over the bound "
                        f"of {MAX_NPY_HEADER_BYTES}", file=path)
    text = _read_exact(fh, length)
    # Hand numpy its own header back (read_array_header_1_0 for 1.0; 2.0 reads 3.0 too
    # once the version byte says 2: the layouts only differ in the text's encoding).
    version = bytes([magic[-2] if magic[-2] != 3 else 2])
    buffer = io.BytesIO(magic[:-2] + version + magic[-1:] + raw_length + text)
    fmt.read_magic(buffer)
    read = fmt.read_array_header_1_0 if magic[-2] == 1 else fmt.read_array_header_2_0
    try:
        shape, fortran, dtype = read(buffer, max_header_size=MAX_NPY_HEADER_BYTES + 1)
    except Exception as exc:  # noqa: BLE001 - the parser of a literal raises anything
        # (ValueError, SyntaxError, tokenize.TokenError, RecursionError, MemoryError...)
        raise DataError(f"array {key!r} has a broken .npy header ({type(exc).__name__})",
                        file=path) from None
    if dtype.hasobject:
        raise DataError(f"array {key!r} holds Python objects ({dtype}); images are numbers",
                        file=path)
    return tuple(int(v) for v in shape), bool(fortran), dtype


def _check_shape(path: str, key: str, shape: tuple[int, ...], dtype: np.dtype,
                 member_size: int, size: tuple[int, int] | None) -> None:
    if len(shape) not in (3, 4) or not shape[0]:
        raise DataError(f"expected images shaped (N, H, W[, C]), got {shape}", file=path)
    per_image = shape[1:]
    if np.prod(per_image, dtype=np.float64) > 4 * MAX_IMAGE_PIXELS:
        raise DataError(f"images of shape {per_image} are over the bound of {MAX_IMAGE_PIXELS} "
                        "pixels (4 channels) per image", file=path)
    declared = np.prod(shape, dtype=np.float64) * dtype.itemsize
    if declared > member_size:
        raise DataError(f"array {key!r} declares {shape} ({declared:.0f} bytes), more than "
                        "the file holds", file=path)
    # (H, W) under each layout the shape allows: NHW, NHWC, NCHW.
    sizes = {per_image[:2]} if len(per_image) == 2 else {per_image[:2], per_image[1:]}
    if size is not None and tuple(size) not in sizes:
        raise DataError(f"images of shape {per_image}; the model expects {size[0]}x{size[1]} "
                        "(height x width)", file=path)


def iter_npz_blocks(path: str, *, max_rows: int, size: tuple[int, int] | None = None,
                    whole: bool = False) -> Iterator[np.ndarray]:
    """The images of an ``.npz`` file (array ``X`` or ``data``), in blocks of rows.

    Parameters
    ----------
    path : str
    max_rows : int
        Most images per block; a block also holds at most :data:`BLOCK_BYTES` of
        pixels (at least one image).
    size : (height, width), optional
        The size the images must have (a fitted model's), checked from the header.
    whole : bool
        Yield the whole array as one block, after checking that it takes at most
        :data:`MAX_NPZ_ARRAY_BYTES`.  Also how an array stored in Fortran order is
        read (its rows are not contiguous), under the same bound.

    Raises
    ------
    DataError
        Not a zip of ``.npy`` arrays, no ``X`` / ``data``, a broken or over-long
        header, Python objects, a shape that is not images (or not the model's),
        more bytes declared than the member holds, a truncated array, or a whole
        read over :data:`MAX_NPZ_ARRAY_BYTES`; all before the pixels are allocated.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            key = _key(path, archive)
            with archive.open(key + ".npy") as fh:
                shape, fortran, dtype = _header(path, fh, key)
                _check_shape(path, key, shape, dtype, archive.getinfo(key + ".npy").file_size,
                             size)
                row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
                total = shape[0] * row_bytes
                if whole or fortran:
                    if total > MAX_NPZ_ARRAY_BYTES:
                        raise DataError(
                            f"array {key!r} of {shape} takes {total} bytes, over the bound of "
                            f"{MAX_NPZ_ARRAY_BYTES // 2**30} GiB for one array read whole; "
                            "split the images into several .npz files", file=path)
                    if fortran:
                        array = np.frombuffer(bytearray(_read_exact(fh, total)), dtype)
                        array = array.reshape(shape[::-1]).transpose()
                        yield from (array,) if whole else _blocks(array, max_rows, row_bytes)
                        return
                    step = shape[0]
                else:
                    step = max(1, min(max_rows, BLOCK_BYTES // max(row_bytes, 1)))
                for start in range(0, shape[0], step):
                    n = min(step, shape[0] - start)
                    block = np.frombuffer(bytearray(_read_exact(fh, n * row_bytes)), dtype)
                    yield block.reshape((n, *shape[1:]))
    except DataError:
        raise
    except MemoryError:
        raise DataError("not enough memory to read the images", file=path) from None
    except _READ_ERRORS as exc:
        raise DataError(f"not a readable .npz array file ({exc})", file=path) from None


def _blocks(array: np.ndarray, max_rows: int, row_bytes: int) -> Iterator[np.ndarray]:
    step = max(1, min(max_rows, BLOCK_BYTES // max(row_bytes, 1)))
    for start in range(0, len(array), step):
        yield array[start:start + step]


def read_npz_images(path: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """All images of an ``.npz`` file, at most :data:`MAX_NPZ_ARRAY_BYTES` (see above)."""
    return next(iter_npz_blocks(path, max_rows=0, size=size, whole=True))
