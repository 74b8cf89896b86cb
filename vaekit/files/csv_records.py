"""Finding the records of a CSV file, for :func:`vaekit.files.readers.iter_csv`.

vaekit finds the CSV records itself and hands Arrow whole records, one block at a
time, so that

- every row's physical line is known exactly (blank lines, ``\r\n`` and lone ``\r``
  line ends, and line breaks inside quoted fields included: the line of a row is the
  line its first field is on, header = line 1);
- a header or a single line longer than a block is read whole (the block grows);
- a record that never ends (a quote left open) is refused at
  :data:`MAX_RECORD_BYTES` instead of being read into memory.

The quoting rules are Arrow's (and RFC 4180's): a quote opens a quoted field only at
the start of a field, ``""`` inside a quoted field is one quote, and a quote inside an
unquoted field is a literal character.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from ..errors import DataError
from .untrusted import open_regular

# Longest CSV record (the header included) read whole; a longer one is refused.
MAX_RECORD_BYTES = 64 * 2**20

_QUOTE, _COMMA, _LF, _CR = 34, 44, 10, 13


def _open_regular(path: str, kind: str) -> BinaryIO:
    def error(why: str) -> DataError:
        if why.startswith("is a folder"):
            return DataError(f"is a folder, not a {kind} file", file=path)
        return DataError(f"{why}; save the data to a file first", file=path)

    try:
        return open_regular(path, error)
    except FileNotFoundError:
        raise DataError("file not found", file=path) from None


def check_regular_file(path: str, kind: str = "CSV") -> None:
    """Refuse a missing path, a folder, a pipe or a device as an input file.

    Each input is read more than once (header, then rows): a pipe would hang (or
    lose its start), and a device never ends.
    """
    _open_regular(path, kind).close()


class _GzipInput(gzip.GzipFile):
    """A ``GzipFile`` over a checked handle that it also closes (GzipFile does not)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_input(path: str) -> BinaryIO:
    """The file's bytes (decompressed for ``.gz``), refusing pipes and devices."""
    fh = _open_regular(path, "CSV")
    if path.lower().endswith(".gz"):
        return _GzipInput(fh)  # type: ignore[return-value]
    return fh


def read_bytes(fh: BinaryIO, n: int, path: str) -> bytes:
    try:
        return fh.read(n)
    except (gzip.BadGzipFile, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"not a valid gzip file ({exc})", file=path) from None
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc}", file=path) from None


def _terminators(buf: bytes, at_eof: bool) -> tuple[np.ndarray, np.ndarray]:
    """Line ends of ``buf`` (which starts at a record) and which of them end a record.

    A line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (as Arrow reads them); it ends a
    record unless it lies inside a quoted field.  Fast path: outside quotes the
    number of quote characters before a position is even, which holds as long as
    every quote that opens a field stands at the start of a field; a file where it
    does not (a stray quote inside an unquoted field) takes the exact scan.
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    n = len(arr)
    term = np.flatnonzero(arr == _LF)
    cr = np.flatnonzero(arr == _CR)
    if len(cr):
        after = np.minimum(cr + 1, n - 1)
        lone = (arr[after] != _LF) & ((cr + 1 < n) | at_eof)  # a last \r may precede \n
        term = np.sort(np.concatenate([term, cr[lone]]))
    q = np.flatnonzero(arr == _QUOTE)
    if not len(q):
        return term, np.ones(len(term), dtype=bool)
    opening = q[0::2]
    k = np.arange(0, len(q), 2)
    at_field_start = (opening == 0) | np.isin(arr[opening - 1], (_COMMA, _LF, _CR))
    escaped = (k > 0) & (q[k - 1] == opening - 1)  # "" inside a quoted field
    if not np.all(at_field_start | escaped):
        return _terminators_exact(arr, at_eof)
    return term, np.searchsorted(q, term) % 2 == 0


def _terminators_exact(arr: np.ndarray, at_eof: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_terminators` by a state machine over quotes and line breaks (slow path)."""
    n = len(arr)
    events = np.flatnonzero((arr == _QUOTE) | (arr == _LF) | (arr == _CR)).tolist()
    term: list[int] = []
    ends: list[bool] = []
    quoted = False
    i = 0
    while i < len(events):
        p = events[i]
        c = arr[p]
        if c == _QUOTE:
            if quoted and p + 1 < n and arr[p + 1] == _QUOTE:
                i += 1  # an escaped quote: skip its second half
            elif quoted:
                quoted = False
            elif p == 0 or arr[p - 1] in (_COMMA, _LF, _CR):
                quoted = True  # a quote elsewhere in an unquoted field is literal
        elif c == _LF or (p + 1 < n and arr[p + 1] != _LF) or (p + 1 == n and at_eof):
            term.append(p)
            ends.append(not quoted)
        i += 1
    return np.asarray(term, dtype=np.int64), np.asarray(ends, dtype=bool)


