"""VAE core: networks, likelihood heads, objectives (torch math, no I/O)."""

from .likelihoods import ImageLikelihood, TabularLikelihood
from .objectives import (
    ElboTerms,
    elbo_terms,
    iwae_bound,
    iwae_terms,
    kl_per_dimension,
    kl_to_standard_normal,
)
from .vae import VAE, auto_hidden, auto_latent_dim, build_vae

__all__ = [
    "VAE",
    "ElboTerms",
    "ImageLikelihood",
    "TabularLikelihood",
    "auto_hidden",
    "auto_latent_dim",
    "build_vae",
    "elbo_terms",
    "iwae_bound",
    "iwae_terms",
    "kl_per_dimension",
    "kl_to_standard_normal",
]
