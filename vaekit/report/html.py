"""Assemble the report: compute what the figures need and write one self-contained HTML file.

Self-contained means a browser shows it from disk with no server and no network:
every figure is a PNG inside a ``data:`` URI, the CSS is inline, there is no
script, and the page names no external URL at all (so it also opens in mail
clients and air-gapped machines).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..files.atomic import atomic_write_bytes
from . import figures as F

# Figure resolution.  110 dpi at 10 in wide is 1100 px: sharp on a normal screen at
# the page's 1100 px column, and each PNG stays around 50-150 kB.
DPI = 110
# The fixed seed that picks the sampled rows, so a report is reproducible.
SAMPLE_SEED = 0
# Images shown in the reconstruction grid and drawn from the prior.
N_GRID_IMAGES = 10
N_PRIOR_SAMPLES = 20

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0 auto; max-width: 1120px; padding: 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
       font-size: 0.88em; white-space: nowrap; }
code.hash { white-space: normal; overflow-wrap: anywhere; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; margin-top: 0.3em; }
.note { font-size: 0.9em; color: #555; }
"""


@dataclass
class ReportFigure:
    """One figure of the report: a stable ``id`` (also the HTML element id), a caption."""

    id: str
    caption: str
    figure: Any


@dataclass
class ReportSection:
    """A titled group of figures, optionally with HTML shown before them."""

    title: str
    figures: list[ReportFigure] = field(default_factory=list)
    html: str = ""


# --------------------------------------------------------------------------- helpers


def figure_to_data_uri(fig: Any, dpi: int = DPI) -> str:
    """Render a matplotlib Figure to a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    # metadata={"Software": None} drops matplotlib's version string from the PNG,
    # so the same model and data give the same bytes across matplotlib releases.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sample_rows(n: int, max_rows: int | None, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Sorted positions of at most ``max_rows`` rows out of ``n``, the same every run."""
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]


def compressed_size(model: Any, X: Any, blob: bytes | None = None) -> tuple[float, str]:
    """Bytes per row of ``X`` under ``model``, and how it was measured.

    Parameters
    ----------
    model : fitted estimator
    X : rows or images

    Returns
    -------
    bytes_per_row : float
        With a ``compress`` method: ``len(model.compress(X)) / n``, the whole
        ``.vkc`` container (codes after entropy coding plus header and trailer,
        no id columns, no embedded model).  Without one: 4 bytes per latent
        dimension, the size of uncompressed float32 codes.
    how : str
        A sentence saying which of the two it is.
    """
    n = len(X)
    if callable(getattr(model, "compress", None)):
        size = len(model.compress(X) if blob is None else blob)
        return size / n, (f"measured: the {size:,}-byte .vkc container of these {n:,} rows "
                          "divided by the rows (entropy-coded codes plus the container's "
                          "fixed header and trailer; no id columns, no embedded model)")
    d = int(model.model_.latent_dim)
    return 4.0 * d, (f"not measured: this model has no compress method, so the figure is "
                     f"the size of raw float32 codes (4 bytes x {d} latent dimensions)")


def reconstruct(model: Any, X: Any, blob: bytes | None = None) -> Any:
    """What a user gets back for ``X``: the codec round trip when the model has one.

    A compressor's ``decompress(compress(X))`` includes the quantization error,
    which is the error a user of the compressed file sees; other models decode
    their posterior means.  ``blob``: ``model.compress(X)`` if already computed.
    """
    if callable(getattr(model, "compress", None)) and callable(getattr(model, "decompress", None)):
        return model.decompress(model.compress(X) if blob is None else blob)
    return model._decode_means(model._encode_means(X)[0])


def final_elbo(history: Sequence[dict[str, float]]) -> dict[str, float]:
    """Last epoch's ELBO in nats per row: ``{"train": ..., "val": ...}`` (val if recorded)."""
    if not history:
        return {}
    last = history[-1]
    out = {"train": float(last["train_elbo"])}
    if last.get("val_elbo") is not None:
        out["val"] = float(last["val_elbo"])
    return out


# --------------------------------------------------------------------------- content


