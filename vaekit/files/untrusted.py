"""Reading a stranger's bytes: bounded JSON, and regular files only.

Model files, ``.vkc`` headers and manifests all carry JSON that anyone can write
(a checksum is not a signature), and all name paths that may turn out to be a FIFO
or ``/dev/zero``.  The one parser and the one opener here make every reader equally
strict; the bounds each reader passes are listed in ``vaekit/codec/FORMAT.md``.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = ["JSON_MAX_INT", "load_json", "open_regular"]

# Integers a reader in any language can hold: signed 64-bit.
JSON_MAX_INT = 2**63 - 1


class _NonFinite:
    """Stands in for a ``NaN`` / ``Infinity`` literal until the walk names its key."""

    def __init__(self, text: str) -> None:
        self.text = text


def _nesting(data: bytes, piece: int = 2**20) -> int:
    """Deepest ``[`` / ``{`` nesting of JSON text, strings skipped.

    Counted before parsing (Python's parser recurses, so 100,000 ``[`` would raise
    ``RecursionError``, and a deep parse takes memory first).  Vectorized over
    pieces of ``piece`` bytes, carrying the open depth, whether a string is open and
    the length of a trailing run of backslashes from piece to piece.
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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:  # json.loads would silently keep the last one
            raise ValueError(f"key {key!r} appears twice in one object")
        obj[key] = value
    return obj


def load_json(data: bytes | str, *, max_bytes: int, max_depth: int,
              max_int_digits: int = 40) -> Any:
    """Parse a stranger's UTF-8 JSON within bounds.

    Refused, each with a ``ValueError`` that says what (and, for values, where, as a
    key path such as ``'fitted.config.hidden[0]'``): more than ``max_bytes`` bytes;
    nesting deeper than ``max_depth`` (counted before parsing); an integer literal of
    more than ``max_int_digits`` digits (checked before ``int()``, which is quadratic
    in the digits and refuses over 4,300 of them) or beyond signed 64 bits;
    ``NaN`` / ``Infinity`` literals (Python's json accepts them) and numbers that
    overflow a double; a key repeated in one object; invalid UTF-8 or JSON.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise ValueError(f"{len(raw)} bytes of JSON (at most {max_bytes})")
    if _nesting(raw) > max_depth:
        raise ValueError(f"JSON nested too deeply (more than {max_depth} levels)")

    def bounded_int(text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > max_int_digits:
            raise ValueError(f"an integer of {digits} digits (at most {max_int_digits})")
        return int(text)

    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_NonFinite,
                           parse_int=bounded_int, object_pairs_hook=_unique_keys)
    except RecursionError:  # (the nesting bound should make this unreachable)
        raise ValueError("JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    _check_values(value)
    return value


def _check_values(value: Any) -> None:
    """Refuse non-finite numbers and integers beyond 64 bits, naming the key path."""
    stack: list[tuple[Any, str]] = [(value, "")]  # a stack, not recursion
    while stack:
        item, path = stack.pop()
        # pushed in reverse, so the first offender in document order is the one named
        if isinstance(item, dict):
            stack.extend(reversed([(v, f"{path}.{k}" if path else str(k))
                                   for k, v in item.items()]))
        elif isinstance(item, list):
            if len(item) > 64 and _finite_floats(item):
                continue  # long score lists: checked in bulk
            stack.extend(reversed([(v, f"{path}[{i}]") for i, v in enumerate(item)]))
        elif isinstance(item, _NonFinite):
            raise ValueError(f"'{path}' is {item.text}, not a finite number")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"'{path}' is {item}, not a finite number (it overflows "
                             "a double)")
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > JSON_MAX_INT:
            raise ValueError(f"'{path}' is an integer beyond 64 bits")


def _finite_floats(items: list[Any]) -> bool:
    """True if ``items`` are all finite floats (checked in bulk; False: look closer)."""
    if set(map(type, items)) != {float}:
        return False
    return bool(np.isfinite(np.fromiter(items, dtype=np.float64, count=len(items))).all())


def open_regular(path: str | os.PathLike, error: Callable[[str], Exception], *,
                 follow_symlinks: bool = True) -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file.

    Opened non-blocking (opening a FIFO would otherwise wait for a writer) and
    checked with ``fstat`` on the open handle, so a name swapped after a check
    cannot slip a FIFO or ``/dev/zero`` in; the handle is then made blocking again.
    With ``follow_symlinks=False`` a symbolic link is refused too (``O_NOFOLLOW``).

    Parameters
    ----------
    path : path-like
    error : callable
        Makes the exception to raise from a message (e.g. a ``FileFormatError``
        naming the file), so each reader keeps its own error type and exit code.

    Raises
    ------
    FileNotFoundError
        No such file (left to the caller, which knows whether that is a usage error).
    Exception
        ``error(message)`` for a folder, a FIFO, socket or device, a refused link or
        an unreadable path.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(2, "No such file or directory", str(path)) from None
    except IsADirectoryError:
        raise error("is a folder, not a file") from None
    except OSError as exc:  # ELOOP for a link under O_NOFOLLOW, EACCES, ...
        raise error(f"cannot be opened ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error("is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise error("not a regular file (a FIFO, socket or device)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
