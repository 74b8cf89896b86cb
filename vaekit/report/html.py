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
from .data import anomaly_labels
from .metrics import label_metrics, precision_recall

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
# Rows a detector scores at once when it scores every row of DATA (score_all_rows):
# the tensors of one block (a few MB for tables) exist at a time, however long the data.
SCORE_BLOCK_ROWS = 8192

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
                          "divided by the rows (entropy-coded codes, plus the values of "
                          "the grid a budget chose, plus the container's fixed header "
                          "and trailer; no id columns, no embedded model)")
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
    from ..fitted.streams import decompress_bytes

    fitted = F.fitted_model(model)
    if fitted.quantizer is not None:
        blob = compress_rows(fitted, X) if blob is None else blob
        return decompress_bytes(blob, fitted)
    return fitted.decode_means(fitted.encode_means(fitted.prepare(X)))


def final_negative_elbo(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Last recorded negative ELBO in nats per row: ``{"train": ..., "val": ...}``.

    The sign of the anomaly score and of the training figure (a cost, lower is
    better); ``val`` only when a validation split was held out.
    """
    recorded = [h for h in history if h.get("train_elbo") is not None]
    if not recorded:
        return {}
    last = recorded[-1]
    out = {"train": -float(last["train_elbo"])}
    if last.get("val_elbo") is not None:
        out["val"] = -float(last["val_elbo"])
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
    elbo = final_negative_elbo(fitted.history)
    if elbo:
        text = (f"{len(fitted.history)} epochs; final negative ELBO {elbo['train']:.3f} "
                "nats/row (training)")
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


def _top_table(contrib: pd.DataFrame, ids: list[Any], scores: np.ndarray, ranks: np.ndarray,
               n_rows: int) -> str:
    """HTML table of the top rows (in rank order): rank among all ``n_rows``, id, score
    and their three largest contributions."""
    body = []
    for pos, (rank, score) in enumerate(zip(ranks, scores, strict=True)):
        row = contrib.iloc[pos].sort_values(ascending=False).head(3)
        top = ", ".join(f"<code>{html.escape(str(c))}</code> {v:.1f}" for c, v in row.items())
        body.append(f"<tr><td class=num>{int(rank)}</td><td>{html.escape(str(ids[pos]))}</td>"
                    f"<td class=num>{score:.2f}</td><td>{top}</td></tr>")
    return (f"<p class=note>The {len(ids)} highest-scoring of all {n_rows:,} rows (the rows "
            "vaekit score --top ranks first).</p>"
            "<table><tr><th>rank</th><th>row</th><th>anomaly score (nats)</th>"
            "<th>largest contributions (nats)</th></tr>" + "".join(body) + "</table>")


def build_sections(model: Any, X: Any = None, *, labels: Sequence[Any] | None = None,
                   ids: Sequence[Any] | None = None, top_k: int = 10,
                   max_rows: int | None = 5000) -> tuple[list[ReportSection], list[tuple[str, str]]]:
    """Compute every figure of a report.

    Parameters are those of :func:`render_report`; ``model`` is a FittedVAE or a
    fitted estimator.  A detector scores every row of ``X`` (block by block,
    :func:`score_all_rows`): the score histogram, the top anomalies and the label
    metrics use all rows; only the latent-space plot (and a compressor's size and
    error figures) use the ``max_rows`` sample, and say so.

    Returns
    -------
    sections : list of ReportSection
    summary : list of (label, HTML)
        Extra header rows (rows used, mean negative ELBO, bytes per row).
    """
    F.require_matplotlib()
    fitted = F.fitted_model(model)
    is_detector = fitted.decision_scores is not None  # kept training scores: a detector
    is_image = fitted.input_kind == "image"
    sections = [ReportSection("Training", [ReportFigure(
        "fig-training-curves",
        "Per-epoch means in nats per row, all costs (lower is better): negative ELBO "
        "(beta = 1) = reconstruction cost + KL, the sign of the anomaly score and of the "
        "loss in the progress bar of vaekit fit. Validation curves appear when training held "
        "out a validation split. The KL weight ramps up during warm-up, so early epochs are "
        "not the loss the optimizer saw. The dotted line marks the epoch whose weights were "
        "kept; the note under the panels says why training stopped where it did.",
        F.training_curves(fitted))])]
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
    y = None
    if labels is not None:
        # A detector's labels are anomaly labels (metrics need them); others only color.
        y = (anomaly_labels(labels).astype(np.int8) if is_detector
             else np.asarray(labels, dtype=object))
    all_ids = (list(np.asarray(ids, dtype=object)) if ids is not None
               else list(range(1, n_total + 1)))
    rows = sample_rows(n_total, max_rows)
    rows_note = (f"a fixed-seed random sample of {len(rows):,} of {n_total:,} rows"
                 if len(rows) < n_total else f"all {n_total:,} rows")
    X_s = _take(X, rows)
    tensors = fitted.prepare(X_s)  # the one conversion of the sampled rows
    means = fitted.encode_means(tensors)
    if is_detector:
        threshold = fitted.threshold()
        scores = score_all_rows(fitted, X)
        used = "scores, top anomalies" + (" and label metrics" if y is not None else "")
        summary.append(("Rows used", html.escape(
            f"{used}: all {n_total:,} rows; latent-space plot: {rows_note}")))
        summary.append(("Mean negative ELBO on data", html.escape(
            f"{scores.mean():.3f} nats/row ({int(np.sum(scores > threshold)):,} of "
            f"{n_total:,} rows above the threshold)")))
        sections.append(_score_section(fitted, X, scores, threshold, y, all_ids, top_k))
        if y is not None:
            sections.append(_label_section(scores, y.astype(bool), threshold, top_k))
        color_scores, score_label = scores[rows], "anomaly score (nats)"
    else:
        summary.append(("Rows used", html.escape(
            f"bytes per row, reconstruction error and latent-space plot: {rows_note}")))
        color_scores = -fitted.score_terms(tensors).score
        score_label = "negative ELBO (nats)"
        summary.append(("Mean negative ELBO on data", html.escape(
            f"{color_scores.mean():.3f} nats/row ({rows_note})")))

    recon = None
    if not is_detector:
        # One codec pass serves both the size and the round trip.
        blob = compress_rows(fitted, X_s) if fitted.quantizer is not None else None
        bpr, how = compressed_size(fitted, X_s, blob)
        summary.append(("Bytes per row", f"<b>{bpr:.2f}</b> <span class=note>"
                                         f"({html.escape(how)})</span>"))
        recon = reconstruct(fitted, X_s, blob)
        if is_image:
            err_fig = F.pixel_error_map(np.asarray(tensors["x"]), F.to_unit_nchw(fitted, recon),
                                        bytes_per_row=bpr, rows_note=rows_note)
            caption = ("RMSE between the images and their decompressed versions at each pixel "
                       "position, in 8-bit gray levels.")
        else:
            err_fig = F.reconstruction_error(X_s, recon, fitted.schema, bytes_per_row=bpr,
                                             rows_note=rows_note)
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
                             np.asarray(tensors["x"][:N_GRID_IMAGES]),
                             F.to_unit_nchw(fitted, recon[:N_GRID_IMAGES]), n=N_GRID_IMAGES,
                             title="Inputs and their reconstructions" + (
                                 " (decoded posterior means)" if is_detector
                                 else " after compress + decompress"))),
            _prior_figure(fitted)]))

    sample_labels = None if y is None else y[rows]
    sections.append(ReportSection("Latent space", [ReportFigure(
        "fig-latent-space",
        f"Posterior means of {rows_note} projected to 2-D: the two latent dimensions with the "
        "largest KL when at most two carry information, else the first two principal "
        "components. " + ("Colored by label." if sample_labels is not None else
                          f"Colored by {score_label}."),
        F.latent_space(fitted, means, scores=color_scores, labels=sample_labels,
                       score_label=score_label, rows_note=rows_note))]))
    return sections, summary


def score_all_rows(model: Any, X: Any, block_rows: int = SCORE_BLOCK_ROWS) -> np.ndarray:
    """Anomaly scores (negative ELBO, nats) of every row of ``X``, ``block_rows`` at a time.

    Only one block's tensors exist at a time, so memory beyond ``X`` itself is 8 bytes
    per row.  The scores are those of ``vaekit score`` and ``anomaly_score``: a row's
    score depends only on the row and the model, never on the block it is scored in
    (:mod:`vaekit.fitted.scoring`).

    Raises
    ------
    DataError
        A value the model cannot use, naming its row in ``X``.
    """
    from ..errors import DataError

    fitted = F.fitted_model(model)
    n = len(X)
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        block = X.iloc[start:stop] if isinstance(X, pd.DataFrame) else np.asarray(X)[start:stop]
        try:
            tensors = fitted.prepare(block)
        except DataError as exc:
            raise exc.located(row_offset=start) from None
        out[start:stop] = -fitted.score_terms(tensors).score
    return out


def _ranks(scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rank of each row at ``positions``: 1 + the rows scoring strictly higher (ties share)."""
    ordered = np.sort(scores)
    return 1 + len(scores) - np.searchsorted(ordered, scores[positions], side="right")


def _score_section(fitted: FittedVAE, X: Any, scores: np.ndarray, threshold: float,
                   y: np.ndarray | None, ids: list[Any], top_k: int) -> ReportSection:
    """Score histogram and the top anomalies of all rows, with their contributions."""
    n = len(scores)
    sec = ReportSection("Scores", [ReportFigure(
        "fig-score-distribution",
        f"Anomaly scores (negative ELBO, nats) of all {n:,} data rows, with the training rows' "
        "scores as an outline; the dashed line is the detector's threshold.",
        F.score_distribution(scores, threshold, y, reference=fitted.decision_scores))])
    top = np.argsort(-scores, kind="stable")[:top_k]  # ties: the earlier row first
    top_ids = [ids[i] for i in top]
    tensors = fitted.prepare(_take(X, top))
    contrib = fitted.explain(tensors)  # only the top rows are explained
    if fitted.input_kind == "image":
        sec.figures.append(ReportFigure(
            "fig-top-anomalies",
            f"The highest-scoring of all {n:,} images and where in the image their score "
            "comes from (negative log-likelihood per pixel, nats).",
            F.top_anomaly_images(np.asarray(tensors["x"]), _pixel_contributions(fitted, contrib),
                                 scores[top], top_ids, k=top_k)))
        return sec
    contrib.index = pd.Index(top_ids)
    sec.html = _top_table(contrib, top_ids, scores[top], _ranks(scores, top), n)
    sec.figures.append(ReportFigure(
        "fig-top-anomalies",
        f"Each panel is one of the highest-scoring of all {n:,} rows; bars are the per-column "
        "terms of its score (negative log-likelihood of the column, plus the latent KL term "
        "'kl') and add up to the score. Continuous columns can contribute negative nats.",
        F.top_anomalies(contrib, top_ids, k=top_k)))
    return sec


def _label_section(scores: np.ndarray, y: np.ndarray, threshold: float,
                   top_k: int) -> ReportSection:
    """ROC-AUC, average precision, precision@k and the precision-recall curve, all rows."""
    m = label_metrics(scores, y, (top_k,))
    n_pos = m.n_anomalies

    def num(v: float | None) -> str:
        return "undefined (the labels hold one class only)" if v is None else f"{v:.3f}"

    rows = [("ROC-AUC", num(m.roc_auc)), ("Average precision", num(m.average_precision))]
    for k, p in m.precision_at.items():
        why = " and ".join(w for w, kk in (("k = labelled anomalies", n_pos),
                                           ("k = rows in the top-anomalies table", top_k))
                           if kk == k)
        rows.append((f"Precision@{k:,} ({why})", f"{p:.3f}"))
    table = ("<table><tr><th>metric</th><th>value</th></tr>" + "".join(
        f"<tr><td>{html.escape(a)}</td><td class=num>{html.escape(b)}</td></tr>"
        for a, b in rows) + "</table>")
    note = (f"<p class=note>Labels: {n_pos:,} of {m.n_rows:,} rows are anomalies (1/true). "
            f"Every number is computed on all {m.n_rows:,} rows, ranked by anomaly score "
            "(higher = more anomalous), with scikit-learn's definitions.</p>")
    sec = ReportSection("Labels", html=table + note)
    if m.roc_auc is not None:
        sec.figures.append(ReportFigure(
            "fig-precision-recall",
            "Precision and recall of the rows ranked by anomaly score, over all rows; dots "
            "mark precision@k, the diamond the detector's threshold, the dashed line what a "
            "random ranking would give.",
            precision_recall(scores, y, threshold=threshold, ks=(top_k,))))
    return sec


def _prior_figure(fitted: FittedVAE) -> ReportFigure:
    return ReportFigure("fig-prior-samples",
                        "Decoder mean images for random draws z ~ N(0, I): what the model "
                        "thinks a typical image looks like. Blurry samples are normal for a VAE.",
                        F.prior_samples(fitted, n=N_PRIOR_SAMPLES))


def _pixel_contributions(fitted: FittedVAE, contrib: pd.DataFrame) -> np.ndarray:
    """``explain`` output of an image model -> (n, H, W) nats, channels summed (the
    latent and complexity terms are not per pixel and are left out)."""
    from ..fitted.model import COMPLEXITY_TERM

    c, h, w = fitted.schema.shape
    whole_image = [n for n in ("kl", COMPLEXITY_TERM) if n in contrib.columns]
    pixels = contrib.drop(columns=whole_image).to_numpy(dtype=np.float64)
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
        One label per row of ``X``, not used for scoring.  For a detector these are
        anomaly labels -- 1/true = anomaly, 0/false = normal (ints, bools or the
        text "0"/"1"/"true"/"false"); the report then adds ROC-AUC, average
        precision, precision@k (k = labelled anomalies and ``top_k``) and a
        precision-recall curve, all on every row.  For a compressor any values;
        they color the latent plot.
    ids : sequence, optional
        One identifier per row, shown for the top anomalies (default: 1-based row).
    top_k : int
        Anomalies shown: the highest-scoring of all rows.
    max_rows : int or None
        The latent-space plot (and a compressor's size and error figures) use at
        most this many rows, a fixed-seed random sample; None = all.  A detector
        always scores and ranks every row.
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
        ``X`` does not fit the model, ``labels``/``ids`` have the wrong length, or a
        detector's label is not 0/1/true/false.
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
    "score_all_rows",
    "write_report",
]