def _summary_rows(model: Any, data_note: str | None, extra: list[tuple[str, str]]
                  ) -> list[tuple[str, str]]:
    """(label, HTML) pairs for the header table."""
    rows = [("Model", html.escape(f"{type(model).__name__} ({model.input_kind_} input)"))]
    schema = model.schema_
    if model.input_kind_ == "image":
        c, h, w = schema.shape
        rows.append(("Input", html.escape(f"images {c} x {h} x {w} (C x H x W), layout "
                                          f"{schema.layout}, dtype {schema.dtype}")))
    else:
        parts = []
        for spec in schema.columns:
            what = spec.kind if spec.kind == "numeric" else f"{spec.kind}, {len(spec.levels)} levels"
            parts.append(f"<code>{html.escape(spec.name)}</code> ({html.escape(what)})")
        rows.append((f"Columns ({len(schema.columns)})", ", ".join(parts)))
    kl = np.asarray(model.latent_stats_["kl"], dtype=np.float64)
    rows.append(("Latent dimensions", html.escape(
        f"{model.model_.latent_dim} ({int(np.sum(kl > F.INFORMATIVE_KL))} informative: mean KL "
        f"> {F.INFORMATIVE_KL} nats; total KL {kl.sum():.2f} nats/row)")))
    fp = getattr(model, "fingerprint_", None)
    if fp:
        rows.append(("Fingerprint (SHA-256)", f"<code class=hash>{html.escape(str(fp))}</code>"))
    elbo = final_elbo(model.history_)
    if elbo:
        text = f"{len(model.history_)} epochs; final ELBO {elbo['train']:.3f} nats/row (training)"
        if "val" in elbo:
            text += f", {elbo['val']:.3f} nats/row (validation)"
        rows.append(("Training", html.escape(text)))
    if hasattr(model, "threshold_"):
        rows.append(("Threshold", html.escape(f"{model.threshold_:.3f} nats (anomaly score)")))
    if data_note:
        rows.append(("Data", html.escape(data_note)))
    rows.extend(extra)
    rows.append(("vaekit", html.escape(__version__)))
    return rows


def _top_table(contrib: pd.DataFrame, ids: list[Any], k: int) -> str:
    """HTML table of the top-k rows: id, score and their three largest contributions."""
    total = contrib.sum(axis=1).to_numpy()
    order = np.argsort(-total, kind="stable")[:k]
    body = []
    for rank, pos in enumerate(order, start=1):
        row = contrib.iloc[pos].sort_values(ascending=False).head(3)
        top = ", ".join(f"<code>{html.escape(str(c))}</code> {v:.1f}" for c, v in row.items())
        body.append(f"<tr><td class=num>{rank}</td><td>{html.escape(str(ids[pos]))}</td>"
                    f"<td class=num>{total[pos]:.2f}</td><td>{top}</td></tr>")
    return ("<table><tr><th>rank</th><th>row</th><th>anomaly score (nats)</th>"
            "<th>largest contributions (nats)</th></tr>" + "".join(body) + "</table>")


