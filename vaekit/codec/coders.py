"""The coders of bounded values: one column of integers to bytes and back.

Which coder a column gets, and how the columns of a chunk are laid out, is
:mod:`vaekit.codec.values`; this module holds the coders themselves (``FORMAT.md``,
section "Bounded values", table "Coders"):

``CODER_ZSTD`` (1)
    The integers minus their minimum, as the smallest unsigned type that holds them,
    in one zstd frame -- scalar quantization + zstd, the classic baseline.
``CODER_GAUSSIAN`` (2)
    Numeric grid indices entropy-coded (rANS, ``constriction``) under a discretized
    Gaussian per cell whose mean and SD (in grid steps) the caller predicts from the
    model.  Residuals past ``±RESIDUAL_RANGE`` steps escape to a zstd list, so any
    integer round-trips.
``CODER_PCODEC`` (4)
    The integers coded by pcodec (scalar quantization + pcodec).
``CODER_COUNTS`` (5)
    Order 0: the column's distinct values and their counts, then each cell's value
    entropy-coded under those frequencies.
``CODER_ADAPTIVE`` (8, codec version 6 and later)
    Order 0 without a count table: the distinct values, then each cell coded under
    the frequencies of the cells before it (Krichevsky-Trofimov estimates, updated at
    positions 16, 32, 64, ...).  A table costs a few bytes per distinct value, which on
    a short chunk is more than learning the frequencies as it goes.
``CODER_PCODEC_FLOAT`` (7)
    pcodec of a lossless float column's floats themselves.

Rank coders (3 and 6) reuse these on level ranks (:mod:`.values`).

Codec version 6 puts the rANS words of every column of a chunk on one stack
(``stack``, one ``constriction`` ``AnsCoder``), so a chunk pays the coder's final
state once instead of once per column; a column's own bytes (``Coded.data``) then
hold only what is not rANS words.  Earlier versions kept each column's words in its
own bytes; their decoders are the same functions with ``stack=None``.

Predictions are rounded to a coarse grid before use (:func:`coarse_prediction`) so
that a decoder output that differs in its last bits on another machine almost never
changes the probabilities; the section's CRC catches the rest.
"""

from __future__ import annotations

import math
import struct
from typing import Any, NamedTuple

import numpy as np

from ..errors import FileFormatError
from .packing import _compress, _decompress
from .varints import read_uvarints, unzigzag, uvarint, uvarints, zigzag

__all__ = ["CODER_NONE", "CODER_ZSTD", "CODER_GAUSSIAN", "CODER_RANK", "CODER_PCODEC",
           "CODER_COUNTS", "CODER_RANK_COUNTS", "CODER_PCODEC_FLOAT", "CODER_ADAPTIVE",
           "SD_FACTORS", "ZSTD_LEVEL", "RESIDUAL_RANGE", "MAX_COUNTS_ALPHABET", "Coded",
           "coarse_prediction", "gaussian_estimate", "gaussian_estimates", "histogram",
           "order0_bits", "zstd_pack", "zstd_unpack", "gaussian_pack", "gaussian_unpack",
           "pcodec_pack",
           "pcodec_float_pack", "pcodec_unpack", "counts_pack", "counts_unpack",
           "adaptive_pack", "adaptive_bits", "adaptive_unpack", "order0_pack", "stack_words",
           "open_stack"]

CODER_NONE = 0
CODER_ZSTD = 1
CODER_GAUSSIAN = 2
CODER_RANK = 3
CODER_PCODEC = 4
CODER_COUNTS = 5
CODER_RANK_COUNTS = 6
CODER_PCODEC_FLOAT = 7
CODER_ADAPTIVE = 8
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
# Cells the SD multiples are priced on (_likely_factor): enough to rank them.
_FACTOR_SAMPLE = 512
# The Gaussian coder is tried up to 1.25 times the best other coder's approximate size
# (the approximation misjudges by a few percent either way, more on small columns);
# below 1 / 1.6 of it, it wins without being measured (the worst error seen on the
# dev tables' columns of 100+ words was a third).
_TRY_GAUSSIAN = 1.25
_SURE_GAUSSIAN = 1.6
# The adaptive coder's frequencies are updated before these positions (then doubling).
_FIRST_UPDATE = 16
_HEAD = struct.Struct("<qB")
_U32 = struct.Struct("<I")
_WIDTHS = (1, 2, 4, 8)

Part = tuple[np.ndarray, Any, tuple[np.ndarray, ...]]


