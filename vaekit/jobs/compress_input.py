"""The rows to compress, read the way every job reads (:mod:`vaekit.jobs.read`).

Tables keep their file's column order (id and model columns only), so decompression
restores the columns as they were; id columns are read as text, so they round-trip
exactly.  :func:`iter_prepared_compress_chunks` also prepares each chunk's tensors,
which the compress job does in its reader thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import ImageSchema
from ..files.readers import BadRow, iter_images, table_columns
from ..fitted.model import as_fitted
from ..fitted.stream_ids import check_id_lengths
from .read import Tensors, check_image_input, file_items, prepare_chunk, reading_types

__all__ = ["iter_compress_chunks", "iter_prepared_compress_chunks"]


def iter_compress_chunks(inputs: Sequence[str], model: Any, id_columns: Sequence[str],
                         *, skip_bad_rows: bool = False
                         ) -> Iterator[tuple[pd.DataFrame | np.ndarray, list[BadRow]]]:
    """Rows to compress, chunk by chunk, in input order (the codec does the rest).

    Tables keep their file's column order (id and model columns only; other
    columns are dropped with a warning), so decompression restores the columns as
    they were.  Id columns are read as text, so they round-trip exactly.  Tables
    get the same per-file checks and conversion as scoring
    (:func:`vaekit.jobs.read.file_items`).  The rows are not prepared (see
    :func:`iter_prepared_compress_chunks`).

    Yields
    ------
    (rows, bad_rows)
        A DataFrame (or image array) and the rows of that chunk that were left
        out; with ``skip_bad_rows=False`` the first bad row raises instead.
    """
    for rows, bad, _ in _compress_items(inputs, model, id_columns, skip_bad_rows, False):
        yield rows, bad


def iter_prepared_compress_chunks(inputs: Sequence[str], model: Any,
                                  id_columns: Sequence[str], *, skip_bad_rows: bool = False
                                  ) -> Iterator[tuple[pd.DataFrame | np.ndarray, list[BadRow],
                                                      Tensors | None]]:
    """:func:`iter_compress_chunks` with each chunk's model tensors
    (:func:`vaekit.jobs.read.prepare_chunk`: a value the model cannot use is named by
    file, line and column), None for a chunk without rows."""
    yield from _compress_items(inputs, model, id_columns, skip_bad_rows, True)


def _compress_items(inputs: Sequence[str], model: Any, id_columns: Sequence[str],
                    skip_bad_rows: bool, prepare: bool
                    ) -> Iterator[tuple[pd.DataFrame | np.ndarray, list[BadRow], Tensors | None]]:
    model = as_fitted(model)
    schema = model.schema
    for path in inputs:
        if isinstance(schema, ImageSchema):  # images need no per-row conversion
            check_image_input(path, id_columns)
            for chunk in iter_images(path, size=(schema.shape[1], schema.shape[2])):
                tensors = prepare_chunk(model, chunk) if prepare and len(chunk) else None
                yield chunk.data, [], tensors
            continue
        order: list[str] | None = None
        for chunk, tensors in file_items(path, model, id_columns, skip_bad_rows=skip_bad_rows,
                                         prepare=prepare):
            if order is None:
                types = reading_types(schema, id_columns)
                order = [c for c in table_columns(path) if c in types]
            # ids too long for the codec: named by file and line here, where lines are known
            check_id_lengths(chunk.data, id_columns, 0, file=chunk.file, lines=chunk.lines)
            rows = chunk.data[order] if len(chunk) else chunk.data.iloc[:0][order]
            yield rows, chunk.bad, tensors
