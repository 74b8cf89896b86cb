"""Tests of the .vkc container: round trips, damage detection, atomicity, streaming."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import tracemalloc
import zlib

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaekit.codec import (
    FORMAT_VERSION,
    MAGIC,
    ContainerReader,
    ContainerWriter,
    read_header,
    read_info,
)
from vaekit.codec.container import HEADER_DICTIONARY, _header_block, compress_header_json
from vaekit.codec.records import chunk_head, trailer
from vaekit.errors import FileFormatError

# ----------------------------------------------------------------------------- helpers


class NonSeekable(io.RawIOBase):
    """A pipe-like reader over bytes: not seekable, records every read size."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)
        self.read_sizes: list[int] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        self.read_sizes.append(n)
        return self._buf.read(n)

    @property
    def consumed(self) -> int:
        return self._buf.tell()


class RecordingFile(io.BytesIO):
    """A seekable in-memory file that records every read size."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_sizes: list[int] = []

    def read(self, n: int | None = -1) -> bytes:
        self.read_sizes.append(-1 if n is None else n)
        return super().read(n)


def build(
    chunks: list[tuple[bytes, int]],
    header: dict | None = None,
    model: bytes = b"",
    version: int = FORMAT_VERSION,
) -> bytes:
    """Container bytes written to a file object (no rename)."""
    out = io.BytesIO()
    with ContainerWriter(out, header or {}, model, format_version=version) as writer:
        for payload, n_rows in chunks:
            writer.write_chunk(payload, n_rows)
    return out.getvalue()


def read_all(source) -> tuple[dict, bytes, list[tuple[int, int, bytes]]]:
    with ContainerReader(source) as reader:
        chunks = list(reader.iter_chunks())
        return reader.header, reader.embedded_model, chunks


def error_of(data: bytes, seekable: bool) -> str:
    """Read ``data`` fully; return the FileFormatError message (fail if none)."""
    source = io.BytesIO(data) if seekable else NonSeekable(data)
    with pytest.raises(FileFormatError) as info:
        with ContainerReader(source) as reader:
            reader.verify()
    return str(info.value)


SMALL_CHUNKS = [(b"first payload", 3), (b"", 0), (b"\x00\xff" * 20, 7)]
SMALL_HEADER = {"model": "abc123", "bits": [4, 0, 16]}


@pytest.fixture(scope="module", params=[2, FORMAT_VERSION], ids=["v2", "v3"])
def small(request) -> bytes:
    """A small file of each format version (byte 8 says which)."""
    data = build(SMALL_CHUNKS, SMALL_HEADER, b"MODEL" * 4, version=request.param)
    assert 150 < len(data) < 400  # "a few hundred bytes": every bit is flipped below
    return data


# -------------------------------------------------------------------------- round trips

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
headers = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k != "format_version"), json_values, max_size=5
)
chunk_lists = st.lists(st.tuples(st.binary(max_size=300), st.integers(0, 2**40)), max_size=8)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=headers, chunks=chunk_lists, model=st.binary(max_size=200))
def test_round_trip(tmp_path, header, chunks, model):
    path = tmp_path / "rt.vkc"
    with ContainerWriter(path, header, model) as writer:
        for payload, n_rows in chunks:
            writer.write_chunk(payload, n_rows)
    expected = [(i, n, p) for i, (p, n) in enumerate(chunks)]
    total_rows = sum(n for _, n in chunks)

    with ContainerReader(path) as reader:  # seekable: trailer known up front
        assert (reader.n_chunks, reader.n_rows) == (len(chunks), total_rows)
        assert reader.header == {"format_version": FORMAT_VERSION, **header}
        assert list(reader.header)[1:] == list(header)  # key order kept
        assert reader.embedded_model == model
        assert list(reader.iter_chunks()) == expected

    data = path.read_bytes()
    assert data == build(chunks, header, model)  # path and stream writers agree
    stream = NonSeekable(data)
    with ContainerReader(stream) as reader:
        assert reader.n_chunks is None  # unknown until the trailer is reached
        assert list(reader.iter_chunks()) == expected
        assert (reader.n_chunks, reader.n_rows) == (len(chunks), total_rows)


def test_zero_chunks_and_empty_everything():
    data = build([], {}, b"")
    header, model, chunks = read_all(io.BytesIO(data))
    assert header == {"format_version": FORMAT_VERSION} and model == b"" and chunks == []


def test_deterministic_bytes(tmp_path):
    a, b = tmp_path / "a.vkc", tmp_path / "b.vkc"
    for path in (a, b):
        with ContainerWriter(path, dict(SMALL_HEADER), b"m") as writer:
            for payload, n in SMALL_CHUNKS:
                writer.write_chunk(payload, n)
    assert a.read_bytes() == b.read_bytes()


def test_magic_is_binary():
    assert len(MAGIC) == 8
    with pytest.raises(UnicodeDecodeError):
        MAGIC.decode("utf-8")


def test_header_validation(tmp_path):
    target = tmp_path / "h.vkc"
    with pytest.raises(ValueError, match="reserved"):
        ContainerWriter(target, {"format_version": 99})
    with pytest.raises(ValueError, match="JSON"):
        ContainerWriter(target, {"x": float("nan")})
    with pytest.raises(ValueError, match="JSON"):
        ContainerWriter(target, {"x": object()})
    assert os.listdir(tmp_path) == []  # nothing created for a rejected header


def test_writer_checks_arguments():
    writer = ContainerWriter(io.BytesIO(), {})
    with pytest.raises(ValueError):
        writer.write_chunk(b"x", -1)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write_chunk(b"x", 1)


def test_read_header_and_info(tmp_path):
    path = tmp_path / "i.vkc"
    path.write_bytes(build(SMALL_CHUNKS, SMALL_HEADER, b"12345"))
    assert read_header(path) == {"format_version": FORMAT_VERSION, **SMALL_HEADER}
    info = read_info(path)
    assert info.complete and info.n_chunks == 3 and info.n_rows == 10
    assert info.embedded_model_bytes == 5 and info.file_bytes == path.stat().st_size
    path.write_bytes(path.read_bytes()[:-5])  # trailer damaged: header still readable
    info = read_info(path)
    assert not info.complete and info.n_chunks is None and info.header["model"] == "abc123"
    with pytest.raises(FileFormatError, match=f"^{re.escape(str(path))}: truncated: trailer"):
        with ContainerReader(path) as reader:
            reader.verify()


def _splice_header(data: bytes, block: bytes) -> bytes:
    json_len, model_len = struct.unpack_from("<IQ", data, 12)
    return block + data[28 + json_len + model_len + 4:]


def test_version_1_files_with_plain_json_still_read():
    data = build(SMALL_CHUNKS, SMALL_HEADER, b"12345", version=2)  # fixed-width records
    text = json.dumps({"format_version": 1, **SMALL_HEADER}, separators=(",", ":")).encode()
    old = _splice_header(data, _header_block(text, b"12345", version=1))
    with ContainerReader(io.BytesIO(old)) as reader:
        assert reader.format_version == 1
        assert reader.header == {"format_version": 1, **SMALL_HEADER}
        assert list(reader.iter_chunks()) == list(ContainerReader(io.BytesIO(data)).iter_chunks())
    # a version-2 block with plain JSON, or a version-1 block with a frame, is corrupt
    for block in (_header_block(text.replace(b":1,", b":2,", 1), b"12345", version=2),
                  _header_block(compress_header_json(text), b"12345", version=1)):
        with pytest.raises(FileFormatError, match="header"):
            _ = ContainerReader(io.BytesIO(_splice_header(data, block))).header


def test_a_model_referenced_header_is_small():
    header = {"codec": "vaekit-latent-codes", "codec_version": 3, "vaekit_version": "0.1.0",
              "model_fingerprint": "ab12" * 16, "model_embedded": False,
              "input_kind": "tabular", "input_form": "frame", "latent_dim": 7,
              "quantizer_sha256": "9f3e" * 16, "columns": [f"x{j}" for j in range(20)],
              "passthrough": [], "chunk_rows": 4096, "n_rows": 123456,
              "value_bounds": {"sd_units": 0.01}}
    data = build([], header)
    json_len, _ = struct.unpack_from("<IQ", data, 12)
    # a quarter of the JSON: about what its two hashes and 20 names cost
    assert 28 + json_len + 4 <= 260 < len(json.dumps(header))
    assert read_header(io.BytesIO(data))["columns"] == header["columns"]


def test_hostile_header_frames_are_refused():
    data = build(SMALL_CHUNKS, SMALL_HEADER)
    text = json.dumps({"format_version": FORMAT_VERSION, **SMALL_HEADER},
                      separators=(",", ":")).encode()
    plain = zstandard.ZstdCompressor(write_checksum=True).compress(text)  # no dictionary
    padded = compress_header_json(b" " * 1000 + text)
    huge = zstandard.ZstdCompressor(write_content_size=True).compress(b"0" * 2**16)
    for frame in (b"garbage", plain, padded[:-3], huge[:20],
                  compress_header_json(text) + b"x"):
        with pytest.raises(FileFormatError, match="header (JSON )?is corrupt"):
            _ = ContainerReader(io.BytesIO(_splice_header(data, _header_block(frame, b"")))).header


def test_iterate_twice():
    data = build(SMALL_CHUNKS)
    with ContainerReader(io.BytesIO(data)) as reader:
        assert list(reader.iter_chunks()) == list(reader.iter_chunks())
    with ContainerReader(NonSeekable(data)) as reader:
        list(reader.iter_chunks())
        with pytest.raises(ValueError, match="once"):
            list(reader.iter_chunks())


# ------------------------------------------------------------------ damage detection


@pytest.mark.parametrize("seekable", [True, False])
def test_every_single_bit_flip_is_detected(small, seekable):
    for bit in range(len(small) * 8):
        damaged = bytearray(small)
        damaged[bit // 8] ^= 1 << (bit % 8)
        message = error_of(bytes(damaged), seekable)
        assert "corrupt" in message or "not a vaekit container" in message, (bit, message)


@pytest.mark.parametrize("seekable", [True, False])
def test_truncation_at_every_length_is_detected(small, seekable):
    for length in range(len(small)):
        message = error_of(small[:length], seekable)
        assert "truncated" in message or "empty file" in message, (length, message)


def test_error_messages_name_the_part(small):
    header_end = small.index(b"CHNK")
    assert "not a vaekit container" in error_of(b"id,x\n1,2\n" * 10, True)

    newer = bytearray(small)
    newer[8:12] = struct.pack("<HH", FORMAT_VERSION + 1, (FORMAT_VERSION + 1) ^ 0xFFFF)
    assert (
        f"written by a newer vaekit: format version {FORMAT_VERSION + 1}, "
        f"this reader understands up to {FORMAT_VERSION}"
    ) in error_of(bytes(newer), True)

    damaged = bytearray(small)
    damaged[header_end - 6] ^= 0x01  # inside the embedded model
    assert "header is corrupt" in error_of(bytes(damaged), True)

    third_payload = small.index(b"\x00\xff\x00\xff")
    damaged = bytearray(small)
    damaged[third_payload + 3] ^= 0x80
    assert "chunk 3 of 3 is corrupt (CRC mismatch)" in error_of(bytes(damaged), True)
    assert "chunk 3 is corrupt (CRC mismatch)" in error_of(bytes(damaged), False)

    cut = small[: third_payload + 5]
    assert "truncated: chunk 3 ends early" in error_of(cut, True)
    assert "truncated: chunk 3 ends early" in error_of(cut, False)
    end = len(trailer(small[8], len(SMALL_CHUNKS), sum(n for _, n in SMALL_CHUNKS)))
    assert "missing trailer" in error_of(small[:-end], False)
    assert "missing trailer" in error_of(small[:-end], True)
    assert "trailer is corrupt" in error_of(small[:-1] + b"\x00", True)
    assert "unexpected data after the trailer" in error_of(small + b"\x00", True)


def _with_valid_crc(prefix: bytes) -> bytes:
    return prefix + struct.pack("<I", zlib.crc32(prefix))


@pytest.mark.parametrize("seekable", [True, False])
def test_huge_lengths_do_not_allocate(small, seekable):
    # Lengths with *valid* CRCs (a crafted file): must fail as truncated, quickly,
    # without trying to allocate petabytes.
    # Over the format's bounds: refused from the lengths alone.
    prefix = small[:12] + struct.pack("<IQ", 2**31, 2**50)
    message = error_of(_with_valid_crc(prefix) + b"x" * 100, seekable)
    assert "header JSON of 2147483648 bytes; the limit is" in message
    prefix = small[:12] + struct.pack("<IQ", 100, 2**50)
    message = error_of(_with_valid_crc(prefix) + b"x" * 100, seekable)
    assert "embedded model of 1125899906842624 bytes; the limit is" in message
    # Within the bounds, but more than the file holds: truncated.
    prefix = small[:12] + struct.pack("<IQ", 2**20, 2**29)
    message = error_of(_with_valid_crc(prefix) + b"x" * 100, seekable)
    assert "truncated: header ends early" in message

    start = small.index(b"CHNK")

    def chunk_record(length: int) -> bytes:
        return chunk_head(small[8], 0, 1, length)[:-4]

    head = chunk_record(2**60)
    message = error_of(small[:start] + _with_valid_crc(head) + b"y" * 100, seekable)
    assert "chunk 1" in message and "payload of 1152921504606846976 bytes" in message
    head = chunk_record(2**29)
    message = error_of(small[:start] + _with_valid_crc(head) + b"y" * 100, seekable)
    assert "chunk 1" in message and ("ends early" in message or "runs into" in message)


# ------------------------------------------------------------------------- atomicity


class Boom(Exception):
    pass


def test_exception_leaves_no_file(tmp_path):
    target = tmp_path / "out.vkc"
    with pytest.raises(Boom):
        with ContainerWriter(target, {"a": 1}) as writer:
            writer.write_chunk(b"data", 1)
            raise Boom
    assert os.listdir(tmp_path) == []


def test_exception_keeps_existing_file(tmp_path):
    target = tmp_path / "out.vkc"
    target.write_bytes(b"precious")
    with pytest.raises(Boom):
        with ContainerWriter(target, {"a": 1}) as writer:
            writer.write_chunk(b"data", 1)
            raise Boom
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.vkc"]


def test_temp_file_then_rename(tmp_path):
    target = tmp_path / "out.vkc"
    target.write_bytes(b"old")
    with ContainerWriter(target, {}) as writer:
        writer.write_chunk(b"data", 1)
        names = os.listdir(tmp_path)
        temps = [n for n in names if n.startswith(".out.vkc.") and n.endswith(".tmp")]
        assert len(temps) == 1 and len(names) == 2  # the old file is still in place
        assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.vkc"]
    assert read_all(target)[2] == [(0, 1, b"data")]


class WriteOnlyPipe(io.RawIOBase):
    """A sink like a pipe: no seek, no tell."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += bytes(b)
        return len(b)

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("not seekable")