def build_sections(model: Any, X: Any = None, *, labels: Sequence[Any] | None = None,
                   ids: Sequence[Any] | None = None, top_k: int = 10,
                   max_rows: int | None = 5000) -> tuple[list[ReportSection], list[tuple[str, str]]]:
    """Compute every figure of a report.

    Parameters are those of :func:`render_report`.

    Returns
    -------
    sections : list of ReportSection
    summary : list of (label, HTML)
        Extra header rows (data size, mean ELBO, bytes per row).
    """
    F.require_matplotlib()
    is_detector = hasattr(model, "threshold_")
    is_image = model.input_kind_ == "image"
    sections = [ReportSection("Training", [ReportFigure(
        "fig-training-curves",
        "Per-epoch means in nats per row, ELBO with beta = 1. Validation curves appear when "
        "training held out a validation split. The KL weight ramps up during warm-up, so the "
        "early ELBO is not a loss the optimizer saw.",
        F.training_curves(model.history_))])]
    summary: list[tuple[str, str]] = []

    if X is None:
        if is_detector:
            sections.append(ReportSection("Scores", [ReportFigure(
                "fig-score-distribution",
                "Anomaly scores of the training rows (stored in the model file); the dashed "
                "line is the threshold. Give DATA to score other rows.",
                F.score_distribution(model.decision_scores_, model.threshold_))]))
        if is_image:
            sections.append(ReportSection("Images", [_prior_figure(model)]))
        return sections, summary

    n_total = len(X)
    rows = sample_rows(n_total, max_rows)
    X = _take(X, rows)
    labels = None if labels is None else np.asarray(labels, dtype=object)[rows]
    ids = list(np.asarray(ids, dtype=object)[rows]) if ids is not None else [int(r) + 1 for r in rows]
    if len(rows) < n_total:
        summary.append(("Sample", html.escape(
            f"{len(rows):,} of {n_total:,} rows, drawn at random with a fixed seed; every "
            "figure and the top anomalies use this sample")))

    means = model._encode_means(X)[0]
    if is_detector:
        contrib = model.explain(X)
        scores = contrib.sum(axis=1).to_numpy()
        summary.append(("Mean ELBO on data", html.escape(
            f"{-scores.mean():.3f} nats/row ({int(np.sum(scores > model.threshold_)):,} of "
            f"{len(scores):,} rows above the threshold)")))
        score_sec = ReportSection("Scores", [ReportFigure(
            "fig-score-distribution",
            "Anomaly scores (negative ELBO, nats) of the data rows, with the training rows' "
            "scores as an outline; the dashed line is the detector's threshold.",
            F.score_distribution(scores, model.threshold_, labels,
                                 reference=model.decision_scores_))])
        if is_image:
            pix = _pixel_contributions(model, contrib)
            score_sec.figures.append(ReportFigure(
                "fig-top-anomalies",
                "The highest-scoring images and where in the image their score comes from "
                "(negative log-likelihood per pixel, nats).",
                F.top_anomaly_images(F.to_unit_nchw(model, X), pix, scores, ids, k=top_k)))
        else:
            contrib.index = pd.Index(ids)
            score_sec.html = _top_table(contrib, ids, top_k)
            score_sec.figures.append(ReportFigure(
                "fig-top-anomalies",
                "Each panel is one of the highest-scoring rows; bars are the per-column terms "
                "of its score (negative log-likelihood of the column, plus the latent KL "
                "term 'kl') and add up to the score. Continuous columns can contribute "
                "negative nats.",
                F.top_anomalies(contrib, ids, k=top_k)))
        sections.append(score_sec)
        color_scores, score_label = scores, "anomaly score (nats)"
    else:
        color_scores = -model._row_scores(X).elbo
        score_label = "negative ELBO (nats)"
        summary.append(("Mean ELBO on data", html.escape(f"{-color_scores.mean():.3f} nats/row")))

    recon = None
    if not is_detector:
        # One codec pass serves both the size and the round trip.
        blob = model.compress(X) if callable(getattr(model, "compress", None)) else None
        bpr, how = compressed_size(model, X, blob)
        summary.append(("Bytes per row", f"<b>{bpr:.2f}</b> <span class=note>"
                                         f"({html.escape(how)})</span>"))
        recon = reconstruct(model, X, blob)
        if is_image:
            err_fig = F.pixel_error_map(F.to_unit_nchw(model, X), F.to_unit_nchw(model, recon),
                                        bytes_per_row=bpr)
            caption = ("RMSE between the images and their decompressed versions at each pixel "
                       "position, in 8-bit gray levels.")
        else:
            err_fig = F.reconstruction_error(X, recon, model.schema_, bytes_per_row=bpr)
            caption = ("Error of the decompressed rows, per column: numeric columns as RMSE in "
                       "robust standard deviations of the column (its IQR / 1.35), binary and "
                       "categorical columns as the percent of rows whose value changed.")
        sections.append(ReportSection("Compression", [ReportFigure(
            "fig-reconstruction-error", caption, err_fig)]))

    if is_image:
        if recon is None:
            recon = reconstruct(model, X)
        sections.append(ReportSection("Images", [
            ReportFigure("fig-reconstructions",
                         "Top: the first sampled inputs. Bottom: what the model gives back"
                         + (" after compression." if not is_detector else
                            " (decoded posterior means)."),
                         F.image_reconstructions(
                             F.to_unit_nchw(model, X[:N_GRID_IMAGES]),
                             F.to_unit_nchw(model, recon[:N_GRID_IMAGES]), n=N_GRID_IMAGES,
                             title="Inputs and their reconstructions" + (
                                 " (decoded posterior means)" if is_detector
                                 else " after compress + decompress"))),
            _prior_figure(model)]))

    sections.append(ReportSection("Latent space", [ReportFigure(
        "fig-latent-space",
        "Posterior means of the data rows projected to 2-D: the two latent dimensions with the "
        "largest KL when at most two carry information, else the first two principal "
        "components. " + ("Colored by label." if labels is not None else
                          f"Colored by {score_label}."),
        F.latent_space(model, means, scores=color_scores, labels=labels,
                       score_label=score_label))]))
    return sections, summary


