"""HTML reports and plots of fitted vaekit models (needs ``pip install 'vaekit[report]'``).

>>> from vaekit.fitted import as_fitted
>>> from vaekit.report import render_report, write_report, figures
>>> write_report("report.html", detector, X)            # doctest: +SKIP
>>> model = as_fitted(detector)                          # doctest: +SKIP
>>> figures.latent_space(model, model.encode_means(model.prepare(X)))  # doctest: +SKIP

Every function that needs a model takes a fitted model
(:class:`~vaekit.fitted.FittedVAE`, e.g. ``FittedVAE.load("model.vaekit")``) or a
fitted estimator, and uses only the FittedVAE's public API.  The package imports
neither the estimators nor click; the command-line face is ``vaekit report``.

Importing this package does not import matplotlib (nor torch); the figure functions
do, and raise :class:`ImportError` with the install command when matplotlib is missing.
"""

from . import figures
from .figures import (
    image_reconstructions,
    latent_space,
    pixel_error_map,
    prior_samples,
    reconstruction_error,
    score_distribution,
    top_anomalies,
    top_anomaly_images,
    training_curves,
)
from .html import render_report, write_report
from .metrics import label_metrics, precision_recall

__all__ = [
    "figures",
    "image_reconstructions",
    "label_metrics",
    "latent_space",
    "pixel_error_map",
    "precision_recall",
    "prior_samples",
    "reconstruction_error",
    "render_report",
    "score_distribution",
    "top_anomalies",
    "top_anomaly_images",
    "training_curves",
    "write_report",
]
