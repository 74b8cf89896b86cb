"""Guards for reading untrusted files: bounded JSON, bounded reads, regular files only.

A ``.vkc`` container or manifest from a stranger is data: its JSON is parsed within
bounds (size, nesting, integer digits, finite numbers, unique keys), and a path is
opened only if it names a regular file, so a FIFO or ``/dev/zero`` cannot hang a
reader or feed it without end.  The bounds are listed in ``FORMAT.md`` ("Bounds").
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
from typing import IO, Any

import numpy as np

from ..errors import FileFormatError

__all__ = [
    "MAX_HEADER_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "load_json",
    "open_regular",
    "Source",
]

# A header JSON holds a schema: a few KB for a typical table; 1000 columns with
# 1000 levels each (the most a schema allows per column) are ~20 MB.
MAX_HEADER_JSON_BYTES = 2**26
# vaekit's own headers nest 5 deep (header > schema > columns > column > levels).
MAX_JSON_DEPTH = 64
# Python parses a huge integer in quadratic time (and 3.11 refuses over 4300 digits
# with a ValueError from deep inside json); no header number needs more than 40.
MAX_JSON_INT_DIGITS = 40

# Reads from non-seekable streams are done in pieces of at most this many bytes, so
# a damaged length field can never make the reader allocate more than the stream
# actually delivers (plus one piece).
_READ_PIECE = 8 * 2**20


def _depth(data: bytes, piece: int = 2**20) -> int:
    """Deepest ``[`` / ``{`` nesting of JSON text, strings skipped.

    Vectorized over pieces of ``piece`` bytes (a few MB of scratch memory for any
    size), carrying the open depth, whether a string is open and the length of a
    trailing run of backslashes from piece to piece.
    """
    codes_all = np.frombuffer(data, dtype=np.uint8)
    depth, inside, run_in, deepest = 0, False, 0, 0
    for start in range(0, len(codes_all), piece):
        codes = codes_all[start:start + piece]
        slash = codes == ord("\\")
        count = np.cumsum(slash, dtype=np.int64)
        # run of backslashes ending at each byte (continuing the previous piece's run)
        run = count - np.maximum.accumulate(np.where(slash, 0, count))
        first_other = int(np.argmin(slash)) if not slash.all() else len(codes)
        run[:first_other] += run_in
        quote = codes == ord('"')
        escaped = np.zeros_like(quote)
        escaped[0] = run_in % 2 == 1
        escaped[1:] = run[:-1] % 2 == 1
        opens = np.cumsum(quote & ~escaped, dtype=np.int64) + int(inside)
        strings = (opens % 2 == 1) | (quote & ~escaped)  # quotes themselves count as inside
        step = np.zeros(len(codes), dtype=np.int64)
        step[(codes == ord("[")) | (codes == ord("{"))] = 1
        step[(codes == ord("]")) | (codes == ord("}"))] = -1
        step[strings] = 0
        levels = np.cumsum(step) + depth
        deepest = max(deepest, int(levels.max(initial=depth)))
        depth, inside, run_in = int(levels[-1]), bool(opens[-1] % 2), int(run[-1])
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (NaN and Infinity are not JSON)")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (at most {MAX_JSON_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} overflows a double")
    return value


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("an object repeats a key")
    return out


def load_json(data: bytes, max_bytes: int = MAX_HEADER_JSON_BYTES) -> Any:
    """Parse untrusted UTF-8 JSON within bounds; ``ValueError`` says what is wrong.

    Refused: more than ``max_bytes`` bytes, nesting deeper than
    :data:`MAX_JSON_DEPTH`, integers of more than :data:`MAX_JSON_INT_DIGITS`
    digits, ``NaN`` / ``Infinity`` and numbers that overflow a double, repeated
    keys, invalid UTF-8.  (Python's parser would raise ``RecursionError`` on deep
    nesting and spend quadratic time on huge integers.)
    """
    if len(data) > max_bytes:
        raise ValueError(f"{len(data)} bytes of JSON (at most {max_bytes})")
    if _depth(data) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant, parse_int=_int,
                          parse_float=_float, object_pairs_hook=_pairs)
    except RecursionError:  # (the depth check above should make this unreachable)
        raise ValueError("JSON nested too deeply") from None


def open_regular(name: str) -> IO[bytes]:
    """Open a path for reading only if it is a regular file (``FileFormatError``).

    Opened non-blocking and checked with ``fstat`` (no race with a swapped path), so
    a FIFO, a device (``/dev/zero``) or a symlink to one is refused at once instead
    of blocking forever or streaming without end.
    """
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileFormatError(f"{name}: not a regular file (a FIFO, device or "
                                  "folder cannot be a vaekit container)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class Source:
    """Byte source that tracks its position and, when seekable, its size.

    Parameters
    ----------
    f : binary file object
    name : str
        Used to prefix error messages.
    """

    def __init__(self, f: IO[bytes], name: str) -> None:
        self.f = f
        self.name = name
        self.pos = 0
        self.end: int | None = None  # bytes from the start position to EOF
        self.start = 0
        try:
            seekable = bool(f.seekable())
        except (AttributeError, OSError, ValueError):
            seekable = False
        if seekable:
            self.start = f.tell()
            self.end = f.seek(0, io.SEEK_END) - self.start
            f.seek(self.start)

    @property
    def seekable(self) -> bool:
        return self.end is not None

    def error(self, message: str) -> FileFormatError:
        return FileFormatError(f"{self.name}: {message}")

    def seek(self, pos: int) -> None:
        self.f.seek(self.start + pos)
        self.pos = pos

    def read_upto(self, n: int) -> bytes:
        """Read up to ``n`` bytes, fewer only at end of file; never over-allocates.

        For a seekable file ``n`` is first clipped to the bytes left, so one read
        of at most the largest chunk does it.  A stream is read in pieces of
        ``_READ_PIECE`` bytes, so a damaged length costs at most one piece.
        """
        if self.end is not None:
            n = min(n, self.end - self.pos)
            piece = n
        else:
            piece = _READ_PIECE
        parts: list[bytes] = []
        got = 0
        while got < n:
            data = self.f.read(min(n - got, piece))
            if not data:
                break
            parts.append(data)
            got += len(data)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.pos += len(out)
        return out

    def read_exact(self, n: int, truncated: str) -> bytes:
        """Read exactly ``n`` bytes or raise ``FileFormatError("truncated: ...")``."""
        data = self.read_upto(n)
        if len(data) != n:
            raise self.error(f"truncated: {truncated}")
        return data

    def remaining(self) -> int | None:
        return None if self.end is None else self.end - self.pos
