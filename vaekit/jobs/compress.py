"""Compressing files into one ``.vkc`` container in this process, chunk by chunk.

The local counterpart of :func:`vaekit.engines.dask.compress_files_dask`: rows are
read, validated and prepared by :func:`vaekit.jobs.read.iter_prepared_compress_chunks`
(in a reader thread) and written by a
:class:`~vaekit.fitted.streams.CompressedWriter`, so the bytes depend only on the
rows, the model and the options, not on how the inputs were split into files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import DataError
from ..files.readers import BadRow
from ..fitted.streams import MODEL_GRID, CompressedWriter
from ..fitted.workers import resolve_threads
from .ahead import READ_AHEAD, read_ahead
from .compress_input import iter_prepared_compress_chunks

__all__ = ["compress_files"]


def compress_files(inputs: Sequence[str], model: Any, output: str, *,
                   id_columns: Sequence[str] = (), embed_model: bool = False,
                   skip_bad_rows: bool = False,
                   on_bad_rows: Callable[[list[BadRow]], None] | None = None,
                   progress: Callable[[int], None] | None = None,
                   threads: int | None = None,
                   max_abs_error: float | dict | str | None = MODEL_GRID) -> tuple[int, int]:
    """Compress the rows of ``inputs``, in order, into the container ``output``.

    Parameters
    ----------
    inputs : sequence of str
        CSV, Parquet or image files (already expanded: no globs).
    model : fitted VAECompressor or VAEAnomalyDetector
        The model whose codes are stored.
    output : str
        The ``.vkc`` file to write; it appears (atomically) only when every row
        was compressed.
    id_columns : sequence of str
        Columns stored losslessly beside the codes.
    embed_model : bool
        Store the model in the container, so decompression needs none.
    skip_bad_rows : bool
        Leave unusable rows out (reported through ``on_bad_rows``) instead of failing.
    on_bad_rows : callable, optional
        Called, in input order, with the rows left out of each chunk (possibly none).
    progress : callable, optional
        Called with the number of rows (good and bad) of each chunk once it is written.
    threads : int, optional
        Chunks encoded at once, each on one compute thread (0 = one per CPU core;
        default: the model's ``n_jobs``, else 1).  The bytes are the same for any value.
    max_abs_error : float, dict, "model" or None
        As ``CompressedWriter``'s: ``"model"`` (default) the grid a budget-fitted
        model chose (``VAECompressor.grid_bound_``), else the latent code alone;
        ``None`` the latent code alone.

    Returns
    -------
    (n_rows, n_bytes) : tuple of int
        Rows stored and the size of ``output`` in bytes.

    Raises
    ------
    DataError
        A bad row (without ``skip_bad_rows``), or no rows at all to compress.
    """
    writer = CompressedWriter(output, model, id_columns=list(id_columns),
                              embed_model=embed_model,
                              threads=resolve_threads(threads, model),
                              max_abs_error=max_abs_error)
    # The next chunks are parsed and prepared in a reader thread while this one is
    # coded (preparing is row by row: the bytes do not depend on where it happens).
    chunks = read_ahead(iter_prepared_compress_chunks(inputs, model, list(id_columns),
                                                      skip_bad_rows=skip_bad_rows), READ_AHEAD)
    try:
        for frame, bad, tensors in chunks:
            if on_bad_rows is not None:
                on_bad_rows(bad)
            if len(frame):
                writer.write(frame, tensors)
            if progress is not None:
                progress(len(frame) + len(bad))
        if writer.n_rows == 0:
            raise DataError("no rows to compress")
    except BaseException:
        writer.abort()
        raise
    finally:
        chunks.close()  # stops the reader thread, also on an error
    writer.close()
    # A FIFO or device (written in place) has no size to ask for.
    size = os.path.getsize(output) if os.path.isfile(output) else writer.bytes_written
    return writer.n_rows, size
