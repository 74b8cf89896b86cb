"""Reader and id defects found by a red team (issue 15 follow-up); each input built here."""

from __future__ import annotations

import datetime as dt
import decimal
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import DEMO, run_cli
from vaekit.errors import DataError
from vaekit.files import npz_images
from vaekit.files.readers import iter_images, iter_parquet, read_images
from vaekit.files.writers import TableWriter


def _npz(path: Path, member: bytes, key: str = "X") -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{key}.npy", member)
    return path


def _zero_images_npz(path: Path, n: int) -> Path:
    """``n`` zero 8x8 images, deflated: a few hundred KB that inflate to n * 64 bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("X.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "|u1", "fortran_order": False, "shape": (n, 8, 8)})
            block = bytes(64 * 100_000)
            for _ in range(n // 100_000):
                fh.write(block)
    return path


# ------------------------------------------------------------------- 1: npz zip bomb


def test_npz_images_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = _zero_images_npz(tmp_path / "bomb.npz", 3_000_000)  # 192 MB inflated
    assert path.stat().st_size < 2_000_000
    tracemalloc.start()
    try:
        chunks = iter_images(str(path), chunk_rows=10_000, size=(8, 8))
        first = next(chunks)
        for _ in range(20):
            next(chunks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first.data.shape == (10_000, 8, 8) and first.lines[0] == 1
    assert peak < 16 * 2**20, peak  # one block, not the 192 MB array


def test_npz_images_stream_all_rows_with_their_numbers(tmp_path: Path) -> None:
    images = np.arange(7 * 4 * 4, dtype=np.uint8).reshape(7, 4, 4)
    np.savez_compressed(tmp_path / "i.npz", X=images)
    chunks = list(iter_images(str(tmp_path / "i.npz"), chunk_rows=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert np.array_equal(np.concatenate([c.data for c in chunks]), images)
    assert np.concatenate([c.lines for c in chunks]).tolist() == list(range(1, 8))


def test_whole_npz_read_is_bounded_before_allocating(tmp_path: Path, monkeypatch) -> None:
    path = _zero_images_npz(tmp_path / "big.npz", 200_000)  # 12.8 MB inflated
    monkeypatch.setattr(npz_images, "MAX_NPZ_ARRAY_BYTES", 2**20)
    with pytest.raises(DataError, match="12800000 bytes, over the bound") as err:
        read_images(str(path))
    assert err.value.file == str(path)
    monkeypatch.setattr(npz_images, "MAX_NPZ_ARRAY_BYTES", 2**30)
    assert read_images(str(path)).shape == (200_000, 8, 8)


def test_truncated_npz_array_is_a_data_error(tmp_path: Path) -> None:
    buf = np.lib.format
    import io
    raw = io.BytesIO()
    buf.write_array(raw, np.zeros((10, 4, 4), np.uint8))
    path = _npz(tmp_path / "t.npz", raw.getvalue()[:-20])
    with pytest.raises(DataError, match="more than the file holds|ends after"):
        list(iter_images(str(path)))


# ------------------------------------------------------------------- 3: broken .npy header


@pytest.mark.parametrize("text", ["[" * 3999, "{'descr': '|u1', " + "(" * 900,
                                  "{'descr': 'O', 'fortran_order': False, 'shape': (2, 2, 2)}",
                                  "\x00\xff garbage"])
def test_broken_npy_header_is_a_data_error(tmp_path: Path, text: str) -> None:
    header = text.encode("latin1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(64)
    path = _npz(tmp_path / "h.npz", member)
    for read in (read_images, lambda p: list(iter_images(p))):
        with pytest.raises(DataError) as err:
            read(str(path))
        assert err.value.file == str(path)


def test_over_long_npy_header_is_refused_unparsed(tmp_path: Path) -> None:
    member = b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little") + b"{" + bytes(100)
    path = _npz(tmp_path / "h.npz", member)
    with pytest.raises(DataError, match="header of 1000000 bytes"):
        read_images(str(path))


def test_cli_reports_a_broken_header_with_exit_3(tmp_path: Path, demo_model_file) -> None:
    header = b"[" * 3999
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path = _npz(tmp_path / "h.npz",
                b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    result = run_cli("report", path, "-m", demo_model_file, "-o", tmp_path / "r.html")
    assert result.exit_code != 1, result.output  # no traceback (run_cli checks), no crash


# ------------------------------------------------------------------- 2: binary ids


def _demo_with_id(path: Path, ids: pa.Array) -> Path:
    frame = pd.read_csv(DEMO).head(len(ids))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.set_column(0, "row_id", ids), path)
    return path


def test_binary_ids_are_text_when_utf8(tmp_path: Path) -> None:
    path = _demo_with_id(tmp_path / "b.parquet",
                         pa.array([f"R{i}é".encode() for i in range(50)], pa.binary()))
    chunk = next(iter_parquet(str(path), {"row_id": "text"}))
    assert chunk.data["row_id"].tolist()[:2] == ["R0é", "R1é"]


def test_binary_ids_that_are_not_utf8_are_refused_at_read(tmp_path: Path,
                                                          demo_model_file) -> None:
    path = _demo_with_id(tmp_path / "b.parquet",
                         pa.array([b"\x00\xff" + bytes([i]) for i in range(50)], pa.binary()))
    with pytest.raises(DataError, match="not UTF-8 text") as err:
        next(iter_parquet(str(path), {"row_id": "text"}))
    assert err.value.column == "row_id" and err.value.file == str(path)
    for command, out in (("score", "s.csv"), ("compress", "c.vkc")):
        result = run_cli(command, path, "-m", demo_model_file, "--id-column", "row_id",
                         "-o", tmp_path / out)
        assert result.exit_code == 3, result.output
        assert "'row_id'" in result.output and "not UTF-8 text" in result.output
        assert "b'" not in result.output and not (tmp_path / out).exists()


def test_csv_output_never_holds_a_bytes_repr(tmp_path: Path) -> None:
    good = pa.table({"id": pa.array([b"a\xc3\xa9", None], pa.binary())})
    with TableWriter(str(tmp_path / "g.csv")) as w:
        w.write(good)
    assert (tmp_path / "g.csv").read_text(encoding="utf-8").splitlines() == ['"id"', '"aé"', ""]
    bad = pa.table({"id": pa.array([b"\x00\xff"], pa.binary())})
    with pytest.raises(DataError, match="not UTF-8 text") as err:
        with TableWriter(str(tmp_path / "b.csv")) as w:
            w.write(bad)
    assert err.value.column == "id" and not (tmp_path / "b.csv").exists()


# ------------------------------------------------------------------- 4: long id location


def test_compress_names_the_row_of_a_too_long_id(tmp_path: Path, demo_model_file) -> None:
    frame = pd.read_csv(DEMO)
    frame = pd.concat([frame] * 17, ignore_index=True).head(50_000)
    frame["row_id"] = [f"R{i}" for i in range(len(frame))]
    frame.loc[49_999, "row_id"] = "x" * 70_000  # data row 50000, physical line 50001
    src = tmp_path / "long.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "l.vkc"
    result = run_cli("compress", src, "-m", demo_model_file, "--id-column", "row_id",
                     "-o", out)
    assert result.exit_code == 3, result.output
    assert "'row_id'" in result.output and "70000 bytes" in result.output
    assert "line 50001" in result.output and str(src) in result.output, result.output
    assert not out.exists()


# ------------------------------------------------------------------- 5: ids of any type


@pytest.mark.parametrize(("ids", "text"), [
    (pa.array([dt.datetime(2020, 1, 1, 0, 0, i) for i in range(3)], pa.timestamp("us")),
     "2020-01-01T00:00:01"),
    (pa.array([dt.datetime(2020, 1, 1, 0, 0, i, 5) for i in range(3)],
              pa.timestamp("us", tz="UTC")), "2020-01-01T00:00:01.000005+00:00"),
    (pa.array([dt.date(2020, 1, 1 + i) for i in range(3)], pa.date32()), "2020-01-02"),
    (pa.array([dt.time(12, 0, i) for i in range(3)], pa.time64("us")), "12:00:01"),
    (pa.array([dt.timedelta(seconds=i) for i in range(3)], pa.duration("s")), "P0DT0H0M1S"),
    (pa.array([decimal.Decimal(i) / 100 for i in range(3)], pa.decimal128(10, 2)), "0.01"),
    (pa.array([2**63 + i for i in range(3)], pa.uint64()), str(2**63 + 1)),
    (pa.array(["a", "b", "c"]).dictionary_encode(), "b"),
])
def test_parquet_ids_of_any_flat_type_are_read_as_text(tmp_path: Path, ids: pa.Array,
                                                       text: str) -> None:
    path = tmp_path / "i.parquet"
    pq.write_table(pa.table({"row_id": ids, "a": [1.0, 2.0, 3.0]}), path)
    chunk = next(iter_parquet(str(path), {"row_id": "id", "a": "float"}))
    assert chunk.data["row_id"].tolist()[1] == text
    assert all(isinstance(v, str) for v in chunk.data["row_id"])


def test_nested_id_columns_are_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"row_id": pa.array([[1], [2]]), "a": [1.0, 2.0]}), path)
    with pytest.raises(DataError, match="nested"):
        next(iter_parquet(str(path), {"row_id": "id", "a": "float"}))
