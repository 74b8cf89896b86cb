"""Compact, deterministic byte encodings of integer codes and passthrough columns.

:func:`pack_codes` / :func:`unpack_codes` store an ``(n_rows, n_dims)`` array of
non-negative integer codes, dimension ``j`` using ``bits[j]`` bits, entropy-coded
with zstandard.  :func:`pack_table` / :func:`unpack_table` store a DataFrame of
passthrough (id) columns losslessly as a zstd-compressed Arrow IPC stream.

All encoders are deterministic (same input, same library versions: same bytes):
zstd runs single-threaded at a fixed level without dictionaries, and nothing is
pickled.  Decoders raise :class:`~vaekit.errors.FileFormatError` on any damage and
never return wrong values silently (the zstd frame carries a content checksum).

Layout of the packed codes
--------------------------
Payload = one layout byte + one zstd frame whose content is the *raw stream*:

* layout 1, ``PACKED`` (real bit width): dimension-major; each dimension's ``b``
  bits are split into power-of-two-wide fields (8, 4, 2, 1; most significant
  first, e.g. 6 = 4 + 2, 7 = 4 + 2 + 1, 12 = 8 + 4) and every field is written for
  all rows as big-endian ``w``-bit values, MSB-first in bytes, padded with zero bits
  to a whole byte (so at most 7 padding bits per field per chunk, never per value).
  Each field width divides 8, so a byte always holds whole values of one field and
  zstd's byte-oriented Huffman stage sees the field's distribution.
* layout 2, ``BYTES`` (one symbol per byte): dimension-major; a dimension of
  ``b <= 8`` bits is ``n_rows`` bytes, one per value; ``b > 8`` is a byte plane of
  the high ``b - 8`` bits followed by a byte plane of the low 8 bits.  Unused high
  bits are zero and cost (almost) nothing after Huffman coding.

:func:`pack_codes` compresses both and keeps the smaller (ties: ``PACKED``), so the
stored size never exceeds the real-bit-width encoding by more than the 1-byte tag.

Measurements behind the choice (zstd level 3, bytes incl. the layout byte) on codes
from a uniform quantizer of N(0, 1) latent means over [-4, 4], 4096 rows x 32 dims,
25 % of the dims posterior-collapsed (means ~ N(0, 0.05**2)).  ``raw`` is
4096 * 32 * bits / 8; ``entropy`` is the sum of per-dimension empirical entropies;
``row-major``: a row's values in sequence at real width; ``dim-major``: each
dimension's values in sequence at real width; ``bit-plane``: per dimension, one
plane of n_rows bits per bit; ``fields``: layout 1; ``one-byte``: layout 2.

====  ======  =======  =========  =========  =========  ======  ========  ========
bits  raw     entropy  row-major  dim-major  bit-plane  fields  one-byte  stored
====  ======  =======  =========  =========  =========  ======  ========  ========
3     49152   29930    42432      41413      45124      40237   41258     40237 P
4     65536   41636    46703      43583      57413      43583   52925     43583 P
5     81920   53795    71248      68359      69704      63232   59710     59710 B
6     98304   66348    81710      77918      82841      80650   69525     69525 B
7     114688  81447    106365     102316     99182      98354   85571     85571 B
8     131072  97387    107788     103707     115627     103707  103707    103707 P
10    163840  128738   160479     157474     148438     139084  155988    139084 P
12    196608  156691   189860     187577     181154     173812  188374    173812 P
====  ======  =======  =========  =========  =========  ======  ========  ========

Bit planes split every value across planes and hide its distribution from zstd's
byte-oriented entropy stage (worst at 4-8 bits); fields beat plain real-width
packing by 3-12 % at 3, 5, 7, 10 and 12 bits (3.5 % worse at 6); one byte per value
beats the best real-width layout by 6-14 % at 5-7 bits but is 21 % larger at
4 bits, hence the choice per call.  Without collapsed dims the stored size is
83 / 77 / 84 / 85 / 87 / 89 / 94 / 96 % of raw at 3 / 4 / 5 / 6 / 7 / 8 / 10 / 12 bits.  Codes from an equiprobable (CDF) quantizer
are incompressible and cost raw + 15 bytes.

zstd level 3: over 32 such arrays (1024 and 16384 rows, with and without collapsed
dims, 3-12 bits) the total stored size at levels 1 / 3 / 9 / 19 was
6436249 / 6414232 / 6429076 / 6345087 bytes for 32 / 55 / 226 / 3197 ms of
compression: level 3 is within 1.1 % of level 19 at 1/58 of the time.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import zstandard as zstd

from ..errors import FileFormatError
from .guards import load_json

__all__ = [
    "MAX_BITS",
    "ZSTD_LEVEL",
    "TABLE_ZSTD_LEVEL",
    "LAYOUT_PACKED",
    "LAYOUT_BYTES",
    "pack_codes",
    "unpack_codes",
    "raw_packed_size",
    "pack_table",
    "unpack_table",
    "table_size_limit",
    "pack_mask",
    "unpack_mask",
    "mask_size_limit",
    "MAX_ID_BYTES",
]

MAX_BITS = 16
ZSTD_LEVEL = 3  # codes: see the measurements in the module docstring
# Tables (ids, keys) have real redundancy for zstd's match finder: on 16384-row id
# columns level 9 stored 23-33 % less than level 3 (sequential string ids 40194 vs
# 59641 bytes, random ints + a country code 89614 vs 115766) for ~8 ms more, and
# level 19 was not reliably smaller (35382 / 98296) at 10x the time of level 9.
TABLE_ZSTD_LEVEL = 9
LAYOUT_PACKED = 1
LAYOUT_BYTES = 2
_TABLE_FORMAT = 1  # version of the metadata pack_table adds to the Arrow schema
_TABLE_META_KEY = b"vaekit.table"
# Bounds a reader enforces on a passthrough table before decompressing it (and a
# writer on what it writes, so it never makes a file a reader refuses): each value
# of a text / binary id column holds at most MAX_ID_BYTES bytes, and the Arrow
# stream of a chunk at most TABLE_BASE_BYTES + TABLE_CELL_BYTES per cell (ids
# averaging ~4 KB, with Arrow's offsets, validity bits and padding), never more
# than MAX_TABLE_BYTES.  A 17 KB frame cannot declare 0.9 GB of ids.
MAX_ID_BYTES = 2**16
TABLE_BASE_BYTES = 2**20
TABLE_CELL_BYTES = 2**12
MAX_TABLE_BYTES = 2**28
# Decompressed output is produced in pieces of this size, so a damaged length
# field in a frame header cannot trigger a huge allocation up front.
_DECOMPRESS_PIECE = 2**20


# --------------------------------------------------------------------------- checks


def _check_bits(bits: Sequence[int]) -> list[int]:
    """Validate a per-dimension bit-width list; return it as plain ints."""
    out = []
    for j, b in enumerate(bits):
        if isinstance(b, (bool, np.bool_)):
            raise TypeError(f"bits[{j}] must be an int, not bool")
        b = operator.index(b)
        if not 0 <= b <= MAX_BITS:
            raise ValueError(f"bits[{j}] = {b}: bit widths must be in [0, {MAX_BITS}]")
        out.append(b)
    return out


def _check_codes(codes: np.ndarray, bits: list[int]) -> np.ndarray:
    """Validate codes against their bit widths; return them as a uint16 array."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != len(bits):
        raise ValueError(
            f"codes must have shape (n_rows, {len(bits)}) to match bits, got {codes.shape}"
        )
    if codes.dtype.kind not in "iu":
        raise TypeError(f"codes must be an integer array, got dtype {codes.dtype}")
    if codes.shape[0]:
        # Per-column extremes compared as Python ints: no overflow for any dtype.
        lows, highs = codes.min(axis=0), codes.max(axis=0)
        for j, b in enumerate(bits):
            if int(lows[j]) < 0 or int(highs[j]) >= 1 << b:
                col = codes[:, j]
                row = int(np.flatnonzero((col < 0) | (col >= 1 << b))[0])
                raise ValueError(
                    f"code {int(col[row])} in row {row}, dimension {j} does not fit in "
                    f"{b} bits (allowed 0..{(1 << b) - 1})"
                )
    return codes.astype(np.uint16)


