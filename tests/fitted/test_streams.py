"""Compressing rows to .vkc containers and back (vaekit.fitted.streams, VAECompressor)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from vaekit import DataError, FileFormatError, VAEAnomalyDetector, VAECompressor, load
from vaekit.codec import ContainerReader
from vaekit.codec.quantize import payload_bytes_per_row
from vaekit.fitted.container_checks import quantizer_digest
from vaekit.fitted.streams import CompressedWriter, iter_decompressed, model_fingerprint


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    """A small nonlinear table with an id column, a categorical and a missing value."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-2, 2, n)
    frame = pd.DataFrame({
        "id": [f"r{seed}-{i}" for i in range(n)],
        "a": t + 0.05 * rng.normal(size=n),
        "b": np.sin(2 * t) + 0.05 * rng.normal(size=n),
        "c": (t ** 2).round(2),
        "kind": np.where(t > 0, "up", "down"),
    })
    frame.loc[3, "a"] = np.nan
    return frame


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table(400)


@pytest.fixture(scope="module")
def model(table: pd.DataFrame) -> VAECompressor:
    return VAECompressor(bytes_per_row=3, epochs=30, random_state=0).fit(table.drop(columns="id"))


@pytest.fixture(scope="module")
def other_model(table: pd.DataFrame) -> VAECompressor:
    return VAECompressor(bytes_per_row=3, epochs=4, random_state=1).fit(table.drop(columns="id"))


def test_round_trip_keeps_form_ids_and_dtypes(model, table):
    data = model.compress(table, id_columns=["id"])
    out = model.decompress(data)
    assert list(out.columns) == list(table.columns)
    assert out["id"].tolist() == table["id"].tolist()  # carried losslessly
    assert out.dtypes.equals(table.dtypes)
    assert len(out) == len(table)
    # lossy, but close: the codes are a few bits per dimension of a 1-D manifold
    err = np.sqrt(np.nanmean((out["b"] - table["b"]) ** 2))
    assert err < 0.5 * table["b"].std()


def test_budget_is_respected_by_the_stored_codes(model, table):
    mu = model.transform(table.drop(columns="id"))
    assert payload_bytes_per_row(model.quantizer_, mu) <= model.bytes_per_row
    # A budget fixes the rate through the quantizer: no KL weight is used, and the
    # model is the MLP with a linear (PCA-initialised) path.
    assert model.beta_ == 0.0
    assert model.config_["linear_path"]["n_in"] == 4  # a, b, c and the binary "kind"


def test_same_input_same_bytes_however_it_is_split(model, table, tmp_path):
    one = model.compress(table, id_columns=["id"])
    assert model.compress(table, id_columns=["id"]) == one
    path = tmp_path / "x.vkc"
    with CompressedWriter(path, model, id_columns=["id"], chunk_rows=128) as w:
        for start in range(0, len(table), 37):
            w.write(table.iloc[start:start + 37])
    again = tmp_path / "y.vkc"
    with CompressedWriter(again, model, id_columns=["id"], chunk_rows=128) as w:
        w.write(table)
    assert path.read_bytes() == again.read_bytes()
    # different chunking, same rows
    parts = list(iter_decompressed(path, model))
    assert [len(p) for p in parts] == [128, 128, 128, 16]
    joined = pd.concat(parts)
    pd.testing.assert_frame_equal(joined, model.decompress(one), check_exact=True)


