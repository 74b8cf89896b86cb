"""Score and compress on a Dask cluster, partition by partition.

Needs the optional extra: ``pip install "vaekit[dask]"``.

The unit of work is one input file (or one partition of a Dask DataFrame).  A
worker runs exactly the local engine's code on it
(:func:`vaekit.engines.local.iter_scored`, :func:`vaekit.jobs.compress_input.iter_compress_chunks`
with :class:`~vaekit.fitted.streams.CompressedWriter`; a partition goes through
:func:`vaekit.jobs.read.frame_chunk`, the readers' conversion), so results are
identical bit for bit to a single-process run: a row's score or code depends only
on the row and the model.  Tasks are handed out and collected by the scheduler the
local engine uses too (:func:`vaekit.engines.ordered.ordered_map`).

The model travels as bytes (:meth:`vaekit.fitted.FittedVAE.to_bytes`, no pickle of
torch objects), scattered to every worker once per job (``broadcast=True``); each
worker process parses it once (:meth:`~vaekit.fitted.FittedVAE.from_bytes`) and
keeps the :class:`~vaekit.fitted.FittedVAE`, keyed by the SHA-256 of the bytes, for
all the tasks it runs.

Tasks are pure (they only read their input and return results), so a task whose
worker dies is simply run again elsewhere by Dask: no row is lost or duplicated,
because the client takes each task's result exactly once, in input order.

Public API
----------
* :func:`score_files_dask` -- a drop-in for :func:`vaekit.engines.local.iter_scored`.
* :func:`compress_files_dask` -- files to ``OUT.vkc`` manifest + one part per file.
* :func:`score_dataframe` -- a Dask DataFrame of scores from a Dask DataFrame.
* :func:`compress_dataframe` -- one part per partition + manifest.
* :func:`sample_dataframe`, :func:`fit_dataframe` -- fit on a uniform sample of a
  Dask DataFrame's rows, gathered partition by partition.
* :func:`dask_client` -- connect to a scheduler or start (and stop) a local cluster.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    import dask
    import dask.dataframe as dd
    from distributed import Client, Future, get_client
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the Dask engine needs dask and distributed: "
                      "install vaekit[dask] (pip install 'vaekit[dask]')") from exc

import pandas as pd
import pyarrow as pa

from ..codec.container import DEFAULT_CHUNK_ROWS
from ..codec.manifest import Manifest, ManifestWriter
from ..files.readers import BadRow
from ..fitted.model import FittedVAE, as_fitted
from ..fitted.streams import MODEL_GRID, CompressedWriter, writer_bounds
from ..jobs.compress_input import iter_compress_chunks
from ..jobs.read import (
    DEFAULT_SAMPLE_BYTES,
    Progress,
    Reservoir,
    frame_chunk,
    training_reservoir,
)
from ..jobs.score import ScoreOptions, default_options, empty_scores, score_chunk, score_schema
from .dask_cluster import (
    ModelBlob,
    TaskResult,
    dask_client,
    in_order,
    model_blob,
    parse_count,
    run_parts,
    run_task,
    ship_model,
    task_window,
    worker_estimator,
    worker_model,
)
from .local import iter_scored

# A bound for every value, as CompressedWriter's max_abs_error: a float (SDs), a dict
# (column units), "model" (the grid the model chose) or None (the latent code alone).
Bounds = float | dict[str, float] | str | None

__all__ = [
    "ModelBlob",
    "compress_dataframe",
    "compress_files_dask",
    "dask_client",
    "fit_dataframe",
    "model_blob",
    "parse_count",
    "sample_dataframe",
    "score_dataframe",
    "score_files",
    "score_files_dask",
    "ship_model",
    "worker_estimator",
    "worker_model",
]


# --------------------------------------------------------------------------- scoring files


def _score_file_task(path: str, blob: ModelBlob, options: ScoreOptions,
                     skip_bad_rows: bool) -> TaskResult:
    fitted = worker_model(blob)
    # Dask already runs one task per core: no read-ahead or scoring threads inside a task
    # (they would oversubscribe the cores; the scores are the same either way).
    return run_task(lambda out: out.extend(iter_scored([path], fitted, options,
                                                        skip_bad_rows=skip_bad_rows,
                                                        threads=1, pipeline=False)))


def score_files_dask(inputs: Sequence[str], model: Any, options: ScoreOptions, *,
                     scheduler: str | Client | None = None, skip_bad_rows: bool = False,
                     progress: Progress | None = None, n_workers: int | None = None
                     ) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """Score files on a Dask cluster; yields exactly what
    :func:`~vaekit.engines.local.iter_scored` yields.

    Parameters
    ----------
    inputs : sequence of str
        CSV, Parquet or image files; each is one task.  Workers read them by path,
        so on a multi-machine cluster they must be visible to every worker.
    model : FittedVAE or fitted estimator (VAEAnomalyDetector, VAECompressor)
    options : ScoreOptions
    scheduler : str, Client or None
        See :func:`dask_client`; ``None`` starts a local cluster for this call.
    skip_bad_rows : bool
        As for :func:`~vaekit.engines.local.iter_scored`.
    progress : callable, optional
        Called with the number of rows (good and bad) of each chunk handed out.
    n_workers : int, optional
        Worker processes of a local cluster.

    Yields
    ------
    (table, bad_rows)
        Per chunk, in input order: scored rows (anomaly score in nats, see
        :func:`~vaekit.jobs.score.score_chunk`) and the rows left out.

    Raises
    ------
    DataError
        The first data problem in input order (with ``skip_bad_rows=False``), after
        the chunks before it were yielded, as the local loop does.

    Notes
    -----
    A local cluster lives as long as the iteration: it is shut down when the
    generator is exhausted, closed, or garbage collected.  At most two tasks per
    worker thread are in flight, so the cluster holds that many files' results.
    """
    paths = list(inputs)
    fitted = as_fitted(model)
    with dask_client(scheduler, n_workers=n_workers) as client:
        shipped = ship_model(client, fitted)
        try:
            def submit(i: int) -> Future:
                # pure=False: a file may change between two calls in one session.
                return client.submit(_score_file_task, paths[i], shipped, options,
                                     skip_bad_rows, pure=False)

            for _, result in in_order(submit, len(paths), task_window(client)):
                result.replay()
                for table, bad in result.pieces:
                    if progress:
                        progress(table.num_rows + len(bad))
                    yield table, bad
                result.raise_error()
        finally:
            shipped.release()


score_files = score_files_dask
"""The Dask engine's ``score_files`` (the name :func:`vaekit.engines.get_engine` users call)."""


