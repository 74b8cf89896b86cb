"""How well a detector's scores find known anomalies: ROC-AUC, average precision,
precision@k, and the precision-recall figure.

Every number is computed on all the rows given (the report passes every row of
DATA, never a sample), with scikit-learn's definitions
(:func:`sklearn.metrics.roc_auc_score`, :func:`sklearn.metrics.average_precision_score`).
Labels are anomaly labels: True = anomaly (see :func:`vaekit.report.data.anomaly_labels`);
higher scores = more anomalous.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..metrics import precision_at_k as shared_precision_at_k
from .style import THRESHOLD_COLOR, TRAIN_COLOR, VAL_COLOR, _figure

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure


@dataclass
class LabelMetrics:
    """Ranking quality of anomaly scores against known labels.

    Attributes
    ----------
    n_rows, n_anomalies : int
        Rows scored and rows labelled as anomalies.
    roc_auc, average_precision : float or None
        None when the labels hold one class only (both are undefined then).
    precision_at : dict of int to float
        Precision among the ``k`` highest-scoring rows (ties in row order, as
        ``vaekit score --top k`` ranks them), per ``k``.
    """

    n_rows: int
    n_anomalies: int
    roc_auc: float | None
    average_precision: float | None
    precision_at: dict[int, float] = field(default_factory=dict)


def precision_at_k(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of anomalies among the ``k`` highest scores (ties: the earlier row first)."""
    k = min(int(k), len(scores))
    if k <= 0:
        return float("nan")
    # the scorers' rule (vaekit.metrics), so the report and a tuned search agree
    return shared_precision_at_k(np.asarray(labels, dtype=bool).astype(np.int8), scores, k)


def label_metrics(scores: np.ndarray, labels: np.ndarray,
                  ks: Sequence[int] = ()) -> LabelMetrics:
    """ROC-AUC, average precision and precision@k of ``scores`` against ``labels``.

    Parameters
    ----------
    scores : array (n,)
        Anomaly scores (nats); higher = more anomalous.
    labels : array (n,) of bool
        True = anomaly.
    ks : sequence of int
        The ``k`` of precision@k besides the number of labelled anomalies, which is
        always included (precision@k at that k is also called R-precision).

    Returns
    -------
    LabelMetrics
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos = int(y.sum())
    both = 0 < n_pos < len(y)
    auc = float(roc_auc_score(y, scores)) if both else None
    ap = float(average_precision_score(y, scores)) if both else None
    wanted = sorted({k for k in (n_pos, *ks) if k > 0})
    return LabelMetrics(len(y), n_pos, auc, ap,
                        {k: precision_at_k(scores, y, k) for k in wanted})


def precision_recall(scores: np.ndarray, labels: np.ndarray, *,
                     threshold: float | None = None, ks: Sequence[int] = ()) -> Figure:
    """Precision-recall curve of anomaly scores against known labels (all rows).

    Parameters
    ----------
    scores : array (n,)
        Anomaly scores (nats); higher = more anomalous.
    labels : array (n,) of bool
        True = anomaly; both classes must occur.
    threshold : float, optional
        The detector's threshold (nats): its precision and recall are marked.
    ks : sequence of int
        Mark precision@k at these ``k`` (the number of labelled anomalies is
        always marked).

    Returns
    -------
    Figure
        The curve (step-wise, as scikit-learn draws it), the share of anomalies
        (what random scores would give) as a dashed line, and the marked points.
    """
    from sklearn.metrics import precision_recall_curve

    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    m = label_metrics(scores, y, ks)
    precision, recall, _ = precision_recall_curve(y, scores)
    fig = _figure(4.2, width=7.0)
    ax = fig.subplots()
    ax.plot(recall, precision, drawstyle="steps-post", color=TRAIN_COLOR,
            label=f"all {m.n_rows:,} rows (average precision {m.average_precision:.3f})")
    base = m.n_anomalies / m.n_rows
    ax.axhline(base, color="0.5", linestyle="--", linewidth=1.0,
               label=f"random ranking ({m.n_anomalies:,} anomalies, {100 * base:.1f}%)")
    for k, p in m.precision_at.items():
        ax.plot(k * p / m.n_anomalies, p, "o", color=VAL_COLOR, markersize=6)
        ax.annotate(f"top {k:,}: precision {p:.2f}", (k * p / m.n_anomalies, p),
                    textcoords="offset points", xytext=(6, 6), fontsize="small")
    if threshold is not None and np.isfinite(threshold):
        flagged = scores > threshold
        if flagged.any():
            hit = int((flagged & y).sum())
            ax.plot(hit / m.n_anomalies, hit / int(flagged.sum()), "D", color=THRESHOLD_COLOR,
                    label=f"threshold {threshold:.2f} nats ({int(flagged.sum()):,} rows above)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall (share of labelled anomalies found)")
    ax.set_ylabel("precision (share of flagged rows that are anomalies)")
    ax.set_title("Precision-recall of the anomaly score against the labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper right")
    return fig


__all__ = ["LabelMetrics", "label_metrics", "precision_at_k", "precision_recall"]
