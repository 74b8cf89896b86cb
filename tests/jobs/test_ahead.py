"""Reading ahead in a background thread (vaekit.jobs.ahead)."""

from __future__ import annotations

import threading

import pytest

from vaekit.errors import DataError
from vaekit.jobs.ahead import read_ahead


def test_read_ahead_keeps_order_raises_in_order_and_stops() -> None:
    def items(fail_at: int | None = None):
        for i in range(10):
            if i == fail_at:
                raise DataError("bad item", row=i)
            yield i

    assert list(read_ahead(items(), 2)) == list(range(10))
    got: list[int] = []
    with pytest.raises(DataError, match="bad item"):
        for i in read_ahead(items(fail_at=6), 2):
            got.append(i)
    assert got == [0, 1, 2, 3, 4, 5]
    gen = read_ahead(items(), 1, name="vaekit-reader-test")
    assert next(gen) == 0
    gen.close()
    assert not [t for t in threading.enumerate() if t.name == "vaekit-reader-test"]
