"""The one route from input rows to a fitted model's tensors.

Every job reads the same way, whatever the engine:

1. the file's columns are checked once per file (model columns present, id
   columns present, extra columns named in one warning);
2. each column is read with the type the model needs (:func:`reading_types`) and
   converted once (:func:`vaekit.files.readers.coerce_frame`, inside the readers),
   rows that cannot be used split off with their file, line and column;
3. :meth:`vaekit.fitted.FittedVAE.prepare` turns the rows into tensors, once, and
   a :class:`DataError` it raises is re-raised with the file's line number.

A DataFrame (a Dask partition, :func:`frame_chunk`) takes steps 1 and 2 too, so a
column of text ``"1"`` and a column of numbers ``1`` give the same scores and the
same codes whether they arrive in a file or in a frame.

Also here: the rows to fit on (:func:`load_training_data`: one pass, a uniform seeded
:class:`Reservoir` sample); the rows to compress are read by
:mod:`vaekit.jobs.compress_input` through :func:`file_items`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..data.images import ImageSchema
from ..data.tabular import TabularSchema
from ..errors import DataError, did_you_mean, missing_columns_message
from ..files.dates import is_time_dtype
from ..files.readers import (
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
from ..fitted.model import FittedVAE, as_fitted

Progress = Callable[[int], None]
"""Called with a number of rows (good and bad) each time a piece of work is done."""

Tensors = dict[str, np.ndarray]  # prepared rows (FittedVAE.prepare)
WorkItem = tuple[Chunk, Tensors | None]
"""A chunk and its prepared tensors (None for a chunk holding bad rows only)."""


# --------------------------------------------------------------------------- columns


def reading_types(schema: TabularSchema, id_columns: Sequence[str] = ()) -> dict[str, str]:
    """How to read each column a fitted tabular model needs (see :mod:`vaekit.files.readers`).

    Numeric columns are numbers (dates and times: ``"time"``); binary and categorical
    columns whose training levels were all numbers are read as numbers too (so ``"1"``
    matches level ``1``), otherwise as text.  Id columns are always text, so they pass through exactly.

    Returns
    -------
    dict of str to {"float", "level", "text", "time", "id"}
        Id columns first, then the model's columns in fitted order.

    Raises
    ------
    DataError
        If an id column is also a model column.
    """
    # "id": text for CSV; any flat Parquet type as its text (ISO for times)
    types: dict[str, str] = {c: "id" for c in id_columns}
    for spec in schema.columns:
        if spec.name in types:
            raise DataError(f"column {spec.name!r} is a model column and cannot be an id column")
        if spec.kind == "numeric":  # dates too: a numeric column with a datetime dtype
            types[spec.name] = "time" if is_time_dtype(spec.dtype) else "float"
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


def _check_file_columns(path: str, schema: TabularSchema,
                        id_columns: Sequence[str]) -> list[str]:
    """The file's columns, after checking it has the model's and the id columns."""
    available = table_columns(path)
    missing = [c for c in schema.names() if c not in available]
    if missing:
        raise DataError(missing_columns_message(missing, schema.names(), available),
                        file=path, row=1)
    missing_ids = [c for c in id_columns if c not in available]
    if missing_ids:
        raise DataError(f"--id-column {missing_ids} not in the file (it has {available})"
                        + did_you_mean(missing_ids[0], available), file=path, row=1)
    return available


def check_image_input(path: str, id_columns: Sequence[str]) -> None:
    if input_format(path) not in ("npz", "images"):
        raise DataError("the model was fitted on images, but this input is a table",
                        file=path)
    if id_columns:
        raise DataError("--id-column applies to tables, not images", file=path)


# --------------------------------------------------------------------------- chunks


def prepare_chunk(model: FittedVAE, chunk: Chunk) -> Tensors:
    """The model's input tensors for the rows of ``chunk`` (:meth:`FittedVAE.prepare`).

    Raises
    ------
    DataError
        Naming the file, line and column of a value the model cannot use.
    """
    try:
        if isinstance(model.schema, ImageSchema):
            return model.prepare(chunk.data)
        return model.prepare(chunk.data[model.column_names])
    except DataError as exc:
        line = int(chunk.lines[exc.row]) if exc.row is not None else None
        raise DataError(exc.reason, file=chunk.file, row=line, column=exc.column) from None


def work_items(inputs: Sequence[str], model: Any, id_columns: Sequence[str] = (), *,
               skip_bad_rows: bool = False, prepare: bool = True) -> Iterator[WorkItem]:
    """Chunks of every input, in order, with their tensors (see :func:`file_items`)."""
    model = as_fitted(model)
    for path in inputs:
        yield from file_items(path, model, id_columns, skip_bad_rows=skip_bad_rows,
                              prepare=prepare)


def file_items(path: str, model: Any, id_columns: Sequence[str] = (), *,
               skip_bad_rows: bool = False, prepare: bool = True) -> Iterator[WorkItem]:
    """Chunks of one input with their model tensors.

    Everything that can fail on the input (a bad row, a value the model cannot use,
    a model column with no value in any row) fails here, in input order.

    Parameters
    ----------
    path : str
        CSV, Parquet, ``.npz`` or a folder of images.
    model : FittedVAE or fitted estimator
    id_columns : sequence of str
        Columns read as text beside the model's (tables only).
    skip_bad_rows : bool
        Leave unusable rows out (in ``chunk.bad``) instead of raising.
    prepare : bool
        Prepare each chunk's tensors; without, the tensors are ``None`` (the rows
        were still converted and checked by the reader, so the model can use them).

    Yields
    ------
    (Chunk, tensors or None)
        Tensors are None for a chunk holding bad rows only.

    Raises
    ------
    DataError
        With the file, line and column of the first problem.  Also when a model
        column has no value at all in the file (an empty export column would
        otherwise be silently marginalized out of every score).
    """
    model = as_fitted(model)
    schema = model.schema
    if isinstance(schema, ImageSchema):
        check_image_input(path, id_columns)
        # The model's size is checked from each file's header, before pixels are read.
        chunks: Iterable[Chunk] = iter_images(path, size=(schema.shape[1], schema.shape[2]))
        observed = None
    else:
        if input_format(path) in ("npz", "images"):
            raise DataError("the model was fitted on a table, but this input holds images",
                            file=path)
        types = reading_types(schema, id_columns)
        available = _check_file_columns(path, schema, id_columns)
        warn_extra_columns(path, available, list(types) + model.id_columns)  # ids: known
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
        yield chunk, (prepare_chunk(model, chunk) if prepare else None)
    if observed is not None and rows:
        empty = [c for c, k in observed.items() if k == 0]
        if empty:
            raise DataError(f"column(s) {empty} have no value in any row of this file; the "
                            "model needs them (is the export broken?)", file=path)


def frame_chunk(frame: pd.DataFrame, model: Any, id_columns: Sequence[str] = (), *,
                label: str, refuse_extra: bool = False) -> Chunk:
    """A DataFrame (e.g. a Dask partition) as the readers would deliver it.

    The same column types and the same conversion as a file
    (:func:`reading_types`, :func:`~vaekit.files.readers.coerce_frame`), so text
    ``"1"`` in a column whose training levels were numbers is level ``1``, as in a
    CSV file.

    Parameters
    ----------
    frame : DataFrame
        The model's columns and ``id_columns``, as numbers or text; the index is
        not used (rows are numbered 1, 2, ... within the frame).
    model : FittedVAE or fitted estimator
        A tabular model.
    id_columns : sequence of str
        Columns kept as text.
    label : str
        Names the frame in errors (like a file name), e.g. ``"partition 3"``.
    refuse_extra : bool
        Refuse columns that are neither model nor id columns (compression: nothing is
        dropped silently); otherwise they are left out.

    Returns
    -------
    Chunk
        The model and id columns in the frame's own column order, converted.

    Raises
    ------
    DataError
        A missing column, a stray column (``refuse_extra``), or a value that is not
        a number in a numeric column (naming ``label``, the 1-based row and column).
    """
    model = as_fitted(model)
    if not isinstance(model.schema, TabularSchema):
        raise DataError("a DataFrame needs a model fitted on a table", file=label)
    types = reading_types(model.schema, id_columns)
    missing = [c for c in types if c not in frame.columns]
    if missing:
        raise DataError(missing_columns_message(missing, model.column_names, frame.columns),
                        file=label)
    if refuse_extra:
        stray = [str(c) for c in frame.columns if c not in types]
        if stray:
            raise DataError(f"column(s) {stray} are not model columns; name them as id "
                            "columns to carry them losslessly, or drop them", file=label)
    order = [c for c in frame.columns if c in types]
    lines = np.arange(1, len(frame) + 1, dtype=np.int64)
    good, good_lines, bad = coerce_frame(frame[order].reset_index(drop=True),
                                         {c: types[c] for c in order}, lines, label)
    if bad:
        raise bad[0].error()
    return Chunk(good, label, good_lines)


# --------------------------------------------------------------------------- sampling

DEFAULT_SAMPLE_BYTES = 128 * 2**20
"""Memory the held rows may take while sampling.  ``vaekit fit`` peaks at about 4x this
plus the runtime (compaction and typing copy the sample; training): ~1.1 GB, well under
2 GB on any input (recipes/benchmark_fit_memory.py).  Rows are held as read (Arrow
text, ~12 bytes a numeric cell): a 20-column numeric table keeps ~450,000 rows."""

DEFAULT_SAMPLE_ROWS = 1_000_000
"""Most rows trained on by default: the automatic schedule runs at least two
epochs and scores every training row, so more rows cost minutes and no accuracy."""

ESTIMATE_ROWS = 1_000
"""The bytes of a row are measured on the input's first rows, this many, however
the input is cut into chunks (so the sample size does not depend on chunk sizes)."""

SLACK = 0.25
"""Rows held beyond the sample size between two compactions, as a share of it."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_META_BYTES = 32  # key, stream, position and line of each held row


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a bijection of uint64 arrays that mixes every bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def sample_keys(seed: int, stream: int, positions: np.ndarray) -> np.ndarray:
    """The sampling key of each row: a pseudo-random uint64 of (seed, stream, position).

    ``stream`` numbers the input (file or partition), ``positions`` are the rows'
    0-based positions in it.  A key depends on nothing else, which makes a sample
    independent of chunk sizes and lets partition samples merge exactly.
    """
    # One-element arrays, not numpy scalars: array arithmetic wraps without warnings.
    head = _mix64(np.array([int(seed) % 2**64], dtype=np.uint64) + _GOLDEN)
    head = _mix64(head + np.array([int(stream) + 1], dtype=np.uint64) * _GOLDEN)
    pos = np.asarray(positions, dtype=np.int64).astype(np.uint64)
    return _mix64(head + (pos + np.uint64(1)) * _GOLDEN)


