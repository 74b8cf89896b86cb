"""Error-bounded values (issue 17): every value within its bound, levels and blanks exact.

Exact properties: the bound holds for every value of adversarial tables (extremes,
+-0, huge integers, values far outside the training range, float32 limits, new
levels, blanks); whole numbers come back whole; a decoder whose predictions differ
slightly decodes the same values, one whose predictions differ more fails loudly
(CRC), never with wrong values; the values section is never larger than scalar
quantization + zstd of the same grid plus a fixed per-column overhead; the same
rows give the same bytes for any thread count; damaged headers are refused.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zstandard as zstd

from vaekit import VAECompressor
from vaekit.codec import coders, values
from vaekit.codec.container import CODEC_VERSION, ContainerReader
from vaekit.codec.quantize import LatentQuantizer
from vaekit.codec.values import CODER_GAUSSIAN, CODER_PCODEC, CODER_ZSTD, unpack_section
from vaekit.errors import DataError, FileFormatError
from vaekit.fitted import bounded, chunks, grids
from vaekit.fitted.bounded import resolve_bounds
from vaekit.fitted.payload import (
    FLAG_NO_CODES,
    MASK_LENGTH,
    PAYLOAD_HEAD,
    VALUES_LENGTH,
    chunk_code_bits,
)
from vaekit.fitted.streams import CompressedWriter, iter_decompressed


def _train(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    return pd.DataFrame({
        "a": t + 0.05 * rng.normal(size=n),
        "b": 100.0 * (2 * t + 0.3 * rng.normal(size=n)),
        "i": rng.integers(0, 100, n),
        "f32": (t + rng.normal(size=n)).astype(np.float32),
        "big": rng.integers(-2**40, 2**40, n),
        "whole": np.round(rng.normal(50, 10, n)),  # float dtype, whole numbers
        "flag": rng.integers(0, 2, n),
        "c": rng.choice(["x", "y", "z"], n),
    })


@pytest.fixture(scope="module")
def compressor() -> VAECompressor:
    return VAECompressor(random_state=0, epochs=3, bytes_per_row=4).fit(_train())


def _hostile(n: int = 60) -> pd.DataFrame:
    te = _train(n, seed=1)
    te["i"] = te["i"].astype(object)
    te.loc[0, "a"] = 1e300
    te.loc[1, "a"] = -1e300
    te.loc[2, "a"] = -0.0
    te.loc[3, "a"] = np.nan
    te.loc[4, "b"] = 5e7  # far outside the training range
    te.loc[5, "i"] = 2**62 + 5
    te.loc[6, "big"] = -(2**63)
    te.loc[7, "f32"] = np.float32(3.4e38)
    te.loc[8, "c"] = "never seen"
    te.loc[9, "flag"] = 1 - te.loc[9, "flag"]
    te.loc[10, "whole"] = 1e15
    te.loc[[11, 12], "c"] = None
    te.loc[13, "b"] = np.nan
    te["i"] = te["i"].astype(np.int64)
    return te


def _check_bound(te: pd.DataFrame, out: pd.DataFrame, bounds: list, names: list) -> None:
    assert list(out.columns) == list(te.columns)
    for name, b in zip(names, bounds, strict=True):
        a, r = te[name].reset_index(drop=True), out[name].reset_index(drop=True)
        assert (a.isna() == r.isna()).all(), name
        a, r = a[a.notna()], r[a.notna()]
        if b is None:
            assert a.tolist() == r.tolist(), name
        elif pd.api.types.is_integer_dtype(a.dtype):
            err = [abs(int(x) - int(y)) for x, y in zip(a, r, strict=True)]
            assert max(err) <= b, (name, max(err), b)
        else:
            err = (a.astype(np.float64) - r.astype(np.float64)).abs()
            assert err.max() <= b, (name, err.max(), b)


@pytest.mark.parametrize("eps", [0.3, 0.01, 1e-4, 0.0])
def test_every_value_keeps_its_bound(compressor: VAECompressor, eps: float) -> None:
    te = _hostile()
    est = VAECompressor(**{**compressor.get_params(), "max_abs_error": eps})
    est.fitted_ = compressor.fitted_
    out = est.decompress(est.compress(te))
    bounds = resolve_bounds(compressor.fitted_, eps)
    _check_bound(te, out, bounds, compressor.fitted_.schema.names())
    assert out.loc[8, "c"] == "never seen" and out.loc[5, "i"] == 2**62 + 5
    assert out.loc[6, "big"] == -(2**63) and out.loc[0, "a"] == pytest.approx(1e300)
    # Whole numbers come back whole; integer columns keep their dtype.
    assert (out["whole"] == np.floor(out["whole"])).all()
    assert out["i"].dtype == np.int64 and out["f32"].dtype == np.float32
    if eps == 0.0:
        assert out["a"].fillna(7).tolist() == te["a"].fillna(7).tolist()


def test_dict_bounds_are_in_column_units(compressor: VAECompressor) -> None:
    te = _train(80, seed=2)
    bounds = resolve_bounds(compressor.fitted_, {"b": 5.0})
    assert bounds[1] == 5.0 and bounds[0] == 0.0  # columns left out: lossless
    buf = io.BytesIO()
    with CompressedWriter(buf, compressor, max_abs_error={"b": 5.0}) as w:
        w.write(te)
    out = pd.concat(list(iter_decompressed(io.BytesIO(buf.getvalue()), compressor)))
    _check_bound(te, out, bounds, compressor.fitted_.schema.names())
    assert out["a"].tolist() == te["a"].tolist()
    with pytest.raises(DataError, match="not numeric columns"):
        resolve_bounds(compressor.fitted_, {"c": 1.0})
    for bad in (-1.0, float("inf"), 1e301):
        with pytest.raises(DataError, match="error bound must be"):
            resolve_bounds(compressor.fitted_, bad)
    with pytest.raises(DataError, match="error bound must be"):
        resolve_bounds(compressor.fitted_, 1e299)  # times an SD of ~100: past 1e300


def _payloads(data: bytes) -> list[bytes]:
    with ContainerReader(io.BytesIO(data)) as reader:
        return [p for _, _, p in reader.iter_chunks()]


def _section(payload: bytes) -> tuple[int, bytes]:
    _, flags, n_codes = PAYLOAD_HEAD.unpack_from(payload)
    pos = PAYLOAD_HEAD.size + n_codes
    if flags & 2:
        pos += MASK_LENGTH.size + MASK_LENGTH.unpack_from(payload, pos)[0]
    (size,) = VALUES_LENGTH.unpack_from(payload, pos)
    return flags, payload[pos + VALUES_LENGTH.size: pos + VALUES_LENGTH.size + size]


def test_never_larger_than_scalar_quantization_and_zstd_on_noise() -> None:
    rng = np.random.default_rng(5)
    noise = pd.DataFrame({f"u{j}": rng.integers(0, 1000, 3000).astype(np.float64) * 0.37
                          for j in range(6)})
    est = VAECompressor(random_state=0, epochs=2, max_abs_error=0.02).fit(noise.iloc[:2000])
    te = noise.iloc[2000:]
    (payload,) = _payloads(est.compress(te))
    flags, section = _section(payload)
    assert flags & FLAG_NO_CODES  # the latent codes cannot pay for themselves here
    columns = unpack_section(section, 6, 6 * len(te)).columns
    bounds = resolve_bounds(est.fitted_, 0.02)
    baseline = 0
    for j, b in enumerate(bounds):
        q = np.rint(te[f"u{j}"].to_numpy() / (2 * b)).astype(np.int64)
        q -= q.min()
        width = next(w for w in (1, 2, 4, 8) if q.max() < 1 << (8 * w))
        baseline += len(zstd.ZstdCompressor(level=19).compress(q.astype(f"<u{width}").tobytes()))
    # per column: coder byte, length, minimum and width (at most 14 bytes); CRC and
    # exceptions length (5)
    assert len(section) <= baseline + 14 * 6 + 5
    assert {coder for coder, _ in columns} <= {CODER_ZSTD, CODER_PCODEC, CODER_GAUSSIAN}


def test_same_bytes_for_any_thread_count_and_rerun(compressor: VAECompressor) -> None:
    te = _train(300, seed=3)
    outs = []
    for threads in (1, 1, 3):
        buf = io.BytesIO()
        with CompressedWriter(buf, compressor, chunk_rows=64, threads=threads,
                              max_abs_error=0.05) as w:
            w.write(te)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1] == outs[2]


def test_predictions_that_differ_decode_the_same_or_fail_loudly(
        compressor: VAECompressor, monkeypatch: pytest.MonkeyPatch) -> None:
    te = _train(200, seed=4)
    est = VAECompressor(**{**compressor.get_params(), "max_abs_error": 0.01})
    est.fitted_ = compressor.fitted_

    def gaussian_only(q, *, gaussian=None, predicted=None, plain=None, measure=False):
        # every numeric column model-coded, so every value depends on the prediction
        if gaussian is None:
            return values.encode_column(q, predicted=predicted, plain=plain)
        return coders.gaussian_pack(np.asarray(q, dtype=np.int64), *gaussian)

    monkeypatch.setattr(bounded, "encode_column", gaussian_only)
    # the codes win over none: the no-codes section is never coded
    monkeypatch.setattr(bounded, "_fallback_loses", lambda *args: True)
    data = est.compress(te)
    monkeypatch.undo()
    exact = est.decompress(data)
    _check_bound(te, exact, resolve_bounds(est.fitted_, 0.01), est.fitted_.schema.names())
    original = bounded._predictions

    def nudged(scale: float):
        def predictions(model, z, frame=False):
            decoded, guess, mean, sd = original(model, z, frame)
            return decoded, guess, mean * (1 + scale), sd * (1 + scale)
        return predictions

    # float32 outputs perturbed in their last bit: the same values, bit for bit.
    monkeypatch.setattr(bounded, "_predictions", nudged(2.0**-23))
    pd.testing.assert_frame_equal(est.decompress(data), exact)
    # A decoder that predicts quite differently: an error, never other values.
    monkeypatch.setattr(bounded, "_predictions", nudged(0.3))
    with pytest.raises(FileFormatError, match="predictions differ|corrupt"):
        est.decompress(data)


def test_damaged_bounds_in_the_header_are_refused(compressor: VAECompressor) -> None:
    model = compressor.fitted_
    good = resolve_bounds(model, 0.1)
    assert bounded.check_bounds(good, model) == good
    assert bounded.check_bounds({"sd_units": 0.1}, model) == good
    for bad in (good[:-1], [-1.0] + good[1:], good[:-1] + [0.5], "0.1",
                [float("nan")] + good[1:], {"sd_units": -1}, {"sd_units": True},
                {"sd_units": 0.1, "x": 1}, {}):
        with pytest.raises(FileFormatError, match="value_bounds"):
            bounded.check_bounds(bad, model)


def test_a_bounded_file_is_codec_version_7_which_older_readers_refuse(
        compressor: VAECompressor, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file with bounded values is of codec version 7 (odd integer steps; files
    of versions 3 to 6 still read: test_legacy_files): a reader of version 6 says
    "upgrade" instead of decoding its integer columns on the wrong grid."""
    te = _train(300, seed=8)
    ints = {"i": 2.0, "big": 0.0}
    for bound in (0.0, 0.1, ints):
        buf = io.BytesIO()
        with CompressedWriter(buf, compressor, max_abs_error=bound) as w:
            w.write(te)
        with ContainerReader(io.BytesIO(buf.getvalue())) as reader:
            assert reader.header["codec_version"] == 7
        out = pd.concat(list(iter_decompressed(io.BytesIO(buf.getvalue()), compressor)))
        _check_bound(te, out, resolve_bounds(compressor.fitted_, bound),
                     compressor.fitted_.schema.names())
    from vaekit.fitted import container_checks

    monkeypatch.setattr(container_checks, "CODEC_VERSION", 6)
    with pytest.raises(FileFormatError, match="Upgrade vaekit"):
        list(iter_decompressed(io.BytesIO(buf.getvalue()), compressor))


