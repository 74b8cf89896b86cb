"""Anomaly scores: negative ELBO / IWAE per row, per-column attribution, thresholds.

Determinism: the Monte Carlo noise is one fixed set of ``k`` standard-normal draws,
generated from the model's seed and shared by every row (common random numbers,
:func:`vaekit.fitted.backends.fixed_noise`).  The network's terms come from a backend
(:mod:`vaekit.fitted.backends`: numpy or torch); this module adds what tables add.
A row's score therefore depends only on the row and the model — not on the other
rows in its batch, the batch size or how often it is scored.  ``k = n_samples``
trades speed for a tighter (importance-weighted) bound.

Tables add two terms to the network's bound (:func:`score_table_rows`): the code
length of which cells are blank (per-column missing rates, see
:meth:`vaekit.data.TabularSchema.cell_log_probs`), and, for a value never seen in
training, an escape to an "other" level.  An unseen cell is charged exactly what the
*most expensive seen level* would cost that row (the row is scored once per seen level
with the network, and the worst is kept) plus the escape cost, which is at least a seen
level's share since the escape probability is at most 1/2.  So turning one cell into
an unseen category never lowers a row's score.  With several unseen cells in a row the
worst level is chosen one column at a time (model order, the later ones still blank to
the encoder): K extra network passes per unseen cell, only for the rows that have one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..data.tabular import TabularSchema, encoder_input, present_cells


@dataclass
class RowScores:
    """Per-row bound terms, float64 numpy arrays, nats.

    Attributes
    ----------
    elbo : ndarray of shape (n,)
        The bound on log p(x) (ELBO for k = 1, IWAE for k > 1).
    recon_per_feature : ndarray of shape (n, n_features)
        Per-feature reconstruction log-likelihood in the model's feature order.
    kl : ndarray of shape (n,)
        Latent term.
    status_per_feature : ndarray of shape (n, n_features), optional
        Tables: log-probability of each cell being blank, present or an unseen level
        (minus a blank cell's typical value cost); ``None`` for images and model files
        written before missingness was modelled.  ``elbo = recon_per_feature.sum(1) +
        status_per_feature.sum(1) - kl`` (without the status term when ``None``).
    blank : bool ndarray of shape (n, n_features), optional
        Where a cell is blank (with ``status_per_feature``).
    complexity : ndarray of shape (n,), optional
        Images scored with a complexity correction (config ``complexity``): each
        image's code length under a generic lossless coder, nats
        (:func:`vaekit.data.images.complexity_nats`), capped at the config's
        ``complexity_cap`` when it has one; ``None`` otherwise.

    Notes
    -----
    :attr:`score` is what ranks rows (higher = more normal): the bound ``elbo``, plus
    ``complexity`` when present.
    """

    elbo: np.ndarray
    recon_per_feature: np.ndarray
    kl: np.ndarray
    status_per_feature: np.ndarray | None = None
    blank: np.ndarray | None = None
    complexity: np.ndarray | None = None

    @property
    def score(self) -> np.ndarray:
        """The row's score, nats (higher = more normal; the anomaly score is its negative).

        ``elbo`` for tables and plain image models; ``elbo + complexity`` for
        complexity-corrected image models: the log-likelihood ratio of the image under
        the model against the generic coder (Serra et al. 2020).
        """
        if self.complexity is None:
            return self.elbo
        return self.elbo + self.complexity


def score_table_rows(schema: TabularSchema, data: dict[str, np.ndarray],
                     network_scores: Callable[[dict[str, np.ndarray]], RowScores], *,
                     raw: RowScores | None = None) -> RowScores:
    """Row scores of a table with the missingness and unseen-level terms added.

    ``network_scores`` maps prepared rows to the network's :class:`RowScores` (a
    backend's, with the model's noise); ``raw`` (its result on ``data``) is reused
    when given.
    """
    if raw is None:
        raw = network_scores(data)
    status = schema.cell_log_probs(data)
    if status is None:
        return raw
    recon, kl = raw.recon_per_feature, raw.kl
    unseen = np.asarray(data["unseen"]).astype(bool)
    rows = np.flatnonzero(unseen.any(axis=1))
    if rows.size:
        worst = _worst_seen_levels(schema, data, rows, unseen[rows], network_scores)
        recon, kl = recon.copy(), kl.copy()
        recon[rows], kl[rows] = worst.recon_per_feature, worst.kl
    # Summed in float64 so that the named terms add up to the total exactly.
    elbo = recon.sum(axis=1) + status.sum(axis=1) - kl
    present = present_cells(data)
    blank = ~present
    blank[:, present.shape[1] - unseen.shape[1]:] &= ~unseen
    return RowScores(elbo, recon, kl, status, blank)


# Candidate rows scored at once when looking for an unseen cell's worst level.
_CANDIDATE_ROWS = 16_384


def _worst_seen_levels(schema: TabularSchema, data: dict[str, np.ndarray], rows: np.ndarray,
                       unseen: np.ndarray,
                       network_scores: Callable[[dict[str, np.ndarray]], RowScores]) -> RowScores:
    """Network scores of ``rows`` with each unseen cell set to its most expensive level."""
    work = {k: np.asarray(v)[rows] for k, v in data.items()}  # fancy indexing copies
    n_bin = len(schema.specs("binary"))
    sizes = [2] * n_bin + schema.cat_sizes
    for u, k in enumerate(sizes):
        hit = np.flatnonzero(unseen[:, u])
        if hit.size == 0:
            continue
        value, mask, col = ("bin", "bin_mask", u) if u < n_bin else ("cat", "cat_mask", u - n_bin)
        # One candidate row per (row, level): K network passes per unseen cell, in
        # blocks of at most _CANDIDATE_ROWS rows so memory stays bounded whatever K
        # and the chunk size are (a file full of unseen values is slow, not a crash).
        best = np.empty(hit.size, dtype=np.int64)
        step = max(1, _CANDIDATE_ROWS // k)
        for start in range(0, hit.size, step):
            part = hit[start:start + step]
            rep = np.repeat(part, k)
            cand = {key: t[rep] for key, t in work.items()}
            cand[value][:, col] = np.tile(np.arange(k), part.size).astype(cand[value].dtype)
            cand[mask][:, col] = 1.0
            cand["x"] = encoder_input(cand, schema.cat_sizes)
            s = network_scores(cand)
            # The most expensive level: the lowest bound (the other cells' status terms
            # are the same for every candidate).
            best[start:start + step] = s.elbo.reshape(part.size, k).argmin(axis=1)
        work[value][hit, col] = best.astype(work[value].dtype)
        work[mask][hit, col] = 1.0
        work["x"] = encoder_input(work, schema.cat_sizes)
    return network_scores(work)


def tukey_threshold(anomaly_scores: np.ndarray) -> float:
    """Tukey's outlier fence ``Q3 + 1.5 * IQR`` of the scores (used by contamination="auto")."""
    q1, q3 = np.percentile(anomaly_scores, [25, 75])
    return float(q3 + 1.5 * (q3 - q1))


