"""Training loop: it learns, the KL term is really in the objective, tiny data fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from vaekit import TrainingError, VAEAnomalyDetector, VAECompressor
from vaekit.training import TrainConfig, resolve_schedule


def test_training_improves_validation_elbo_on_demo(demo_features: pd.DataFrame) -> None:
    det = VAECompressor(random_state=0, epochs=15).fit(demo_features)
    hist = det.history_
    assert "val_elbo" in hist[0]
    assert max(h["val_elbo"] for h in hist) > hist[0]["val_elbo"] + 5.0  # nats per row
    for h in hist:
        assert h["train_elbo"] == pytest.approx(h["train_recon"] - h["train_kl"])
        assert h["val_kl"] > 0


def test_kl_term_is_in_the_objective() -> None:
    # With the KL in the loss (beta=1) the posterior stays far closer to the prior than
    # when it is left out (beta=0); an implementation that clamps KL to zero would show
    # the same KL for both.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    kl = {}
    for beta in (0.0, 1.0):
        est = VAECompressor(beta=beta, epochs=40, latent_dim=4, random_state=0).fit(X)
        kl[beta] = est.history_[-1]["train_kl"]
    assert kl[1.0] < 0.5 * kl[0.0]


def test_reported_elbo_uses_beta_one() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    est = VAECompressor(beta=0.1, epochs=5, random_state=0).fit(X)
    for h in est.history_:
        assert 0.0 <= h["beta"] <= 0.1 + 1e-12  # the training weight, ramped up to beta
        assert h["train_elbo"] == pytest.approx(h["train_recon"] - h["train_kl"])
        assert h["val_elbo"] == pytest.approx(h["val_recon"] - h["val_kl"])


def test_ten_rows_fit_with_defaults_and_last_partial_batch_is_used() -> None:
    assert resolve_schedule(10, TrainConfig())[1:] == (10, 0)
    epochs, batch, n_val = resolve_schedule(1000, TrainConfig(batch_size=64))
    assert n_val == 100 and batch == 64  # 900 = 14 * 64 + 4: the 4 are trained on
    X = np.random.default_rng(0).normal(size=(10, 3))
    seen: list[int] = []
    est = VAEAnomalyDetector(random_state=0, epochs=2, batch_size=4, n_samples=1)
    orig = torch.nn.Module.__call__

    def spy(self, *args, **kwargs):
        if type(self).__name__ == "GaussianEncoder" and torch.is_grad_enabled():
            seen.append(args[0].shape[0])
        return orig(self, *args, **kwargs)

    torch.nn.Module.__call__ = spy
    try:
        est.fit(X)
    finally:
        torch.nn.Module.__call__ = orig
    assert seen[:3] == [4, 4, 2]
    assert np.isfinite(est.score_samples(X)).all()


def test_schedule_scales_with_data_size() -> None:
    small = resolve_schedule(500, TrainConfig())
    large = resolve_schedule(2_000_000, TrainConfig())
    assert small[0] > large[0] and small[1] < large[1]
    assert large[0] == 2 and large[1] == 512 and large[2] == 10_000


def test_epoch_cap_bounds_passes_over_small_tables() -> None:
    # 77 rows, batch 16: 500 target steps would be 100 epochs; the cap stops at 50.
    assert resolve_schedule(77, TrainConfig(target_steps=500))[0] == 100
    assert resolve_schedule(77, TrainConfig(target_steps=500, max_epochs=50))[0] == 50
    X = np.random.default_rng(0).normal(size=(77, 5))
    det = VAEAnomalyDetector(random_state=0).fit(X)
    assert 2 <= len(det.history_) <= 50
    # The compressor is not capped: it keeps the default 300-epoch bound.
    comp = VAECompressor(random_state=0, epochs="auto")
    assert comp._train_config().max_epochs == 300


def test_divergence_gives_a_clear_error() -> None:
    X = np.random.default_rng(0).normal(size=(50, 3)) * 1e30
    with pytest.raises(TrainingError, match="diverged"):
        VAECompressor(learning_rate=1e30, epochs=3, random_state=0).fit(X)


def test_same_seed_same_model() -> None:
    X = np.random.default_rng(0).normal(size=(120, 5))
    a = VAEAnomalyDetector(random_state=3, epochs=3).fit(X).score_samples(X)
    b = VAEAnomalyDetector(random_state=3, epochs=3).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)


def test_trimming_leaves_out_the_worst_rows_by_loss_minus_offset() -> None:
    """Trimmed rows get no gradient; the offset changes which rows those are."""
    from vaekit.core.objectives import ElboTerms
    from vaekit.training.elbo import _weighted_loss

    recon = torch.tensor([-1.0, -2.0, -3.0, -10.0], requires_grad=True)
    kl = torch.zeros(4)
    terms = ElboTerms(recon - kl, recon, recon[:, None], kl)
    # trim 0.25 of 4 rows: the worst one (loss 10) is left out.
    loss = _weighted_loss(terms, 1.0, 0.25)
    assert loss.item() == pytest.approx(2.0)
    (grad,) = torch.autograd.grad(loss, recon)
    assert grad[3].item() == 0.0 and (grad[:3] != 0).all()
    # Offsets rank row 0 (loss 1 - (-9) = 10) worst instead; the loss itself is unchanged.
    loss = _weighted_loss(terms, 1.0, 0.25, torch.tensor([-9.0, 0.0, 0.0, 8.0]))
    assert loss.item() == pytest.approx(5.0)
    (grad,) = torch.autograd.grad(loss, recon)
    assert grad[0].item() == 0.0 and (grad[1:] != 0).all()


def test_auto_trim_is_a_tenth_for_tables_a_quarter_for_images() -> None:
    det = VAEAnomalyDetector()
    assert det.trim_fraction == "auto"
    assert det._train_config("tabular").trim_fraction == 0.1
    assert det._train_config("image").trim_fraction == 0.25
    assert VAEAnomalyDetector(trim_fraction=0.0)._train_config("image").trim_fraction == 0.0
    # The compressor does not trim: it must code every row.
    assert VAECompressor()._train_config("tabular").trim_fraction == 0.0