class Coded(NamedTuple):
    """One column, coded.

    ``data`` is the column's own bytes; ``parts`` the ``(symbols, model, params)``
    it pushes on the chunk's rANS stack, in decoding order; ``words`` how many u32
    words those take on a stack of their own (so ``size``, the bytes it costs alone,
    compares coders whatever they keep where); ``estimated``: ``words`` is an
    approximation from a sample of the cells, not measured.
    """

    coder: int
    data: bytes
    parts: tuple[Part, ...] = ()
    words: int = 0
    estimated: bool = False

    @property
    def size(self) -> int:
        return len(self.data) + 4 * self.words


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


# --------------------------------------------------------------------------- zstd


def zstd_pack(values: np.ndarray, compact: bool = True, level: int = ZSTD_LEVEL) -> bytes:
    """``CODER_ZSTD`` bytes: the minimum, the width, one zstd frame of the offsets.
    ``compact`` (codec version 6): the minimum as a zigzag uvarint and a frame without
    a checksum (the section's CRC covers the integers); else ``i64`` and a checksum."""
    low = int(values.min()) if values.size else 0
    width = 1
    raw = b""
    if values.size:
        # Offsets from the minimum, modulo 2^64: exact for any int64 values (a lossless
        # float column's bit patterns can span more than 2^63).
        span = values.view(np.uint64) - np.uint64(low & 0xFFFFFFFFFFFFFFFF)
        width = next(w for w in _WIDTHS if int(span.max()) < 1 << (8 * w))
        raw = span.astype(f"<u{width}").tobytes()
    head = uvarint(zigzag(low)) + bytes([width]) if compact else _HEAD.pack(low, width)
    if not values.size:
        return head
    # content size in the frame: the reader checks it before inflating anything
    return head + _compress(raw, level, checksum=not compact)


def zstd_unpack(data: bytes, n: int, compact: bool = True) -> np.ndarray:
    """Inverse of :func:`zstd_pack` for ``n`` values."""
    if compact:
        (zig,), pos = read_uvarints(data, 0, 1)
        low, pos = unzigzag(int(zig)), pos + 1
        if pos > len(data):
            raise FileFormatError("bounded values are corrupt (a column shorter than its head)")
        width = data[pos - 1]
    else:
        if len(data) < _HEAD.size:
            raise FileFormatError("bounded values are corrupt (a column shorter than its head)")
        (low, width), pos = _HEAD.unpack_from(data), _HEAD.size
    if width not in _WIDTHS:
        raise FileFormatError(f"bounded values are corrupt (integer width {width})")
    if n == 0:
        if compact and pos != len(data):
            raise FileFormatError("bounded values are corrupt (bytes in an empty column)")
        return np.zeros(0, dtype=np.int64)
    raw = _decompress(data[pos:], n * width, "bounded values", checksum=not compact)
    span = np.frombuffer(raw, dtype=f"<u{width}").astype(np.uint64)
    return (span + np.uint64(low & 0xFFFFFFFFFFFFFFFF)).view(np.int64)


# --------------------------------------------------------------------------- pcodec


def pcodec_pack(values: np.ndarray) -> bytes:
    from pcodec import ChunkConfig, standalone

    return bytes(standalone.simple_compress(np.ascontiguousarray(values, dtype=np.int64),
                                            ChunkConfig()))


def pcodec_float_pack(bits: np.ndarray) -> bytes:
    """pcodec of float64 values given as their int64 bit patterns."""
    from pcodec import ChunkConfig, standalone

    floats = np.ascontiguousarray(bits, dtype=np.int64).view(np.float64)
    return bytes(standalone.simple_compress(floats, ChunkConfig()))


def pcodec_unpack(data: bytes, n: int, dtype: type = np.int64) -> np.ndarray:
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


# --------------------------------------------------------------------------- rANS


def _words_alone(parts: tuple[Part, ...]) -> np.ndarray:
    """The u32 words of ``parts`` on a stack of their own."""
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    for symbols, model, params in reversed(parts):
        coder.encode_reverse(symbols, model, *params)
    return np.asarray(coder.get_compressed(), dtype="<u4")


def stack_words(columns: list[Coded]) -> bytes:
    """The words of every column's parts on one stack, the first column on top (the
    first decoded); empty when no column has any."""
    parts = tuple(p for c in columns for p in c.parts)
    return _words_alone(parts).tobytes() if parts else b""


