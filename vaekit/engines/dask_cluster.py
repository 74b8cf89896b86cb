"""Dask plumbing of the Dask engine: clients, the model shipped to workers, tasks in order.

Needs the optional extra: ``pip install "vaekit[dask]"``.  The jobs themselves are
in :mod:`vaekit.engines.dask`.

The model travels as bytes (:meth:`vaekit.fitted.FittedVAE.to_bytes`, no pickle of
torch objects), scattered to every worker once per job (``broadcast=True``); each
worker process parses it once (:meth:`~vaekit.fitted.FittedVAE.from_bytes`) and
keeps the :class:`~vaekit.fitted.FittedVAE`, keyed by the SHA-256 of the bytes, for
all the tasks it runs.  Tasks are handed out and collected by the scheduler the
local engine uses too (:func:`vaekit.engines.ordered.ordered_map`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

try:
    import dask
    from distributed import Client, Future, LocalCluster
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the Dask engine needs dask and distributed: "
                      "install vaekit[dask] (pip install 'vaekit[dask]')") from exc

from ..errors import DataError
from ..fitted.model import FittedVAE, as_fitted
from .ordered import ordered_map

__all__ = [
    "ModelBlob",
    "TaskResult",
    "dask_client",
    "in_order",
    "model_blob",
    "parse_count",
    "run_parts",
    "run_task",
    "ship_model",
    "task_window",
    "worker_estimator",
    "worker_model",
]

# Fitted models kept per worker process.  Two is enough for a job and the next one
# with another model; more would only hold memory for models no longer used.
_CACHE_SIZE = 2
_CACHE: OrderedDict[str, FittedVAE] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_PARSES = {"n": 0}  # models parsed in this process (tests check "once per worker")


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelBlob:
    """A fitted model as plain bytes, the form in which it is shipped to workers.

    Attributes
    ----------
    digest : str
        SHA-256 (hex) of ``data``: the key of the per-worker model cache.
    data : bytes
        :meth:`vaekit.fitted.FittedVAE.to_bytes` output (a ``.vaekit`` model file:
        weights and metadata; no pickle).
    """

    digest: str
    data: bytes = field(repr=False)


def model_blob(model: Any) -> ModelBlob:
    """The bytes of a fitted model's model file (FittedVAE or estimator), with their SHA-256."""
    data = as_fitted(model).to_bytes()
    return ModelBlob(hashlib.sha256(data).hexdigest(), data)


def worker_model(blob: ModelBlob) -> FittedVAE:
    """The fitted model for ``blob`` in this process, parsed on first use only."""
    with _CACHE_LOCK:
        fitted = _CACHE.get(blob.digest)
        if fitted is not None:
            _CACHE.move_to_end(blob.digest)
            return fitted
        # device=None: the saved setting, resolved on this worker exactly as
        # `vaekit score` resolves it when it loads the model file.
        fitted = FittedVAE.from_bytes(blob.data, device=None, source="model sent to the worker")
        _PARSES["n"] += 1
        _CACHE[blob.digest] = fitted
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return fitted


worker_estimator = worker_model
"""Former name of :func:`worker_model` (it returns a :class:`FittedVAE` now)."""


def parse_count() -> int:
    """How many models this process has parsed (run on workers with ``client.run``)."""
    return _PARSES["n"]


def ship_model(client: Client, model: Any) -> Future:
    """Scatter the model bytes to every worker now, once; pass the future to tasks.

    A task that names the future finds the bytes already in its worker's memory,
    so nothing is transferred per task.
    """
    # hash=False: a key of its own per job.  With content-hashed keys, two jobs
    # with the same model share one key, and the first job's release at its end
    # can remove the data under the second one's tasks.
    return client.scatter(model_blob(model), broadcast=True, hash=False)


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


def task_window(client: Client) -> int:
    """Tasks kept in flight: two per worker thread, so no worker waits for the client."""
    threads = sum(client.nthreads().values())
    return max(4, 2 * threads)


def run_parts(client: Client, fitted: FittedVAE, n: int, add: Callable[[int, Any], None],
              submit: Callable[[int, Future], Future]) -> None:
    """Ship the model once, run tasks ``0..n-1`` and hand each result to ``add`` in order.

    ``submit(i, model)`` starts task ``i`` with the scattered model; the model is
    released from the cluster when all parts are done or one fails.
    """
    model = ship_model(client, fitted)
    try:
        for i, result in in_order(lambda i: submit(i, model), n, task_window(client)):
            add(i, result)
    finally:
        model.release()


def take_result(future: Future) -> Any:
    """A task's result, its future released right away (the cluster forgets it)."""
    result = future.result()
    future.release()
    return result


def in_order(submit: Callable[[int], Future], n: int, window: int) -> Iterator[tuple[int, Any]]:
    """``(i, result)`` of tasks ``0..n-1`` in order, at most ``window`` tasks submitted ahead.

    Each result is taken once and its future released right away, so a retried
    task (worker lost) can neither be missed nor counted twice, and the cluster
    holds at most ``window`` results.
    """
    return ordered_map(submit, range(n), window, take=take_result)


# --------------------------------------------------------------------------- task results


@dataclass
class TaskResult:
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


def run_task(work: Callable[[list[Any]], None]) -> TaskResult:
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
    return TaskResult(pieces, [(w.category, str(w.message)) for w in caught], error)
