"""Label metrics of the report: the numbers of sklearn.metrics on all rows; labels checked."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    precision_score,
    roc_auc_score,
)

from vaekit.errors import DataError  # noqa: E402
from vaekit.report import render_report  # noqa: E402
from vaekit.report.data import anomaly_labels  # noqa: E402
from vaekit.report.metrics import label_metrics, precision_at_k, precision_recall  # noqa: E402

from .conftest import figure_ids  # noqa: E402


def _metric_cells(page: str) -> dict[str, str]:
    table = page.split("<h2>Labels</h2>")[1].split("</table>")[0]
    return dict(re.findall(r"<tr><td>([^<]+)</td><td class=num>([^<]+)</td></tr>", table))


def _precision_at(scores: np.ndarray, y: np.ndarray, k: int) -> float:
    flagged = np.zeros(len(y), dtype=bool)
    flagged[np.argsort(-scores, kind="stable")[:k]] = True
    return float(precision_score(y, flagged))


def test_report_metrics_are_sklearns_on_all_rows(tabular_detector, demo, demo_features) -> None:
    y = demo[1]["is_anomaly"].to_numpy() == 1
    scores = tabular_detector.anomaly_score(demo_features)
    # A 300-row sample for the plots: the metrics must still use all 3,000 rows.
    page = render_report(tabular_detector, demo_features, labels=demo[1]["is_anomaly"],
                         top_k=7, max_rows=300)
    cells = _metric_cells(page)
    n_pos = int(y.sum())
    assert cells["ROC-AUC"] == f"{roc_auc_score(y, scores):.3f}"
    assert cells["Average precision"] == f"{average_precision_score(y, scores):.3f}"
    assert cells[f"Precision@{n_pos:,} (k = labelled anomalies)"] == \
        f"{_precision_at(scores, y, n_pos):.3f}"
    assert cells["Precision@7 (k = rows in the top-anomalies table)"] == \
        f"{_precision_at(scores, y, 7):.3f}"
    assert "fig-precision-recall" in figure_ids(page)
    assert f"{n_pos:,} of 3,000 rows are anomalies" in page


def test_label_metrics_match_sklearn_exactly() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.1
    scores = rng.normal(size=400) + 1.5 * y
    scores[:20] = 2.0  # ties
    m = label_metrics(scores, y, ks=(10, 400, 900))
    assert m.roc_auc == roc_auc_score(y, scores)
    assert m.average_precision == average_precision_score(y, scores)
    assert m.n_anomalies == int(y.sum()) and set(m.precision_at) == {int(y.sum()), 10, 400, 900}
    for k in (10, int(y.sum()), 400):
        assert m.precision_at[k] == _precision_at(scores, y, k)
    assert m.precision_at[900] == y.mean()  # k beyond the rows: every row
    # Ties keep row order, as `vaekit score --top` ranks them.
    assert precision_at_k(np.zeros(4), np.array([False, True, True, True]), 1) == 0.0
    one_class = label_metrics(scores, np.zeros(400, dtype=bool))
    assert one_class.roc_auc is None and one_class.average_precision is None


def test_precision_recall_figure_draws_sklearns_curve() -> None:
    from sklearn.metrics import precision_recall_curve

    rng = np.random.default_rng(4)
    y = rng.random(300) < 0.2
    scores = rng.normal(size=300) + y
    fig = precision_recall(scores, y, threshold=0.5, ks=(5,))
    line = fig.axes[0].lines[0]
    precision, recall, _ = precision_recall_curve(y, scores)
    np.testing.assert_array_equal(line.get_xdata(), recall)
    np.testing.assert_array_equal(line.get_ydata(), precision)
    assert "recall" in fig.axes[0].get_xlabel() and "precision" in fig.axes[0].get_ylabel()


@pytest.mark.parametrize("values", [
    [0, 1, 1, 0], [False, True, True, False], ["0", "1", "1", "0"], [0.0, 1.0, 1.0, 0.0],
    ["false", "TRUE", " true ", "False"], np.array([0, 1, 1, 0], dtype=np.int8),
    pd.array([False, True, True, False], dtype="boolean"), [b"0", b"1", b"1", b"0"],
])
def test_anomaly_labels_accept_ints_bools_and_text(values) -> None:
    assert anomaly_labels(values).tolist() == [False, True, True, False]


@pytest.mark.parametrize(("values", "found"), [
    ([0, 1, 2], "2"), (["0", "yes"], "'yes'"), ([0.0, np.nan], "nan"), ([1, None], "None"),
    (["normal", "price_spike"], "'normal'"), ([0.5, 1], "0.5"),
])
def test_anomaly_labels_refuse_other_values(values, found) -> None:
    with pytest.raises(DataError, match="anomaly labels 1/true") as info:
        anomaly_labels(values, column="y")
    assert found in str(info.value) and info.value.column == "y"


def test_render_report_refuses_non_binary_labels_of_a_detector(tabular_detector,
                                                               demo_features) -> None:
    X = demo_features.iloc[:50]
    labels = ["normal"] * 49 + ["price_spike"]
    with pytest.raises(DataError, match=r"row 1: labels must hold anomaly labels"):
        render_report(tabular_detector, X, labels=labels)


@pytest.mark.parametrize(("cell", "found"), [("2", "2.0"), ("", "nan"), ("maybe", "'maybe'")])
def test_command_refuses_a_bad_label_naming_file_line_and_column(cell, found, tabular_detector,
                                                                 demo, tmp_path) -> None:
    from tests.conftest import run_cli

    features, labels = demo
    data = tmp_path / "labelled.csv"
    frame = features.iloc[:60].assign(is_anomaly=labels["is_anomaly"].iloc[:60].astype(str))
    frame.loc[41, "is_anomaly"] = cell  # line 43: header + 42 rows above it
    frame.to_csv(data, index=False)
    before = data.read_bytes()
    model = tmp_path / "det.vaekit"
    tabular_detector.save(model)
    out = tmp_path / "r.html"
    result = run_cli("report", model, data, "-o", out, "--labels", "is_anomaly",
                     "--id-column", "row_id")
    assert result.exit_code == 3, result.output
    assert f"file '{data}', line 43, column 'is_anomaly'" in result.output
    assert "must hold anomaly labels 1/true (anomaly) or 0/false (normal)" in result.output
    assert f"found {found}" in result.output
    assert not out.exists() and data.read_bytes() == before
    assert set(tmp_path.iterdir()) == {data, model}  # no temporary file left behind


def test_command_reads_true_false_labels_and_parquet_bools(tabular_detector, demo,
                                                           tmp_path) -> None:
    from tests.conftest import run_cli

    features, labels = demo
    y = labels["is_anomaly"] == 1
    model = tmp_path / "det.vaekit"
    tabular_detector.save(model)
    pages = []
    for name, column in (("words.csv", y.map({True: "true", False: "false"})),
                         ("bools.parquet", y)):
        data = tmp_path / name
        frame = features.assign(is_anomaly=column)
        if name.endswith(".csv"):
            frame.to_csv(data, index=False)
        else:
            frame.to_parquet(data, index=False)
        out = tmp_path / f"{name}.html"
        result = run_cli("report", model, data, "-o", out, "--labels", "is_anomaly",
                         "--id-column", "row_id", "--max-rows", "200")
        assert result.exit_code == 0, result.output
        pages.append(_metric_cells(out.read_text(encoding="utf-8")))
    scores = tabular_detector.anomaly_score(features.drop(columns=["row_id"]))
    assert pages[0] == pages[1]
    assert pages[0]["ROC-AUC"] == f"{roc_auc_score(y, scores):.3f}"
