"""vaekit.metrics: anomaly scorers that return ROC-AUC, not scikit-learn's 1 - ROC-AUC."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, get_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vaekit.metrics import (
    anomaly_average_precision,
    anomaly_precision_at_k,
    anomaly_roc_auc,
    anomaly_scores,
    anomaly_scoring,
    make_anomaly_scorer,
    precision_at_k,
)


class AxisDetector(OutlierMixin, BaseEstimator):
    """Scikit-learn sign: ``score_samples`` = -|x[column] - training median| (higher = normal)."""

    def __init__(self, column: int = 0) -> None:
        self.column = column

    def fit(self, X, y=None):
        self.center_ = float(np.median(np.asarray(X)[:, self.column]))
        self.offset_ = -2.0
        return self

    def score_samples(self, X):
        return -np.abs(np.asarray(X)[:, self.column] - self.center_)

    def decision_function(self, X):
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        return np.where(self.decision_function(X) < 0, -1, 1)


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray]:
    """400 rows; the 20 anomalies differ only in column 1 (|x1| = 6), column 0 is noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = np.zeros(400, dtype=int)
    y[::20] = 1
    X[y == 1, 1] = rng.choice([-6.0, 6.0], size=20)
    return X, y


def test_scorer_returns_auc_where_roc_auc_string_returns_one_minus_auc(toy) -> None:
    X, y = toy
    det = AxisDetector(column=1).fit(X)
    auc = anomaly_roc_auc(det, X, y)
    assert auc == pytest.approx(roc_auc_score(y, -det.score_samples(X)))
    assert auc > 0.99
    # The trap, documented: scikit-learn's "roc_auc" ranks by decision_function
    # (higher = more normal) and so returns 1 - AUC for outlier detectors.
    assert get_scorer("roc_auc")(det, X, y) == pytest.approx(1 - auc)


def test_grid_search_with_the_scorer_picks_the_informative_column(toy) -> None:
    X, y = toy
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    good = GridSearchCV(AxisDetector(), {"column": [0, 1]}, scoring=anomaly_roc_auc, cv=cv)
    good.fit(X, y)
    assert good.best_params_ == {"column": 1}
    assert good.best_score_ > 0.99
    # The same search with scoring="roc_auc" picks the useless column: it optimises 1 - AUC.
    trap = GridSearchCV(AxisDetector(), {"column": [0, 1]}, scoring="roc_auc", cv=cv).fit(X, y)
    assert trap.best_params_ == {"column": 0}


def test_isolation_forest_and_pipelines_are_scored_the_right_way_round(toy) -> None:
    X, y = toy
    forest = IsolationForest(random_state=0).fit(X)
    assert anomaly_roc_auc(forest, X, y) > 0.9
    assert get_scorer("roc_auc")(forest, X, y) < 0.1
    pipe = make_pipeline(StandardScaler(), AxisDetector(column=1)).fit(X)
    assert anomaly_roc_auc(pipe, X, y) > 0.99
    search = GridSearchCV(AxisDetector(), {"column": [1]}, scoring=anomaly_roc_auc, cv=2)
    search.fit(X, y)
    np.testing.assert_array_equal(anomaly_scores(search, X), -search.score_samples(X))


def test_pyod_convention_is_recognised_by_class_not_by_import() -> None:
    # A stand-in for pyod.models.base.BaseDetector: decision_function higher = anomalous.
    base = type("BaseDetector", (BaseEstimator,), {"__module__": "pyod.models.base"})

    class HigherIsAnomalous(base):
        def fit(self, X, y=None):
            self.fitted_ = True
            return self

        def decision_function(self, X):
            return np.abs(np.asarray(X)[:, 0])

    X = np.array([[0.1], [5.0], [0.2], [7.0]])
    y = np.array([0, 1, 0, 1])
    det = HigherIsAnomalous().fit(X)
    np.testing.assert_array_equal(anomaly_scores(det, X), [0.1, 5.0, 0.2, 7.0])
    assert anomaly_roc_auc(det, X, y) == 1.0
    # At the end of a pipeline too (Pipeline.decision_function passes the sign through).
    pipe = make_pipeline(StandardScaler(with_mean=False), HigherIsAnomalous()).fit(X)
    assert anomaly_roc_auc(pipe, X, y) == 1.0


