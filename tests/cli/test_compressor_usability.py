"""Compressor usability (issue 16): a progress bar for budgeted fits, a default budget
for ``compress --fit``, no more digits than the codec keeps, and where a .vkc's bytes go.

Small tables and few passes keep every fit to a few seconds.
"""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaekit import VAECompressor, load
from vaekit.cli import EXIT_FILE
from vaekit.codec import ContainerReader
from vaekit.codec.container import compress_header_json
from vaekit.codec.packing import pack_table
from vaekit.fitted.digits import round_values, value_error
from vaekit.fitted.streams import CompressedWriter

from ..conftest import run_cli

run = run_cli
NUMERIC = ["a", "b", "c", "d"]


def _table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Four numeric columns on a 2-D manifold, an int, a category, ids and a blank."""
    rng = np.random.default_rng(seed)
    s, t = rng.uniform(-2, 2, n), rng.normal(size=n)
    frame = pd.DataFrame({
        "id": [f"r{i:05d}" for i in range(n)],
        "a": s + 0.02 * rng.normal(size=n),
        "b": np.sin(1.5 * s) + 0.5 * t,
        "c": 3.0 * t - s,
        "d": 100.0 + 10.0 * s * t,
        "k": rng.integers(0, 20, n),
        "kind": np.where(s > 0, "up", "down"),
    })
    frame.loc[7, "b"] = np.nan
    return frame


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("usability") / "table.csv"
    _table().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def compressor() -> VAECompressor:
    return VAECompressor(bytes_per_row=4, epochs=3, random_state=0).fit(
        _table().drop(columns="id"))


# --------------------------------------------------------------- 1. progress of a budgeted fit


def test_budgeted_fit_reports_phases_steps_and_held_out_error() -> None:
    calls: list[tuple[str, int, int, float | None]] = []
    X = _table(300).drop(columns="id")
    with_bar = VAECompressor(bytes_per_row=3, epochs=3, random_state=0).fit(
        X, progress=lambda *a: calls.append(a))
    phases = [c[0] for c in calls]
    assert phases[0] == "PCA start" and phases[-1] == "done"
    for name in ("fitting quantizer", "training codec, pass 3/3", "training decoder, pass 1/1",
                 "calibrating"):
        assert name in phases, phases
    done = [c[1] for c in calls]
    assert done == sorted(done) and done[-1] == calls[-1][2] > 0  # every planned step ran
    assert len({c[2] for c in calls if c[2]}) == 1  # one plan for the whole fit
    held = [c[3] for c in calls if c[3] is not None]
    assert held and all(math.isfinite(h) and h > 0 for h in held)
    # Progress is only reported: the model is the same bytes without it.
    plain = VAECompressor(bytes_per_row=3, epochs=3, random_state=0).fit(X)
    assert with_bar.to_bytes() == plain.to_bytes()


def test_fit_bytes_per_row_shows_a_bar_on_stderr(table_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.vaekit"
    result = run("fit", table_csv, "--id-column", "id", "--bytes-per-row", "3", "--epochs",
                 "2", "--progress", "-o", out)
    assert result.exit_code == 0, result.output
    bar = result.stderr
    assert "training codec, pass 2/2" in bar and "training decoder" in bar
    assert re.search(r"held-out error \d", bar), bar
    assert "held-out error" in bar.splitlines()[-2]  # the summary names it too
    quiet = run("fit", table_csv, "--id-column", "id", "--bytes-per-row", "3", "--epochs",
                "2", "--progress", "-q", "-o", tmp_path / "q.vaekit")
    assert quiet.exit_code == 0 and quiet.stderr == ""  # -q wins over --progress


def test_progress_bar_in_a_real_process(table_csv: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "vaekit", "fit", str(table_csv),
                           "--id-column", "id", "--bytes-per-row", "3", "--epochs", "2",
                           "--progress", "-o", str(tmp_path / "m.vaekit")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # the terminal gets the bar on stderr, never stdout
    assert "training codec" in proc.stderr and "held-out error" in proc.stderr
    # Not a terminal and no --progress: no bar, only the summary lines.
    proc = subprocess.run([sys.executable, "-m", "vaekit", "fit", str(table_csv),
                           "--id-column", "id", "--bytes-per-row", "3", "--epochs", "2",
                           "-o", str(tmp_path / "n.vaekit")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "training codec" not in proc.stderr


# --------------------------------------------------------------- 2. a default budget


def test_compress_fit_without_a_budget_uses_one_byte_per_column(table_csv: Path,
                                                                 tmp_path: Path) -> None:
    vkc, model = tmp_path / "t.vkc", tmp_path / "t.vaekit"
    result = run("compress", table_csv, "--fit", "--id-column", "id", "--epochs", "3",
                 "--save-model", model, "-o", vkc)
    assert result.exit_code == 0, result.output
    assert "no --bytes-per-row given: budget 6 bytes/row" in result.stderr
    est = load(model)
    assert isinstance(est, VAECompressor) and est.bytes_per_row == 6.0  # 6 model columns
    facts = json.loads(run("info", vkc, "--json").stdout)
    assert facts["codes_bytes_per_row"] <= 6.0
    back = pd.read_csv(io.StringIO(run("decompress", vkc, "-m", model, "-o", "-", "-q").stdout))
    src = pd.read_csv(table_csv)
    for col in NUMERIC:  # the old default (a plain VAE, ~2 bytes/row) left R^2 <= 0.2 here
        ok = src[col].notna()
        r2 = 1 - np.mean((back[col][ok] - src[col][ok]) ** 2) / src[col][ok].var()
        assert r2 > 0.9, (col, r2)
    assert (back["kind"] == src["kind"]).mean() > 0.95
    help_text = " ".join(run("compress", "--help").stdout.split())  # unwrapped
    assert "default: 1 per model column" in help_text and "1 byte per model column" in help_text


def test_an_explicit_budget_still_wins(table_csv: Path, tmp_path: Path) -> None:
    result = run("compress", table_csv, "--fit", "--id-column", "id", "--epochs", "2",
                 "--bytes-per-row", "2", "--save-model", tmp_path / "m.vaekit",
                 "-o", tmp_path / "t.vkc")
    assert result.exit_code == 0, result.output
    assert "no --bytes-per-row" not in result.stderr
    assert load(tmp_path / "m.vaekit").bytes_per_row == 2.0


# --------------------------------------------------------------- 3. honest digits, dtypes


def _significant(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    return len(digits.split("e")[0].rstrip("0")) if digits else 0


def test_decompressed_csv_has_no_digits_beyond_the_codec(compressor: VAECompressor,
                                                         tmp_path: Path) -> None:
    table = _table()
    vkc, out = tmp_path / "t.vkc", tmp_path / "back.csv"
    # The latent code alone (the budget may have chosen a value grid: its own digits).
    with CompressedWriter(vkc, compressor, id_columns=["id"], chunk_rows=150,
                          max_abs_error=None) as writer:
        writer.write(table)
    model = tmp_path / "m.vaekit"
    compressor.save(model)
    assert run("decompress", vkc, "-m", model, "-o", out, "-q").exit_code == 0
    text = pd.read_csv(out, dtype=str, keep_default_na=False)
    fitted = compressor.fitted_
    q = fitted.default_quantizer()
    z = q.decode(q.encode(compressor.transform(table.drop(columns="id"))))
    error = value_error(fitted, z)  # the decoder's error scale per cell, column units
    raw = fitted.decode_means(z)    # unrounded reconstructions
    back = pd.read_csv(out)
    for j, col in enumerate(NUMERIC):
        cells = text[col][text[col] != ""]
        decimals = cells.str.split(".").str[1].fillna("").str.len()
        allowed = 1 - np.floor(np.log10(error[:, j]))[text[col] != ""]
        assert (decimals.to_numpy() <= np.maximum(allowed, 0)).all(), col
        assert max(_significant(c) for c in cells) <= 7, col  # was 16-17
        codec_rmse = np.sqrt(np.nanmean((back[col] - table[col]) ** 2))
        moved = np.nanmax(np.abs(back[col] - raw[col]))
        assert moved <= 0.05 * codec_rmse, (col, moved, codec_rmse)
    assert back["k"].dtype == np.int64 and not text["k"].str.contains(r"\.").any()
    assert text["b"][7] == ""  # the blank stays blank


def test_rounding_is_one_digit_below_the_error() -> None:
    x = np.array([1.5525648834821242, -0.00041, 123456.789, 2.5, np.nan, 7.0])
    err = np.array([0.031, 0.02, 400.0, 0.0, 1.0, np.inf])
    got = round_values(x, err)
    assert got[0] == 1.553 and got[1] == 0.0 and math.copysign(1, got[1]) == 1
    assert got[2] == 123460.0 and got[3] == 2.5 and np.isnan(got[4]) and got[5] == 7.0
    assert repr(float(got[0])) == "1.553"


def test_inverse_transform_and_decompress_agree_on_dtypes() -> None:
    rng = np.random.default_rng(1)
    n = 300
    s = rng.uniform(-2, 2, n)
    frame = pd.DataFrame({
        "f64": s, "f32": (50 * np.sin(s)).astype(np.float32),
        "i64": rng.integers(0, 1000, n), "i32": rng.integers(0, 50, n).astype(np.int32),
        "flag": s > 0, "cat": pd.Categorical(np.where(s > 1, "a", np.where(s > 0, "b", "c"))),
        "nint": pd.array(rng.integers(0, 9, n), dtype="Int64"),
    })
    est = VAECompressor(bytes_per_row=4, epochs=2, random_state=0).fit(frame)
    inv = est.inverse_transform(est.transform(frame))
    dec = est.decompress(est.compress(frame))
    assert inv.dtypes.equals(frame.dtypes) and dec.dtypes.equals(inv.dtypes)
    # Blanks in an int column come back as blanks of a nullable Int64 column.
    holes = frame.astype({"i64": "Int64"})
    holes.loc[5, "i64"] = pd.NA
    back = est.decompress(est.compress(holes))
    assert str(back["i64"].dtype) == "Int64" and back["i64"].isna().tolist()[5]


# --------------------------------------------------------------- 4. where the bytes go


def _container(compressor: VAECompressor, path: Path) -> pd.DataFrame:
    table = _table()
    with CompressedWriter(path, compressor, id_columns=["id"], embed_model=True,
                          chunk_rows=150) as writer:
        writer.write(table)
    return table


def test_info_breakdown_adds_up_to_the_file(compressor: VAECompressor, tmp_path: Path) -> None:
    vkc = tmp_path / "t.vkc"
    table = _container(compressor, vkc)
    facts = json.loads(run("info", vkc, "--json").stdout)
    sizes = facts["size_breakdown"]
    assert set(sizes) == {"model", "header", "ids", "codes", "missing_mask", "values",
                          "overhead"}
    assert sum(sizes.values()) == facts["file_bytes"] == vkc.stat().st_size
    assert sizes["model"] == len(compressor.to_bytes()) == facts["embedded_model_bytes"]
    # The ids are the passthrough tables, chunk by chunk (3 chunks of <= 150 rows).
    chunks = [table["id"].iloc[i:i + 150].to_frame() for i in range(0, 400, 150)]
    assert sizes["ids"] == sum(len(pack_table(c)) for c in chunks)
    assert 0 < sizes["missing_mask"] < 100  # one blank, in the first chunk only
    # Per chunk (format version 3): tag, three uvarints (index, rows, payload length),
    # two CRCs, and the 6-byte payload head; the trailer: tag, two uvarints (chunks,
    # rows), CRC, its length byte, end magic.
    def uvarint(v: int) -> int:
        return max(1, (v.bit_length() + 6) // 7)

    with ContainerReader(vkc) as reader:
        chunks_read = [(k, n, len(p)) for k, n, p in reader.iter_chunks()]
    assert len(chunks_read) == 3
    records = sum(4 + uvarint(k) + uvarint(n) + uvarint(size) + 8 + 6
                  for k, n, size in chunks_read)
    assert sizes["overhead"] == records + 4 + uvarint(3) + uvarint(400) + 4 + 1 + 8
    with ContainerReader(vkc) as reader:
        header_json = json.dumps(reader.header, separators=(",", ":"),
                                 ensure_ascii=False).encode()
    assert sizes["header"] == 28 + len(compress_header_json(header_json)) + 4
    assert facts["codes_bytes_per_row"] == round(sizes["codes"] / 400, 3)
    # the budget (sized for 4096-row chunks; 150-row chunks pay a little framing)
    assert facts["codes_bytes_per_row"] <= 4.4 < facts["bytes_per_row"]
    text = run("info", vkc).stdout
    assert f"codes         {facts['codes_bytes_per_row']} bytes/row" in text
    for label in ("model", "header", "ids", "codes", "missing mask", "overhead", "total"):
        assert re.search(rf"^    {label} +[\d,]+ +[\d.]+ %", text, re.M), label


def test_info_on_a_damaged_chunk_says_why_and_verify_refuses(compressor: VAECompressor,
                                                             tmp_path: Path) -> None:
    vkc = tmp_path / "t.vkc"
    _container(compressor, vkc)
    data = bytearray(vkc.read_bytes())
    data[-28 - 10] ^= 0x01  # inside the last chunk's payload; the trailer is intact
    vkc.write_bytes(bytes(data))
    result = run("info", vkc)
    assert result.exit_code == 0, result.output
    assert "sizes         not available" in result.stdout and "corrupt" in result.stdout
    facts = json.loads(run("info", vkc, "--json").stdout)
    assert facts["size_breakdown"] is None and "chunk 3 of 3" in facts["size_breakdown_error"]
    assert run("info", vkc, "--verify").exit_code == EXIT_FILE
    truncated = tmp_path / "cut.vkc"
    truncated.write_bytes(bytes(data[:-40]))
    text = run("info", truncated)
    assert text.exit_code == 0 and "INCOMPLETE" in text.stdout
    assert "sizes         not available (the file is incomplete)" in text.stdout


def _round_one_decimal_at_a_time(x: np.ndarray, error: np.ndarray) -> np.ndarray:
    """The rounding as first written: one pass per distinct number of decimals."""
    ok = np.isfinite(x) & np.isfinite(error) & (error > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        decimals = 1 - np.floor(np.log10(np.where(ok, error, 1.0)))
    ok &= decimals <= 15
    out = x.copy()
    for d in np.unique(decimals[ok]).astype(int):
        sel = ok & (decimals == d)
        p = 10.0 ** abs(d)
        out[sel] = np.rint(x[sel] * p) / p if d >= 0 else np.rint(x[sel] / p) * p
    return out + 0.0


def test_rounding_every_cell_at_once_gives_the_same_doubles() -> None:
    # round_values rounds a whole block at once; each cell must come out as the
    # one-decimal-at-a-time rounding gave it (so decompressed files keep their bytes).
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 7)) * 10.0 ** rng.integers(-12, 12, (400, 7))
    error = np.abs(rng.normal(size=(400, 7))) * 10.0 ** rng.integers(-20, 300, (400, 7))
    x[0, :4] = [np.nan, np.inf, -0.0, 1e308]
    error[1, :5] = [0.0, -1.0, np.nan, np.inf, 1.7e308]
    got, want = round_values(x, error), _round_one_decimal_at_a_time(x, error)
    np.testing.assert_array_equal(got, want)
    assert (np.signbit(got) == np.signbit(want)).all()
