"""vaekit: variational autoencoders for anomaly detection and lossy compression.

>>> from vaekit import VAEAnomalyDetector
>>> det = VAEAnomalyDetector().fit(df)          # doctest: +SKIP
>>> det.anomaly_score(df)                       # negative ELBO, nats  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import DataError, FileFormatError, TrainingError, VaekitError

if TYPE_CHECKING:
    from .estimators import VAEAnomalyDetector, VAECompressor, load
    from .fitted import CompressedWriter, FittedVAE, iter_decompressed

# Public name -> the subpackage that defines it, imported on first use.
_LAZY = {"VAEAnomalyDetector": "estimators", "VAECompressor": "estimators", "load": "estimators",
         "FittedVAE": "fitted", "CompressedWriter": "fitted", "iter_decompressed": "fitted"}


def __getattr__(name: str) -> Any:
    # The estimators pull in torch and scikit-learn (about 2 s), the fitted model pandas;
    # importing them on first use keeps `vaekit --help`, usage errors and
    # `import vaekit.files.readers` fast.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CompressedWriter",
    "DataError",
    "FittedVAE",
    "FileFormatError",
    "TrainingError",
    "VAEAnomalyDetector",
    "VAECompressor",
    "VaekitError",
    "__version__",
    "iter_decompressed",
    "load",
]
