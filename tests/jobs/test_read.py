"""The one route from input rows to tensors: files and DataFrames read alike."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vaekit.jobs.read as read
from vaekit import VAEAnomalyDetector
from vaekit.errors import DataError
from vaekit.files.readers import Chunk
from vaekit.fitted import FittedVAE, as_fitted
from vaekit.fitted.streams import CompressedWriter
from vaekit.jobs.compress_input import iter_compress_chunks
from vaekit.jobs.read import (
    frame_chunk,
    load_training_data,
    prepare_chunk,
    reading_types,
    work_items,
)
from vaekit.jobs.score import ScoreOptions, score_chunk

from ..conftest import DEMO


def _coded(n: int, seed: int = 0) -> pd.DataFrame:
    """A table whose categorical column ``code`` has the numeric levels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 3, n)
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)],
                         "x": code + 0.1 * rng.normal(size=n),
                         "code": code,
                         "y": rng.normal(size=n)})


@pytest.fixture(scope="module")
def coded_model() -> FittedVAE:
    frame = _coded(300).drop(columns="id")
    est = VAEAnomalyDetector(random_state=0, epochs=2, hidden_dims=[8], n_samples=2,
                             categorical_features=["code"]).fit(frame)
    return as_fitted(est)


def test_numeric_levels_are_read_as_levels(coded_model) -> None:
    spec = next(s for s in coded_model.schema.columns if s.name == "code")
    assert spec.kind == "categorical" and spec.levels == [0, 1, 2]
    assert reading_types(coded_model.schema, ["id"]) == {
        "id": "id", "x": "float", "code": "level", "y": "float"}


def test_text_and_numbers_give_the_same_scores_and_codes(coded_model, tmp_path) -> None:
    numbers = _coded(40, seed=1)
    text = numbers.astype({"code": str, "x": str})
    assert text["code"].tolist()[:3] == [str(v) for v in numbers["code"][:3]]
    options = ScoreOptions(id_columns=("id",), threshold=1.0, explain=2, n_samples=2)

    # Scoring: the per-partition route (score_dataframe's) ...
    scored = [score_chunk(coded_model, frame_chunk(f, coded_model, ["id"], label="partition 0"),
                          options) for f in (numbers, text)]
    assert scored[0].equals(scored[1])
    assert set(scored[0].column("unseen").to_pylist()) == {""}  # "1" is level 1
    # ... equals the file route.
    path = tmp_path / "coded.csv"
    numbers.to_csv(path, index=False)
    (chunk, tensors), = work_items([str(path)], coded_model, ["id"])
    from_file = score_chunk(coded_model, chunk, options, tensors=tensors)
    assert from_file.column("anomaly_score").equals(scored[0].column("anomaly_score"))

    # Compression: the per-partition route gives the same bytes for text and numbers ...
    def container(frame: pd.DataFrame) -> bytes:
        buffer = io.BytesIO()
        with CompressedWriter(buffer, coded_model, id_columns=["id"]) as writer:
            writer.write(frame_chunk(frame, coded_model, ["id"], label="partition 0",
                                     refuse_extra=True).data)
        return buffer.getvalue()

    assert container(numbers) == container(text)
    # ... and as the file route.
    buffer = io.BytesIO()
    with CompressedWriter(buffer, coded_model, id_columns=["id"]) as writer:
        for frame, _ in iter_compress_chunks([str(path)], coded_model, ["id"]):
            writer.write(frame)
    assert buffer.getvalue() == container(numbers)
    # (A raw frame skips the readers' conversion: there "1" is a level never seen.)
    raw = coded_model.prepare(text[coded_model.column_names])
    assert np.asarray(raw["unseen"]).any()


def test_frame_chunk_keeps_the_frame_order_and_checks_columns(coded_model) -> None:
    frame = _coded(5)[["y", "id", "code", "x"]].set_axis(range(10, 15), axis=0)
    chunk = frame_chunk(frame, coded_model, ["id"], label="partition 2")
    assert list(chunk.data.columns) == ["y", "id", "code", "x"]
    assert chunk.file == "partition 2" and chunk.lines.tolist() == [1, 2, 3, 4, 5]
    assert chunk.data.index.tolist() == [0, 1, 2, 3, 4]

    with pytest.raises(DataError, match=r"missing column\(s\) \['code'\]") as info:
        frame_chunk(frame.drop(columns="code"), coded_model, ["id"], label="partition 2")
    assert info.value.file == "partition 2"
    extra = frame.assign(note="x")
    assert list(frame_chunk(extra, coded_model, ["id"], label="p").data.columns) == \
        ["y", "id", "code", "x"]
    with pytest.raises(DataError, match=r"\['note'\] are not model columns"):
        frame_chunk(extra, coded_model, ["id"], label="p", refuse_extra=True)

    bad = frame.astype({"x": object})
    bad.iloc[3, bad.columns.get_loc("x")] = "lots"
    with pytest.raises(DataError) as info:
        frame_chunk(bad, coded_model, ["id"], label="partition 2")
    assert (info.value.file, info.value.row, info.value.column) == ("partition 2", 4, "x")


def test_prepare_chunk_names_file_line_and_column(coded_model) -> None:
    data = _coded(3).astype({"y": object})
    data.loc[2, "y"] = "abc"
    chunk = Chunk(data, "f.csv", np.array([2, 3, 7]))
    with pytest.raises(DataError) as info:
        prepare_chunk(coded_model, chunk)
    assert (info.value.file, info.value.row, info.value.column) == ("f.csv", 7, "y")


def test_compression_reads_each_chunk_once_without_preparing(coded_model, tmp_path,
                                                             monkeypatch) -> None:
    path = tmp_path / "coded.csv"
    _coded(30)[["code", "id", "y", "x"]].assign(note=1).to_csv(path, index=False)
    calls: list[int] = []
    monkeypatch.setattr(read, "prepare_chunk", lambda *a: calls.append(1))
    with pytest.warns(UserWarning, match=r"ignoring column\(s\) \['note'\]"):
        chunks = list(iter_compress_chunks([str(path)], coded_model, ["id"]))
    assert not calls  # the codec prepares the rows itself
    assert [list(f.columns) for f, _ in chunks] == [["code", "id", "y", "x"]]


def test_empty_model_column_is_refused(coded_model, tmp_path) -> None:
    path = tmp_path / "empty.csv"
    _coded(10).assign(y=np.nan).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"\['y'\] have no value in any row"):
        list(work_items([str(path)], coded_model, ["id"]))


def test_training_data_types_from_all_rows(tmp_path: Path) -> None:
    frame = pd.read_csv(DEMO).iloc[:200].copy()
    frame.loc[:50, "orders_90d"] = np.nan  # numeric although its first rows are empty
    frame = frame.astype({"quantity": object})
    frame.loc[60, "quantity"] = "many"
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_training_data([str(path)], id_columns=["row_id"])
    assert (info.value.row, info.value.column) == (62, "quantity")
    data = load_training_data([str(path)], id_columns=["row_id"], skip_bad_rows=True,
                              max_rows=150)
    assert data.kind == "tabular" and "row_id" not in data.data.columns
    assert len(data.data) == 149 and [(b.line, b.column) for b in data.bad] == [(62, "quantity")]
    assert data.data["orders_90d"].dtype == np.float64
