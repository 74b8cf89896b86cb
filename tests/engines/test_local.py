"""The local engine: same bytes whatever the threads, the chunking and the read-ahead;
errors in input order; no thread left behind."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import torch

import vaekit.jobs.read as read
from vaekit.engines.local import iter_scored
from vaekit.errors import DataError
from vaekit.files.readers import iter_table
from vaekit.jobs.score import ScoreOptions

from ..conftest import DEMO, run_cli


@pytest.fixture(scope="session")
def model(demo_model_file: Path) -> Path:
    return demo_model_file


@pytest.fixture(scope="module")
def est(model: Path):
    import vaekit

    return vaekit.load(model)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo table three times (9,000 rows), so small blocks make many chunks."""
    demo = pd.read_csv(DEMO)
    path = tmp_path_factory.mktemp("data") / "big.csv"
    pd.concat([demo] * 3, ignore_index=True).to_csv(path, index=False)
    return path


def _scored(paths, est, options, *, block_bytes: int | None = None, monkeypatch=None,
            **kw) -> tuple[pa.Table, list]:
    if block_bytes is not None:
        monkeypatch.setattr(read, "iter_table",
                            functools.partial(iter_table, block_bytes=block_bytes))
    tables, bad = [], []
    for t, b in iter_scored([str(p) for p in paths], est, options, **kw):
        tables.append(t)
        bad.extend(b)
    if block_bytes is not None:
        monkeypatch.undo()
    return pa.concat_tables(tables), bad


@pytest.mark.parametrize("samples", [1, 16])
def test_scores_identical_for_threads_chunking_and_pipeline(est, big_csv, monkeypatch,
                                                            samples) -> None:
    options = ScoreOptions(id_columns=("row_id",), threshold=float(est.threshold_), explain=2,
                           n_samples=samples)
    ref, _ = _scored([big_csv], est, options, pipeline=False, threads=1)
    assert ref.num_rows == 9000
    for kw in (dict(pipeline=True, threads=1), dict(pipeline=True, threads=2),
               dict(pipeline=False, threads=3), dict(pipeline=True, threads=0)):
        got, _ = _scored([big_csv], est, options, **kw)
        assert got.equals(ref), kw
    for block_bytes in (7_000, 100_000):  # ~90 and ~1,400 rows per chunk
        for kw in (dict(pipeline=False, threads=1), dict(pipeline=True, threads=2)):
            got, _ = _scored([big_csv], est, options, block_bytes=block_bytes,
                             monkeypatch=monkeypatch, **kw)
            assert got.equals(ref), (block_bytes, kw)


def _with_bad_rows(tmp_path: Path) -> Path:
    demo = pd.read_csv(DEMO)
    big = pd.concat([demo] * 2, ignore_index=True).astype({"quantity": object})
    big.loc[4500, "quantity"] = "lots"
    big.loc[5200, "quantity"] = "many"
    path = tmp_path / "bad.csv"
    big.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kw", [dict(pipeline=False, threads=1),
                                dict(pipeline=True, threads=2)])
def test_bad_rows_fail_in_order_after_earlier_chunks(est, tmp_path, monkeypatch, kw) -> None:
    path = _with_bad_rows(tmp_path)
    options = ScoreOptions(id_columns=("row_id",), threshold=1.0, n_samples=1)
    monkeypatch.setattr(read, "iter_table", functools.partial(iter_table, block_bytes=20_000))
    seen = 0
    with pytest.raises(DataError) as info:
        for table, _ in iter_scored([str(path)], est, options, **kw):
            seen += table.num_rows
    assert info.value.row == 4502 and info.value.column == "quantity"
    assert 0 < seen <= 4500
    # Skipping: the same rows left out, the same scores, whatever the pipeline.
    got, bad = _scored([path], est, options, skip_bad_rows=True, **kw)
    ref, ref_bad = _scored([path], est, options, skip_bad_rows=True, pipeline=False,
                           threads=1)
    assert [(b.line, b.column) for b in bad] == [(4502, "quantity"), (5202, "quantity")]
    assert [(b.line, b.column) for b in ref_bad] == [(b.line, b.column) for b in bad]
    assert got.equals(ref) and got.num_rows == 5998


def _vaekit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name.startswith(("vaekit-reader", "vaekit-score")) and t.is_alive()]


def test_stopping_early_stops_the_threads(est, big_csv, monkeypatch) -> None:
    monkeypatch.setattr(read, "iter_table", functools.partial(iter_table, block_bytes=7_000))
    options = ScoreOptions(id_columns=("row_id",), threshold=1.0, n_samples=1)
    before = torch.get_num_threads()
    gen = iter_scored([str(big_csv)], est, options, threads=2)
    next(gen)
    assert _vaekit_threads()
    gen.close()
    assert not _vaekit_threads()
    assert torch.get_num_threads() == before


def test_progress_counts_every_row(est, tmp_path) -> None:
    path = _with_bad_rows(tmp_path)
    options = ScoreOptions(id_columns=("row_id",), threshold=1.0, n_samples=1)
    counts: list[int] = []
    list(iter_scored([str(path)], est, options, skip_bad_rows=True, progress=counts.append,
                     threads=2))
    assert sum(counts) == 6000


def test_cli_threads_give_identical_bytes(model, big_csv, tmp_path) -> None:
    outs = []
    for threads in ("1", "2", "0"):
        out = tmp_path / f"scores-{threads}.csv"
        result = run_cli("score", big_csv, "-m", model, "--id-column", "row_id", "--explain",
                         "2", "--samples", "1", "--threads", threads, "-o", out, "-q")
        assert result.exit_code == 0, result.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    # ... and the same as the default (16 samples) run is self-consistent too.
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for out, threads in ((a, "1"), (b, "2")):
        result = run_cli("score", big_csv, "-m", model, "--no-rank", "--threads", threads,
                         "-o", out, "-q")
        assert result.exit_code == 0, result.output
    assert a.read_bytes() == b.read_bytes()


def test_cli_threads_with_dask_is_a_usage_error(model) -> None:
    result = run_cli("score", DEMO, "-m", model, "--engine", "dask", "--threads", "2")
    assert result.exit_code == 2


@pytest.mark.parametrize("pipeline", [True, False])
def test_stopping_early_without_read_ahead(est, big_csv, monkeypatch, pipeline) -> None:
    monkeypatch.setattr(read, "iter_table", functools.partial(iter_table, block_bytes=7_000))
    options = ScoreOptions(id_columns=("row_id",), threshold=1.0, n_samples=1)
    gen = iter_scored([str(big_csv)], est, options, threads=2, pipeline=pipeline)
    next(gen)
    next(gen)
    gen.close()
    assert not _vaekit_threads()
