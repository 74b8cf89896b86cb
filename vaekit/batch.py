"""Batch jobs over files: the per-chunk work and the local streaming loop.

One pure function per job does the work on one chunk of rows
(:func:`score_chunk`: prepare -> model -> rows out).  The local loop
(:func:`iter_scored`) and any parallel engine call the same function, so their
results are identical by construction: a row's score depends only on the row and
the model (see :mod:`vaekit.fitted.scoring`), never on the chunk it arrived in.

The local loop reads ahead in a background thread and can score several chunks
at once (``threads``); results stay identical because each chunk is scored by the
same single-threaded kernels and chunks come back in input order.

Memory stays bounded by a few chunks (read ahead, being scored), except for two
documented cases: ranking keeps one float64 per row (8 bytes/row) and ``--top K``
keeps K rows.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from queue import Full, Queue
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import torch

from .data.images import ImageSchema
from .data.tabular import TabularSchema
from .errors import DataError
from .estimators.base import _VAEBase, n_threads, resolve_device, torch_threads
from .files.readers import (
    BadRow,
    Chunk,
    coerce_frame,
    infer_types,
    input_format,
    integer_columns,
    iter_images,
    iter_table,
    read_images,
    table_columns,
)
from .fitted.scoring import score_rows, threshold_from_scores

# Scores are written rounded to this many decimals (micro-nats): far below any
# meaningful difference, and it makes the text output short and stable.
SCORE_DECIMALS = 6

Progress = Callable[[int], None]


# --------------------------------------------------------------------------- columns


def reading_types(schema: TabularSchema, id_columns: Sequence[str] = ()) -> dict[str, str]:
    """How to read each column a fitted tabular model needs (see :mod:`vaekit.files.readers`).

    Numeric columns are numbers; binary and categorical columns whose training
    levels were all numbers are read as numbers too (so ``1`` matches level ``1``),
    otherwise as text.  Id columns are always text, so they pass through exactly.
    """
    types: dict[str, str] = {c: "text" for c in id_columns}
    for spec in schema.columns:
        if spec.name in types:
            raise DataError(f"column {spec.name!r} is a model column and cannot be an id column")
        if spec.kind == "numeric":
            types[spec.name] = "float"
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec.levels):
            types[spec.name] = "level"
        else:
            types[spec.name] = "text"
    return types


def warn_extra_columns(path: str, available: Sequence[str], used: Sequence[str]) -> None:
    """Warn (once per file) about columns the model does not use."""
    extra = [c for c in available if c not in set(used)]
    if extra:
        warnings.warn(f"{path}: ignoring column(s) {extra} that the model was not fitted on",
                      UserWarning, stacklevel=2)


# --------------------------------------------------------------------------- fit input


@dataclass
class TrainingData:
    """Training rows gathered from the inputs.

    Attributes
    ----------
    data : DataFrame or ndarray
        Features only (no id columns); images as an array.
    kind : {"tabular", "image"}
    bad : list of BadRow
        Rows left out (``--on-bad-rows skip``).
    """

    data: pd.DataFrame | np.ndarray
    kind: str
    bad: list[BadRow] = field(default_factory=list)


def load_training_data(inputs: Sequence[str], *, kind: str = "auto",
                       columns: Sequence[str] | None = None, exclude: Sequence[str] = (),
                       id_columns: Sequence[str] = (), categorical: Sequence[str] = (),
                       max_rows: int | None = None, skip_bad_rows: bool = False,
                       progress: Progress | None = None) -> TrainingData:
    """Read every input into memory for fitting (the first ``max_rows`` rows at most).

    Tables are read as text and each column's type is decided from all rows, so a
    numeric column whose first rows happen to be empty is still numeric.

    Raises
    ------
    DataError
        Unreadable input, images mixed with tables, a bad row when
        ``skip_bad_rows`` is False, or no rows at all.
    """
    formats = {input_format(p) for p in inputs}
    image_input = formats & {"npz", "images"}
    if image_input and formats - {"npz", "images"}:
        raise DataError("cannot mix image inputs with tables in one call")
    if kind == "image" and not image_input:
        raise DataError("--kind image needs .npz files or folders of images")
    if image_input:
        if kind == "tabular":
            raise DataError("--kind tabular needs CSV or Parquet inputs")
        arrays = [read_images(p) for p in inputs]
        shapes = {a.shape[1:] for a in arrays}
        if len(shapes) > 1:
            raise DataError(f"the image inputs have different image shapes: {sorted(shapes)}")
        images = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        if max_rows is not None:
            images = images[:max_rows]
        if progress:
            progress(len(images))
        return TrainingData(images, "image")

    frames: list[pd.DataFrame] = []
    lines: list[np.ndarray] = []
    files: list[str] = []
    bad: list[BadRow] = []
    n = 0
    wanted: list[str] | None = None
    for path in inputs:
        names = table_columns(path)
        if wanted is None:
            # The first file decides the columns; later files must have them too.
            wanted = _select_columns(path, names, columns, exclude, id_columns)
        else:
            dropped = [c for c in names if c not in wanted and c not in id_columns
                       and c not in exclude]
            if dropped and not columns:
                warn_extra_columns(path, dropped, [])
        for chunk in iter_table(path, dict.fromkeys(wanted, "text")):
            frames.append(chunk.data)
            lines.append(chunk.lines)
            files.extend([path] * len(chunk))
            bad.extend(chunk.bad)
            n += len(chunk)
            if progress:
                progress(len(chunk))
            if max_rows is not None and n >= max_rows:
                break
        if max_rows is not None and n >= max_rows:
            break
    if bad and not skip_bad_rows:
        raise bad[0].error()
    frame = pd.concat(frames, ignore_index=True)
    all_lines = np.concatenate(lines)
    if max_rows is not None:
        frame, all_lines, files = frame.iloc[:max_rows], all_lines[:max_rows], files[:max_rows]
    frame, bad_values = _typed_training_frame(frame, all_lines, files, categorical)
    if bad_values and not skip_bad_rows:
        raise bad_values[0].error()
    bad.extend(bad_values)
    if len(frame) == 0:
        raise DataError("no usable rows in the input")
    return TrainingData(frame, "tabular", bad)


def _select_columns(path: str, names: Sequence[str], columns: Sequence[str] | None,
                    exclude: Sequence[str], id_columns: Sequence[str]) -> list[str]:
    for group, label in ((columns or [], "--columns"), (exclude, "--exclude"),
                         (id_columns, "--id-column")):
        missing = [c for c in group if c not in names]
        if missing:
            raise DataError(f"{label} names column(s) {missing} that are not in the file "
                            f"(it has {list(names)})", file=path, row=1)
    chosen = list(columns) if columns else list(names)
    dropped = set(exclude) | set(id_columns)
    return [c for c in chosen if c not in dropped]


def _typed_training_frame(frame: pd.DataFrame, lines: np.ndarray, files: Sequence[str],
                          categorical: Sequence[str]) -> tuple[pd.DataFrame, list[BadRow]]:
    """Decide column types from all rows, convert, and split off bad values."""
    types = infer_types(frame, categorical)
    bad: list[BadRow] = []
    if not any(t == "float" for t in types.values()):
        return frame, bad
    # coerce_frame names one file; give each row its own by converting per file.
    parts = []
    file_arr = np.asarray(files, dtype=object)
    for path in dict.fromkeys(files):
        sel = np.flatnonzero(file_arr == path)
        sub = frame.iloc[sel].reset_index(drop=True)
        good, _, bad_here = coerce_frame(sub, types, lines[sel], path)
        parts.append(good)
        bad.extend(bad_here)
    return integer_columns(pd.concat(parts, ignore_index=True)), bad


# --------------------------------------------------------------------------- scoring


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


def score_schema(estimator: _VAEBase, options: ScoreOptions, *, rank: bool) -> pa.Schema:
    """The Arrow schema of the score output (fixed, so every chunk and run match)."""
    fields: list[pa.Field] = []
    if options.id_columns:
        fields += [pa.field(c, pa.string()) for c in options.id_columns]
    else:
        fields += [pa.field("file", pa.string()), pa.field("line", pa.int64())]
    fields.append(pa.field("anomaly_score", pa.float64()))
    if rank:
        fields.append(pa.field("rank", pa.int64()))
    fields.append(pa.field("is_anomaly", pa.int8()))
    if estimator.input_kind_ == "tabular":
        fields.append(pa.field("unseen", pa.string()))
    for k in range(1, min(options.explain, _n_features(estimator)) + 1):
        fields += [pa.field(f"top{k}_column", pa.string()), pa.field(f"top{k}_nats", pa.float64())]
    return pa.schema(fields)


def _n_features(estimator: _VAEBase) -> int:
    if estimator.input_kind_ == "image":
        return int(estimator.schema_.n_pixels)
    return len(estimator.schema_.columns)


def encode_chunk(estimator: _VAEBase, chunk: Chunk) -> dict[str, torch.Tensor]:
    """The model's input tensors for the rows of ``chunk``.

    Raises
    ------
    DataError
        Naming the file, line and column of a value the model cannot use.
    """
    schema = estimator.schema_
    try:
        if isinstance(schema, ImageSchema):
            return schema.encode(chunk.data)
        return schema.encode(chunk.data[schema.names()])
    except DataError as exc:
        line = int(chunk.lines[exc.row]) if exc.row is not None else None
        raise DataError(exc.reason, file=chunk.file, row=line, column=exc.column) from None


def score_chunk(estimator: _VAEBase, chunk: Chunk, options: ScoreOptions, *,
                tensors: dict[str, torch.Tensor] | None = None) -> pa.Table:
    """Score one chunk: prepare -> model -> one output row per input row.

    Parameters
    ----------
    estimator : fitted VAEAnomalyDetector (or VAECompressor)
    chunk : Chunk
        Rows read by :mod:`vaekit.files.readers` (model columns plus id columns).
    options : ScoreOptions
    tensors : dict, optional
        ``encode_chunk(estimator, chunk)``, when the caller prepared it already.

    Returns
    -------
    pyarrow.Table
        Columns of :func:`score_schema` without ``rank`` (added by the loop, which
        sees all rows), in input order.  ``anomaly_score`` is the negative ELBO
        (importance-weighted bound for ``n_samples > 1``) in nats.

    Raises
    ------
    DataError
        Naming the file, line and column of a value the model cannot use.
    """
    schema = estimator.schema_
    if tensors is None:
        tensors = encode_chunk(estimator, chunk)
    # Inside the pipeline's worker threads torch is already single-threaded; changing
    # the (process-wide) thread settings from several threads at once would race.
    threads = nullcontext() if getattr(_WORKER, "active", False) else \
        torch_threads(estimator.n_jobs)
    with threads:
        scores = score_rows(estimator.model_, tensors, n_samples=options.n_samples,
                            seed=estimator.seed_, device=resolve_device(estimator.device))
    anomaly = -scores.elbo
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
    if isinstance(schema, TabularSchema):
        out["unseen"] = pa.array(_unseen_names(schema, tensors["unseen"].numpy()), type=pa.string())
    if options.explain:
        names = estimator._feature_names_model_order()
        contrib = -scores.recon_per_feature  # nats per column, model order
        k = min(options.explain, contrib.shape[1])
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


def resolve_threads(threads: int | None, estimator: _VAEBase | None = None) -> int:
    """Scoring threads: ``threads`` if given (0 or less = one per CPU core), else the
    estimator's ``n_jobs`` read as everywhere else (:func:`n_threads`)."""
    if threads is None:
        return n_threads(getattr(estimator, "n_jobs", None))
    if threads <= 0:
        return max(1, os.cpu_count() or 1)
    return int(threads)


