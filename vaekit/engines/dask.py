"""Score and compress on a Dask cluster, partition by partition.

Needs the optional extra: ``pip install "vaekit[dask]"``.

The unit of work is one input file (or one partition of a Dask DataFrame).  A
worker runs exactly the local engine's code on it (:func:`vaekit.batch.iter_scored`,
:func:`vaekit.batch.iter_compress_chunks` with
:class:`~vaekit.codec.compressor.CompressedWriter`), so results are identical bit
for bit to a single-process run: a row's score or code depends only on the row
and the model.

The model travels as bytes (:func:`vaekit.fitted.model_file.dump_model`, no pickle of torch
objects), scattered to every worker once per job (``broadcast=True``); each worker
process parses it once and keeps the estimator, keyed by the SHA-256 of the
bytes, for all the tasks it runs.

Tasks are pure (they only read their input and return results), so a task whose
worker dies is simply run again elsewhere by Dask: no row is lost or duplicated,
because the client takes each task's result exactly once, in input order.

Public API
----------
* :func:`score_files_dask` -- a drop-in for :func:`vaekit.batch.iter_scored`.
* :func:`compress_files_dask` -- files to ``OUT.vkc`` manifest + one part per file.
* :func:`score_dataframe` -- a Dask DataFrame of scores from a Dask DataFrame.
* :func:`compress_dataframe` -- one part per partition + manifest.
* :func:`dask_client` -- connect to a scheduler or start (and stop) a local cluster.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

try:
    import dask
    import dask.dataframe as dd
    from distributed import Client, Future, LocalCluster, get_client
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the Dask engine needs dask and distributed: "
                      "install vaekit[dask] (pip install 'vaekit[dask]')") from exc

import numpy as np
import pandas as pd
import pyarrow as pa

from ..batch import (
    ScoreOptions,
    iter_compress_chunks,
    iter_scored,
    reading_types,
    score_chunk,
    score_schema,
)
from ..codec.compressor import DEFAULT_CHUNK_ROWS, CompressedWriter
from ..codec.manifest import Manifest, ManifestWriter
from ..errors import DataError
from ..estimators.base import _VAEBase
from ..estimators.persistence import from_model_data
from ..files.readers import BadRow, Chunk, coerce_frame
from ..fitted import model_file as model_io

__all__ = [
    "ModelBlob",
    "compress_dataframe",
    "compress_files_dask",
    "dask_client",
    "model_blob",
    "score_dataframe",
    "score_files_dask",
]

Progress = Callable[[int], None]

# Estimators kept per worker process.  Two is enough for a job and the next one
# with another model; more would only hold memory for models no longer used.
_CACHE_SIZE = 2
_CACHE: OrderedDict[str, _VAEBase] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_PARSES = {"n": 0}  # models parsed in this process (tests check "once per worker")


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelBlob:
    """A fitted model as plain bytes, the form in which it is shipped to workers.

    Attributes
    ----------
    digest : str
        SHA-256 (hex) of ``data``: the key of the per-worker estimator cache.
    data : bytes
        :func:`vaekit.fitted.model_file.dump_model` output (weights and metadata; no pickle).
    """

    digest: str
    data: bytes = field(repr=False)


def model_blob(estimator: _VAEBase) -> ModelBlob:
    """The bytes of a fitted estimator's model file, with their SHA-256."""
    data = estimator.to_bytes()
    return ModelBlob(hashlib.sha256(data).hexdigest(), data)


def worker_estimator(blob: ModelBlob) -> _VAEBase:
    """The estimator for ``blob`` in this process, parsed on first use only."""
    with _CACHE_LOCK:
        est = _CACHE.get(blob.digest)
        if est is not None:
            _CACHE.move_to_end(blob.digest)
            return est
        tensors, meta = model_io.parse_model(blob.data, source="model sent to the worker")
        # device=None: the saved setting, resolved on this worker exactly as
        # `vaekit score` resolves it when it loads the model file.
        est = from_model_data(tensors, meta, device=None)
        _PARSES["n"] += 1
        _CACHE[blob.digest] = est
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return est


def parse_count() -> int:
    """How many models this process has parsed (run on workers with ``client.run``)."""
    return _PARSES["n"]


def ship_model(client: Client, estimator: _VAEBase) -> Future:
    """Scatter the model bytes to every worker now, once; pass the future to tasks.

    A task that names the future finds the bytes already in its worker's memory,
    so nothing is transferred per task.
    """
    # hash=False: a key of its own per job.  With content-hashed keys, two jobs
    # with the same model share one key, and the first job's release at its end
    # can remove the data under the second one's tasks.
    return client.scatter(model_blob(estimator), broadcast=True, hash=False)


