"""Unsigned LEB128 integers (``uvarint``) and the zigzag map, as the ``.vkc`` format
writes them (``FORMAT.md``): one value at a time for record fields, arrays of them
for tables of values."""

from __future__ import annotations

import numpy as np

from ..errors import FileFormatError

__all__ = ["uvarint", "parse_uvarint", "uvarints", "read_uvarints", "zigzag", "unzigzag"]


def uvarints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 of each value (uint64), concatenated."""
    v = np.asarray(values, dtype=np.uint64)
    if v.size <= 8:  # a few lengths or a table head: a loop beats the array passes
        return b"".join(uvarint(int(x)) for x in v)
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


def read_uvarints(data: bytes, pos: int, count: int) -> tuple[np.ndarray, int]:
    """``count`` LEB128 values (uint64) from ``data[pos:]`` and the position after them."""
    # at most 10 bytes a value: never look (or allocate) past that, however long data is
    start = min(pos, len(data))
    raw = np.frombuffer(data, dtype=np.uint8, offset=start,
                        count=min(len(data) - start, 10 * count))
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


def uvarint(value: int) -> bytes:
    """Unsigned LEB128 of one value (shortest form)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def zigzag(v: int) -> int:
    return v << 1 if v >= 0 else ((-v - 1) << 1) | 1


def unzigzag(u: int) -> int:
    return (u >> 1) ^ -(u & 1)


def parse_uvarint(data: bytes, pos: int) -> tuple[int, int] | None:
    """The shortest-form uvarint at ``data[pos:]`` (at most 64 bits) and the position
    after it; None when it is cut off, padded or too large."""
    value, shift = 0, 0
    for i in range(pos, min(len(data), pos + 10)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if (byte == 0 and i > pos) or value >= 1 << 64:
                return None
            return value, i + 1
        shift += 7
    return None