# --------------------------------------------------------------------------- compressing files


def _compress_file_task(path: str, blob: ModelBlob, id_columns: tuple[str, ...],
                        chunk_rows: int, skip_bad_rows: bool,
                        max_abs_error: Bounds = MODEL_GRID) -> TaskResult:
    """One file -> pieces ``[(container bytes or None, rows, bad rows)]``."""
    fitted = worker_model(blob)

    def work(out: list[Any]) -> None:
        buffer = io.BytesIO()
        writer = CompressedWriter(buffer, fitted, id_columns=id_columns, chunk_rows=chunk_rows,
                                  max_abs_error=max_abs_error)
        bad: list[BadRow] = []
        for frame, bad_here in iter_compress_chunks([path], fitted, id_columns,
                                                    skip_bad_rows=skip_bad_rows):
            bad.extend(bad_here)
            if len(frame):
                writer.write(frame)
        rows = writer.n_rows
        if rows:
            writer.close()
        else:
            writer.abort()  # an empty part is left out of the manifest
        out.append((buffer.getvalue() if rows else None, rows, bad))

    return run_task(work)


def compress_files_dask(inputs: Sequence[str], model: Any,
                        output: str | os.PathLike[str], *, id_columns: Sequence[str] = (),
                        embed_model: bool = False,
                        scheduler: str | Client | None = None, skip_bad_rows: bool = False,
                        on_bad_rows: Callable[[list[BadRow]], None] | None = None,
                        progress: Progress | None = None,
                        chunk_rows: int = DEFAULT_CHUNK_ROWS,
                        n_workers: int | None = None,
                        max_abs_error: Bounds = MODEL_GRID) -> Manifest:
    """Compress files on a Dask cluster: one ``.vkc`` part per file plus a manifest.

    Parameters
    ----------
    inputs : sequence of str
        CSV, Parquet or image files, one task each (visible to every worker).
    model : FittedVAE or fitted estimator (VAECompressor, VAEAnomalyDetector)
    output : path-like
        The manifest to write (``OUT.vkc``); parts go to ``OUT.vkc.parts/``
        (see :mod:`vaekit.codec.manifest`).  ``vaekit decompress OUT.vkc`` reads it.
    id_columns : sequence of str
        Columns stored losslessly beside the codes.
    embed_model : bool
        Store the model once beside the parts (decompression then needs no model).
    scheduler : str, Client or None
        See :func:`dask_client`.
    skip_bad_rows : bool
        Leave unusable rows out (reported through ``on_bad_rows``) instead of failing.
    on_bad_rows : callable, optional
        Called, in input order, with the rows left out of each file.
    progress : callable, optional
        Called with the number of rows (good and bad) of each file when its part
        is written.
    chunk_rows : int
        Rows per container chunk.
    max_abs_error : float, dict, "model" or None
        As :class:`~vaekit.fitted.streams.CompressedWriter`'s (every value within its
        bound; default: the value grid the model chose, if any); checked here, before
        any task starts.

    Returns
    -------
    Manifest
        What was written (rows, parts, sizes in bytes).

    Raises
    ------
    DataError
        The first data problem in input order, or no rows at all, or a bound the
        model cannot take (ValueError: a string other than ``"model"``).  Nothing is
        published then: ``output`` keeps its previous content.

    Notes
    -----
    Workers return each part's bytes and the client writes them, so workers need
    no shared output folder; the compressed bytes are a small fraction of the input
    (a few bytes per row).  Each part equals, byte for byte, what the local engine
    writes for that file alone.
    """
    paths = list(inputs)
    ids = tuple(str(c) for c in id_columns)
    fitted = as_fitted(model)
    _check_bounds(fitted, max_abs_error)
    writer = _manifest_writer(output, fitted, embed_model)

    def add(i: int, result: Any) -> None:
        result.replay()
        result.raise_error()
        ((data, rows, bad),) = result.pieces
        if bad and on_bad_rows is not None:
            on_bad_rows(bad)
        if data is not None:
            writer.add_part(data, rows, source=paths[i])
        if progress:
            progress(rows + len(bad))

    try:
        with dask_client(scheduler, n_workers=n_workers) as client:
            run_parts(client, fitted, len(paths), add,
                       lambda i, model: client.submit(_compress_file_task, paths[i], model, ids,
                                                      int(chunk_rows), skip_bad_rows,
                                                      max_abs_error, pure=False))
        return writer.close()
    except BaseException:
        writer.abort()
        raise


