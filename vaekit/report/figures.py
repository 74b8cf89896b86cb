"""Report figures: one function per plot, each returning a :class:`matplotlib.figure.Figure`.

The functions that need a model take a fitted model (:class:`~vaekit.fitted.FittedVAE`)
or a fitted estimator (:class:`~vaekit.VAEAnomalyDetector`,
:class:`~vaekit.VAECompressor`; turned into its model by :func:`vaekit.fitted.as_fitted`);
the others take plain arrays, so a notebook can show any of them on its own::

    from vaekit.report import figures
    figures.training_curves(detector)          # doctest: +SKIP

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``: nothing is registered with a GUI backend, no global state changes, and
``savefig`` renders with Agg.  That keeps the report usable on headless machines
and leaves a notebook user's own backend alone.  Jupyter still displays a returned
figure inline.

matplotlib is an optional dependency (``pip install 'vaekit[report]'``); it is
imported on first use and a missing install raises :class:`ImportError` with that hint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .curves import best_epoch, stopping_note, training_curves
from .style import (
    _CATEGORY_COLORS,
    INSTALL_HINT,
    THRESHOLD_COLOR,
    TRAIN_COLOR,
    VAL_COLOR,
    _figure,
    _plain,
    fitted_model,
    require_matplotlib,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

# A latent dimension whose mean KL to the prior is below this (nats) carries
# essentially nothing: it has collapsed to the prior.
INFORMATIVE_KL = 0.05
# Bars shown per anomaly in :func:`top_anomalies`; the rest are summed into one bar
# so the bars still add up to the anomaly score.
MAX_BARS = 12


# --------------------------------------------------------------------------- scores


def score_distribution(scores: np.ndarray, threshold: float | None = None,
                       labels: Sequence[Any] | None = None, *,
                       reference: np.ndarray | None = None) -> Figure:
    """Histogram of anomaly scores with the decision threshold marked.

    Parameters
    ----------
    scores : array (n,)
        Anomaly scores (negative ELBO), nats.
    threshold : float, optional
        The detector's threshold (nats; :meth:`FittedVAE.threshold`), drawn as a
        vertical line.
    labels : sequence (n,), optional
        Known labels; with few distinct values each gets its own histogram.
    reference : array, optional
        Scores of the training rows (:attr:`FittedVAE.decision_scores`), drawn as
        an outline for comparison.

    Returns
    -------
    Figure
    """
    scores = np.asarray(scores, dtype=np.float64)
    fig = _figure(3.6)
    ax = fig.subplots()
    finite = scores[np.isfinite(scores)]
    ref = None if reference is None else np.asarray(reference, dtype=np.float64)
    lo, hi = _score_range(finite if ref is None else np.concatenate([finite, ref]), threshold)
    bins = np.linspace(lo, hi, 61)

    def clip(v: np.ndarray) -> np.ndarray:
        # Anomalies can score orders of magnitude above the bulk; they are
        # counted in the last bar (see the note) instead of stretching the axis.
        return np.clip(v, lo, hi)

    groups = _label_groups(labels, len(scores))
    if groups is None:
        ax.hist(clip(finite), bins=bins, color=TRAIN_COLOR, alpha=0.8,
                label=f"rows (n={len(finite)})")
    else:
        many = len(groups) > 4
        for i, (name, mask) in enumerate(groups if many else _largest_first(groups)):
            vals = scores[mask & np.isfinite(scores)]
            ax.hist(clip(vals), bins=bins, alpha=0.9 if many else 0.6,
                    histtype="step" if many else "stepfilled", linewidth=1.5,
                    color=_CATEGORY_COLORS[i % len(_CATEGORY_COLORS)],
                    label=f"label {name} (n={len(vals)})")
    if ref is not None:
        ax.hist(clip(ref), bins=bins, histtype="step", color="black", linewidth=1.0,
                linestyle=":", label=f"training rows (n={len(ref)})")
    xlabel = "anomaly score = negative ELBO (nats)"
    beyond = int(np.sum(finite > hi))
    if beyond:
        xlabel += (f"\n{beyond} rows above {hi:.0f} nats (max {finite.max():.0f}) "
                   "are counted in the last bar")
    if threshold is not None and np.isfinite(threshold):
        above = int(np.sum(finite > threshold))
        ax.axvline(threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.5,
                   label=f"threshold {threshold:.2f} nats ({above} rows above)")
    # Scores are heavy-tailed (anomalies sit far right); a log count axis keeps
    # both the bulk and the few extreme rows visible.
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows (log scale)")
    ax.set_title("Anomaly score distribution")
    ax.grid(alpha=0.3)
    if groups is not None and len(groups) > 4:
        # Many groups: the legend goes beside the plot instead of over the bars.
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize="small")
    return fig


def _largest_first(groups: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Largest group first, so small groups (usually the anomalies) are drawn on top."""
    return sorted(groups, key=lambda g: -int(g[1].sum()))


