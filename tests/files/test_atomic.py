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


# ---------------------------------------------------------- FIFOs and devices (issue 15)

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
@pytest.mark.parametrize("ok", [True, False])
def test_a_fifo_is_written_in_place_and_never_replaced(tmp_path, ok) -> None:
    import threading

    from vaekit.files.atomic import writes_in_place

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert writes_in_place(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    out = AtomicFile(fifo)
    assert out.in_place
    out.fh.write(b"streamed")
    out.commit() if ok else out.abort()
    reader.join(timeout=30)
    assert got == [b"streamed"]  # written through, also when aborted: it cannot be taken back
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe"]  # no temp file beside it


def test_devices_and_dev_entries_are_written_in_place(tmp_path) -> None:
    from vaekit.files.atomic import writes_in_place

    assert not writes_in_place(tmp_path / "new.csv")
    (tmp_path / "old.csv").write_bytes(b"x")
    assert not writes_in_place(tmp_path / "old.csv")
    if os.path.exists("/dev/null"):
        assert writes_in_place("/dev/null")
    if os.path.exists("/dev/stdout"):
        assert writes_in_place("/dev/stdout")  # even when it resolves to a regular file
    if os.path.isdir("/dev/shm"):
        assert not writes_in_place("/dev/shm/vaekit-test-not-there.csv")  # a plain tmpfs


def test_dev_null_stays_a_device(monkeypatch) -> None:
    if not os.path.exists("/dev/null") or not stat.S_ISCHR(os.stat("/dev/null").st_mode):
        pytest.skip("no /dev/null")
    real = os.replace

    def guarded(src: object, dst: object) -> None:
        # Run as root the old code renamed a regular file onto /dev/null: never here.
        assert not os.fspath(dst).startswith("/dev/"), dst
        real(src, dst)

    monkeypatch.setattr(os, "replace", guarded)
    before = os.stat("/dev/null")
    atomic_write_bytes("/dev/null", b"gone")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_a_folder_is_refused_before_anything_is_written(tmp_path) -> None:
    with pytest.raises(IsADirectoryError):
        AtomicFile(tmp_path)
    assert os.listdir(tmp_path) == []
