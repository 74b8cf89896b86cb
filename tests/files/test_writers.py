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


# ------------------------------------------------------------------- .npz (issue 15)

def test_write_npz_is_pickle_free_and_byte_reproducible(tmp_path) -> None:
    from vaekit.files.writers import write_npz

    arrays = {"b": np.arange(5.0), "a": np.array(["x", "yy"]), "name/with space": np.ones(2)}
    write_npz(str(tmp_path / "1.npz"), arrays)
    write_npz(str(tmp_path / "2.npz"), arrays)
    assert (tmp_path / "1.npz").read_bytes() == (tmp_path / "2.npz").read_bytes()
    with np.load(tmp_path / "1.npz", allow_pickle=False) as f:
        assert f.files == list(arrays)
        assert all(np.array_equal(f[k], v) for k, v in arrays.items())
    with pytest.raises(ValueError, match="pickle"):
        write_npz(str(tmp_path / "3.npz"), {"o": np.array([1, "a"], dtype=object)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.npz", "2.npz"]


def test_table_npz_arrays_layout() -> None:
    import pandas as pd

    from vaekit.files.writers import table_npz_arrays

    frame = pd.DataFrame({"id": ["a", None, "ccc"], "n": [1, 2, 3], "x": [0.5, None, 2.0],
                          "ni": pd.array([1, None, 3], dtype="Int64"), "flag": [True, False, True],
                          "cat": pd.Categorical(["u", "v", "u"])})
    out = table_npz_arrays(frame)
    assert list(out) == list(frame.columns)
    assert out["id"].dtype == np.dtype("<U3") and list(out["id"]) == ["a", "", "ccc"]
    assert out["n"].dtype == np.int64
    assert out["x"].dtype == np.float64 and np.isnan(out["x"][1])
    assert out["ni"].dtype == np.float64 and np.isnan(out["ni"][1])
    assert out["flag"].dtype == bool
    assert out["cat"].dtype.kind == "U"
    assert not any(a.dtype == object for a in out.values())


def test_a_huge_fixed_width_text_array_is_refused_before_allocation() -> None:
    import pandas as pd

    from vaekit.errors import DataError
    from vaekit.files.writers import MAX_NPZ_TEXT_BYTES, table_npz_arrays

    # 600 references to one 1 MB string take 1 MB here; as <U1000000 they would take
    # 2.4 GB: the size is computed from the lengths and refused first.
    long = "x" * 1_000_000
    frame = pd.DataFrame({"id": [long] * 600})
    assert 4 * len(long) * 600 > MAX_NPZ_TEXT_BYTES
    with pytest.raises(DataError, match="'id'.*CSV or Parquet"):
        table_npz_arrays(frame, file="out.npz")


def test_default_bad_rows_file_of_a_device_is_not_in_dev(tmp_path) -> None:
    import os

    from vaekit.files.writers import default_bad_rows_path

    assert default_bad_rows_path(str(tmp_path / "s.csv")) == str(tmp_path / "s.bad-rows.csv")
    assert default_bad_rows_path("-") == "vaekit-bad-rows.csv"
    if os.path.exists("/dev/null"):
        assert default_bad_rows_path("/dev/null") == "vaekit-bad-rows.csv"
