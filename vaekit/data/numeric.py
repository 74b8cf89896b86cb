"""Numeric columns into the model's transformed units: values, masks, log-Jacobians.

A numeric column's value ``x`` (dates and times: days since 1970-01-01) becomes
``t = T(x)``: the robust affine map ``u = (x - center) / scale``, then for heavy-tailed
columns ``t = c * asinh(u / c)`` (:data:`ASINH_WIDTH`), with ``log |dt/dx|`` kept per
value so that densities are in the column's own units (nats).  Blank cells get
``t = 0``, mask 0 and log-Jacobian 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from .columns import as_float, is_time_dtype, time_days


class NumericSpec(Protocol):
    """What this module reads of a numeric column's spec
    (:class:`vaekit.data.tabular.ColumnSpec`)."""

    name: str
    dtype: str
    center: float
    scale: float
    transform: str

# Tail-compression width c of ``c * asinh(u / c)``, in robust standard deviations.
ASINH_WIDTH = 3.0
# Transformed values are stored as float32; past this bound nothing changes anyway
# (the Gaussian likelihood saturates at MAX_STANDARDIZED = 1e15).
VALUE_CLIP = 1e30


def numeric_values(s: pd.Series, spec: NumericSpec) -> np.ndarray:
    """A numeric column's values in the model's units, float64 (dates and times: days
    since 1970-01-01), NaN where blank."""
    return time_days(s, spec.name) if is_time_dtype(spec.dtype) else as_float(s, spec.name)


def float_columns(df: pd.DataFrame, names: list[str]) -> np.ndarray | None:
    """The columns ``names`` as one (k, n) float64 array when they all are plain float64
    and finite or blank (what the CSV reader delivers for number columns): the
    DataFrame's own block, no conversion per column.  None otherwise (time, nullable
    or text columns, or an infinite value, which the per-column route names)."""
    if not names:
        return None
    part = df if list(df.columns) == names else df[names]
    if any(d != np.float64 for d in part.dtypes):
        return None
    v = np.ascontiguousarray(part.to_numpy(dtype=np.float64).T)
    return None if np.isinf(v).any() else v


def encode_numerics(df: pd.DataFrame, specs: Sequence[NumericSpec]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns of ``specs`` -> transformed values, masks, log-Jacobians (nats),
    each (n, len(specs)) float32.

    All columns in one block (a few passes instead of a dozen per column), column by
    column in memory (a DataFrame's own layout) and transposed once, by the final
    cast; each element's float64 arithmetic is the same as one column at a time.

    Raises
    ------
    DataError
        A value that is not a number (or date) or is infinite, naming its row and
        column.
    """
    # Dates and times always take the per-column route: their float64 values are read
    # as datetimes there, never as days.
    v = (None if any(is_time_dtype(s.dtype) for s in specs)
         else float_columns(df, [s.name for s in specs]))  # (k, n)
    if v is None:
        v = np.empty((len(specs), df.shape[0]), dtype=np.float64)
        for j, spec in enumerate(specs):
            v[j] = numeric_values(df[spec.name], spec)
    mask = ~np.isnan(v)
    missing = ~mask
    log_scale = np.array([math.log(s.scale) for s in specs])  # libm's log, as before
    t = v - np.array([s.center for s in specs])[:, None]
    t /= np.array([s.scale for s in specs])[:, None]
    np.copyto(t, 0.0, where=missing)
    logjac = np.empty(t.shape, dtype=np.float32)  # float32 at once: the same rounding
    logjac[:] = (-log_scale).astype(np.float32)[:, None]
    wide = [j for j, s in enumerate(specs) if s.transform == "asinh"]
    if wide:
        u = t[wide]
        # log |dt/du| = -log sqrt(1 + a^2); past a = 1e150 the square would overflow
        # float64, and there it equals -log(a) to double precision.
        a = np.abs(u) / ASINH_WIDTH
        big = a >= 1e150
        logjac[wide] = -np.where(big, np.log(np.clip(a, 1e150, 1e300)),
                                 0.5 * np.log1p(np.minimum(a, 1e150) ** 2)
                                 ) - log_scale[wide][:, None]
        t[wide] = ASINH_WIDTH * np.arcsinh(u / ASINH_WIDTH)
    np.clip(t, -VALUE_CLIP, VALUE_CLIP, out=t)
    np.copyto(logjac, 0.0, where=missing)
    return (t.T.astype(np.float32, order="C"), mask.T.astype(np.float32, order="C"),
            np.ascontiguousarray(logjac.T))
