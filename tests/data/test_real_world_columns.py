"""Real-world columns: integer ids refused, dates modelled, dtypes that round-trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli
from vaekit import VAEAnomalyDetector, VAECompressor, load
from vaekit.data import TabularSchema
from vaekit.errors import DataError
from vaekit.files.readers import coerce_frame, infer_types, iter_parquet
from vaekit.jobs.read import file_items, reading_types

N = 200


def _features(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"score": rng.normal(50, 10, n).round(2),
                         "grp": rng.choice(["a", "b", "c"], n)})


# --------------------------------------------------------------------------- integer ids


@pytest.mark.parametrize("ids", [
    np.arange(100_001, 100_001 + N),                         # exam_id 100001...
    np.arange(N)[::-1] * 7 + 3,                               # decreasing, with gaps
    np.r_[np.arange(0, 99), 500, np.arange(99, N - 1)],        # one row out of order
    np.random.default_rng(1).permutation(N),                   # a shuffled saved index
])
def test_integer_id_column_is_refused_by_name(ids: np.ndarray) -> None:
    df = _features().assign(exam_id=ids)
    with pytest.raises(DataError, match="row identifier") as err:
        TabularSchema().fit(df)
    assert err.value.column == "exam_id"
    assert "id column" in str(err.value)
    with pytest.raises(DataError, match="exam_id"):  # the estimators say the same
        VAEAnomalyDetector(epochs=1).fit(df)


@pytest.mark.parametrize("values", [
    np.arange(N, dtype=np.float64) + 0.5,                      # a float column, increasing
    np.arange(N, dtype=np.float64),                            # whole numbers, float dtype
    np.sort(np.random.default_rng(2).integers(0, 50, N)),      # sorted integers with repeats
    np.random.default_rng(3).choice(10**9, N, replace=False),  # shuffled unique, sparse
    np.random.default_rng(4).permutation(2 * N)[:N],           # shuffled, half the range
])
def test_genuine_numeric_features_are_not_flagged(values: np.ndarray) -> None:
    schema = TabularSchema().fit(_features().assign(x=values))
    assert schema.columns[-1].kind == "numeric"


def test_short_integer_columns_and_forced_numeric_are_not_flagged() -> None:
    short = _features(40).assign(i=np.arange(40))
    assert TabularSchema().fit(short).columns[-1].kind == "numeric"
    forced = _features().assign(i=np.arange(N))
    assert TabularSchema(numeric=["i"]).fit(forced).columns[-1].kind == "numeric"


def test_cli_fit_refuses_an_integer_id_and_accepts_it_as_id(tmp_path: Path) -> None:
    csv = tmp_path / "exams.csv"
    _features().assign(exam_id=np.arange(100_001, 100_001 + N)).to_csv(csv, index=False)
    before = csv.read_bytes()
    out = tmp_path / "m.vaekit"
    result = run_cli("fit", csv, "-o", out, "--epochs", "1", "--quiet")
    assert result.exit_code == 3, result.output
    assert "exam_id" in result.output and "--id-column" in result.output
    assert "exams.csv" in result.output
    assert not out.exists() and csv.read_bytes() == before
    ok = run_cli("fit", csv, "--id-column", "exam_id", "-o", out, "--epochs", "1", "--quiet")
    assert ok.exit_code == 0, ok.output


# --------------------------------------------------------------------------- dates


def _dated(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s")
    return _features(n, seed).assign(day=day, ts=ts)


def test_iso_text_datetime64_tz_aware_and_arrow_give_the_same_values() -> None:
    df = _dated()
    text = df.assign(day=df["day"].dt.strftime("%Y-%m-%d"),
                     ts=df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    aware = df.assign(ts=df["ts"].dt.tz_localize("UTC"))
    arrow = df.assign(day=df["day"].astype(pd.ArrowDtype(pa.date32())),
                      ts=df["ts"].astype(pd.ArrowDtype(pa.timestamp("us"))))
    encoded = []
    for frame in (df, text, aware, arrow):
        schema = TabularSchema().fit(frame)
        kinds = {c.name: (c.kind, c.dtype) for c in schema.columns}
        assert kinds["day"][0] == kinds["ts"][0] == "numeric"
        assert pd.api.types.pandas_dtype(kinds["ts"][1]).kind == "M"
        spec = schema.columns[2]
        assert spec.resolution == 1.0 and spec.low == pytest.approx(19723.0)  # days
        encoded.append(schema.encode(frame)["num"])
    for other in encoded[1:]:
        np.testing.assert_allclose(other, encoded[0], rtol=0, atol=1e-6)


def test_a_space_separated_timestamp_and_offsets_are_dates() -> None:
    s = pd.Series(["2024-03-01 12:00:00", "2024-03-02 13:30:00", None] * 20)
    assert TabularSchema().fit(pd.DataFrame({"t": s})).columns[0].dtype.startswith("datetime64")
    z = pd.Series(["2024-03-01T12:00:00Z", "2024-03-01T13:00:00+01:00"] * 30)
    spec = TabularSchema().fit(pd.DataFrame({"t": z})).columns[0]
    assert "UTC" in spec.dtype and spec.high == spec.low  # the same instant


def test_a_bad_date_names_row_and_column() -> None:
    schema = TabularSchema().fit(_dated().assign(day=lambda d: d["day"].dt.strftime("%Y-%m-%d")))
    frame = _dated().assign(day=lambda d: d["day"].dt.strftime("%Y-%m-%d"))
    frame.loc[7, "day"] = "2024-02-30"
    with pytest.raises(DataError, match="expected a date") as err:
        schema.encode(frame)
    assert (err.value.row, err.value.column) == (7, "day")


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin"])
def test_compressor_restores_datetimes_of_the_same_dtype(tz: str | None) -> None:
    df = _dated()
    if tz:
        df["ts"] = df["ts"].dt.tz_localize("UTC").dt.tz_convert(tz)
    comp = VAECompressor(epochs=3, random_state=0).fit(df)
    back = comp.inverse_transform(comp.transform(df))
    assert (back.dtypes == df.dtypes).all(), (back.dtypes, df.dtypes)
    assert (back["day"] == back["day"].dt.normalize()).all()  # whole days stay whole days
    assert back["day"].min() >= df["day"].min() and back["day"].max() <= df["day"].max()
    scores = VAEAnomalyDetector(epochs=2, random_state=0).fit(df).anomaly_score(df)
    assert np.isfinite(scores).all()


def test_reader_types_dates_and_reports_bad_ones_with_line() -> None:
    text = pd.DataFrame({"d": ["2024-03-01", "2024-03-02", "", "NA"] * 10,
                         "n": ["20240301"] * 40, "c": ["x", "2024-01-01"] * 20})
    assert infer_types(text) == {"d": "time", "n": "float", "c": "text"}
    bad = text.copy()
    bad.loc[5, "d"] = "yesterday"
    lines = np.arange(2, 42)
    good, good_lines, rows = coerce_frame(bad, {"d": "time"}, lines, "f.csv")
    assert [(r.line, r.column) for r in rows] == [(7, "d")] and "yesterday" in rows[0].reason
    assert 7 not in good_lines and good["d"].dtype.kind == "M"
    assert good["d"].isna().sum() == 20  # "" and "NA" are missing


def test_parquet_dates_are_read_and_times_of_day_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    days = [dt.date(2024, 3, 1) + dt.timedelta(days=i) for i in range(60)]
    pq.write_table(pa.table({"day": pa.array(days, pa.date32()),
                             "ts": pa.array(pd.to_datetime(days), pa.timestamp("ms"))}), path)
    chunk = next(iter_parquet(str(path), {"day": "time", "ts": "time"}))
    assert chunk.data["ts"].dtype.kind == "M"
    bad = tmp_path / "t.parquet"
    pq.write_table(pa.table({"t": pa.array([dt.time(12, 0)] * 3, pa.time64("us"))}), bad)
    with pytest.raises(DataError, match="times of day") as err:
        next(iter_parquet(str(bad), {"t": "time"}))
    assert err.value.column == "t"


def test_csv_and_parquet_score_like_the_frame(tmp_path: Path) -> None:
    df = _dated()
    det = VAEAnomalyDetector(epochs=2, random_state=0).fit(df)
    assert reading_types(det.fitted_.schema)["day"] == "time"
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    df.assign(ts=df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(csv, index=False)
    df.to_parquet(parquet)
    want = det.fitted_.prepare(df)["num"]
    for path in (csv, parquet):
        got = np.concatenate([t["num"] for _, t in file_items(str(path), det)])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_cli_fit_score_compress_on_iso_dates(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    df = _dated()
    df.assign(day=df["day"].dt.strftime("%Y-%m-%d"),
              ts=df["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(csv, index=False)
    model = tmp_path / "m.vaekit"
    fit = run_cli("fit", csv, "-o", model, "--epochs", "2", "--quiet")
    assert fit.exit_code == 0, fit.output
    info = run_cli("info", model)
    assert "datetime64" in info.output, info.output
    score = run_cli("score", csv, "-m", model, "-o", tmp_path / "s.csv", "--quiet")
    assert score.exit_code == 0, score.output
    broken = tmp_path / "b.csv"
    broken.write_text(csv.read_text().replace("2024-", "2024/", 1))
    bad = run_cli("score", broken, "-m", model, "-o", tmp_path / "s2.csv", "--quiet")
    assert bad.exit_code == 3 and "line 2" in bad.output and "expected a date" in bad.output
    assert not (tmp_path / "s2.csv").exists()


# --------------------------------------------------------------------------- dtypes


def _typed(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "b": rng.random(n) < 0.3,
        "nb": pd.array(rng.random(n) < 0.3, dtype="boolean"),
        "ni": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "cat": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "icat": pd.Categorical(rng.choice([1, 2, 3], n)),
        "f32": rng.normal(size=n).astype("float32"),
        "s": pd.array(rng.choice(["x", "y", "z"], n), dtype="string[pyarrow]"),
        "af": pd.array(rng.normal(size=n), dtype=pd.ArrowDtype(pa.float64())),
        "ai": pd.array(rng.integers(0, 9, n), dtype="int64[pyarrow]"),
        "ab": pd.array(rng.random(n) < 0.5, dtype="bool[pyarrow]"),
        "astr": pd.array(rng.choice(["p", "q", "r"], n), dtype=pd.ArrowDtype(pa.string())),
    })
    df.loc[3, "ni"] = pd.NA
    df.loc[4, "nb"] = pd.NA
    return df


def test_dtypes_round_trip_through_fit_transform_inverse_transform(tmp_path: Path) -> None:
    df = _typed()
    comp = VAECompressor(epochs=2, random_state=0).fit(df)
    kinds = {c.name: c.kind for c in comp.schema_.columns}
    assert kinds["icat"] == "categorical" and kinds["astr"] == "categorical"
    back = comp.inverse_transform(comp.transform(df))
    assert (back.dtypes == df.dtypes).all(), pd.concat([df.dtypes, back.dtypes], axis=1)
    comp.save(tmp_path / "c.vaekit")  # and through the model file
    loaded = load(tmp_path / "c.vaekit")
    assert (loaded.inverse_transform(loaded.transform(df)).dtypes == df.dtypes).all()
    det = VAEAnomalyDetector(epochs=2, random_state=0).fit(df)
    scores = det.anomaly_score(df)
    assert scores.shape == (N,) and np.isfinite(scores).all()
    np.testing.assert_allclose(det.anomaly_score(df.astype(object).assign(
        icat=df["icat"], cat=df["cat"])), scores, rtol=1e-5)