# --------------------------------------------------------------------------- clients


@contextmanager
def dask_client(scheduler: str | Client | None = None, *,
                n_workers: int | None = None) -> Iterator[Client]:
    """A client for ``scheduler``, or a local cluster started and shut down here.

    Parameters
    ----------
    scheduler : str, Client or None
        ``"tcp://HOST:PORT"`` of a running scheduler (the cluster is left running;
        only the connection is closed), an existing :class:`distributed.Client`
        (used as is, left open), or ``None``: start a :class:`distributed.LocalCluster`
        on the loopback interface and stop it on exit, also on errors.
    n_workers : int, optional
        Worker processes of the local cluster (default: one per CPU core), one
        thread each: vaekit's networks are small, so one process per core beats
        several threads sharing one interpreter.
    """
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        # set_as_default=False: a library call must not change the caller's default.
        client = Client(scheduler, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
        return
    # Dask sets MALLOC_TRIM_THRESHOLD_ in worker processes to return memory to the
    # OS sooner; that also turns off glibc's adaptive mmap threshold, so every
    # chunk-sized array is mmap'ed and faulted in afresh: scoring the demo table on
    # one thread measured 30-60 % slower with it.  A worker holds one file's
    # results at most, so the workers started here keep glibc's default.
    with warnings.catch_warnings(), \
            dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        # The scheduler's small HTTP server (health checks; the dashboard itself is
        # off) binds to the loopback host and moves to a free port when 8787 is
        # taken, e.g. by another local cluster: nothing for the user to act on.
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1,
                               threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        with _quiet_slow_exit():
            cluster.close()


class _SlowExitFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "still alive after" not in record.getMessage()


@contextmanager
def _quiet_slow_exit() -> Iterator[None]:
    """Hide the nanny's "worker still alive, killing" notice while the cluster stops.

    Worker processes that imported torch can take a few seconds to exit on a
    busy machine; the nanny then ends them itself.  Their work is done by then,
    so the notice tells the user nothing.
    """
    nanny_log = logging.getLogger("distributed.nanny")
    quiet = _SlowExitFilter()
    nanny_log.addFilter(quiet)
    try:
        yield
    finally:
        nanny_log.removeFilter(quiet)


def _window(client: Client) -> int:
    """Tasks kept in flight: two per worker thread, so no worker waits for the client."""
    threads = sum(client.nthreads().values())
    return max(4, 2 * threads)


def _run_parts(client: Client, estimator: _VAEBase, n: int, add: Callable[[int, Any], None],
               submit: Callable[[int, Future], Future]) -> None:
    """Ship the model once, run tasks ``0..n-1`` and hand each result to ``add`` in order.

    ``submit(i, model)`` starts task ``i`` with the scattered model; the model is
    released from the cluster when all parts are done or one fails.
    """
    model = ship_model(client, estimator)
    try:
        for i, result in enumerate(_in_order(lambda i: submit(i, model), n, _window(client))):
            add(i, result)
    finally:
        model.release()


def _in_order(submit: Callable[[int], Future], n: int, window: int) -> Iterator[Any]:
    """Results of tasks ``0..n-1`` in order, with at most ``window`` tasks submitted ahead.

    Each result is taken once and its future released right away, so a retried
    task (worker lost) can neither be missed nor counted twice, and the cluster
    holds at most ``window`` results.
    """
    pending: deque[Future] = deque()
    nxt = 0
    try:
        while nxt < n and len(pending) < window:
            pending.append(submit(nxt))
            nxt += 1
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            if nxt < n:
                pending.append(submit(nxt))
                nxt += 1
            yield result
    finally:
        for future in pending:
            future.cancel()


# --------------------------------------------------------------------------- task results


@dataclass
class _TaskResult:
    """What a file task sends back: results, or the DataError that stopped it.

    A :class:`DataError` is returned rather than raised so that it keeps its file,
    line and column (exceptions lose their attributes when pickled), and so that
    Dask does not retry a deterministic data problem.
    """

    pieces: list[Any]
    warnings: list[tuple[type[Warning], str]]
    error: tuple[str, str | None, int | None, str | None] | None = None

    def replay(self) -> None:
        """Re-issue the worker's warnings here, in the client process."""
        for category, message in self.warnings:
            warnings.warn(message, category, stacklevel=3)

    def raise_error(self) -> None:
        if self.error is not None:
            reason, file, row, column = self.error
            raise DataError(reason, file=file, row=row, column=column)


def _run_task(work: Callable[[list[Any]], None]) -> _TaskResult:
    """Run ``work(pieces)``, catching warnings and data errors for the client."""
    pieces: list[Any] = []
    error = None
    # Warnings are recorded per task; with one thread per worker (the default)
    # no other task's warnings can slip in.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            work(pieces)
        except DataError as exc:
            error = (exc.reason, exc.file, exc.row, exc.column)
    return _TaskResult(pieces, [(w.category, str(w.message)) for w in caught], error)


# --------------------------------------------------------------------------- scoring files


def _score_file_task(path: str, blob: ModelBlob, options: ScoreOptions,
                     skip_bad_rows: bool) -> _TaskResult:
    est = worker_estimator(blob)
    # Dask already runs one task per core: no read-ahead or scoring threads inside a task
    # (they would oversubscribe the cores; the scores are the same either way).
    return _run_task(lambda out: out.extend(iter_scored([path], est, options,
                                                        skip_bad_rows=skip_bad_rows,
                                                        threads=1, pipeline=False)))


def score_files_dask(inputs: Sequence[str], estimator: _VAEBase, options: ScoreOptions, *,
                     scheduler: str | Client | None = None, skip_bad_rows: bool = False,
                     progress: Progress | None = None, n_workers: int | None = None
                     ) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """Score files on a Dask cluster; yields exactly what :func:`~vaekit.batch.iter_scored` yields.

    Parameters
    ----------
    inputs : sequence of str
        CSV, Parquet or image files; each is one task.  Workers read them by path,
        so on a multi-machine cluster they must be visible to every worker.
    estimator : fitted VAEAnomalyDetector (or VAECompressor)
    options : ScoreOptions
    scheduler : str, Client or None
        See :func:`dask_client`; ``None`` starts a local cluster for this call.
    skip_bad_rows : bool
        As for :func:`~vaekit.batch.iter_scored`.
    progress : callable, optional
        Called with the number of rows (good and bad) of each chunk handed out.
    n_workers : int, optional
        Worker processes of a local cluster.

    Yields
    ------
    (table, bad_rows)
        Per chunk, in input order: scored rows (anomaly score in nats, see
        :func:`~vaekit.batch.score_chunk`) and the rows left out.

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
    with dask_client(scheduler, n_workers=n_workers) as client:
        model = ship_model(client, estimator)
        try:
            def submit(i: int) -> Future:
                # pure=False: a file may change between two calls in one session.
                return client.submit(_score_file_task, paths[i], model, options,
                                     skip_bad_rows, pure=False)

            for result in _in_order(submit, len(paths), _window(client)):
                result.replay()
                for table, bad in result.pieces:
                    if progress:
                        progress(table.num_rows + len(bad))
                    yield table, bad
                result.raise_error()
        finally:
            model.release()


# --------------------------------------------------------------------------- compressing files


def _compress_file_task(path: str, blob: ModelBlob, id_columns: tuple[str, ...],
                        chunk_rows: int, skip_bad_rows: bool) -> _TaskResult:
    """One file -> pieces ``[(container bytes or None, rows, bad rows)]``."""
    est = worker_estimator(blob)

    def work(out: list[Any]) -> None:
        buffer = io.BytesIO()
        writer = CompressedWriter(buffer, est, id_columns=id_columns, chunk_rows=chunk_rows)
        bad: list[BadRow] = []
        for frame, bad_here in iter_compress_chunks([path], est, id_columns,
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

    return _run_task(work)


def compress_files_dask(inputs: Sequence[str], estimator: _VAEBase,
                        output: str | os.PathLike[str], *, id_columns: Sequence[str] = (),
                        embed_model: bool = False,
                        scheduler: str | Client | None = None, skip_bad_rows: bool = False,
                        on_bad_rows: Callable[[list[BadRow]], None] | None = None,
                        progress: Progress | None = None,
                        chunk_rows: int = DEFAULT_CHUNK_ROWS,
                        n_workers: int | None = None) -> Manifest:
    """Compress files on a Dask cluster: one ``.vkc`` part per file plus a manifest.

    Parameters
    ----------
    inputs : sequence of str
        CSV, Parquet or image files, one task each (visible to every worker).
    estimator : fitted VAECompressor or VAEAnomalyDetector
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

    Returns
    -------
    Manifest
        What was written (rows, parts, sizes in bytes).

    Raises
    ------
    DataError
        The first data problem in input order, or no rows at all.  Nothing is
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
    writer = ManifestWriter(output, estimator, embed_model=embed_model)
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
            _run_parts(client, estimator, len(paths), add,
                       lambda i, model: client.submit(_compress_file_task, paths[i], model, ids,
                                                      int(chunk_rows), skip_bad_rows, pure=False))
        return writer.close()
    except BaseException:
        writer.abort()
        raise


# --------------------------------------------------------------------------- Dask DataFrames


def _partition_chunk(part: pd.DataFrame, est: _VAEBase, options: ScoreOptions,
                     label: str) -> Chunk:
    """A partition as the readers would deliver it: same column types, same checks."""
    types = reading_types(est.schema_, options.id_columns)
    missing = [c for c in types if c not in part.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the model was fitted on columns "
                        f"{est.schema_.names()}", file=label)
    frame = part[list(types)].reset_index(drop=True)
    lines = np.arange(1, len(frame) + 1, dtype=np.int64)
    good, good_lines, bad = coerce_frame(frame, types, lines, label)
    if bad:
        raise bad[0].error()
    return Chunk(good, label, good_lines)


def _score_partition(part: pd.DataFrame, blob: ModelBlob, options: ScoreOptions,
                     partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    est = worker_estimator(blob)
    number = partition_info["number"] if partition_info else 0
    chunk = _partition_chunk(part, est, options, f"partition {number}")
    if len(chunk) == 0:
        table = score_schema(est, options, rank=False).empty_table()
    else:
        table = score_chunk(est, chunk, options)
    out = table.to_pandas()
    out.index = part.index  # so scores join back onto the input
    return out


def score_dataframe(ddf: dd.DataFrame, estimator: _VAEBase,
                    options: ScoreOptions | None = None, *, client: Client | None = None
                    ) -> dd.DataFrame:
    """Score a Dask DataFrame partition by partition (lazy).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The model's columns (plus the ``options.id_columns``), as numbers or text;
        they are converted exactly as ``vaekit score`` converts file columns.
    estimator : fitted VAEAnomalyDetector
    options : ScoreOptions, optional
        Default: no id columns, the model's threshold and ``n_samples``.
    client : distributed.Client, optional
        Where the model is scattered (default: the current client).  The result
        must be computed on that client.

    Returns
    -------
    dask.dataframe.DataFrame
        Columns of :func:`~vaekit.batch.score_schema` (no ``rank``), with the
        input's index; ``anomaly_score`` in nats.  Without id columns, ``file`` is
        ``"partition N"`` and ``line`` the 1-based row within the partition.

    Raises
    ------
    DataError
        (when computed) A value the model cannot use; the message names the
        partition, its row and the column.
    """
    client = client or get_client()
    if options is None:
        options = ScoreOptions(threshold=float(getattr(estimator, "threshold_", float("inf"))),
                               n_samples=int(getattr(estimator, "n_samples", 16)))
    meta = score_schema(estimator, options, rank=False).empty_table().to_pandas()
    meta.index = ddf._meta.index[:0]
    model = ship_model(client, estimator)
    return ddf.map_partitions(_score_partition, model, options, meta=meta)


def _compress_partition(part: pd.DataFrame, blob: ModelBlob, id_columns: tuple[str, ...],
                        chunk_rows: int) -> tuple[bytes | None, int]:
    est = worker_estimator(blob)
    if len(part) == 0:
        return None, 0
    buffer = io.BytesIO()
    with CompressedWriter(buffer, est, id_columns=id_columns, chunk_rows=chunk_rows) as writer:
        writer.write(part.reset_index(drop=True))
    return buffer.getvalue(), len(part)


def compress_dataframe(ddf: dd.DataFrame, estimator: _VAEBase,
                       output: str | os.PathLike[str], *, id_columns: Sequence[str] = (),
                       embed_model: bool = False, client: Client | None = None,
                       chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Manifest:
    """Compress a Dask DataFrame: one ``.vkc`` part per partition plus a manifest.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The model's columns plus exactly ``id_columns`` (any other column is
        refused, so nothing is dropped silently); the index is not stored.
    estimator, output, id_columns, embed_model, chunk_rows
        As for :func:`compress_files_dask`.
    client : distributed.Client, optional
        Default: the current client.

    Returns
    -------
    Manifest
    """
    client = client or get_client()
    writer = ManifestWriter(output, estimator, embed_model=embed_model)
    ids = tuple(str(c) for c in id_columns)
    parts = ddf.to_delayed()

    def add(i: int, result: Any) -> None:
        data, rows = result
        if data is not None:
            writer.add_part(data, rows, source=f"partition {i}")

    try:
        _run_parts(client, estimator, len(parts), add,
                   lambda i, model: client.compute(
                       dask.delayed(_compress_partition, pure=True)(parts[i], model, ids,
                                                                    int(chunk_rows))))
        return writer.close()
    except BaseException:
        writer.abort()
        raise
