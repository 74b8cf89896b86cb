"""Grids of the error-bounded codec: where a numeric column's values sit, so that
each keeps its bound (``FORMAT.md``, section "Bounded values").

A value ``x`` with bound ``e`` is stored as the index ``q`` of a grid cell -- float
grids of step ``2e``, integer grids of step ``2 floor(e) + 1`` (codec version 7;
before, ``max(1, floor(2e))``; integer columns, and float columns whose chunk holds
whole numbers: ``WHOLE``), lossless bit patterns for ``e = 0`` -- and comes back as
``q * step + origin`` (on an integer grid of version 7, moved onto the end of the
column's dtype where the cell reaches into it from outside).  The origin is 0 unless the
writer shifts a coarse grid onto the chunk's data (``SHIFTED``).

Decimal float grids (codec version 5): the step is ``2 * (e - D)`` with the decimal
``D = 10 ** (floor(log10 e) - 2)``, and a cell comes back as ``q * step + origin``
rounded to a multiple of ``D``.  The value moves by at most ``D / 2``, inside the
room the narrower step left, and prints with the few digits the bound asks for
(``-0.1067`` at ``e = 0.01``, not ``-0.10674284456303365``); the narrower step costs
at most ``log2(1 / 0.99)``, 0.015 bits per value.  Dates and times (codec version 5)
are stored as their nanoseconds since 1970 (of the UTC instant, or of the wall-clock
reading for naive columns), exactly.  Every value is
checked against its bound as the reader will restore it; a value that would miss is
not a cell (the caller stores it exactly).  :mod:`.bounded` codes the indices.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..codec.coders import order0_bits
from ..data.columns import as_float, restore_dtype, time_zone, to_time_dtype
from ..data.tabular import ColumnSpec
from ..errors import FileFormatError
from ..files.dates import is_time_dtype

# Grid indices stay below 2^52, where float64 holds every integer exactly.
_MAX_INDEX = 2.0**52
# Set in a numeric column's coder byte: the chunk's values are whole numbers and sit
# on the integer grid (grid_of).
WHOLE = 0x80
# Set in a numeric column's coder byte: the column's bytes start with the grid's
# origin o (float64 for float grids, int64 for integer grids, 0 <= o < step), and
# cell q holds the value q * step + o.  The writer shifts a coarse grid so that a
# grid point sits on the chunk's median: with a step near the column's spread, where
# the points fall decides how many cells share one value.
SHIFTED = 0x40
CODER_BITS = 0x3F
# Grids with more distinct cells than this in a chunk are fine enough that their
# phase does not matter; the writer does not try a shifted one.
_SHIFT_MAX_CELLS = 256
_ORIGIN = struct.Struct("<d")
_INT_ORIGIN = struct.Struct("<q")


def integer_dtype(spec: ColumnSpec) -> bool:
    return _integer_name(spec.dtype)


@functools.lru_cache(maxsize=256)
def _integer_name(dtype: str) -> bool:
    # cached: asked for every column of every chunk, and pandas' lookup is slow
    try:
        return bool(pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(dtype)))
    except TypeError:
        return False


# The codec version of the grids this vaekit writes (FORMAT.md): from 5 on, float
# grids are decimal ones and dates and times have a grid of their own; from 7 on,
# integer grids take the widest odd step the bound allows.
GRID_VERSION = 7
_DECIMAL_GRID_VERSION = 5
_ODD_STEP_VERSION = 7


class Grid(NamedTuple):
    """Where a numeric column's cells sit: ``mode`` "int" / "float" grids, "bits"
    (lossless floats), "time" (nanoseconds since 1970-01-01 UTC, exact) or "text"
    (times in files before version 5: stored exactly, as text); ``step`` between cells;
    ``power`` ``k`` for a decimal float grid (cells rounded to multiples of ``10**-k``),
    else None."""

    mode: str
    step: float
    power: int | None = None
    # Integer grids from codec version 7: a cell that reaches into an integer dtype's
    # range from outside it decodes to the range's end (:func:`_onto_dtype`).
    edge: bool = False


def grid_of(spec: ColumnSpec, bound: float, whole: bool = False,
            version: int = GRID_VERSION) -> Grid:
    """The grid of a numeric column with bound ``bound`` (column units) in a file of
    codec version ``version`` (default: what this vaekit writes).

    ``whole``: a float column whose values in the chunk are all whole numbers gets
    the integer grid too (``WHOLE`` in the column's coder byte), so whole numbers come
    back whole.  From version 5 on, float grids are decimal ones (where
    :func:`decimal_power` gives one) and dates and times are stored as nanoseconds
    ("time"); before, they were all exceptions ("text").  From version 7 on, the
    integer grid's step is ``2 floor(bound) + 1`` (before: ``floor(2 bound)``, at
    least 1).
    """
    if is_time_dtype(spec.dtype):
        return Grid("time" if version >= _DECIMAL_GRID_VERSION else "text", 0.0)
    if integer_dtype(spec) or whole:
        # Cells of k whole numbers around their centre miss by at most k // 2: the
        # odd step 2 floor(bound) + 1 keeps the bound (floor(2 bound) before version 7,
        # one less where bound's fraction is below 1/2).
        step = (2 * math.floor(bound) + 1 if version >= _ODD_STEP_VERSION
                else max(1, math.floor(2.0 * bound)))
        return Grid("int", float(min(step, 2**62)), None, version >= _ODD_STEP_VERSION)
    if bound == 0:
        return Grid("bits", 0.0)
    power = decimal_power(bound) if version >= _DECIMAL_GRID_VERSION else None
    if power is None:
        return Grid("float", 2.0 * bound)
    return Grid("float", 2.0 * (bound - _ten_to(-power)), power)


# 10.0 ** k is exact for |k| <= 22 (5 ** 22 < 2 ** 53): decimal grids stay within that,
# so writer and reader round with the same exact powers on every machine.
_MAX_POWER = 22


def _ten_to(k: int) -> float:
    """The double nearest ``10 ** k`` (correctly rounded by the decimal parser)."""
    return float(f"1e{k}")


def decimal_power(bound: float) -> int | None:
    """``k = 2 - floor(log10 bound)``: a decimal float grid rounds its cells to
    multiples of ``10 ** -k`` (at most ``bound / 100``); None where ``|k| > 22``
    (bounds below 1e-20 or from 1e25 on: no rounding)."""
    if not (math.isfinite(bound) and bound > 0):
        return None
    # floor(log10) decided by comparisons with the doubles nearest powers of ten, so
    # it is the same on every machine whatever its log10 returns near a power.
    m = math.floor(math.log10(bound))
    while _ten_to(m) > bound:
        m -= 1
    while _ten_to(m + 1) <= bound:
        m += 1
    k = 2 - m
    return k if abs(k) <= _MAX_POWER else None


# 10.0 ** k for every k a finite positive number can ask for (log10 of the largest
# double is 308.25); exact, and the double nearest 10^k, for k <= 22.
_POWERS = np.array([10.0 ** k for k in range(309)])


def round_decimal(v: np.ndarray, power: int | np.ndarray) -> np.ndarray:
    """``v`` rounded to multiples of ``10 ** -power`` (one power, or one per value;
    ``|power| <= 308``): one product or quotient by a power of ten, ``rint``, and one
    correctly rounded quotient or product back, so the result is the double nearest
    the decimal (and prints as it).  For ``|power| <= 22`` (decimal grids) the power is
    exact, so the result is the same on every machine.  Where ``|v * 10**power|``
    reaches ``2**53`` there is no decimal left to round to, and the two roundings may
    still move ``v`` by an ulp or overflow: the writer's check then finds the few
    values that miss their bound and stores them exactly."""
    power = np.asarray(power)
    p = _POWERS[np.abs(power)]
    with np.errstate(over="ignore", invalid="ignore"):
        if power.ndim == 0:
            out = np.rint(v * p) / p if power >= 0 else np.rint(v / p) * p
        else:
            out = np.where(power >= 0, np.rint(v * p) / p, np.rint(v / p) * p)
    return out + 0.0  # -0.0 (from rounding -0.00004) would print as "-0.0"


def to_grid(spec: ColumnSpec, s: pd.Series, present: np.ndarray, grid: Grid,
            bound: float, origin: float = 0,
            floats: tuple[np.ndarray, np.ndarray] | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices of a numeric column's cells and where they keep the bound
    (checked on the values :func:`from_grid` gives back).  ``floats``:
    :func:`column_floats` of ``s``, when the caller has it."""
    mode, step = grid.mode, grid.step
    n = len(s)
    if mode == "text":
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    if mode == "time":
        if (time_zone(s.dtype) is None) != (time_zone(spec.dtype) is None):
            # naive against time-zoned (either way): a naive time names no instant, so
            # such values stay exceptions and come back as they were written
            return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        q, ok = time_ns(s)
        ok &= present
        back = from_grid(spec, np.where(ok, q, 0), grid)
        if back.dtype != pd.api.types.pandas_dtype(spec.dtype):
            # the column's dtype cannot hold some value (say milliseconds in a
            # timestamp[s] column): the chunk's times stay exceptions
            return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        # the same instant back (a time-zoned one in the model's zone, as an exception
        # of that instant would be cast)
        back_ns, back_ok = time_ns(back)
        ok &= back_ok & (back_ns == q)
        return np.where(ok, q, 0), ok
    if mode == "int":
        k = int(step)
        if integer_dtype(spec) and pd.api.types.is_integer_dtype(s.dtype):  # exact ints
            if str(s.dtype).lower().startswith("uint64"):
                wide = s.to_numpy(dtype=np.uint64, na_value=0)
                ok = present & (wide < 2**62)
                x = np.where(ok, wide, 0).astype(np.int64)
            else:
                x = s.to_numpy(dtype=np.int64, na_value=0)
                ok = present & (x < 2**62) & (x > -(2**62))
                x = np.where(ok, x, 0)
            o = int(origin)  # 0 <= o < k <= 2^62: x - o stays within int64
            q = (x - o + k // 2) // k
            back = _onto_dtype(spec, q * k + o, grid)
            # |q| <= 2^62 // k: what a reader accepts for an integer column (FORMAT.md)
            ok &= (np.abs(x - back) <= bound) & fits_dtype(spec, back) & (np.abs(q) <= 2**62 // k)
            return np.where(ok, q, 0), ok
        # floats in an integer column (a CSV column with blanks reads as float), or a
        # float column of whole numbers: checked as the reader will restore them
        xf, exact = floats or column_floats(s, spec)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = present & exact & np.isfinite(xf) & (np.abs(xf) < _MAX_INDEX)
            qf = np.floor((np.where(ok, xf, 0.0) - origin + k // 2) / k)
            ok &= np.abs(qf) * k < _MAX_INDEX
            q = np.where(ok, qf, 0.0).astype(np.int64)
            if integer_dtype(spec):
                centre = _onto_dtype(spec, q * k + int(origin), grid)
                ok &= fits_dtype(spec, centre) & (np.abs(q) <= 2**62 // k)
                back = centre.astype(np.float64)
            else:
                back = _floats_back(spec, q, grid, origin)
            ok &= np.abs(back - np.where(ok, xf, 0.0)) <= bound
        return np.where(ok, q, 0), ok
    x, exact = floats or column_floats(s, spec)
    if mode == "bits":
        return np.where(present, x, 0.0).view(np.int64).copy(), present & exact
    finite = present & exact & np.isfinite(x)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.where(finite, np.rint((x - origin) / step), 0.0)
        ok = finite & (np.abs(q) < _MAX_INDEX)
        back = _floats_back(spec, np.where(ok, q, 0.0), grid, origin)
        ok &= np.abs(back - np.where(ok, x, 0.0)) <= bound
    return np.where(ok, q, 0.0).astype(np.int64), ok


def _floats_back(spec: ColumnSpec, q: np.ndarray, grid: Grid, origin: float) -> np.ndarray:
    """:func:`from_grid` of a float column's cells as float64, without a Series for
    numpy's float dtypes (the same values: the same arithmetic and cast)."""
    if spec.dtype not in ("float64", "float32") or grid.mode == "int":
        return from_grid(spec, q, grid, origin).to_numpy(dtype=np.float64)
    values = q.astype(np.float64) * grid.step + origin
    if grid.power is not None:
        values = round_decimal(values, grid.power)
    return values.astype(np.float32).astype(np.float64) if spec.dtype == "float32" else values


def time_ns(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Nanoseconds since 1970-01-01 of a datetime column (int64: of the UTC instant, or
    of the wall-clock reading of naive values), and where that is the value: present,
    and within int64 nanoseconds (1677-09-21 to 2262-04-11).  A column
    that is not of a datetime dtype (text, objects) has no such values."""
    n = len(s)
    none = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    if not is_time_dtype(s.dtype):
        return none
    t = s
    try:
        if isinstance(t.dtype, pd.ArrowDtype):
            t = pd.to_datetime(t)
        if getattr(t.dtype, "tz", None) is not None:
            t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    except (TypeError, ValueError, OverflowError):  # e.g. Arrow times beyond pandas' range
        return none
    arr = t.to_numpy()
    if arr.dtype.kind != "M":
        return none
    unit, count = np.datetime_data(arr.dtype)
    if unit not in _NS_PER:
        return none  # finer than nanoseconds, or a calendar unit (months, years)
    factor = _NS_PER[unit] * int(count)
    ticks = arr.view(np.int64)
    ok = ~np.isnat(arr) & (np.abs(ticks) <= (2**63 - 1) // factor)
    return np.where(ok, ticks, 0) * factor, ok


_NS_PER = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
           "m": 60_000_000_000, "h": 3_600_000_000_000, "D": 86_400_000_000_000,
           "W": 604_800_000_000_000}


def restore_time_ns(q: np.ndarray, dtype: str) -> pd.Series:
    """Nanoseconds since 1970-01-01 UTC as a Series of the column's datetime ``dtype``
    (:func:`~vaekit.data.columns.to_time_dtype`; where the dtype cannot take a value,
    the writer finds it not restored and stores it exactly)."""
    return to_time_dtype(pd.Series(np.asarray(q, dtype=np.int64).astype("datetime64[ns]")),
                         dtype)


def column_floats(s: pd.Series, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    """A column's values as float64, and where that is the value itself: integers
    (of an integer or object column) beyond 2^53 are not, so they are stored exactly
    instead of being checked against a rounded copy."""
    x = as_float(s, spec.name)
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return x, np.ones(len(x), dtype=bool)
    with np.errstate(invalid="ignore"):
        exact = ~(np.abs(x) >= 2.0**53)
    return x, exact


def fits_dtype(spec: ColumnSpec, values: np.ndarray) -> np.ndarray:
    """Where integers fit the column's integer dtype (a cast would wrap the others)."""
    target = pd.api.types.pandas_dtype(spec.dtype)
    info = np.iinfo(getattr(target, "numpy_dtype", target))
    if info.min >= 0:
        return (values >= 0) & (values.astype(np.uint64) <= np.uint64(min(info.max, 2**63 - 1)))
    return (values >= max(info.min, -(2**63))) & (values <= min(info.max, 2**63 - 1))


def _onto_dtype(spec: ColumnSpec, centres: np.ndarray, grid: Grid) -> np.ndarray:
    """Integer cell centres (int64) with those of cells that reach into the column's
    integer dtype from outside it moved onto the range's end (``grid.edge``): the
    cell's values within the dtype are nearer that end than the centre, so they keep
    the bound (``int8`` at step 3: -128 sits in the cell centred on -129, which decodes
    to -128).  Centres further out stay as they are (:func:`fits_dtype` refuses them)."""
    if not grid.edge:
        return centres
    target = pd.api.types.pandas_dtype(spec.dtype)
    info = np.iinfo(getattr(target, "numpy_dtype", target))
    lo, hi, m = max(info.min, -(2**63)), min(info.max, 2**63 - 1), int(grid.step) // 2
    low, high = centres < lo, centres > hi  # (int64 centres are never past int64's ends)
    if not (low.any() or high.any()):
        return centres
    out = centres.copy()
    out[low & (centres >= lo - m)] = lo
    out[high & (centres <= hi + m)] = hi
    return out


def whole_numbers(s: pd.Series, spec: ColumnSpec, present: np.ndarray,
                  floats: np.ndarray | None = None) -> bool:
    """Whether a float column's present values are all whole numbers (below 2^52);
    ``floats``: ``s`` as float64 (:func:`column_floats`), when the caller has it."""
    x = (as_float(s, spec.name) if floats is None else floats)[present]
    with np.errstate(invalid="ignore"):
        return bool(x.size) and bool(np.all((np.abs(x) < _MAX_INDEX) & (x == np.floor(x))))


def from_grid(spec: ColumnSpec, q: np.ndarray, grid: Grid, origin: float = 0) -> pd.Series:
    """The values of grid cells ``q`` (int64; float64 indices for the writer's check of
    a float grid), in the column's dtype: what the reader restores."""
    mode, step = grid.mode, grid.step
    if mode == "int" and integer_dtype(spec):
        target = pd.api.types.pandas_dtype(spec.dtype)
        with np.errstate(over="ignore"):
            values = _onto_dtype(spec, q * int(step) + int(origin), grid)
        limit = 2**62 // max(1, int(step))  # both sides: abs(-2^63) is still negative
        if not np.all(fits_dtype(spec, values)) or np.any((q > limit) | (q < -limit)):
            raise FileFormatError(f"bounded values are corrupt (a value of {spec.name!r} outside "
                                  f"its dtype {spec.dtype})")
        return pd.Series(values).astype(target)
    if mode == "bits":
        return restore_dtype(q.view(np.float64), spec.dtype)
    if mode == "time":
        if np.any(q == np.iinfo(np.int64).min):  # NaT's pattern: never a stored value
            raise FileFormatError(f"bounded values are corrupt (a time of {spec.name!r} "
                                  "that is no time)")
        return restore_time_ns(q, spec.dtype)
    values = q.astype(np.float64) * step + origin
    if grid.power is not None:
        values = round_decimal(values, grid.power)
    return restore_dtype(values, spec.dtype)


def shift_grid(spec: ColumnSpec, s: pd.Series, present: np.ndarray, q: np.ndarray,
               ok: np.ndarray, grid: Grid, bound: float) -> tuple[np.ndarray, float | int]:
    """``(q, origin)``: the column's grid indices on the best shifted grid, or ``q``
    itself and origin 0.

    Only a coarse grid (at most ``_SHIFT_MAX_CELLS`` distinct cells in the chunk) is
    shifted.  Tried: the origin that puts a grid point on the median of the chunk's
    stored values, and that one moved by a quarter, half and three quarters of a
    step; each scored by the order-0 entropy of its cells (estimated on the floats),
    the winner kept when it saves more than the origin's 8 bytes and stores exactly
    the same cells (checked the full way, as :func:`to_grid`).  Integer grids get
    an integer origin (a Python int: exact whatever the step).
    """
    mode, step = grid.mode, grid.step
    if mode not in ("int", "float") or not ok.any() or (mode == "int" and step <= 1):
        return q, 0.0
    bits, distinct = order0_bits(q[ok])
    if distinct > _SHIFT_MAX_CELLS:
        return q, 0.0
    x = as_float(s, spec.name)[ok]
    best, best_origin = bits - 64, 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        median = float(np.median(x))
        if not math.isfinite(median) or abs(median) >= 2.0**62:
            return q, 0.0
        for quarter in range(4):
            origin: float | int
            if mode == "int":
                k = int(step)
                origin = (math.floor(median) + quarter * k // 4) % k
            else:
                at = median + quarter * step / 4
                origin = at - math.floor(at / step) * step
            if not (math.isfinite(origin) and 0 < origin < step):
                continue
            cells = (np.floor((x - float(origin) + step // 2) / step) if mode == "int"
                     else np.rint((x - origin) / step))
            bits = order0_bits(cells)[0]
            if bits < best:
                best, best_origin = bits, origin
    if best_origin:
        q1, ok1 = to_grid(spec, s, present, grid, bound, best_origin)
        if np.array_equal(ok1, ok):
            return q1, best_origin
    return q, 0.0


def origin_bytes(origin: float | int, mode: str) -> bytes:
    return (_INT_ORIGIN.pack(int(origin)) if mode == "int" else _ORIGIN.pack(origin))


def read_origin(data: bytes, mode: str, step: float, name: str
                 ) -> tuple[float | int, bytes]:
    """The origin at the head of a shifted column (an int for integer grids, kept
    exact) and the coder's bytes after it."""
    if mode not in ("int", "float") or len(data) < 8:
        raise FileFormatError(f"bounded values are corrupt (a grid origin of {name!r})")
    origin: float | int
    if mode == "int":
        origin = int(_INT_ORIGIN.unpack_from(data)[0])
        valid = 0 <= origin < int(step)
    else:
        origin = float(_ORIGIN.unpack_from(data)[0])
        valid = math.isfinite(origin) and 0 <= origin < step
    if not valid:
        raise FileFormatError(f"bounded values are corrupt (grid origin {origin!r} of "
                              f"{name!r} outside [0, {step!r}))")
    return origin, data[8:]
