"""Fitted models and page checks shared by the report tests."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from vaekit import VAEAnomalyDetector, VAECompressor

TABULAR_DETECTOR_FIGURES = {"fig-training-curves", "fig-score-distribution", "fig-top-anomalies",
                            "fig-latent-space"}
IMAGE_DETECTOR_FIGURES = TABULAR_DETECTOR_FIGURES | {"fig-reconstructions", "fig-prior-samples"}
TABULAR_COMPRESSOR_FIGURES = {"fig-training-curves", "fig-reconstruction-error",
                              "fig-latent-space"}
IMAGE_COMPRESSOR_FIGURES = TABULAR_COMPRESSOR_FIGURES | {"fig-reconstructions",
                                                         "fig-prior-samples"}
# What anomaly labels add to a detector's report.
LABELLED_FIGURES = {"fig-precision-recall"}
FAST = {"epochs": 2, "random_state": 0}


def figure_ids(page: str) -> list[str]:
    return re.findall(r"<figure id='([^']+)'>", page)


def assert_self_contained(page: str) -> None:
    """No URL a browser could fetch: only data: URIs, inline CSS, no scripts."""
    # Base64 may contain "//", so the URL checks look at the page without the images.
    lowered = re.sub(r"data:image/png;base64,[a-z0-9+/=]+", "data:", page.lower())
    for needle in ("http:", "https:", "file:", "//", "<script", "<link", "url(", "@import"):
        assert needle not in lowered, needle
    sources = re.findall(r"src='([^']*)'", page) + re.findall(r'src="([^"]*)"', page)
    assert sources, "no images"
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:60]
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert lowered.count("<img") == len(figure_ids(page))


@pytest.fixture(scope="package")
def tabular_detector(demo_features: pd.DataFrame) -> VAEAnomalyDetector:
    return VAEAnomalyDetector(n_samples=2, **FAST).fit(demo_features)


@pytest.fixture(scope="package")
def image_detector(digits_images: np.ndarray) -> VAEAnomalyDetector:
    return VAEAnomalyDetector(n_samples=2, **FAST).fit(digits_images)


@pytest.fixture(scope="package")
def tabular_compressor(demo_features: pd.DataFrame) -> VAECompressor:
    return VAECompressor(**FAST).fit(demo_features)
