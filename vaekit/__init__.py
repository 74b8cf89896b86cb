"""vaekit: variational autoencoders for anomaly detection and lossy compression.

>>> from vaekit import VAEAnomalyDetector
>>> det = VAEAnomalyDetector().fit(df)          # doctest: +SKIP
>>> det.anomaly_score(df)                       # negative ELBO, nats  # doctest: +SKIP
"""

from ._version import __version__
from .errors import DataError, FileFormatError, TrainingError, VaekitError
from .estimators import VAEAnomalyDetector, VAECompressor, load

__all__ = [
    "DataError",
    "FileFormatError",
    "TrainingError",
    "VAEAnomalyDetector",
    "VAECompressor",
    "VaekitError",
    "__version__",
    "load",
]
