"""Model files keep 1,001 quantiles of the training scores, not one score per row.

The file size does not grow with the training rows, thresholds read off the quantile
grid equal ``np.quantile`` of the scores (exactly on the grid, within one grid step
elsewhere), and files that kept every score still load.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vaekit import VAEAnomalyDetector
from vaekit.errors import FileFormatError
from vaekit.estimators.persistence import estimator_for
from vaekit.fitted import FittedVAE
from vaekit.fitted.checks import check_model_meta
from vaekit.fitted.model_file import dump_model, parse_model
from vaekit.fitted.scoring import (
    QUANTILE_GRID,
    quantile_from_grid,
    score_quantiles,
    tukey_threshold,
)

from ..conftest import run_cli

# Shares on the grid (1000 c is an integer): exact.  Off the grid: within one step.
ON_GRID = [0.5, 0.25, 0.1, 0.05, 0.01, 0.001]
OFF_GRID = [0.0123, 0.0371, 0.2345, 0.00042]


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"a": x, "b": 2 * x + rng.normal(scale=0.3, size=n),
                         "c": rng.exponential(size=n)})


def _detector(n: int) -> VAEAnomalyDetector:
    # One pass of large batches: the fit is quick, while every row is scored and kept.
    return VAEAnomalyDetector(random_state=0, epochs=1, batch_size=2048, hidden_dims=[8],
                              latent_dim=2, n_samples=1).fit(_table(n))


@pytest.fixture(scope="module")
def big() -> VAEAnomalyDetector:
    return _detector(50_000)


def test_file_size_does_not_grow_with_training_rows(big: VAEAnomalyDetector) -> None:
    small = _detector(2_000)
    assert len(small.decision_scores_) == 2_000 and len(big.decision_scores_) == 50_000
    # 50,000 scores as JSON would take ~1 MB; the quantile grid is the same size for both.
    assert abs(len(big.to_bytes()) - len(small.to_bytes())) < 1024
    meta = parse_model(big.to_bytes())[1]["fitted"]
    assert "decision_scores" not in meta
    assert meta["score_quantiles"]["n"] == 50_000
    assert len(meta["score_quantiles"]["q"]) == QUANTILE_GRID + 1


def test_thresholds_match_the_exact_quantiles(big: VAEAnomalyDetector) -> None:
    scores = big.decision_scores_
    fitted = big.fitted_
    q = fitted.score_quantiles
    assert q[0] == scores.min() and q[-1] == scores.max()
    for c in ON_GRID:
        assert fitted.threshold(c) == pytest.approx(np.quantile(scores, 1 - c), rel=1e-12, abs=0)
    for c in OFF_GRID:
        k = int(np.floor((1 - c) * QUANTILE_GRID))
        step = q[k + 1] - q[k]  # the stated bound: one grid step
        assert abs(fitted.threshold(c) - np.quantile(scores, 1 - c)) <= step + 1e-12
    # "auto" (Tukey's fence) needs the quartiles, grid points: exact.
    assert fitted.threshold("auto") == tukey_threshold(scores)
    assert big.threshold_ == tukey_threshold(scores)


def test_grid_reading_is_exact_on_the_grid() -> None:
    scores = np.random.default_rng(3).gamma(2.0, size=777)
    q = score_quantiles(scores)
    for level in (0.0, 0.001, 0.25, 0.9, 0.999, 1.0):
        assert quantile_from_grid(q, level) == pytest.approx(np.quantile(scores, level),
                                                             rel=1e-12, abs=0)


def test_contamination_changes_after_load(big: VAEAnomalyDetector) -> None:
    loaded = estimator_for(FittedVAE.from_bytes(big.to_bytes()))
    assert loaded.threshold_ == big.threshold_  # the same before saving and after loading
    for c in ON_GRID + OFF_GRID:
        loaded.set_params(contamination=c)
        assert loaded.threshold_ == big.fitted_.threshold(c) and loaded.offset_ == -loaded.threshold_
    loaded.set_params(contamination=0.1)
    assert loaded.threshold_ == pytest.approx(np.quantile(big.decision_scores_, 0.9), rel=1e-12)
    # After fit, labels_ follow a new contamination too.
    big.set_params(contamination=0.05)
    try:
        assert big.labels_.sum() == (big.decision_scores_ > big.threshold_).sum()
        assert big.threshold_ == pytest.approx(np.quantile(big.decision_scores_, 0.95), rel=1e-12)
    finally:
        big.set_params(contamination="auto")


def test_loaded_model_has_no_per_row_scores(big: VAEAnomalyDetector) -> None:
    loaded = estimator_for(FittedVAE.from_bytes(big.to_bytes()))
    for name in ("decision_scores_", "labels_"):
        with pytest.raises(AttributeError, match="kept in memory after fit only"):
            getattr(loaded, name)
    assert not hasattr(loaded, "decision_scores_")
    with pytest.raises(AttributeError, match="no attribute 'nonsense_'"):
        loaded.nonsense_  # noqa: B018
    # The report's histogram still has the distribution: the quantiles.
    np.testing.assert_array_equal(loaded.fitted_.decision_scores, big.fitted_.score_quantiles)


def _old_format(det: VAEAnomalyDetector) -> bytes:
    """The detector as older vaekit wrote it: every training score under decision_scores."""
    tensors, meta = parse_model(det.to_bytes())
    meta.pop("fingerprint")
    meta.pop("vaekit_version")
    del meta["fitted"]["score_quantiles"]
    meta["fitted"]["decision_scores"] = det.decision_scores_.tolist()
    return dump_model(tensors, meta)


def test_old_format_file_loads(tmp_path) -> None:
    det = _detector(3_000)
    blob = _old_format(det)
    assert len(blob) > len(det.to_bytes()) + 20_000  # 3,000 scores as JSON
    loaded = estimator_for(FittedVAE.from_bytes(blob))
    np.testing.assert_array_equal(loaded.fitted_.score_quantiles, det.fitted_.score_quantiles)
    assert loaded.threshold_ == det.threshold_
    assert loaded.fitted_.threshold(0.1) == det.fitted_.threshold(0.1)
    # Saved again, it is written in the new form.
    again = parse_model(loaded.to_bytes())[1]["fitted"]
    assert "decision_scores" not in again and again["score_quantiles"]["n"] == 3_000
    # vaekit info reads the old file too.
    path = tmp_path / "old.vaekit"
    path.write_bytes(blob)
    info = run_cli("info", path, "--json")
    assert info.exit_code == 0, info.output
    facts = json.loads(info.output)
    assert facts["anomaly"]["threshold_nats"] == pytest.approx(det.threshold_, rel=1e-12)
    assert facts["anomaly"]["training_scores"] == 3_000


def _meta(det: VAEAnomalyDetector) -> dict:
    return parse_model(det.to_bytes())[1]


@pytest.mark.parametrize("mutate, key", [
    (lambda s: s["q"].reverse(), r"fitted\.score_quantiles\.q\[1\]' .*not sorted"),
    (lambda s: s["q"].pop(), r"fitted\.score_quantiles\.q' has 1000 entries"),
    (lambda s: s["q"].extend([1e9] * 10**6), r"fitted\.score_quantiles\.q' has 1001001"),
    (lambda s: s.update(n=0), r"fitted\.score_quantiles\.n' is 0"),
    (lambda s: s.update(q="abc"), r"fitted\.score_quantiles\.q' is str"),
    (lambda s: s["q"].__setitem__(5, "x"), r"fitted\.score_quantiles\.q\[5\]' is str"),
])
def test_malformed_quantiles_are_refused(big: VAEAnomalyDetector, mutate, key) -> None:
    meta = _meta(big)
    mutate(meta["fitted"]["score_quantiles"])
    with pytest.raises(FileFormatError, match=key):
        check_model_meta(meta, "m.vaekit")


def test_both_score_forms_are_refused(big: VAEAnomalyDetector) -> None:
    meta = _meta(big)
    meta["fitted"]["decision_scores"] = [1.0, 2.0]
    with pytest.raises(FileFormatError, match="beside fitted.score_quantiles"):
        check_model_meta(meta, "m.vaekit")


@pytest.mark.parametrize("ids, key", [
    (["a"], r"fitted\.id_columns\[0\]' is 'a', a model column"),
    ([f"id{i}" for i in range(65)], r"fitted\.id_columns' has 65 entries"),
    (["x", "x"], r"fitted\.id_columns' repeats a name"),
    ([7], r"fitted\.id_columns\[0\]' is int"),
    ("row_id", r"fitted\.id_columns' is str"),
])
def test_malformed_id_columns_are_refused(big: VAEAnomalyDetector, ids, key) -> None:
    meta = _meta(big)
    meta["fitted"]["id_columns"] = ids
    with pytest.raises(FileFormatError, match=key):
        check_model_meta(meta, "m.vaekit")


def test_id_columns_round_trip(big: VAEAnomalyDetector) -> None:
    fitted = FittedVAE.from_bytes(big.to_bytes())
    assert fitted.id_columns == []
    fitted.id_columns = ["row_id", "batch"]
    assert FittedVAE.from_bytes(fitted.to_bytes()).id_columns == ["row_id", "batch"]
    with pytest.raises(ValueError, match="are model columns"):
        fitted.id_columns = ["b"]
