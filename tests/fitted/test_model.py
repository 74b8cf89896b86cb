"""FittedVAE: the fitted model behind the estimators (vaekit.fitted.model)."""

import json

import numpy as np
import pandas as pd
import pytest

from vaekit import VAEAnomalyDetector, VAECompressor
from vaekit.errors import DataError, FileFormatError
from vaekit.fitted import FittedVAE, as_fitted
from vaekit.fitted.checks import check_model_meta
from vaekit.fitted.model_file import dump_model, parse_model


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150),
                         "c": rng.choice(["x", "y", "z"], size=150)})


@pytest.fixture(scope="module")
def detector(frame: pd.DataFrame) -> VAEAnomalyDetector:
    return VAEAnomalyDetector(epochs=3, random_state=0).fit(frame)


def test_estimator_holds_a_fitted_model_and_views_it(detector: VAEAnomalyDetector) -> None:
    fitted = detector.fitted_
    assert isinstance(fitted, FittedVAE) and as_fitted(detector) is fitted
    assert as_fitted(fitted) is fitted
    assert detector.model_ is fitted.network and detector.schema_ is fitted.schema
    assert fitted.estimator == "VAEAnomalyDetector" and fitted.column_names == ["a", "b", "c"]
    assert fitted.feature_names == fitted.schema.model_order


def test_as_fitted_refuses_an_unfitted_estimator() -> None:
    with pytest.raises(TypeError, match="not fitted"):
        as_fitted(VAEAnomalyDetector())
    with pytest.raises(TypeError):
        as_fitted("model.vaekit")


def test_scores_and_codes_equal_the_estimators(detector, frame) -> None:
    fitted = detector.fitted_
    tensors = fitted.prepare(frame)
    np.testing.assert_array_equal(-fitted.score_terms(tensors).elbo, detector.anomaly_score(frame))
    pd.testing.assert_frame_equal(fitted.explain(tensors, index=frame.index),
                                  detector.explain(frame))
    assert fitted.threshold() == detector.threshold_
    assert fitted.threshold(0.1) == pytest.approx(np.quantile(detector.decision_scores_, 0.9))


def test_bytes_round_trip_is_exact(detector, frame) -> None:
    blob = detector.to_bytes()
    back = FittedVAE.from_bytes(blob)
    assert back.to_bytes() == blob and back.fingerprint() == detector.fitted_.fingerprint()
    np.testing.assert_array_equal(back.score_terms(back.prepare(frame)).elbo,
                                  detector.score_samples(frame))


def test_prepare_names_the_row_and_column_of_a_bad_value(detector, frame) -> None:
    bad = frame.head(5).copy()
    bad["a"] = bad["a"].astype(object)
    bad.loc[3, "a"] = "oops"
    with pytest.raises(DataError) as info:
        detector.fitted_.prepare(bad)
    assert info.value.row == 3 and info.value.column == "a"


def test_a_compressor_has_no_threshold_and_a_stored_quantizer(frame) -> None:
    comp = VAECompressor(epochs=3, random_state=0).fit(frame[["a", "b"]])
    assert comp.fitted_.quantizer is comp.quantizer_
    assert comp.fitted_.default_quantizer() is comp.quantizer_
    with pytest.raises(ValueError, match="no threshold"):
        comp.fitted_.threshold()
    codes = comp.fitted_.encode_means(comp.fitted_.prepare(frame[["a", "b"]]))
    np.testing.assert_array_equal(codes, comp.transform(frame[["a", "b"]]))
    assert comp.fitted_.empty_output().shape == (0, 2)


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.pop("fitted"), "lacks the 'fitted'"),
    (lambda m: m["fitted"].pop("schema"), "fitted.schema"),
    (lambda m: m["fitted"].__setitem__("seed", "7"), "fitted.seed"),
    (lambda m: m["fitted"].__setitem__("input_kind", "audio"), "unknown input kind"),
    (lambda m: m.__setitem__("params", []), "'params'"),
])
def test_malformed_metadata_with_a_valid_checksum_is_refused(detector, mutate, message) -> None:
    tensors, meta = parse_model(detector.to_bytes())
    meta.pop("fingerprint")
    meta.pop("vaekit_version")
    mutate(meta)
    with pytest.raises(FileFormatError, match=message):
        FittedVAE.from_bytes(dump_model(tensors, meta))


def test_check_model_meta_accepts_what_vaekit_writes(detector) -> None:
    _, meta = parse_model(detector.to_bytes())
    check_model_meta(json.loads(json.dumps(meta)), "x")
