"""Image anomaly scores (issue 18), exactly.

The default image detector: a shared-scale pixel likelihood, score
``-elbo(x) - min(L_zlib(x), cap)`` with ``cap`` the largest training image's code
length; ``complexity=None`` scores ``-elbo(x)``.  These tests check the formulas, that
the named terms add up, that the CLI gives the same numbers, that a model file keeps
them, and that image models written before (no cap; no ``image_scale`` /
``complexity`` in the config) still load and score as they did.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import vaekit
from vaekit import VAEAnomalyDetector, VAECompressor
from vaekit.data.images import complexity_nats
from vaekit.estimators.persistence import from_model_data
from vaekit.fitted import FittedVAE
from vaekit.fitted.model_file import parse_model

from ..conftest import run_cli


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Small 12x12 'strokes on black' images plus a few noisy ones, uint8."""
    rng = np.random.default_rng(0)
    x = np.zeros((60, 12, 12), dtype=np.uint8)
    for i in range(60):
        col = rng.integers(3, 9)
        x[i, 2:10, col:col + 2] = rng.integers(150, 256)
    x[-5:] = rng.integers(0, 256, size=(5, 12, 12), dtype=np.uint8)
    return x


@pytest.fixture(scope="module")
def default(images: np.ndarray) -> VAEAnomalyDetector:
    """Without the complexity correction: the plain shared-scale bound."""
    return VAEAnomalyDetector(epochs=2, random_state=0, n_samples=4,
                              complexity=None).fit(images[:50])


@pytest.fixture(scope="module")
def detector(images: np.ndarray) -> VAEAnomalyDetector:
    """The default image detector: complexity-corrected (trained on strokes only, so
    the five noise images at the end are more complex than any training image)."""
    return VAEAnomalyDetector(epochs=2, random_state=0, n_samples=4).fit(images[:50])


def _capped_complexity(detector: VAEAnomalyDetector, images: np.ndarray) -> np.ndarray:
    return np.minimum(complexity_nats(detector.fitted_.prepare(images)["x"]),
                      detector.config_["complexity_cap"])


def test_complexity_is_the_documented_zlib_formula(images: np.ndarray) -> None:
    x = torch.from_numpy(images[:, None].astype(np.float32) / 255.0)
    got = complexity_nats(x)
    want = [8 * len(zlib.compress(img.tobytes(), 9)) * math.log(2.0) for img in images]
    np.testing.assert_array_equal(got, np.asarray(want))
    np.testing.assert_array_equal(complexity_nats(x), got)  # deterministic
    np.testing.assert_array_equal(complexity_nats(x.numpy()), got)  # tensor or array


def test_plain_image_model_scores_the_shared_scale_bound(default: VAEAnomalyDetector,
                                                           images: np.ndarray) -> None:
    config = default.config_
    assert config["architecture"] == "mlp" and config["hidden"] == [256]
    assert config["image_scale"] == "shared" and "complexity" not in config
    lik = default.model_.likelihood
    assert lik.out_channels == 1 and tuple(lik.raw_scale.shape) == (1, 1, 1)
    np.testing.assert_array_equal(default.anomaly_score(images), -default.elbo(images))
    frame = default.explain(images)
    assert list(frame.columns[-1:]) == ["kl"] and frame.shape[1] == 12 * 12 + 1
    np.testing.assert_allclose(frame.sum(axis=1).to_numpy(), default.anomaly_score(images),
                               rtol=1e-10, atol=1e-6)


def test_shared_scale_pixel_terms_are_the_gaussian_of_the_8bit_level(
        default: VAEAnomalyDetector, images: np.ndarray) -> None:
    """Each pixel's term: log N(x; mean, sigma^2) + log(1/255), one sigma for all pixels."""
    lik = default.model_.likelihood
    x = torch.from_numpy(default.fitted_.prepare(images[:3])["x"])
    params = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = lik.log_prob(params, {"x": x}).double()
        sigma = float(torch.nn.functional.softplus(lik.raw_scale).item() + lik.min_scale)
    mean = torch.sigmoid(params).double().flatten(1)
    want = (-0.5 * math.log(2 * math.pi) - math.log(sigma)
            - 0.5 * ((x.double().flatten(1) - mean) / sigma) ** 2 - math.log(255.0))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_default_is_complexity_corrected_with_the_training_cap(
        detector: VAEAnomalyDetector, images: np.ndarray) -> None:
    config = detector.config_
    assert config["complexity"] == "zlib" and config["image_scale"] == "shared"
    train = complexity_nats(detector.fitted_.prepare(images[:50])["x"])
    assert config["complexity_cap"] == train.max()
    # The noise images take more nats than any training image: each is credited the cap.
    noise = complexity_nats(detector.fitted_.prepare(images[-5:])["x"])
    assert (noise > train.max()).all()
    frame = detector.explain(images[-5:])
    np.testing.assert_array_equal(frame["complexity (zlib)"].to_numpy(),
                                  np.full(5, -train.max()))


def test_anomaly_score_is_minus_elbo_minus_capped_complexity(detector: VAEAnomalyDetector,
                                                             images: np.ndarray) -> None:
    expected = -detector.elbo(images) - _capped_complexity(detector, images)
    np.testing.assert_array_equal(detector.anomaly_score(images), expected)
    np.testing.assert_array_equal(detector.score_samples(images), -expected)
    # predict / decision_function use the same score as the threshold.
    assert np.array_equal(detector.predict(images) == -1,
                          detector.anomaly_score(images) > detector.threshold_)
    train = detector.fitted_.decision_scores
    np.testing.assert_allclose(train, detector.anomaly_score(images[:50]), rtol=0, atol=1e-9)


