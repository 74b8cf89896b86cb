"""Error-bounded values: a chunk's integer columns, each with the smallest coder that
applies, laid out as one bytes section and back.

The model-aware half (which grid, which prediction) is :mod:`vaekit.fitted.bounded`;
the coders themselves are :mod:`.coders`.  Per column the writer takes the smallest
of (``FORMAT.md``, section "Bounded values"):

* the plain coders, which ignore the model: zstd, pcodec, order 0 (with a count table
  or adaptive, whichever its approximate length favours), and for a lossless float
  column pcodec of the floats;
* numeric grid indices: the Gaussian coder under the decoder's prediction, trying
  multiples of the predicted SDs (the two with the smallest approximate code length,
  measured exactly), so a decoder whose SDs are too wide or too narrow for the grid
  still codes close to what its means know;
* level codes: their ranks (0 = the predicted level) with zstd or order 0.

A section of codec version 6 and 7 is ``u32 crc | uvarint E | exceptions | per column
(u8 coder, uvarint length, bytes) | rANS words of all columns``; versions 3 to 5 had
``u32 E``, ``u32`` lengths and each column's words in its own bytes (still read).
The section carries a CRC32 of the integers, so a decode that went wrong (a decoder
whose floats differ on another machine) is reported, never returned.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import FileFormatError
from .coders import (
    CODER_ADAPTIVE,
    CODER_COUNTS,
    CODER_GAUSSIAN,
    CODER_NONE,
    CODER_PCODEC,
    CODER_PCODEC_FLOAT,
    CODER_RANK,
    CODER_RANK_COUNTS,
    CODER_ZSTD,
    RESIDUAL_RANGE,
    SD_FACTORS,
    ZSTD_LEVEL,
    Coded,
    adaptive_unpack,
    coarse_prediction,
    counts_pack,
    counts_unpack,
    gaussian_estimate,
    gaussian_estimates,
    gaussian_pack,
    gaussian_unpack,
    open_stack,
    order0_pack,
    pcodec_float_pack,
    pcodec_pack,
    pcodec_unpack,
    stack_words,
    zstd_pack,
    zstd_unpack,
)
from .varints import read_uvarints, uvarint

__all__ = ["CODER_NONE", "CODER_ZSTD", "CODER_GAUSSIAN", "CODER_RANK", "CODER_PCODEC",
           "CODER_COUNTS", "CODER_RANK_COUNTS", "CODER_PCODEC_FLOAT", "CODER_ADAPTIVE",
           "SD_FACTORS", "ZSTD_LEVEL", "SECTION_VERSION", "Coded", "plain_column",
           "gaussian_estimate", "gaussian_estimates", "RESIDUAL_RANGE", "coarse_prediction",
           "encode_column", "decode_column", "pack_section", "unpack_section", "Section",
           "integers_crc"]

# The codec version whose section layout pack_section writes (one rANS stack per
# chunk, uvarint lengths); unpack_section reads it and the layout of versions 3 to 5.
SECTION_VERSION = 6
# zstd is tried at this level first, and at ZSTD_LEVEL only when that comes within
# this multiple of the other plain coders' best.
_ZSTD_PROBE, _ZSTD_REACH = 3, 1.2
_ENTRY = np.dtype([("coder", "u1"), ("length", "<u4")])
_U32 = 4


def plain_column(q: np.ndarray, floats: bool = False) -> Coded:
    """The smallest coder of a column's integers that ignores the model (``CODER_NONE``
    for no cells).  ``floats``: the integers are float64 bit patterns (a lossless
    float column), and ``CODER_PCODEC_FLOAT`` competes too."""
    q = np.asarray(q, dtype=np.int64)
    if q.size == 0:
        return Coded(CODER_NONE, b"")
    others = [Coded(CODER_PCODEC, pcodec_pack(q)), order0_pack(q)]
    if floats:
        others.append(Coded(CODER_PCODEC_FLOAT, pcodec_float_pack(q)))
    # zstd at a fast level first: level 19 (the baseline's) is most of the plain
    # coders' time and only runs where zstd comes within reach of the others
    fast = Coded(CODER_ZSTD, zstd_pack(q, level=_ZSTD_PROBE))
    best = _smallest(others)
    if fast.size < _ZSTD_REACH * best.size:
        return _smallest([Coded(CODER_ZSTD, zstd_pack(q)), fast, best])
    return best


def _smallest(candidates: Sequence[Coded | None]) -> Coded:
    """The shortest candidate (the first among equals); None = not applicable."""
    best: Coded | None = None
    for c in candidates:
        if c is not None and (best is None or c.size < best.size):
            best = c
    assert best is not None
    return best


def _rank(codes: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """0 where the code is the predicted one; other codes keep their order after it."""
    return np.where(codes == predicted, 0, codes + (codes < predicted))


def _unrank(ranks: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.where(ranks == 0, predicted, np.where(ranks - 1 < predicted, ranks - 1, ranks))


def encode_column(q: np.ndarray, *, gaussian: tuple[np.ndarray, np.ndarray, np.ndarray]
                  | None = None, predicted: np.ndarray | None = None,
                  plain: Coded | None = None, measure: bool = False) -> Coded:
    """Code one column's integers with the smallest coder that applies.

    Parameters
    ----------
    q : ndarray of int64
        Grid indices (numeric columns) or level codes, one per stored cell.
    gaussian : (center, offset, sd), optional
        :func:`coarse_prediction` of each cell (numeric columns): tries
        ``CODER_GAUSSIAN``.
    predicted : ndarray of int64, optional
        The model's level for each cell (level columns): tries the rank coders.
    plain : Coded, optional
        :func:`plain_column` of ``q`` when the caller has it already (it does not
        depend on the prediction).
    measure : bool
        Measure the Gaussian coder's words even where its estimate says it wins
        (:func:`.coders.gaussian_pack`).

    Returns
    -------
    Coded
        The column's coder, own bytes and rANS parts (:class:`.coders.Coded`).
    """
    q = np.asarray(q, dtype=np.int64)
    best = plain if plain is not None else plain_column(q)
    if q.size == 0:
        return best
    if gaussian is not None:
        coded = gaussian_pack(q, *gaussian, against=best.size, measure=measure)
        best = _smallest([best, coded])
    if predicted is not None:
        ranks = _rank(q, np.asarray(predicted, dtype=np.int64))
        by_counts = counts_pack(ranks)
        best = _smallest([best, Coded(CODER_RANK, zstd_pack(ranks)),
                          None if by_counts is None
                          else by_counts._replace(coder=CODER_RANK_COUNTS)])
    return best


def decode_column(coder: int, data: bytes, n: int, *,
                  gaussian: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  predicted: np.ndarray | None = None, stack: Any = None) -> np.ndarray:
    """Inverse of :func:`encode_column` for ``n`` cells (the same predictions).

    ``stack``: the section's rANS stack (codec version 6, :func:`unpack_section`);
    None for a section of versions 3 to 5, whose columns hold their own words."""
    compact = stack is not None
    if coder == CODER_NONE:
        if n or data:
            raise FileFormatError("bounded values are corrupt (an empty column holds cells)")
        return np.zeros(0, dtype=np.int64)
    if coder == CODER_ZSTD:
        return zstd_unpack(data, n, compact)
    if coder == CODER_PCODEC:
        return pcodec_unpack(data, n)
    if coder == CODER_PCODEC_FLOAT:
        return pcodec_unpack(data, n, np.float64)
    if coder == CODER_COUNTS:
        return counts_unpack(data, n, stack)
    if coder == CODER_ADAPTIVE and compact:
        return adaptive_unpack(data, n, stack)
    if coder == CODER_GAUSSIAN and gaussian is not None:
        return gaussian_unpack(data, *gaussian, stack=stack)
    if coder == CODER_RANK and predicted is not None:
        return _unrank(zstd_unpack(data, n, compact), np.asarray(predicted, dtype=np.int64))
    if coder == CODER_RANK_COUNTS and predicted is not None:
        return _unrank(counts_unpack(data, n, stack), np.asarray(predicted, dtype=np.int64))
    raise FileFormatError(f"bounded values are corrupt (coder {coder} for this column)")


def integers_crc(columns: Sequence[np.ndarray]) -> int:
    """CRC32 of the columns' integers (int64, little-endian, in order)."""
    crc = 0
    for q in columns:
        crc = zlib.crc32(np.ascontiguousarray(q, dtype="<i8").tobytes(), crc)
    return crc


