"""VAE core: networks, likelihood heads, objectives and the training loop (no I/O)."""

from .likelihoods import ImageLikelihood, TabularLikelihood
from .objectives import (
    ElboTerms,
    elbo_terms,
    iwae_bound,
    iwae_terms,
    kl_per_dimension,
    kl_to_standard_normal,
)
from .training import TrainConfig, evaluate, resolve_schedule, train_vae
from .vae import VAE, auto_hidden, auto_latent_dim, build_vae

__all__ = [
    "VAE",
    "ElboTerms",
    "ImageLikelihood",
    "TabularLikelihood",
    "TrainConfig",
    "auto_hidden",
    "auto_latent_dim",
    "build_vae",
    "elbo_terms",
    "evaluate",
    "iwae_bound",
    "iwae_terms",
    "kl_per_dimension",
    "kl_to_standard_normal",
    "resolve_schedule",
    "train_vae",
]