def test_writer_streams_to_a_pipe():
    sink = WriteOnlyPipe()
    with ContainerWriter(sink, {"k": "v"}, b"m") as writer:
        for payload, n in SMALL_CHUNKS:
            writer.write_chunk(payload, n)
    assert bytes(sink.data) == build(SMALL_CHUNKS, {"k": "v"}, b"m")
    assert writer.bytes_written == len(sink.data) and writer.n_rows == 10


def test_file_object_target_is_not_closed_and_failure_is_visible():
    out = io.BytesIO()
    with ContainerWriter(out, {}) as writer:
        writer.write_chunk(b"abc", 2)
    assert not out.closed
    assert read_all(io.BytesIO(out.getvalue()))[2] == [(0, 2, b"abc")]

    partial = io.BytesIO()
    with pytest.raises(Boom):
        with ContainerWriter(partial, {}) as writer:
            writer.write_chunk(b"abc", 2)
            raise Boom
    assert "missing trailer" in error_of(partial.getvalue(), False)


# ------------------------------------------------------------------------- streaming

N_CHUNKS, CHUNK_BYTES = 40, 64 * 1024


@pytest.fixture(scope="module")
def many_chunks() -> bytes:
    return build([(bytes([i]) * CHUNK_BYTES, 10) for i in range(N_CHUNKS)])