def test_rows_prepared_by_the_caller_give_the_same_bytes(model, table, tmp_path):
    # The compress job prepares rows in its reader thread and hands them over; pieces
    # of uneven sizes fill and cut chunks, some with prepared arrays and some without.
    fitted = model.fitted_
    model_columns = fitted.column_names
    plain, handed = tmp_path / "plain.vkc", tmp_path / "handed.vkc"
    with CompressedWriter(plain, model, id_columns=["id"], chunk_rows=128) as w:
        w.write(table)
    with CompressedWriter(handed, model, id_columns=["id"], chunk_rows=128) as w:
        for k, start in enumerate(range(0, len(table), 53)):
            part = table.iloc[start:start + 53]
            w.write(part, None if k == 3 else fitted.prepare(part[model_columns]))
    assert handed.read_bytes() == plain.read_bytes()
    # Arrays for other rows are refused before anything is taken (as columns that
    # differ from the first write's): the writer goes on with the right ones.
    with CompressedWriter(tmp_path / "again.vkc", model, id_columns=["id"],
                          chunk_rows=128) as w:
        with pytest.raises(ValueError, match="one row per row"):
            w.write(table.iloc[:10], fitted.prepare(table.iloc[:9][model_columns]))
        w.write(table, fitted.prepare(table[model_columns]))
    assert (tmp_path / "again.vkc").read_bytes() == plain.read_bytes()


def test_saved_and_loaded_model_writes_the_same_file(model, table, tmp_path):
    model.save(tmp_path / "m.vaekit")
    loaded = load(tmp_path / "m.vaekit")
    assert loaded.quantizer_ == model.quantizer_  # stored, not recomputed
    assert model_fingerprint(loaded) == model_fingerprint(model)
    assert loaded.compress(table, id_columns=["id"]) == model.compress(table, id_columns=["id"])


def test_wrong_model_is_refused(model, other_model, table):
    data = model.compress(table, id_columns=["id"])
    with pytest.raises(FileFormatError, match="wrong model"):
        other_model.decompress(data)
    with pytest.raises(FileFormatError, match="no model is embedded"):
        list(iter_decompressed(io.BytesIO(data)))


def test_embedded_model_decodes_without_the_model_file(model, other_model, table):
    data = model.compress(table, id_columns=["id"], embed_model=True)
    plain = model.compress(table, id_columns=["id"])
    assert len(data) > len(plain)
    # The embedded model file has a canonical header, so the output is reproducible.
    assert all(model.compress(table, id_columns=["id"], embed_model=True) == data
               for _ in range(5))
    expected = model.decompress(plain)
    alone = pd.concat(list(iter_decompressed(io.BytesIO(data))))
    pd.testing.assert_frame_equal(alone, expected)
    # A model the caller names is never swapped for the embedded one.
    with pytest.raises(FileFormatError, match="wrong model.*leave out the model"):
        other_model.decompress(data)


@pytest.fixture(scope="module")
def small_file(model, table) -> bytes:
    return model.compress(table.iloc[:6], id_columns=["id"])


def _decode(data: bytes, model) -> None:
    for _ in iter_decompressed(io.BytesIO(data), model):
        pass


def test_every_single_bit_flip_in_a_compressed_file_is_detected(small_file, model):
    undetected = []
    for pos in range(len(small_file)):
        for bit in range(8):
            damaged = bytearray(small_file)
            damaged[pos] ^= 1 << bit
            try:
                _decode(bytes(damaged), model)
            except FileFormatError:
                continue
            undetected.append((pos, bit))
    assert not undetected


def test_truncation_is_detected(small_file, model):
    for n in range(len(small_file)):
        with pytest.raises(FileFormatError):
            _decode(small_file[:n], model)


def test_header_describes_the_file(model, table):
    data = model.compress(table, id_columns=["id"])
    header = ContainerReader(io.BytesIO(data)).header
    # The model is named, not copied: it and its quantizer by the first 16 hex digits
    # of their hashes (codec 6 on; 7: this model's budget chose a grid), no schema.
    assert header["codec_version"] == 7
    assert header["model_fingerprint"] == model_fingerprint(model)[:16]
    assert header["quantizer_sha256"] == quantizer_digest(model.quantizer_)[:16]
    assert "schema" not in header and "quantizer" not in header
    assert header["passthrough"] == ["id"]
    assert header["n_rows"] == len(table)
    assert header["columns"] == list(table.columns)
    assert len(json.dumps(header, separators=(",", ":"))) < 1024
    buffer = io.BytesIO()
    # The latent code alone (max_abs_error=None, whatever grid the budget chose).
    with CompressedWriter(buffer, model, id_columns=["id"], self_describing=True,
                          max_abs_error=None) as writer:
        writer.write(table)
    full = ContainerReader(io.BytesIO(buffer.getvalue())).header
    assert full["codec_version"] == 2 and full["quantizer"] == model.quantizer_.to_dict()
    # what a vaekit from before codec 6 reads: container format 2 as well
    assert full["format_version"] == 2 and header["format_version"] == 3
    assert full["schema"]["type"] != "image"


