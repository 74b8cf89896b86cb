"""Compressing files (vaekit.jobs.compress): the reader thread and failures."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaekit import VAECompressor
from vaekit.errors import DataError
from vaekit.fitted import CompressedWriter
from vaekit.jobs.compress import compress_files


@pytest.fixture(scope="module")
def compressor() -> VAECompressor:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    return VAECompressor(epochs=1, random_state=0).fit(frame)


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vaekit-reader")]


def test_rows_come_back_in_order_across_chunks(compressor: VAECompressor,
                                               tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=60_000), "b": rng.normal(size=60_000)})
    frame.to_csv(tmp_path / "in.csv", index=False)
    n, size = compress_files([str(tmp_path / "in.csv")], compressor, str(tmp_path / "o.vkc"))
    assert n == 60_000 and size == os.path.getsize(tmp_path / "o.vkc")
    # The same bytes as the rows written in one piece, without a reader thread.
    with CompressedWriter(str(tmp_path / "ref.vkc"), compressor) as writer:
        writer.write(pd.read_csv(tmp_path / "in.csv"))
    assert (tmp_path / "o.vkc").read_bytes() == (tmp_path / "ref.vkc").read_bytes()
    assert not _reader_threads()


def test_a_bad_row_in_a_late_chunk_fails_cleanly(compressor: VAECompressor,
                                                 tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=60_000).astype(object),
                          "b": rng.normal(size=60_000)})
    frame.loc[55_000, "a"] = "oops"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="oops"):
        compress_files([str(tmp_path / "bad.csv")], compressor, str(tmp_path / "o.vkc"))
    assert not (tmp_path / "o.vkc").exists()
    assert not _reader_threads()


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_bytes(compressor: VAECompressor, tmp_path: Path,
                                     threads: int) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=50_000), "b": rng.normal(size=50_000)})
    frame.loc[::97, "b"] = np.nan  # a missing mask in some chunks
    frame.to_csv(tmp_path / "in.csv", index=False)
    one = compress_files([str(tmp_path / "in.csv")], compressor, str(tmp_path / "one.vkc"),
                         threads=1)
    many = compress_files([str(tmp_path / "in.csv")], compressor, str(tmp_path / "many.vkc"),
                          threads=threads)
    assert one == many
    assert (tmp_path / "one.vkc").read_bytes() == (tmp_path / "many.vkc").read_bytes()
    assert not [t for t in threading.enumerate() if t.name.startswith("vaekit-compress")]


def test_a_failing_chunk_with_threads_removes_the_output(compressor: VAECompressor,
                                                         tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    good = pd.DataFrame({"a": rng.normal(size=9_000), "b": rng.normal(size=9_000)})
    writer = CompressedWriter(str(tmp_path / "o.vkc"), compressor, chunk_rows=1_000,
                              threads=2)
    writer.write(good)
    bad = good.copy()
    bad.loc[5, "a"] = np.inf  # refused by the encoder's preparation, in a worker
    with pytest.raises(DataError, match="infinite"):
        writer.write(bad)
        writer.close()
    assert not (tmp_path / "o.vkc").exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("vaekit-compress")]
