"""Column values: dates and times as numbers, integer row identifiers, dtypes kept.

Dates and times
---------------
A date or time column is a ``numeric`` column of the schema whose stored ``dtype``
is a datetime dtype (``datetime64[us]``, ``datetime64[ns, UTC]``,
``timestamp[ms][pyarrow]``, ``date32[day][pyarrow]``, ...).  Its value is the time
in **days since 1970-01-01** (float; tz-aware values in UTC, naive ones as
written), so a date column is scaled (median / IQR), tail-compressed and scored
like any number: the robust centring makes the origin irrelevant, and a score is
a density per day.  Decoded values become datetimes of the fitted dtype again,
rounded to whole days when training held whole days only, else to whole seconds
when training held whole seconds.

Recognized as dates or times: any datetime dtype (numpy, tz-aware, Arrow), and
text (or ``datetime.date`` objects) where every value is an ISO 8601 date or date
and time (:data:`vaekit.files.dates.ISO_PATTERN`: ``2024-03-01``, ``2024-03-01T12:00:00``,
``2024-03-01 12:00:00.5``, with an optional ``Z`` or ``+01:00``).  Text dates are
restored as ``datetime64``.  No cyclic parts (day of week, hour of day) are
modelled: one input column stays one model feature, so explanations and the
model file keep one entry per column.

Row identifiers
---------------
:func:`integer_id_reason` tells whether an integer column looks like a row
identifier rather than a feature (see its docstring for the exact rule).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..files.dates import ISO_PATTERN, coerce_times, is_time_dtype

# Identifier rule: at least this many rows, and at least this share of the
# consecutive differences with one sign (monotone or nearly) ...
ID_MIN_ROWS = 50
ID_MONOTONE_SHARE = 0.99
# ... or the values fill at least this share of the range from min to max.
ID_FILL_SHARE = 0.99
_NS_PER_DAY = 86_400 * 10**9


def looks_like_times(s: pd.Series) -> bool:
    """Whether a non-datetime column holds only ISO dates / times (or date objects)."""
    if is_time_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype) \
            or pd.api.types.is_bool_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
        return False
    observed = s[s.notna()]
    if len(observed) == 0:
        return False
    values = observed.tolist()
    if all(isinstance(v, _dt.date) for v in values):  # datetime.date / datetime / Timestamp
        return True
    return all(isinstance(v, str) and ISO_PATTERN.match(v) for v in values)


def parse_times(s: pd.Series, name: str) -> pd.Series:
    """Text or date objects -> a datetime Series (:func:`vaekit.files.dates.coerce_times`).

    Raises
    ------
    DataError
        At the first value that is not an ISO 8601 date or time (row, column named).
    """
    parsed, bad = coerce_times(s)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"expected a date or time (ISO 8601, e.g. 2024-03-01 or "
                        f"2024-03-01T12:00:00), found {s.iloc[pos]!r} ({int(bad.sum())} such "
                        "value(s))", row=pos, column=name)
    return parsed.set_axis(s.index)


def as_datetime(s: pd.Series, name: str) -> pd.Series:
    """A column of dates or times as a pandas datetime Series (naive or tz-aware)."""
    if not is_time_dtype(s.dtype):
        return parse_times(s, name)
    if isinstance(s.dtype, pd.ArrowDtype):  # Arrow timestamps and dates: pandas' own type
        return pd.to_datetime(s)
    return s


def time_days(s: pd.Series, name: str) -> np.ndarray:
    """Days since 1970-01-01 (float64; tz-aware values in UTC), NaN where missing."""
    t = as_datetime(s, name)
    if getattr(t.dtype, "tz", None) is not None:
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = t.to_numpy()
    if arr.dtype.kind != "M":  # all missing: object NaT
        return np.full(len(t), np.nan)
    unit = np.datetime_data(arr.dtype)[0]
    nat = np.isnat(arr)
    days = arr.view(np.int64).astype(np.float64) / (np.timedelta64(1, "D")
                                                    / np.timedelta64(1, unit))
    return np.where(nat, np.nan, days)


def time_dtype_name(s: pd.Series, name: str) -> str:
    """The dtype a fitted date / time column is restored to (text dates: datetime64)."""
    return str(as_datetime(s, name).dtype) if not is_time_dtype(s.dtype) else str(s.dtype)


def restore_times(days: np.ndarray, dtype: str, low: float | None,
                  resolution: float) -> pd.Series:
    """Decoded days since 1970-01-01 -> a Series of the fitted datetime ``dtype``.

    Rounded to whole days when the training values were whole days (``low`` and
    ``resolution`` whole numbers), else to whole seconds when they were seconds.
    """
    days = np.asarray(days, dtype=np.float64)
    per_second = days * 86_400.0
    whole_days = low is not None and float(low).is_integer() and resolution >= 1 \
        and float(resolution).is_integer()
    whole_seconds = low is not None and float(low * 86_400).is_integer() and \
        resolution * 86_400 >= 1
    if whole_days:
        ns = np.rint(days) * _NS_PER_DAY
    elif whole_seconds:
        ns = np.rint(per_second) * 1e9
    else:
        ns = np.rint(days * _NS_PER_DAY)
    # datetime64[ns] spans 1677-2262: beyond, keep microseconds (pandas' default unit).
    us = np.clip(np.rint(ns / 1e3), -(2.0**62), 2.0**62)
    bad = ~np.isfinite(us)
    stamps = np.where(bad, 0, us).astype(np.int64).astype("datetime64[us]")
    stamps[bad] = np.datetime64("NaT")
    return to_time_dtype(pd.Series(stamps), dtype)


def time_zone(dtype: object) -> object:
    """The time zone of a datetime dtype or dtype name (numpy, pandas or Arrow), None
    for naive ones (and for anything that is no dtype)."""
    try:
        target = pd.api.types.pandas_dtype(dtype) if isinstance(dtype, str) else dtype
    except (TypeError, ValueError):
        return None
    tz = getattr(target, "tz", None)
    if tz is None and isinstance(target, pd.ArrowDtype):
        tz = getattr(target.pyarrow_dtype, "tz", None)
    return tz


def to_time_dtype(stamps: pd.Series, dtype: str) -> pd.Series:
    """Naive UTC datetimes as the fitted datetime ``dtype``: in its time zone, and left
    as they are where the dtype cannot hold them (a date beyond datetime64[ns])."""
    target = pd.api.types.pandas_dtype(dtype)
    tz = time_zone(target)
    if tz is not None:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(tz)
    try:
        return stamps.astype(target)
    except (TypeError, ValueError, OverflowError):
        return stamps


def integer_id_reason(s: pd.Series) -> str | None:
    """Why an integer column looks like a row identifier, or None if it does not.

    Flagged: an integer dtype (numpy, nullable or Arrow; never floats), no missing
    value, at least :data:`ID_MIN_ROWS` rows, every value different, and either
    at least :data:`ID_MONOTONE_SHARE` of the consecutive differences with one sign
    (ids in row order, also with a few rows out of place) or the values filling at
    least :data:`ID_FILL_SHARE` of the range from min to max (a shuffled
    ``0..n-1`` such as a saved index).  A shuffled column of unique integers spread
    over a wider range (a sample of ids, or hashed keys) is *not* flagged: it may
    be a measurement, and a false alarm would refuse a real feature.
    """
    if not pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return None
    n = len(s)
    if n < ID_MIN_ROWS or s.isna().any():
        return None
    v = s.to_numpy(dtype=np.float64)
    if len(np.unique(v)) != n:
        return None
    d = np.diff(v)
    if max(float(np.mean(d > 0)), float(np.mean(d < 0))) >= ID_MONOTONE_SHARE:
        return "every value is a different whole number, in row order"
    if n / (float(v.max() - v.min()) + 1.0) >= ID_FILL_SHARE:
        return (f"its {n} values are the whole numbers {int(v.min())}..{int(v.max())}, "
                "each once")
    return None


# --------------------------------------------------------------------------- dtypes


def dtype_name(dtype: Any) -> str:
    """A name of ``dtype`` that pandas reads back as the same dtype (stored in the schema)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"  # categories are the schema's levels
    name = str(dtype)
    if isinstance(dtype, pd.ArrowDtype) and str(dtype.pyarrow_dtype) == "string":
        name = "utf8[pyarrow]"  # "string[pyarrow]" reads back as pd.StringDtype
    try:
        if pd.api.types.pandas_dtype(name) == dtype:
            return name
    except (TypeError, ValueError):
        pass
    return "float64" if pd.api.types.is_numeric_dtype(dtype) else "object"