def test_bounded_memory_on_a_large_stream(model, tmp_path):
    chunk_rows = 1000
    path = tmp_path / "big.vkc"
    total = 0
    with CompressedWriter(path, model, id_columns=["id"], chunk_rows=chunk_rows) as w:
        for k in range(25):  # 60,000 rows fed in pieces that straddle chunk borders
            piece = _table(2400, seed=k + 1)
            w.write(piece)
            total += len(piece)
            assert w.n_rows == total
        assert w.max_buffered_rows < chunk_rows
    with ContainerReader(path) as r:
        sizes = [n for _, n, _ in r.iter_chunks()]
    assert max(sizes) == chunk_rows and sum(sizes) == total
    seen = 0
    for part in iter_decompressed(path, model):
        assert len(part) <= chunk_rows
        assert part.index[0] == seen
        seen += len(part)
    assert seen == total


def test_failed_write_leaves_no_file(model, table, tmp_path):
    path = tmp_path / "out.vkc"
    with pytest.raises(DataError, match="differ from the first"):
        with CompressedWriter(path, model, chunk_rows=64) as w:
            w.write(table.drop(columns="id").iloc[:100])
            w.write(table.iloc[:100])  # stray column "id", not named as an id column
    assert not path.exists()
    assert not list(tmp_path.iterdir())


def test_arrays_and_empty_input(table):
    X = table.drop(columns=["id", "kind"]).fillna(0.0).to_numpy()
    m = VAECompressor(bits=4, epochs=2, random_state=0).fit(X)
    assert all(b in (0, 4) for b in m.quantizer_.bits)
    out = m.decompress(m.compress(X))
    assert isinstance(out, np.ndarray) and out.shape == X.shape
    empty = m.decompress(m.compress(X[:0]))
    assert empty.shape == (0, X.shape[1])
    with pytest.raises(DataError):
        m.compress(X, id_columns=["x0"])


def test_images_round_trip(digits_images):
    imgs = digits_images[:300]
    m = VAECompressor(bytes_per_row=8, epochs=2, architecture="mlp", hidden_dims=[64],
                      random_state=0).fit(imgs)
    data = m.compress(imgs)
    out = m.decompress(data)
    assert out.shape == imgs.shape and out.dtype == imgs.dtype
    assert m.compress(imgs) == data


def test_a_detector_model_file_compresses_too(table, tmp_path):
    det = VAEAnomalyDetector(epochs=3, n_samples=1, random_state=0).fit(table.drop(columns="id"))
    det.save(tmp_path / "d.vaekit")
    loaded = load(tmp_path / "d.vaekit")
    path = tmp_path / "d.vkc"
    with CompressedWriter(path, loaded, id_columns=["id"]) as w:
        w.write(table)
    out = pd.concat(list(iter_decompressed(path, det)))
    assert out["id"].tolist() == table["id"].tolist()


def test_parameter_checks(table):
    X = table.drop(columns="id")
    with pytest.raises(ValueError, match="not both"):
        VAECompressor(bytes_per_row=2, bits=3).fit(X)
    with pytest.raises(ValueError):
        VAECompressor(bytes_per_row=0).fit(X)
    with pytest.raises(ValueError):
        VAECompressor(bits=[1, 2], latent_dim=3).fit(X)
    m = VAECompressor(bits=[3, 0, 5], epochs=2, random_state=0).fit(X)
    assert m.model_.latent_dim == 3 and m.quantizer_.bits == (3, 0, 5)
