"""Training: the Adam loop, ELBO training and the codec-training routes (torch, no I/O)."""

from .elbo import TrainConfig, evaluate, resolve_schedule, train_vae

__all__ = ["TrainConfig", "evaluate", "resolve_schedule", "train_vae"]
