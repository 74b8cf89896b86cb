"""Missingness is data and an unseen category costs nats (issue 18, tables).

Exact properties: an unseen category never lowers a row's score; an all-blank row of a
never-blank table is an anomaly; a column blank in half the training rows moves a
typical row's score by less than its median cost when blanked; ``explain`` sums to the
score with the new terms named; model files without the counts score as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from vaekit import VAEAnomalyDetector
from vaekit.data.levels import byte_log_probs, spelling_nats
from vaekit.files.readers import Chunk
from vaekit.fitted import FittedVAE, as_fitted
from vaekit.jobs.score import ScoreOptions, score_chunk


def _table(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    kind = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    return pd.DataFrame({
        "x": t + 0.1 * rng.normal(size=n),
        "y": 1000.0 * (2 * t + 0.3 * rng.normal(size=n)),  # large units: positive costs
        "kind": kind.astype(object),
        "shade": np.where(t + 0.5 * rng.normal(size=n) > 0, "dark", "light").astype(object),
        "flag": rng.integers(0, 2, n),
    })


@pytest.fixture(scope="module")
def complete() -> tuple[VAEAnomalyDetector, pd.DataFrame]:
    frame = _table()
    det = VAEAnomalyDetector(random_state=0, epochs=30, hidden_dims=[32], n_samples=4)
    return det.fit(frame), frame


@pytest.fixture(scope="module")
def half_blank() -> tuple[VAEAnomalyDetector, pd.DataFrame]:
    frame = _table(seed=1)
    rng = np.random.default_rng(2)
    frame.loc[rng.random(len(frame)) < 0.5, "y"] = np.nan
    det = VAEAnomalyDetector(random_state=0, epochs=30, hidden_dims=[32], n_samples=4)
    return det.fit(frame), frame


def test_an_unseen_category_never_lowers_a_score(complete) -> None:
    det, frame = complete
    before = det.anomaly_score(frame)
    for col in ("kind", "shade", "flag"):  # every categorical and binary column
        changed = frame.copy()
        changed[col] = "never-seen" if col != "flag" else 7
        after = det.anomaly_score(changed)
        assert np.all(after >= before), (col, float(np.min(after - before)))
        # The decisions use the same score.
        assert np.all(det.decision_function(changed) <= det.decision_function(frame))
        assert np.all((det.predict(frame) == 1) | (det.predict(changed) == -1))


def test_an_unseen_cell_costs_the_worst_seen_level_plus_the_escape(complete) -> None:
    det, frame = complete
    row = frame.iloc[[3]]
    levels = det.schema_.specs("categorical")[0].levels
    seen = [det.anomaly_score(row.assign(kind=v))[0] for v in levels]
    unseen = det.anomaly_score(row.assign(kind="zzz"))[0]
    schema = det.schema_
    spec = schema.specs("categorical")[0]
    n_obs = schema.n_rows_fit - spec.n_missing
    assert spec.n_rare == 0  # every level is common: Good-Turing's KT-smoothed rate
    p_esc = 0.5 / (n_obs + 1)
    spelled = spelling_nats(["zzz"], byte_log_probs(levels))[0]
    assert spelled > 0
    # worst seen row, then the escape instead of a seen level's share, then the spelling
    assert unseen == pytest.approx(max(seen) - np.log(p_esc) + np.log1p(-p_esc) + spelled,
                                   abs=1e-6)


def test_a_longer_stranger_value_costs_exactly_its_extra_spelling(complete) -> None:
    det, frame = complete
    row = frame.iloc[[7]]
    levels = det.schema_.specs("categorical")[0].levels
    short, long = "bx", "bx\u00e9\u00e9QQ%%"
    gap = det.anomaly_score(row.assign(kind=long))[0] - det.anomaly_score(row.assign(kind=short))[0]
    lp = byte_log_probs(levels)
    assert gap == pytest.approx(spelling_nats([long], lp)[0] - spelling_nats([short], lp)[0],
                                abs=1e-6)
    assert gap > 10  # eight more bytes, none of them in a level


def test_a_value_seen_once_in_training_is_priced_as_a_new_value() -> None:
    frame = _table(n=300, seed=3)
    frame.loc[5, "kind"] = "dd"  # a one-off (a typo)
    det = VAEAnomalyDetector(random_state=0, epochs=5, hidden_dims=[16], n_samples=2).fit(frame)
    spec = det.schema_.specs("categorical")[0]
    assert spec.levels == ["a", "b", "c", "d"] and spec.n_rare == 1
    assert det.schema_.escape_rates()[-1] == pytest.approx(1.5 / 301)
    # The training row with the one-off is charged the escape and the spelling.
    scores = det.anomaly_score(frame)
    assert scores[5] > det.threshold_
    assert scores[5] == pytest.approx(det.anomaly_score(frame.iloc[[5]].assign(kind="dd"))[0])
    # A compressor keeps every level (it must be able to give values back).
    from vaekit import VAECompressor
    comp = VAECompressor(epochs=1, random_state=0).fit(frame)
    assert "dd" in comp.schema_.specs("categorical")[0].levels


def test_blanking_every_cell_of_a_never_blank_table_is_an_anomaly(complete) -> None:
    det, frame = complete
    assert all(c.n_missing == 0 for c in det.schema_.columns)
    blank = pd.DataFrame({c: [None] * 20 for c in frame.columns}, dtype=object)
    scores = det.anomaly_score(blank)
    assert np.all(scores > det.threshold_)
    assert np.all(det.predict(blank) == -1)
    # A blank cell of a never-blank column costs at least -log p_miss = log(2n + 2).
    ex = det.explain(blank.iloc[:1])
    for c in det.schema_.columns:
        assert ex[f"{c.name} (missing)"].iloc[0] >= np.log(2 * len(frame) + 2) + \
            min(0.0, c.missing_cost) - 1e-9


def test_a_column_blank_half_the_time_moves_a_typical_row_by_less_than_its_cost(
        half_blank) -> None:
    det, frame = half_blank
    rows = frame[frame["y"].notna()]
    ex = det.explain(rows)
    median = float(ex["y"].median())
    assert median > 0
    assert det.schema_.columns[1].missing_cost == pytest.approx(
        float(np.median(ex["y"] - (-np.log1p(-det.schema_.missing_rates()[1])))), abs=0.5)
    typical = rows[(ex["y"] >= ex["y"].quantile(0.25)) & (ex["y"] <= ex["y"].quantile(0.75))]
    before = det.anomaly_score(typical)
    after = det.anomaly_score(typical.assign(y=np.nan))
    assert np.all(np.abs(after - before) < median)


def test_explain_sums_to_the_score_with_the_new_terms_named(half_blank) -> None:
    det, frame = half_blank
    rows = frame.iloc[:40].copy()
    rows.loc[rows.index[:5], "kind"] = "unheard-of"
    rows.loc[rows.index[5:10], "x"] = np.nan
    ex = det.explain(rows)
    names = det.schema_.names()
    assert list(ex.columns) == names + [f"{n} (missing)" for n in names] + ["kl"]
    np.testing.assert_allclose(ex.sum(axis=1).to_numpy(), det.anomaly_score(rows),
                               rtol=0, atol=1e-9)
    # "(missing)" is non-zero exactly where the cell is blank (an unseen one is not).
    for n in names:
        blank = rows[n].isna().to_numpy()
        assert np.all((ex[f"{n} (missing)"].to_numpy() != 0) == blank), n
        assert np.all(ex[n].to_numpy()[blank] == 0), n
    # The unseen cells' cost sits in their own column, above any seen level's.
    assert np.all(ex["kind"].iloc[:5].to_numpy() > ex["kind"].iloc[5:].max())


def test_score_explain_output_names_the_missing_terms(half_blank) -> None:
    det, frame = half_blank
    rows = frame.iloc[:30].copy()
    rows["x"] = np.nan
    chunk = Chunk(file="t.csv", lines=np.arange(2, 32), data=rows.reset_index(drop=True))
    n = len(det.schema_.columns)
    table = score_chunk(det, chunk, ScoreOptions(explain=n, n_samples=det.n_samples))
    assert isinstance(table, pa.Table)
    tops = {v for k in range(1, n + 1) for v in table.column(f"top{k}_column").to_pylist()}
    assert "x (missing)" in tops
    np.testing.assert_allclose(table.column("anomaly_score").to_numpy(),
                               det.anomaly_score(rows), atol=1e-6)


def test_model_files_without_the_counts_score_as_before(complete) -> None:
    det, frame = complete
    fitted = as_fitted(det)
    old = FittedVAE.from_bytes(fitted.to_bytes())
    for c in old.schema.columns:
        c.n_missing, c.missing_cost = None, None
    old = FittedVAE.from_bytes(old.to_bytes())  # written without the keys, still loads
    assert all(c.n_missing is None for c in old.schema.columns)
    tensors = old.prepare(frame.iloc[:50].assign(kind="new", x=np.nan))
    s = old.score_terms(tensors)
    assert s.status_per_feature is None
    np.testing.assert_array_equal(s.elbo, s.recon_per_feature.sum(axis=1) - s.kl)
    ex = old.explain(tensors)
    assert list(ex.columns) == old.column_names + ["kl"]
    assert np.all(ex[["kind", "x"]].to_numpy() == 0)  # the old behaviour: 0 nats


def test_unseen_levels_are_searched_in_bounded_blocks_with_the_same_result(
        complete, monkeypatch) -> None:
    from vaekit.fitted import scoring

    det, frame = complete
    changed = frame.copy()
    changed["kind"] = "never-seen"
    whole = det.anomaly_score(changed)
    # 3 candidate rows per block: one row at a time for the 4-level column.
    monkeypatch.setattr(scoring, "_CANDIDATE_ROWS", 3)
    np.testing.assert_array_equal(det.anomaly_score(changed), whole)
