"""Execution engines for vaekit's jobs (scoring, compression), chosen by name.

``local``
    :mod:`vaekit.engines.local`: a reader thread and a pool of scoring threads in
    this process (always available).
``dask``
    :mod:`vaekit.engines.dask`: the same per-chunk functions run file by file (or
    partition by partition) on a Dask cluster.  Needs the optional extra
    ``pip install "vaekit[dask]"``; importing this package never imports Dask, only
    importing :mod:`vaekit.engines.dask` does.

Both hand their tasks to one scheduler (:func:`vaekit.engines.ordered.ordered_map`:
a bounded window of tasks in flight, results in input order) and every task calls
the same pure per-chunk functions of :mod:`vaekit.jobs`, so their results are
identical bit for bit (a row's score or code depends only on the row and the model).
Each engine module has a ``score_files(inputs, model, options, *, skip_bad_rows,
progress, ...)`` yielding ``(scored table, bad rows)`` per chunk in input order.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

ENGINES = ("local", "dask")


def dask_available() -> bool:
    """True if ``dask`` and ``distributed`` can be imported (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))


def get_engine(name: str) -> ModuleType:
    """The engine module called ``name`` (one of :data:`ENGINES`), imported now.

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        For ``"dask"`` without the ``vaekit[dask]`` extra (the message says so).
    """
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose from {list(ENGINES)}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["ENGINES", "dask_available", "get_engine"]