def safe_dtype(dtype: str, values: list) -> Any:
    try:
        pd.Series(values[:1]).astype(dtype)
        return dtype
    except (TypeError, ValueError):
        return object


def restore_dtype(values: np.ndarray, dtype: str) -> pd.Series:
    """Decoded numbers in the column's fitted dtype (numpy or pandas nullable)."""
    try:
        target = pd.api.types.pandas_dtype(dtype)
    except TypeError:  # a dtype this pandas does not know: keep float64
        return pd.Series(values)
    if pd.api.types.is_integer_dtype(target):
        # rounded and clipped first: a decoded 3.7 in an int8 column is 4, never wraps
        info = np.iinfo(getattr(target, "numpy_dtype", target))
        return pd.Series(np.clip(np.rint(values), info.min, info.max)).astype(target)
    if pd.api.types.is_float_dtype(target):
        return pd.Series(values).astype(target)
    return pd.Series(values)


def _is_missing(s: pd.Series) -> np.ndarray:
    return s.isna().to_numpy()


def _first_position(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def as_float(s: pd.Series, name: str) -> np.ndarray:
    """Convert a column to float64, naming the first row that is not a number."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    else:
        # Through numpy: an Arrow-backed result holds a failed parse as NaN, not null.
        coerced = _numbers(s)
        bad = np.isnan(coerced) & ~_is_missing(s)
        if bad.any():
            pos = _first_position(bad)
            raise DataError(
                f"expected a number, found {s.iloc[pos]!r} ({int(bad.sum())} such value(s))",
                row=pos,
                column=name,
            )
        values = coerced
    inf = np.isinf(values)
    if inf.any():
        pos = _first_position(inf)
        raise DataError(
            f"infinite value {values[pos]!r}; replace it with a finite number or leave it empty "
            "(missing)",
            row=pos,
            column=name,
        )
    return values


def _numbers(s: pd.Series) -> np.ndarray:
    """Values parsed as float64, NaN where missing or not a number."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
