"""The value grid a byte budget buys: when ``bytes_per_row`` should code values, not codes.

A budget-fitted compressor (``VAECompressor(bytes_per_row=B)``) can spend its bytes
two ways: on the latent code alone (what the codec was trained for), or on the code
*plus* every numeric value within ``eps`` on a grid (the error-bounded mode of
:mod:`.bounded`, whose values are coded under the decoder's prediction).  On most
tables the second reaches a far smaller error for the same bytes
(``recipes/results/equal_rmse.md``).  :func:`choose_grid` measures both on a sample
of rows, by writing and reading real containers, and keeps the one with the smaller
RMSE within the budget; the choice is stored in the model file (``grid_bound``), so
every later compress with that model uses it (``CompressedWriter``'s default
``max_abs_error="model"``).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.numeric import numeric_values
from ..data.tabular import ColumnSpec, TabularSchema
from .model import FittedVAE

# Rows measured: one container chunk (vaekit.codec.container.DEFAULT_CHUNK_ROWS), so
# the per-chunk coder tables weigh on the sample as on a real file.
SAMPLE_ROWS = 4096
# Bytes kept back for rows the sample did not show (as the quantizer's 3 % margin).
BUDGET_MARGIN = 0.97
# Candidate bounds, standardized units (multiples of a column's training SD): 2 ** 2
# down to 2 ** -14, a factor of 2 ** 0.25 apart (halving a bound costs about one bit
# per numeric value, so a factor of 2 would leave up to a bit per value unspent).
CANDIDATES = tuple(2.0 ** (-k / 4) for k in range(-8, 57))


@dataclass(frozen=True)
class GridChoice:
    """What :func:`choose_grid` measured and chose.

    Attributes
    ----------
    bound : float or None
        The chosen ``max_abs_error`` (standardized units; 0 = lossless), or ``None``
        for the latent code alone.
    codes_bytes, codes_rmse : float
        Bytes per row and numeric RMSE (standardized units) of the code alone.
    grid_bytes, grid_rmse : float or None
        The same for the largest candidate bound that fits the budget (``None``
        when none fits).
    lossless_bytes : float
        Bytes per row of lossless values (bound 0) plus the code.
    """

    bound: float | None
    codes_bytes: float
    codes_rmse: float
    grid_bytes: float | None
    grid_rmse: float | None
    lossless_bytes: float

    @property
    def lossless(self) -> bool:
        """The budget covers lossless storage of every value."""
        return self.bound == 0.0


def choose_grid(model: FittedVAE, X: Any, budget: float, seed: int = 0) -> GridChoice | None:
    """The cheaper way for ``model`` to spend ``budget`` bytes per row on rows like ``X``.

    Parameters
    ----------
    model : FittedVAE
        A fitted table codec (images have no value grid: ``None`` is returned).
    X : DataFrame or array
        Rows in the model's input form; at most :data:`SAMPLE_ROWS` of them (a
        seeded uniform sample) are written and read back.
    budget : float
        Bytes per row for codes and values, after entropy coding, excluding the
        file's fixed overhead (its size with no rows).
    seed : int
        Seeds the sample.

    Returns
    -------
    GridChoice or None
        ``None`` for images and tables without numeric columns.  Otherwise the
        bound is 0 (lossless) when lossless values fit :data:`BUDGET_MARGIN` of the
        budget; else the smallest candidate bound whose bytes fit that share of the
        budget (or the code's own bytes, where those are more), when its RMSE is
        below the code's alone; else ``None``.
    """
    schema = model.schema
    if not isinstance(schema, TabularSchema) or not schema.specs("numeric"):
        return None
    if any(c.kind == "numeric" and c.sd is None for c in schema.columns):
        return None  # an old model file: no SDs to scale a bound by
    rows = _sample(X, seed)
    n = len(rows)
    if n == 0:
        return None
    empty = rows.iloc[:0] if isinstance(rows, pd.DataFrame) else rows[:0]

    sizes: dict[float | None, tuple[float, bytes]] = {}  # the bisection ends on a bound tried

    def size(bound: float | None) -> tuple[float, bytes]:
        """Bytes per row beyond the file's fixed overhead (a file with no rows and
        the same bound: a bounded header records its bounds), and the file."""
        if bound not in sizes:
            blob = _compress(model, rows, bound)
            sizes[bound] = (len(blob) - len(_compress(model, empty, bound))) / n, blob
        return sizes[bound]

    codes_bytes, codes_blob = size(None)
    codes_rmse = _rmse(model, rows, codes_blob)
    lossless_bytes = size(0.0)[0]
    # The grid may spend what the code alone takes, when that is over the budget
    # (small tables: per-chunk tables weigh more).
    target = max(BUDGET_MARGIN * float(budget), codes_bytes)
    if lossless_bytes <= BUDGET_MARGIN * float(budget):
        return GridChoice(0.0, codes_bytes, codes_rmse, lossless_bytes, 0.0, lossless_bytes)
    fits = _smallest_fitting(lambda b: size(b)[0] <= target)
    if fits is None:
        return GridChoice(None, codes_bytes, codes_rmse, None, None, lossless_bytes)
    grid_bytes, grid_blob = size(fits)
    grid_rmse = _rmse(model, rows, grid_blob)
    bound = fits if grid_rmse < codes_rmse else None
    return GridChoice(bound, codes_bytes, codes_rmse, grid_bytes, grid_rmse, lossless_bytes)


def _smallest_fitting(fits: Any) -> float | None:
    """The smallest candidate with ``fits(bound)`` (bytes fall as the bound grows), by
    bisection over :data:`CANDIDATES`; ``None`` when even the largest does not fit."""
    lo, hi = 0, len(CANDIDATES) - 1  # CANDIDATES[0] is the largest bound
    if not fits(CANDIDATES[lo]):
        return None
    while lo < hi:  # invariant: CANDIDATES[lo] fits
        mid = (lo + hi + 1) // 2
        if fits(CANDIDATES[mid]):
            lo = mid
        else:
            hi = mid - 1
    return CANDIDATES[lo]


def _sample(X: Any, seed: int) -> Any:
    n = len(X)
    if n <= SAMPLE_ROWS:
        return X
    index = np.sort(np.random.default_rng(seed).choice(n, SAMPLE_ROWS, replace=False))
    return X.iloc[index] if isinstance(X, pd.DataFrame) else np.asarray(X)[index]


def _compress(model: FittedVAE, rows: Any, bound: float | None) -> bytes:
    from .streams import CompressedWriter

    buf = io.BytesIO()
    with CompressedWriter(buf, model, n_rows=len(rows), max_abs_error=bound) as writer:
        if len(rows):
            writer.write(rows)
    return buf.getvalue()


def _rmse(model: FittedVAE, rows: Any, blob: bytes) -> float:
    """RMSE over the numeric cells present in ``rows``, in standardized units."""
    from .streams import decompress_bytes

    back = decompress_bytes(blob, model)
    schema = model.schema
    assert isinstance(schema, TabularSchema)
    total, count = 0.0, 0
    for j, spec in enumerate(schema.columns):
        if spec.kind != "numeric":
            continue
        a, b = _column(rows, spec, j), _column(back, spec, j)
        ok = np.isfinite(a) & np.isfinite(b)
        d = (a[ok] - b[ok]) / float(spec.sd or 1.0)
        total += float(np.dot(d, d))
        count += int(ok.sum())
    return math.sqrt(total / count) if count else 0.0


def _column(frame: Any, spec: ColumnSpec, j: int) -> np.ndarray:
    """The column of ``spec`` in the model's units (:func:`numeric_values`): by name in
    a DataFrame (names as the schema spells them), by position ``j`` in an array
    (schema order is the input's column order)."""
    if isinstance(frame, pd.DataFrame):
        names = {str(c): c for c in frame.columns}
        return numeric_values(frame[names[spec.name]], spec)
    return numeric_values(pd.Series(np.asarray(frame)[:, j]), spec)
