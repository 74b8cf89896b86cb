"""VAECompressor: latent means as codes, and reconstructions in the input's form."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .base import _VAEBase


class VAECompressor(TransformerMixin, _VAEBase):
    """Encode rows (or images) to latent means and decode them back.

    ``transform`` gives the posterior means (n, latent_dim); ``inverse_transform``
    turns codes back into rows in the input's own form (DataFrame with the same
    columns and dtypes, or images of the same shape and dtype).

    Parameters are those of :class:`VAEAnomalyDetector` without the scoring ones
    (``n_samples`` is used by :meth:`score`, the mean ELBO in nats per row).
    """

    def __init__(self, *, latent_dim: int | str = "auto", hidden_dims: list | str = "auto",
                 epochs: int | str = "auto", batch_size: int | str = "auto",
                 learning_rate: float = 1e-3, beta: float = 1.0, kind: str = "auto",
                 architecture: str = "auto", categorical_features: list | None = None,
                 min_scale: float | str = "auto", n_samples: int = 1, device: str = "auto",
                 n_jobs: int | None = None, random_state: Any = None,
                 verbose: bool = False) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta = beta
        self.kind = kind
        self.architecture = architecture
        self.categorical_features = categorical_features
        self.min_scale = min_scale
        self.n_samples = n_samples
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> VAECompressor:
        """Fit on ``X`` (``y`` is ignored)."""
        self._fit_vae(X)
        self._n_features_out = self.model_.latent_dim
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Posterior means, shape (n, latent_dim), float64."""
        return self._encode_means(X)[0]

    def inverse_transform(self, X: Any) -> Any:
        """Reconstruct rows from codes ``X`` (n, latent_dim), in the input's own form."""
        return self._decode_means(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``latent0``, ``latent1``, ..."""
        check_is_fitted(self, "model_")
        return np.asarray([f"latent{i}" for i in range(self.model_.latent_dim)], dtype=object)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean bound on log p(x) per row, in nats (higher is better)."""
        return float(np.mean(self._row_scores(X).elbo))

    def _restore(self, tensors: dict[str, torch.Tensor], fitted: dict[str, Any]) -> None:
        super()._restore(tensors, fitted)
        self._n_features_out = self.model_.latent_dim


