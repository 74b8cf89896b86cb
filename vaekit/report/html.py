"""Assemble the report: compute what the figures need and write one self-contained HTML file.

Self-contained means a browser shows it from disk with no server and no network:
every figure is a PNG inside a ``data:`` URI, the CSS is inline, there is no
script, and the page names no external URL at all (so it also opens in mail
clients and air-gapped machines).

Every entry point takes a fitted model (:class:`~vaekit.fitted.FittedVAE`) or a
fitted estimator, turns it into its FittedVAE once (:func:`vaekit.fitted.as_fitted`)
and from then on uses only the FittedVAE's public API; compression figures run the
codec streams of :mod:`vaekit.fitted.streams`.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..files.atomic import atomic_write_bytes
from . import figures as F

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..fitted import FittedVAE

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


def compress_rows(model: Any, X: Any) -> bytes:
    """The ``.vkc`` container of ``X`` (no id columns, no embedded model), in memory.

    Written with :class:`vaekit.fitted.streams.CompressedWriter` and the model's
    quantizer (:meth:`FittedVAE.default_quantizer`): the bytes ``compress(X)`` of a
    fitted :class:`~vaekit.VAECompressor` gives.
    """
    from ..fitted.streams import CompressedWriter

    fitted = F.fitted_model(model)
    buf = io.BytesIO()
    with CompressedWriter(buf, fitted, n_rows=len(X)) as writer:
        writer.write(X)
    return buf.getvalue()


def compressed_size(model: Any, X: Any, blob: bytes | None = None) -> tuple[float, str]:
    """Bytes per row of ``X`` under ``model``, and how it was measured.

    Parameters
    ----------
    model : FittedVAE or fitted estimator
    X : rows or images
    blob : bytes, optional
        :func:`compress_rows` output for ``X``, if already computed.

    Returns
    -------
    bytes_per_row : float
        For a model with a stored quantizer (a compressor): the size of the whole
        ``.vkc`` container of ``X`` (:func:`compress_rows`: codes after entropy
        coding plus header and trailer, no id columns, no embedded model) divided
        by the rows.  Otherwise: 4 bytes per latent dimension, the size of
        uncompressed float32 codes.
    how : str
        A sentence saying which of the two it is.
    """
    fitted = F.fitted_model(model)
    n = len(X)
    if fitted.quantizer is not None:
        size = len(compress_rows(fitted, X) if blob is None else blob)
        return size / n, (f"measured: the {size:,}-byte .vkc container of these {n:,} rows "
                          "divided by the rows (entropy-coded codes plus the container's "
                          "fixed header and trailer; no id columns, no embedded model)")
    d = fitted.latent_dim
    return 4.0 * d, (f"not measured: this model has no quantizer of its own (it is no "
                     f"compressor), so the figure is the size of raw float32 codes "
                     f"(4 bytes x {d} latent dimensions)")


def reconstruct(model: Any, X: Any, blob: bytes | None = None) -> Any:
    """What a user gets back for ``X``: the codec round trip when the model has one.

    A model with a stored quantizer (a compressor) gives back
    decompress(compress(X)), through :func:`vaekit.fitted.streams.iter_decompressed`;
    that includes the quantization error, which is the error a user of the
    compressed file sees.  Other models decode their posterior means.  ``blob``:
    :func:`compress_rows` output for ``X``, if already computed.
    """
    from ..fitted.streams import iter_decompressed, join_chunks

    fitted = F.fitted_model(model)
    if fitted.quantizer is not None:
        blob = compress_rows(fitted, X) if blob is None else blob
        return join_chunks(list(iter_decompressed(io.BytesIO(blob), fitted)), fitted)
    return fitted.decode_means(fitted.encode_means(fitted.prepare(X)))


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


def _summary_rows(fitted: FittedVAE, data_note: str | None, extra: list[tuple[str, str]]
                  ) -> list[tuple[str, str]]:
    """(label, HTML) pairs for the header table."""
    rows = [("Model", html.escape(f"{fitted.estimator} ({fitted.input_kind} input)"))]
    schema = fitted.schema
    if fitted.input_kind == "image":
        c, h, w = schema.shape
        rows.append(("Input", html.escape(f"images {c} x {h} x {w} (C x H x W), layout "
                                          f"{schema.layout}, dtype {schema.dtype}")))
    else:
        parts = []
        for spec in schema.columns:
            what = spec.kind if spec.kind == "numeric" else f"{spec.kind}, {len(spec.levels)} levels"
            parts.append(f"<code>{html.escape(spec.name)}</code> ({html.escape(what)})")
        rows.append((f"Columns ({len(schema.columns)})", ", ".join(parts)))
    kl = np.asarray(fitted.latent_stats["kl"], dtype=np.float64)
    rows.append(("Latent dimensions", html.escape(
        f"{fitted.latent_dim} ({int(np.sum(kl > F.INFORMATIVE_KL))} informative: mean KL "
        f"> {F.INFORMATIVE_KL} nats; total KL {kl.sum():.2f} nats/row)")))
    if fitted.sha256:  # the model file's checksum, when loaded from one
        rows.append(("Fingerprint (SHA-256)",
                     f"<code class=hash>{html.escape(str(fitted.sha256))}</code>"))
    elbo = final_elbo(fitted.history)
    if elbo:
        text = f"{len(fitted.history)} epochs; final ELBO {elbo['train']:.3f} nats/row (training)"
        if "val" in elbo:
            text += f", {elbo['val']:.3f} nats/row (validation)"
        rows.append(("Training", html.escape(text)))
    if fitted.decision_scores is not None:
        rows.append(("Threshold", html.escape(f"{fitted.threshold():.3f} nats (anomaly score)")))
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

    Parameters are those of :func:`render_report`; ``model`` is a FittedVAE or a
    fitted estimator.

    Returns
    -------
    sections : list of ReportSection
    summary : list of (label, HTML)
        Extra header rows (data size, mean ELBO, bytes per row).
    """
    F.require_matplotlib()
    fitted = F.fitted_model(model)
    is_detector = fitted.decision_scores is not None  # kept training scores: a detector
    is_image = fitted.input_kind == "image"
    sections = [ReportSection("Training", [ReportFigure(
        "fig-training-curves",
        "Per-epoch means in nats per row, ELBO with beta = 1. Validation curves appear when "
        "training held out a validation split. The KL weight ramps up during warm-up, so the "
        "early ELBO is not a loss the optimizer saw.",
        F.training_curves(fitted.history))])]
    summary: list[tuple[str, str]] = []

    if X is None:
        if is_detector:
            sections.append(ReportSection("Scores", [ReportFigure(
                "fig-score-distribution",
                "Anomaly scores of the training rows (stored in the model file); the dashed "
                "line is the threshold. Give DATA to score other rows.",
                F.score_distribution(fitted.decision_scores, fitted.threshold()))]))
        if is_image:
            sections.append(ReportSection("Images", [_prior_figure(fitted)]))
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

    tensors = fitted.prepare(X)  # the one conversion of the rows
    means = fitted.encode_means(tensors)
    if is_detector:
        threshold = fitted.threshold()
        contrib = fitted.explain(tensors)
        scores = contrib.sum(axis=1).to_numpy()
        summary.append(("Mean ELBO on data", html.escape(
            f"{-scores.mean():.3f} nats/row ({int(np.sum(scores > threshold)):,} of "
            f"{len(scores):,} rows above the threshold)")))
        score_sec = ReportSection("Scores", [ReportFigure(
            "fig-score-distribution",
            "Anomaly scores (negative ELBO, nats) of the data rows, with the training rows' "
            "scores as an outline; the dashed line is the detector's threshold.",
            F.score_distribution(scores, threshold, labels,
                                 reference=fitted.decision_scores))])
        if is_image:
            pix = _pixel_contributions(fitted, contrib)
            score_sec.figures.append(ReportFigure(
                "fig-top-anomalies",
                "The highest-scoring images and where in the image their score comes from "
                "(negative log-likelihood per pixel, nats).",
                F.top_anomaly_images(tensors["x"].numpy(), pix, scores, ids, k=top_k)))
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
        color_scores = -fitted.score_terms(tensors).elbo
        score_label = "negative ELBO (nats)"
        summary.append(("Mean ELBO on data", html.escape(f"{-color_scores.mean():.3f} nats/row")))

    recon = None
    if not is_detector:
        # One codec pass serves both the size and the round trip.
        blob = compress_rows(fitted, X) if fitted.quantizer is not None else None
        bpr, how = compressed_size(fitted, X, blob)
        summary.append(("Bytes per row", f"<b>{bpr:.2f}</b> <span class=note>"
                                         f"({html.escape(how)})</span>"))
        recon = reconstruct(fitted, X, blob)
        if is_image:
            err_fig = F.pixel_error_map(tensors["x"].numpy(), F.to_unit_nchw(fitted, recon),
                                        bytes_per_row=bpr)
            caption = ("RMSE between the images and their decompressed versions at each pixel "
                       "position, in 8-bit gray levels.")
        else:
            err_fig = F.reconstruction_error(X, recon, fitted.schema, bytes_per_row=bpr)
            caption = ("Error of the decompressed rows, per column: numeric columns as RMSE in "
                       "robust standard deviations of the column (its IQR / 1.35), binary and "
                       "categorical columns as the percent of rows whose value changed.")
        sections.append(ReportSection("Compression", [ReportFigure(
            "fig-reconstruction-error", caption, err_fig)]))

    if is_image:
        if recon is None:
            recon = fitted.decode_means(means)  # reconstruct(), reusing the means
        sections.append(ReportSection("Images", [
            ReportFigure("fig-reconstructions",
                         "Top: the first sampled inputs. Bottom: what the model gives back"
                         + (" after compression." if not is_detector else
                            " (decoded posterior means)."),
                         F.image_reconstructions(
                             tensors["x"][:N_GRID_IMAGES].numpy(),
                             F.to_unit_nchw(fitted, recon[:N_GRID_IMAGES]), n=N_GRID_IMAGES,
                             title="Inputs and their reconstructions" + (
                                 " (decoded posterior means)" if is_detector
                                 else " after compress + decompress"))),
            _prior_figure(fitted)]))

    sections.append(ReportSection("Latent space", [ReportFigure(
        "fig-latent-space",
        "Posterior means of the data rows projected to 2-D: the two latent dimensions with the "
        "largest KL when at most two carry information, else the first two principal "
        "components. " + ("Colored by label." if labels is not None else
                          f"Colored by {score_label}."),
        F.latent_space(fitted, means, scores=color_scores, labels=labels,
                       score_label=score_label))]))
    return sections, summary


