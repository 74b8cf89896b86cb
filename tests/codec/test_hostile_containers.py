"""Crafted .vkc files with valid CRCs: refused with a FileFormatError before allocation.

Every file here is built by the test itself, with the container's own writer (so all
checksums are valid), from a real compressed file whose header or chunks are then
changed the way an attacker or a damaged producer would.
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading

import numpy as np
import pandas as pd
import pytest
import zstandard

from tests.conftest import run_cli
from vaekit import FileFormatError, VAECompressor
from vaekit.codec import ContainerReader, ContainerWriter, container
from vaekit.codec.container import MAX_CHUNK_ROWS, _header_block, compress_header_json
from vaekit.codec.guards import MAX_JSON_DEPTH, load_json
from vaekit.codec.packing import pack_codes
from vaekit.fitted.streams import iter_decompressed

N_ROWS = 200


@pytest.fixture(scope="module")
def model() -> VAECompressor:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=N_ROWS), "b": rng.normal(size=N_ROWS),
                          "k": rng.choice(["x", "y"], N_ROWS)})
    return VAECompressor(bits=4, epochs=2, random_state=0).fit(frame)


@pytest.fixture(scope="module")
def table(model) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"id": [f"id{i}" for i in range(N_ROWS)],
                         "a": rng.normal(size=N_ROWS), "b": rng.normal(size=N_ROWS),
                         "k": rng.choice(["x", "y"], N_ROWS)})


def _header_and_chunks(model, table, **options) -> tuple[dict, list[tuple[int, bytes]]]:
    buffer = io.BytesIO()
    from vaekit.fitted.streams import CompressedWriter

    with CompressedWriter(buffer, model, id_columns=["id"], chunk_rows=64, **options) as writer:
        writer.write(table)
    with ContainerReader(io.BytesIO(buffer.getvalue())) as reader:
        chunks = [(n, payload) for _, n, payload in reader.iter_chunks()]
        return dict(reader.header), chunks


@pytest.fixture(scope="module")
def good(model, table) -> tuple[dict, list[tuple[int, bytes]]]:
    """Header and chunks of a real self-describing file (codec 2: the schema and the
    quantizer in the header; chunk_rows 64, an id column)."""
    return _header_and_chunks(model, table, self_describing=True)


@pytest.fixture(scope="module")
def referenced(model, table) -> tuple[dict, list[tuple[int, bytes]]]:
    """The same rows in a file whose header names the model (codec 6, the default)."""
    return _header_and_chunks(model, table)


def rebuild(header: dict, chunks: list[tuple[int, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with ContainerWriter(buffer, {k: v for k, v in header.items() if k != "format_version"}
                         ) as writer:
        for n, payload in chunks:
            writer.write_chunk(payload, n)
    return buffer.getvalue()


def with_raw_header(text: bytes, body: bytes) -> bytes:
    """``body`` (a whole file) with its header JSON replaced by ``text`` (CRCs redone)."""
    json_len, model_len = struct.unpack_from("<IQ", body, 12)
    rest = body[28 + json_len + model_len + 4:]
    return _header_block(compress_header_json(text), b"") + rest


def decode_error(data: bytes, model) -> str:
    with pytest.raises(FileFormatError) as info:
        list(iter_decompressed(io.BytesIO(data), model))
    assert "Traceback" not in str(info.value)
    return str(info.value)


class DecompressSpy:
    """Records how many bytes zstd was asked to produce (must stay small)."""

    def __init__(self, monkeypatch):
        self.produced = 0
        spy = self
        real = zstandard.ZstdDecompressor

        class Counting:  # a plain wrapper: subclassing the C type upsets its GC
            def __init__(self, *args, **kwargs):
                self._real = real(*args, **kwargs)
                # the header JSON (the one frame under a dictionary) is not chunk data
                self._counted = kwargs.get("dict_data") is None

            def stream_reader(self, source, *args, **kwargs):
                inner = self._real.stream_reader(source, *args, **kwargs)
                counted = self._counted

                class Reader:
                    def read(self, n=-1):
                        out = inner.read(n)
                        spy.produced += len(out) if counted else 0
                        return out
                return Reader()

        monkeypatch.setattr(zstandard, "ZstdDecompressor", Counting)


def rle_bomb(size: int) -> bytes:
    """A zstd frame declaring ``size`` bytes, made of 4-byte RLE blocks (ratio ~32,000:1)."""
    block = 2**17
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    out += bytes([0b11100100]) + struct.pack("<Q", size)  # 8-byte size, single segment, checksum
    left = size
    while left:
        n = min(block, left)
        left -= n
        out += (int(left == 0) | (1 << 1) | (n << 3)).to_bytes(3, "little") + b"\0"
    return bytes(out + b"\0\0\0\0")


# ----------------------------------------------------------------- decompression bombs


def test_chunk_rows_above_the_header_is_refused_before_decoding(good, model, monkeypatch):
    header, chunks = good
    spy = DecompressSpy(monkeypatch)
    payload = chunks[0][1]
    data = rebuild(header, [(10**9, payload)])  # 2.6 KB claiming a billion rows
    message = decode_error(data, model)
    assert "1000000000 rows" in message and "chunk_rows (64)" in message
    assert spy.produced == 0


def test_short_chunk_in_the_middle_is_refused(good, model):
    header, chunks = good
    message = decode_error(rebuild(header, [chunks[-1], chunks[0]]), model)
    assert "chunk 2 is corrupt" in message and "fewer than chunk_rows" in message


def test_header_chunk_rows_is_bounded(good, model):
    header, chunks = good
    message = decode_error(rebuild({**header, "chunk_rows": MAX_CHUNK_ROWS + 1}, chunks), model)
    assert "'chunk_rows'" in message
    # ... and a writer never writes such a file (nor one too wide for the model's rows)
    from vaekit.fitted.streams import CompressedWriter

    with pytest.raises(ValueError, match="chunk_rows is 1048577"):
        CompressedWriter(io.BytesIO(), model, chunk_rows=MAX_CHUNK_ROWS + 1)


def test_id_table_bomb_is_refused_from_its_frame_header(good, model, monkeypatch):
    header, chunks = good
    n, payload = chunks[0]
    (n_codes,) = struct.unpack_from("<I", payload, 2)
    bomb = rle_bomb(900 * 2**20)  # ~29 KB declaring 0.9 GB of ids
    assert len(bomb) < 40_000
    data = rebuild(header, [(n, payload[:6 + n_codes] + bomb)])
    spy = DecompressSpy(monkeypatch)
    message = decode_error(data, model)
    assert "passthrough table is corrupt" in message and "943718400" in message
    assert "limit" in message and "chunk 1" in message
    assert spy.produced < 2**20  # only the codes were decompressed


def test_a_frame_that_lies_about_its_size_is_cut_off(monkeypatch):
    from vaekit.codec import packing

    bomb = bytearray(rle_bomb(64 * 2**20))
    bomb[5:13] = struct.pack("<Q", 1000)  # declares 1000 bytes, holds 64 MB
    spy = DecompressSpy(monkeypatch)
    with pytest.raises(FileFormatError, match="corrupt"):
        packing._decompress(bytes(bomb), None, "test frame", 2**20)
    assert spy.produced <= 1001


def test_codes_frame_must_match_the_rows(good, model):
    header, chunks = good
    n, payload = chunks[0]
    (n_codes,) = struct.unpack_from("<I", payload, 2)
    bits = header["quantizer"]["bits"]
    big = pack_codes(np.zeros((64 * 1000, len(bits)), dtype=np.int64), bits)
    forged = struct.pack("<BBI", 1, 1, len(big)) + big + payload[6 + n_codes:]
    message = decode_error(rebuild(header, [(n, forged)]), model)
    assert "packed codes is corrupt (holds 96000 bytes, expected 96)" in message


def test_missing_mask_bomb_is_refused(good, model, monkeypatch):
    header, chunks = good
    n, payload = chunks[0]
    (n_codes,) = struct.unpack_from("<I", payload, 2)
    bomb = rle_bomb(2**30)
    forged = (struct.pack("<BBI", 1, 3, n_codes) + payload[6:6 + n_codes]
              + struct.pack("<I", len(bomb)) + bomb + payload[6 + n_codes:])
    spy = DecompressSpy(monkeypatch)
    message = decode_error(rebuild(header, [(n, forged)]), model)
    assert "missing mask is corrupt" in message and "limit" in message
    assert spy.produced < 2**20


def test_overlong_id_is_refused_by_writer_and_reader(model, table):
    from vaekit import DataError
    from vaekit.codec import packing

    long_ids = table.copy()
    long_ids.loc[5, "id"] = "x" * (packing.MAX_ID_BYTES + 1)
    with pytest.raises(DataError, match="row 6 .*at most 65536 bytes"):
        model.compress(long_ids, id_columns=["id"])
    frame = pd.DataFrame({"id": ["y" * (packing.MAX_ID_BYTES + 1)]})
    original = packing._check_id_lengths
    packing._check_id_lengths = lambda *a: None  # a foreign writer without the check
    try:
        blob = packing.pack_table(frame)
    finally:
        packing._check_id_lengths = original
    with pytest.raises(FileFormatError, match="at most 65536 bytes"):
        packing.unpack_table(blob, packing.table_size_limit(1, 1))


# ---------------------------------------------------------------------- header schema


HEADER_CASES = [
    ("drop", "quantizer"), ("drop", "chunk_rows"), ("drop", "passthrough"),
    ("drop", "model_fingerprint"), ("drop", "latent_dim"), ("drop", "codec_version"),
    ("set", "codec_version", "2"), ("set", "latent_dim", "8"), ("set", "chunk_rows", 64.0),
    ("set", "chunk_rows", True), ("set", "chunk_rows", 0), ("set", "passthrough", "id"),
    ("set", "columns", {"a": 1}), ("set", "quantizer", []), ("set", "schema", 5),
    ("set", "model_embedded", 1), ("set", "n_rows", "x"), ("set", "n_rows", -1),
    ("set", "input_kind", "sound"), ("set", "input_form", 3),
    ("set", "model_fingerprint", "zz"), ("set", "codec_version", 0),
    ("set", "columns", ["id", "a", "b"]), ("set", "columns", ["id", "a", "a", "b", "k"]),
    ("set", "passthrough", ["nope"]), ("set", "latent_dim", 999),
    ("quantizer", "version", 99), ("quantizer", "bits", ["a"]), ("quantizer", "lo", "x"),
    ("quantizer", "step", [None]), ("quantizer", "method", "magic"),
    ("drop_q", "center", None),
]


@pytest.mark.parametrize("case", HEADER_CASES, ids=lambda c: "-".join(map(str, c)))
def test_malformed_header_is_a_format_error_naming_the_key(good, model, case):
    header, chunks = good
    header = json.loads(json.dumps(header))
    kind, key, *value = case
    if kind == "drop":
        del header[key]
    elif kind == "set":
        header[key] = value[0]
    elif kind == "quantizer":
        header["quantizer"][key] = value[0]
    else:
        del header["quantizer"][key]
    message = decode_error(rebuild(header, chunks), model)
    named = "quantizer" if kind in ("quantizer", "drop_q") else key
    assert f"'{named}'" in message or "Upgrade" in message, message


REFERENCED_CASES = [
    ("drop", "quantizer_sha256"), ("set", "quantizer_sha256", "ab" * 31),
    ("set", "quantizer_sha256", "ab" * 7), ("set", "quantizer_sha256", "ab" * 32),
    ("set", "quantizer_sha256", 5), ("set", "model_fingerprint", "ab" * 32),
    ("set", "model_fingerprint", "AB" * 8), ("set", "codec_version", 2),
    ("set", "codec_version", 5), ("set", "value_bounds", [1.0]),
]


@pytest.mark.parametrize("case", REFERENCED_CASES, ids=lambda c: "-".join(map(str, c)))
def test_malformed_referenced_header_is_a_format_error_naming_the_key(referenced, model, case):
    header, chunks = referenced
    assert "schema" not in header and "quantizer" not in header
    assert header["codec_version"] == 6  # the compact header: 16-digit hashes
    assert len(header["model_fingerprint"]) == len(header["quantizer_sha256"]) == 16
    header = json.loads(json.dumps(header))
    kind, key, *value = case
    if kind == "drop":
        del header[key]
    else:
        header[key] = value[0]
    message = decode_error(rebuild(header, chunks), model)
    # a version from before the compact header names the first key it breaks
    assert (any(f"'{k}'" in message for k in (key, "schema", "quantizer", "model_fingerprint"))
            or "bounded values" in message), message


def test_referenced_and_self_describing_files_decode_alike(referenced, good, model):
    (h1, c1), (h2, c2) = referenced, good
    assert c1 == c2  # the same chunks; only the header differs
    assert len(json.dumps(h1)) < len(json.dumps(h2))
    a = pd.concat(list(iter_decompressed(io.BytesIO(rebuild(h1, c1)), model)))
    b = pd.concat(list(iter_decompressed(io.BytesIO(rebuild(h2, c2)), model)))
    pd.testing.assert_frame_equal(a, b)


RAW_JSON_CASES = {
    "nan": b'"latent_dim":NaN', "infinity": b'"latent_dim":-Infinity',
    "overflow": b'"latent_dim":1e999', "digits": b'"latent_dim":' + b"9" * 5000,
    "deep": b'"schema":' + b"[" * 100_000 + b"]" * 100_000,
    "duplicate": b'"latent_dim":1,"latent_dim":2',
}


@pytest.mark.parametrize("case", sorted(RAW_JSON_CASES))
def test_hostile_json_is_refused(good, model, case):
    header, chunks = good
    body = rebuild(header, chunks)
    text = json.dumps(header, separators=(",", ":")).encode()
    start = text.index(b'"latent_dim":')
    end = text.index(b",", start)
    data = with_raw_header(text[:start] + RAW_JSON_CASES[case] + text[end:], body)
    message = decode_error(data, model)
    assert "header is corrupt (invalid JSON" in message


def test_load_json_bounds():
    assert load_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(ValueError, match="nested too deeply"):
        load_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    # brackets inside strings (with escaped quotes) do not count
    assert load_json(b'{"a":"\\"' + b"[" * 500 + b'"}') == {"a": '"' + "[" * 500}
    with pytest.raises(ValueError, match="bytes of JSON"):
        load_json(b"[]", max_bytes=1)


def test_cli_reports_a_malformed_header_with_exit_4(good, model, tmp_path):
    header, chunks = good
    bad = tmp_path / "bad.vkc"
    bad.write_bytes(rebuild({**header, "quantizer": {"version": 99}}, chunks))
    model_path = tmp_path / "m.vaekit"
    model.save(model_path)
    out = tmp_path / "out.csv"
    before = bad.read_bytes()
    result = run_cli("decompress", bad, "-m", model_path, "-o", out, "-q")
    assert result.exit_code == 4, result.output
    assert "bad.vkc" in result.output and "'quantizer'" in result.output
    assert not out.exists() and bad.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.vkc", "m.vaekit"]


# ------------------------------------------------------------ not a file, magic first


def _within(seconds: float, fn) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test if it does not finish in time."""
    box: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            box.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, "the reader hung"
    return box[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_device_are_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.vkc"
    os.mkfifo(fifo)
    link = tmp_path / "zero.vkc"
    link.symlink_to("/dev/zero")
    for path in (fifo, link, tmp_path):
        error = _within(5, lambda p=path: ContainerReader(p))
        assert isinstance(error, FileFormatError), error
        expected = "is a folder" if path == tmp_path else "not a regular file"
        assert expected in str(error) and str(path) in str(error)


def test_the_magic_is_read_before_anything_else(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 10_000)

    def no_probe(self):
        raise AssertionError("the trailer was read before the magic")

    monkeypatch.setattr(container.ContainerReader, "_probe_trailer", no_probe)
    with pytest.raises(FileFormatError, match="not a vaekit container"):
        ContainerReader(path)


def _variants(good) -> dict[str, bytes]:
    header, chunks = good
    (n0, p0), (n1, p1) = chunks[0], chunks[1]
    return {
        "chunk rows above chunk_rows": rebuild({**header, "chunk_rows": n0 - 1}, chunks),
        "chunk_rows 0": rebuild({**header, "chunk_rows": 0}, chunks),
        "header n_rows off by one": rebuild(
            {**header, "n_rows": sum(n for n, _ in chunks) - 1}, chunks),
        "short chunk not last": rebuild(header, [(n0 - 1, p0), (n1, p1), *chunks[2:]]),
        # the second chunk's codes are for n1 rows; its record says n1 - 1 (and it is
        # the last chunk, so the short-chunk rule does not catch it)
        "rows disagree with codes": rebuild(header, [(n0, p0), (n1 - 1, p1)]),
    }


@pytest.mark.parametrize("case", ["chunk rows above chunk_rows", "chunk_rows 0",
                                  "header n_rows off by one", "short chunk not last",
                                  "rows disagree with codes"])
def test_info_verify_refuses_what_decompress_refuses(good, model, tmp_path, case) -> None:
    # `info --verify` said "complete", exit 0, on files decompress refused (exit 4)
    from vaekit.cli import EXIT_FILE

    from ..conftest import run_cli

    data = _variants(good)[case]
    decode_error(data, model)  # decompress refuses it...
    path = tmp_path / "bad.vkc"
    path.write_bytes(data)
    result = run_cli("info", path, "--verify")  # ...and so does info --verify
    assert result.exit_code == EXIT_FILE, result.output
    assert str(path) in result.output and "Traceback" not in result.output


def test_info_verify_passes_a_sound_file(good, tmp_path) -> None:
    from ..conftest import run_cli

    path = tmp_path / "good.vkc"
    path.write_bytes(rebuild(*good))
    result = run_cli("info", path, "--verify")
    assert result.exit_code == 0, result.output
