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