def _prior_figure(model: Any) -> ReportFigure:
    return ReportFigure("fig-prior-samples",
                        "Decoder mean images for random draws z ~ N(0, I): what the model "
                        "thinks a typical image looks like. Blurry samples are normal for a VAE.",
                        F.prior_samples(model, n=N_PRIOR_SAMPLES))


def _pixel_contributions(model: Any, contrib: pd.DataFrame) -> np.ndarray:
    """``explain`` output of an image model -> (n, H, W) nats, channels summed."""
    c, h, w = model.schema_.shape
    pixels = contrib.drop(columns="kl").to_numpy(dtype=np.float64)
    return pixels.reshape(len(contrib), c, h, w).sum(axis=1)


def render_html(title: str, summary: list[tuple[str, str]], sections: list[ReportSection]) -> str:
    """The complete HTML document (figures embedded as base64 PNG)."""
    out = ["<!DOCTYPE html>", "<html lang=en><head><meta charset=utf-8>",
           "<meta name=viewport content='width=device-width, initial-scale=1'>",
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>", "<table class=summary>"]
    out += [f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in summary]
    out.append("</table>")
    for section in sections:
        out.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.html:
            out.append(section.html)
        for item in section.figures:
            out.append(f"<figure id='{item.id}'><img alt='{html.escape(item.caption)}' "
                       f"src='{figure_to_data_uri(item.figure)}'>"
                       f"<figcaption>{html.escape(item.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_report(model: Any, X: Any = None, *, labels: Sequence[Any] | None = None,
                  ids: Sequence[Any] | None = None, top_k: int = 10,
                  max_rows: int | None = 5000, title: str | None = None,
                  data_name: str | None = None) -> str:
    """The report of a fitted model (and optionally data) as one self-contained HTML string.

    Parameters
    ----------
    model : VAEAnomalyDetector or VAECompressor
        Fitted, or loaded with :func:`vaekit.load`.
    X : DataFrame, array or images, optional
        Rows to score and plot, with the model's columns only (no label or id
        columns).  Without data the report has the training curves, a detector's
        training-score histogram and an image model's prior samples.
    labels : sequence, optional
        One label per row of ``X``; colors the latent plot and splits the score
        histogram.  Not used for scoring.
    ids : sequence, optional
        One identifier per row, shown for the top anomalies (default: 1-based row).
    top_k : int
        Anomalies shown.
    max_rows : int or None
        At most this many rows are used (a fixed-seed random sample); None = all.
    title : str, optional
        Page title (default: "vaekit report: <class name>").
    data_name : str, optional
        Where the data came from, shown in the header.

    Returns
    -------
    str
        HTML with every figure inline; no scripts and no external URLs.

    Raises
    ------
    ImportError
        matplotlib is missing.
    DataError
        ``X`` does not fit the model, or ``labels``/``ids`` have the wrong length.
    """
    from ..errors import DataError

    if X is not None:
        for name, values in (("labels", labels), ("ids", ids)):
            if values is not None and len(values) != len(X):
                raise DataError(f"{name} has {len(values)} entries but the data has {len(X)} rows")
    sections, summary = build_sections(model, X, labels=labels, ids=ids, top_k=top_k,
                                       max_rows=max_rows)
    data_note = None
    if X is not None:
        data_note = f"{len(X):,} rows" + (f" from {data_name}" if data_name else "")
    header = _summary_rows(model, data_note, summary)
    return render_html(title or f"vaekit report: {type(model).__name__}", header, sections)


def write_report(path: str | os.PathLike, model: Any, X: Any = None, **kwargs: Any) -> None:
    """Render :func:`render_report` and write it atomically to ``path`` (UTF-8).

    A failure while rendering leaves any existing file at ``path`` untouched.
    """
    text = render_report(model, X, **kwargs).encode("utf-8")
    atomic_write_bytes(path, text)


__all__ = [
    "ReportFigure",
    "ReportSection",
    "build_sections",
    "compressed_size",
    "figure_to_data_uri",
    "reconstruct",
    "render_html",
    "render_report",
    "sample_rows",
    "write_report",
]
