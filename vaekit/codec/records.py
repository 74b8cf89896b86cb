"""The chunk records and the trailer of a ``.vkc`` container, in each format version.

Format versions 1 and 2 give every number a fixed width (a 32-byte chunk record, a
28-byte trailer); version 3 writes them as unsigned LEB128 (``uvarint``, shortest
form), so a chunk record takes about 17 bytes and the trailer about 21: on a file of
a few hundred rows that is 20 to 40 bytes of a few hundred.  ``FORMAT.md`` specifies
both; :mod:`.container` reads and writes files through these functions.
"""

from __future__ import annotations

import struct
import zlib

from .guards import Source
from .varints import parse_uvarint, uvarint

__all__ = ["CHUNK_TAG", "TRAILER_TAG", "END_MAGIC", "COMPACT_VERSION", "MAX_TRAILER_SIZE",
           "crc", "chunk_head", "read_chunk_head", "trailer", "read_trailer", "probe_trailer",
           "record_bytes"]

CHUNK_TAG = b"CHNK"
TRAILER_TAG = b"TRLR"
END_MAGIC = b"\x89VKCEND\n"
# The first format version whose records use uvarints.
COMPACT_VERSION = 3

# tag, chunk index, rows in the chunk, payload length (bytes).
_CHUNK_HEAD = struct.Struct("<4sIQQ")
# tag, number of chunks, total rows.
_TRAILER_HEAD = struct.Struct("<4sIQ")
_CRC = struct.Struct("<I")
FIXED_TRAILER_SIZE = _TRAILER_HEAD.size + _CRC.size + len(END_MAGIC)  # 28 bytes
# tag, two uvarints of at most 10 bytes, CRC, the length byte, end magic.
MAX_TRAILER_SIZE = 4 + 10 + 10 + _CRC.size + 1 + len(END_MAGIC)


def crc(*parts: bytes | memoryview) -> int:
    """CRC32 (zlib / ISO-HDLC polynomial) over the concatenation of ``parts``."""
    value = 0
    for part in parts:
        value = zlib.crc32(part, value)
    return value


def _read_uvarint(src: Source, into: bytearray, truncated: str, corrupt: str) -> int:
    """Read one uvarint from ``src``, appending its bytes to ``into``."""
    start = len(into)
    for _ in range(10):
        into += src.read_exact(1, truncated)
        if not into[-1] & 0x80:
            parsed = parse_uvarint(bytes(into), start)
            if parsed is None:
                raise src.error(corrupt)
            return parsed[0]
    raise src.error(corrupt)


def chunk_head(version: int, index: int, n_rows: int, length: int) -> bytes:
    """A chunk record up to and including its ``head_crc`` (the payload follows)."""
    if version >= COMPACT_VERSION:
        head = CHUNK_TAG + uvarint(index) + uvarint(n_rows) + uvarint(length)
    else:
        head = _CHUNK_HEAD.pack(CHUNK_TAG, index, n_rows, length)
    return head + _CRC.pack(crc(head))


def read_chunk_head(src: Source, version: int, label: str) -> tuple[int, int, int, bytes]:
    """Read a chunk record after its tag, through ``head_crc`` (checked); return
    ``(index, n_rows, payload length, the record's bytes)``."""
    truncated = f"{label} ends early"
    if version >= COMPACT_VERSION:
        head = bytearray(CHUNK_TAG)
        corrupt = f"{label} is corrupt (a bad number in the chunk header)"
        index, n_rows, length = (_read_uvarint(src, head, truncated, corrupt)
                                 for _ in range(3))
        head += src.read_exact(_CRC.size, truncated)
        record = bytes(head)
    else:
        record = CHUNK_TAG + src.read_exact(_CHUNK_HEAD.size - 4 + _CRC.size, truncated)
        _, index, n_rows, length = _CHUNK_HEAD.unpack_from(record)
    (head_crc,) = _CRC.unpack_from(record, len(record) - _CRC.size)
    if head_crc != crc(record[:-_CRC.size]):
        raise src.error(f"{label} is corrupt (CRC mismatch in the chunk header)")
    return index, n_rows, length, record


