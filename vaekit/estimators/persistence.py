"""Loading fitted estimators from model files."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import FileFormatError
from ..fitted import model_file as model_io
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
    tensors, meta = model_io.read_model(path)
    return from_model_data(tensors, meta, device=device)


def from_model_data(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    device: str | None = None) -> _VAEBase:
    """Build a fitted estimator from parsed model-file contents."""
    cls = ESTIMATORS.get(meta.get("estimator", ""))
    if cls is None:
        raise FileFormatError(f"unknown estimator {meta.get('estimator')!r} in model file")
    params = dict(meta.get("params", {}))
    if device is not None:
        params["device"] = device
    elif params.get("device", "auto") != "auto" and not _device_available(params["device"]):
        params["device"] = "auto"
    valid = cls().get_params()
    est = cls(**{k: v for k, v in params.items() if k in valid})
    est._restore(tensors, meta["fitted"])
    est.fingerprint_ = meta.get("fingerprint")
    return est


def _device_available(device: str) -> bool:
    return not device.startswith("cuda") or torch.cuda.is_available()


__all__ = ["VAEAnomalyDetector", "VAECompressor", "from_model_data", "load"]
