"""vaekit.integrations.pyod.VAEOD against the installed PyOD: its conventions, to the letter."""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

import vaekit
from vaekit import VAEAnomalyDetector
from vaekit.metrics import anomaly_roc_auc

try:  # the integration is optional: without PyOD its tests skip, the import hint is tested
    from pyod.models.base import BaseDetector
    from pyod.models.iforest import IForest
    from pyod.utils.utility import standardizer

    from vaekit.integrations.pyod import VAEOD
except ImportError:
    HAVE_PYOD = False
else:
    HAVE_PYOD = True

needs_pyod = pytest.mark.skipif(not HAVE_PYOD, reason='needs PyOD: pip install "vaekit[pyod]"')

CONTAMINATION = 0.03  # the demo holds 90 anomalies in 3,000 rows


@pytest.fixture(scope="module")
def labels(demo) -> np.ndarray:
    return demo[1]["is_anomaly"].to_numpy()


@pytest.fixture(scope="module")
def clf(demo_features) -> Any:
    return VAEOD(contamination=CONTAMINATION, random_state=0).fit(demo_features)


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    """A numeric array with five far-out rows (PyOD's own tools want numeric arrays)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    X[:5] += 8.0
    return X


@needs_pyod
def test_constructor_follows_pyod_and_mirrors_the_estimator() -> None:
    ours = inspect.signature(VAEOD).parameters
    theirs = inspect.signature(VAEAnomalyDetector).parameters
    assert set(ours) == set(theirs)  # every vaekit parameter, no more
    assert list(ours)[0] == "contamination" and ours["contamination"].default == 0.1
    for name, p in theirs.items():
        if name != "contamination":
            assert ours[name].default == p.default, name
    hidden = [16, 8]
    clf = VAEOD(0.2, hidden_dims=hidden, epochs=3)
    assert clf.contamination == 0.2 and clf.hidden_dims is hidden  # stored unchanged
    assert isinstance(clf, BaseDetector)
    with pytest.raises(ValueError, match="contamination must be in"):  # PyOD's own check
        VAEOD(contamination=0.7)


@needs_pyod
def test_fit_sets_pyod_attributes(demo_features, clf) -> None:
    n = len(demo_features)
    assert clf.decision_scores_.shape == (n,) and clf.decision_scores_.dtype == np.float64
    assert clf.threshold_ == pytest.approx(
        np.percentile(clf.decision_scores_, 100 * (1 - CONTAMINATION)))
    assert set(np.unique(clf.labels_)) == {0, 1}
    assert clf.labels_.sum() == pytest.approx(CONTAMINATION * n, abs=1)
    assert clf._classes == 2  # _set_n_classes, which predict_proba needs
    assert isinstance(clf.detector_, VAEAnomalyDetector)
    assert clf.detector_.contamination == CONTAMINATION


@needs_pyod
def test_predict_is_zero_one_and_equals_labels_on_the_training_rows(demo_features, clf) -> None:
    pred = clf.predict(demo_features)
    assert set(np.unique(pred)) == {0, 1}
    np.testing.assert_array_equal(pred, clf.labels_)
    np.testing.assert_array_equal(clf.decision_function(demo_features), clf.decision_scores_)
    # The scikit-learn estimator answers in its own convention: +1 / -1.
    assert set(np.unique(clf.detector_.predict(demo_features))) == {-1, 1}


@needs_pyod
def test_decision_function_is_higher_for_anomalies(demo_features, labels, clf) -> None:
    ours = clf.decision_function(demo_features)
    sk = clf.detector_.decision_function(demo_features)
    # The negative ELBO in nats: the scikit-learn estimator's order, reversed.
    np.testing.assert_array_equal(ours, -clf.detector_.score_samples(demo_features))
    np.testing.assert_array_equal(rankdata(ours), rankdata(-sk))
    auc = roc_auc_score(labels, ours)
    assert auc > 0.7  # the issue: ranking by the estimator's decision_function gave 0.235
    assert roc_auc_score(labels, sk) == pytest.approx(1 - auc)
    assert anomaly_roc_auc(clf, demo_features, labels) == pytest.approx(auc)


@needs_pyod
def test_predict_proba_and_confidence(demo_features, clf) -> None:
    X = demo_features.head(400)
    for method in ("linear", "unify"):
        proba = clf.predict_proba(X, method=method)
        assert proba.shape == (400, 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert ((proba >= 0) & (proba <= 1)).all()
    proba = clf.predict_proba(X)
    # Outlier probability grows with the anomaly score.
    order = np.argsort(clf.decision_function(X))
    assert np.all(np.diff(proba[order, 1]) >= 0)
    pred, conf = clf.predict(X, return_confidence=True)
    assert conf.shape == (400,) and ((conf >= 0) & (conf <= 1)).all()
    np.testing.assert_array_equal(pred, clf.labels_[:400])


@needs_pyod
def test_combination_with_iforest(demo_features, labels, clf) -> None:
    pytest.importorskip("combo")  # pyod.models.combination needs it
    from pyod.models.combination import average, maximization

    numeric = demo_features.select_dtypes("number").fillna(0.0).to_numpy()
    forest = IForest(contamination=CONTAMINATION, random_state=0).fit(numeric)
    train = np.column_stack([clf.decision_scores_, forest.decision_scores_])
    test = np.column_stack([clf.decision_function(demo_features),
                            forest.decision_function(numeric)])
    train_std, test_std = standardizer(train, test)
    for combine in (average, maximization):
        combined = combine(test_std)
        assert combined.shape == (len(numeric),)
        assert roc_auc_score(labels, combined) > 0.6


@needs_pyod
def test_lscp_selects_among_detectors(small) -> None:
    from pyod.models.lscp import LSCP

    lscp = LSCP([VAEOD(epochs=2, random_state=0), IForest(random_state=0)], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LSCP warns about its local region size
        lscp.fit(small)
        scores = lscp.decision_function(small)
    assert scores.shape == (300,) and np.isfinite(scores).all()
    assert set(np.unique(lscp.predict(small))) <= {0, 1}


@needs_pyod
def test_get_params_set_params_clone(small) -> None:
    clf = VAEOD(contamination=0.05, latent_dim=2, epochs=2, random_state=0)
    params = clf.get_params()
    assert params["contamination"] == 0.05 and params["latent_dim"] == 2
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    clf.set_params(latent_dim=3, trim_fraction=0.0)
    clf.fit(small)
    assert clf.detector_.latent_dim == 3 and clf.detector_.trim_fraction == 0.0
    assert clf.detector_.config_["latent_dim"] == 3
    assert not hasattr(clone(clf), "detector_")  # clone is unfitted
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(latent_dims=3)


@needs_pyod
def test_fit_ignores_y_and_warns_like_pyod(small) -> None:
    plain = VAEOD(epochs=2, random_state=0).fit(small)
    y = np.zeros(len(small), dtype=int)
    y[:5] = 1
    with pytest.warns(UserWarning, match="y should not be presented"):
        labelled = VAEOD(epochs=2, random_state=0).fit(small, y)
    np.testing.assert_array_equal(plain.decision_scores_, labelled.decision_scores_)


@needs_pyod
def test_unfitted_and_bad_input_raise(demo_features, clf) -> None:
    with pytest.raises(NotFittedError):
        VAEOD().decision_function(demo_features)
    with pytest.raises(NotFittedError):
        VAEOD().predict(demo_features)
    # The estimator's input checks pass through: a missing column is named.
    with pytest.raises(ValueError, match="amount"):
        clf.decision_function(demo_features.drop(columns=["amount"]))


@needs_pyod
def test_explain_and_save(tmp_path, demo_features, clf) -> None:
    X = demo_features.head(50)
    np.testing.assert_allclose(clf.explain(X).sum(axis=1).to_numpy(), clf.decision_function(X),
                               rtol=1e-5, atol=1e-4)
    path = tmp_path / "pyod.vaekit"
    clf.save(path)
    loaded = vaekit.load(path)
    assert isinstance(loaded, VAEAnomalyDetector)
    np.testing.assert_array_equal(loaded.anomaly_score(X), clf.decision_function(X))


@needs_pyod
def test_dataframe_with_missing_values_and_categories(demo_features) -> None:
    X = demo_features.head(300).copy()
    X.loc[:10, "region"] = np.nan
    assert X["region"].isna().sum() == 11 and X["orders_90d"].isna().any()
    assert not pd.api.types.is_numeric_dtype(X["channel"])
    clf = VAEOD(epochs=2, random_state=0).fit(X)
    assert np.isfinite(clf.decision_function(X)).all()
    assert isinstance(X, pd.DataFrame) and clf.predict_proba(X).shape == (300, 2)


def test_without_pyod_the_import_says_how_to_install(monkeypatch) -> None:
    # Hide PyOD (installed or not) and import the bridge afresh.
    for name in [m for m in sys.modules if m == "pyod" or m.startswith("pyod.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyod", None)
    monkeypatch.delitem(sys.modules, "vaekit.integrations.pyod", raising=False)
    with pytest.raises(ImportError, match=r'pip install "pyod>=2.0" .*vaekit\[pyod\]'):
        importlib.import_module("vaekit.integrations.pyod")
    import vaekit.integrations  # the package itself needs nothing optional

    assert "pyod" in vaekit.integrations.__doc__
