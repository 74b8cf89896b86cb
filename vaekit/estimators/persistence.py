"""Loading fitted estimators from model files."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import FileFormatError
from ..fitted import FittedVAE
from .base import _VAEBase
from .compressor import VAECompressor
from .detector import VAEAnomalyDetector

ESTIMATORS: dict[str, type[_VAEBase]] = {
    "VAEAnomalyDetector": VAEAnomalyDetector,
    "VAECompressor": VAECompressor,
}


def load(path: str | os.PathLike, device: str | None = None) -> _VAEBase:
    """Load a fitted estimator from a ``.vaekit`` file (no pickle involved).

    Parameters
    ----------
    path : path-like
    device : str, optional
        Override the saved ``device`` parameter (e.g. load a GPU-trained model on CPU).

    Raises
    ------
    FileFormatError
        Not a vaekit model, corrupt, or from a newer format version.
    """
    return estimator_for(FittedVAE.load(path, device=device))


def estimator_for(fitted: FittedVAE) -> _VAEBase:
    """The estimator (with the saved parameters) that holds ``fitted`` as ``fitted_``."""
    cls = ESTIMATORS.get(fitted.estimator)
    if cls is None:
        raise FileFormatError(f"unknown estimator {fitted.estimator!r} in model file")
    valid = cls().get_params()
    # Parameters a file predates take the value it was written with, not today's default.
    saved = {**getattr(cls, "_PREDATING", {}), **fitted.params}
    est = cls(**{k: v for k, v in saved.items() if k in valid})
    try:
        # The saved parameters are a stranger's data too: the estimator's own
        # constraints apply, as they would at fit.
        est._validate_params()
    except (ValueError, TypeError) as exc:  # sklearn's InvalidParameterError is both
        raise FileFormatError(f"model file holds an invalid estimator parameter: {exc}") from None
    est._adopt(fitted)
    return est


def from_model_data(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    device: str | None = None) -> _VAEBase:
    """Build a fitted estimator from parsed model-file contents."""
    return estimator_for(FittedVAE.from_parsed(tensors, meta, device=device))


__all__ = ["VAEAnomalyDetector", "VAECompressor", "estimator_for", "from_model_data", "load"]
