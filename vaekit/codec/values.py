"""Error-bounded values: integer grid indices coded per column, bytes in, bytes out.

The model-aware half (which grid, which prediction) is :mod:`vaekit.fitted.bounded`;
this module only turns integer columns into bytes and back, choosing per column the
smallest of these coders (``FORMAT.md``, section "Bounded values"):

``CODER_ZSTD`` (1)
    The column's integers minus their minimum, as the smallest unsigned type that
    holds them, in one zstd frame -- scalar quantization + zstd, the classic baseline.
``CODER_GAUSSIAN`` (2)
    Numeric grid indices entropy-coded (rANS, ``constriction``) under a discretized
    Gaussian per cell whose mean and SD (in grid steps) the caller predicts from the
    model.  Residuals past ``±RESIDUAL_RANGE`` steps escape to a zstd list, so any
    integer round-trips.
``CODER_RANK`` (3)
    Level codes renumbered so the predicted level is 0 (then zstd): a good prediction
    turns the column into runs of zeros.
``CODER_PCODEC`` (4)
    The integers coded by pcodec (scalar quantization + pcodec, the stronger classic
    baseline on numeric columns).
``CODER_COUNTS`` (5)
    Order-0 coding: the column's distinct values and their counts, then the values
    entropy-coded (rANS) under those frequencies.  Within a few bytes of the column's
    empirical entropy, which zstd's and pcodec's fixed framing miss by tens of bytes
    on short chunks and small alphabets (coarse bounds, level columns).
``CODER_RANK_COUNTS`` (6)
    The ranks of ``CODER_RANK`` coded as ``CODER_COUNTS``.
``CODER_PCODEC_FLOAT`` (7)
    Lossless float columns (the integers are float64 bit patterns): pcodec of the
    floats themselves, whose float modes find a column's decimal or binary
    structure (values of 0.0001 steps, a common multiplier) that the same bits coded
    as integers hide -- pcodec on raw values, the lossless baseline.

``CODER_GAUSSIAN`` also tries multiples of the predicted SDs (``SD_FACTORS``: the
two with the smallest approximate code length, measured exactly) and keeps the
smallest: a decoder whose SDs are too wide
or too narrow for the grid still codes close to what its means know.

The predictions are rounded to a coarse grid before use (:func:`coarse_prediction`) so
that a decoder output that differs in its last bits on another machine almost never
changes the probabilities; the section carries a CRC32 of the integers, so a decode
that went wrong anyway is reported, never returned.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from ..errors import FileFormatError
from .packing import _compress, _decompress

__all__ = ["CODER_NONE", "CODER_ZSTD", "CODER_GAUSSIAN", "CODER_RANK", "CODER_PCODEC",
           "CODER_COUNTS", "CODER_RANK_COUNTS", "CODER_PCODEC_FLOAT",
           "SD_FACTORS", "ZSTD_LEVEL", "plain_column", "gaussian_bits",
           "RESIDUAL_RANGE", "coarse_prediction", "encode_column", "decode_column",
           "pack_section", "unpack_section", "integers_crc"]

CODER_NONE = 0
CODER_ZSTD = 1
CODER_GAUSSIAN = 2
CODER_RANK = 3
CODER_PCODEC = 4
CODER_COUNTS = 5
CODER_RANK_COUNTS = 6
CODER_PCODEC_FLOAT = 7
# Distinct values an order-0 table may hold: past this the table alone outweighs
# what the frequencies save, and the reader's table stays small.
MAX_COUNTS_ALPHABET = 1 << 16
# Multiples of the predicted SDs the Gaussian coder tries (index stored per column).
SD_FACTORS = tuple(2.0 ** (k / 2) for k in range(-4, 5))
_FACTORS = np.array(SD_FACTORS)
# zstd level of the integer columns: the level of the baseline the codec must not lose to.
ZSTD_LEVEL = 19
# Residuals (grid steps from the predicted cell) coded by the Gaussian model; farther
# ones are escapes, stored in full.
RESIDUAL_RANGE = 1 << 14
# Predicted SDs are kept within these bounds (grid steps): below, a cell is all but
# certain anyway; above, the prediction says nothing the escape path could not.
_SD_MIN, _SD_MAX = 0.05, RESIDUAL_RANGE / 8.0
# The Gaussian coder runs when its approximate length is below this multiple of the
# best plain coder's bytes.
_TRY_GAUSSIAN = 1.25
_ENTRY = struct.Struct("<BI")
_HEAD = struct.Struct("<qB")
_U32 = struct.Struct("<I")
_WIDTHS = (1, 2, 4, 8)


def coarse_prediction(mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Round a predicted mean and SD (grid steps, float64) to the coder's grid.

    Returns ``(center, offset, sd)``: the integer cell nearest the mean, the mean's
    offset from it in 1/64 steps, and the SD rounded to 1/8 of an octave and clipped
    to ``[0.05, RESIDUAL_RANGE / 8]``.  Non-finite predictions become ``(0, 0, max)``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    sd = np.asarray(sd, dtype=np.float64)
    ok = np.isfinite(mean) & np.isfinite(sd) & (np.abs(mean) < 2.0**62)
    mean = np.where(ok, mean, 0.0)
    center = np.rint(mean)
    offset = np.rint((mean - center) * 64.0) / 64.0
    octave = np.rint(np.log2(np.clip(np.where(ok, sd, _SD_MAX), _SD_MIN, _SD_MAX)) * 8.0) / 8.0
    return center.astype(np.int64), offset, np.exp2(octave)


def _zstd_pack(values: np.ndarray) -> bytes:
    if values.size == 0:
        return _HEAD.pack(0, 1)
    low = int(values.min())
    # Offsets from the minimum, modulo 2^64: exact for any int64 values (a lossless
    # float column's bit patterns can span more than 2^63).
    span = values.view(np.uint64) - np.uint64(low & 0xFFFFFFFFFFFFFFFF)
    width = next(w for w in _WIDTHS if int(span.max()) < 1 << (8 * w))
    raw = span.astype(f"<u{width}").tobytes()
    # content size and checksum: the reader checks the size before inflating anything
    return _HEAD.pack(low, width) + _compress(raw, ZSTD_LEVEL)


def _zstd_unpack(data: bytes, n: int) -> np.ndarray:
    if len(data) < _HEAD.size:
        raise FileFormatError("bounded values are corrupt (a column shorter than its head)")
    low, width = _HEAD.unpack_from(data)
    if width not in _WIDTHS:
        raise FileFormatError(f"bounded values are corrupt (integer width {width})")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    raw = _decompress(data[_HEAD.size:], n * width, "bounded values")
    span = np.frombuffer(raw, dtype=f"<u{width}").astype(np.uint64)
    return (span + np.uint64(low & 0xFFFFFFFFFFFFFFFF)).view(np.int64)


def _gaussian_pack(q: np.ndarray, center: np.ndarray, offset: np.ndarray,
                   sd: np.ndarray, limit: float | None = None) -> bytes | None:
    """``CODER_GAUSSIAN`` bytes, or None when the approximate code length says they
    would exceed ``limit`` bytes (then the exact coder does not run)."""
    import constriction

    r = q - center
    escape = np.abs(r) >= RESIDUAL_RANGE
    symbols = np.clip(r, -RESIDUAL_RANGE, RESIDUAL_RANGE).astype(np.int32)
    factors, approx_bits = _likely_factors(symbols - offset, sd)
    if limit is not None and approx_bits > 8 * limit:
        return None
    model = constriction.stream.model.QuantizedGaussian(-RESIDUAL_RANGE, RESIDUAL_RANGE)
    best = b""
    for index in factors:
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(symbols, model, offset, _scaled(sd, SD_FACTORS[index]))
        words = np.asarray(coder.get_compressed(), dtype="<u4").tobytes()
        if not best or len(words) + 5 < len(best):
            best = bytes([index]) + _U32.pack(len(words) // 4) + words
    return best + _zstd_pack(q[escape])


def gaussian_bits(q: np.ndarray, center: np.ndarray, offset: np.ndarray,
                  sd: np.ndarray) -> float:
    """Approximate ``CODER_GAUSSIAN`` length of ``q`` (bits, no coder run), at the
    predicted SDs themselves (:func:`_likely_factors`' estimate for one multiple)."""
    r = np.clip(np.asarray(q, dtype=np.int64) - center, -RESIDUAL_RANGE, RESIDUAL_RANGE)
    return float(_gaussian_cost(r - offset, _scaled(np.asarray(sd, dtype=np.float64),
                                                    1.0)).sum())


def _gaussian_cost(residual: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Bits of each residual under a Gaussian of SD ``s`` (the density at it, as
    ``-log2``), clipped to [0, 32]: the coder's probabilities have a floor, and a far
    residual is an escape, stored in full."""
    bits = (0.5 / math.log(2.0)) * np.square(residual / s)
    bits += np.log2(s)
    bits += math.log2(math.sqrt(2 * math.pi))
    return np.clip(bits, 0.0, 32.0, out=bits)


def _likely_factors(residual: np.ndarray, sd: np.ndarray, keep: int = 2
                    ) -> tuple[list[int], float]:
    """The ``keep`` SD multiples with the smallest approximate code length (the
    Gaussian density at each residual, at least 0 bits per value), best first, and
    that length (bits, :func:`_gaussian_cost`); the coder then measures these exactly."""
    s = _scaled(np.asarray(sd, dtype=np.float64)[None, :], _FACTORS[:, None])
    costs = _gaussian_cost(residual[None, :], s).sum(axis=1)
    order = np.argsort(costs, kind="stable")[:keep]
    return [int(i) for i in order], float(costs[order[0]])


def _scaled(sd: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(sd * factor, _SD_MIN, _SD_MAX)


def _gaussian_unpack(data: bytes, center: np.ndarray, offset: np.ndarray,
                     sd: np.ndarray) -> np.ndarray:
    import constriction

    n = center.size
    if len(data) < 1 + _U32.size or data[0] >= len(SD_FACTORS):
        raise FileFormatError("bounded values are corrupt (a model-coded column's head)")
    (n_words,) = _U32.unpack_from(data, 1)
    end = 1 + _U32.size + 4 * n_words
    if end > len(data) or n_words > 4 * n + 2:  # rANS needs < 32 bits per symbol + 2 words
        raise FileFormatError("bounded values are corrupt (model-coded words run past the end)")
    words = np.frombuffer(data[1 + _U32.size:end], dtype="<u4").astype(np.uint32)
    model = constriction.stream.model.QuantizedGaussian(-RESIDUAL_RANGE, RESIDUAL_RANGE)
    try:
        symbols = (constriction.stream.stack.AnsCoder(words).decode(
            model, offset, _scaled(sd, SD_FACTORS[data[0]])) if n
            else np.zeros(0, dtype=np.int32))
    except Exception as exc:  # constriction raises its own errors on garbage
        raise FileFormatError(f"bounded values are corrupt (model-coded column: {exc})") from None
    r = np.asarray(symbols, dtype=np.int64)
    escape = np.abs(r) >= RESIDUAL_RANGE
    q = center + r
    q[escape] = _zstd_unpack(data[end:], int(escape.sum()))
    return q


def _pcodec_pack(values: np.ndarray) -> bytes:
    from pcodec import ChunkConfig, standalone

    return bytes(standalone.simple_compress(np.ascontiguousarray(values, dtype=np.int64),
                                            ChunkConfig()))


def _pcodec_float_pack(bits: np.ndarray) -> bytes:
    """pcodec of float64 values given as their int64 bit patterns."""
    from pcodec import ChunkConfig, standalone

    floats = np.ascontiguousarray(bits, dtype=np.int64).view(np.float64)
    return bytes(standalone.simple_compress(floats, ChunkConfig()))


def _pcodec_unpack(data: bytes, n: int, dtype: type = np.int64) -> np.ndarray:
    """``n`` values of ``dtype`` (int64, or float64 returned as its bit patterns)."""
    from pcodec import standalone

    out = np.empty(n, dtype=dtype)  # the size is known: a hostile file cannot grow it
    try:
        progress = standalone.simple_decompress_into(data, out)
    except (RuntimeError, TypeError) as exc:
        raise FileFormatError(f"bounded values are corrupt (pcodec: {exc})") from None
    if progress.n_processed != n or not progress.finished:
        raise FileFormatError("bounded values are corrupt (wrong number of values)")
    return out.view(np.int64)


def _uvarints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 of each value (uint64), concatenated."""
    v = np.asarray(values, dtype=np.uint64)
    if v.size == 0:
        return b""
    length = np.ones(v.size, dtype=np.int64)
    rest = v >> np.uint64(7)
    while rest.any():
        length += rest > 0
        rest >>= np.uint64(7)
    start = np.concatenate([[0], np.cumsum(length)[:-1]])
    out = np.zeros(int(length.sum()), dtype=np.uint8)
    for k in range(int(length.max())):
        sel = length > k
        group = (v[sel] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (length[sel] > k + 1).astype(np.uint64) << np.uint64(7)
        out[start[sel] + k] = (group | more).astype(np.uint8)
    return out.tobytes()


def _read_uvarints(data: bytes, pos: int, count: int) -> tuple[np.ndarray, int]:
    """``count`` LEB128 values (uint64) from ``data[pos:]`` and the position after them."""
    raw = np.frombuffer(data, dtype=np.uint8, offset=min(pos, len(data)))
    ends = np.flatnonzero(raw < 0x80)[:count]
    if ends.size < count:
        raise FileFormatError("bounded values are corrupt (a count table runs past the end)")
    if count == 0:
        return np.zeros(0, dtype=np.uint64), pos
    starts = np.concatenate([[0], ends[:-1] + 1])
    length = ends - starts + 1
    if length.max() > 10 or (length == 10).any() and (raw[ends[length == 10]] > 1).any():
        raise FileFormatError("bounded values are corrupt (a count beyond 64 bits)")
    out = np.zeros(count, dtype=np.uint64)
    for k in range(int(length.max())):
        sel = length > k
        out[sel] |= (raw[starts[sel] + k].astype(np.uint64) & np.uint64(0x7F)) << np.uint64(7 * k)
    return out, pos + int(ends[-1]) + 1


def histogram(q: np.ndarray, with_index: bool = False
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Distinct values of non-empty integer-valued cells ``q`` (ascending), their
    counts and, with ``with_index``, each cell's index into them."""
    low, high = int(q.min()), int(q.max())
    if high - low >= 1 << 16:
        if with_index:
            values, index, counts = np.unique(q, return_inverse=True, return_counts=True)
            return values, counts, index
        values, counts = np.unique(q, return_counts=True)
        return values, counts, None
    # small spans: counting beats sorting
    offsets = (q - low).astype(np.int64)
    full = np.bincount(offsets)
    present = np.flatnonzero(full)
    index = None
    if with_index:
        lookup = np.zeros(full.size, dtype=np.int32)
        lookup[present] = np.arange(present.size, dtype=np.int32)
        index = lookup[offsets]
    return present + low, full[present], index


def _counts_pack(q: np.ndarray) -> bytes | None:
    """``CODER_COUNTS`` bytes of non-empty ``q``, or None past ``MAX_COUNTS_ALPHABET``."""
    import constriction

    values, counts, index = histogram(q, with_index=True)
    if values.size > MAX_COUNTS_ALPHABET:
        return None
    first = int(values[0])
    gaps = (np.diff(values).view(np.uint64) - np.uint64(1)) if values.size > 1 else values[:0]
    zigzag = first << 1 if first >= 0 else ((-first - 1) << 1) | 1
    head = (_uvarints(np.array([values.size, zigzag], dtype=np.uint64))
            + _uvarints(gaps) + _uvarints(counts - 1))
    if values.size == 1:
        return head
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(index.astype(np.int32), _frequencies(counts))
    return head + np.asarray(coder.get_compressed(), dtype="<u4").tobytes()


def _frequencies(counts: np.ndarray) -> object:
    import constriction

    # float64 counts / total: the same probabilities on every machine, which
    # constriction then quantizes deterministically (perfect=False).
    p = np.asarray(counts, dtype=np.float64)
    return constriction.stream.model.Categorical(p / p.sum(), perfect=False)


def _counts_unpack(data: bytes, n: int) -> np.ndarray:
    import constriction

    (size, zig), pos = _read_uvarints(data, 0, 2)
    if not 1 <= size <= min(n, MAX_COUNTS_ALPHABET):
        raise FileFormatError(f"bounded values are corrupt (a count table of {size} values "
                              f"for {n} cells)")
    size = int(size)
    gaps, pos = _read_uvarints(data, pos, size - 1)
    counts, pos = _read_uvarints(data, pos, size)
    if (counts >= np.uint64(n)).any():  # checked before adding 1: 2^64 - 1 would wrap
        raise FileFormatError("bounded values are corrupt (a count above the column's cells)")
    counts = counts + np.uint64(1)
    first = (int(zig) >> 1) ^ -(int(zig) & 1)
    span = sum(int(g) + 1 for g in gaps)
    if first + span >= 1 << 63 or sum(int(c) for c in counts) != n:
        raise FileFormatError("bounded values are corrupt (a count table that does not "
                              "add up)")
    offsets = np.zeros(size, dtype=np.uint64)
    offsets[1:] = np.cumsum(gaps + np.uint64(1), dtype=np.uint64)
    values = (offsets + np.uint64(first & 0xFFFFFFFFFFFFFFFF)).view(np.int64)
    if size == 1:
        if pos != len(data):
            raise FileFormatError("bounded values are corrupt (bytes after a one-value column)")
        return np.full(n, values[0], dtype=np.int64)
    rest = len(data) - pos
    if rest % 4 or not 0 < rest // 4 <= 4 * n + 2:
        raise FileFormatError("bounded values are corrupt (order-0 words)")
    words = np.frombuffer(data, dtype="<u4", offset=pos).astype(np.uint32)
    try:
        index = constriction.stream.stack.AnsCoder(words).decode(
            _frequencies(counts), n)
    except Exception as exc:  # constriction raises its own errors on garbage
        raise FileFormatError(f"bounded values are corrupt (order-0 column: {exc})") from None
    index = np.asarray(index, dtype=np.int64)
    # the decoded indices must match the table's counts (what a damaged stream rarely does)
    if not np.array_equal(np.bincount(index, minlength=size), counts.astype(np.int64)):
        raise FileFormatError("bounded values are corrupt (order-0 values do not match "
                              "their counts)")
    return values[index]


def _rank(codes: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """0 where the code is the predicted one; other codes keep their order after it."""
    return np.where(codes == predicted, 0, codes + (codes < predicted))


def _unrank(ranks: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.where(ranks == 0, predicted, np.where(ranks - 1 < predicted, ranks - 1, ranks))


def plain_column(q: np.ndarray, floats: bool = False) -> tuple[int, bytes]:
    """The smallest of ``CODER_ZSTD``, ``CODER_PCODEC`` and ``CODER_COUNTS`` for a
    column's integers (``CODER_NONE`` for no cells): what the integers cost without
    the model.  ``floats``: the integers are float64 bit patterns (a lossless float
    column), and ``CODER_PCODEC_FLOAT`` competes too."""
    q = np.asarray(q, dtype=np.int64)
    if q.size == 0:
        return CODER_NONE, b""
    candidates = [(CODER_ZSTD, _zstd_pack(q)), (CODER_PCODEC, _pcodec_pack(q)),
                  (CODER_COUNTS, _counts_pack(q))]
    if floats:
        candidates.append((CODER_PCODEC_FLOAT, _pcodec_float_pack(q)))
    return _smallest(candidates)


def _smallest(candidates: Sequence[tuple[int, bytes | None]]) -> tuple[int, bytes]:
    """The shortest candidate (the first among equals); None = not applicable."""
    best: tuple[int, bytes] | None = None
    for coder, data in candidates:
        if data is not None and (best is None or len(data) < len(best[1])):
            best = (coder, data)
    assert best is not None
    return best


def encode_column(q: np.ndarray, *, gaussian: tuple[np.ndarray, np.ndarray, np.ndarray]
                  | None = None, predicted: np.ndarray | None = None,
                  plain: tuple[int, bytes] | None = None) -> tuple[int, bytes]:
    """Code one column's integers with the smallest coder that applies.

    Parameters
    ----------
    q : ndarray of int64
        Grid indices (numeric columns) or level codes, one per stored cell.
    gaussian : (center, offset, sd), optional
        :func:`coarse_prediction` of each cell (numeric columns): tries
        ``CODER_GAUSSIAN``.
    predicted : ndarray of int64, optional
        The model's level for each cell (level columns): tries ``CODER_RANK``.
    plain : (coder, bytes), optional
        :func:`plain_column` of ``q`` when the caller has it already (it does not
        depend on the prediction).

    Returns
    -------
    (coder, bytes)
    """
    q = np.asarray(q, dtype=np.int64)
    best = plain if plain is not None else plain_column(q)
    if q.size == 0:
        return best
    if gaussian is not None:
        # The approximate length misjudges coarse grids by a few percent either way;
        # well past the best so far, the exact coder is not worth running.
        data = _gaussian_pack(q, *gaussian, limit=_TRY_GAUSSIAN * len(best[1]))
        if data is not None and len(data) < len(best[1]):
            best = (CODER_GAUSSIAN, data)
    if predicted is not None:
        ranks = _rank(q, np.asarray(predicted, dtype=np.int64))
        best = _smallest([best, (CODER_RANK, _zstd_pack(ranks)),
                          (CODER_RANK_COUNTS, _counts_pack(ranks))])
    return best


def decode_column(coder: int, data: bytes, n: int, *,
                  gaussian: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  predicted: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode_column` for ``n`` cells (the same predictions)."""
    if coder == CODER_NONE:
        if n or data:
            raise FileFormatError("bounded values are corrupt (an empty column holds cells)")
        return np.zeros(0, dtype=np.int64)
    if coder == CODER_ZSTD:
        return _zstd_unpack(data, n)
    if coder == CODER_PCODEC:
        return _pcodec_unpack(data, n)
    if coder == CODER_PCODEC_FLOAT:
        return _pcodec_unpack(data, n, np.float64)
    if coder == CODER_COUNTS:
        return _counts_unpack(data, n)
    if coder == CODER_GAUSSIAN and gaussian is not None:
        return _gaussian_unpack(data, *gaussian)
    if coder == CODER_RANK and predicted is not None:
        return _unrank(_zstd_unpack(data, n), np.asarray(predicted, dtype=np.int64))
    if coder == CODER_RANK_COUNTS and predicted is not None:
        return _unrank(_counts_unpack(data, n), np.asarray(predicted, dtype=np.int64))
    raise FileFormatError(f"bounded values are corrupt (coder {coder} for this column)")


def integers_crc(columns: Sequence[np.ndarray]) -> int:
    """CRC32 of the columns' integers (int64, little-endian, in order)."""
    crc = 0
    for q in columns:
        crc = zlib.crc32(np.ascontiguousarray(q, dtype="<i8").tobytes(), crc)
    return crc


def pack_section(crc: int, exceptions: bytes, columns: Sequence[tuple[int, bytes]]) -> bytes:
    """``u32 crc | u32 E | exceptions (E) | (u8 coder, u32 length, bytes) per column``."""
    parts = [_U32.pack(crc), _U32.pack(len(exceptions)), exceptions]
    for coder, data in columns:
        parts += [_ENTRY.pack(coder, len(data)), data]
    return b"".join(parts)


def unpack_section(data: bytes, n_columns: int) -> tuple[int, bytes, list[tuple[int, bytes]]]:
    """Inverse of :func:`pack_section`: ``(crc, exceptions, [(coder, bytes)] * n_columns)``."""
    if len(data) < 2 * _U32.size:
        raise FileFormatError("bounded values are corrupt (shorter than their head)")
    (crc,) = _U32.unpack_from(data)
    (size,) = _U32.unpack_from(data, _U32.size)
    pos = 2 * _U32.size + size
    if pos > len(data):
        raise FileFormatError("bounded values are corrupt (exceptions run past the end)")
    exceptions = data[2 * _U32.size:pos]
    columns = []
    for _ in range(n_columns):
        if pos + _ENTRY.size > len(data):
            raise FileFormatError("bounded values are corrupt (fewer columns than the model)")
        coder, size = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        if pos + size > len(data):
            raise FileFormatError("bounded values are corrupt (a column runs past the end)")
        columns.append((coder, data[pos:pos + size]))
        pos += size
    if pos != len(data):
        raise FileFormatError("bounded values are corrupt (bytes after the last column)")
    return crc, exceptions, columns
