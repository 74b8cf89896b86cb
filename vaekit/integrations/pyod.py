"""``VAEOD``: vaekit's VAE anomaly detector as a PyOD detector (PyOD's sign conventions).

:class:`~vaekit.VAEAnomalyDetector` is a scikit-learn outlier detector: its
``decision_function`` is *higher = more normal* (negative for anomalies) and
``predict`` returns +1 / -1, as scikit-learn's check suite and ``IsolationForest``
require.  PyOD's detectors use the opposite sign: ``decision_function`` is *higher
= more anomalous* and ``predict`` returns 1 for an anomaly.  A PyOD user who ranks
rows by the scikit-learn estimator's ``decision_function`` gets 1 - ROC-AUC.

:class:`VAEOD` subclasses PyOD's ``BaseDetector``, so everything PyOD builds on
that base works on it unchanged: ``predict`` (0 / 1), ``predict_proba``,
``predict_confidence``, ``predict_with_rejection``, ``decision_scores_`` /
``threshold_`` / ``labels_`` set by PyOD's own ``_process_decision_scores`` from
``contamination``, and the combination and model-selection tools
(``pyod.models.combination``, ``LSCP``) that call ``fit`` / ``decision_function``.

>>> from vaekit.integrations.pyod import VAEOD
>>> clf = VAEOD(contamination=0.03, random_state=0).fit(df)   # doctest: +SKIP
>>> clf.decision_function(df)   # negative ELBO in nats, higher = more anomalous  # doctest: +SKIP
>>> clf.predict(df)             # 1 = anomaly, 0 = normal  # doctest: +SKIP

Needs PyOD (``pip install "vaekit[pyod]"``, which also brings ``combo`` for
``pyod.models.combination``); vaekit itself never imports this module.
"""

from __future__ import annotations

import os
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ..estimators import VAEAnomalyDetector
from ..estimators.base import with_vaekit_input_tags

try:
    from pyod.models.base import BaseDetector
except ImportError as exc:  # an optional integration: say how to get it
    raise ImportError(
        'vaekit.integrations.pyod needs PyOD: pip install "pyod>=2.0" '
        '(or pip install "vaekit[pyod]")'
    ) from exc

__all__ = ["VAEOD"]

# The attributes PyOD's own predict / predict_proba / predict_confidence check for.
_FITTED = ["decision_scores_", "threshold_", "labels_"]


class VAEOD(BaseDetector):
    """Variational-autoencoder outlier detector with PyOD's conventions.

    Fits a :class:`~vaekit.VAEAnomalyDetector` (kept as ``detector_``) and scores
    rows by their negative ELBO in nats (images: minus their capped complexity, see
    :meth:`vaekit.VAEAnomalyDetector.anomaly_score`): **higher = more anomalous**,
    as in every PyOD detector.  Accepts what the vaekit estimator accepts: pandas DataFrames
    with numeric, binary and categorical columns and missing values, numeric
    arrays, and image arrays.

    Parameters
    ----------
    contamination : float in (0, 0.5] or a PyThresh thresholder, default=0.1
        Share of anomalies expected in the training data (PyOD's meaning): the
        threshold is the ``1 - contamination`` percentile of ``decision_scores_``.
        A float is also given to the wrapped detector, so a model saved with
        :meth:`save` flags the same share in ``vaekit score``; a thresholder object
        is applied by PyOD and the wrapped detector keeps ``"auto"``.
    n_samples, trim_fraction, latent_dim, hidden_dims, epochs, batch_size, \
learning_rate, beta, kind, architecture, categorical_features, min_scale, \
device, n_jobs, random_state, verbose, complexity
        Passed unchanged to :class:`~vaekit.VAEAnomalyDetector`; see its docstring.

    Attributes
    ----------
    detector_ : VAEAnomalyDetector
        The fitted scikit-learn estimator (scikit-learn's signs; ``explain``,
        ``save``, ``anomaly_score``).
    decision_scores_ : ndarray of shape (n_samples,)
        Anomaly scores of the training rows (``VAEAnomalyDetector.anomaly_score``),
        nats (higher = more anomalous).
    threshold_ : float
        Score above which a row is labelled 1 (nats).
    labels_ : ndarray of {0, 1}
        ``decision_scores_ > threshold_`` for the training rows.
    """

    def __init__(self, contamination: Any = 0.1, *, n_samples: int = 16,
                 trim_fraction: float | str = "auto", latent_dim: int | str = "auto",
                 hidden_dims: list | str = "auto", epochs: int | str = "auto",
                 batch_size: int | str = "auto", learning_rate: float = 1e-3,
                 beta: float = 1.0, kind: str = "auto", architecture: str = "auto",
                 categorical_features: list | None = None, min_scale: float | str = "auto",
                 device: str = "auto", n_jobs: int | None = None, random_state: Any = None,
                 verbose: bool = False, complexity: str | None = "auto") -> None:
        # PyOD's base checks a numeric contamination here and stores it unchanged.
        super().__init__(contamination=contamination)
        self.n_samples = n_samples
        self.trim_fraction = trim_fraction
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta = beta
        self.kind = kind
        self.architecture = architecture
        self.categorical_features = categorical_features
        self.min_scale = min_scale
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.complexity = complexity

    def _make_detector(self) -> VAEAnomalyDetector:
        """The scikit-learn estimator with this detector's parameters."""
        params = self.get_params(deep=False)
        contamination = params.pop("contamination")
        numeric = isinstance(contamination, Real) and not isinstance(contamination, bool)
        return VAEAnomalyDetector(contamination=contamination if numeric else "auto", **params)

    def fit(self, X: Any, y: Any = None) -> VAEOD:
        """Fit the VAE on ``X`` (unsupervised; ``y`` is ignored, as in PyOD).

        Parameters
        ----------
        X : DataFrame, array (n, d) or image array (n, H, W[, C])
            Training rows; may contain anomalies and missing values.
        y : ignored
            PyOD warns when it is given (``_set_n_classes``).

        Returns
        -------
        self : VAEOD
        """
        self._set_n_classes(y)
        detector = self._make_detector().fit(X)
        self.detector_ = detector
        # The estimator scored its training rows with the final model; scoring the same
        # rows again gives these exact numbers, so predict(X_train) equals labels_.
        self.decision_scores_ = np.asarray(detector.decision_scores_, dtype=np.float64)
        self._process_decision_scores()
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score per row (``VAEAnomalyDetector.anomaly_score``): the negative
        ELBO in nats, for images minus the capped complexity (higher = more anomalous).

        Parameters
        ----------
        X : DataFrame or array
            Rows in the form the detector was fitted on.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, _FITTED)
        return self.detector_.anomaly_score(X)

    def explain(self, X: Any) -> pd.DataFrame:
        """Per-column contributions (nats) that sum to :meth:`decision_function`.

        See :meth:`vaekit.VAEAnomalyDetector.explain`.
        """
        check_is_fitted(self, _FITTED)
        return self.detector_.explain(X)

    def save(self, path: str | os.PathLike) -> None:
        """Write the wrapped model to a ``.vaekit`` file (``vaekit score -m`` reads it).

        The file holds the scikit-learn estimator (``vaekit.load`` returns a
        :class:`~vaekit.VAEAnomalyDetector`); its scores are the same nats.
        """
        check_is_fitted(self, _FITTED)
        self.detector_.save(path)

    def __sklearn_tags__(self) -> Any:
        # PyOD marks the detector an outlier detector; the inputs are vaekit's.
        return with_vaekit_input_tags(super().__sklearn_tags__())
