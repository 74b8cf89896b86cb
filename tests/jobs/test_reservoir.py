"""The training sample of ``vaekit fit``: one pass, uniform, seeded, bounded.

:class:`vaekit.jobs.read.Reservoir` and :func:`vaekit.jobs.read.load_training_data`
(item "Fitting beyond memory" of issue 16).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from vaekit import DataError
from vaekit.cli import app
from vaekit.files import readers
from vaekit.jobs import read
from vaekit.jobs.read import (
    ESTIMATE_ROWS,
    SLACK,
    Reservoir,
    load_training_data,
    rows_bytes,
    sample_keys,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "datasets" / "demo.csv"


def _sample(n_rows: list[int], k: int, seed: int, chunk: int) -> np.ndarray:
    """Row numbers (0.. over all streams) kept from streams of ``n_rows`` rows each."""
    res = Reservoir(seed, k)
    start = 0
    for stream, n in enumerate(n_rows):
        rows = np.arange(start, start + n)
        for at in range(0, n, chunk):
            res.add(rows[at:at + chunk], stream=stream, positions=np.arange(at, min(n, at + chunk)))
        start += n
    sample, _ = res.sample()
    return sample


# --------------------------------------------------------------------------- uniformity


def test_every_row_and_pair_equally_likely_over_seeds() -> None:
    """50 rows in two inputs, k = 10, 2,000 seeds: each row is kept with probability
    1/5 and each pair with 9/245 -- counts within 5 binomial SDs (fails for a
    first-N sample, for a sample biased towards one input or towards late rows)."""
    seeds, n, k = 2000, 50, 10
    counts = np.zeros(n, dtype=int)
    pairs = np.zeros((n, n), dtype=int)
    for seed in range(seeds):
        kept = _sample([20, 30], k, seed, chunk=7)
        assert len(kept) == k and len(set(kept.tolist())) == k
        assert np.all(np.diff(kept) > 0)  # input order
        counts[kept] += 1
        pairs[np.ix_(kept, kept)] += 1
    p = k / n
    assert np.all(np.abs(counts - seeds * p) <= 5 * np.sqrt(seeds * p * (1 - p))), counts
    q = k * (k - 1) / (n * (n - 1))
    off = pairs[~np.eye(n, dtype=bool)]
    assert np.all(np.abs(off - seeds * q) <= 5 * np.sqrt(seeds * q * (1 - q)) + 1), \
        (off.min(), off.max())


def test_keys_differ_by_seed_stream_and_position() -> None:
    keys = sample_keys(0, 0, np.arange(10_000))
    assert len(np.unique(keys)) == 10_000
    assert not np.array_equal(keys, sample_keys(1, 0, np.arange(10_000)))
    assert not np.array_equal(keys, sample_keys(0, 1, np.arange(10_000)))
    # Roughly uniform over the 64-bit range: each of 16 bins holds ~1/16.
    bins = np.bincount((keys >> np.uint64(60)).astype(int), minlength=16)
    assert bins.min() > 500 and bins.max() < 750


# --------------------------------------------------------------------------- determinism


def test_sample_does_not_depend_on_chunk_sizes() -> None:
    reference = _sample([300, 700], 64, 11, chunk=1000)
    for chunk in (1, 3, 64, 65, 299):
        np.testing.assert_array_equal(_sample([300, 700], 64, 11, chunk=chunk), reference)
    assert not np.array_equal(_sample([300, 700], 64, 12, chunk=1000), reference)


def _table(path: Path, n: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"rid": [f"r{i}" for i in range(n)], "x": rng.normal(size=n).round(4),
                          "y": rng.integers(0, 100, n), "c": rng.choice(["a", "b", "c"], n)})
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.parametrize("max_rows", [300, "auto"])
def test_files_sample_same_for_any_block_size(tmp_path: Path, monkeypatch, max_rows) -> None:
    """CSV read in blocks of 4 KiB, 64 KiB or 2 MiB, Parquet in 97-row batches: the
    same rows, the same order, the same size ("auto" measures the first
    ESTIMATE_ROWS rows however they are chunked)."""
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    _table(paths[0], 2500)
    _table(paths[1], 1500, seed=1)
    kw = dict(max_rows=max_rows, sample_bytes=40_000, seed=7)
    frames = []
    for block in (4096, 65536, readers.DEFAULT_BLOCK_BYTES):
        monkeypatch.setattr(read, "iter_table", functools.partial(readers.iter_table,
                                                                  block_bytes=block))
        frames.append(load_training_data([str(p) for p in paths], **kw).data)
    for other in frames[1:]:
        pd.testing.assert_frame_equal(other, frames[0])
    expected = 300 if max_rows == 300 else None
    assert len(frames[0]) == (expected or len(frames[0])) and len(frames[0]) < 4000
    # Rows from both files, not the first rows only.
    assert frames[0]["rid"].isin([f"r{i}" for i in range(2000, 2500)]).any()
    parquet = tmp_path / "a.parquet"
    pd.read_csv(paths[0]).to_parquet(parquet)
    monkeypatch.setattr(read, "iter_table", functools.partial(readers.iter_table,
                                                              chunk_rows=97))
    by_97 = load_training_data([str(parquet)], max_rows=300, seed=7).data
    monkeypatch.undo()
    whole = load_training_data([str(parquet)], max_rows=300, seed=7).data
    pd.testing.assert_frame_equal(by_97, whole)


def test_same_seed_same_sample_and_not_the_first_rows(tmp_path: Path) -> None:
    path = tmp_path / "sorted.csv"
    _table(path, 3000)  # rid ordered like a time-sorted export
    first = load_training_data([str(path)], max_rows=100, seed=3)
    again = load_training_data([str(path)], max_rows=100, seed=3)
    other = load_training_data([str(path)], max_rows=100, seed=4)
    pd.testing.assert_frame_equal(first.data, again.data)
    assert first.data["rid"].tolist() != other.data["rid"].tolist()
    ids = first.data["rid"].str[1:].astype(int)
    assert first.sampled and first.rows_read == 3000 and len(first.data) == 100
    assert ids.is_monotonic_increasing and ids.min() < 300 and ids.max() > 2700


# --------------------------------------------------------------------------- bounds


def test_byte_cap_is_computed_from_the_first_rows_and_respected(tmp_path: Path) -> None:
    """Wide text rows and a 1 MiB budget: the sample size follows from the bytes of
    the first rows, and what is held never passes k (1 + SLACK) + one chunk."""
    path = tmp_path / "wide.csv"
    n = 4000
    pd.DataFrame({"t": [f"{i:04d}" + "w" * 600 for i in range(n)],
                  "x": np.arange(n) % 7}).to_csv(path, index=False)
    budget = 2**20
    head = next(iter(readers.iter_table(str(path), {"t": "text", "x": "text"})))
    per_row = rows_bytes(head.data.iloc[:ESTIMATE_ROWS]) / ESTIMATE_ROWS + 32
    k = int(budget / ((1 + SLACK) * per_row))
    assert 1000 < k < n  # the cap binds (each row is ~0.6 kB)
    data = load_training_data([str(path)], sample_bytes=budget, seed=0)
    assert len(data.data) == k and data.sampled and data.rows_read == n
    assert rows_bytes(data.data) < budget

    res = Reservoir(0, None, budget)
    most = 0
    for chunk in readers.iter_table(str(path), {"t": "text", "x": "text"}, block_bytes=8192):
        res.add(chunk.data, stream=0, positions=chunk.lines - 2, lines=chunk.lines)
        most = max(most, res.held - len(chunk))
    assert res.k == k and most <= k * (1 + SLACK)
    assert len(res.sample()[0]) == k


def test_explicit_max_rows_is_the_sample_size(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _table(path, 500)
    assert len(load_training_data([str(path)], max_rows=37).data) == 37
    assert len(load_training_data([str(path)], max_rows=5000).data) == 500
    assert len(load_training_data([str(path)], max_rows=None).data) == 500
    with pytest.raises(ValueError, match="max_rows"):
        load_training_data([str(path)], max_rows=0)


# --------------------------------------------------------------------------- bad rows


def test_bad_rows_keep_their_file_and_line_through_the_sample(tmp_path: Path) -> None:
    """A broken line (wrong field count) is found wherever it is; a bad value in a
    numeric column is reported, with its own file and line, for each sampled row."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _table(a, 1000)
    frame = _table(b, 1000, seed=1).astype({"x": object})
    planted = set(range(3, 1000, 25))  # 4 % of the rows: "x" stays numeric
    for i in planted:
        frame.loc[i, "x"] = f"bad{i}"
    frame.to_csv(b, index=False)
    data = load_training_data([str(a), str(b)], max_rows=400, seed=1, skip_bad_rows=True)
    assert data.bad, "some planted rows are in a 40 % sample"
    for bad in data.bad:
        assert bad.file == str(b) and bad.column == "x"
        assert bad.line - 2 in planted and f"bad{bad.line - 2}" in bad.reason
    assert len(data.data) == 400 - len(data.bad)
    with pytest.raises(DataError) as info:
        load_training_data([str(a), str(b)], max_rows=400, seed=1)
    assert (info.value.file, info.value.row, info.value.column) == \
        (str(b), data.bad[0].line, "x")

    lines = b.read_text().splitlines()
    lines[900] += ",stray"  # line 901, late in the second file: read although sampled
    b.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_training_data([str(a), str(b)], max_rows=10, seed=1)
    assert (info.value.file, info.value.row) == (str(b), 901)
    assert "expected 4 fields, found 5" in str(info.value)


