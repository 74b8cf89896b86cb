"""Scoring one chunk, thresholds and ranking (vaekit.jobs.score, vaekit.jobs.rank)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from vaekit import VAEAnomalyDetector, VAECompressor
from vaekit.errors import DataError
from vaekit.fitted import as_fitted
from vaekit.jobs.rank import RankedOutput
from vaekit.jobs.read import work_items
from vaekit.jobs.score import (
    SCORE_DECIMALS,
    ScoreOptions,
    _unseen_names,
    default_options,
    empty_scores,
    resolve_threshold,
    score_chunk,
    score_schema,
)

from ..conftest import DEMO


@pytest.fixture(scope="module")
def detector() -> VAEAnomalyDetector:
    frame = pd.read_csv(DEMO).drop(columns=["row_id"]).iloc[:600]
    return VAEAnomalyDetector(random_state=0, epochs=2, hidden_dims=[16], n_samples=4).fit(frame)


@pytest.fixture(scope="module")
def chunk_and_tensors(detector):
    (item,) = list(work_items([str(DEMO)], detector, ["row_id"]))
    return item


def test_schema_columns_and_units(detector) -> None:
    options = ScoreOptions(id_columns=("row_id",), explain=2)
    names = score_schema(detector, options, rank=True).names
    assert names == ["row_id", "anomaly_score", "rank", "is_anomaly", "unseen",
                     "top1_column", "top1_nats", "top2_column", "top2_nats"]
    plain = score_schema(as_fitted(detector), ScoreOptions(), rank=False).names
    assert plain == ["file", "line", "anomaly_score", "is_anomaly", "unseen"]
    assert empty_scores(detector, options).schema == score_schema(detector, options, rank=False)


def test_score_chunk_matches_the_estimator(detector, chunk_and_tensors) -> None:
    chunk, tensors = chunk_and_tensors
    threshold = float(detector.threshold_)
    options = ScoreOptions(id_columns=("row_id",), threshold=threshold, explain=1, n_samples=4)
    table = score_chunk(detector, chunk, options, tensors=tensors)
    features = pd.read_csv(DEMO).drop(columns=["row_id"])
    want = -detector.score_samples(features)  # anomaly score, nats
    np.testing.assert_allclose(table.column("anomaly_score").to_numpy(), want, atol=1e-6)
    assert table.column("is_anomaly").to_numpy().tolist() == \
        (want > threshold).astype(int).tolist()
    assert table.column("row_id").to_pylist() == pd.read_csv(DEMO)["row_id"].tolist()
    assert table.column("anomaly_score").to_numpy().round(SCORE_DECIMALS).tolist() == \
        table.column("anomaly_score").to_pylist()
    # The same rows whoever prepares them, and whoever sets the torch threads.
    fitted = as_fitted(detector)
    again = score_chunk(fitted, chunk, options, set_threads=False)
    assert again.equals(table)


def test_unseen_names() -> None:
    class Schema:
        def names(self, kind: str) -> list[str]:
            return {"binary": ["b"], "categorical": ["c1", "c2"]}[kind]

    flags = np.array([[0, 0, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float32)
    assert _unseen_names(Schema(), flags) == ["", "b;c2", "c1"]  # type: ignore[arg-type]
    assert _unseen_names(Schema(), np.zeros((2, 3))) == ["", ""]  # type: ignore[arg-type]


def test_thresholds(detector) -> None:
    fitted = as_fitted(detector)
    assert resolve_threshold(detector, threshold=3.5, contamination=0.2) == 3.5
    assert resolve_threshold(detector, threshold=None, contamination=None) == \
        pytest.approx(detector.threshold_)
    train = np.asarray(detector.decision_scores_)
    assert resolve_threshold(fitted, threshold=None, contamination=0.1) == \
        float(np.quantile(train, 0.9))
    options = default_options(detector)
    assert options.threshold == pytest.approx(detector.threshold_)
    assert options.n_samples == 4 and options.id_columns == ()


def test_a_compressor_needs_an_explicit_threshold() -> None:
    frame = pd.read_csv(DEMO).drop(columns=["row_id"]).iloc[:300]
    comp = VAECompressor(random_state=0, epochs=1, bytes_per_row=2).fit(frame)
    with pytest.raises(DataError, match="no anomaly threshold .* give --threshold T"):
        resolve_threshold(comp, threshold=None, contamination=None)
    with pytest.raises(DataError, match="no training scores; use --threshold"):
        resolve_threshold(comp, threshold=None, contamination=0.1)
    assert resolve_threshold(comp, threshold=7, contamination=None) == 7.0
    assert default_options(comp).threshold == float("inf")


def _scores(values: list[float], start: int = 0) -> pa.Table:
    return pa.table({"line": pa.array(range(start, start + len(values)), type=pa.int64()),
                     "anomaly_score": pa.array(values, type=pa.float64()),
                     "is_anomaly": pa.array([0] * len(values), type=pa.int8())})


def test_ranks_ties_share_and_top_k(tmp_path) -> None:
    schema = pa.schema([pa.field("line", pa.int64()), pa.field("anomaly_score", pa.float64()),
                        pa.field("rank", pa.int64()), pa.field("is_anomaly", pa.int8())])
    chunks = [_scores([1.0, 5.0, 3.0]), _scores([], 3), _scores([5.0, 0.5], 3)]
    with RankedOutput(schema, tmp_dir=str(tmp_path)) as ranked:
        for t in chunks:
            ranked.add(t)
        out = pa.concat_tables(list(ranked.tables()))
        assert out.schema == schema
    assert out.column("rank").to_pylist() == [4, 1, 3, 1, 5]
    assert list(tmp_path.iterdir()) == []  # the spool file is gone
    with RankedOutput(schema, top=3) as ranked:
        for t in chunks:
            ranked.add(t)
        best = pa.concat_tables(list(ranked.tables()))
    assert best.column("line").to_pylist() == [1, 3, 2]  # ties in input order
    assert best.column("rank").to_pylist() == [1, 1, 3]


def test_a_non_finite_score_is_an_error_naming_the_row(detector, chunk_and_tensors,
                                                       monkeypatch) -> None:
    # A NaN would rank first and be flagged normal: refused, naming file and line.
    chunk, tensors = chunk_and_tensors
    fitted = as_fitted(detector)
    real = type(fitted).score_terms

    def overflowing(self, tensors, n_samples=None):
        scores = real(self, tensors, n_samples)
        scores.elbo[3] = np.nan
        return scores

    monkeypatch.setattr(type(fitted), "score_terms", overflowing)
    options = ScoreOptions(id_columns=("row_id",), threshold=1.0, n_samples=4)
    with pytest.raises(DataError, match="not finite") as info:
        score_chunk(fitted, chunk, options, tensors=tensors)
    assert info.value.file == chunk.file and info.value.row == int(chunk.lines[3])
