"""Missing cells survive compress -> decompress as blanks (the chunk's missing mask)."""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import pandas as pd
import pytest

from tests.conftest import DEMO, run_cli
from vaekit import FileFormatError, VAECompressor
from vaekit.codec import ContainerReader, ContainerWriter
from vaekit.codec.packing import mask_size_limit, pack_mask, unpack_mask
from vaekit.fitted import container_checks
from vaekit.fitted.streams import (
    CompressedWriter,
    compress_chunk,
    container_header,
    iter_decompressed,
)


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, n)
    frame = pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "x": t + 0.05 * rng.normal(size=n),
        "y": np.sin(2 * t),
        "count": rng.integers(0, 9, n).astype(float),
        "kind": rng.choice(["a", "b", "c"], n).astype(object),
        "flag": np.where(t > 0, "yes", "no").astype(object),
    })
    return frame


def _with_blanks(frame: pd.DataFrame, seed: int = 1, rate: float = 0.08) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in ("x", "count", "kind", "flag"):
        rows = rng.random(len(out)) < rate
        out.loc[rows, col] = np.nan if out[col].dtype.kind == "f" else None
    out.loc[128:191, ["x", "y", "count", "kind", "flag"]] = out.loc[
        128:191, ["x", "y", "count", "kind", "flag"]].ffill().bfill()  # one chunk complete
    return out


@pytest.fixture(scope="module")
def model() -> VAECompressor:
    return VAECompressor(bits=4, epochs=4, random_state=0).fit(
        _with_blanks(_table()).drop(columns="id"))


def _payload_flags(data: bytes) -> list[int]:
    with ContainerReader(io.BytesIO(data)) as reader:
        return [payload[1] for _, _, payload in reader.iter_chunks()]


def test_blank_cells_come_back_blank(model):
    table = _with_blanks(_table())
    assert table.drop(columns="id").isna().to_numpy().sum() > 60
    buffer = io.BytesIO()
    with CompressedWriter(buffer, model, id_columns=["id"], chunk_rows=64) as writer:
        writer.write(table)
    data = buffer.getvalue()
    out = pd.concat(list(iter_decompressed(io.BytesIO(data), model)))
    assert list(out.columns) == list(table.columns)
    pd.testing.assert_frame_equal(out.isna(), table.isna(), check_index_type=False)
    # Observed cells are reconstructions, not blanks; ids are exact.
    assert out["id"].tolist() == table["id"].tolist()
    assert out.loc[~table["kind"].isna(), "kind"].isin(["a", "b", "c"]).all()
    # The chunk of rows 64..127 has blanks, the one of rows 128..191 has none: no
    # mask there (flag bit 1 clear), a mask elsewhere.
    flags = _payload_flags(data)
    assert len(flags) == 5
    assert [bool(f & 2) for f in flags] == [
        bool(table.drop(columns="id").iloc[k * 64:(k + 1) * 64].isna().to_numpy().any())
        for k in range(5)]
    assert not all(f & 2 for f in flags)


def test_mask_overhead_is_a_few_bits_per_row(model):
    table = _with_blanks(_table(), rate=0.5)
    n_cols = len(model.fitted_.column_names)
    plain = compress_chunk(table.fillna({"x": 0.0, "count": 1.0, "kind": "a", "flag": "no"}),
                           model.fitted_, model.fitted_.default_quantizer(), ["id"])
    masked = compress_chunk(table, model.fitted_, model.fitted_.default_quantizer(), ["id"])
    (n_codes,) = struct.unpack_from("<I", masked, 2)
    (size,) = struct.unpack_from("<I", masked, 6 + n_codes)
    assert size + 4 <= math.ceil(len(table) * n_cols / 8) + 64
    # everything but the section is laid out as before
    assert plain[1] == 1 and masked[1] == 3


def test_arrays_keep_their_nans():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    m = VAECompressor(bits=4, epochs=2, random_state=0).fit(X)
    out = m.decompress(m.compress(X))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(X))


def test_integer_and_boolean_columns_become_nullable():
    frame = pd.DataFrame({"n": np.arange(120) % 7, "b": np.arange(120) % 3 == 0,
                          "v": np.linspace(0, 1, 120)})
    m = VAECompressor(bits=4, epochs=2, random_state=0).fit(frame)
    holey = frame.astype({"n": "Int64", "b": "boolean"})
    holey.loc[[3, 50], "n"] = pd.NA
    holey.loc[[7], "b"] = pd.NA
    out = m.decompress(m.compress(holey))
    assert out["n"].isna().tolist() == holey["n"].isna().tolist()
    assert out["b"].isna().tolist() == holey["b"].isna().tolist()
    assert out["n"].dtype == "Int64" and out["b"].dtype == "boolean"