def test_float_columns_come_back_as_short_decimals(compressor: VAECompressor) -> None:
    """Decimal grids: at 0.01 SD a float column comes back with the digits the bound
    asks for (0.0001 steps where the bound is 0.01-0.1), not 17 digits of grid noise,
    and every value still keeps its bound."""
    te = _train(300, seed=9)
    est = VAECompressor(**{**compressor.get_params(), "max_abs_error": 0.01})
    est.fitted_ = compressor.fitted_
    out = est.decompress(est.compress(te))
    bounds = resolve_bounds(compressor.fitted_, 0.01)
    _check_bound(te, out, bounds, compressor.fitted_.schema.names())
    by_name = dict(zip(compressor.fitted_.schema.names(), bounds, strict=True))
    for name in ("a", "b"):
        power = grids.decimal_power(float(by_name[name]))
        assert power is not None
        v = out[name].to_numpy(dtype=np.float64)
        assert np.array_equal(v, grids.round_decimal(v, power)), name
        assert max(len(repr(float(x))) for x in v) <= power + 6, name


def _times(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-01 08:00:00")
    when = pd.Series(start + pd.to_timedelta(np.cumsum(rng.exponential(40.0, n)).round(3),
                                             unit="s"))
    return pd.DataFrame({"when": when,
                         "utc": (when + pd.Timedelta("1h")).dt.tz_localize("UTC"),
                         "x": rng.normal(size=n)})


def test_times_are_stored_as_nanoseconds() -> None:
    """Dates and times (codec version 5 on) are coded as nanoseconds since 1970 UTC,
    exact, instead of one text exception each: the same values back (blanks, time
    zones, milliseconds); a version-3 file's text times read too (test_legacy_files)."""
    tr = _times(400, seed=11)
    est = VAECompressor(random_state=0, epochs=2, max_abs_error=0.01).fit(tr)
    te = _times(3000, seed=12)
    te.loc[[5, 9], "when"] = pd.NaT
    out = est.decompress(data := est.compress(te))
    pd.testing.assert_series_equal(out["when"], te["when"], check_dtype=False)
    assert (out["utc"] == te["utc"]).all() and str(out["utc"].dt.tz) == "UTC"
    for payload in _payloads(data):  # cells, not text exceptions (every time in full)
        assert unpack_section(_section(payload)[1], 3, 3 * len(te)).exceptions == b""


def test_times_the_model_cannot_hold_on_its_grid_come_back_as_written() -> None:
    """A naive time names no instant: against a time-zoned model (or a time-zoned value
    against a naive model) it stays an exception and comes back as written; so does a
    chunk with values the column's dtype cannot hold (milliseconds in timestamp[s])."""
    tr = _times(300, seed=14)
    naive = VAECompressor(random_state=0, epochs=1, max_abs_error=0.1).fit(tr)
    aware_chunk = _times(50, seed=15)
    aware_chunk["when"] = aware_chunk["when"].dt.tz_localize("Europe/Paris")
    out = naive.decompress(naive.compress(aware_chunk))
    assert out["when"].tolist() == aware_chunk["when"].tolist()
    assert [t.tzinfo is not None for t in out["when"]] == [True] * 50
    zoned = VAECompressor(random_state=0, epochs=1, max_abs_error=0.1).fit(
        tr.assign(when=tr["when"].dt.tz_localize("UTC")))
    naive_chunk = _times(50, seed=16)
    back = zoned.decompress(zoned.compress(naive_chunk))["when"]
    assert back.tolist() == naive_chunk["when"].tolist()
    assert all(t.tzinfo is None for t in back)
    seconds = tr.assign(when=tr["when"].dt.floor("s").astype("timestamp[s][pyarrow]"))
    arrow = VAECompressor(random_state=0, epochs=1, max_abs_error=0.1).fit(seconds)
    chunk = _times(50, seed=17)  # milliseconds
    chunk["when"] = chunk["when"].astype("timestamp[ms][pyarrow]")
    restored = arrow.decompress(arrow.compress(chunk))["when"]
    assert [pd.Timestamp(v) for v in restored] == [pd.Timestamp(v) for v in chunk["when"]]
    # exceptions, not nanoseconds in another dtype (which a pandas that truncates
    # on the cast to seconds would have turned into other times)
    assert restored.dtype == object
    whole = arrow.decompress(arrow.compress(seconds.iloc[:50]))["when"]
    assert str(whole.dtype) == "timestamp[s][pyarrow]" and whole.tolist() == \
        seconds["when"].iloc[:50].tolist()


def test_the_header_refers_to_the_model(compressor: VAECompressor,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bounded file's header names the model and its quantizer by hash (no schema,
    no quantizer copied): under 1 KB here; a model with another quantizer is refused."""
    te = _train(50, seed=6)
    buf = io.BytesIO()
    with CompressedWriter(buf, compressor, max_abs_error=0.1) as w:
        w.write(te)
    data = buf.getvalue()
    with ContainerReader(io.BytesIO(data)) as reader:
        header = reader.header
    assert "schema" not in header and "quantizer" not in header
    assert header["codec_version"] == 7 and header["value_bounds"] == {"sd_units": 0.1}
    assert len(json.dumps(header, separators=(",", ":"))) < 1024
    out = pd.concat(list(iter_decompressed(io.BytesIO(data), compressor)))
    _check_bound(te, out, resolve_bounds(compressor.fitted_, 0.1),
                 compressor.fitted_.schema.names())
    # The same network with another quantizer (same fingerprint) is refused.
    moved = compressor.fitted_.default_quantizer().to_dict()
    moved["lo"] = [v + 1.0 for v in moved["lo"]]
    monkeypatch.setattr(type(compressor.fitted_), "default_quantizer",
                        lambda self: LatentQuantizer.from_dict(moved))
    with pytest.raises(FileFormatError, match="quantizer_sha256"):
        list(iter_decompressed(io.BytesIO(data), compressor))


def test_a_compact_header_leaves_out_the_models_own_column_order(
        compressor: VAECompressor) -> None:
    """Codec 6: ``columns`` is left out when it is the model's order and nothing is
    passed through (a reordered frame keeps it); a header without it is refused where
    the version does not allow that, or with passthrough columns."""
    te = _train(60, seed=6)
    names = compressor.fitted_.column_names

    def header_of(frame: pd.DataFrame, **kw: object) -> tuple[bytes, dict]:
        buf = io.BytesIO()
        with CompressedWriter(buf, compressor, max_abs_error=0.1, **kw) as w:
            w.write(frame)
        with ContainerReader(io.BytesIO(buf.getvalue())) as reader:
            return buf.getvalue(), reader.header

    data, header = header_of(te[names])
    assert "columns" not in header and len(header["quantizer_sha256"]) == 16
    assert list(pd.concat(list(iter_decompressed(io.BytesIO(data), compressor))).columns) == names
    _, reordered = header_of(te[names[::-1]])
    assert reordered["columns"] == names[::-1]
    from vaekit.fitted.container_checks import check_header

    check_header(header, "f.vkc")
    for bad in ({**header, "codec_version": 5},  # versions 3-5 always list them
                {**header, "passthrough": ["id"]},
                {**header, "quantizer_sha256": "0" * 64}):
        with pytest.raises(FileFormatError, match="f.vkc: header key"):
            check_header(dict(bad), "f.vkc")


def test_images_have_no_bounded_mode() -> None:
    images = np.random.default_rng(0).integers(0, 255, (40, 8, 8), dtype=np.uint8)
    est = VAECompressor(random_state=0, epochs=1).fit(images)
    with pytest.raises(DataError, match="tables"):
        resolve_bounds(est.fitted_, 0.1)


def _round_trip(train: pd.DataFrame, test: pd.DataFrame, eps) -> tuple[pd.DataFrame, list]:
    est = VAECompressor(random_state=0, epochs=1, max_abs_error=eps).fit(train)
    return est.decompress(est.compress(test)), resolve_bounds(est.fitted_, eps)


def test_narrow_integer_dtypes_never_wrap() -> None:
    rng = np.random.default_rng(7)
    train = pd.DataFrame({"u8": rng.integers(0, 256, 300).astype(np.uint8),
                          "i8": rng.integers(-128, 128, 300).astype(np.int8),
                          "n8": pd.array(rng.integers(0, 256, 300), dtype="UInt8"),
                          "x": rng.normal(size=300)})
    test = train.head(40).copy()
    test.loc[0, "u8"] = np.uint8(255)
    test.loc[0, "n8"] = 255
    test.loc[1, "i8"] = 127
    test.loc[2, "i8"] = -128
    out, bounds = _round_trip(train, test, 0.2)  # bounds of ~15: steps of ~30
    assert bounds[0] > 10
    for name, b in zip(train.columns, bounds, strict=True):
        assert out[name].dtype == test[name].dtype, name
        err = (test[name].astype(np.float64) - out[name].astype(np.float64)).abs().max()
        assert err <= b, (name, err, b)


def test_new_values_of_level_columns_come_back_exactly() -> None:
    rng = np.random.default_rng(8)
    train = pd.DataFrame({"flag": rng.integers(0, 2, 300),
                          "zip": pd.Series(rng.choice([10115, 20095, 80331], 300)).astype(
                              "category"),
                          "mixed": pd.Series(rng.choice(["a", "b", "c"], 300), dtype=object),
                          "x": rng.normal(size=300)})
    test = train.head(20).copy()
    test.loc[0, "flag"] = 2
    test["zip"] = test["zip"].cat.add_categories([12345678901234567])
    test.loc[1, "zip"] = 12345678901234567
    test.loc[2, "mixed"] = 5
    test.loc[3, "mixed"] = True
    out, _ = _round_trip(train, test, 0.05)
    assert out.loc[0, "flag"] == 2 and type(out.loc[0, "flag"]) is not float
    assert out.loc[1, "zip"] == 12345678901234567
    assert out.loc[2, "mixed"] == 5 and type(out.loc[2, "mixed"]) is int
    assert out.loc[3, "mixed"] is True
    assert out["flag"].drop(index=0).tolist() == test["flag"].drop(index=0).tolist()


def test_float32_whole_numbers_and_signed_zero() -> None:
    rng = np.random.default_rng(9)
    train = pd.DataFrame({"w32": (1.7e9 + rng.integers(0, 10**6, 400) * 1.0).astype(np.float32),
                          "z": rng.normal(size=400)})
    test = train.copy()
    test.loc[0, "z"] = -0.0
    out, bounds = _round_trip(train, test, {"w32": 1000.3})
    err = (test["w32"].astype(np.float64) - out["w32"].astype(np.float64)).abs().max()
    assert err <= bounds[0] == 1000.3
    assert np.signbit(out.loc[0, "z"])  # lossless (not in the dict): -0.0 stays -0.0


def test_hostile_bounds_and_exceptions_are_format_errors(compressor: VAECompressor) -> None:
    model = compressor.fitted_
    for bad in ({"sd_units": 1e308}, [1e308] + resolve_bounds(model, 0.1)[1:]):
        with pytest.raises(FileFormatError, match="value_bounds"):
            bounded.check_bounds(bad, model)
    from vaekit.codec.packing import pack_table

    for table in (pd.DataFrame({"row": ["x"], "column": np.array([0], np.uint32),
                                "value": ["i1"]}),
                  pd.DataFrame({"row": np.array([0], np.uint32),
                                "column": np.array([0], np.uint32), "value": ["zzz"]}),
                  pd.DataFrame({"row": np.array([0], np.uint32),
                                "column": np.array([0], np.uint32), "value": ["tnot a time"]}),
                  pd.DataFrame({"row": np.array([9], np.uint32),
                                "column": np.array([0], np.uint32), "value": ["i1"]})):
        with pytest.raises(FileFormatError, match="bounded values are corrupt"):
            bounded._unpack_exceptions(pack_table(table), 5, 8)
    # A zstd frame that declares more than the cells it codes is refused unread.
    big = zstd.ZstdCompressor(write_checksum=True).compress(bytes(10**7))
    with pytest.raises(FileFormatError):
        coders.zstd_unpack(coders.zstd_pack(np.zeros(0, np.int64)) + big, 10)


def test_second_review_cases_round_trip_or_refuse() -> None:
    rng = np.random.default_rng(10)
    train = pd.DataFrame({"f": rng.normal(size=300), "u64": rng.integers(0, 2**40, 300).astype(
        np.uint64), "cat": pd.Series(rng.choice([1, 2, 3], 300)).astype("category"),
        "obj": pd.Series(rng.choice(["a", "b"], 300), dtype=object)})
    test = train.head(10).copy()
    test["f"] = np.arange(10, dtype=np.int64) + 2**62 + 2559  # whole numbers, int dtype
    test.loc[0, "u64"] = np.uint64(2**64 - 1)
    test.loc[1, "u64"] = np.uint64(7501093982645987485)
    test["cat"] = test["cat"].cat.add_categories([7])
    test.loc[2, "cat"] = 7
    test.loc[3, "obj"] = pd.Timedelta("1D")
    out, bounds = _round_trip(train, test, {"f": 2048.0})  # u64 lossless (not in the dict)
    assert [int(v) for v in out["f"]] == test["f"].tolist()  # stored exactly, not rounded
    assert out.loc[0, "u64"] == 2**64 - 1 and out.loc[1, "u64"] == 7501093982645987485
    assert out.loc[2, "cat"] == 7 and out.loc[3, "obj"] == "1 days 00:00:00"


def test_crafted_exception_values_are_refused() -> None:
    for text in ("fnan", "tNaT", "tnow", "t", "b2", "x"):
        with pytest.raises(FileFormatError, match="exception value"):
            bounded._parse(text)


def _shift_case() -> tuple[VAECompressor, pd.DataFrame, list]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"x": 0.5 + 0.01 * rng.normal(size=600),
                          "k": 15 + rng.integers(-2, 3, 600),
                          "y": rng.normal(size=600)})
    # steps of 1.0 and 10: unshifted, x straddles the cell edge at 0.5 and k the
    # one between 14 and 15
    bounds = {"x": 0.5, "k": 5.0, "y": 0.01}
    est = VAECompressor(random_state=0, epochs=1, max_abs_error=bounds).fit(frame.iloc[:400])
    return est, frame.iloc[400:].reset_index(drop=True), resolve_bounds(est.fitted_, bounds)


def test_coarse_grids_are_shifted_onto_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    est, te, bounds = _shift_case()
    te.loc[0, "x"] = 1e300  # far outside: still within the bound (stored exactly if need be)
    te.loc[1, "k"] = 2**61
    model = est.fitted_
    z = np.zeros((len(te), model.latent_dim), dtype=np.float32)
    (section,) = bounded.encode_values(model, te, [z], bounds)
    columns = unpack_section(section, 3, 3 * len(te)).columns
    shifted = [bool(coder & bounded.SHIFTED) for coder, _ in columns]
    assert shifted[:2] == [True, True]
    out = bounded.decode_values(model, section, len(te), z, bounds, None,
                                version=CODEC_VERSION)
    _check_bound(te, out, bounds, model.schema.names())
    assert out.loc[0, "x"] == pytest.approx(1e300) and abs(int(out.loc[1, "k"]) - 2**61) <= 5
    monkeypatch.setattr(bounded, "shift_grid", lambda spec, s, present, q, *a: (q, 0.0))
    (plain,) = bounded.encode_values(model, te, [z], bounds)
    unshifted = unpack_section(plain, 3, 3 * len(te)).columns
    # about one bit per value of the two columns saved, less the 8-byte origins
    assert not any(coder & bounded.SHIFTED for coder, _ in unshifted)
    assert len(section) < len(plain) - 20


def test_damaged_grid_origins_are_refused() -> None:
    est, te, bounds = _shift_case()
    model = est.fitted_
    z = np.zeros((len(te), model.latent_dim), dtype=np.float32)
    (section,) = bounded.encode_values(model, te, [z], bounds)
    unpacked = unpack_section(section, 3, 3 * len(te))
    columns = [coders.Coded(c, d) for c, d in unpacked.columns]
    coder, data = unpacked.columns[0]
    assert coder & bounded.SHIFTED

    def repacked(bad: list[coders.Coded]) -> bytes:  # the same rANS words after them
        return values.pack_section(unpacked.crc, unpacked.exceptions, bad) + unpacked.words

    assert repacked(columns) == section
    for origin in (float("nan"), -0.25, 1.0, 1e308):
        bad = list(columns)
        bad[0] = coders.Coded(coder, struct.pack("<d", origin) + data[8:])
        with pytest.raises(FileFormatError, match="origin"):
            bounded.decode_values(model, repacked(bad), len(te), z, bounds, None, version=CODEC_VERSION)
    bad = list(columns)
    bad[0] = coders.Coded(coder, data[:5])
    with pytest.raises(FileFormatError):
        bounded.decode_values(model, repacked(bad), len(te), z, bounds, None, version=CODEC_VERSION)


def test_a_shift_never_writes_a_cell_the_reader_refuses() -> None:
    # With step 3 and a shifted origin, floor((x - o + 1) / 3) for x near -2^62 lands
    # one past the reader's limit of 2^62 // 3 cells: such a value is an exception.
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"k": rng.integers(0, 4, 400).astype(np.int64),
                          "y": rng.normal(size=400)})
    bounds = {"k": 1.5, "y": 0.1}
    est = VAECompressor(random_state=0, epochs=1, max_abs_error=bounds).fit(train)
    for extreme in (-(2**62) + 1, 2**62 - 1):
        te = pd.DataFrame({"k": np.array([1, 2, 3] * 70 + [extreme], dtype=np.int64),
                           "y": np.zeros(211)})
        out = est.decompress(est.compress(te))
        _check_bound(te, out, resolve_bounds(est.fitted_, bounds), ["k", "y"])


@pytest.mark.parametrize("self_describing", [False, True])
def test_coarse_codes_decode_within_the_bounds(compressor: VAECompressor,
                                               monkeypatch: pytest.MonkeyPatch,
                                               self_describing: bool) -> None:
    from vaekit.fitted.describe import verify_container
    from vaekit.fitted.payload import COARSE_MASK, COARSE_SHIFT

    te = _hostile()

    def coarse_wins(order, cells, predictions, rows):
        # options r = 0, 2, 4: make r = 2 the estimate's choice
        return [0.0 if i == 1 else 1e12 for i in range(len(predictions))]

    monkeypatch.setattr(bounded, "_estimate", coarse_wins)
    monkeypatch.setattr(bounded, "_fallback_loses", lambda *args: True)  # codes win
    buf = io.BytesIO()
    with CompressedWriter(buf, compressor, max_abs_error=0.1,
                          self_describing=self_describing) as w:
        w.write(te)
    monkeypatch.undo()
    data = buf.getvalue()
    (payload,) = _payloads(data)
    flags = PAYLOAD_HEAD.unpack_from(payload)[1]
    assert (flags & COARSE_MASK) >> COARSE_SHIFT == 2 and not flags & FLAG_NO_CODES
    out = pd.concat(list(iter_decompressed(io.BytesIO(data), compressor)))
    _check_bound(te, out, resolve_bounds(compressor.fitted_, 0.1),
                 compressor.fitted_.schema.names())
    if self_describing:  # info --verify unpacks the codes with the chunk's bits
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "coarse.vkc"
            path.write_bytes(data)
            verify_container(str(path))
    # a coarsening with no codes, or in a file without bounds, is a damaged chunk
    bad = bytearray(payload)
    bad[1] = flags | FLAG_NO_CODES
    header = _header(data)
    unbounded = {k: v for k, v in header.items() if k != "value_bounds"}
    for chunk, head in ((bytes(bad), header), (payload, unbounded)):
        with pytest.raises(FileFormatError, match="corrupt"):
            chunks.decompress_chunk(chunk, len(te), compressor.fitted_, head, row_offset=0)
        with pytest.raises(FileFormatError, match="corrupt"):
            chunk_code_bits(chunk[1], PAYLOAD_HEAD.unpack_from(chunk)[2], head,
                            compressor.fitted_.default_quantizer())


def test_info_verify_accepts_chunks_without_codes(compressor: VAECompressor) -> None:
    from vaekit.fitted.describe import verify_container

    buf = io.BytesIO()
    with CompressedWriter(buf, compressor, max_abs_error=0.5, self_describing=True,
                          chunk_rows=2) as w:
        w.write(_train(5, seed=8))
    flags = [PAYLOAD_HEAD.unpack_from(p)[1] for p in _payloads(buf.getvalue())]
    assert any(f & FLAG_NO_CODES for f in flags)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nocodes.vkc"
        path.write_bytes(buf.getvalue())
        verify_container(str(path))


def _header(data: bytes) -> dict:
    with ContainerReader(io.BytesIO(data)) as reader:
        return reader.header


def test_a_wrong_sampled_estimate_is_caught_by_the_stack(
        compressor: VAECompressor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Gaussian coder's words may be a sampled estimate; a section whose rANS words
    run past its measured columns' words plus 1.1 times its estimated ones measures the
    estimated columns, so an estimate that claims almost nothing (a pattern the sample
    missed) costs at most 10 % of that column's words (here: the check fires)."""
    te = _train(2000, seed=12)
    est = VAECompressor(**{**compressor.get_params(), "max_abs_error": 0.01})
    est.fitted_ = compressor.fitted_
    measured = est.compress(te)
    calls = []
    real = values.encode_column

    def spy(q, **kwargs):
        calls.append(kwargs.get("measure", False))
        return real(q, **kwargs)

    monkeypatch.setattr(bounded, "encode_column", spy)
    monkeypatch.setattr(coders, "_likely_factor", lambda residual, sd, sample=None: (4, 8.0))
    fooled = est.compress(te)
    assert any(calls)  # the check fired and measured the estimated columns
    # the SD multiple is still the fake one (1.0): within a few percent, never the
    # estimate's 1 byte per column
    assert len(fooled) <= 1.05 * len(measured)
    monkeypatch.undo()
    out = est.decompress(fooled)
    _check_bound(te, out, resolve_bounds(est.fitted_, 0.01), est.fitted_.schema.names())
