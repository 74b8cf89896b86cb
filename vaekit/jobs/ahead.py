"""Reading ahead: an iterator's items produced in a background thread.

Parsing (pyarrow) and the numerical work (numpy, torch) release the GIL, so a reader
thread that parses the next chunks overlaps the work on the current one.  Used by the
local scoring engine and by compression.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Full, Queue
from typing import Any, TypeVar

__all__ = ["READ_AHEAD", "read_ahead"]

T = TypeVar("T")

# Chunks read ahead of their consumer (each ~2 MB of CSV text: memory stays bounded).
READ_AHEAD = 2


class _End:
    pass


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(items: Iterator[T], depth: int, *, name: str = "vaekit-reader") -> Iterator[T]:
    """``items``, produced in a background thread at most ``depth`` items ahead.

    An exception raised by ``items`` is raised here, after the items before it.
    Closing this generator stops the thread (and closes ``items``, in that thread).
    """
    stop = threading.Event()
    queue: Queue[Any] = Queue(maxsize=depth)

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        # Reading and preparing rows is pyarrow, pandas and numpy: no torch here, so no
        # thread setting to touch (torch's is process-wide).
        try:
            for item in items:
                if not put(item):
                    return
            put(_End())
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, in order
            put(_Raised(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name=name, daemon=True)
    reader.start()
    try:
        while True:
            entry = queue.get()
            if isinstance(entry, _End):
                return
            if isinstance(entry, _Raised):
                raise entry.exc
            yield entry
    finally:
        stop.set()
        if reader.is_alive():
            reader.join(timeout=30)