# --------------------------------------------------------------------------- Dask DataFrames


def _check_bounds(fitted: FittedVAE, max_abs_error: Bounds) -> None:
    """Refuse a bound the model cannot take on the client, before any task runs (as
    each task's CompressedWriter would)."""
    writer_bounds(fitted, max_abs_error)


def _manifest_writer(output: str | os.PathLike[str], fitted: FittedVAE,
                     embed_model: bool) -> ManifestWriter:
    return ManifestWriter(output, fitted.fingerprint(),
                          model_bytes=fitted.to_bytes() if embed_model else None)


def _label(partition_info: dict[str, Any] | None) -> str:
    return f"partition {partition_info['number'] if partition_info else 0}"


def _score_partition(part: pd.DataFrame, blob: ModelBlob, options: ScoreOptions,
                     partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    fitted = worker_model(blob)
    chunk = frame_chunk(part, fitted, options.id_columns, label=_label(partition_info))
    if len(chunk) == 0:
        table = empty_scores(fitted, options)
    else:
        table = score_chunk(fitted, chunk, options)
    out = table.to_pandas()
    out.index = part.index  # so scores join back onto the input
    return out


def score_dataframe(ddf: dd.DataFrame, model: Any,
                    options: ScoreOptions | None = None, *, client: Client | None = None
                    ) -> dd.DataFrame:
    """Score a Dask DataFrame partition by partition (lazy).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The model's columns (plus the ``options.id_columns``), as numbers or text;
        they are converted exactly as ``vaekit score`` converts file columns
        (:func:`vaekit.jobs.read.frame_chunk`).  Other columns are ignored.
    model : FittedVAE or fitted VAEAnomalyDetector
    options : ScoreOptions, optional
        Default: no id columns, the model's threshold and ``n_samples``
        (:func:`vaekit.jobs.score.default_options`).
    client : distributed.Client, optional
        Where the model is scattered (default: the current client).  The result
        must be computed on that client.

    Returns
    -------
    dask.dataframe.DataFrame
        Columns of :func:`~vaekit.jobs.score.score_schema` (no ``rank``), with the
        input's index; ``anomaly_score`` in nats.  Without id columns, ``file`` is
        ``"partition N"`` and ``line`` the 1-based row within the partition.

    Raises
    ------
    DataError
        (when computed) A value the model cannot use; the message names the
        partition, its row and the column.
    """
    client = client or get_client()
    fitted = as_fitted(model)
    if options is None:
        options = default_options(fitted)
    meta = score_schema(fitted, options, rank=False).empty_table().to_pandas()
    meta.index = ddf._meta.index[:0]
    shipped = ship_model(client, fitted)
    return ddf.map_partitions(_score_partition, shipped, options, meta=meta)


def _compress_partition(part: pd.DataFrame, blob: ModelBlob, id_columns: tuple[str, ...],
                        chunk_rows: int, number: int = 0,
                        max_abs_error: Bounds = MODEL_GRID) -> tuple[bytes | None, int]:
    """One partition -> ``(container bytes or None when empty, rows)``."""
    fitted = worker_model(blob)
    if len(part) == 0:
        return None, 0
    # The readers' conversion, as for scoring: text "1" is level 1 here too.
    chunk = frame_chunk(part, fitted, id_columns, label=f"partition {number}",
                        refuse_extra=True)
    buffer = io.BytesIO()
    with CompressedWriter(buffer, fitted, id_columns=id_columns, chunk_rows=chunk_rows,
                          max_abs_error=max_abs_error) as writer:
        writer.write(chunk.data)
    return buffer.getvalue(), len(chunk)


def compress_dataframe(ddf: dd.DataFrame, model: Any,
                       output: str | os.PathLike[str], *, id_columns: Sequence[str] = (),
                       embed_model: bool = False, client: Client | None = None,
                       chunk_rows: int = DEFAULT_CHUNK_ROWS,
                       max_abs_error: Bounds = MODEL_GRID) -> Manifest:
    """Compress a Dask DataFrame: one ``.vkc`` part per partition plus a manifest.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The model's columns plus exactly ``id_columns`` (any other column is
        refused, so nothing is dropped silently); the index is not stored.  Columns
        are converted exactly as ``vaekit compress`` converts file columns
        (:func:`vaekit.jobs.read.frame_chunk`), as :func:`score_dataframe` does.
    model, output, id_columns, embed_model, chunk_rows, max_abs_error
        As for :func:`compress_files_dask`.
    client : distributed.Client, optional
        Default: the current client.

    Returns
    -------
    Manifest
        What was written (rows, parts, sizes in bytes).
    """
    client = client or get_client()
    fitted = as_fitted(model)
    _check_bounds(fitted, max_abs_error)
    writer = _manifest_writer(output, fitted, embed_model)
    ids = tuple(str(c) for c in id_columns)
    parts = ddf.to_delayed()

    def add(i: int, result: Any) -> None:
        data, rows = result
        if data is not None:
            writer.add_part(data, rows, source=f"partition {i}")

    try:
        run_parts(client, fitted, len(parts), add,
                   lambda i, shipped: client.compute(
                       dask.delayed(_compress_partition, pure=True)(parts[i], shipped, ids,
                                                                    int(chunk_rows), i,
                                                                    max_abs_error)))
        return writer.close()
    except BaseException:
        writer.abort()
        raise


# --------------------------------------------------------------------------- fitting


def _sample_partition(part: pd.DataFrame, k: int | None, seed: int, number: int
                      ) -> tuple[pd.DataFrame | None, Any]:
    """One partition's own sample: its ``k`` rows of smallest key, and their positions."""
    reservoir = Reservoir(seed, k)
    reservoir.add(part, stream=number, positions=range(len(part)))
    rows, meta = reservoir.sample()
    return rows, meta[:, 1]


def sample_dataframe(ddf: dd.DataFrame, *, max_rows: int | str | None = "auto",
                     sample_bytes: int | None = DEFAULT_SAMPLE_BYTES, random_state: int = 0,
                     client: Client | None = None) -> pd.DataFrame:
    """A uniform, seeded sample of a Dask DataFrame's rows, as a pandas DataFrame.

    Each partition keeps its own sample on a worker (the rows of smallest key,
    :class:`~vaekit.jobs.read.Reservoir`); the client merges them in partition
    order into the sample of all rows.  A row's key depends on the seed, its
    partition number and its position there, so the result is exactly the sample a
    single pass over all rows would keep: every set of ``max_rows`` rows equally
    likely, the same for the same partitions and seed (also after a worker is
    lost), whatever the cluster.  The client holds the sample and, at most, a
    window of partition samples.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
    max_rows : "auto", int or None
        As for :func:`vaekit.jobs.read.load_training_data`: ``"auto"`` keeps at most
        1,000,000 rows and ``sample_bytes`` of memory (measured on the first rows),
        an int that many rows, None every row.
    sample_bytes : int or None
        Memory bound of ``"auto"``.
    random_state : int
        Seeds the sample.
    client : distributed.Client, optional
        Default: the current client.

    Returns
    -------
    DataFrame
        The sampled rows in partition and row order, with a fresh 0..n-1 index.
    """
    client = client or get_client()
    seed = int(random_state)
    reservoir = training_reservoir(max_rows, sample_bytes, seed)
    parts = ddf.to_delayed()

    def submit(i: int) -> Future:
        # A partition never needs more rows than the final sample can hold; once the
        # sample size is known, later partitions send less (the result is the same).
        k = reservoir.k if reservoir.sized else reservoir.max_rows
        return client.compute(dask.delayed(_sample_partition, pure=True)(parts[i], k, seed, i))

    for i, (rows, positions) in in_order(submit, len(parts), task_window(client)):
        if rows is not None:
            reservoir.add(rows, stream=i, positions=positions)
    sample, _ = reservoir.sample()
    return ddf._meta.iloc[:0].reset_index(drop=True) if sample is None else sample


def fit_dataframe(ddf: dd.DataFrame, estimator: Any, *, max_rows: int | str | None = "auto",
                  sample_bytes: int | None = DEFAULT_SAMPLE_BYTES, random_state: int = 0,
                  client: Client | None = None) -> Any:
    """Fit ``estimator`` here on a uniform sample of a Dask DataFrame's rows.

    The sample is :func:`sample_dataframe`'s (the same parameters); the estimator
    then fits on it locally, exactly as ``estimator.fit(sample)`` would.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The columns to model (drop id columns first).
    estimator : VAEAnomalyDetector or VAECompressor
        Unfitted or fitted (fitted again).

    Returns
    -------
    estimator
        Fitted.
    """
    sample = sample_dataframe(ddf, max_rows=max_rows, sample_bytes=sample_bytes,
                              random_state=random_state, client=client)
    return estimator.fit(sample)