# --------------------------------------------------------------------------- layouts


def _fields(b: int) -> list[tuple[int, int]]:
    """Split ``b`` bits into ``(width, shift)`` fields of 8/4/2/1 bits, MSB first.

    E.g. 6 -> [(4, 2), (2, 0)], 16 -> [(8, 8), (8, 0)], 0 -> [].
    """
    out, rest = [], b
    for w in (8, 4, 2, 1):
        while rest >= w:
            rest -= w
            out.append((w, rest))
    return out


def raw_packed_size(n_rows: int, bits: Sequence[int]) -> int:
    """Bytes of the ``PACKED`` raw stream (before zstd) for ``n_rows`` rows."""
    return sum((n_rows * w + 7) // 8 for b in _check_bits(bits) for w, _ in _fields(b))


def _raw_bytes_size(n_rows: int, bits: list[int]) -> int:
    return sum(n_rows * (0 if b == 0 else 1 if b <= 8 else 2) for b in bits)


def _pack_field(values: np.ndarray, w: int) -> bytes:
    """``values`` (< 2**w) as big-endian w-bit fields, MSB-first, zero-padded to a byte."""
    if w == 8:
        return values.astype(np.uint8).tobytes()
    shifts = np.arange(w - 1, -1, -1, dtype=np.uint16)
    bitmat = ((values[:, None] >> shifts) & 1).astype(np.uint8)
    return np.packbits(bitmat.reshape(-1)).tobytes()


def _unpack_field(buf: np.ndarray, n_rows: int, w: int) -> np.ndarray:
    """Inverse of :func:`_pack_field` for ``n_rows`` values (padding ignored)."""
    if w == 8:
        return buf.astype(np.uint16)
    bitmat = np.unpackbits(buf, count=n_rows * w).reshape(n_rows, w).astype(np.uint16)
    weights = (1 << np.arange(w - 1, -1, -1)).astype(np.uint16)
    return bitmat @ weights


def _raw_packed(codes: np.ndarray, bits: list[int]) -> bytes:
    parts = []
    for j, b in enumerate(bits):
        col = codes[:, j]
        for w, shift in _fields(b):
            parts.append(_pack_field((col >> shift) & ((1 << w) - 1), w))
    return b"".join(parts)


def _raw_bytes(codes: np.ndarray, bits: list[int]) -> bytes:
    parts = []
    for j, b in enumerate(bits):
        col = codes[:, j]
        if b > 8:
            parts.append((col >> 8).astype(np.uint8).tobytes())
        if b > 0:
            parts.append((col & 0xFF).astype(np.uint8).tobytes())
    return b"".join(parts)


def _from_raw_packed(raw: bytes, n_rows: int, bits: list[int]) -> np.ndarray:
    out = np.zeros((n_rows, len(bits)), dtype=np.int64)
    buf = np.frombuffer(raw, dtype=np.uint8)
    pos = 0
    for j, b in enumerate(bits):
        for w, shift in _fields(b):
            size = (n_rows * w + 7) // 8
            out[:, j] |= _unpack_field(buf[pos : pos + size], n_rows, w).astype(np.int64) << shift
            pos += size
    return out


def _from_raw_bytes(raw: bytes, n_rows: int, bits: list[int]) -> np.ndarray:
    out = np.zeros((n_rows, len(bits)), dtype=np.int64)
    buf = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    pos = 0
    for j, b in enumerate(bits):
        if b > 8:
            out[:, j] = buf[pos : pos + n_rows] << 8
            pos += n_rows
        if b > 0:
            out[:, j] |= buf[pos : pos + n_rows]
            pos += n_rows
    if n_rows and (out >= (np.int64(1) << np.array(bits, dtype=np.int64))).any():
        # Only a damaged stream can hold bits above a dimension's width.
        raise FileFormatError("packed codes are corrupt (a value exceeds its bit width)")
    return out


# --------------------------------------------------------------------------- zstd


def _compress(raw: bytes, level: int = ZSTD_LEVEL, checksum: bool = True) -> bytes:
    # Single-threaded, fixed level, no dictionary: byte-identical output for the
    # same input.  The content size and an XXH64 content checksum go in the frame,
    # so a payload decoded outside a container is still verified (``checksum=False``
    # only where a CRC of its own covers the content).
    cctx = zstd.ZstdCompressor(level=level, write_checksum=checksum, write_content_size=True,
                               threads=0)
    return cctx.compress(raw)


def _decompress(frame: bytes, expected: int | None, what: str, limit: int | None = None,
                dictionary: Any = None, checksum: bool = True) -> bytes:
    """Decompress exactly one zstd frame; ``expected`` is the content size if known.

    ``dictionary``: a ``zstd.ZstdCompressionDict`` the frame was compressed with
    (its frames carry no checksum: what holds them has its own CRC); ``checksum=False``:
    a frame without one, for the same reason.

    The frame's declared content size is checked (equal to ``expected``, at most
    ``limit``) *before* anything is decompressed, and output is read in pieces up
    to that size only: a frame that declares 1 KB and inflates to 1 GB (a
    decompression bomb) costs at most the declared size plus one piece.

    Raises
    ------
    FileFormatError
        If the frame is damaged, has trailing data, lacks its content size, or its
        content size differs from ``expected`` or exceeds ``limit``.
    """
    try:
        params = zstd.get_frame_parameters(frame)
    except zstd.ZstdError as exc:
        raise FileFormatError(f"{what} is corrupt (not a zstd frame: {exc})") from exc
    size = params.content_size
    if (size == zstd.CONTENTSIZE_UNKNOWN or params.dict_id != 0
            or params.has_checksum != (checksum and dictionary is None)):
        raise FileFormatError(f"{what} is corrupt (unexpected zstd frame parameters)")
    if expected is not None and size != expected:
        raise FileFormatError(f"{what} is corrupt (holds {size} bytes, expected {expected})")
    if limit is not None and size > limit:
        raise FileFormatError(f"{what} is corrupt (declares {size} bytes decompressed; "
                              f"the limit for this chunk is {limit})")
    # The frame must end exactly at the end of ``frame`` (block headers walked, not
    # decompressed): catches a cut-off checksum and trailing bytes.
    if _frame_length(frame, checksum=checksum and dictionary is None) != len(frame):
        raise FileFormatError(f"{what} is corrupt (zstd frame incomplete or followed by data)")
    parts: list[bytes] = []
    got = 0
    try:
        reader = zstd.ZstdDecompressor(dict_data=dictionary).stream_reader(
            frame, read_across_frames=False)
        while got <= size:  # one byte past the declared size proves the frame lies
            piece = reader.read(min(size + 1 - got, _DECOMPRESS_PIECE))
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
    except zstd.ZstdError as exc:
        raise FileFormatError(f"{what} is corrupt ({exc})") from exc
    if got != size:
        raise FileFormatError(f"{what} is corrupt (holds {got} bytes, declares {size})")
    return b"".join(parts)


def _frame_length(frame: bytes, checksum: bool = True) -> int:
    """Bytes of the zstd frame starting ``frame`` (with its 4-byte content checksum
    unless ``checksum`` is False), -1 if it is cut short.

    Walks the 3-byte block headers (RFC 8878, 3.1.1.2): no data is decompressed.
    """
    try:
        pos = zstd.frame_header_size(frame)
    except zstd.ZstdError:
        return -1
    while pos + 3 <= len(frame):
        head = int.from_bytes(frame[pos:pos + 3], "little")
        kind, size = (head >> 1) & 3, head >> 3
        if kind == 3:  # reserved block type
            return -1
        pos += 3 + (1 if kind == 1 else size)  # an RLE block stores one byte
        if head & 1:  # last block; then the 4-byte content checksum
            return pos + (4 if checksum else 0)
    return -1


# --------------------------------------------------------------------------- codes


def pack_codes(codes: np.ndarray, bits: Sequence[int]) -> bytes:
    """Encode integer codes at their bit widths, entropy-coded with zstd.

    Parameters
    ----------
    codes : ndarray of int, shape (n_rows, n_dims)
        Non-negative codes; ``codes[:, j] < 2 ** bits[j]``.
    bits : sequence of int, length n_dims
        Bits per dimension, each in ``[0, 16]``.  A 0-bit dimension is not stored
        (its codes must be 0).

    Returns
    -------
    bytes
        One layout byte followed by one zstd frame (see the module docstring and
        ``FORMAT.md``).  Deterministic: same codes and bits give the same bytes.

    Raises
    ------
    ValueError
        If the shapes disagree or a code does not fit its bit width.
    """
    bit_list = _check_bits(bits)
    packed = _check_codes(codes, bit_list)
    best = bytes([LAYOUT_PACKED]) + _compress(_raw_packed(packed, bit_list))
    if _raw_bytes_size(len(packed), bit_list) > 0:
        alt = bytes([LAYOUT_BYTES]) + _compress(_raw_bytes(packed, bit_list))
        if len(alt) < len(best):
            best = alt
    return best


def unpack_codes(data: bytes, n_rows: int, bits: Sequence[int]) -> np.ndarray:
    """Decode the output of :func:`pack_codes`.

    Parameters
    ----------
    data : bytes
        The packed payload.
    n_rows : int
        Number of rows that were packed.
    bits : sequence of int
        The same bit widths given to :func:`pack_codes`.

    Returns
    -------
    ndarray of int64, shape (n_rows, len(bits))
        The codes; 0-bit dimensions are all 0.

    Raises
    ------
    FileFormatError
        If ``data`` is damaged or does not hold ``n_rows`` rows of ``bits``.
    """
    bit_list = _check_bits(bits)
    n_rows = operator.index(n_rows)
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    data = bytes(data)
    if not data:
        raise FileFormatError("packed codes are corrupt (empty payload)")
    layout, frame = data[0], data[1:]
    if layout == LAYOUT_PACKED:
        raw = _decompress(frame, raw_packed_size(n_rows, bit_list), "packed codes")
        return _from_raw_packed(raw, n_rows, bit_list)
    if layout == LAYOUT_BYTES:
        raw = _decompress(frame, _raw_bytes_size(n_rows, bit_list), "packed codes")
        return _from_raw_bytes(raw, n_rows, bit_list)
    raise FileFormatError(f"packed codes are corrupt (unknown layout {layout})")


# --------------------------------------------------------------------------- tables

# How a missing value in an object column is spelled; Arrow stores all of them as
# null, so pack_table records which one each null was.
_NULL_KINDS: tuple[Any, ...] = (None, float("nan"), pd.NA, pd.NaT)


def _null_kind(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (float, np.floating)) and value != value:
        return 1  # any float NaN (Python or NumPy) comes back as float("nan")
    if value is pd.NA:
        return 2
    if value is pd.NaT:
        return 3
    raise ValueError(f"unsupported missing value {value!r} in an object column")


def _check_names(columns: pd.Index) -> list[str | int]:
    names: list[str | int] = []
    for name in columns:
        if isinstance(name, (bool, np.bool_)) or not isinstance(name, (str, int, np.integer)):
            raise ValueError(f"column names must be str or int, got {name!r}")
        names.append(name if isinstance(name, str) else int(name))
    return names


def _object_nulls(col: pd.Series) -> int | list[int] | None:
    """Kinds of the missing values of an object column: one code, a list, or None."""
    missing = col[col.isna().to_numpy()]
    if missing.empty:
        return None
    kinds = [_null_kind(v) for v in missing]
    return kinds[0] if len(set(kinds)) == 1 else kinds


def _culprit(frame: pd.DataFrame, names: list[str | int]) -> str:
    """Name the first column Arrow cannot convert (for the error message)."""
    for i, name in enumerate(names):
        try:
            pa.array(frame.iloc[:, i], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            return f"column {name!r} cannot be stored losslessly (mixed or unsupported types)"
    return "cannot store these columns losslessly"


def _record_batch(frame: pd.DataFrame) -> pa.RecordBatch:
    """``RecordBatch.from_pandas`` whose bytes depend only on the values.

    Two fixes on top of it (both needed for "same rows -> same bytes" when rows
    arrive in pieces): Arrow-backed columns held in several chunks (``pd.concat``
    of ``str`` columns) are refused by ``RecordBatch.from_pandas``, so they go
    through a Table whose chunks are combined; and a slice of a larger frame keeps
    its parent's buffers, which the IPC writer stores differently (40 more bytes
    for 128 of 400 string ids), so every column is copied into fresh buffers.
    """
    try:
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    except TypeError:
        table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
        arrays = [c.chunk(0) if c.num_chunks else pa.array([], type=c.type)
                  for c in table.columns]
        batch = pa.RecordBatch.from_arrays(arrays, schema=table.schema)
    fresh = [pa.concat_arrays([col]) for col in batch.columns]
    return pa.RecordBatch.from_arrays(fresh, schema=batch.schema)


def pack_table(df: pd.DataFrame) -> bytes:
    """Serialize passthrough columns losslessly (Arrow IPC stream + zstd).

    Parameters
    ----------
    df : pandas.DataFrame
        Columns to carry through unchanged (ids, keys).  Column names must be
        ``str`` or ``int`` (duplicates allowed).  Every column must hold a single
        Arrow-representable type (an object column may not mix e.g. ints and
        strings).

    Returns
    -------
    bytes
        One zstd frame holding an Arrow IPC stream; deterministic.

    Notes
    -----
    Kept: column order and names, dtypes (numpy, nullable, ``str``/``string``,
    categorical, datetime), NaN / None / ``pd.NA`` / ``NaT`` exactly as spelled in
    object columns, and the number of rows (also with no columns).  Not kept: the
    index (the result has a default ``RangeIndex``).  Object columns come back as
    plain Python values (str, int, float, bool, bytes, ...).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"pack_table needs a DataFrame, got {type(df).__name__}")
    names = _check_names(df.columns)
    # Positional Arrow field names: original names may be ints or repeated.
    frame = df.set_axis([f"c{i}" for i in range(df.shape[1])], axis=1)
    frame = frame.reset_index(drop=True)
    objects = {}
    for i in range(df.shape[1]):
        if frame.iloc[:, i].dtype == object:
            objects[str(i)] = _object_nulls(frame.iloc[:, i])
    try:
        # One record batch, also for 0 rows: Table.to_batches() would drop an empty
        # batch and with it a categorical's categories.
        batch = _record_batch(frame)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise ValueError(f"pack_table: {_culprit(frame, names)}: {exc}") from exc
    _check_id_lengths(batch, names)
    meta = {
        "version": _TABLE_FORMAT,
        "names": names,
        "names_object": df.columns.dtype == object,  # else: let pandas infer (str/int)
        "rows": len(df),
        "object": objects,
    }
    schema_meta = dict(batch.schema.metadata or {})
    schema_meta[_TABLE_META_KEY] = json.dumps(meta, separators=(",", ":")).encode()
    batch = batch.replace_schema_metadata(schema_meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    raw = sink.getvalue().to_pybytes()
    limit = table_size_limit(len(df), df.shape[1])
    if len(raw) > limit:
        raise ValueError(f"the id columns of these {len(df)} rows take {len(raw)} bytes; "
                         f"a chunk's id table may take at most {limit} (about "
                         f"{TABLE_CELL_BYTES} bytes per value)")
    return _compress(raw, TABLE_ZSTD_LEVEL)


def _restore_object(column: pa.ChunkedArray, nulls: int | list[int] | None) -> pd.Series:
    values = column.to_pylist()
    if nulls is not None:
        n_null = sum(v is None for v in values)
        codes = [nulls] * n_null if type(nulls) is int else nulls
        if (not isinstance(codes, list) or len(codes) != n_null
                or any(type(c) is not int or not 0 <= c < len(_NULL_KINDS) for c in codes)):
            raise ValueError("null spellings disagree with the column")
        kinds = iter(codes)
        values = [_NULL_KINDS[next(kinds)] if v is None else v for v in values]
    return pd.Series(values, dtype=object)


def unpack_table(data: bytes, max_bytes: int | None = None) -> pd.DataFrame:
    """Inverse of :func:`pack_table`.

    Parameters
    ----------
    data : bytes
    max_bytes : int, optional
        Refuse a table that declares more decompressed bytes than this, before
        decompressing it (:func:`table_size_limit` of the chunk's rows and columns).

    Raises
    ------
    FileFormatError
        If ``data`` is damaged, too large or was not made by :func:`pack_table`.
    """
    raw = _decompress(bytes(data), None, "passthrough table", max_bytes)
    try:
        table = pa.ipc.open_stream(pa.BufferReader(raw)).read_all()
        table.validate(full=True)
        meta = load_json((table.schema.metadata or {})[_TABLE_META_KEY])
        if not isinstance(meta, dict) or meta.get("version") != _TABLE_FORMAT:
            raise ValueError(f"unknown table metadata version {meta.get('version')!r}")
        names, n_rows, objects = meta["names"], meta["rows"], meta["object"]
        # (a table without columns has no rows in Arrow: the count comes from meta)
        if len(names) != table.num_columns or (names and n_rows != table.num_rows):
            raise ValueError("table metadata disagrees with the table")
        _check_id_lengths(table, names)
        df = table.to_pandas()
        for key, nulls in objects.items():
            i = int(key)
            df.isetitem(i, _restore_object(table.column(i), nulls))
    except (pa.ArrowException, AttributeError, KeyError, IndexError, TypeError,
            ValueError) as exc:
        raise FileFormatError(f"passthrough table is corrupt ({exc})") from exc
    if not names:
        return pd.DataFrame(index=pd.RangeIndex(n_rows))
    df.columns = pd.Index(names, dtype=object if meta.get("names_object") else None)
    return df


def table_size_limit(n_rows: int, n_cols: int) -> int:
    """Most bytes the Arrow stream of an ``n_rows`` x ``n_cols`` id table may hold."""
    return min(MAX_TABLE_BYTES, TABLE_BASE_BYTES + n_rows * n_cols * TABLE_CELL_BYTES)


def _check_id_lengths(table: pa.Table | pa.RecordBatch, names: list[Any]) -> None:
    """Refuse a text / binary value longer than :data:`MAX_ID_BYTES` (``ValueError``)."""
    for i, column in enumerate(table.columns):
        kind = column.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
            continue
        lengths = pc.binary_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_ID_BYTES:
            row = pc.index(lengths, longest).as_py()
            raise ValueError(f"column {names[i]!r}, row {row + 1} of the chunk: a value of "
                             f"{longest} bytes; "
                             f"id values may hold at most {MAX_ID_BYTES} bytes")


# --------------------------------------------------------------------------- missing mask


def mask_size_limit(n_rows: int, n_cols: int, n_planes: int | None = None) -> int:
    """Raw bytes of a missing mask: column bitmap + ``n_planes`` row bit planes."""
    planes = n_cols if n_planes is None else n_planes
    return (n_cols + 7) // 8 + (n_rows * planes + 7) // 8


def pack_mask(mask: np.ndarray) -> bytes:
    """Which cells of a chunk were missing, as one zstd frame (``FORMAT.md``).

    Parameters
    ----------
    mask : ndarray of bool, shape (n_rows, n_cols)
        True where a cell was missing; at least one must be.

    Returns
    -------
    bytes
        A zstd frame holding a column bitmap (``ceil(n_cols / 8)`` bytes, MSB
        first: bit set = the column has missing cells in the chunk) followed by the
        row bits of those columns only, column after column as one bit stream
        (MSB first, zero-padded to a byte).  A few bits per row where anything is
        missing, nothing for complete columns.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError("pack_mask needs a 2-D mask with at least one missing cell")
    planes = mask.any(axis=0)
    raw = np.packbits(planes).tobytes() + np.packbits(mask[:, planes].T.reshape(-1)).tobytes()
    return _compress(raw)


def unpack_mask(data: bytes, n_rows: int, n_cols: int) -> np.ndarray:
    """Inverse of :func:`pack_mask`; the size is checked before decompressing.

    Raises
    ------
    FileFormatError
        If the section is damaged, larger than ``n_rows`` x ``n_cols`` bits allow,
        or not in the canonical form :func:`pack_mask` writes.
    """
    raw = _decompress(bytes(data), None, "missing mask", mask_size_limit(n_rows, n_cols))
    head = (n_cols + 7) // 8
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    planes = bits[:n_cols * (len(raw) >= head)].astype(bool)
    k = int(planes.sum())
    if len(raw) != mask_size_limit(n_rows, n_cols, k) or not k or bits[n_cols:head * 8].any():
        raise FileFormatError("missing mask is corrupt (its size disagrees with its columns)")
    cells = bits[head * 8:]
    if cells[n_rows * k:].any():
        raise FileFormatError("missing mask is corrupt (padding bits set)")
    out = np.zeros((n_rows, n_cols), dtype=bool)
    out[:, planes] = cells[:n_rows * k].reshape(k, n_rows).T.astype(bool)
    if not out[:, planes].any(axis=0).all():
        raise FileFormatError("missing mask is corrupt (a listed column has no missing cell)")
    return out
