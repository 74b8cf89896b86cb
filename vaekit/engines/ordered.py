"""The one ordered-window scheduler every engine runs its tasks through.

:func:`ordered_map` submits work ahead (at most ``window`` tasks in flight) and
hands results back strictly in input order, so the output never depends on which
task finished first.  A failure -- of a task, of reading the next item or of
submitting it -- is raised at its place in the order, after every earlier result
was handed out.

The local engine submits to a thread pool (:mod:`vaekit.engines.local`), the Dask
engine to a cluster (:mod:`vaekit.engines.dask`); anything with ``result()`` and
``cancel()`` (a :class:`concurrent.futures.Future`, a ``distributed.Future``) works.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ordered_map"]


def _result(future: Any) -> Any:
    return future.result()


def _cancel(future: Any) -> None:
    future.cancel()


class _Failure:
    """An exception met while reading or submitting, kept for its place in the order."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def ordered_map(submit: Callable[[T], Any], items: Iterable[T], window: int, *,
                take: Callable[[Any], R] = _result,
                cancel: Callable[[Any], None] = _cancel) -> Iterator[tuple[T, R]]:
    """Run ``submit`` over ``items`` ahead of the consumer; yield results in input order.

    Parameters
    ----------
    submit : callable
        ``submit(item)`` starts the work on one item and returns its future.
    items : iterable
        Read lazily, only as far as the window allows (a generator reading a file
        is never read further ahead than ``window`` items).
    window : int
        Most tasks submitted and not yet taken (>= 1).  The next task is submitted as
        soon as the oldest result is taken, before that result is yielded, so the
        workers stay busy while the consumer handles it.
    take : callable
        ``take(future)`` waits for and returns the result (default
        ``future.result()``); e.g. a Dask future is also released here, so a result
        is taken exactly once.
    cancel : callable
        Called on every future still pending when the iteration stops early (the
        consumer closed it, or a failure is raised).

    Yields
    ------
    (item, result)
        In the order of ``items``.

    Raises
    ------
    Exception
        The first failure in input order: a task's exception when its result is
        taken, or an exception raised by ``items`` or ``submit``, once all results
        before it were yielded.  Nothing after a failure is submitted.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    source = iter(items)
    pending: deque[tuple[T, Any] | _Failure] = deque()
    ended = False

    def fill() -> None:
        nonlocal ended
        while not ended and len(pending) < window:
            try:
                item = next(source)
            except StopIteration:
                ended = True
                return
            except Exception as exc:  # raised in order, after the results before it
                pending.append(_Failure(exc))
                ended = True
                return
            try:
                pending.append((item, submit(item)))
            except Exception as exc:
                pending.append(_Failure(exc))
                ended = True

    try:
        fill()
        while pending:
            head = pending.popleft()
            if isinstance(head, _Failure):
                raise head.exc
            item, future = head
            result = take(future)
            fill()
            yield item, result
    finally:
        for entry in pending:
            if not isinstance(entry, _Failure):
                cancel(entry[1])
        pending.clear()
        close = getattr(source, "close", None)
        if close is not None:
            close()