def rows_bytes(rows: pd.DataFrame | np.ndarray) -> int:
    """Memory of ``rows``, counted so that it adds up over any split of the rows.

    Arrow text counts its bytes plus a 4-byte offset per value (pandas' own count
    adds one offset per array, so it would depend on the chunking); other columns
    count what pandas counts (deep, so Python strings count their size).
    """
    if isinstance(rows, np.ndarray):
        return int(rows.nbytes)
    total = 0
    for _, s in rows.items():
        if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
            lengths = pc.binary_length(pa.array(s.array))
            total += int(pc.sum(lengths).as_py() or 0) + 4 * len(s)
        else:
            total += int(s.memory_usage(deep=True, index=False))
    return total


def _take(rows: pd.DataFrame | np.ndarray, idx: np.ndarray) -> pd.DataFrame | np.ndarray:
    return rows.iloc[idx] if isinstance(rows, pd.DataFrame) else rows[idx]


def _concat(pieces: list[Any]) -> pd.DataFrame | np.ndarray:
    if isinstance(pieces[0], pd.DataFrame):
        if len(pieces) == 1:
            return pieces[0].reset_index(drop=True)
        return pd.concat(pieces, ignore_index=True)
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


class Reservoir:
    """A seeded, uniform sample of at most ``k`` rows of a stream, gathered chunk by chunk.

    Every row gets a key from the seed, its stream (file or partition number) and
    its position there (:func:`sample_keys`); the sample is the ``k`` rows with the
    smallest keys (ties: the earlier row), returned in input order.  The keys act
    as independent uniform draws, so every set of ``k`` rows is equally likely: a
    uniform sample without replacement (reservoir sampling in its "bottom-k keys"
    form).  As a row's key depends only on where the row is, the sample does not
    depend on how the stream is cut into chunks, and samples merge exactly: the
    bottom ``k`` of the union of each part's bottom ``k`` is the bottom ``k`` of all
    rows (how :mod:`vaekit.engines.dask` samples partitions).

    Once the sample is full, a row enters only when its key is below the ``k``-th
    smallest so far (about ``k * ln(n / k)`` rows of ``n`` ever do), so a chunk costs
    a hash and a comparison per row.  At most ``k * (1 + SLACK)`` rows plus one
    chunk are held; then the ``k`` smallest keys are kept (a compaction).

    Parameters
    ----------
    seed : int
    max_rows : int or None
        The sample size ``k``; None: no bound on rows (attribute ``k``, final once
        ``sized``; ``rows_seen`` counts rows offered, ``held`` rows held).
    max_bytes : int or None
        Lowers ``k`` so that the held rows (slack included) take at most this much:
        ``k <= max_bytes / ((1 + SLACK) * bytes per row)``, the bytes per row
        (:func:`rows_bytes` plus 32 for the bookkeeping) measured on the first
        :data:`ESTIMATE_ROWS` rows.  None: no bound on bytes.
    """

    def __init__(self, seed: int, max_rows: int | None = None,
                 max_bytes: int | None = None) -> None:
        self.seed = int(seed)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.k: int | None = max_rows
        self.sized = max_bytes is None  # k is final
        self.rows_seen = 0
        self._rows: list[Any] = []
        self._meta: list[np.ndarray] = []  # (n, 3) int64: stream, position, line
        self._keys: list[np.ndarray] = []
        self.held = 0
        self._threshold: np.uint64 | None = None

    def add(self, rows: pd.DataFrame | np.ndarray, *, stream: int, positions: np.ndarray,
            lines: np.ndarray | None = None) -> None:
        """Offer ``rows`` (in input order, after all rows offered before).

        ``lines`` (default ``positions + 1``) travel with the rows for messages.
        """
        n = len(rows)
        if n == 0:
            return
        positions = np.asarray(positions, dtype=np.int64)
        keys = sample_keys(self.seed, stream, positions)
        self.rows_seen += n
        meta = np.empty((n, 3), dtype=np.int64)
        meta[:, 0] = stream
        meta[:, 1] = positions
        meta[:, 2] = positions + 1 if lines is None else lines
        if self._threshold is not None:
            enter = np.flatnonzero(keys <= self._threshold)
            if len(enter) == 0:
                return
            if len(enter) < n:
                rows, meta, keys = _take(rows, enter), meta[enter], keys[enter]
        self._rows.append(rows)
        self._meta.append(meta)
        self._keys.append(keys)
        self.held += len(keys)
        if not self.sized and self.held >= ESTIMATE_ROWS:
            self._size()
        if self.sized and self.k is not None and \
                self.held > self.k + max(1, int(SLACK * self.k)):
            self._compact(self.k)

    def _size(self) -> None:
        """Fix ``k`` from the bytes of the first rows (no row was left out before)."""
        assert self.max_bytes is not None
        head, need = [], ESTIMATE_ROWS
        for piece in self._rows:
            if need <= 0:
                break
            head.append(piece[:need] if isinstance(piece, np.ndarray) else piece.iloc[:need])
            need -= len(head[-1])
        n = sum(len(p) for p in head)
        per_row = sum(rows_bytes(p) for p in head) / max(n, 1) + _META_BYTES
        fits = max(1, int(self.max_bytes / ((1 + SLACK) * per_row)))
        self.k = fits if self.max_rows is None else min(self.max_rows, fits)
        self.sized = True

    def _compact(self, k: int) -> None:
        keys = np.concatenate(self._keys)
        meta = np.concatenate(self._meta)
        rows = _concat(self._rows)
        if len(keys) > k:
            best = np.lexsort((meta[:, 1], meta[:, 0], keys))[:k]
            self._threshold = keys[best[-1]]
            keep = best[np.lexsort((meta[best, 1], meta[best, 0]))]  # back to input order
            rows, meta, keys = _take(rows, keep), meta[keep], keys[keep]
        self._rows, self._meta, self._keys = [rows], [meta], [keys]
        self.held = len(keys)

    def sample(self) -> tuple[pd.DataFrame | np.ndarray | None, np.ndarray]:
        """The sample in input order and its ``(n, 3)`` stream, position, line.

        Rows are None when no row was offered.
        """
        if not self._rows:
            return None, np.empty((0, 3), dtype=np.int64)
        if not self.sized:
            self._size()
        if self.k is not None and self.held > self.k:
            self._compact(self.k)
        return _concat(self._rows), np.concatenate(self._meta)