def iter_scored(inputs: Sequence[str], estimator: _VAEBase, options: ScoreOptions, *,
                skip_bad_rows: bool = False, progress: Progress | None = None,
                threads: int | None = None,
                pipeline: bool = True) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """The local engine: read each input in chunks and score them, in order.

    Parameters
    ----------
    threads : int, optional
        Chunks scored at the same time, each on one torch thread (0 = one per CPU
        core; default: the estimator's ``n_jobs``, None meaning 1).
    pipeline : bool
        Read and encode the next chunks in a background thread while the current
        ones are scored (a bounded queue: a few chunks ahead at most).

    Results are identical, bit for bit, whatever ``threads`` and ``pipeline``:
    every chunk is scored by the same single-threaded kernels on the same
    fixed-shape blocks, and chunks come back in input order.

    Yields
    ------
    (table, bad_rows)
        Scored rows of one chunk (see :func:`score_chunk`) and the rows of that
        chunk that were left out.  With ``skip_bad_rows=False`` the first bad row
        raises :class:`DataError` instead (after the chunks before it).

    Raises
    ------
    DataError
        Also when a model column has no value at all in a file (an empty export
        column would otherwise be silently marginalized out of every score).
    """
    n_workers = resolve_threads(threads, estimator)
    work = _work_items(inputs, estimator, options, skip_bad_rows)
    if not pipeline and n_workers == 1:
        for chunk, tensors in work:
            yield _score_item(estimator, options, chunk, tensors), chunk.bad
            if progress:
                progress(len(chunk) + len(chunk.bad))
        return
    yield from _pipelined(work, estimator, options, n_workers, pipeline, progress)


