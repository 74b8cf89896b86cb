"""The report ranks every row of DATA, not a sample: its #1 is ``vaekit score --top 1``'s #1."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from vaekit.fitted import as_fitted  # noqa: E402
from vaekit.report.html import sample_rows, score_all_rows  # noqa: E402

from .conftest import figure_ids  # noqa: E402

N_ROWS, MAX_ROWS = 20_000, 5_000


@pytest.fixture(scope="module")
def big_table(demo, tmp_path_factory):
    """20,000 demo-like rows with ids; one extreme row where the 5,000-row sample misses it."""
    features, _ = demo
    rng = np.random.default_rng(7)
    table = features.iloc[rng.integers(0, len(features), N_ROWS)].reset_index(drop=True)
    table["row_id"] = [f"B{i:06d}" for i in range(N_ROWS)]
    sampled = set(sample_rows(N_ROWS, MAX_ROWS).tolist())
    extreme = next(p for p in range(17_000, N_ROWS) if p not in sampled)
    table.loc[extreme, ["quantity", "delivery_days"]] = [5_000, 900]
    path = tmp_path_factory.mktemp("big") / "big.csv"
    table.to_csv(path, index=False)
    return path, table, extreme


def test_report_top_anomaly_is_the_true_first_outside_the_sample(tabular_detector, big_table,
                                                                  tmp_path) -> None:
    from tests.conftest import run_cli

    path, table, extreme = big_table
    model = tmp_path / "det.vaekit"
    tabular_detector.save(model)
    out = tmp_path / "big.html"
    result = run_cli("report", model, path, "-o", out, "--id-column", "row_id", "--top", "3",
                     "--max-rows", MAX_ROWS)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    first = re.search(r"<tr><td class=num>1</td><td>([^<]+)</td><td class=num>([-\d.]+)</td>",
                      page)
    assert first is not None, page[:2000]
    # The same row, with the same score, as `vaekit score --top 1`.
    scored = run_cli("score", path, "-m", model, "--id-column", "row_id", "--top", "1",
                     "-o", "-", "--quiet")
    assert scored.exit_code == 0, scored.output
    top = pd.read_csv(io.StringIO(scored.stdout), dtype={"row_id": str})
    assert first.group(1) == top["row_id"].iloc[0] == table["row_id"].iloc[extreme]
    assert first.group(2) == f"{top['anomaly_score'].iloc[0]:.2f}"
    # The page says what is sampled and what is not.
    assert f"a fixed-seed random sample of {MAX_ROWS:,} of {N_ROWS:,} rows" in page
    assert f"all {N_ROWS:,} rows" in page and set(figure_ids(page)) >= {"fig-top-anomalies"}


def test_scoring_all_rows_block_by_block_matches_anomaly_score(tabular_detector,
                                                              demo_features) -> None:
    X = demo_features.iloc[:500]
    expected = tabular_detector.anomaly_score(X)
    # Blocks of 7 rows: a row's score must not depend on the block it came in.
    np.testing.assert_array_equal(score_all_rows(tabular_detector, X, block_rows=7), expected)
    np.testing.assert_array_equal(score_all_rows(as_fitted(tabular_detector), X), expected)


def test_scoring_all_rows_names_the_row_of_a_bad_value(tabular_detector, demo_features) -> None:
    from vaekit.errors import DataError

    X = demo_features.iloc[:40].copy()
    X["quantity"] = X["quantity"].astype(object)
    X.iloc[33, X.columns.get_loc("quantity")] = "lots"
    with pytest.raises(DataError) as whole:
        as_fitted(tabular_detector).prepare(X)
    # Found in the fifth block of 8 rows, but named as its row of X, as for X in one piece.
    with pytest.raises(DataError) as blocks:
        score_all_rows(tabular_detector, X, block_rows=8)
    assert blocks.value.row == whole.value.row is not None
    assert str(blocks.value) == str(whole.value) and "quantity" in str(blocks.value)
