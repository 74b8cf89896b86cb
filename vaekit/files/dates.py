"""The one rule for telling dates and times in input columns, and reading them.

A value is a date or time when it is an ISO 8601 date, optionally with a time and
a UTC offset (:data:`ISO_PATTERN`): ``2024-03-01``, ``2024-03-01T12:00:00``,
``2024-03-01 12:00:00.25``, ``2024-03-01T12:00Z``, ``2024-03-01T12:00:00+01:00``.
Stricter than pandas' own parser, which also reads ``20240301`` or ``2024`` as
dates: those stay numbers.  A column with a datetime dtype (numpy, tz-aware, Arrow
timestamps and dates) holds dates whatever its values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

import numpy as np
import pandas as pd

ISO_PATTERN = re.compile(
    r"^\d{4}-\d{2}-\d{2}"                                  # date
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)?"      # optional time
    r"(?:Z|[+-]\d{2}:?\d{2})?$"                             # optional UTC offset
)
ISO_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def is_time_dtype(dtype: object) -> bool:
    """Whether ``dtype`` (a dtype or its name) holds dates or times."""
    if isinstance(dtype, str):
        return _time_name(dtype)
    return getattr(dtype, "kind", None) == "M"  # numpy, tz-aware and Arrow datetimes


@functools.lru_cache(maxsize=256)
def _time_name(name: str) -> bool:
    # cached: asked for every column of every chunk, and pandas' lookup is slow
    try:
        return is_time_dtype(pd.api.types.pandas_dtype(name))
    except (TypeError, ValueError):
        return False


def coerce_times(s: pd.Series, null_spellings: Collection[str] = ("",)
                 ) -> tuple[pd.Series, np.ndarray]:
    """A column of dates or times as datetimes, and where a value is not one.

    A datetime column is returned as it is.  Otherwise every value must be an ISO
    8601 text (:data:`ISO_PATTERN`), a ``datetime.date`` / ``datetime`` object, or
    missing (None, NaN, NaT or one of ``null_spellings``).  When any text value has
    a UTC offset the result is in UTC (naive values in it are taken as UTC);
    otherwise it is naive.

    Returns
    -------
    (datetimes, not_a_time)
        A Series with a fresh ``RangeIndex`` (NaT where missing or not a time) and
        a boolean array, True where a present value is not a date or time.
    """
    if is_time_dtype(s.dtype):
        return s, np.zeros(len(s), dtype=bool)
    values = s.astype(object).tolist()
    nulls = set(null_spellings)
    missing = np.array([v is None or v is pd.NaT or (isinstance(v, float) and v != v)
                        or (isinstance(v, str) and v in nulls) for v in values], dtype=bool)
    is_text = [isinstance(v, str) for v in values]
    kept = [None if m or (t and not ISO_PATTERN.match(v)) else v
            for v, m, t in zip(values, missing, is_text, strict=True)]
    utc = any(t and v is not None and ISO_OFFSET.search(v) for v, t in zip(kept, is_text,
                                                                          strict=True))
    raw = pd.Series(kept, dtype=object)
    if any(is_text):
        parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=utc)
    else:
        parsed = pd.to_datetime(raw, errors="coerce", utc=utc)
    return parsed, parsed.isna().to_numpy() & ~missing