def _score_range(values: np.ndarray, threshold: float | None) -> tuple[float, float]:
    """Histogram range: the bulk of the scores and the threshold, not the far tail."""
    lo, q99, med = np.percentile(values, [0, 99, 50])
    hi = max(q99, med + 3.0 * (q99 - med))  # keep a moderate tail in view
    hi = min(hi, float(values.max()))
    if threshold is not None and np.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    pad = 0.02 * (hi - lo) or 1.0
    return float(lo - pad), float(hi + pad)


def _label_groups(labels: Sequence[Any] | None, n: int,
                  max_groups: int = 10) -> list[tuple[str, np.ndarray]] | None:
    """Masks per label value, or None when there are no labels or too many values."""
    if labels is None:
        return None
    lab = pd.Series(np.asarray(labels, dtype=object)).astype("string").fillna("<missing>")
    values = sorted(lab.unique())
    if len(values) > max_groups or len(lab) != n:
        return None
    return [(_plain(v), (lab == v).to_numpy()) for v in values]


def top_anomalies(contributions: pd.DataFrame, ids: Sequence[Any] | None = None, *,
                  k: int = 10) -> Figure:
    """Per-column contributions (nats) of the ``k`` highest-scoring rows, as bar charts.

    Parameters
    ----------
    contributions : DataFrame
        Output of :meth:`FittedVAE.explain` (or :meth:`VAEAnomalyDetector.explain`):
        one column per input column
        plus ``kl``; each row sums to that row's anomaly score (nats).
    ids : sequence, optional
        Row identifiers shown in the panel titles (default: the frame's index).
    k : int
        Number of rows shown (the highest totals first).

    Returns
    -------
    Figure
        One panel per row; the largest contributions are drawn, the others are
        summed into one "other columns" bar, so the bars add up to the score.
        Continuous columns can contribute negative nats (a density above 1).
    """
    total = contributions.sum(axis=1).to_numpy()
    ids = list(contributions.index if ids is None else ids)
    order = np.argsort(-total, kind="stable")[:max(1, k)]
    ncols = 2
    nrows = int(np.ceil(len(order) / ncols))
    fig = _figure(max(2.6, 2.4 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, pos in zip(axes, order, strict=False):
        row = contributions.iloc[pos]
        top = row.reindex(row.abs().sort_values(ascending=False).index)
        if len(top) > MAX_BARS:
            rest = top.iloc[MAX_BARS - 1:]
            top = pd.concat([top.iloc[:MAX_BARS - 1],
                             pd.Series({f"other {len(rest)} columns": rest.sum()})])
        top = top.iloc[::-1]  # largest at the top of a horizontal bar chart
        colors = [VAL_COLOR if v > 0 else TRAIN_COLOR for v in top.to_numpy()]
        ax.barh([_plain(c) for c in top.index], top.to_numpy(), color=colors)
        ax.axvline(0, color="0.4", linewidth=0.8)
        ax.set_title(f"row {_plain(ids[pos])}: score {total[pos]:.1f} nats",
                     fontsize="medium")
        ax.set_xlabel("contribution (nats)")
        ax.tick_params(axis="y", labelsize="small")
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    fig.suptitle(f"Top {len(order)} anomalies: per-column contributions to the score")
    return fig


def top_anomaly_images(images: np.ndarray, pixel_contributions: np.ndarray,
                       scores: np.ndarray, ids: Sequence[Any] | None = None, *,
                       k: int = 10) -> Figure:
    """The ``k`` highest-scoring images next to their per-pixel contributions (nats).

    Parameters
    ----------
    images : array (n, C, H, W) in [0, 1]
    pixel_contributions : array (n, H, W)
        Negative reconstruction log-likelihood per pixel (channels summed), nats.
    scores : array (n,)
        Anomaly scores, nats.
    ids : sequence, optional
        Image identifiers (default: 0-based position).
    k : int

    Returns
    -------
    Figure
        Two rows: the images, and heat maps of where their score comes from.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")[:max(1, k)]
    ids = list(range(len(scores))) if ids is None else list(ids)
    fig = _figure(2.9)
    axes = fig.subplots(2, len(order), squeeze=False)
    vmax = float(np.percentile(pixel_contributions[order], 99)) or 1.0
    heat = None
    for j, pos in enumerate(order):
        _show_image(axes[0, j], images[pos])
        axes[0, j].set_title(f"{_plain(ids[pos])}\n{scores[pos]:.0f} nats", fontsize="small")
        heat = axes[1, j].imshow(pixel_contributions[pos], cmap="magma", vmin=0, vmax=vmax)
        axes[1, j].set_axis_off()
    axes[0, 0].text(-0.15, 0.5, "image", transform=axes[0, 0].transAxes, rotation=90,
                    va="center", ha="right")
    axes[1, 0].text(-0.15, 0.5, "nats/pixel", transform=axes[1, 0].transAxes, rotation=90,
                    va="center", ha="right")
    if heat is not None:
        fig.colorbar(heat, ax=axes[1, :].tolist(), label="contribution (nats)", shrink=0.9)
    fig.suptitle(f"Top {len(order)} anomalous images and per-pixel contributions to the score")
    return fig


# --------------------------------------------------------------------------- compression


def reconstruction_error(original: pd.DataFrame, reconstructed: pd.DataFrame, schema: Any, *,
                         bytes_per_row: float | None = None,
                         rows_note: str | None = None) -> Figure:
    """Reconstruction error per column of a table.

    Parameters
    ----------
    original, reconstructed : DataFrame or array (n, d)
        Same columns and rows (arrays in the schema's column order).
    schema : TabularSchema
        The model's schema: numeric errors are divided by each column's robust
        scale (``ColumnSpec.scale``) so columns in different units compare.
    bytes_per_row : float, optional
        Shown in the title (bytes/row).
    rows_note : str, optional
        Which rows were measured (e.g. "a sample of 5,000 of 20,000 rows"), in the title.

    Returns
    -------
    Figure
        Left: RMSE of numeric columns in robust standard deviations.  Right: share
        of rows whose binary or categorical value changed, in percent.  Missing
        original values are skipped.
    """
    numeric, discrete = column_errors(original, reconstructed, schema)
    fig = _figure(max(3.0, 0.32 * max(len(numeric), len(discrete), 1) + 1.4))
    axes = fig.subplots(1, 2)
    _error_bars(axes[0], numeric, "RMSE (robust SDs of the column)", "Numeric columns")
    _error_bars(axes[1], discrete, "rows changed (%)", "Binary and categorical columns")
    title = "Reconstruction error per column"
    if bytes_per_row is not None:
        title += f" at {bytes_per_row:.2f} bytes/row"
    if rows_note:
        title += f"\n({rows_note})"
    fig.suptitle(title)
    return fig


def column_errors(original: pd.DataFrame, reconstructed: pd.DataFrame,
                  schema: Any) -> tuple[pd.Series, pd.Series]:
    """Per-column errors behind :func:`reconstruction_error`.

    Returns
    -------
    numeric : Series
        RMSE / robust scale per numeric column (dimensionless).
    discrete : Series
        Percent of non-missing rows whose value changed, per binary/categorical column.
    """
    names = schema.names()
    # A model fitted on a plain array takes and returns arrays; name their columns.
    if not isinstance(original, pd.DataFrame):
        original = pd.DataFrame(np.asarray(original), columns=names)
    if not isinstance(reconstructed, pd.DataFrame):
        reconstructed = pd.DataFrame(np.asarray(reconstructed), columns=names)
    numeric: dict[str, float] = {}
    discrete: dict[str, float] = {}
    for spec in schema.columns:
        a, b = original[spec.name], reconstructed[spec.name]
        present = a.notna().to_numpy()
        if not present.any():
            continue
        if spec.kind == "numeric":
            x = pd.to_numeric(a, errors="coerce").to_numpy(dtype=np.float64)[present]
            y = pd.to_numeric(b, errors="coerce").to_numpy(dtype=np.float64)[present]
            numeric[spec.name] = float(np.sqrt(np.nanmean((x - y) ** 2)) / (spec.scale or 1.0))
        else:
            changed = a[present].astype(str).to_numpy() != b[present].astype(str).to_numpy()
            discrete[spec.name] = float(100.0 * changed.mean())
    return pd.Series(numeric, dtype=np.float64), pd.Series(discrete, dtype=np.float64)


def _error_bars(ax: Any, values: pd.Series, xlabel: str, title: str) -> None:
    if values.empty:
        ax.text(0.5, 0.5, "no such columns", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    values = values.iloc[::-1]
    ax.barh([_plain(c) for c in values.index], values.to_numpy(), color=TRAIN_COLOR)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(axis="x", alpha=0.3)


def pixel_error_map(original: np.ndarray, reconstructed: np.ndarray, *,
                    bytes_per_row: float | None = None, rows_note: str | None = None) -> Figure:
    """Root-mean-square reconstruction error per pixel position, in 8-bit gray levels.

    Parameters
    ----------
    original, reconstructed : array (n, C, H, W) in [0, 1]
    bytes_per_row : float, optional
        Shown in the title (bytes per image).
    rows_note : str, optional
        Which images were measured, in the title.

    Returns
    -------
    Figure
    """
    err = np.sqrt(np.mean((255.0 * (original - reconstructed)) ** 2, axis=(0, 1)))
    fig = _figure(3.4, width=5.0)
    ax = fig.subplots()
    im = ax.imshow(err, cmap="viridis", vmin=0)
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, label="RMSE (gray levels, 0-255)")
    title = f"Reconstruction error per pixel (mean RMSE {err.mean():.1f})"
    if bytes_per_row is not None:
        title += f"\nat {bytes_per_row:.2f} bytes/image"
    if rows_note:
        title += f"\n({rows_note})"
    ax.set_title(title, fontsize="medium")
    return fig


# --------------------------------------------------------------------------- images


def _show_image(ax: Any, image: np.ndarray) -> None:
    """Draw one (C, H, W) image in [0, 1]; grayscale for one channel."""
    c = image.shape[0]
    if c == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(np.moveaxis(image[:3], 0, -1), 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def image_reconstructions(original: np.ndarray, reconstructed: np.ndarray, *,
                          n: int = 10,
                          title: str = "Inputs and their reconstructions") -> Figure:
    """Inputs (top row) next to their reconstructions (bottom row).

    Parameters
    ----------
    original, reconstructed : array (N, C, H, W) in [0, 1]
    n : int
        Images shown (the first ``n``).
    title : str
        Figure title (say how the reconstructions were made).

    Returns
    -------
    Figure
    """
    n = max(1, min(n, len(original)))
    fig = _figure(2.6)
    axes = fig.subplots(2, n, squeeze=False)
    for j in range(n):
        _show_image(axes[0, j], original[j])
        _show_image(axes[1, j], reconstructed[j])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    fig.suptitle(title)
    return fig


def prior_samples(model: Any, *, n: int = 20, seed: int = 0) -> Figure:
    """Images decoded from ``n`` draws of the prior N(0, I).

    Parameters
    ----------
    model : FittedVAE or fitted estimator
        An image model.
    n : int
    seed : int
        Seeds the draws, so the same model always gives the same figure.

    Returns
    -------
    Figure
        The decoder's mean image for each draw.
    """
    fitted = fitted_model(model)
    z = np.random.default_rng(seed).standard_normal((n, fitted.latent_dim))
    images = to_unit_nchw(fitted, fitted.decode_means(z.astype(np.float32)))
    ncols = min(n, 10)
    nrows = int(np.ceil(n / ncols))
    fig = _figure(1.1 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, image in zip(axes, images, strict=False):
        _show_image(ax, image)
    for ax in axes[len(images):]:
        ax.set_visible(False)
    fig.suptitle("Samples from the prior (decoder means of z ~ N(0, I))")
    return fig


def to_unit_nchw(model: Any, images: np.ndarray) -> np.ndarray:
    """Images in the model's input layout and dtype -> float (n, C, H, W) in [0, 1].

    ``model``: an image :class:`~vaekit.fitted.FittedVAE` or fitted estimator.
    """
    return fitted_model(model).prepare(np.asarray(images))["x"]


# --------------------------------------------------------------------------- latents


def latent_projection(model: Any, means: np.ndarray, method: str = "auto"
                      ) -> tuple[np.ndarray, tuple[str, str]]:
    """2-D coordinates of latent means and the axis labels.

    Parameters
    ----------
    model : FittedVAE or fitted estimator
        Its ``latent_stats["kl"]`` (mean KL per dimension, nats) ranks dimensions.
    means : array (n, latent_dim)
        Posterior means.
    method : {"auto", "kl", "pca"}
        ``"kl"``: the two dimensions with the largest KL (the most informative);
        ``"pca"``: the first two principal components of the means; ``"auto"``:
        ``"kl"`` when at most two dimensions carry information (more than
        0.05 nats), otherwise ``"pca"``, which then shows more of the structure.

    Returns
    -------
    coords : array (n, 2)
    labels : (str, str)
    """
    kl = np.asarray(fitted_model(model).latent_stats["kl"], dtype=np.float64)
    if means.shape[1] == 1:
        return np.column_stack([means[:, 0], np.zeros(len(means))]), (
            f"z0 (KL {kl[0]:.2f} nats)", "(one latent dimension)")
    if method == "auto":
        method = "kl" if int(np.sum(kl > INFORMATIVE_KL)) <= 2 else "pca"
    if method == "kl":
        dims = np.argsort(-kl, kind="stable")[:2]
        return means[:, dims], tuple(f"z{d} (KL {kl[d]:.2f} nats)" for d in dims)  # type: ignore[return-value]
    if method != "pca":
        raise ValueError(f"method must be 'auto', 'kl' or 'pca', got {method!r}")
    centered = means - means.mean(axis=0)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    share = s**2 / max(float(np.sum(s**2)), 1e-300)
    coords = centered @ vt[:2].T
    return coords, (f"PC1 ({100 * share[0]:.0f}% of variance)",
                    f"PC2 ({100 * share[1]:.0f}% of variance)")


def latent_space(model: Any, means: np.ndarray, *, scores: np.ndarray | None = None,
                 labels: Sequence[Any] | None = None, method: str = "auto",
                 score_label: str = "anomaly score (nats)",
                 rows_note: str | None = None) -> Figure:
    """Scatter plot of the latent means in 2-D, colored by label or by score.

    Parameters
    ----------
    model : FittedVAE or fitted estimator
    means : array (n, latent_dim)
        Posterior means (``model.encode_means(model.prepare(X))`` of a FittedVAE, or a
        compressor's ``transform(X)``).
    scores : array (n,), optional
        Colors the points (continuous color scale) when no labels are given.
    labels : sequence (n,), optional
        Colors the points by value (up to 8 distinct values, else as numbers).
    method : {"auto", "kl", "pca"}
        See :func:`latent_projection`.
    score_label : str
        Color bar label for ``scores``.
    rows_note : str, optional
        Which rows are drawn (e.g. "a sample of 5,000 of 20,000 rows"), in the title.

    Returns
    -------
    Figure
    """
    coords, (xlabel, ylabel) = latent_projection(fitted_model(model), np.asarray(means), method)
    fig = _figure(5.0, width=7.0)
    ax = fig.subplots()
    groups = _label_groups(labels, len(coords))
    if groups is not None:
        # Smaller groups (usually the anomalies) are drawn last so they stay visible.
        ordered = groups if len(groups) > 4 else _largest_first(groups)
        for i, (name, mask) in enumerate(ordered):
            ax.scatter(coords[mask, 0], coords[mask, 1], s=10, alpha=0.7,
                       color=_CATEGORY_COLORS[i % len(_CATEGORY_COLORS)],
                       label=f"label {name} (n={int(mask.sum())})")
        ax.legend(fontsize="small", markerscale=2)
    else:
        values = scores
        cbar_label = score_label
        if labels is not None:
            values = pd.to_numeric(pd.Series(np.asarray(labels, dtype=object)),
                                   errors="coerce").to_numpy(dtype=np.float64)
            cbar_label = "label"
        if values is None:
            ax.scatter(coords[:, 0], coords[:, 1], s=8, alpha=0.6, color=TRAIN_COLOR)
        else:
            values = np.asarray(values, dtype=np.float64)
            order = np.argsort(np.nan_to_num(values, nan=-np.inf), kind="stable")
            # Color limits at the 1st/99th percentile: a few extreme scores would
            # otherwise squash every other point into one color.
            lo, hi = np.nanpercentile(values, [1, 99])
            pts = ax.scatter(coords[order, 0], coords[order, 1], c=values[order], s=8,
                             cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1)
            fig.colorbar(pts, ax=ax, label=cbar_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("Latent space (posterior means)" + (f"\n{rows_note}" if rows_note else ""))
    ax.grid(alpha=0.3)
    return fig


__all__ = [
    "INSTALL_HINT",
    "best_epoch",
    "column_errors",
    "fitted_model",
    "image_reconstructions",
    "latent_projection",
    "latent_space",
    "pixel_error_map",
    "prior_samples",
    "reconstruction_error",
    "require_matplotlib",
    "score_distribution",
    "stopping_note",
    "to_unit_nchw",
    "top_anomalies",
    "top_anomaly_images",
    "training_curves",
]
