"""A pool of single-threaded workers running one fitted model (scoring, compressing).

Parallelism comes from working on several chunks at once, each on one compute thread:
the chunks' results are then the same bits whatever the number of workers, because
every chunk goes through the same single-threaded kernels on the same fixed-shape
blocks.  Thread settings are process-wide (torch's and the BLAS's), so they are set
once for the pool's whole run (:func:`single_threaded`) and restored after, never
per call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from .._runtime import blas_threads, n_threads
from .model import FittedVAE, as_fitted

__all__ = ["resolve_threads", "single_threaded", "worker_pool"]


def _init_torch_worker() -> None:
    import torch

    # torch's intra-op setting is per OpenMP thread team: each worker sets its own.
    torch.set_num_threads(1)


def worker_pool(model: FittedVAE, n_workers: int, name: str) -> ThreadPoolExecutor:
    """``n_workers`` threads for ``model``'s backend (run it inside :func:`single_threaded`)."""
    return ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix=name,
                              initializer=_init_torch_worker if model.backend == "torch"
                              else None)


@contextmanager
def single_threaded(model: FittedVAE) -> Iterator[None]:
    """Each worker computes on one thread, for the whole pool's run."""
    if model.backend == "numpy":
        with blas_threads(1):
            yield
        return
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        # Worker threads set torch's process-wide (MKL) thread count; restore it.
        torch.set_num_threads(before)


def resolve_threads(threads: int | None, model: Any = None) -> int:
    """Worker threads: ``threads`` if given (0 or less = one per CPU core), else the
    model's ``n_jobs`` read as everywhere else (:func:`vaekit._runtime.n_threads`)."""
    if threads is None:
        return n_threads(None if model is None else as_fitted(model).n_jobs)
    if threads <= 0:
        return max(1, os.cpu_count() or 1)
    return int(threads)