def test_explain_terms_sum_to_the_score(detector: VAEAnomalyDetector,
                                        images: np.ndarray) -> None:
    frame = detector.explain(images)
    assert "complexity (zlib)" in frame.columns and "kl" in frame.columns
    np.testing.assert_array_equal(frame["complexity (zlib)"].to_numpy(),
                                  -_capped_complexity(detector, images))
    np.testing.assert_allclose(frame.sum(axis=1).to_numpy(), detector.anomaly_score(images),
                               rtol=1e-10, atol=1e-6)
    # Without the complexity column: the negative bound, split per pixel.
    pixels = frame.drop(columns=["complexity (zlib)"]).sum(axis=1).to_numpy()
    np.testing.assert_allclose(pixels, -detector.elbo(images), rtol=1e-10, atol=1e-6)


def test_model_file_round_trips_the_score_exactly(detector: VAEAnomalyDetector,
                                                  images: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "img.vaekit"
    detector.save(path)
    loaded = vaekit.load(path)
    assert loaded.config_["complexity"] == "zlib"
    assert loaded.config_["complexity_cap"] == detector.config_["complexity_cap"]
    np.testing.assert_array_equal(loaded.anomaly_score(images), detector.anomaly_score(images))
    assert loaded.threshold_ == detector.threshold_


def test_cli_scores_equal_python_scores(detector: VAEAnomalyDetector, images: np.ndarray,
                                        tmp_path: Path) -> None:
    model, src, out = tmp_path / "img.vaekit", tmp_path / "imgs.npz", tmp_path / "s.csv"
    detector.save(model)
    np.savez(src, X=images)
    result = run_cli("score", src, "-m", model, "-o", out, "--explain", "2", "-q")
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out).sort_values("line")
    np.testing.assert_allclose(scored["anomaly_score"].to_numpy(),
                               np.round(detector.anomaly_score(images), 6), rtol=0, atol=1e-9)
    flagged = scored["is_anomaly"].to_numpy().astype(bool)
    assert np.array_equal(flagged, detector.anomaly_score(images) > detector.threshold_)


def _old_style_image_detector(images: np.ndarray) -> bytes:
    """An image detector file as written before image_scale/complexity existed: the
    per-pixel-scale network, plain negative-bound training scores."""
    comp = VAECompressor(epochs=1, random_state=0, architecture="mlp").fit(images[:50])
    fitted = comp.fitted_
    assert "image_scale" not in fitted.config and "complexity" not in fitted.config
    raw = fitted.score_terms(fitted.prepare(images[:50]), n_samples=4)
    old = FittedVAE(network=fitted.network, schema=fitted.schema, config=fitted.config,
                    seed=fitted.seed, input_kind="image", input_form="array",
                    history=fitted.history, latent_stats=fitted.latent_stats,
                    n_features_in=fitted.n_features_in, estimator="VAEAnomalyDetector",
                    params={k: v for k, v in {**VAEAnomalyDetector(n_samples=4).get_params(),
                                              "n_jobs": None}.items()
                            if k != "complexity"},  # the parameter came later
                    extra={"decision_scores": (-raw.elbo).tolist()})
    return old.to_bytes()


def test_old_image_models_load_and_score_as_before(images: np.ndarray) -> None:
    blob = _old_style_image_detector(images)
    tensors, meta = parse_model(blob)
    assert "likelihood.raw_scale" not in tensors
    det = from_model_data(tensors, meta)
    fitted = det.fitted_
    # No fitted.noise in the file: torch's draws, on the torch backend.
    assert fitted.noise_rule is None and fitted.backend == "torch"
    raw = fitted.score_terms(fitted.prepare(images), n_samples=4)
    np.testing.assert_array_equal(det.anomaly_score(images), -raw.elbo)
    np.testing.assert_array_equal(det.elbo(images), raw.elbo)
    assert "complexity (zlib)" not in det.explain(images).columns
    assert det.complexity is None  # get_params says how it scores, not today's default
    # Saved again, it stays an old-style model (nothing new is written into it).
    again = parse_model(det.to_bytes())[1]["fitted"]["config"]
    assert "image_scale" not in again and "complexity" not in again


def test_models_without_the_cap_subtract_the_whole_code_length(
        detector: VAEAnomalyDetector, images: np.ndarray) -> None:
    """A complexity-corrected model file written before the cap existed scores as then."""
    tensors, meta = parse_model(detector.to_bytes())
    del meta["fitted"]["config"]["complexity_cap"]
    old = from_model_data(tensors, meta)
    full = complexity_nats(old.fitted_.prepare(images)["x"])
    np.testing.assert_array_equal(old.anomaly_score(images), -old.elbo(images) - full)
    assert (old.anomaly_score(images[-5:]) < detector.anomaly_score(images[-5:])).all()


def test_training_trims_images_by_loss_minus_complexity(images: np.ndarray) -> None:
    """The detector hands the training loop each image's complexity as its trim offset
    (the same per-row term the score subtracts), and records the cap in the config."""
    from vaekit.training.elbo import TRIM_OFFSET

    det = VAEAnomalyDetector()
    tensors = {"x": torch.from_numpy(images[:, None].astype(np.float32) / 255.0)}
    config: dict = {"complexity": "zlib"}
    data = det._training_data(config, tensors)
    want = complexity_nats(tensors["x"])
    np.testing.assert_allclose(data[TRIM_OFFSET].numpy(), want, rtol=1e-6)
    assert config["complexity_cap"] == want.max() and data["x"] is tensors["x"]
    plain: dict = {}
    assert det._training_data(plain, tensors) is tensors and plain == {}
