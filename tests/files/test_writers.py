"""The table writer: a background thread writes the same bytes; its errors reach the caller."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_background_writer_writes_the_same_bytes(tmp_path, name) -> None:
    from vaekit.files.writers import TableWriter

    rng = np.random.default_rng(0)
    tables = [pa.table({"id": pa.array([f"r{i}" for i in range(n)]),
                        "score": pa.array(rng.normal(size=n))}) for n in (5, 0, 300, 1, 77)]
    outs = []
    for background in (False, True):
        path = tmp_path / f"{background}-{name}"
        with TableWriter(str(path), tables[0].schema, background=background) as w:
            for t in tables:
                w.write(t)
        assert w.n_rows == 383
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]


def test_background_writer_error_reaches_the_caller_and_leaves_no_file(tmp_path) -> None:
    from vaekit.files.writers import TableWriter

    class Broken:
        def write_table(self, table):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    path = tmp_path / "out.csv"
    table = pa.table({"x": pa.array([1.0, 2.0])})
    with pytest.raises(OSError, match="No space"):
        with TableWriter(str(path), table.schema, background=True) as w:
            w.write(table.slice(0, 0))  # opens the writer
            w._writer = Broken()
            for _ in range(10):
                w.write(table)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "vaekit-writer"]
