"""Scorers for tuning anomaly detectors on labelled rows (labels: 1 = anomaly, 0 = normal).

**The trap these avoid.**  scikit-learn's ``scoring="roc_auc"`` ranks rows by the
estimator's ``decision_function``.  For a scikit-learn outlier detector
(``IsolationForest``, ``LocalOutlierFactor(novelty=True)``,
:class:`~vaekit.VAEAnomalyDetector`) that function is *higher = more normal*, so
against labels where 1 = anomaly the built-in scorer returns ``1 - ROC-AUC`` and
``GridSearchCV`` silently picks the *worst* setting.  The scorers here rank by an
anomaly score (higher = more anomalous) taken the right way round from either
convention:

- scikit-learn outlier detectors (and pipelines ending in one): ``-score_samples``
  (``-decision_function`` when there is no ``score_samples``);
- PyOD detectors (subclasses of ``pyod.models.base.BaseDetector``, such as
  :class:`vaekit.integrations.pyod.VAEOD`): ``decision_function`` as is.

>>> from sklearn.model_selection import GridSearchCV
>>> from vaekit.metrics import anomaly_roc_auc
>>> search = GridSearchCV(VAEAnomalyDetector(), {"latent_dim": [2, 6]},
...                       scoring=anomaly_roc_auc)           # doctest: +SKIP
>>> search.fit(X, y_is_anomaly)                               # doctest: +SKIP

This module imports only numpy and scikit-learn, so it also scores detectors that
have nothing to do with vaekit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline

__all__ = [
    "AnomalyScorer",
    "anomaly_average_precision",
    "anomaly_precision_at_k",
    "anomaly_roc_auc",
    "anomaly_scores",
    "anomaly_scoring",
    "make_anomaly_scorer",
    "precision_at_k",
]


def _final_step(estimator: Any) -> Any:
    """The estimator that produces the scores: a pipeline's last step, a search's best."""
    seen = set()
    while id(estimator) not in seen:
        seen.add(id(estimator))
        if isinstance(estimator, Pipeline):
            estimator = estimator.steps[-1][1]
        elif hasattr(estimator, "best_estimator_"):  # a fitted GridSearchCV / RandomizedSearchCV
            estimator = estimator.best_estimator_
    return estimator


def _follows_pyod(estimator: Any) -> bool:
    """Whether the estimator is a PyOD detector (``decision_function``: higher = anomalous).

    Checked by class name along the MRO, so this module never imports PyOD.
    """
    return any(cls.__name__ == "BaseDetector" and cls.__module__.startswith("pyod.")
               for cls in type(_final_step(estimator)).__mro__)


def anomaly_scores(estimator: Any, X: Any) -> np.ndarray:
    """Anomaly score per row, higher = more anomalous, whatever the detector's convention.

    Parameters
    ----------
    estimator : fitted outlier detector
        A scikit-learn outlier detector or pipeline ending in one (its
        ``score_samples`` is higher = more normal, so it is negated), or a PyOD
        detector (its ``decision_function`` is already higher = more anomalous).
    X : array-like or DataFrame
        Rows to score, in the form the estimator accepts.

    Returns
    -------
    ndarray of shape (n_samples,)
        For :class:`~vaekit.VAEAnomalyDetector`: the negative ELBO in nats.
    """
    if _follows_pyod(estimator):
        scores = estimator.decision_function(X)
    elif hasattr(estimator, "score_samples"):
        scores = -np.asarray(estimator.score_samples(X), dtype=np.float64)
    elif hasattr(estimator, "decision_function"):
        scores = -np.asarray(estimator.decision_function(X), dtype=np.float64)
    else:
        raise TypeError(f"{type(estimator).__name__} has neither score_samples nor "
                        "decision_function, so it cannot rank rows as anomalies")
    return np.asarray(scores, dtype=np.float64).ravel()


def _check_labels(y: Any) -> np.ndarray:
    """Labels as 0/1 integers; refuse scikit-learn's ``predict`` convention (-1 = outlier)."""
    y = np.asarray(y)
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(f"labels must be one value per row (1 = anomaly), got shape {y.shape}")
    y = y.ravel()
    if y.dtype == bool:
        return y.astype(np.int64)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        hint = (" (that looks like scikit-learn's predict convention, -1 = outlier: "
                "pass y == -1)" if -1 in values else "")
        shown = sorted(values, key=repr)[:5]
        raise ValueError(f"labels must be 1 = anomaly and 0 = normal, got values {shown}{hint}")
    return y.astype(np.int64)


