"""scikit-learn faces of vaekit: :class:`VAEAnomalyDetector` and :class:`VAECompressor`.

Each holds its :class:`~vaekit.fitted.FittedVAE` as ``fitted_``.
"""

from .compressor import VAECompressor
from .detector import VAEAnomalyDetector
from .persistence import ESTIMATORS, estimator_for, from_model_data, load

__all__ = [
    "ESTIMATORS",
    "VAEAnomalyDetector",
    "VAECompressor",
    "estimator_for",
    "from_model_data",
    "load",
]