def pack_section(crc: int, exceptions: bytes, columns: Sequence[Coded],
                 words: bytes | None = None) -> bytes:
    """A section of codec version 6 and 7: ``u32 crc | uvarint E | exceptions (E) |
    (u8 coder, uvarint length, bytes) per column | the rANS words of every column``
    (``words``: :func:`.coders.stack_words` of the columns, when the caller has it)."""
    parts = [crc.to_bytes(_U32, "little"), uvarint(len(exceptions)), exceptions]
    for c in columns:
        parts += [bytes([c.coder]), uvarint(len(c.data)), c.data]
    parts.append(stack_words(list(columns)) if words is None else words)
    return b"".join(parts)


class Section:
    """An unpacked section: ``crc``, ``exceptions`` (bytes), ``columns`` (``(coder,
    bytes)`` per column), ``words`` (the rANS words at its end) and ``stack`` (a stack
    over them: codec version 6 and 7; None for versions 3 to 5).

    After every column is decoded, :meth:`finish` checks that the stack holds nothing
    more (a damaged or padded file otherwise leaves words behind unnoticed).
    """

    def __init__(self, crc: int, exceptions: bytes, columns: list[tuple[int, bytes]],
                 words: bytes = b"", stack: Any = None) -> None:
        self.crc, self.exceptions, self.columns = crc, exceptions, columns
        self.words, self.stack = words, stack

    def finish(self) -> None:
        if self.stack is not None and not self.stack.is_empty():
            raise FileFormatError("bounded values are corrupt (rANS words left over)")


