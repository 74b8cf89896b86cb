"""Atomic file output: write a temporary sibling, then rename it onto the target.

A reader never sees a half-written file, and a failed write leaves an existing file
untouched.  Used for model files, score tables, containers and reports.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO


class AtomicFile:
    """A binary file that appears under ``path`` only when :meth:`commit` is called.

    The temporary file lives in the same folder (so the rename is atomic) and is
    named ``.<name>.<random>.tmp``; :meth:`abort` removes it and leaves ``path``
    untouched.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        # O_EXCL: never take over someone else's file.  Mode 0o666 lets the kernel
        # apply the umask, so the result has a plainly created file's permissions
        # (reading the umask would mean setting it, process-wide, under our threads).
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            self._tmp = str(self.path.parent / f".{self.path.name}.{secrets.token_hex(6)}.tmp")
            try:
                fd = os.open(self._tmp, flags, 0o666)
                break
            except FileExistsError:
                continue
        try:
            self.fh: IO[bytes] = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            os.unlink(self._tmp)
            raise

    def commit(self) -> None:
        """Flush to disk and move the file onto its final name (durably, on POSIX)."""
        self.fh.flush()
        os.fsync(self.fh.fileno())  # data on disk before the rename
        self.fh.close()
        os.replace(self._tmp, self.path)
        _fsync_directory(self.path.parent)

    def abort(self) -> None:
        """Close and delete the temporary file; the final name is left untouched."""
        try:
            self.fh.close()  # flushes; may fail again (disk full): remove the file anyway
        except OSError:
            pass
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def _fsync_directory(path: str | os.PathLike) -> None:
    """Make a rename durable (POSIX); skipped where folders can't be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file via a temporary sibling and an atomic rename.

    ``write`` receives the open temporary file.  If it raises, the temporary file is
    removed and any existing file at ``path`` is left untouched.
    """
    out = AtomicFile(path)
    try:
        write(out.fh)
        out.commit()
    except BaseException:
        out.abort()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(data))
