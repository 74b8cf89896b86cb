"""Hostile and clumsy input files (issue 15): nothing lost, nothing hung, nothing allocated.

Each test builds its input itself: ids that look like nulls, a header over 64 KiB,
blank lines / CRLF / quoted line breaks before a row whose line is reported, a 5 MB
line, a quote left open, Parquet dates and nested columns, image files whose header
declares a huge size, an ``.npz`` array declaring more than it holds, and a pipe
given as an input.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import random
import struct
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import DEMO, run_cli
from vaekit.errors import DataError
from vaekit.files import csv_records
from vaekit.files.readers import (
    MAX_IMAGE_PIXELS,
    csv_header,
    iter_csv,
    iter_table,
    load_image_folder,
    read_images,
)
from vaekit.jobs.read import load_training_data

NULL_LIKE = ["NA", "N/A", "NaN", "nan", "null", "#N/A", "None", "NULL", "n/a", "<NA>", "-nan"]


def _lines(chunks) -> list[int]:
    return [int(v) for c in chunks for v in c.lines]


# --------------------------------------------------------------------------- null-like ids


def _ids_table(tmp_path: Path) -> tuple[Path, list[str]]:
    frame = pd.read_csv(DEMO, dtype=str, keep_default_na=False).head(30)
    ids = NULL_LIKE + list(frame["row_id"][len(NULL_LIKE):])
    frame["row_id"] = ids
    src = tmp_path / "ids.csv"
    frame.to_csv(src, index=False)
    return src, ids


def _column_as_written(path: Path, column: str) -> list[str]:
    return pd.read_csv(path, dtype=str, keep_default_na=False)[column].tolist()


def test_null_like_ids_come_back_exactly_from_score(tmp_path: Path, demo_model_file: Path) -> None:
    src, ids = _ids_table(tmp_path)
    before = src.read_bytes()
    out = tmp_path / "scores.csv"
    result = run_cli("score", src, "-m", demo_model_file, "--id-column", "row_id", "-o", out,
                     "-q")
    assert result.exit_code == 0, result.output
    assert _column_as_written(out, "row_id") == ids
    assert src.read_bytes() == before


def test_null_like_ids_come_back_exactly_from_decompress(tmp_path: Path,
                                                        demo_model_file: Path) -> None:
    src, ids = _ids_table(tmp_path)
    vkc, restored = tmp_path / "c.vkc", tmp_path / "restored.csv"
    result = run_cli("compress", src, "-m", demo_model_file, "--id-column", "row_id", "-o",
                     vkc, "-q")
    assert result.exit_code == 0, result.output
    result = run_cli("decompress", vkc, "-m", demo_model_file, "-o", restored, "-q")
    assert result.exit_code == 0, result.output
    assert _column_as_written(restored, "row_id") == ids


def test_text_columns_keep_null_spellings_and_number_columns_do_not(tmp_path: Path) -> None:
    rows = [f"{word},{word},1.5" for word in NULL_LIKE] + [",,"]
    src = tmp_path / "t.csv"
    src.write_text("id,n,m\n" + "\n".join(rows) + "\n")
    (chunk,) = iter_csv(str(src), {"id": "text", "n": "float", "m": "level"})
    assert chunk.data["id"].iloc[:-1].tolist() == NULL_LIKE
    assert pd.isna(chunk.data["id"].iloc[-1])  # only the empty field is missing
    assert chunk.data["n"].isna().all() and not chunk.bad  # NA... in numbers: missing
    frame = pd.DataFrame({"id": NULL_LIKE, "n": NULL_LIKE})
    frame.to_parquet(tmp_path / "t.parquet")
    (chunk,) = iter_table(str(tmp_path / "t.parquet"), {"id": "text", "n": "float"})
    assert chunk.data["id"].tolist() == NULL_LIKE and chunk.data["n"].isna().all()


def test_a_category_level_na_is_a_level_when_fitting(tmp_path: Path) -> None:
    # 40 rows: a category with the level "NA" (Namibia) and a number column with NA.
    src = tmp_path / "fit.csv"
    rows = [f"{'NA' if i % 2 else 'DE'},{'NA' if i % 5 == 0 else i}" for i in range(40)]
    src.write_text("country,amount\n" + "\n".join(rows) + "\n")
    data = load_training_data([str(src)]).data
    assert sorted(set(data["country"])) == ["DE", "NA"]
    assert data["amount"].dtype == np.float64 and int(data["amount"].isna().sum()) == 8


# --------------------------------------------------------------------------- long headers


def _wide_csv(path: Path, n_cols: int = 3000, n_rows: int = 30) -> list[str]:
    names = [f"column_{i:05d}_{'x' * 17}" for i in range(n_cols)]
    assert all(len(n) == 30 for n in names)
    rng = np.random.default_rng(0)
    body = "\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(n_rows,
                                                                                  n_cols)))
    path.write_text(",".join(names) + "\n" + body + "\n")
    return names


def test_a_header_over_64_kib_is_read_whole(tmp_path: Path) -> None:
    src = tmp_path / "wide.csv"
    names = _wide_csv(src)
    assert len(",".join(names)) > 64 * 2**10
    assert csv_header(str(src)) == names
    # A block smaller than the header still holds the whole header and each row.
    chunks = list(iter_csv(str(src), dict.fromkeys(names, "float"), block_bytes=50_000))
    assert len(chunks) > 1 and _lines(chunks) == list(range(2, 32))
    assert list(chunks[0].data.columns) == names


def test_fit_uses_every_column_of_a_wide_header(tmp_path: Path) -> None:
    from vaekit.fitted.model import FittedVAE

    src = tmp_path / "wide.csv"
    names = _wide_csv(src, n_cols=3000, n_rows=20)
    model = tmp_path / "wide.vaekit"
    result = run_cli("fit", src, "--epochs", "1", "--seed", "0", "-o", model, "-q")
    assert result.exit_code == 0, result.output
    assert FittedVAE.load(model).column_names == names


def test_a_header_over_the_bound_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(csv_records, "MAX_RECORD_BYTES", 2**16)
    src = tmp_path / "wide.csv"
    _wide_csv(src)
    with pytest.raises(DataError, match="header is longer than") as info:
        csv_header(str(src))
    assert info.value.file == str(src) and info.value.row == 1


# --------------------------------------------------------------------------- line numbers


def _tricky_csv(eol: str) -> tuple[str, int]:
    """A CSV whose column ``a`` holds each row's physical line; and the bad row's line."""
    lines = ["a,b,c", "2,x,1", "", "4,y,2", "", "", "7,\"two", "lines\",3", "9,\"three",
             "", "lines\",4", "12,\"with \"\"quotes\"\"\",5", "13,z,bad", "14,w,6"]
    return eol.join(lines) + eol, 13


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("block_bytes", [8, 64, 2**20])
def test_lines_stay_right_after_blank_lines_crlf_and_quoted_breaks(
        tmp_path: Path, eol: str, block_bytes: int) -> None:
    text, bad_line = _tricky_csv(eol)
    src = tmp_path / "t.csv"
    src.write_bytes(text.encode())
    chunks = list(iter_csv(str(src), {"a": "float", "b": "text", "c": "float"},
                           block_bytes=block_bytes))
    data = pd.concat([c.data for c in chunks], ignore_index=True)
    assert _lines(chunks) == data["a"].astype(int).tolist() == [2, 4, 7, 9, 12, 14]
    assert data["b"].tolist()[2:5] == [f"two{eol}lines", f"three{eol}{eol}lines",
                                       'with "quotes"']
    assert [(b.line, b.column) for c in chunks for b in c.bad] == [(bad_line, "c")]


def test_score_names_the_physical_line_of_a_bad_row(tmp_path: Path,
                                                    demo_model_file: Path) -> None:
    # without the model's remembered id column, rows are named by file and line
    frame = pd.read_csv(DEMO, dtype=str, keep_default_na=False).head(6).drop(columns="row_id")
    frame.loc[1, "region"] = "north\nwest"  # a quoted line break: row 3 spans lines 3-4
    frame.loc[4, "quantity"] = "lots"  # row 6 of the file, on line 8
    text = frame.to_csv(index=False, lineterminator="\r\n")
    parts = text.split("\r\n")  # rows (the "\n" inside the quoted field stays put)
    parts.insert(4, "")  # a blank line 6, after row 4 (line 5)
    src = tmp_path / "bad.csv"
    src.write_text("\r\n".join(parts), newline="")
    out = tmp_path / "scores.csv"
    result = run_cli("score", src, "-m", demo_model_file, "-o", out, "-q")
    assert result.exit_code == 3, result.output
    assert "line 8" in result.output and "quantity" in result.output, result.output
    assert not out.exists()
    result = run_cli("score", src, "-m", demo_model_file, "-o", out, "-q", "--on-bad-rows",
                     "skip")
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert sorted(scored["line"]) == [2, 3, 5, 7, 9]
    side = pd.read_csv(tmp_path / "scores.bad-rows.csv")
    assert side["line"].tolist() == [8], side


def _reference_lines(text: str) -> list[int]:
    """Start line of each non-empty data record, by Python's csv module."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out, previous = [], 0
    for record in reader:
        start, previous = previous + 1, reader.line_num
        if record:
            out.append(start)
    return out[1:]  # the header


