"""The ordered-window scheduler: input order kept, window respected, failures in order."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from vaekit.engines.ordered import ordered_map


class Tracker:
    """Counts tasks submitted and not yet taken, and items read from the source."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.read = 0
        self.submitted: list[int] = []

    def items(self, n: int, fail_at: int | None = None):
        for i in range(n):
            if i == fail_at:
                raise KeyError(f"cannot read item {i}")
            self.read += 1
            yield i

    def submit(self, pool: ThreadPoolExecutor, work):
        def submit(i: int) -> Future:
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            self.submitted.append(i)
            return pool.submit(work, i)

        return submit

    def take(self, future: Future):
        result = future.result()
        with self.lock:
            self.in_flight -= 1
        return result


def _slow_square(i: int) -> int:
    time.sleep(0.02 * ((7 * i) % 5))  # later tasks often finish first
    return i * i


@pytest.mark.parametrize("window", [1, 2, 5])
def test_results_in_input_order_within_the_window(window) -> None:
    t = Tracker()
    with ThreadPoolExecutor(4) as pool:
        got = list(ordered_map(t.submit(pool, _slow_square), t.items(20), window, take=t.take))
    assert got == [(i, i * i) for i in range(20)]
    assert t.most <= window
    assert t.submitted == list(range(20))


def test_items_are_read_no_further_ahead_than_the_window() -> None:
    t = Tracker()
    with ThreadPoolExecutor(2) as pool:
        results = ordered_map(t.submit(pool, _slow_square), t.items(100), 3, take=t.take)
        first = next(results)
        # the first result was taken and its slot refilled: 4 items read at most
        assert first == (0, 0) and t.read <= 4
        results.close()
    assert t.read <= 4


def test_task_failure_raised_after_earlier_results() -> None:
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("task 3 failed")
        time.sleep(0.01)
        return i

    t = Tracker()
    seen: list[int] = []
    with ThreadPoolExecutor(3) as pool:
        with pytest.raises(ValueError, match="task 3 failed"):
            for _, result in ordered_map(t.submit(pool, work), t.items(50), 4, take=t.take):
                seen.append(result)
    assert seen == [0, 1, 2]
    assert max(t.submitted) <= 3 + 4 - 1  # nothing submitted beyond the window


def test_read_failure_raised_after_earlier_results() -> None:
    t = Tracker()
    seen: list[int] = []
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(KeyError, match="cannot read item 5"):
            for i, _ in ordered_map(t.submit(pool, _slow_square), t.items(9, fail_at=5), 3,
                                    take=t.take):
                seen.append(i)
    assert seen == [0, 1, 2, 3, 4]
    assert t.submitted == [0, 1, 2, 3, 4]


def test_submit_failure_raised_in_order() -> None:
    def submit(i: int) -> Future:
        if i == 2:
            raise RuntimeError("cluster gone")
        future: Future = Future()
        future.set_result(i)
        return future

    seen: list[int] = []
    with pytest.raises(RuntimeError, match="cluster gone"):
        for i, _ in ordered_map(submit, range(5), 4):
            seen.append(i)
    assert seen == [0, 1]


def test_stopping_early_cancels_pending_and_closes_the_source() -> None:
    closed = threading.Event()

    def source():
        try:
            yield from range(100)
        finally:
            closed.set()

    cancelled: list[int] = []

    def submit(i: int) -> Future:
        future: Future = Future()
        if i == 0:
            future.set_result(0)
        future.i = i  # type: ignore[attr-defined]
        return future

    def cancel(future: Future) -> None:
        cancelled.append(future.i)  # type: ignore[attr-defined]
        future.cancel()

    results = ordered_map(submit, source(), 3, cancel=cancel)
    assert next(results) == (0, 0)
    results.close()
    assert closed.is_set()
    assert cancelled == [1, 2, 3]


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        list(ordered_map(lambda i: i, range(3), 0))


def test_empty_input() -> None:
    assert list(ordered_map(lambda i: i, [], 2)) == []