def threshold_from_scores(anomaly_scores: np.ndarray, contamination: float | str) -> float:
    """Anomaly-score threshold (nats) above which a row counts as an anomaly.

    Parameters
    ----------
    anomaly_scores : ndarray
        Negative bounds of the training rows.
    contamination : float or "auto"
        Expected share of anomalies; the threshold is that upper quantile of the
        scores.  ``"auto"`` uses :func:`tukey_threshold`, which needs no guess.
    """
    if isinstance(contamination, str):
        return tukey_threshold(anomaly_scores)
    return float(np.quantile(anomaly_scores, 1.0 - float(contamination)))


# What a model file keeps of its training scores: the quantiles at levels k / QUANTILE_GRID,
# k = 0 .. QUANTILE_GRID (1,001 numbers, min and max included), so the file does not
# grow with the training rows.
QUANTILE_GRID = 1000


def score_quantiles(anomaly_scores: np.ndarray) -> list[float]:
    """The :data:`QUANTILE_GRID` + 1 evenly spaced quantiles of ``anomaly_scores``.

    Entry ``k`` is ``np.quantile(anomaly_scores, k / QUANTILE_GRID)`` (linear
    interpolation), so entry 0 is the minimum and the last the maximum.
    """
    levels = np.arange(QUANTILE_GRID + 1) / QUANTILE_GRID
    return np.quantile(np.asarray(anomaly_scores, dtype=np.float64), levels).tolist()


def quantile_from_grid(quantiles: Sequence[float], level: float) -> float:
    """The quantile at ``level`` (0..1) read off :func:`score_quantiles`' grid.

    Exact (equal to ``np.quantile`` of the scores) when ``level * QUANTILE_GRID`` is
    an integer (within 1e-9); otherwise the linear interpolation between the two
    neighbouring grid quantiles, which is off from the exact quantile by at most
    their difference (both lie between them: a quantile function is monotone).
    """
    q = quantiles
    x = min(max(float(level), 0.0), 1.0) * (len(q) - 1)
    k = round(x)
    if abs(x - k) <= 1e-9:
        return float(q[k])
    lo = math.floor(x)
    return float(q[lo] + (x - lo) * (q[lo + 1] - q[lo]))


def threshold_from_quantiles(quantiles: Sequence[float], contamination: float | str) -> float:
    """:func:`threshold_from_scores` from the stored quantile grid instead of every score.

    ``"auto"`` (Tukey's fence) needs the quartiles, which are grid points, so it is
    exact; so is a contamination ``c`` with ``c * 1000`` an integer (0.1, 0.05,
    0.025, 0.001, ...).  Any other ``c`` is within one grid step of the exact
    quantile (see :func:`quantile_from_grid`).
    """
    if isinstance(contamination, str):
        q1, q3 = quantile_from_grid(quantiles, 0.25), quantile_from_grid(quantiles, 0.75)
        return float(np.float64(q3) + 1.5 * (np.float64(q3) - np.float64(q1)))
    return quantile_from_grid(quantiles, 1.0 - float(contamination))
