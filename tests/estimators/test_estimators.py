"""scikit-learn behaviour of VAEAnomalyDetector and VAECompressor."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.metrics import make_scorer, roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import vaekit
from vaekit import VAEAnomalyDetector, VAECompressor

from ..conftest import adbench_table


# Few epochs: the checks fit hundreds of times and test behaviour, not quality.
@parametrize_with_checks([VAEAnomalyDetector(epochs=3, random_state=0),
                          VAECompressor(epochs=3, random_state=0)])
def test_sklearn_compatible(estimator, check) -> None:
    check(estimator)


def test_detector_api_and_pyod_attributes(demo_features, fitted_demo_detector) -> None:
    det = fitted_demo_detector
    X = demo_features.head(50)
    s = det.score_samples(X)
    np.testing.assert_array_equal(det.anomaly_score(X), -s)
    np.testing.assert_allclose(det.decision_function(X), s - det.offset_)
    assert set(np.unique(det.predict(X))) <= {-1, 1}
    assert det.threshold_ == -det.offset_
    assert det.labels_.shape == det.decision_scores_.shape == (len(demo_features),)
    assert det.labels_.sum() == (det.decision_scores_ > det.threshold_).sum()
    np.testing.assert_array_equal(det.feature_names_in_, demo_features.columns)


def test_contamination_fraction_sets_threshold() -> None:
    X = np.random.default_rng(0).normal(size=(400, 3))
    det = VAEAnomalyDetector(contamination=0.1, epochs=3, random_state=0).fit(X)
    assert abs(det.labels_.mean() - 0.1) < 0.01
    assert (det.fit_predict(X) == -1).mean() == pytest.approx(0.1, abs=0.01)


def test_explain_columns_sum_to_anomaly_score(demo_features, fitted_demo_detector) -> None:
    X = demo_features.iloc[100:140]
    e = fitted_demo_detector.explain(X)
    names = list(demo_features.columns)
    assert list(e.columns) == names + [f"{n} (missing)" for n in names] + ["kl"]
    np.testing.assert_allclose(e.sum(axis=1).to_numpy(), fitted_demo_detector.anomaly_score(X),
                               rtol=1e-12, atol=1e-9)
    assert (e.index == X.index).all()


def test_scores_do_not_depend_on_batching(demo_features, fitted_demo_detector) -> None:
    det = fitted_demo_detector
    X = demo_features.head(600)
    full = det.score_samples(X)
    pieces = np.concatenate([det.score_samples(X.iloc[i : i + 7]) for i in range(0, 600, 7)])
    single = np.concatenate([det.score_samples(X.iloc[[i]]) for i in range(25)])
    shuffled = det.score_samples(X.iloc[::-1])[::-1]
    np.testing.assert_array_equal(full, pieces)
    np.testing.assert_array_equal(full[:25], single)
    np.testing.assert_array_equal(full, shuffled)
    np.testing.assert_array_equal(full, det.score_samples(X))


def test_demo_anomalies_score_higher(demo, fitted_demo_detector, demo_features) -> None:
    _, labels = demo
    scores = fitted_demo_detector.anomaly_score(demo_features)
    auc = roc_auc_score(labels["is_anomaly"], scores)
    assert auc > 0.75, auc
    extreme = labels["anomaly_kind"].fillna("").eq("extreme_value") | labels["is_anomaly"].eq(0)
    assert roc_auc_score(labels["is_anomaly"][extreme], scores[extreme]) > 0.95


def test_missing_values_and_unseen_categories_are_scored(demo_features, fitted_demo_detector):
    X = demo_features.head(5).copy()
    X.loc[0, "unit_price"] = np.nan
    X.loc[1, "region"] = "atlantis"
    s = fitted_demo_detector.score_samples(X)
    assert np.isfinite(s).all()
    e = fitted_demo_detector.explain(X)
    # The blank value is marginalized; the blank itself costs nats (issue 18).
    assert e.loc[0, "unit_price"] == 0.0 and e.loc[0, "unit_price (missing)"] > 0.0
    assert (e.loc[1:, "unit_price (missing)"] == 0.0).all()
    # An unseen category costs more than the seen levels of the other rows.
    assert e.loc[1, "region"] > e.loc[[0, 2, 3, 4], "region"].max()
    assert e.loc[1, "region (missing)"] == 0.0


def test_pipeline_with_column_transformer_and_grid_search(demo, demo_features) -> None:
    _, labels = demo
    X, y = demo_features.head(900), labels["is_anomaly"].head(900).to_numpy()
    numeric = ["quantity", "unit_price", "discount_rate", "amount", "delivery_days"]
    pre = ColumnTransformer([
        ("num", StandardScaler(), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["region"]),
    ])
    pipe = Pipeline([("pre", pre), ("vae", VAEAnomalyDetector(epochs=5, random_state=0))])
    pipe.fit(X)
    assert pipe.predict(X).shape == (900,)

    def auc(est, X_, y_):
        return roc_auc_score(y_, -est.score_samples(X_))

    grid = GridSearchCV(pipe, {"vae__latent_dim": [2, 4]}, scoring=auc, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["vae__latent_dim"] in (2, 4)
    assert 0.0 <= grid.best_score_ <= 1.0
    scorer = make_scorer(roc_auc_score)
    assert callable(scorer)


def test_compressor_transform_inverse_and_set_output(demo_features) -> None:
    X = demo_features.head(400)
    comp = VAECompressor(epochs=5, random_state=0).fit(X)
    Z = comp.transform(X)
    assert Z.shape == (400, comp.model_.latent_dim)
    names = comp.get_feature_names_out()
    assert names[0] == "latent0"
    R = comp.inverse_transform(Z)
    assert list(R.columns) == list(X.columns)
    assert (R.dtypes == X.dtypes).all()
    assert set(R["region"]) <= set(X["region"].dropna())
    comp.set_output(transform="pandas")
    out = comp.transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)


def test_clone_pickle_and_save(tmp_path, demo_features) -> None:
    X = demo_features.head(300)
    det = VAEAnomalyDetector(epochs=3, random_state=0, latent_dim=3)
    assert clone(det).get_params() == det.get_params()
    det.fit(X)
    again = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    det.save(tmp_path / "d.vaekit")
    loaded = vaekit.load(tmp_path / "d.vaekit")
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))
    np.testing.assert_array_equal(loaded.feature_names_in_, det.feature_names_in_)


def test_image_detector_digits(digits_images) -> None:
    from sklearn.datasets import load_digits

    y = load_digits().target
    normal = digits_images[y == 0]
    det = VAEAnomalyDetector(epochs=60, random_state=0).fit(normal[:150])
    # Images default to the MLP with the shared-scale pixel likelihood (issue 18).
    assert det.config_["architecture"] == "mlp" and det.config_["image_scale"] == "shared"
    s = det.anomaly_score(digits_images[:400])
    assert roc_auc_score(y[:400] != 0, s) > 0.85
    e = det.explain(digits_images[:2])
    assert e.shape[1] == 64 + 2  # pixels, kl, and the complexity correction
    assert list(e.columns[-2:]) == ["complexity (zlib)", "kl"]
    np.testing.assert_allclose(e.sum(axis=1), s[:2], rtol=1e-12, atol=1e-9)


def test_adbench_table_if_available() -> None:
    X, y = adbench_table("38_thyroid.npz")
    from sklearn.model_selection import train_test_split

    Xtr, Xte, _, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
    det = VAEAnomalyDetector(random_state=0).fit(Xtr)
    assert roc_auc_score(yte, det.anomaly_score(Xte)) > 0.9


def test_extreme_values_fit_and_score_finite() -> None:
    # One value at 1e30 in training: compressed (asinh) instead of overflowing float32.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[5, 1] = 1e30
    det = VAEAnomalyDetector(random_state=0).fit(X)
    assert det.schema_.specs("numeric")[1].transform == "asinh"
    assert int(np.argmax(det.decision_scores_)) == 5
    # Values never seen in training, far outside float32: finite scores, ranked first.
    clean = VAEAnomalyDetector(random_state=0).fit(rng.normal(size=(300, 3)))
    T = rng.normal(size=(4, 3))
    T[0, 1], T[1, 1], T[2, 0] = 1e30, 1e10, 1e300
    scores = clean.anomaly_score(T)
    assert np.isfinite(scores).all()
    assert scores[:3].min() > scores[3]
    assert np.isfinite(clean.explain(T).to_numpy()).all()
    comp = VAECompressor(bytes_per_row=4, random_state=0, epochs=3).fit(X)
    assert np.isfinite(comp.decompress(comp.compress(X))).all()


def test_extreme_values_in_heavy_tailed_columns() -> None:
    # Cauchy columns get the asinh compression; its log-Jacobian must not overflow
    # (1e300 used to give a NaN score and stop training).
    rng = np.random.default_rng(0)
    X = rng.standard_cauchy(size=(300, 3))
    det = VAEAnomalyDetector(random_state=0, epochs=5).fit(X)
    assert all(c.transform == "asinh" for c in det.schema_.specs("numeric"))
    T = rng.normal(size=(3, 3))
    T[0, 0], T[1, 0] = 1e300, 1e200
    scores = det.anomaly_score(T)
    assert np.isfinite(scores).all() and scores[0] > scores[1] > scores[2]
    assert np.isfinite(det.explain(T).to_numpy()).all()
    X[5, 0] = 1e300
    assert int(np.argmax(VAEAnomalyDetector(random_state=0, epochs=5).fit(X).decision_scores_)) == 5
    # A budgeted compressor's linear path undoes the asinh: no inf for unseen extremes.
    comp = VAECompressor(bytes_per_row=4, random_state=0, epochs=3).fit(X[:, 1:])
    T = rng.normal(size=(2, 2))
    T[0, 0] = 1e40
    assert np.isfinite(comp.transform(T)).all()
    assert np.isfinite(comp.decompress(comp.compress(T))).all()


def test_auto_hidden_width_counts_values_not_masks(demo, demo_features) -> None:
    # 21 numeric columns: the encoder sees 42 inputs (values + observed-masks). The
    # detector sizes its layers on the 21 values (2x -> 64 units); the compressor keeps
    # 2x the whole encoder input (-> 128), which its rate-distortion benchmark prefers.
    X = np.random.default_rng(0).normal(size=(200, 21))
    det = VAEAnomalyDetector(random_state=0, epochs=1).fit(X)
    comp = VAECompressor(random_state=0, epochs=1).fit(X)
    assert det.config_["d_in"] == 42
    assert det.config_["hidden"] == [64, 64]
    assert comp.config_["hidden"] == [128, 128]
    # Mixed table: 7 numeric + 1 binary + 13 one-hot levels = 21 values -> 2x = 42 -> 64.
    assert det.schema_.value_width == 21
    # (The demo's mistyped one-off labels, kind "unseen_category", left out.)
    clean = demo_features[demo[1]["anomaly_kind"].fillna("").ne("unseen_category").to_numpy()]
    mixed = VAEAnomalyDetector(random_state=0, epochs=1).fit(clean)
    assert mixed.schema_.value_width == 21 and mixed.config_["hidden"] == [64, 64]
    # An explicit hidden_dims is used as given.
    assert VAEAnomalyDetector(hidden_dims=[8], epochs=1).fit(X).config_["hidden"] == [8]


def test_compressor_round_trips_nullable_and_narrow_dtypes():
    # pandas' nullable Int64 is not a numpy dtype name: decoding used to crash on it
    df = pd.DataFrame({
        "a": pd.array(np.arange(300) % 7, dtype="Int64"),
        "b": np.random.default_rng(0).normal(size=300).astype("float32"),
        "c": (np.arange(300) % 5).astype("int8"),
    })
    model = VAECompressor(epochs=2, random_state=0).fit(df)
    out = model.inverse_transform(model.transform(df))
    assert out.dtypes.to_dict() == df.dtypes.to_dict()