def unpack_section(data: bytes, n_columns: int, n_cells: int,
                   version: int = SECTION_VERSION) -> Section:
    """Inverse of :func:`pack_section` (and the layout of codec versions 3 to 5) for a
    chunk of ``n_cells`` cells at most (the bound on its rANS words)."""
    if version >= SECTION_VERSION:
        return _unpack_compact(data, n_columns, n_cells)
    if len(data) < 2 * _U32:
        raise FileFormatError("bounded values are corrupt (shorter than their head)")
    crc, size = (int.from_bytes(data[k:k + _U32], "little") for k in (0, _U32))
    pos = 2 * _U32 + size
    if pos > len(data):
        raise FileFormatError("bounded values are corrupt (exceptions run past the end)")
    exceptions = data[2 * _U32:pos]
    columns = []
    for _ in range(n_columns):
        if pos + _ENTRY.itemsize > len(data):
            raise FileFormatError("bounded values are corrupt (fewer columns than the model)")
        coder, size = (int(v) for v in np.frombuffer(data, _ENTRY, 1, pos)[0])
        pos += _ENTRY.itemsize
        if pos + size > len(data):
            raise FileFormatError("bounded values are corrupt (a column runs past the end)")
        columns.append((coder, data[pos:pos + size]))
        pos += size
    if pos != len(data):
        raise FileFormatError("bounded values are corrupt (bytes after the last column)")
    return Section(crc, exceptions, columns)


def _unpack_compact(data: bytes, n_columns: int, n_cells: int) -> Section:
    if len(data) < _U32 + 1:
        raise FileFormatError("bounded values are corrupt (shorter than their head)")
    crc = int.from_bytes(data[:_U32], "little")
    (size,), pos = read_uvarints(data, _U32, 1)
    if pos + int(size) > len(data):
        raise FileFormatError("bounded values are corrupt (exceptions run past the end)")
    exceptions, pos = data[pos:pos + int(size)], pos + int(size)
    columns = []
    for _ in range(n_columns):
        if pos >= len(data):
            raise FileFormatError("bounded values are corrupt (fewer columns than the model)")
        coder = data[pos]
        (size,), pos = read_uvarints(data, pos + 1, 1)
        if pos + int(size) > len(data):
            raise FileFormatError("bounded values are corrupt (a column runs past the end)")
        columns.append((coder, data[pos:pos + int(size)]))
        pos += int(size)
    # rANS needs fewer than 32 bits per symbol, plus the final state (2 words)
    words = data[pos:]
    return Section(crc, exceptions, columns, words, open_stack(words, 4 * n_cells + 2))
