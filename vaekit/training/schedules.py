"""The automatic training schedules, per estimator and input kind.

``epochs="auto"`` trains for about ``steps`` gradient steps, with at most ``max_epochs``
passes over the rows (:func:`vaekit.training.elbo.resolve_schedule`).  One table, read
by the estimators when they fit and by the report when it explains why a fit stopped.
Why each number: comments at each entry; measurements in ``recipes/BENCHMARKS.md``.
"""

from __future__ import annotations

__all__ = ["AUTO_SCHEDULES", "auto_schedule"]

# (estimator class name, input kind) -> (gradient steps aimed at, epoch cap)
AUTO_SCHEDULES: dict[tuple[str, str], tuple[int, int]] = {
    # Tables rank best after a short fit: 500 steps beat 1000 and 3000 on mean ROC-AUC
    # and AP over the 21 ADBench tables at ~1/3.5 of the CPU time; a longer fit also
    # learns the anomalies hidden in the training data.  The cap keeps small tables
    # from being seen 100-300 times and memorised (45_wine: ROC-AUC 0.69 -> 0.85).
    ("VAEAnomalyDetector", "tabular"): (500, 50),
    # The shared-scale MLP image detector: ~10 CPU-s for 5,000 28x28 images on one
    # thread (recipes/results/images.md).  One-class image sets underfit rather than
    # memorise, so images keep the 300-epoch cap.
    ("VAEAnomalyDetector", "image"): (1500, 300),
    ("VAECompressor", "tabular"): (3000, 300),
    ("VAECompressor", "image"): (3000, 300),
}


def auto_schedule(estimator: str, kind: str) -> tuple[int, int] | None:
    """``(steps, max_epochs)`` of the automatic schedule, or None if there is none."""
    return AUTO_SCHEDULES.get((estimator, kind))