def open_stack(words: bytes, limit: int) -> Any:
    """A stack to decode :func:`stack_words`' bytes from (at most ``limit`` words)."""
    import constriction

    if len(words) % 4 or len(words) // 4 > limit:
        raise FileFormatError("bounded values are corrupt (rANS words)")
    try:  # constriction refuses some word sequences outright (one ending in a zero word)
        return constriction.stream.stack.AnsCoder(
            np.frombuffer(words, dtype="<u4").astype(np.uint32))
    except Exception as exc:
        raise FileFormatError(f"bounded values are corrupt (rANS words: {exc})") from None


def _own_words(data: bytes, pos: int, n: int, what: str) -> tuple[Any, int]:
    """A codec-3-to-5 column's own stack: ``u32 W`` and ``W`` words at ``data[pos:]``."""
    if pos + _U32.size > len(data):
        raise FileFormatError(f"bounded values are corrupt ({what} head)")
    (n_words,) = _U32.unpack_from(data, pos)
    end = pos + _U32.size + 4 * n_words
    if end > len(data) or n_words > 4 * n + 2:  # rANS needs < 32 bits per symbol + 2 words
        raise FileFormatError(f"bounded values are corrupt ({what} words run past the end)")
    return open_stack(data[pos + _U32.size:end], n_words), end


def _decode(stack: Any, model: Any, *args: Any) -> np.ndarray:
    try:
        return np.asarray(stack.decode(model, *args), dtype=np.int64)
    except Exception as exc:  # constriction raises its own errors on garbage
        raise FileFormatError(f"bounded values are corrupt (rANS: {exc})") from None


def _gaussian_model() -> Any:
    import constriction

    return constriction.stream.model.QuantizedGaussian(-RESIDUAL_RANGE, RESIDUAL_RANGE)


def gaussian_pack(q: np.ndarray, center: np.ndarray, offset: np.ndarray,
                  sd: np.ndarray, against: int | None = None,
                  measure: bool = False) -> Coded | None:
    """``CODER_GAUSSIAN`` of ``q``, at the SD multiple with the smallest approximate
    length (:func:`_likely_factor`).

    ``against``: the size (bytes) of the best other coder of the column.  Past
    ``_TRY_GAUSSIAN`` times it, the approximate length gives up (None: the coder does
    not run); below ``1 / _SURE_GAUSSIAN`` times it the Gaussian wins unless the
    approximation is far off, and its words are that estimate (``Coded.estimated``:
    the caller checks them against its stack); in between, with no ``against``, or
    with ``measure``, they are measured.
    """
    r = q - center
    escape = np.abs(r) >= RESIDUAL_RANGE
    symbols = np.clip(r, -RESIDUAL_RANGE, RESIDUAL_RANGE).astype(np.int32)
    index, approx_bits = _likely_factor(symbols - offset, sd)
    if against is not None and approx_bits > 8 * _TRY_GAUSSIAN * against:
        return None
    parts = ((symbols, _gaussian_model(), (offset, _scaled(sd, SD_FACTORS[index]))),)
    estimated = (not measure and against is not None
                 and _SURE_GAUSSIAN * approx_bits < 8 * against)
    n_words = math.ceil(approx_bits / 32) + 1 if estimated else _words_alone(parts).size
    best = Coded(CODER_GAUSSIAN, bytes([index]), parts, n_words, estimated)
    if escape.any():
        best = best._replace(data=best.data + zstd_pack(q[escape]))
    return best


def gaussian_unpack(data: bytes, center: np.ndarray, offset: np.ndarray, sd: np.ndarray,
                    stack: Any = None) -> np.ndarray:
    """Inverse of :func:`gaussian_pack`; ``stack=None``: a codec-3-to-5 column (``u8 k,
    u32 W``, its words, then the escapes, always present, in the old zstd layout)."""
    n = center.size
    if not data or data[0] >= len(SD_FACTORS):
        raise FileFormatError("bounded values are corrupt (a model-coded column's head)")
    pos = 1
    own = stack is None
    if own:
        stack, pos = _own_words(data, 1, n, "a model-coded column's")
    params = (offset, _scaled(sd, SD_FACTORS[data[0]]))
    r = _decode(stack, _gaussian_model(), *params) if n else np.zeros(0, dtype=np.int64)
    escape = np.abs(r) >= RESIDUAL_RANGE
    q = center + r
    if own or escape.any():
        q[escape] = zstd_unpack(data[pos:], int(escape.sum()), compact=not own)
    elif pos != len(data):
        raise FileFormatError("bounded values are corrupt (escapes where none were coded)")
    return q