@pytest.mark.parametrize("seed", range(4))
def test_lines_match_pythons_csv_module_on_random_files(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    fields = ['"a\nb"', '"x""y"', '"p\r\nq"', '""', '"z,w"', '"\n\n"', "ab\"c", '"open',
              '"ab"cd"e']
    src = tmp_path / "r.csv"
    for _ in range(40):
        eol = rng.choice(["\n", "\r\n", "\r"])
        rows = ["id,v"]
        for i in range(rng.randint(1, 25)):
            if rng.random() < 0.15:
                rows.append("")
            rows.append(f"{i},{rng.choice(fields) if rng.random() < 0.4 else i}")
        text = eol.join(rows) + rng.choice([eol, ""])
        src.write_bytes(text.encode())
        expected = _reference_lines(text)
        for block_bytes in (1, 16, 2**20):
            chunks = list(iter_csv(str(src), {"id": "text", "v": "text"},
                                   block_bytes=block_bytes))
            got = sorted(_lines(chunks) + [b.line for c in chunks for b in c.bad])
            assert got == expected, (text, block_bytes)


# --------------------------------------------------------------------------- long lines


def test_a_5_mb_line_is_read(tmp_path: Path) -> None:
    big = "x" * (5 * 2**20)
    src = tmp_path / "long.csv"
    src.write_text(f"id,v\nshort,1\n{big},2\nlast,3\n")
    chunks = list(iter_csv(str(src), {"id": "text", "v": "float"}))
    data = pd.concat([c.data for c in chunks], ignore_index=True)
    assert data["id"].tolist() == ["short", big, "last"] and _lines(chunks) == [2, 3, 4]


def test_a_record_over_the_bound_names_its_line_and_no_option(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setattr(csv_records, "MAX_RECORD_BYTES", 2**20)
    src = tmp_path / "open.csv"
    # A quote left open on line 3 makes the rest of the file one record.
    src.write_text("id,v\na,1\nb,\"2\n" + "c,3\n" * 400_000)
    with pytest.raises(DataError, match="longer than 1 MiB") as info:
        list(iter_csv(str(src), {"id": "text", "v": "float"}, block_bytes=4096))
    assert info.value.row == 3 and "block" not in str(info.value)


def test_a_long_line_through_the_cli(tmp_path: Path, demo_model_file: Path) -> None:
    frame = pd.read_csv(DEMO, dtype=str, keep_default_na=False).head(5)
    frame.loc[2, "row_id"] = "y" * (5 * 2**20)
    src = tmp_path / "long.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "s.csv"
    result = run_cli("score", src, "-m", demo_model_file, "--id-column", "row_id", "-o", out,
                     "-q")
    assert result.exit_code == 0, result.output
    assert _column_as_written(out, "row_id") == frame["row_id"].tolist()


# --------------------------------------------------------------------------- Parquet types


@pytest.mark.parametrize(("column", "words"), [
    # dates and timestamps are modelled (tests/data/test_real_world_columns.py);
    # a time of day is not
    (pa.array([datetime.time(12)] * 40, pa.time64("us")), "times of day"),
    (pa.array([[1, 2]] * 40), "nested values (list"),
    (pa.array([{"x": 1}] * 40), "nested values (struct"),
])
def test_parquet_dates_and_nested_columns_are_refused_by_name(tmp_path: Path, column,
                                                              words: str) -> None:
    table = pa.table({"a": np.arange(40.0), "odd": column})
    src = tmp_path / "t.parquet"
    pq.write_table(table, src)
    out = tmp_path / "m.vaekit"
    result = run_cli("fit", src, "--epochs", "1", "-o", out, "-q")
    assert result.exit_code == 3, result.output
    assert words in result.output and "'odd'" in result.output and "--exclude" in result.output
    assert not out.exists()
    result = run_cli("fit", src, "--epochs", "1", "--exclude", "odd", "-o", out, "-q")
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- images


def _png(path: Path, size: tuple[int, int] = (8, 8), declared: tuple[int, int] | None = None
         ) -> None:
    """A small grayscale PNG; ``declared`` rewrites the (width, height) of its header."""
    from PIL import Image

    Image.fromarray(np.full(size[::-1], 100, dtype=np.uint8)).save(path)
    if declared is not None:
        data = bytearray(path.read_bytes())
        # Signature (8) + IHDR length (4) + "IHDR" (4), then width and height, then CRC.
        data[16:24] = struct.pack(">II", *declared)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        path.write_bytes(bytes(data))


def test_an_image_declaring_a_huge_size_is_refused_before_decoding(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png", declared=(100_000, 100_000))
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path)
    assert info.value.file == str(tmp_path / "b.png")
    assert "100000x100000" in str(info.value) or "10000000000" in str(info.value)


def test_an_image_over_our_bound_but_under_pillows_is_refused(tmp_path: Path) -> None:
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1
    _png(tmp_path / "a.png", declared=(side, side))
    with pytest.raises(DataError, match=f"{side}x{side} pixels, over the bound of "
                                        f"{MAX_IMAGE_PIXELS}") as info:
        load_image_folder(tmp_path)
    assert info.value.file == str(tmp_path / "a.png")


def test_pillows_bomb_guard_becomes_a_data_error(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 8x8 = 64 > 2 x 10
    _png(tmp_path / "a.png")
    with pytest.raises(DataError, match="too large") as info:
        load_image_folder(tmp_path)
    assert info.value.file == str(tmp_path / "a.png")


def test_image_sizes_are_checked_before_pixels_are_decoded(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    # The header says 16x16 but the pixel data is for 8x8: decoding would fail with
    # "truncated"; the size check must refuse first.
    _png(tmp_path / "b.png", declared=(16, 16))
    with pytest.raises(DataError, match="image is 16x16 .* but a.png is 8x8"):
        load_image_folder(tmp_path)
    (tmp_path / "b.png").unlink()
    with pytest.raises(DataError, match="the model expects 4x4"):
        load_image_folder(tmp_path, size=(4, 4))
    assert load_image_folder(tmp_path, size=(8, 8)).shape == (1, 8, 8)


def test_score_checks_image_size_against_the_model_before_decoding(tmp_path: Path) -> None:
    train, other = tmp_path / "train", tmp_path / "other"
    train.mkdir()
    other.mkdir()
    rng = np.random.default_rng(0)
    from PIL import Image

    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(train / f"{i}.png")
    model = tmp_path / "img.vaekit"
    result = run_cli("fit", train, "--epochs", "1", "--seed", "0", "-o", model, "-q")
    assert result.exit_code == 0, result.output
    _png(other / "a.png", declared=(16, 16))  # pixel data for 8x8: decoding would fail
    out = tmp_path / "s.csv"
    result = run_cli("score", other, "-m", model, "-o", out, "-q")
    assert result.exit_code == 3, result.output
    assert "the model expects 8x8" in result.output and "a.png" in result.output
    assert not out.exists()


def _npz_declaring(path: Path, shape: tuple[int, ...]) -> None:
    """An .npz whose array header declares ``shape`` but holds 64 bytes of data."""
    fh = io.BytesIO()
    np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False,
                                              "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X.npy", fh.getvalue() + bytes(64))


@pytest.mark.parametrize(("shape", "words"), [
    ((10, 100_000, 100_000), "over the bound"),
    ((10**9, 8, 8), "more than the file holds"),
    ((1, 28, 28), "more than the file holds"),
])
def test_npz_headers_are_checked_before_the_array_is_loaded(tmp_path: Path, shape,
                                                            words: str) -> None:
    src = tmp_path / "bomb.npz"
    _npz_declaring(src, shape)
    with pytest.raises(DataError, match=words) as info:
        read_images(str(src))
    assert info.value.file == str(src)


def test_npz_of_the_wrong_size_for_the_model_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "i.npz", X=np.zeros((3, 6, 6), dtype=np.uint8))
    with pytest.raises(DataError, match="expects 8x8"):
        read_images(str(tmp_path / "i.npz"), size=(8, 8))
    assert read_images(str(tmp_path / "i.npz"), size=(6, 6)).shape == (3, 6, 6)


# --------------------------------------------------------------------------- pipes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("name", ["in.csv", "in.csv.gz", "in.parquet", "in.npz"])
def test_a_named_pipe_as_input_is_refused_not_waited_on(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)

    opened: list[bool] = []

    def unblock() -> None:
        # If a reader wrongly opened the pipe, this lets it go on (and the test fail)
        # instead of hanging forever.
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            opened.append(True)
        except OSError:
            pass  # nobody is reading: nothing to unblock

    timer = threading.Timer(5.0, unblock)
    timer.daemon = True
    timer.start()
    if name.endswith((".csv", ".gz")):
        with pytest.raises(DataError, match="not a regular file") as info:
            csv_header(str(fifo))
        assert info.value.file == str(fifo)
    result = run_cli("fit", fifo, "-o", tmp_path / "m.vaekit", "-q")
    timer.cancel()
    assert result.exit_code == 3 and "not a regular file" in result.output, result.output
    assert not (tmp_path / "m.vaekit").exists() and not opened