def trailer(version: int, n_chunks: int, n_rows: int) -> bytes:
    """The trailer record: counts, their CRC, (version 3) its own length, end magic."""
    if version < COMPACT_VERSION:
        head = _TRAILER_HEAD.pack(TRAILER_TAG, n_chunks, n_rows)
        return head + _CRC.pack(crc(head)) + END_MAGIC
    head = TRAILER_TAG + uvarint(n_chunks) + uvarint(n_rows)
    size = len(head) + _CRC.size + 1 + len(END_MAGIC)
    return head + _CRC.pack(crc(head)) + bytes([size]) + END_MAGIC


def _counts(data: bytes) -> tuple[int, int, int] | None:
    """A version-3 trailer's two counts after its tag and the position after them
    (None when they do not parse)."""
    first = parse_uvarint(data, 4)
    second = None if first is None else parse_uvarint(data, first[1])
    return None if second is None else (first[0], *second)  # type: ignore[index]


def _parse_trailer(data: bytes, version: int) -> tuple[int, int] | str:
    """``(n_chunks, n_rows)`` of a whole trailer record, or what is wrong with it."""
    if data[:4] != TRAILER_TAG:
        return "bad record tag"
    if version < COMPACT_VERSION:
        if len(data) != FIXED_TRAILER_SIZE:
            return "bad length"
        _, n_chunks, n_rows = _TRAILER_HEAD.unpack_from(data)
        end = _TRAILER_HEAD.size
    else:
        counts = _counts(data)
        if counts is None:
            return "bad count"
        n_chunks, n_rows, end = counts
        if n_chunks >= 1 << 32 or len(data) != end + _CRC.size + 1 + len(END_MAGIC) \
                or data[end + _CRC.size] != len(data):
            return "bad length"
    if _CRC.unpack_from(data, end)[0] != crc(data[:end]):
        return "CRC mismatch"
    if data[-len(END_MAGIC):] != END_MAGIC:
        return "bad end marker"
    return n_chunks, n_rows


def read_trailer(src: Source, version: int) -> tuple[int, int, bool]:
    """Read the rest of a trailer whose tag was just read (strict: damage raises);
    return ``(n_chunks, n_rows, whether bytes follow it)``.

    A version-3 trailer is read with what follows it (at most its largest size), so a
    flipped bit that makes a count run on is "corrupt", not "truncated": only a file
    that does not end in the end magic is cut short."""
    if version < COMPACT_VERSION:
        data = TRAILER_TAG + src.read_exact(FIXED_TRAILER_SIZE - 4, "trailer ends early")
        size = len(data)
    else:
        data = TRAILER_TAG + src.read_upto(MAX_TRAILER_SIZE)
        counts = _counts(data)
        size = 0 if counts is None else counts[2] + _CRC.size + 1 + len(END_MAGIC)
        if not size or size > len(data):
            if data.endswith(END_MAGIC):
                raise src.error("trailer is corrupt (bad count)")
            raise src.error("truncated: trailer ends early")
    parsed = _parse_trailer(data[:size], version)
    if isinstance(parsed, str):
        raise src.error(f"trailer is corrupt ({parsed})")
    return (*parsed, len(data) > size)


def probe_trailer(src: Source, version: int, header_min: int) -> tuple[int, int, int] | None:
    """Read the trailer from the end of a seekable file whose header block takes at
    least ``header_min`` bytes: ``(n_chunks, n_rows, the trailer's size)``, or None if
    it is not intact (the file is then read front to back, which says what is wrong)."""
    assert src.end is not None
    size = FIXED_TRAILER_SIZE
    if version >= COMPACT_VERSION:  # the byte before the end magic is the trailer's size
        if src.end < header_min + len(END_MAGIC) + 1:
            return None
        src.seek(src.end - len(END_MAGIC) - 1)
        size = src.read_upto(1)[0]
        if size > MAX_TRAILER_SIZE:
            return None
    if src.end < header_min + size:
        return None
    src.seek(src.end - size)
    parsed = _parse_trailer(src.read_upto(size), version)
    return None if isinstance(parsed, str) else (*parsed, size)


def record_bytes(version: int, index: int, n_rows: int, length: int) -> int:
    """Bytes a chunk record adds around a payload of ``length`` bytes (head and CRCs)."""
    return len(chunk_head(version, index, n_rows, length)) + _CRC.size
