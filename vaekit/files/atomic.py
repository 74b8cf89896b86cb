"""Atomic file output: write a temporary sibling, then rename it onto the target.

A reader never sees a half-written file, and a failed write leaves an existing file
untouched.  Used for model files, score tables, containers and reports.

Only regular files (or names that do not exist yet) are replaced that way.  A
target that exists and is *not* a regular file -- a FIFO, a character device such
as ``/dev/null``, a terminal, ``/dev/stdout`` or a ``/dev/fd/N`` pipe from the
shell's ``>(...)`` -- is written in place: renaming a regular file onto it would
destroy the device node (run as root, ``-o /dev/null`` replaced the machine's
``/dev/null``) and leave a FIFO's reader waiting forever.  Such writes cannot be
taken back; :meth:`AtomicFile.abort` then only closes the file.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

# The path that means standard output (and, for inputs, standard input).
STDOUT = "-"

# Entries of /dev and of /proc are handles on devices or open files, never plain
# files to replace: /dev/stdout -> /proc/self/fd/1 may resolve to the regular file the
# shell redirected stdout to, but the rename would go into /dev (or fail there).
# (Sub-folders of /dev such as /dev/shm hold ordinary files and stay atomic.)
_SPECIAL_FOLDER = "/dev"
_SPECIAL_TREE = "/proc"


def writes_in_place(path: str | os.PathLike) -> bool:
    """Whether ``path`` is written in place (not via a temporary file and a rename).

    True when ``path`` exists and is not a regular file (FIFO, device, socket), or
    is an entry of ``/dev`` itself (``/dev/stdout``) or of ``/proc``.  Raises :class:`IsADirectoryError` for a folder.
    """
    try:
        st = os.stat(path)  # follows symlinks: /dev/stdout, /dev/fd/63, links to FIFOs
    except FileNotFoundError:
        return False
    except OSError:
        return False  # e.g. a dangling link: let the plain path report the error
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", os.fspath(path))
    if not stat.S_ISREG(st.st_mode):
        return True
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    return parent == _SPECIAL_FOLDER or (parent + os.sep).startswith(_SPECIAL_TREE + os.sep)


class AtomicFile:
    """A binary file that appears under ``path`` only when :meth:`commit` is called.

    The temporary file lives in the same folder (so the rename is atomic) and is
    named ``.<name>.<random>.tmp``; :meth:`abort` removes it and leaves ``path``
    untouched.  A ``path`` that exists and is not a regular file (see
    :func:`writes_in_place`) is opened and written directly instead; then
    ``in_place`` is True, :meth:`commit` only flushes and closes, and
    :meth:`abort` only closes.

    Raises
    ------
    IsADirectoryError
        ``path`` is a folder.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.in_place = writes_in_place(path)
        self._tmp: str | None = None
        if self.in_place:
            # No O_CREAT/O_TRUNC: the node exists and is not ours to recreate.  O_APPEND
            # keeps `>>` semantics where /dev/stdout resolves to a regular file.
            flags = os.O_WRONLY | getattr(os, "O_BINARY", 0)
            if stat.S_ISREG(os.stat(path).st_mode):
                flags |= os.O_APPEND
            fd = os.open(path, flags)  # a FIFO blocks here until its reader opens it
        else:
            # O_EXCL: never take over someone else's file.  Mode 0o666 lets the kernel
            # apply the umask, so the result has a plainly created file's permissions
            # (reading the umask would mean setting it, process-wide, under our threads).
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            while True:
                tmp = str(self.path.parent / f".{self.path.name}.{secrets.token_hex(6)}.tmp")
                try:
                    fd = os.open(tmp, flags, 0o666)
                    break
                except FileExistsError:
                    continue
            self._tmp = tmp
        try:
            self.fh: IO[bytes] = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            if self._tmp is not None:
                os.unlink(self._tmp)
            raise

    def commit(self) -> None:
        """Flush to disk and move the file onto its final name (durably, on POSIX)."""
        if self._tmp is None:  # in place: nothing to rename
            self.fh.close()  # flushes
            return
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
        if self._tmp is None:
            return
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
    removed and any existing file at ``path`` is left untouched.  A FIFO or device
    is written in place (see :class:`AtomicFile`).
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