def split_records(buf: bytes, at_eof: bool) -> tuple[int, np.ndarray, np.ndarray, int]:
    """The whole records at the start of ``buf``.

    Returns
    -------
    (end, offsets, starts, lines)
        ``buf[:end]`` holds whole records; ``offsets`` are the byte offsets and
        ``starts`` the line (0-based, within ``buf``) where each non-empty record
        starts; ``lines`` is the number of line ends in ``buf[:end]``.
    """
    term, is_end = _terminators(buf, at_eof)
    idx = np.flatnonzero(is_end)
    stops = term[idx]  # position of each record's line end
    offsets = np.concatenate([[0], stops[:-1] + 1]).astype(np.int64) if len(idx) else \
        np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], idx[:-1] + 1]).astype(np.int64) if len(idx) else \
        np.zeros(0, dtype=np.int64)
    end, lines = (int(stops[-1]) + 1, int(idx[-1]) + 1) if len(idx) else (0, 0)
    if at_eof and end < len(buf):  # a last record without a line end
        offsets, starts = np.append(offsets, end), np.append(starts, lines)
        stops, end = np.append(stops, len(buf)), len(buf)
    arr = np.frombuffer(buf, dtype=np.uint8)
    size = stops - offsets
    # Arrow skips empty lines ("\r\n" included): they are not rows.
    empty = (size == 0) | ((size == 1) & (arr[np.minimum(offsets, len(arr) - 1)] == _CR))
    return end, offsets[~empty], starts[~empty], lines


def record_blocks(path: str, block_bytes: int) -> Iterator[tuple[bytes, np.ndarray]]:
    """Blocks of whole records, header left out, with each record's physical line.

    Raises
    ------
    DataError
        A record longer than :data:`MAX_RECORD_BYTES` (named by its first line).
    """
    with open_input(path) as fh:
        pending, line, header, want = b"", 1, True, block_bytes
        while True:
            more = read_bytes(fh, want, path)
            buf, eof = pending + more, not more
            end, offsets, starts, lines = split_records(buf, eof)
            if header and len(offsets):
                # The header is the first record; data starts with the next one.
                header, offsets, starts = False, offsets[1:], starts[1:]
                data_start = int(offsets[0]) if len(offsets) else end
            else:
                data_start = 0
            if end == 0 and not eof:
                if len(buf) > MAX_RECORD_BYTES:
                    raise DataError(
                        f"a record longer than {_size(MAX_RECORD_BYTES)} starts on this "
                        "line (is a quote left open?); vaekit reads records up to that size",
                        file=path, row=line)
                want = max(block_bytes, len(buf))  # a long record: read more at once
                pending = buf
                continue
            if len(offsets):
                yield buf[data_start:end], starts + line
            pending, line, want = buf[end:], line + lines, block_bytes
            if eof:
                return


def first_record(path: str, sniff: int = 64 * 2**10) -> bytes:
    """The bytes of the header record, however long (up to :data:`MAX_RECORD_BYTES`)."""
    with open_input(path) as fh:
        buf, eof = read_bytes(fh, sniff, path), False
        while True:
            end, *_ = split_records(buf, eof)
            if end > MAX_RECORD_BYTES or (not end and len(buf) >= MAX_RECORD_BYTES):
                raise DataError(f"the header is longer than {_size(MAX_RECORD_BYTES)} (is a "
                                "quote left open?)", file=path, row=1)
            if end or eof or b"\0" in buf:
                return buf[:end] if end else buf
            more = read_bytes(fh, max(sniff, len(buf)), path)
            buf, eof = buf + more, not more


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"
