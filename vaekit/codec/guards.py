"""Guards for reading untrusted files: bounded JSON, bounded reads, regular files only.

A ``.vkc`` container or manifest from a stranger is data: its JSON is parsed within
bounds (size, nesting, integer digits, finite numbers, unique keys), and a path is
opened only if it names a regular file, so a FIFO or ``/dev/zero`` cannot hang a
reader or feed it without end.  The bounds are listed in ``FORMAT.md`` ("Bounds").
"""

from __future__ import annotations

import io
from typing import IO, Any

from ..errors import FileFormatError
from ..files import untrusted

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


def load_json(data: bytes, max_bytes: int = MAX_HEADER_JSON_BYTES) -> Any:
    """Parse a container's JSON within its bounds; ``ValueError`` says what is wrong.

    :func:`vaekit.files.untrusted.load_json` with this format's limits: nesting
    :data:`MAX_JSON_DEPTH`, integers of :data:`MAX_JSON_INT_DIGITS` digits.
    """
    return untrusted.load_json(data, max_bytes=max_bytes, max_depth=MAX_JSON_DEPTH,
                               max_int_digits=MAX_JSON_INT_DIGITS)


def open_regular(name: str) -> IO[bytes]:
    """Open a path for reading only if it is a regular file (``FileFormatError``).

    A FIFO, a device (``/dev/zero``) or a symlink to one is refused at once instead
    of blocking forever or streaming without end (see
    :func:`vaekit.files.untrusted.open_regular`).
    """
    return untrusted.open_regular(
        name, lambda why: FileFormatError(f"{name}: {why}, so not a vaekit container"))


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