def precision_at_k(y_true: Any, scores: Any, k: int | float | None = None) -> float:
    """Share of labelled anomalies among the ``k`` rows with the highest anomaly scores.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        1 = anomaly.
    scores : array-like
        Anomaly scores, higher = more anomalous.
    k : int, float in (0, 1) or None
        Rows to inspect: a count, a share of the rows (rounded up), or ``None`` for
        the number of labelled anomalies (then precision = recall, PyOD's
        ``precision_n_scores``).  Ties at the cut are broken by row order.

    Returns
    -------
    float
        In [0, 1].
    """
    y = _check_labels(y_true)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    n = len(y)
    if k is None:
        k = int(y.sum())
        if k == 0:
            raise ValueError("precision_at_k with k=None needs at least one labelled anomaly")
    elif isinstance(k, Real) and not isinstance(k, Integral) and 0 < k < 1:
        k = max(1, math.ceil(k * n))
    elif not (isinstance(k, Integral) and not isinstance(k, bool) and 1 <= k <= n):
        raise ValueError(f"k must be an integer in 1..{n}, a share in (0, 1) or None; got {k!r}")
    top = np.argsort(-s, kind="stable")[: int(k)]
    return float(y[top].mean())


class AnomalyScorer:
    """A scorer ``(estimator, X, y) -> float`` for ``GridSearchCV(scoring=...)``.

    Ranks rows with :func:`anomaly_scores` (right way round for scikit-learn and
    PyOD detectors) and applies ``metric(y_true, anomaly_scores, **kwargs)``;
    greater is better.  Labels must be 1 = anomaly, 0 = normal.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, scores, **kwargs) -> float`` with scores higher = more
        anomalous (``roc_auc_score``, ``average_precision_score``, :func:`precision_at_k`).
    **kwargs
        Passed to ``metric``.
    """

    def __init__(self, metric: Callable[..., float], **kwargs: Any) -> None:
        self.metric = metric
        self.kwargs = kwargs

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        labels = _check_labels(y)
        return float(self.metric(labels, anomaly_scores(estimator, X), **self.kwargs))

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"make_anomaly_scorer({getattr(self.metric, '__name__', self.metric)}{args})"


def make_anomaly_scorer(metric: Callable[..., float], **kwargs: Any) -> AnomalyScorer:
    """A scorer that applies ``metric(y_true, anomaly_scores, **kwargs)``; see :class:`AnomalyScorer`."""
    return AnomalyScorer(metric, **kwargs)


#: ROC-AUC of the anomaly scores against labels 1 = anomaly (not scikit-learn's 1 - AUC).
anomaly_roc_auc = make_anomaly_scorer(roc_auc_score)
#: Average precision (area under the precision-recall curve) of the anomaly scores.
anomaly_average_precision = make_anomaly_scorer(average_precision_score)
#: Precision among the top-k rows, k = number of labelled anomalies in the fold.
anomaly_precision_at_k = make_anomaly_scorer(precision_at_k)


def anomaly_scoring() -> dict[str, AnomalyScorer]:
    """The three scorers by name, for multi-metric ``GridSearchCV(scoring=..., refit=...)``.

    Returns
    -------
    dict
        ``{"roc_auc": ..., "average_precision": ..., "precision_at_k": ...}`` (a new
        dict each call).
    """
    return {"roc_auc": anomaly_roc_auc, "average_precision": anomaly_average_precision,
            "precision_at_k": anomaly_precision_at_k}
