"""vaekit.report.figures: every figure function returns a Figure, from a FittedVAE or an estimator."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from vaekit.fitted import as_fitted  # noqa: E402
from vaekit.report import figures  # noqa: E402


def test_figure_functions_return_figures(tabular_detector, image_detector, demo_features,
                                         digits_images) -> None:
    from matplotlib.figure import Figure

    X = demo_features.iloc[:300]
    fitted = as_fitted(tabular_detector)
    contrib = tabular_detector.explain(X)
    means = fitted.encode_means(fitted.prepare(X))
    made = [
        figures.training_curves(tabular_detector),
        figures.training_curves(tabular_detector.history_),
        figures.score_distribution(contrib.sum(axis=1), tabular_detector.threshold_),
        figures.top_anomalies(contrib, k=3),
        figures.latent_space(tabular_detector, means, scores=contrib.sum(axis=1)),
        figures.latent_space(tabular_detector, means, method="kl"),
        figures.reconstruction_error(X, fitted.decode_means(means), fitted.schema),
        figures.prior_samples(image_detector, n=6),
    ]
    unit = figures.to_unit_nchw(image_detector, digits_images[:5])
    made.append(figures.image_reconstructions(unit, unit, n=5))
    made.append(figures.pixel_error_map(unit, unit))
    # The same functions on the fitted models themselves.
    made += [figures.training_curves(fitted),
             figures.latent_space(fitted, means, scores=contrib.sum(axis=1)),
             figures.prior_samples(as_fitted(image_detector), n=6)]
    assert all(isinstance(f, Figure) for f in made)
    # Axis labels carry units.
    assert "nats" in made[0].axes[0].get_ylabel()
    assert "nats" in made[2].axes[0].get_xlabel()


def test_model_arguments_take_a_fitted_model_or_an_estimator(tabular_detector, image_detector,
                                                             demo_features,
                                                             digits_images) -> None:
    fitted = as_fitted(tabular_detector)
    means = fitted.encode_means(fitted.prepare(demo_features.iloc[:100]))
    for method in ("kl", "pca"):
        a, labels_a = figures.latent_projection(tabular_detector, means, method)
        b, labels_b = figures.latent_projection(fitted, means, method)
        np.testing.assert_array_equal(a, b)
        assert labels_a == labels_b
    images = digits_images[:4]
    unit = figures.to_unit_nchw(as_fitted(image_detector), images)
    np.testing.assert_array_equal(unit, figures.to_unit_nchw(image_detector, images))
    assert unit.shape == (4, 1, 8, 8) and 0.0 <= unit.min() <= unit.max() <= 1.0
    with pytest.raises(TypeError, match="FittedVAE"):
        figures.training_curves(object())
