"""Budgeted compressors start as the PCA codec and train from there (linear path)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from vaekit import VAEAnomalyDetector, VAECompressor, load
from vaekit.codec.quantize import fit_quantizer


def _standardized(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(0)) / X.std(0)


def _low_rank(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 3)) * [3.0, 1.5, 0.7]
    X = Z @ rng.normal(size=(3, 6)) + 0.1 * rng.normal(size=(n, 6))
    return _standardized(X)


def _pca_codec(X: np.ndarray, budget: float) -> tuple[float, np.ndarray]:
    """RMSE and bits of PCA scores through the same quantizer (as the recipe)."""
    pca = PCA(n_components=X.shape[1]).fit(X)
    s = pca.transform(X)
    q = fit_quantizer(center=s.mean(0), scale=s.std(0), precision=np.ones(s.shape[1]),
                      bytes_per_row=0.97 * budget, sample=s)
    rec = pca.inverse_transform(q.decode(q.encode(s)))
    return float(np.sqrt(np.mean((rec - X) ** 2))), np.sort(q.bits)


def _rmse(model: VAECompressor, X: np.ndarray) -> float:
    out = model.decompress(model.compress(X))
    return float(np.sqrt(np.mean((out - X) ** 2)))


def test_untrained_model_is_the_pca_codec():
    X = _low_rank()
    # A vanishing step size: what is kept is the PCA start.
    m = VAECompressor(bytes_per_row=3, learning_rate=1e-12, epochs=2, random_state=0).fit(X)
    pca_rmse, pca_bits = _pca_codec(X, 3)
    np.testing.assert_array_equal(np.sort(m.quantizer_.bits), pca_bits)
    assert _rmse(m, X) == pytest.approx(pca_rmse, rel=0.02)
    assert m.history_[0]["phase"] == "pca"


@pytest.mark.parametrize(("budget", "at_most"), [(1.5, 0.9), (3, 1.03)])
def test_trained_codec_beats_pca_on_a_curved_table(budget, at_most):
    # New rows of a noisy 1-D curve in 4 columns: at 1.5 bytes/row the trained codec
    # clearly wins; at 3 bytes/row it may stay at the PCA start (held-out rows pick),
    # so only "not worse than PCA" is asked, up to the noise of new rows.
    rng = np.random.default_rng(1)
    t = rng.uniform(-2, 2, 1500)
    X = _standardized(np.column_stack([t, np.sin(2 * t), t ** 2, np.cos(3 * t)])
                      + 0.02 * rng.normal(size=(1500, 4)))
    m = VAECompressor(bytes_per_row=budget, epochs=40, random_state=0).fit(X[:1000])
    pca = PCA(n_components=4).fit(X[:1000])
    s_tr, s_te = pca.transform(X[:1000]), pca.transform(X[1000:])
    q = fit_quantizer(center=s_tr.mean(0), scale=s_tr.std(0), precision=np.ones(4),
                      bytes_per_row=0.97 * budget, sample=s_tr)
    pca_rmse = np.sqrt(np.mean((pca.inverse_transform(q.decode(q.encode(s_te)))
                                - X[1000:]) ** 2))
    assert _rmse(m, X[1000:]) < at_most * pca_rmse


def test_linear_path_model_file_round_trip(tmp_path):
    X = _low_rank(300)
    m = VAECompressor(bytes_per_row=4, epochs=3, random_state=0).fit(X)
    m.save(tmp_path / "m.vaekit")
    again = load(tmp_path / "m.vaekit")
    data = m.compress(X)
    assert again.compress(X) == data
    np.testing.assert_array_equal(again.decompress(data), m.decompress(data))
    # Scale outputs and posterior are calibrated to the codec: a finite bound.
    assert np.isfinite(m.score(X)) and np.isfinite(again.score(X))
    assert m.history_[-1]["phase"] == "calibrated" and "train_elbo" in m.history_[-1]


def test_images_take_the_linear_path(digits_images):
    imgs = digits_images[:200]
    m = VAECompressor(bytes_per_row=8, epochs=2, random_state=0).fit(imgs)
    assert m.config_["architecture"] == "mlp" and "linear_path" in m.config_
    conv = VAECompressor(bytes_per_row=8, epochs=1, architecture="conv", random_state=0)
    assert "linear_path" not in conv.fit(imgs[:64]).config_


def test_detector_and_unbudgeted_models_have_no_linear_path(digits_images):
    X = _low_rank(200)
    for est in (VAEAnomalyDetector(epochs=1, random_state=0), VAECompressor(epochs=1)):
        est.fit(X)
        assert "linear_path" not in est.config_
        assert not any("linear" in k for k in est.model_.state_dict())


def test_fit_is_deterministic():
    X = _low_rank(300)
    a = VAECompressor(bytes_per_row=3, epochs=3, random_state=0).fit(X)
    b = VAECompressor(bytes_per_row=3, epochs=3, random_state=0).fit(X)
    assert a.compress(X) == b.compress(X)
    for k, v in a.model_.state_dict().items():
        assert torch.equal(v, b.model_.state_dict()[k])


def test_budgeted_latents_are_standardized_so_the_bound_means_something():
    # Codec training may stretch the latent means; they are mapped back to mean 0, SD 1
    # so the KL to N(0, I) measures the code (about its bits in nats), not the stretch.
    X = _low_rank()
    model = VAECompressor(bytes_per_row=4, random_state=0, epochs=4).fit(X)
    mu = model.transform(X)
    active = np.asarray(model.quantizer_.bits) > 0
    np.testing.assert_allclose(mu[:, active].mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(mu[:, active].std(axis=0), 1.0, atol=1e-3)
    kl = model.history_[-1]["train_kl"]
    assert 0 < kl < 2 * model.quantizer_.total_bits * np.log(2) + 5
    assert np.isfinite(model.score(X))


def test_a_rows_result_does_not_depend_on_its_position_in_the_batch():
    # The narrow linear path used to round differently by row position inside an
    # inference block (BLAS small-matrix kernels), so dropping one leading row changed
    # the codes and scores of most other rows.
    X = _low_rank(700)
    model = VAECompressor(bytes_per_row=3, random_state=0, epochs=2).fit(X)
    z = model.transform(X)
    np.testing.assert_array_equal(model.transform(X[1:]), z[1:])
    np.testing.assert_array_equal(model.inverse_transform(z[1:]), model.inverse_transform(z)[1:])
    # The per-row bound behind score() (nats), through the same blocks.
    np.testing.assert_array_equal(model._row_scores(X[3:]).elbo, model._row_scores(X).elbo[3:])
    assert model.compress(X[1:]) == model.compress(X[1:])