def test_cli_round_trip_keeps_blanks(demo_model_file, tmp_path):
    demo = pd.read_csv(DEMO, keep_default_na=False, na_values=[""], dtype=str)
    rng = np.random.default_rng(3)
    for col in ("region", "quantity", "is_weekend", "unit_price"):
        demo.loc[rng.random(len(demo)) < 0.05, col] = ""
    source = tmp_path / "holey.csv"
    demo.fillna("").to_csv(source, index=False)
    before = pd.read_csv(source)
    blanks = int(before.drop(columns="row_id").isna().to_numpy().sum())
    assert blanks > 300
    vkc, restored = tmp_path / "holey.vkc", tmp_path / "restored.csv"
    result = run_cli("compress", source, "-m", demo_model_file, "--id-column", "row_id",
                     "-o", vkc, "-q")
    assert result.exit_code == 0, result.output
    result = run_cli("decompress", vkc, "-m", demo_model_file, "-o", restored, "-q")
    assert result.exit_code == 0, result.output
    after = pd.read_csv(restored)
    assert list(after.columns) == list(before.columns)
    pd.testing.assert_frame_equal(after.isna(), before.isna())


def _codec1_file(model, rows: pd.DataFrame, flags_or: int = 0) -> bytes:
    """A file as vaekit wrote it before the mask (codec version 1)."""
    fitted = model.fitted_
    quantizer = fitted.default_quantizer()
    header = container_header(fitted, quantizer, columns=list(rows.columns),
                              id_columns=["id"], chunk_rows=64, self_describing=True)
    header["codec_version"] = 1
    buffer = io.BytesIO()
    with ContainerWriter(buffer, header) as writer:
        for start in range(0, len(rows), 64):
            part = rows.iloc[start:start + 64]
            payload = bytearray(compress_chunk(part, fitted, quantizer, ["id"]))
            payload[1] |= flags_or
            writer.write_chunk(bytes(payload), len(part))
    return buffer.getvalue()


def test_files_written_before_the_mask_still_decode(model):
    complete = _table(150)
    data = _codec1_file(model, complete)
    out = pd.concat(list(iter_decompressed(io.BytesIO(data), model)))
    assert out["id"].tolist() == complete["id"].tolist()
    assert not out.isna().to_numpy().any()
    # ... and in a codec-1 file the mask flag is corruption, not a mask.
    with pytest.raises(FileFormatError, match="chunk payload is corrupt"):
        list(iter_decompressed(io.BytesIO(_codec1_file(model, complete, flags_or=2)), model))


def test_an_older_reader_refuses_a_file_with_a_mask(model, monkeypatch):
    data = model.compress(_with_blanks(_table()), id_columns=["id"])
    monkeypatch.setattr(container_checks, "CODEC_VERSION", 1)  # a reader from before the mask
    with pytest.raises(FileFormatError, match="codec version 6.*Upgrade vaekit"):
        list(iter_decompressed(io.BytesIO(data), model))


def test_mask_encoding_round_trip_and_canonical_form():
    rng = np.random.default_rng(0)
    mask = rng.random((1000, 13)) < 0.02
    mask[:, 5] = False
    data = pack_mask(mask)
    np.testing.assert_array_equal(unpack_mask(data, 1000, 13), mask)
    assert len(data) <= mask_size_limit(1000, 13) + 32
    with pytest.raises(ValueError):
        pack_mask(np.zeros((4, 3), dtype=bool))  # nothing missing: no section at all
    from vaekit.codec.packing import _compress

    for raw in (b"\x00\x00",                       # no column listed
                b"\x80" + b"\x00" * 2,             # a listed column without a blank
                b"\xff\x80" + b"\x01" * 20,        # sizes disagree
                b"\x80\x80" + b"\x00\x01"):        # padding bits set (n_rows = 9)
        with pytest.raises(FileFormatError, match="missing mask is corrupt"):
            unpack_mask(_compress(raw), 9, 9)
    # More than n_rows x n_cols bits can hold: refused from the frame header.
    with pytest.raises(FileFormatError, match="limit"):
        unpack_mask(_compress(b"\x80" + b"\xff" * 64), 9, 1)
