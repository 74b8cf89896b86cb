"""ELBO, IWAE and KL as functions of tensors (all in nats, per row).

ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)), estimated with the reparameterization
z = mu + sigma * eps.  ``eps`` is passed in explicitly so callers control the noise:
training draws fresh noise, scoring uses one fixed set of draws shared by every row
(common random numbers), which makes scores deterministic and independent of how
rows are batched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .likelihoods import LOG_2PI
from .vae import VAE


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, closed form, in nats."""
    return kl_per_dimension(mu, logvar).sum(dim=-1)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL of each latent dimension (n, latent_dim), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def log_normal_std(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last axis."""
    return (-0.5 * LOG_2PI - 0.5 * z.pow(2)).sum(dim=-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last axis."""
    return (-0.5 * LOG_2PI - 0.5 * logvar - 0.5 * (z - mu).pow(2) * torch.exp(-logvar)).sum(dim=-1)


@dataclass
class ElboTerms:
    """Per-row terms of a bound on log p(x), all in nats.

    Attributes
    ----------
    elbo : (n,)
        The bound: ``recon_per_feature.sum(-1) - kl``.
    recon : (n,)
        Reconstruction log-likelihood (sum over features).
    recon_per_feature : (n, n_features)
        Its split over input features (0 for missing entries).
    kl : (n,)
        The latent term (closed-form KL for the ELBO; see :func:`iwae_terms`).
    """

    elbo: torch.Tensor
    recon: torch.Tensor
    recon_per_feature: torch.Tensor
    kl: torch.Tensor


def sample_log_likelihood(model: VAE, batch: dict[str, torch.Tensor], mu: torch.Tensor,
                          logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate log p(x|z) at z = mu + sigma * eps for k noise draws.

    Parameters
    ----------
    eps : (k, n, d) or (k, d)
        Standard-normal noise; (k, d) applies the same draws to every row.

    Returns
    -------
    loglik : (k, n, n_features)
    z : (k, n, d)
    """
    if eps.dim() == 2:
        eps = eps.unsqueeze(1)
    z = mu + torch.exp(0.5 * logvar) * eps
    return model.log_likelihood(model.decode(z), batch), z


def elbo_terms(model: VAE, batch: dict[str, torch.Tensor], eps: torch.Tensor) -> ElboTerms:
    """ELBO with the closed-form KL and a k-sample reconstruction estimate.

    Parameters
    ----------
    eps : (k, n, d) or (k, d)
        Noise for the reconstruction expectation (k >= 1).
    """
    mu, logvar = model.encode(batch["x"])
    loglik, _ = sample_log_likelihood(model, batch, mu, logvar, eps)
    per_feature = loglik.mean(dim=0)
    recon = per_feature.sum(dim=-1)
    kl = kl_to_standard_normal(mu, logvar)
    return ElboTerms(recon - kl, recon, per_feature, kl)


def iwae_terms(model: VAE, batch: dict[str, torch.Tensor], eps: torch.Tensor) -> ElboTerms:
    """Importance-weighted bound (Burda et al., 2015) with an exact per-feature split.

    ``log (1/k) sum_i w_i`` with ``log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)``
    equals ``sum_i a_i [log p(x|z_i)] + sum_i a_i [log p(z_i) - log q(z_i|x)]
    + H(a) - log k`` where ``a = softmax(log w)``.  The first sum is split by feature;
    the rest is reported as the latent term ``kl`` (it is >= the single-sample KL
    estimate's importance-weighted version, and the bound is >= the ELBO on average).
    For k = 1 this falls back to :func:`elbo_terms` (closed-form KL, lower variance).
    """
    if eps.shape[0] == 1:
        return elbo_terms(model, batch, eps)
    mu, logvar = model.encode(batch["x"])
    loglik, z = sample_log_likelihood(model, batch, mu, logvar, eps)
    latent = log_normal_std(z) - log_normal_diag(z, mu, logvar)  # (k, n)
    log_w = loglik.sum(dim=-1) + latent
    a = torch.softmax(log_w, dim=0)
    per_feature = (a.unsqueeze(-1) * loglik).sum(dim=0)
    entropy = -(a * torch.log(a.clamp_min(torch.finfo(a.dtype).tiny))).sum(dim=0)
    kl = -((a * latent).sum(dim=0) + entropy - math.log(eps.shape[0]))
    recon = per_feature.sum(dim=-1)
    return ElboTerms(recon - kl, recon, per_feature, kl)


def iwae_bound(model: VAE, batch: dict[str, torch.Tensor], eps: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound per row via logsumexp (reference for tests)."""
    mu, logvar = model.encode(batch["x"])
    loglik, z = sample_log_likelihood(model, batch, mu, logvar, eps)
    log_w = loglik.sum(dim=-1) + log_normal_std(z) - log_normal_diag(z, mu, logvar)
    return torch.logsumexp(log_w, dim=0) - math.log(eps.shape[0])