def _prior_figure(fitted: FittedVAE) -> ReportFigure:
    return ReportFigure("fig-prior-samples",
                        "Decoder mean images for random draws z ~ N(0, I): what the model "
                        "thinks a typical image looks like. Blurry samples are normal for a VAE.",
                        F.prior_samples(fitted, n=N_PRIOR_SAMPLES))


def _pixel_contributions(fitted: FittedVAE, contrib: pd.DataFrame) -> np.ndarray:
    """``explain`` output of an image model -> (n, H, W) nats, channels summed."""
    c, h, w = fitted.schema.shape
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
    model : FittedVAE, VAEAnomalyDetector or VAECompressor
        A fitted model (e.g. :meth:`FittedVAE.load` of a ``.vaekit`` file) or a
        fitted estimator (its ``fitted_`` is used).
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
        Page title (default: "vaekit report: <estimator class name>").
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
    fitted = F.fitted_model(model)
    sections, summary = build_sections(fitted, X, labels=labels, ids=ids, top_k=top_k,
                                       max_rows=max_rows)
    data_note = None
    if X is not None:
        data_note = f"{len(X):,} rows" + (f" from {data_name}" if data_name else "")
    header = _summary_rows(fitted, data_note, summary)
    return render_html(title or f"vaekit report: {fitted.estimator}", header, sections)


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
    "compress_rows",
    "compressed_size",
    "figure_to_data_uri",
    "reconstruct",
    "render_html",
    "render_report",
    "sample_rows",
    "write_report",
]
