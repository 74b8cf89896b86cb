"""scikit-learn faces of vaekit: :class:`VAEAnomalyDetector` and :class:`VAECompressor`."""

from .base import resolve_device, torch_threads
from .compressor import VAECompressor
from .detector import VAEAnomalyDetector
from .persistence import ESTIMATORS, from_model_data, load

__all__ = [
    "ESTIMATORS",
    "VAEAnomalyDetector",
    "VAECompressor",
    "from_model_data",
    "load",
    "resolve_device",
    "torch_threads",
]
