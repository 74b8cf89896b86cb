"""Atomic outputs: a failure at any point leaves the target as it was and no temp file."""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pytest

from vaekit.files.atomic import AtomicFile, atomic_write_bytes
from vaekit.files.writers import TableWriter


def test_commit_publishes_with_plain_file_permissions(tmp_path) -> None:
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["out.bin"]


def test_abort_removes_the_temp_file_even_when_the_flush_fails(tmp_path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    out = AtomicFile(target)
    out.fh.write(b"x" * 10)

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    out.fh.flush = full  # type: ignore[method-assign]
    out.abort()
    assert os.listdir(tmp_path) == ["out.bin"] and target.read_bytes() == b"old"


# The patched footer write also fails in ParquetWriter.__del__ later: expected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("fail_at", ["footer", "fsync"])
def test_table_writer_close_failure_leaves_no_file(tmp_path, monkeypatch, fail_at) -> None:
    target = tmp_path / "scores.parquet"
    writer = TableWriter(str(target))
    writer.__enter__()
    writer.write(pa.table({"a": [1, 2, 3]}))

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    if fail_at == "footer":
        monkeypatch.setattr(writer._writer, "close", boom)
    else:
        monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert os.listdir(tmp_path) == []
