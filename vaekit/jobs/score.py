"""Scoring one chunk of rows: prepare -> score terms -> one output row per input row.

:func:`score_chunk` is the one per-chunk function every engine calls (the local
loop, a Dask task, a Dask DataFrame partition), so their results are identical by
construction: a row's score depends only on the row and the model (see
:mod:`vaekit.fitted.scoring`), never on the chunk it arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..data.tabular import TabularSchema
from ..errors import DataError
from ..files.readers import Chunk
from ..fitted.model import as_fitted
from .read import Tensors, prepare_chunk

# Scores are written rounded to this many decimals (micro-nats): far below any
# meaningful difference, and it makes the text output short and stable.
SCORE_DECIMALS = 6


@dataclass(frozen=True)
class ScoreOptions:
    """What :func:`score_chunk` writes for each row.

    Attributes
    ----------
    id_columns : tuple of str
        Columns copied to the output as text; when empty, ``file`` and ``line``
        columns identify the rows instead.
    threshold : float
        Rows with an anomaly score above it (nats) get ``is_anomaly = 1``.
    explain : int
        Number of top-contributing columns to report per row (0 = none).
    n_samples : int
        Importance samples per row (the model's own setting by default).
    """

    id_columns: tuple[str, ...] = ()
    threshold: float = float("inf")
    explain: int = 0
    n_samples: int = 16


def default_options(model: Any) -> ScoreOptions:
    """No id columns, the model's own threshold (nats; none: ``inf``) and ``n_samples``."""
    fitted = as_fitted(model)
    threshold = float("inf") if fitted.score_quantiles is None else fitted.threshold()
    return ScoreOptions(threshold=threshold, n_samples=fitted.n_samples)


def score_schema(model: Any, options: ScoreOptions, *, rank: bool) -> pa.Schema:
    """The Arrow schema of the score output (fixed, so every chunk and run match).

    ``anomaly_score`` and ``topK_nats`` are in nats; ``line`` is the CSV line
    (header = 1) or the 1-based row.
    """
    model = as_fitted(model)
    fields: list[pa.Field] = []
    if options.id_columns:
        fields += [pa.field(c, pa.string()) for c in options.id_columns]
    else:
        fields += [pa.field("file", pa.string()), pa.field("line", pa.int64())]
    fields.append(pa.field("anomaly_score", pa.float64()))
    if rank:
        fields.append(pa.field("rank", pa.int64()))
    fields.append(pa.field("is_anomaly", pa.int8()))
    if model.input_kind == "tabular":
        fields.append(pa.field("unseen", pa.string()))
    for k in range(1, min(options.explain, model.n_features) + 1):
        fields += [pa.field(f"top{k}_column", pa.string()), pa.field(f"top{k}_nats", pa.float64())]
    return pa.schema(fields)


def empty_scores(model: Any, options: ScoreOptions) -> pa.Table:
    """Zero scored rows (a chunk holding bad rows only), schema without ``rank``."""
    return score_schema(model, options, rank=False).empty_table()


def score_chunk(model: Any, chunk: Chunk, options: ScoreOptions, *,
                tensors: Tensors | None = None, set_threads: bool = True) -> pa.Table:
    """Score one chunk: prepare -> model -> one output row per input row.

    Parameters
    ----------
    model : FittedVAE or fitted estimator
    chunk : Chunk
        Rows read by :mod:`vaekit.files.readers` (model columns plus id columns).
    options : ScoreOptions
    tensors : dict, optional
        ``prepare_chunk(model, chunk)``, when the caller prepared it already.
    set_threads : bool
        Run the backend (torch, or numpy's BLAS) on the model's ``n_jobs`` threads
        (:meth:`FittedVAE.score_terms`).  False inside a pool of single-threaded
        workers (:meth:`FittedVAE.score_terms_unthreaded`): both thread settings
        are process-wide, and changing them from several threads at once would race.

    Returns
    -------
    pyarrow.Table
        Columns of :func:`score_schema` without ``rank`` (added by the caller, which
        sees all rows), in input order.  ``anomaly_score`` is the negative ELBO
        (importance-weighted bound for ``n_samples > 1``) in nats, minus the image's
        capped zlib code length for complexity-corrected image models (the same number as
        ``VAEAnomalyDetector.anomaly_score``).

    Raises
    ------
    DataError
        Naming the file, line and column of a value the model cannot use.
    """
    model = as_fitted(model)
    if tensors is None:
        tensors = prepare_chunk(model, chunk)
    if set_threads:
        scores = model.score_terms(tensors, options.n_samples)
    else:
        scores = model.score_terms_unthreaded(tensors, options.n_samples)
    anomaly = -scores.score  # negative bound; minus the zlib term for corrected images
    bad = np.flatnonzero(~np.isfinite(anomaly))
    if bad.size:
        # finite inputs and weights, yet the network overflowed on this row: a NaN
        # would rank first and be flagged normal, a silent wrong answer
        raise DataError("the model's score of this row is not finite (its values overflow "
                        "the network's float32 arithmetic)", file=chunk.file,
                        row=int(chunk.lines[bad[0]]))
    n = len(chunk)
    out: dict[str, Any] = {}
    if options.id_columns:
        for c in options.id_columns:
            out[c] = _as_text(chunk.data[c])
    else:
        out["file"] = pa.repeat(pa.scalar(chunk.file, type=pa.string()), n)
        out["line"] = pa.array(chunk.lines, type=pa.int64())
    out["anomaly_score"] = pa.array(np.round(anomaly, SCORE_DECIMALS), type=pa.float64())
    # The flag compares the unrounded score, exactly as VAEAnomalyDetector.predict does.
    out["is_anomaly"] = pa.array((anomaly > options.threshold).astype(np.int8), type=pa.int8())
    if isinstance(model.schema, TabularSchema):
        out["unseen"] = pa.array(_unseen_names(model.schema, np.asarray(tensors["unseen"])),
                                 type=pa.string())
    if options.explain:
        # nats per column (and per "<column> (missing)"), model order
        names, contrib = model.contributions(scores)
        k = min(options.explain, model.n_features)
        # Stable sort: ties keep the model's column order, so output is reproducible.
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        names_arr = np.asarray(names, dtype=object)
        for j in range(k):
            idx = order[:, j]
            out[f"top{j + 1}_column"] = pa.array(names_arr[idx], type=pa.string())
            out[f"top{j + 1}_nats"] = pa.array(
                np.round(contrib[np.arange(len(idx)), idx], SCORE_DECIMALS), type=pa.float64())
    return pa.table(out)


def _unseen_names(schema: TabularSchema, unseen: np.ndarray) -> list[str]:
    """Per row, the ``;``-joined columns whose value was not seen in training (or "")."""
    names = schema.names("binary") + schema.names("categorical")
    if unseen.size == 0 or not unseen.any():
        return [""] * unseen.shape[0]
    flags = unseen.astype(bool)
    out = [""] * flags.shape[0]
    for i in np.flatnonzero(flags.any(axis=1)):  # only rows with an unseen value
        out[i] = ";".join(n for n, u in zip(names, flags[i], strict=True) if u)
    return out


def _as_text(s: pd.Series) -> pa.Array:
    """An id column as text (missing stays missing), whatever type the reader gave it."""
    if pd.api.types.is_string_dtype(s.dtype):
        try:
            return pa.array(s, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # an object column holding more than text: convert value by value
    observed = s.notna().to_numpy()
    values = np.asarray(s.astype(object), dtype=object)
    return pa.array([str(v) if ok else None for v, ok in zip(values, observed, strict=True)],
                    type=pa.string())


def resolve_threshold(model: Any, *, threshold: float | None,
                      contamination: float | None) -> float:
    """Anomaly threshold in nats: explicit, from a contamination share, or the model's.

    Parameters
    ----------
    model : FittedVAE or fitted estimator
    threshold : float, optional
        Used as given (nats).
    contamination : float, optional
        Share of anomalies, applied to the quantiles of the training rows' scores kept
        in the model (:meth:`FittedVAE.threshold`), so it needs no pass over the input.

    Raises
    ------
    DataError
        If the model kept no training scores (a compressor) and no ``threshold``
        was given.
    """
    if threshold is not None:
        return float(threshold)
    fitted = as_fitted(model)
    if fitted.score_quantiles is None:
        if contamination is not None:
            raise DataError("this model holds no training scores; use --threshold instead of "
                            "--contamination")
        raise DataError("this model has no anomaly threshold (it was fitted as a "
                        "compressor); give --threshold T (nats)")
    return fitted.threshold(contamination)