# --------------------------------------------------------------------------- small inputs


def test_small_inputs_give_every_row_in_order(tmp_path: Path) -> None:
    """Fewer rows than the cap: exactly the rows pandas reads, in order, as before."""
    halves = [tmp_path / "one.csv", tmp_path / "two.csv"]
    demo = pd.read_csv(DEMO)
    demo.iloc[:1200].to_csv(halves[0], index=False)
    demo.iloc[1200:].to_csv(halves[1], index=False)
    data = load_training_data([str(p) for p in halves], seed=123)
    pd.testing.assert_frame_equal(data.data, demo)
    assert not data.sampled and data.rows_read == len(demo)
    # Any seed: nothing is sampled.
    pd.testing.assert_frame_equal(load_training_data([str(DEMO)], seed=9).data, demo)


def test_images_are_sampled_too(tmp_path: Path) -> None:
    path = tmp_path / "im.npz"
    images = np.broadcast_to(np.arange(200, dtype=np.uint8)[:, None, None], (200, 4, 4))
    np.savez(path, X=images)
    everything = load_training_data([str(path)])
    np.testing.assert_array_equal(everything.data, images)
    some = load_training_data([str(path)], max_rows=20, seed=2)
    assert some.kind == "image" and some.data.shape == (20, 4, 4) and some.sampled
    index = some.data[:, 0, 0].astype(int)  # image i is filled with i
    assert np.all(np.diff(index) > 0) and index.max() > 100  # in order, not the first 20
    np.testing.assert_array_equal(load_training_data([str(path)], max_rows=20, seed=2).data,
                                  some.data)


# --------------------------------------------------------------------------- CLI


def test_cli_fit_trains_on_a_seeded_sample(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _table(path, 2000)
    model = tmp_path / "m.vaekit"
    result = CliRunner().invoke(app, ["fit", str(path), "--id-column", "rid", "--max-rows",
                                      "150", "--epochs", "1", "--seed", "5", "-o", str(model)])
    assert result.exit_code == 0, result.output
    assert "uniform sample of 150 of 2,000 rows (--seed 5" in result.output
    info = json.loads(CliRunner().invoke(app, ["info", str(model), "--json"]).output)
    assert info["training"]["rows"] == 150
    help_text = CliRunner().invoke(app, ["fit", "--help"]).output
    assert "uniform sample" in help_text and "10 GB" in help_text

    # Subprocess: the same command, --max-rows 0 = every row (no sample message).
    done = subprocess.run([sys.executable, "-m", "vaekit", "fit", str(path), "--id-column",
                           "rid", "--max-rows", "0", "--epochs", "1", "-o",
                           str(tmp_path / "all.vaekit")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sample" not in done.stderr and "on 2000 rows" in done.stderr
