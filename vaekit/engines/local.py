"""The local engine: read ahead in one thread, score chunks in a pool, results in order.

The per-chunk work is :func:`vaekit.jobs.score.score_chunk`, the same function a
Dask task runs, and the chunks come back in input order through the shared
scheduler (:func:`vaekit.engines.ordered.ordered_map`), so the output is identical,
bit for bit, whatever the number of threads: every chunk is scored by the same
single-threaded kernels on the same fixed-shape blocks.

pyarrow and torch release the GIL while they work, so parsing the next chunk and
scoring the current ones overlap.  Memory stays bounded by a few chunks: the reader
blocks when :data:`READ_AHEAD` chunks wait, and at most ``threads + 1`` chunks are
submitted for scoring at once (one chunk is ~2 MB of CSV text, see
:data:`vaekit.files.readers.DEFAULT_BLOCK_BYTES`), so about
``threads + READ_AHEAD + 2`` chunks are held at once.  Ranking adds 8 bytes per row
(:mod:`vaekit.jobs.rank`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from ..files.readers import BadRow, Chunk
from ..fitted.model import FittedVAE, as_fitted
from ..fitted.workers import resolve_threads, single_threaded, worker_pool
from ..jobs.ahead import READ_AHEAD, read_ahead
from ..jobs.read import Progress, Tensors, WorkItem, work_items
from ..jobs.score import ScoreOptions, empty_scores, score_chunk
from .ordered import ordered_map

__all__ = ["READ_AHEAD", "iter_scored", "read_ahead", "resolve_threads", "score_files"]


def iter_scored(inputs: Sequence[str], model: Any, options: ScoreOptions, *,
                skip_bad_rows: bool = False, progress: Progress | None = None,
                threads: int | None = None,
                pipeline: bool = True) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """The local engine: read each input in chunks and score them, in order.

    Parameters
    ----------
    inputs : sequence of str
        CSV, Parquet or image files.
    model : FittedVAE or fitted estimator
    options : ScoreOptions
    skip_bad_rows : bool
        Leave unusable rows out (yielded beside the scores) instead of raising.
    progress : callable, optional
        Called with the number of rows (good and bad) of each chunk handed out.
    threads : int, optional
        Chunks scored at the same time, each on one torch thread (0 = one per CPU
        core; default: the model's ``n_jobs``, None meaning 1).
    pipeline : bool
        Read and prepare the next chunks in a background thread while the current
        ones are scored (a bounded queue: a few chunks ahead at most).

    Yields
    ------
    (table, bad_rows)
        Scored rows of one chunk (see :func:`vaekit.jobs.score.score_chunk`;
        anomaly scores in nats) and the rows of that chunk that were left out.
        With ``skip_bad_rows=False`` the first bad row raises :class:`DataError`
        instead (after the chunks before it).

    Raises
    ------
    DataError
        Also when a model column has no value at all in a file (an empty export
        column would otherwise be silently marginalized out of every score).

    Notes
    -----
    Results are identical, bit for bit, whatever ``threads`` and ``pipeline``.
    """
    model = as_fitted(model)
    n_workers = resolve_threads(threads, model)
    work = work_items(inputs, model, options.id_columns, skip_bad_rows=skip_bad_rows)
    if not pipeline and n_workers == 1:
        for chunk, tensors in work:
            yield _score_item(model, options, chunk, tensors, True), chunk.bad
            if progress:
                progress(len(chunk) + len(chunk.bad))
        return
    yield from _pipelined(work, model, options, n_workers, pipeline, progress)


score_files = iter_scored
"""The local engine's ``score_files`` (the name :func:`vaekit.engines.get_engine` users call)."""


def _score_item(model: FittedVAE, options: ScoreOptions, chunk: Chunk, tensors: Tensors | None,
                set_threads: bool) -> pa.Table:
    if tensors is None:
        return empty_scores(model, options)
    return score_chunk(model, chunk, options, tensors=tensors, set_threads=set_threads)


def _pipelined(work: Iterator[WorkItem], model: FittedVAE, options: ScoreOptions,
               n_workers: int, pipeline: bool, progress: Progress | None
               ) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """(Reader thread ->) ``n_workers`` scoring threads -> results in input order."""
    pool = worker_pool(model, n_workers, "vaekit-score")
    items = read_ahead(work, READ_AHEAD) if pipeline else work

    def submit(item: WorkItem) -> Any:
        # One compute thread per worker (single_threaded): workers leave it so.
        return pool.submit(_score_item, model, options, item[0], item[1], False)

    with single_threaded(model):
        results = ordered_map(submit, items, n_workers + 1)
        try:
            for (chunk, _), table in results:
                yield table, chunk.bad
                if progress:
                    progress(len(chunk) + len(chunk.bad))
        finally:
            results.close()
            pool.shutdown(wait=True, cancel_futures=True)
