"""Execution engines for vaekit's batch jobs (scoring, compression).

``local``
    The single-process streaming loops of :mod:`vaekit.batch` (always available).
``dask``
    :mod:`vaekit.engines.dask`: the same per-chunk functions run partition by
    partition on a Dask cluster.  Needs the optional extra
    ``pip install "vaekit[dask]"``; importing this package never imports Dask, only
    importing :mod:`vaekit.engines.dask` does.

Every engine calls the same pure per-chunk functions, so their results are
identical bit for bit (a row's score or code depends only on the row and the model).
"""

from __future__ import annotations

import importlib.util

ENGINES = ("local", "dask")


def dask_available() -> bool:
    """True if ``dask`` and ``distributed`` can be imported (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("dask", "distributed"))


__all__ = ["ENGINES", "dask_available"]