def test_labels_in_predict_convention_or_other_values_are_refused(toy) -> None:
    X, y = toy
    det = AxisDetector(column=1).fit(X)
    with pytest.raises(ValueError, match=r"-1 = outlier: pass y == -1"):
        anomaly_roc_auc(det, X, np.where(y == 1, -1, 1))
    with pytest.raises(ValueError, match="1 = anomaly and 0 = normal"):
        anomaly_average_precision(det, X, np.where(y == 1, "bad", "good"))
    with pytest.raises(ValueError, match="one value per row"):
        anomaly_roc_auc(det, X, np.stack([y, y], axis=1))
    # Booleans and 0.0 / 1.0 floats are labels too.
    assert anomaly_roc_auc(det, X, y.astype(bool)) == anomaly_roc_auc(det, X, y.astype(float))


def test_precision_at_k_counts_anomalies_among_the_top_rows() -> None:
    y = [0, 1, 0, 1, 0]
    s = [0.1, 0.9, 0.8, 0.7, 0.2]
    assert precision_at_k(y, s, 2) == 0.5  # rows 1 and 2
    assert precision_at_k(y, s) == 0.5  # k = number of anomalies = 2
    assert precision_at_k(y, s, 3) == pytest.approx(2 / 3)
    assert precision_at_k(y, s, 0.4) == 0.5  # a share: ceil(0.4 * 5) = 2 rows
    assert precision_at_k(y, s, 1) == 1.0
    assert precision_at_k([1, 0, 1], [1.0, 1.0, 0.0], 1) == 1.0  # ties: first row wins
    assert precision_at_k([0, 1, 1], [1.0, 1.0, 0.0], 1) == 0.0
    for bad in (0, 6, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="k must be"):
            precision_at_k(y, s, bad)
    with pytest.raises(ValueError, match="at least one labelled anomaly"):
        precision_at_k([0, 0], [1.0, 2.0])
    with pytest.raises(ValueError, match="5 labels but 4 scores"):
        precision_at_k(y, s[:4], 2)


def test_average_precision_and_precision_at_k_scorers(toy) -> None:
    X, y = toy
    det = AxisDetector(column=0).fit(X)  # a poor detector: scores are not trivially 1
    scores = -det.score_samples(X)
    assert anomaly_average_precision(det, X, y) == pytest.approx(
        average_precision_score(y, scores))
    assert anomaly_precision_at_k(det, X, y) == pytest.approx(precision_at_k(y, scores))
    top10 = make_anomaly_scorer(precision_at_k, k=10)
    assert top10(det, X, y) == pytest.approx(precision_at_k(y, scores, 10))
    assert repr(top10) == "make_anomaly_scorer(precision_at_k, k=10)"
    # Picklable, so GridSearchCV(n_jobs=...) can ship it to worker processes.
    assert pickle.loads(pickle.dumps(top10))(det, X, y) == top10(det, X, y)


def test_multimetric_grid_search(toy) -> None:
    X, y = toy
    search = GridSearchCV(AxisDetector(), {"column": [0, 1]}, scoring=anomaly_scoring(),
                          refit="average_precision", cv=StratifiedKFold(3)).fit(X, y)
    assert search.best_params_ == {"column": 1}
    for name in ("roc_auc", "average_precision", "precision_at_k"):
        assert search.cv_results_[f"mean_test_{name}"][1] > 0.9


def test_an_estimator_without_scores_is_refused(toy) -> None:
    X, y = toy
    with pytest.raises(TypeError, match="StandardScaler has neither score_samples"):
        anomaly_roc_auc(StandardScaler().fit(X), X, y)


def test_vae_detector_on_the_demo(demo, demo_features, fitted_demo_detector) -> None:
    y = demo[1]["is_anomaly"].to_numpy()
    auc = anomaly_roc_auc(fitted_demo_detector, demo_features, y)
    assert auc == pytest.approx(roc_auc_score(y, fitted_demo_detector.anomaly_score(demo_features)))
    assert auc > 0.7
    assert get_scorer("roc_auc")(fitted_demo_detector, demo_features, y) == pytest.approx(1 - auc)
