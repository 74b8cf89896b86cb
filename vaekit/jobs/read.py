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

Also here: the rows to compress (:func:`iter_compress_chunks`) and the rows to fit
on (:func:`load_training_data`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.images import ImageSchema
from ..data.tabular import TabularSchema
from ..errors import DataError
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

Tensors = dict[str, torch.Tensor]
WorkItem = tuple[Chunk, dict[str, torch.Tensor] | None]
"""A chunk and its prepared tensors (None for a chunk holding bad rows only)."""


# --------------------------------------------------------------------------- columns


def reading_types(schema: TabularSchema, id_columns: Sequence[str] = ()) -> dict[str, str]:
    """How to read each column a fitted tabular model needs (see :mod:`vaekit.files.readers`).

    Numeric columns are numbers; binary and categorical columns whose training
    levels were all numbers are read as numbers too (so ``"1"`` matches level ``1``),
    otherwise as text.  Id columns are always text, so they pass through exactly.

    Returns
    -------
    dict of str to {"float", "level", "text"}
        Id columns first, then the model's columns in fitted order.

    Raises
    ------
    DataError
        If an id column is also a model column.
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


def _check_image_input(path: str, id_columns: Sequence[str]) -> None:
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
        _check_image_input(path, id_columns)
        # The model's size is checked from each file's header, before pixels are read.
        chunks: Iterable[Chunk] = iter_images(path, size=(schema.shape[1], schema.shape[2]))
        observed = None
    else:
        if input_format(path) in ("npz", "images"):
            raise DataError("the model was fitted on a table, but this input holds images",
                            file=path)
        types = reading_types(schema, id_columns)
        available = _check_file_columns(path, schema, id_columns)
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
        raise DataError(f"missing column(s) {missing}; the model was fitted on columns "
                        f"{model.column_names}", file=label)
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


# --------------------------------------------------------------------------- compression


def iter_compress_chunks(inputs: Sequence[str], model: Any, id_columns: Sequence[str],
                         *, skip_bad_rows: bool = False
                         ) -> Iterator[tuple[pd.DataFrame | np.ndarray, list[BadRow]]]:
    """Rows to compress, chunk by chunk, in input order (the codec does the rest).

    Tables keep their file's column order (id and model columns only; other
    columns are dropped with a warning), so decompression restores the columns as
    they were.  Id columns are read as text, so they round-trip exactly.  Tables
    get the same per-file checks and conversion as scoring (:func:`file_items`);
    the codec prepares the rows itself, so they are not prepared here.

    Yields
    ------
    (rows, bad_rows)
        A DataFrame (or image array) and the rows of that chunk that were left
        out; with ``skip_bad_rows=False`` the first bad row raises instead.
    """
    model = as_fitted(model)
    schema = model.schema
    for path in inputs:
        if isinstance(schema, ImageSchema):  # images need no per-row conversion
            _check_image_input(path, id_columns)
            for chunk in iter_images(path, size=(schema.shape[1], schema.shape[2])):
                yield chunk.data, []
            continue
        order: list[str] | None = None
        for chunk, _ in file_items(path, model, id_columns, skip_bad_rows=skip_bad_rows,
                                   prepare=False):
            if order is None:
                types = reading_types(schema, id_columns)
                order = [c for c in table_columns(path) if c in types]
            yield (chunk.data[order] if len(chunk) else chunk.data.iloc[:0][order]), chunk.bad


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
        return _training_images(inputs, max_rows, progress)

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


def _training_images(inputs: Sequence[str], max_rows: int | None,
                     progress: Progress | None) -> TrainingData:
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
