"""HTML reports and plots of fitted vaekit models (needs ``pip install 'vaekit[report]'``).

>>> from vaekit.report import render_report, write_report, figures
>>> write_report("report.html", detector, X)            # doctest: +SKIP
>>> figures.latent_space(detector, detector._encode_means(X)[0])  # doctest: +SKIP

Importing this package does not import matplotlib; the figure functions do, and
raise :class:`ImportError` with the install command when it is missing.  The
command-line face is :data:`vaekit.report.command.report` (a click command).
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

__all__ = [
    "figures",
    "image_reconstructions",
    "latent_space",
    "pixel_error_map",
    "prior_samples",
    "reconstruction_error",
    "render_report",
    "score_distribution",
    "top_anomalies",
    "top_anomaly_images",
    "training_curves",
    "write_report",
]