@pytest.mark.parametrize("cls", [RecordingFile, NonSeekable])
def test_reader_streams_one_chunk_at_a_time(many_chunks, cls):
    source = cls(many_chunks)
    positions = []
    with ContainerReader(source) as reader:
        for index, _, payload in reader.iter_chunks():
            assert payload == bytes([index]) * CHUNK_BYTES
            positions.append(source.tell() if cls is RecordingFile else source.consumed)
    # No read is larger than one chunk, and when chunk k is handed out the reader
    # has not looked past it (no read-ahead, nothing buffered).
    assert max(source.read_sizes) <= CHUNK_BYTES
    overhead = (len(many_chunks) - N_CHUNKS * CHUNK_BYTES) // N_CHUNKS + 1
    for k, pos in enumerate(positions):
        assert pos <= many_chunks.index(b"CHNK") + (k + 1) * (CHUNK_BYTES + overhead)


def test_reader_memory_is_bounded_by_one_chunk(many_chunks):
    source = NonSeekable(many_chunks)
    tracemalloc.start()
    try:
        with ContainerReader(source) as reader:
            total = sum(len(payload) for _, _, payload in reader.iter_chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == N_CHUNKS * CHUNK_BYTES
    assert peak < 4 * CHUNK_BYTES  # the file is 40 chunks: at most ~2 held at once


def test_format_md_states_the_header_dictionary():
    from pathlib import Path

    import vaekit.codec as codec

    text = (Path(codec.__file__).parent / "FORMAT.md").read_text(encoding="utf-8")
    lines = [line.encode() for line in text.splitlines()]
    assert HEADER_DICTIONARY in lines
    assert f"is these {len(HEADER_DICTIONARY)} bytes" in text