def training_reservoir(max_rows: int | str | None, sample_bytes: int | None,
                       seed: int) -> Reservoir:
    """The reservoir of :func:`load_training_data` (see its ``max_rows``)."""
    if max_rows == "auto":
        return Reservoir(seed, DEFAULT_SAMPLE_ROWS, sample_bytes)
    if max_rows is not None and (isinstance(max_rows, str) or int(max_rows) < 1):
        raise ValueError(f"max_rows must be 'auto', None or a positive int, got {max_rows!r}")
    return Reservoir(seed, max_rows, None)


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
    rows_read : int
        Usable rows read from the inputs.
    sampled : bool
        True when ``data`` holds a sample of them, not all.
    """

    data: pd.DataFrame | np.ndarray
    kind: str
    bad: list[BadRow] = field(default_factory=list)
    rows_read: int = 0
    sampled: bool = False


def load_training_data(inputs: Sequence[str], *, kind: str = "auto",
                       columns: Sequence[str] | None = None, exclude: Sequence[str] = (),
                       id_columns: Sequence[str] = (), categorical: Sequence[str] = (),
                       max_rows: int | str | None = "auto",
                       sample_bytes: int | None = DEFAULT_SAMPLE_BYTES, seed: int = 0,
                       skip_bad_rows: bool = False,
                       progress: Progress | None = None) -> TrainingData:
    """Read the rows to fit on: one streaming pass, keeping a uniform seeded sample.

    Every input is read in chunks, once; a :class:`Reservoir` keeps a uniform
    sample of all their rows (not the first ones: exports sorted by time would
    bias it), the same for the same inputs and seed however the files are chunked.
    Inputs with no more rows than the sample size give all their rows, in input
    order.

    Tables are read as text and each column's type is decided from the kept rows
    (so a numeric column whose first rows happen to be empty is still numeric);
    values that do not fit the type are reported for the kept rows, rows the
    reader cannot split (wrong field count) for all rows.  Every kept row keeps
    its file and line for messages.

    Parameters
    ----------
    max_rows : "auto", int or None
        ``"auto"``: at most :data:`DEFAULT_SAMPLE_ROWS` (1,000,000) rows and at most
        ``sample_bytes`` of memory while sampling (rows as read, measured on the
        first rows), so a 10 GB CSV fits in well under 2 GB; an int: a sample of
        exactly that many rows (memory is the caller's call); None: every row.
    sample_bytes : int or None
        Memory bound of ``max_rows="auto"`` (default 128 MiB).
    seed : int
        Seeds the sample (``vaekit fit --seed``).

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
    reservoir = training_reservoir(max_rows, sample_bytes, seed)
    if image_input:
        if kind == "tabular":
            raise DataError("--kind tabular needs CSV or Parquet inputs")
        return _training_images(inputs, reservoir, progress)

    bad: list[BadRow] = []
    wanted: list[str] | None = None
    empty: pd.DataFrame | None = None
    for stream, path in enumerate(inputs):
        names = table_columns(path)
        if wanted is None:
            # The first file decides the columns; later files must have them too.
            wanted = _select_columns(path, names, columns, exclude, id_columns)
        else:
            dropped = [c for c in names if c not in wanted and c not in id_columns
                       and c not in exclude]
            if dropped and not columns:
                warn_extra_columns(path, dropped, [])
        position = 0  # of the file's usable rows: what a row's sampling key depends on
        for chunk in iter_table(path, dict.fromkeys(wanted, "text")):
            if chunk.bad and not skip_bad_rows:
                raise chunk.bad[0].error()
            bad.extend(chunk.bad)
            if empty is None:
                empty = chunk.data.iloc[:0]
            reservoir.add(chunk.data, stream=stream,
                          positions=np.arange(position, position + len(chunk)),
                          lines=chunk.lines)
            position += len(chunk)
            if progress:
                progress(len(chunk))
    frame, meta = reservoir.sample()
    if frame is None:
        raise DataError("no usable rows in the input")
    sampled = len(frame) < reservoir.rows_seen
    files = list(np.asarray(inputs, dtype=object)[meta[:, 0]])
    frame, bad_values = _typed_training_frame(frame, meta[:, 2], files, categorical)
    if bad_values and not skip_bad_rows:
        raise bad_values[0].error()
    bad.extend(bad_values)
    if len(frame) == 0:
        raise DataError("no usable rows in the input")
    return TrainingData(frame, "tabular", bad, reservoir.rows_seen, sampled)


def _training_images(inputs: Sequence[str], reservoir: Reservoir,
                     progress: Progress | None) -> TrainingData:
    # Each file is loaded whole by the reader; only the sample outlives it.
    shape = None
    for stream, path in enumerate(inputs):
        images = read_images(path)
        if shape is None:
            shape = images.shape[1:]
        elif images.shape[1:] != shape:
            raise DataError(f"the image inputs have different image shapes: "
                            f"{sorted({shape, images.shape[1:]})}")
        reservoir.add(images, stream=stream, positions=np.arange(len(images)))
        if progress:
            progress(len(images))
    sample, _ = reservoir.sample()
    if sample is None:
        raise DataError("no images in the input")
    return TrainingData(sample, "image", [], reservoir.rows_seen,
                        len(sample) < reservoir.rows_seen)


def _select_columns(path: str, names: Sequence[str], columns: Sequence[str] | None,
                    exclude: Sequence[str], id_columns: Sequence[str]) -> list[str]:
    for group, label in ((columns or [], "--columns"), (exclude, "--exclude"),
                         (id_columns, "--id-column")):
        missing = [c for c in group if c not in names]
        if missing:
            raise DataError(f"{label} names column(s) {missing} that are not in the file "
                            f"(it has {list(names)}){did_you_mean(missing[0], names)}",
                            file=path, row=1)
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