def gaussian_estimate(q: np.ndarray, center: np.ndarray, offset: np.ndarray,
                      sd: np.ndarray, sample: int | None = None) -> float:
    """Approximate ``CODER_GAUSSIAN`` length of ``q`` (bits, no coder run) at the SD
    multiple the coder would choose (:func:`_likely_factor`, on about ``sample``
    cells); the prediction's arrays may be single values, for every cell."""
    q = np.asarray(q, dtype=np.int64)
    r = np.clip(q - center, -RESIDUAL_RANGE, RESIDUAL_RANGE) - offset
    return _likely_factor(r, np.broadcast_to(sd, r.shape), sample)[1]


def gaussian_estimates(columns: list[tuple[np.ndarray, ...]], sample: int) -> list[float]:
    """:func:`gaussian_estimate` of several columns ``(q, center, offset, sd)`` (full
    arrays) at once, each on about ``sample`` evenly spaced cells: one pass over all
    of them (a chunk's columns are priced for each latent-code option)."""
    picked = []
    for q, center, offset, sd in columns:
        n = q.size
        stride = max(1, -(-n // sample))
        r = np.clip(np.asarray(q, dtype=np.int64)[::stride] - center[::stride],
                    -RESIDUAL_RANGE, RESIDUAL_RANGE) - offset[::stride]
        picked.append((n, np.abs(r), np.asarray(sd, dtype=np.float64)[::stride]))
    if not picked:
        return []
    width = max(r.size for _, r, _ in picked)
    r_all = np.zeros((len(picked), width))
    s_all = np.ones((len(picked), width))
    weight = np.zeros((len(picked), width))
    for i, (n, r, s) in enumerate(picked):
        r_all[i, :r.size], s_all[i, :r.size] = r, s
        weight[i, :r.size] = n / max(r.size, 1)  # each sampled cell stands for n / m
    bits = _cell_bits(r_all, _scaled(s_all[None], _FACTORS[:, None, None]))
    costs = (bits * weight).sum(axis=2)  # (factors, columns)
    return [float(c) for c in costs.min(axis=0)]


def _likely_factor(residual: np.ndarray, sd: np.ndarray,
                   sample: int | None = None) -> tuple[int, float]:
    """The SD multiple with the smallest approximate code length, and that length
    (bits): each residual's probability under the discretized Gaussian (its cell's
    mass, at least ``2**-24`` as the coder's), on at most about ``sample`` (default
    ``_FACTOR_SAMPLE``) evenly spaced cells, scaled to all (every cell when ``sd`` is
    the same for all and they take few values).  It ranks the multiples as the coder
    does (0.06 % more words than the best multiple's on the dev tables).  A sample
    can misjudge a column whose pattern it misses: :func:`gaussian_pack`'s callers
    check the words their stack really holds."""
    n, sample = residual.size, sample or _FACTOR_SAMPLE
    sd = np.broadcast_to(np.asarray(sd, dtype=np.float64), residual.shape)
    weights = None
    if n and sd.min() == sd.max():
        # One SD for every cell (a chunk without codes): each distinct residual is
        # priced once, exactly, times its count (when they are few).
        values, counts = np.unique(np.abs(residual), return_counts=True)
        if values.size <= 2 * sample:
            r, sd, weights = values[None, :], sd[:1], counts.astype(np.float64)
    if weights is None:
        stride = max(1, -(-n // sample))
        r, sd = np.abs(residual[::stride])[None, :], sd[::stride]
    bits = _cell_bits(r, _scaled(sd[None, :], _FACTORS[:, None]))
    costs = (bits.sum(axis=1) * (n / max(r.size, 1)) if weights is None
             else bits @ weights)
    best = int(np.argmin(costs))
    return best, float(costs[best])


def _cell_bits(r: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Bits of residuals ``|r|`` under a discretized Gaussian of SD ``s``: the mass
    between ``r - 1/2`` and ``r + 1/2``, taken from the upper tail (accurate far out),
    at least ``2**-24`` (the coder's floor)."""
    from scipy.special import ndtr

    return -np.log2(np.maximum(ndtr((0.5 - r) / s) - ndtr((-0.5 - r) / s), 2.0**-24))


def _scaled(sd: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(sd * factor, _SD_MIN, _SD_MAX)


# --------------------------------------------------------------------------- order 0


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


def order0_bits(q: np.ndarray) -> tuple[float, int]:
    """Empirical order-0 entropy of ``q`` (bits, all cells; what the counts coder
    approaches) and its number of distinct values."""
    if q.size == 0:
        return 0.0, 0
    counts = histogram(q)[1]
    return _entropy_bits(counts, q.size), int(counts.size)


def _entropy_bits(counts: np.ndarray, n: int) -> float:
    c = np.asarray(counts, dtype=np.float64)
    return float(np.sum(c * np.log2(n / c)))


def _alphabet(values: np.ndarray) -> bytes:
    """``uvarint A, uvarint zigzag(v_0), (A - 1) x uvarint (v_i - v_(i-1) - 1)``."""
    gaps = (np.diff(values).view(np.uint64) - np.uint64(1)) if values.size > 1 else values[:0]
    return (uvarints(np.array([values.size, zigzag(int(values[0]))], dtype=np.uint64))
            + uvarints(gaps))


def _read_alphabet(data: bytes, n: int) -> tuple[np.ndarray, int]:
    """Inverse of :func:`_alphabet` for a column of ``n`` cells: values, position after."""
    (size, zig), pos = read_uvarints(data, 0, 2)
    if not 1 <= size <= min(n, MAX_COUNTS_ALPHABET):
        raise FileFormatError(f"bounded values are corrupt (a table of {size} values "
                              f"for {n} cells)")
    gaps, pos = read_uvarints(data, pos, int(size) - 1)
    first = unzigzag(int(zig))
    if first + sum(int(g) + 1 for g in gaps) >= 1 << 63:
        raise FileFormatError("bounded values are corrupt (a table beyond 64 bits)")
    offsets = np.zeros(int(size), dtype=np.uint64)
    offsets[1:] = np.cumsum(gaps + np.uint64(1), dtype=np.uint64)
    return (offsets + np.uint64(first & 0xFFFFFFFFFFFFFFFF)).view(np.int64), pos


def _categorical(p: np.ndarray) -> Any:
    import constriction

    # float64 frequencies: the same probabilities on every machine, which constriction
    # then quantizes deterministically (perfect=False).
    return constriction.stream.model.Categorical(p / p.sum(), perfect=False)


def counts_pack(q: np.ndarray) -> Coded | None:
    """``CODER_COUNTS`` of non-empty ``q``, or None past ``MAX_COUNTS_ALPHABET``."""
    values, counts, index = histogram(q, with_index=True)
    if values.size > MAX_COUNTS_ALPHABET:
        return None
    return _with_table(values, counts, index)


def _with_table(values: np.ndarray, counts: np.ndarray, index: np.ndarray | None,
                words: int | None = None) -> Coded:
    """``CODER_COUNTS`` from a histogram; ``words``: the stack words when estimated."""
    head = _alphabet(values) + uvarints(counts - 1)
    if values.size == 1:
        return Coded(CODER_COUNTS, head)
    assert index is not None
    parts = ((index.astype(np.int32), _categorical(counts.astype(np.float64)), ()),)
    return Coded(CODER_COUNTS, head, parts,
                 _words_alone(parts).size if words is None else words)


def order0_pack(q: np.ndarray) -> Coded | None:
    """The smaller of ``CODER_COUNTS`` and ``CODER_ADAPTIVE`` for non-empty ``q`` by
    their approximate lengths (the order-0 entropy plus the count table, against the
    adaptive code length), so only one of them runs; its ``words`` are that estimate
    (a word over the bits, for the final state).  None past ``MAX_COUNTS_ALPHABET``."""
    values, counts, index = histogram(q, with_index=True)
    if values.size > MAX_COUNTS_ALPHABET:
        return None
    if values.size == 1:
        return Coded(CODER_ADAPTIVE, _alphabet(values))
    table_bits = _entropy_bits(counts, q.size)
    kt_bits = adaptive_bits(counts, q.size)
    table_words, kt_words = (math.ceil(b / 32) + 1 for b in (table_bits, kt_bits))
    if len(uvarints(counts - 1)) + 4 * table_words < 4 * kt_words:
        return _with_table(values, counts, index, table_words)
    return _adaptive(values, index, q.size, kt_words)


def counts_unpack(data: bytes, n: int, stack: Any = None) -> np.ndarray:
    """Inverse of :func:`counts_pack`; ``stack=None``: a codec-3-to-5 column (its
    words follow the table, to the end of its bytes)."""
    values, pos = _read_alphabet(data, n)
    size = values.size
    counts, pos = read_uvarints(data, pos, size)
    if (counts >= np.uint64(n)).any():  # checked before adding 1: 2^64 - 1 would wrap
        raise FileFormatError("bounded values are corrupt (a count above the column's cells)")
    counts = counts + np.uint64(1)
    if sum(int(c) for c in counts) != n:
        raise FileFormatError("bounded values are corrupt (a count table that does not "
                              "add up)")
    if size == 1 or stack is not None:
        if pos != len(data):
            raise FileFormatError("bounded values are corrupt (bytes after a count table)")
        if size == 1:
            return np.full(n, values[0], dtype=np.int64)
    else:
        rest = len(data) - pos
        if rest % 4 or not 0 < rest // 4 <= 4 * n + 2:
            raise FileFormatError("bounded values are corrupt (order-0 words)")
        stack = open_stack(data[pos:], rest // 4)
    index = _decode(stack, _categorical(counts.astype(np.float64)), n)
    # the decoded indices must match the table's counts (what a damaged stream rarely does)
    if not np.array_equal(np.bincount(index, minlength=size), counts.astype(np.int64)):
        raise FileFormatError("bounded values are corrupt (order-0 values do not match "
                              "their counts)")
    return values[index]


def _blocks(n: int) -> list[tuple[int, int]]:
    """The adaptive coder's blocks: ``[0, 16), [16, 32), [32, 64), ...`` up to ``n``."""
    out, start = [], 0
    while start < n:
        stop = min(n, max(_FIRST_UPDATE, 2 * start))
        out.append((start, stop))
        start = stop
    return out


def _adaptive_models(index: np.ndarray, size: int, n: int
                     ) -> list[tuple[int, int, np.ndarray]]:
    """Each block's KT frequencies ``counts so far + 1/2`` from ``index`` (encoder)."""
    out = []
    counts = np.zeros(size, dtype=np.float64)
    for start, stop in _blocks(n):
        out.append((start, stop, counts + 0.5))
        counts += np.bincount(index[start:stop], minlength=size)
    return out


def adaptive_pack(q: np.ndarray) -> Coded | None:
    """``CODER_ADAPTIVE`` of non-empty ``q``, or None past ``MAX_COUNTS_ALPHABET``."""
    values, _, index = histogram(q, with_index=True)
    if values.size > MAX_COUNTS_ALPHABET:
        return None
    return _adaptive(values, index, q.size)


def _adaptive(values: np.ndarray, index: np.ndarray | None, n: int,
              words: int | None = None) -> Coded:
    """``CODER_ADAPTIVE`` from a histogram; ``words``: the stack words when estimated."""
    head = _alphabet(values)
    if values.size == 1:
        return Coded(CODER_ADAPTIVE, head)
    assert index is not None
    symbols = index.astype(np.int32)
    parts = tuple((symbols[a:b], _categorical(p), ())
                  for a, b, p in _adaptive_models(index, values.size, n))
    return Coded(CODER_ADAPTIVE, head, parts,
                 _words_alone(parts).size if words is None else words)


def adaptive_bits(counts: np.ndarray, n: int) -> float:
    """Approximate length (bits) of a ``CODER_ADAPTIVE`` column's rANS symbols with
    these value counts: their Krichevsky-Trofimov code length, whatever their order
    (no coder run)."""
    from scipy.special import gammaln

    c = np.asarray(counts, dtype=np.float64)
    a = c.size
    nats = gammaln(n + a / 2) - gammaln(a / 2) - float(np.sum(gammaln(c + 0.5) - gammaln(0.5)))
    return float(nats / math.log(2.0))


def adaptive_unpack(data: bytes, n: int, stack: Any) -> np.ndarray:
    """Inverse of :func:`adaptive_pack` (codec version 6: the words are on ``stack``)."""
    values, pos = _read_alphabet(data, n)
    if pos != len(data):
        raise FileFormatError("bounded values are corrupt (bytes after an adaptive table)")
    size = values.size
    if size == 1:
        return np.full(n, values[0], dtype=np.int64)
    index = np.empty(n, dtype=np.int64)
    counts = np.zeros(size, dtype=np.float64)
    for start, stop in _blocks(n):
        index[start:stop] = _decode(stack, _categorical(counts + 0.5), stop - start)
        counts += np.bincount(index[start:stop], minlength=size)
    if not counts.all():  # the writer's table holds exactly the values that occur
        raise FileFormatError("bounded values are corrupt (an adaptive table value that "
                              "never occurs)")
    return values[index]
