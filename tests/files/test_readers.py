"""Chunked readers: line numbers, bad rows, formats, type inference, atomic writers."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from vaekit.errors import DataError
from vaekit.files.readers import (
    expand_inputs,
    infer_types,
    input_format,
    iter_csv,
    iter_images,
    iter_table,
)
from vaekit.files.writers import TableWriter, default_bad_rows_path

TYPES = {"a": "float", "b": "float", "c": "text"}


def _messy(path: Path) -> None:
    good = "".join(f"{i},{i * 2},x{i % 3}\n" for i in range(10))
    path.write_text("a,b,c\n" + good + "5,abc,z\n7,8\n1,inf,y\n" + good[:40] + "1,2,3,4\n")


def test_line_numbers_survive_bad_rows_and_the_text_fallback(tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    _messy(src)
    # Tiny blocks force several chunks and a switch to the text path mid-file.
    chunks = list(iter_csv(str(src), TYPES, block_bytes=40))
    lines = np.concatenate([c.lines for c in chunks]).tolist()
    bad = [(b.line, b.column) for c in chunks for b in c.bad]
    assert bad == [(12, "b"), (13, None), (14, "b"), (len(lines) + 5, None)]
    assert lines == list(range(2, 12)) + list(range(15, 15 + len(lines) - 10))
    data = pd.concat([c.data for c in chunks], ignore_index=True)
    assert data["a"].dtype == np.float64 and np.isfinite(data["b"]).all()


def test_same_rows_whatever_the_block_size(tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    _messy(src)
    small = pd.concat([c.data for c in iter_csv(str(src), TYPES, block_bytes=40)],
                      ignore_index=True)
    large = pd.concat([c.data for c in iter_csv(str(src), TYPES)], ignore_index=True)
    pd.testing.assert_frame_equal(small, large)


def test_gzip_and_parquet_read_like_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.5, np.nan, 3.0], "b": [1, 2, 3], "c": ["p", None, "r"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    with gzip.open(tmp_path / "t.csv.gz", "wt") as fh:
        frame.to_csv(fh, index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    reads = [pd.concat([c.data for c in iter_table(str(tmp_path / n), TYPES)],
                       ignore_index=True)
             for n in ("t.csv", "t.csv.gz", "t.parquet")]
    for other in reads[1:]:
        pd.testing.assert_frame_equal(reads[0].astype(object), other.astype(object))
    assert input_format(tmp_path / "t.parquet") == "parquet"
    assert input_format(tmp_path) == "images"


@pytest.mark.parametrize(("content", "words"), [
    (b"", "empty"),
    (b"a,b,c\n", "no data rows"),
    (b"\x00\x01\x02binary", "not a text"),
    (b"a,a,c\n1,2,3\n", "duplicate column"),
    (b"a,c\n1,2\n", "missing column(s) ['b']"),
])
def test_unusable_files_raise_data_error(tmp_path: Path, content: bytes, words: str) -> None:
    src = tmp_path / "f.csv"
    src.write_bytes(content)
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")) as info:
        list(iter_csv(str(src), TYPES))
    assert info.value.file == str(src)


def test_level_columns_keep_unseen_text(tmp_path: Path) -> None:
    src = tmp_path / "l.csv"
    src.write_text("k\n1\n2\nnew\n")
    (chunk,) = list(iter_csv(str(src), {"k": "level"}))
    assert chunk.data["k"].tolist() == [1.0, 2.0, "new"] and not chunk.bad


def test_infer_types_tolerates_a_typo_but_not_a_category() -> None:
    frame = pd.DataFrame({"n": [str(i) for i in range(20)] + ["oops"],
                          "t": ["a", "b"] * 10 + ["3"], "e": [None] * 21})
    assert infer_types(frame) == {"n": "float", "t": "text", "e": "float"}
    assert infer_types(frame, ["n"])["n"] == "text"


def test_expand_inputs_keeps_order_and_sorts_globs(tmp_path: Path) -> None:
    for name in ("b.csv", "a.csv", "c.txt"):
        (tmp_path / name).write_text("x\n1\n")
    got = expand_inputs([str(tmp_path / "c.txt"), str(tmp_path / "*.csv")])
    assert [Path(p).name for p in got] == ["c.txt", "a.csv", "b.csv"]
    with pytest.raises(FileNotFoundError):
        expand_inputs([str(tmp_path / "*.parquet")])


def test_images_from_npz_in_chunks(tmp_path: Path) -> None:
    images = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)
    np.savez(tmp_path / "i.npz", X=images)
    chunks = list(iter_images(str(tmp_path / "i.npz"), chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([c.data for c in chunks]), images)


def test_table_writer_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    table = pa.table({"x": [1.25, 2.0]})
    with pytest.raises(RuntimeError), TableWriter(str(out)) as w:
        w.write(table)
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with TableWriter(str(out)) as w:
        w.write(table)
    assert out.read_text() == '"x"\n1.25\n2\n'
    assert default_bad_rows_path(str(tmp_path / "s.parquet")).endswith("s.bad-rows.csv")


@pytest.mark.parametrize("block_bytes", [20, 64, 2**20])
def test_every_row_keeps_its_line_number(tmp_path: Path, block_bytes: int) -> None:
    # Each value is its own line number, so any drift in the numbering shows.
    rows = ["a,b"] + [f"{i},{i}" for i in range(2, 40)]
    rows[4] = "1,2,3"  # line 5: a field too many
    rows[30] = "7,xyz"  # line 31: not a number, after the fast path has started
    src = tmp_path / "f.csv"
    src.write_text("\n".join(rows) + "\n")
    chunks = list(iter_csv(str(src), {"a": "float", "b": "float"}, block_bytes=block_bytes))
    lines = [int(v) for c in chunks for v in c.lines]
    assert lines == [int(v) for c in chunks for v in c.data["a"]]
    assert [b.line for c in chunks for b in c.bad] == [5, 31]
