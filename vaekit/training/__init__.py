"""Training: one Adam loop with hooks, ELBO training, the codec routes and automatic sizes.

Torch only (no scikit-learn, no files): the estimators call these functions the way
scikit-learn's ``EllipticEnvelope.fit`` calls ``fast_mcd``.
"""

from .elbo import TrainConfig, evaluate, fit_elbo_network, resolve_schedule, train_vae
from .loop import BestState, adam_passes

__all__ = [
    "BestState",
    "TrainConfig",
    "adam_passes",
    "evaluate",
    "fit_elbo_network",
    "resolve_schedule",
    "train_vae",
]