# Chunks read ahead of the scorers; with ``threads`` scorers at most
# ``threads + READ_AHEAD + 1`` chunks are in memory at once (one chunk is ~2 MB of
# CSV text, see vaekit.files.readers.DEFAULT_BLOCK_BYTES).
READ_AHEAD = 2

_WORKER = threading.local()
_END = object()


class _Failure:
    """An exception raised while reading, passed on in input order."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _score_item(estimator: _VAEBase, options: ScoreOptions, chunk: Chunk,
                tensors: dict[str, torch.Tensor] | None) -> pa.Table:
    if tensors is None:
        return _empty_like(estimator, options)
    return score_chunk(estimator, chunk, options, tensors=tensors)


def _init_worker() -> None:
    _WORKER.active = True
    torch.set_num_threads(1)


def _pipelined(work: Iterator[tuple[Chunk, dict[str, torch.Tensor] | None]],
               estimator: _VAEBase, options: ScoreOptions, n_workers: int, read_ahead: bool,
               progress: Progress | None) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """Reader thread -> ``n_workers`` scoring threads -> results in input order.

    pyarrow and torch release the GIL while they work, so parsing the next chunk
    and scoring the current ones overlap.  Memory stays bounded: the reader blocks
    when :data:`READ_AHEAD` chunks wait, and at most ``n_workers + 1`` chunks are
    submitted for scoring at once.
    """
    stop = threading.Event()
    queue: Queue[Any] = Queue(maxsize=READ_AHEAD)

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        # Encoding runs a few torch ops; a new thread would otherwise start an
        # OpenMP team of one thread per core for them.
        torch.set_num_threads(1)
        try:
            for item in work:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, in order
            put(_Failure(exc))
        finally:
            work.close()

    def items() -> Iterator[Any]:
        if not read_ahead:  # scoring threads only: read in this thread
            try:
                yield from work
            except GeneratorExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - raised in order below
                yield _Failure(exc)
            yield _END
            return
        while True:
            yield queue.get()

    reader = threading.Thread(target=read, name="vaekit-reader", daemon=True)
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="vaekit-score",
                              initializer=_init_worker)
    pending: deque[Any] = deque()
    source = items()
    before = torch.get_num_threads()
    try:
        if read_ahead:
            reader.start()
        ended = False
        while pending or not ended:
            while not ended and len(pending) <= n_workers:
                item = next(source)
                if item is _END:
                    ended = True
                elif isinstance(item, _Failure):
                    pending.append(item)
                    ended = True
                else:
                    chunk, tensors = item
                    pending.append((chunk, pool.submit(_score_item, estimator, options, chunk,
                                                       tensors)))
            head = pending.popleft()
            if isinstance(head, _Failure):
                raise head.exc
            chunk, future = head
            yield future.result(), chunk.bad
            if progress:
                progress(len(chunk) + len(chunk.bad))
    finally:
        stop.set()
        for entry in pending:
            if not isinstance(entry, _Failure):
                entry[1].cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        if read_ahead and reader.is_alive():
            reader.join(timeout=30)
        source.close()
        # Worker threads set torch's process-wide (MKL) thread count; restore it.
        torch.set_num_threads(before)


def _work_items(inputs: Sequence[str], estimator: _VAEBase, options: ScoreOptions,
                skip_bad_rows: bool) -> Iterator[tuple[Chunk, dict[str, torch.Tensor] | None]]:
    """Chunks of every input with their model tensors (None for a chunk of bad rows only).

    Everything that can fail on the input (a bad row, a value the model cannot use,
    an empty column) fails here, in input order.
    """
    for path in inputs:
        yield from _file_items(path, estimator, options, skip_bad_rows)


def _file_items(path: str, estimator: _VAEBase, options: ScoreOptions, skip_bad_rows: bool
                ) -> Iterator[tuple[Chunk, dict[str, torch.Tensor] | None]]:
    schema = estimator.schema_
    if isinstance(schema, ImageSchema):
        _check_image_input(path, options.id_columns)
        chunks: Iterable[Chunk] = iter_images(path)
        observed = None
    else:
        if input_format(path) in ("npz", "images"):
            raise DataError("the model was fitted on a table, but this input holds images",
                            file=path)
        types = reading_types(schema, options.id_columns)
        available = _check_file_columns(path, schema, options.id_columns)
        warn_extra_columns(path, available, list(types))
        chunks = iter_table(path, types)
        observed = dict.fromkeys(schema.names(), 0)
    rows = 0
    for chunk in chunks:
        if chunk.bad and not skip_bad_rows:
            raise chunk.bad[0].error()
        rows += len(chunk) + len(chunk.bad)
        if len(chunk) == 0:
            yield chunk, None
            continue
        if observed is not None:
            # Only "seen at all" matters: stop looking at a column once it has a value.
            for c in [c for c, seen in observed.items() if not seen]:
                observed[c] = int(chunk.data[c].notna().any())
        yield chunk, encode_chunk(estimator, chunk)
    if observed is not None and rows:
        empty = [c for c, k in observed.items() if k == 0]
        if empty:
            raise DataError(f"column(s) {empty} have no value in any row of this file; the "
                            "model needs them (is the export broken?)", file=path)


def _check_image_input(path: str, id_columns: Sequence[str]) -> None:
    if input_format(path) not in ("npz", "images"):
        raise DataError("the model was fitted on images, but this input is a table",
                        file=path)
    if id_columns:
        raise DataError("--id-column applies to tables, not images", file=path)


def _check_file_columns(path: str, schema: TabularSchema,
                        id_columns: Sequence[str]) -> list[str]:
    """The file's columns, after checking it has the model's and the id columns."""
    available = table_columns(path)
    missing = [c for c in schema.names() if c not in available]
    if missing:
        raise DataError(f"missing column(s) {missing}; the model was fitted on columns "
                        f"{schema.names()}", file=path, row=1)
    missing_ids = [c for c in id_columns if c not in available]
    if missing_ids:
        raise DataError(f"--id-column {missing_ids} not in the file (it has {available})",
                        file=path, row=1)
    return available


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


def _empty_like(estimator: _VAEBase, options: ScoreOptions) -> pa.Table:
    return score_schema(estimator, options, rank=False).empty_table()


def resolve_threshold(estimator: _VAEBase, *, threshold: float | None,
                      contamination: float | None) -> float:
    """Anomaly threshold in nats: explicit, from a contamination share, or the model's.

    ``contamination`` is applied to the training rows' scores kept in the model, so
    it needs no pass over the input.
    """
    if threshold is not None:
        return float(threshold)
    train = getattr(estimator, "decision_scores_", None)
    if contamination is not None:
        if train is None:
            raise DataError("this model holds no training scores; use --threshold instead of "
                            "--contamination")
        return threshold_from_scores(np.asarray(train), contamination)
    model_threshold = getattr(estimator, "threshold_", None)
    if model_threshold is None:
        raise DataError("this model has no anomaly threshold (it was fitted as a "
                        "compressor); give --threshold T (nats)")
    return float(model_threshold)


# --------------------------------------------------------------------------- ranking


class RankedOutput:
    """Collects scored chunks and hands them back with a ``rank`` column.

    Rank 1 is the highest anomaly score; equal scores share a rank (1 + the number
    of rows scoring strictly higher), so the output does not depend on row order.

    Without ``top``, chunks are spooled to a temporary Arrow file (disk, not
    memory) and only the scores are kept in memory, 8 bytes per row.  With ``top``
    only the best ``top`` rows are kept and they come back sorted by rank (ties in
    input order).
    """

    def __init__(self, schema: pa.Schema, *, top: int | None = None,
                 tmp_dir: str | None = None) -> None:
        self.schema = schema  # final schema, with rank
        self.top = top
        self._spool_schema = pa.schema([f for f in schema if f.name != "rank"])
        self._scores: list[np.ndarray] = []
        self._best: pa.Table | None = None
        self._seq = 0
        self._tmp_dir = tmp_dir
        self._spool: Any = None
        self._spool_path: str | None = None
        self._spool_writer: Any = None

    def add(self, table: pa.Table) -> None:
        """Take the scored rows of one chunk."""
        if table.num_rows == 0:
            return
        if self.top is not None:
            seq = pa.array(np.arange(self._seq, self._seq + table.num_rows), type=pa.int64())
            self._seq += table.num_rows
            table = table.append_column("__seq", seq)
            both = table if self._best is None else pa.concat_tables([self._best, table])
            self._best = _top_rows(both, self.top)
            return
        if self._spool_writer is None:
            fd, self._spool_path = tempfile.mkstemp(prefix=".vaekit-rank-", suffix=".arrow",
                                                    dir=self._tmp_dir)
            self._spool = os.fdopen(fd, "wb")
            self._spool_writer = ipc.new_file(self._spool, self._spool_schema)
        self._spool_writer.write_table(table)
        self._scores.append(table.column("anomaly_score").to_numpy())

    def tables(self) -> Iterator[pa.Table]:
        """The collected rows with ranks, chunk by chunk."""
        if self.top is not None:
            if self._best is None:
                return
            best = self._best.drop_columns(["__seq"])
            scores = best.column("anomaly_score").to_numpy()
            ranks = 1 + np.searchsorted(-scores, -scores, side="left")
            yield self._with_rank(best, ranks)
            return
        if self._spool_writer is None:
            return
        self._spool_writer.close()
        self._spool.close()
        self._spool_writer = None
        ordered = np.concatenate(self._scores)
        self._scores = []
        ordered.sort()
        n = len(ordered)
        # A plain file, not a memory map: mapped pages would count as this process's
        # memory and grow with the output.
        with pa.OSFile(self._spool_path, "rb") as source:
            reader = ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = pa.Table.from_batches([reader.get_batch(i)])
                s = batch.column("anomaly_score").to_numpy()
                ranks = 1 + n - np.searchsorted(ordered, s, side="right")
                yield self._with_rank(batch, ranks)

    def _with_rank(self, table: pa.Table, ranks: np.ndarray) -> pa.Table:
        pos = self.schema.get_field_index("rank")
        return table.add_column(pos, self.schema.field("rank"), pa.array(ranks, type=pa.int64()))

    def close(self) -> None:
        """Remove the temporary spool file."""
        if self._spool_writer is not None:
            self._spool_writer.close()
            self._spool.close()
            self._spool_writer = None
        if self._spool_path is not None:
            try:
                os.unlink(self._spool_path)
            except FileNotFoundError:
                pass
            self._spool_path = None

    def __enter__(self) -> RankedOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _top_rows(table: pa.Table, k: int) -> pa.Table:
    """The ``k`` highest-scoring rows, sorted by score (descending) then input order."""
    order = table.sort_by([("anomaly_score", "descending"), ("__seq", "ascending")])
    return order.slice(0, k)


# --------------------------------------------------------------------------- compression


def iter_compress_chunks(inputs: Sequence[str], estimator: _VAEBase, id_columns: Sequence[str],
                         *, skip_bad_rows: bool = False
                         ) -> Iterator[tuple[pd.DataFrame | np.ndarray, list[BadRow]]]:
    """Rows to compress, chunk by chunk, in input order (the codec does the rest).

    Tables keep their file's column order (id and model columns only; other
    columns are dropped with a warning), so decompression restores the columns as
    they were.  Id columns are read as text, so they round-trip exactly.

    Yields
    ------
    (rows, bad_rows)
        A DataFrame (or image array) and the rows of that chunk that were left
        out; with ``skip_bad_rows=False`` the first bad row raises instead.
    """
    # Tables get the same per-file checks and validation as scoring (_file_items): the
    # rows that reach the codec have passed schema.encode with their file's line numbers.
    schema = estimator.schema_
    options = ScoreOptions(id_columns=tuple(id_columns))
    for path in inputs:
        if isinstance(schema, ImageSchema):  # images need no per-row validation
            _check_image_input(path, id_columns)
            for chunk in iter_images(path):
                yield chunk.data, []
            continue
        order: list[str] | None = None
        for chunk, _ in _file_items(path, estimator, options, skip_bad_rows):
            if order is None:
                types = reading_types(schema, id_columns)
                order = [c for c in table_columns(path) if c in types]
            yield (chunk.data[order] if len(chunk) else chunk.data.iloc[:0][order]), chunk.bad
