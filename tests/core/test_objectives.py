"""ELBO, KL and IWAE against independent hand computations on a tiny fixed model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaekit.core import build_vae, elbo_terms, iwae_bound, iwae_terms, kl_to_standard_normal
from vaekit.core.networks import LOGVAR_MAX, LOGVAR_MIN

CONFIG = {"kind": "tabular", "architecture": "mlp", "latent_dim": 2, "hidden": [3],
          "conv_base": 32, "min_scale": 0.01, "num_min_scale": [0.05], "d_in": 7,
          "n_numeric": 1, "n_binary": 1, "cat_sizes": [2]}


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_vae(CONFIG).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.7)
    return model.eval()


def tiny_batch() -> dict[str, torch.Tensor]:
    d = torch.float64
    batch = {
        "num": torch.tensor([[0.4], [-1.3]], dtype=d),
        "num_mask": torch.tensor([[1.0], [0.0]], dtype=d),  # second row: numeric missing
        "num_logjac": torch.tensor([[-math.log(2.0)], [0.0]], dtype=d),
        "bin": torch.tensor([[1.0], [0.0]], dtype=d),
        "bin_mask": torch.ones(2, 1, dtype=d),
        "cat": torch.tensor([[1], [0]]),
        "cat_mask": torch.ones(2, 1, dtype=d),
    }
    onehot = torch.nn.functional.one_hot(batch["cat"][:, 0], 2).double()
    batch["x"] = torch.cat([batch["num"] * batch["num_mask"], batch["bin"], onehot,
                            batch["num_mask"], batch["bin_mask"], batch["cat_mask"]], dim=1)
    return batch


def _np_params(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().numpy() for p in model.parameters()]


def _silu(v: np.ndarray) -> np.ndarray:
    return v / (1 + np.exp(-v))


def _softplus(v: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(v))


def hand_elbo(model: torch.nn.Module, batch: dict, eps: np.ndarray) -> np.ndarray:
    """ELBO of each row written out with numpy, independent of vaekit's code paths."""
    w1, b1, w2, b2, w3, b3, w4, b4 = _np_params(model)  # enc: 7->3->4, dec: 2->3->7
    x = batch["x"].numpy()
    h = _silu(x @ w1.T + b1) @ w2.T + b2
    mu, raw = h[:, :2], h[:, 2:]
    lo, hi = LOGVAR_MIN, LOGVAR_MAX
    logvar = hi - _softplus(hi - (lo + _softplus(raw - lo)))
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar, axis=1)
    z = mu + np.exp(0.5 * logvar) * eps
    out = _silu(z @ w3.T + b3) @ w4.T + b4  # [mean, raw scale, bin logit, cat logits(2)]
    sd = float(np.float32(0.05)) + _softplus(out[:, 1])  # the floor is stored in float32
    xn = batch["num"].numpy()[:, 0]
    log_gauss = -0.5 * np.log(2 * np.pi) - np.log(sd) - 0.5 * ((xn - out[:, 0]) / sd) ** 2
    log_gauss = (log_gauss + batch["num_logjac"].numpy()[:, 0]) * batch["num_mask"].numpy()[:, 0]
    p1 = 1 / (1 + np.exp(-out[:, 2]))
    xb = batch["bin"].numpy()[:, 0]
    log_bern = np.log(np.where(xb == 1, p1, 1 - p1))
    logits = out[:, 3:5]
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    log_cat = logp[np.arange(2), batch["cat"].numpy()[:, 0]]
    return log_gauss + log_bern + log_cat - kl


def test_elbo_matches_hand_computation() -> None:
    model, batch = tiny_model(), tiny_batch()
    eps = torch.tensor([[0.3, -1.1]], dtype=torch.float64)
    terms = elbo_terms(model, batch, eps)
    want = hand_elbo(model, batch, eps.numpy())
    np.testing.assert_allclose(terms.elbo.detach().numpy(), want, rtol=1e-10)
    # Missing numeric entry contributes exactly 0 nats.
    assert terms.recon_per_feature[1, 0].item() == 0.0
    np.testing.assert_allclose(terms.recon_per_feature.sum(-1).detach().numpy(),
                               terms.recon.detach().numpy())


def test_closed_form_kl_matches_monte_carlo() -> None:
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[-1.0, 0.3, -2.5]], dtype=torch.float64)
    eps = torch.randn(400_000, 3, generator=gen, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_q = (-0.5 * math.log(2 * math.pi) - 0.5 * logvar - 0.5 * eps**2).sum(-1)
    log_p = (-0.5 * math.log(2 * math.pi) - 0.5 * z**2).sum(-1)
    mc = (log_q - log_p).mean().item()
    closed = kl_to_standard_normal(mu, logvar).item()
    assert mc == pytest.approx(closed, abs=0.02)


def test_iwae_terms_split_exactly_and_bound_is_tighter() -> None:
    model, batch = tiny_model(), tiny_batch()
    eps = torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    terms = iwae_terms(model, batch, eps)
    reference = iwae_bound(model, batch, eps)
    np.testing.assert_allclose(terms.elbo.detach().numpy(), reference.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(
        (terms.recon_per_feature.sum(-1) - terms.kl).detach().numpy(),
        terms.elbo.detach().numpy(), rtol=1e-12)
    many = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    elbo = elbo_terms(model, batch, many).elbo
    assert torch.all(terms.elbo >= elbo - 1e-6)


def test_iwae_with_one_sample_is_the_elbo() -> None:
    model, batch = tiny_model(), tiny_batch()
    eps = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    np.testing.assert_allclose(iwae_terms(model, batch, eps).elbo.detach().numpy(),
                               elbo_terms(model, batch, eps).elbo.detach().numpy())
