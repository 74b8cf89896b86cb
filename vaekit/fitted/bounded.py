"""Error-bounded values: every value of a table within its column's bound, coded by
the model where the model helps (``FORMAT.md``, section "Bounded values").

The latent code of a row is stored as in every ``.vkc`` file; with bounds, each cell
is stored as well, on a grid that does not depend on the model:

* numeric columns with bound ``e > 0``: the index ``q = rint(x / (2e))`` (float
  columns) or ``floor((x + s // 2) / s)`` with the integer step ``s = max(1,
  floor(2e))`` (integer columns: exact below ``e = 0.5``).  The value comes back as
  ``q * step``, so ``|x - x'| <= e`` -- checked for every value when it is written
  (after the column's own dtype is restored, float32 included); a value that would
  miss (beyond ``2^52`` steps, not finite) is stored exactly instead.  No clipping to
  the training range: a value far outside it keeps its bound.
  On a coarse grid the writer may shift the grid by an origin ``0 <= o < step``
  (``q * step + o``, the origin stored with the column) so that a grid point sits on
  the chunk's data: where the cell edges fall decides how many values share a cell.
* numeric columns with bound 0 (lossless): integer columns exactly, float columns
  as their float64 bit patterns.
* binary and categorical columns: their level, exactly.  A value that is no level
  (never seen in training) is stored exactly, as text.
* date and time columns: exactly, as text (no grid yet).

The grid indices are entropy-coded under the decoder's prediction from the stored
latent code -- a discretized Gaussian per cell for numbers (mean and SD from the
decoder, mapped to grid steps), the predicted level first for levels -- or, when that
is not smaller for a column of a chunk, with zstd as plain scalar quantization does
(:mod:`vaekit.codec.values`).  The prediction only decides how many bits a value
takes, never which value comes back: the bound holds whatever the decoder computes,
and a decoder whose floats differ on another machine is caught by the section's CRC
(an error, never wrong values).

Missing cells keep the chunk's missing mask and come back blank.
"""

from __future__ import annotations

import datetime
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..codec.packing import pack_table, table_size_limit, unpack_table
from ..codec.values import (
    coarse_prediction,
    decode_column,
    encode_column,
    gaussian_bits,
    integers_crc,
    pack_section,
    plain_column,
    unpack_section,
)
from ..data.columns import as_float, restore_dtype
from ..data.tabular import ColumnSpec, TabularSchema, levels_series
from ..errors import DataError, FileFormatError
from ..files.dates import is_time_dtype
from .model import FittedVAE

__all__ = ["resolve_bounds", "header_bounds", "encode_values", "encode_best", "decode_values",
           "check_bounds"]

# Grid indices stay below 2^52, where float64 holds every integer exactly.
_MAX_INDEX = 2.0**52
# Bounds above this (column units) are refused: wider than any float64 value needs,
# and the grid steps derived from them stay finite.
MAX_BOUND = 1e300
# The times an exception may hold (what pd.Timestamp.isoformat writes).
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d(\.\d{1,9})?)?([+-]\d\d:\d\d)?")
# Set in a numeric column's coder byte: the chunk's values are whole numbers and sit
# on the integer grid (step max(1, floor(2 * bound))).
WHOLE = 0x80
# Set in a numeric column's coder byte: the column's bytes start with the grid's
# origin o (float64 for float grids, int64 for integer grids, 0 <= o < step), and
# cell q holds the value q * step + o.  The writer shifts a coarse grid so that a
# grid point sits on the chunk's median: with a step near the column's spread, where
# the points fall decides how many cells share one value.
SHIFTED = 0x40
_CODER = 0x3F
# Grids with more distinct cells than this in a chunk are fine enough that their
# phase does not matter; the writer does not try a shifted one.
_SHIFT_MAX_CELLS = 256
_ORIGIN = struct.Struct("<d")
_INT_ORIGIN = struct.Struct("<q")


def resolve_bounds(model: FittedVAE, max_abs_error: float | Mapping[str, float]
                   ) -> list[float | None]:
    """Absolute error bound per schema column (column units; ``None`` = a level column).

    Parameters
    ----------
    max_abs_error : float or dict
        One bound for every numeric column in *standardized units* (multiples of the
        column's training standard deviation: 0.01 = within 1 % of an SD), or a dict
        of bounds in the columns' own units (numeric columns not in it are stored
        losslessly).  0 = lossless.

    Raises
    ------
    DataError
        Images, a negative or non-finite bound, a dict naming a non-numeric or unknown
        column, or a model file without the columns' SDs and a single bound.
    """
    schema = model.schema
    if not isinstance(schema, TabularSchema):
        raise DataError("max_abs_error applies to tables; images are coded by the latent "
                        "code alone")
    numeric = set(schema.names("numeric"))
    if isinstance(max_abs_error, Mapping):
        wrong = [str(c) for c in max_abs_error if str(c) not in numeric]
        if wrong:
            raise DataError(f"max_abs_error names {wrong}, which are not numeric columns of the "
                            f"model (numeric: {sorted(numeric)})")
        given = {str(c): _bound(v, str(c)) for c, v in max_abs_error.items()}
        return [given.get(c.name, 0.0) if c.kind == "numeric" else None for c in schema.columns]
    bound = _bound(max_abs_error, "max_abs_error")
    out: list[float | None] = []
    for c in schema.columns:
        if c.kind != "numeric":
            out.append(None)
            continue
        if c.sd is None:
            raise DataError("this model file does not record its columns' standard deviations "
                            "(written before vaekit 0.2); refit it, or give max_abs_error per "
                            "column in the columns' own units")
        out.append(_bound(bound * c.sd, f"max_abs_error x the SD of {c.name!r}"))
    return out


def _bound(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{what}: the error bound {value!r} is not a number") from None
    if not math.isfinite(out) or not 0 <= out <= MAX_BOUND:
        raise DataError(f"{what}: the error bound must be a number in [0, {MAX_BOUND:g}], "
                        f"got {value!r}")
    return out


def header_bounds(max_abs_error: float | Mapping[str, float], model: FittedVAE
                  ) -> float | list[float | None]:
    """What a header records: a single bound in SDs as is (the reader multiplies by
    the model's SDs exactly as the writer did), a dict as absolute bounds per column."""
    if isinstance(max_abs_error, Mapping):
        return resolve_bounds(model, max_abs_error)
    resolve_bounds(model, max_abs_error)  # checked now, not at the first chunk
    return _bound(max_abs_error, "max_abs_error")


def check_bounds(bounds: Any, model: FittedVAE) -> list[float | None]:
    """A container header's ``value_bounds`` against the model: the bounds per column."""
    schema = model.schema
    if isinstance(bounds, dict):
        eps = bounds.get("sd_units")
        if set(bounds) != {"sd_units"} or not isinstance(eps, (int, float)) or isinstance(
                eps, bool) or not math.isfinite(eps) or eps < 0:
            raise FileFormatError("header key 'value_bounds' must be {\"sd_units\": a number "
                                  ">= 0} or a list of bounds")
        try:
            return resolve_bounds(model, float(eps))
        except DataError as exc:
            raise FileFormatError(f"header key 'value_bounds': {exc}") from None
    if not isinstance(schema, TabularSchema):
        raise FileFormatError("header key 'value_bounds' is for tables")
    if not isinstance(bounds, list) or len(bounds) != len(schema.columns):
        raise FileFormatError("header key 'value_bounds' must list one entry per model column")
    for c, b in zip(schema.columns, bounds, strict=True):
        if c.kind != "numeric":
            if b is not None:
                raise FileFormatError(f"header key 'value_bounds': column {c.name!r} holds "
                                      "levels, so its bound must be null")
        elif (not isinstance(b, (int, float)) or isinstance(b, bool) or not math.isfinite(b)
              or not 0 <= b <= MAX_BOUND):
            raise FileFormatError(f"header key 'value_bounds': column {c.name!r} has bound "
                                  f"{b!r}, not a number in [0, {MAX_BOUND:g}]")
    return bounds


# --------------------------------------------------------------------------- grids


def _integer_dtype(spec: ColumnSpec) -> bool:
    try:
        return bool(pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(spec.dtype)))
    except TypeError:
        return False


def _grid(spec: ColumnSpec, bound: float, whole: bool = False) -> tuple[str, float]:
    """``(mode, step)``: "int" / "float" grids, "bits" (lossless floats), "text".

    ``whole``: a float column whose values in the chunk are all whole numbers gets
    the integer grid too (``WHOLE`` in the column's coder byte), so whole numbers come
    back whole.
    """
    if is_time_dtype(spec.dtype):
        return "text", 0.0
    if _integer_dtype(spec) or whole:
        return "int", float(min(max(1, math.floor(2.0 * bound)), 2**62))
    if bound == 0:
        return "bits", 0.0
    return "float", 2.0 * bound


def _to_grid(spec: ColumnSpec, s: pd.Series, present: np.ndarray, mode: str, step: float,
             bound: float, origin: float = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices of a numeric column's cells and where they keep the bound
    (the grid ``q * step + origin``)."""
    n = len(s)
    if mode == "text":
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    if mode == "int":
        k = int(step)
        if _integer_dtype(spec) and pd.api.types.is_integer_dtype(s.dtype):  # exact ints
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
            back = q * k + o
            # |q| <= 2^62 // k: what a reader accepts for an integer column (FORMAT.md)
            ok &= (np.abs(x - back) <= bound) & _fits(spec, back) & (np.abs(q) <= 2**62 // k)
            return np.where(ok, q, 0), ok
        # floats in an integer column (a CSV column with blanks reads as float), or a
        # float column of whole numbers: checked as the reader will restore them
        xf, exact = _floats(s, spec)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = present & exact & np.isfinite(xf) & (np.abs(xf) < _MAX_INDEX)
            qf = np.floor((np.where(ok, xf, 0.0) - origin + k // 2) / k)
            ok &= np.abs(qf) * k < _MAX_INDEX
            q = np.where(ok, qf, 0.0).astype(np.int64)
            if _integer_dtype(spec):
                ok &= _fits(spec, q * k + int(origin)) & (np.abs(q) <= 2**62 // k)
                back = (q * k + int(origin)).astype(np.float64)
            else:
                back = _from_grid(spec, q, mode, step, origin).to_numpy(dtype=np.float64)
            ok &= np.abs(back - np.where(ok, xf, 0.0)) <= bound
        return np.where(ok, q, 0), ok
    x, exact = _floats(s, spec)
    if mode == "bits":
        return np.where(present, x, 0.0).view(np.int64).copy(), present & exact
    finite = present & exact & np.isfinite(x)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.where(finite, np.rint((x - origin) / step), 0.0)
        ok = finite & (np.abs(q) < _MAX_INDEX)
        back = restore_dtype(np.where(ok, q, 0.0) * step + origin,
                             spec.dtype).to_numpy(dtype=np.float64)
        ok &= np.abs(back - np.where(ok, x, 0.0)) <= bound
    return np.where(ok, q, 0.0).astype(np.int64), ok


def _floats(s: pd.Series, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    """A column's values as float64, and where that is the value itself: integers
    (of an integer or object column) beyond 2^53 are not, so they are stored exactly
    instead of being checked against a rounded copy."""
    x = as_float(s, spec.name)
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return x, np.ones(len(x), dtype=bool)
    with np.errstate(invalid="ignore"):
        exact = ~(np.abs(x) >= 2.0**53)
    return x, exact


def _fits(spec: ColumnSpec, values: np.ndarray) -> np.ndarray:
    """Where integers fit the column's integer dtype (a cast would wrap the others)."""
    target = pd.api.types.pandas_dtype(spec.dtype)
    info = np.iinfo(getattr(target, "numpy_dtype", target))
    if info.min >= 0:
        return (values >= 0) & (values.astype(np.uint64) <= np.uint64(min(info.max, 2**63 - 1)))
    return (values >= max(info.min, -(2**63))) & (values <= min(info.max, 2**63 - 1))


def _whole(s: pd.Series, spec: ColumnSpec, present: np.ndarray) -> bool:
    """Whether a float column's present values are all whole numbers (below 2^52)."""
    x = as_float(s, spec.name)[present]
    with np.errstate(invalid="ignore"):
        return bool(x.size) and bool(np.all((np.abs(x) < _MAX_INDEX) & (x == np.floor(x))))


def _from_grid(spec: ColumnSpec, q: np.ndarray, mode: str, step: float,
               origin: float = 0) -> pd.Series:
    if mode == "int" and _integer_dtype(spec):
        target = pd.api.types.pandas_dtype(spec.dtype)
        with np.errstate(over="ignore"):
            values = q * int(step) + int(origin)
        if not np.all(_fits(spec, values)) or np.any(np.abs(q) > 2**62 // max(1, int(step))):
            raise FileFormatError(f"bounded values are corrupt (a value of {spec.name!r} outside "
                                  f"its dtype {spec.dtype})")
        return pd.Series(values).astype(target)
    if mode == "bits":
        return restore_dtype(q.view(np.float64), spec.dtype)
    return restore_dtype(q.astype(np.float64) * step + origin, spec.dtype)


def _shift(spec: ColumnSpec, s: pd.Series, present: np.ndarray, q: np.ndarray,
           ok: np.ndarray, mode: str, step: float, bound: float
           ) -> tuple[np.ndarray, float | int]:
    """``(q, origin)``: the column's grid indices on the best shifted grid, or ``q``
    itself and origin 0.

    Only a coarse grid (at most ``_SHIFT_MAX_CELLS`` distinct cells in the chunk) is
    shifted.  Tried: the origin that puts a grid point on the median of the chunk's
    stored values, and that one moved by a quarter, half and three quarters of a
    step; each scored by the order-0 entropy of its cells (estimated on the floats),
    the winner kept when it saves more than the origin's 8 bytes and stores exactly
    the same cells (checked the full way, as :func:`_to_grid`).  Integer grids get
    an integer origin (a Python int: exact whatever the step).
    """
    if mode not in ("int", "float") or not ok.any() or (mode == "int" and step <= 1):
        return q, 0.0
    bits, distinct = _order0(q[ok])
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
            bits = _order0(cells)[0]
            if bits < best:
                best, best_origin = bits, origin
    if best_origin:
        q1, ok1 = _to_grid(spec, s, present, mode, step, bound, best_origin)
        if np.array_equal(ok1, ok):
            return q1, best_origin
    return q, 0.0


def _order0(q: np.ndarray) -> tuple[float, int]:
    """Empirical order-0 entropy of ``q`` (bits, all cells; what the counts coder
    approaches) and its number of distinct values."""
    if q.size == 0:
        return 0.0, 0
    low, high = int(q.min()), int(q.max())
    if high - low < 1 << 16:  # small spans: counting beats sorting
        counts = np.bincount((q - low).astype(np.int64))
        counts = counts[counts > 0]
    else:
        counts = np.unique(q, return_counts=True)[1]
    return float(-(counts * np.log2(counts / q.size)).sum()), int(counts.size)


def _origin_bytes(origin: float | int, mode: str) -> bytes:
    return (_INT_ORIGIN.pack(int(origin)) if mode == "int" else _ORIGIN.pack(origin))


def _read_origin(data: bytes, mode: str, step: float, name: str
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


def _gaussian(spec: ColumnSpec, t_mean: np.ndarray, t_sd: np.ndarray,
              step: float, origin: float = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decoder's Gaussian (transformed units) in grid steps, coarsened."""
    with np.errstate(over="ignore", invalid="ignore"):
        return coarse_prediction((spec.untransform(t_mean) - origin) / step,
                                 t_sd * spec.slope(t_mean) / step)


# --------------------------------------------------------------------------- chunks


def _predictions(model: FittedVAE, z: np.ndarray, frame: bool = False
                 ) -> tuple[pd.DataFrame | None, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The decoder's predictions at codes ``z``: the decoded rows (schema order, as a
    DataFrame; only with ``frame``), each level column's predicted level index (binary:
    probability >= 1/2; categorical: the most probable), and the numeric columns'
    means and SDs (transformed units)."""
    if len(z) > 1 and not np.any(z):
        # a chunk without codes: every row decodes z = 0 (a row's result does not
        # depend on the other rows), so decode it once
        one, guess, mean, sd = _predictions(model, z[:1], frame)
        rows = np.zeros(len(z), dtype=np.int64)
        return (None if one is None else one.iloc[rows].reset_index(drop=True),
                {k: v[rows] for k, v in guess.items()}, mean[rows], sd[rows])
    num, binary, cat, scales = model.decoder_outputs(z, scales=True)
    schema = model.schema
    guess = {spec.name: (binary[:, j] >= 0.5).astype(np.int64)
             for j, spec in enumerate(schema.specs("binary"))}
    guess.update((spec.name, cat[:, j].astype(np.int64))
                 for j, spec in enumerate(schema.specs("categorical")))
    decoded = None
    if frame:
        decoded = schema.decode(num, binary, cat)
    return decoded, guess, num, scales


def _cells(model: FittedVAE, X: pd.DataFrame | np.ndarray, bounds: list[float | None]
           ) -> tuple[list[ColumnSpec], list[tuple[Any, ...]],
                                 list[tuple[int, int, str]]]:
    """Each model column's stored integers, on its grid: ``(order, cells, exceptions)``
    with a cell ``(indices, stored, whole, step or None, origin, origin's bytes,
    plain coder's result)`` per column in model order."""
    schema = model.schema
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X),
                                                               columns=schema.names())
    by_name = dict(zip(schema.names(), bounds, strict=True))
    order = _model_order(schema)
    cells = []  # per column: (indices, stored, whole, step or None, origin, its bytes, plain)
    exc: list[tuple[int, int, str]] = []
    for j, spec in enumerate(order):
        s = frame[spec.name]
        present = ~s.isna().to_numpy()
        whole, step, origin, head = False, None, 0.0, b""
        if spec.kind == "numeric":
            bound = float(by_name[spec.name])  # type: ignore[arg-type]
            whole = (bound > 0 and not _integer_dtype(spec) and not is_time_dtype(spec.dtype)
                     and _whole(s, spec, present))
            mode, grid_step = _grid(spec, bound, whole)
            q, ok = _to_grid(spec, s, present, mode, grid_step, bound)
            step = grid_step if mode in ("int", "float") else None
            q, origin = _shift(spec, s, present, q, ok, mode, grid_step, bound)
            head = _origin_bytes(origin, mode) if origin else b""
        else:
            q, ok, _ = schema.level_codes(spec, s)
        cells.append((q, ok, whole, step, origin, head,
                      plain_column(q[ok])))
        for row in np.flatnonzero(present & ~ok):
            exc.append((int(row), j, _exact_text(s.iloc[row], spec.name, row)))
    return order, cells, exc


def encode_best(model: FittedVAE, X: pd.DataFrame | np.ndarray,
                options: list[tuple[int, np.ndarray]], bounds: list[float | None]
                ) -> tuple[int, bytes]:
    """The values section of one chunk under the best of several latent codes.

    ``options`` are ``(n_bytes, z)`` pairs: how many bytes the option stores besides
    the values (its packed codes) and the decoded latent codes the reader will have; the last is the
    fallback (no codes, z = 0).  The others are weighed by approximate lengths
    (no coder runs); the best of them and the fallback are then coded, and the
    smaller chunk is kept (the fallback on a tie).

    Returns
    -------
    (index of the option kept, its section)
    """
    order, cells, exc = _cells(model, X, bounds)
    coded = options[:-1]
    pick, known = 0, None
    if len(coded) > 1:
        predictions = [_predictions(model, z) for _, z in coded]
        bits = _estimate(order, cells, predictions)
        pick = int(np.argmin([8 * extra + b for (extra, _), b in zip(coded, bits,
                                                                     strict=True)]))
        known = predictions[pick]
    chosen, fallback = _sections(model, order, cells, exc,
                                 [options[pick][1], options[-1][1]], [known, None])
    if options[-1][0] + len(fallback) <= options[pick][0] + len(chosen):
        return len(options) - 1, fallback
    return pick, chosen


def _estimate(order: list[ColumnSpec], cells: list[tuple[Any, ...]],
              predictions: list[tuple[Any, ...]]) -> list[float]:
    """Approximate bits of the sections under each code's :func:`_predictions`: per column the
    smaller of its order-0 entropy and the Gaussian coder's approximate length
    (levels: of the codes or of their ranks)."""
    base = []
    for q, ok, *_ in cells:
        bits, distinct = _order0(q[ok])
        base.append(bits + 24 * distinct)  # about what the counts coder's table costs
    out = []
    for _, guess, t_mean, t_sd in predictions:
        total = 0.0
        for j, (spec, (q, ok, _, step, origin, _, _)) in enumerate(
                zip(order, cells, strict=True)):
            best = base[j]
            if spec.kind != "numeric":
                ranks = np.where(q[ok] == guess[spec.name][ok], 0, 1 + q[ok])
                bits, distinct = _order0(ranks)
                best = min(best, bits + 24 * distinct)
            elif step is not None and ok.any():
                gauss = _gaussian(spec, t_mean[ok, j], t_sd[ok, j], step, origin)
                best = min(best, gaussian_bits(q[ok], *gauss))
            total += best
        out.append(total)
    return out


def encode_values(model: FittedVAE, X: pd.DataFrame | np.ndarray, zs: list[np.ndarray],
                  bounds: list[float | None]) -> list[bytes]:
    """The bounded-values section of one chunk, for each of several latent codes.

    Parameters
    ----------
    X : DataFrame or 2-D array
        The chunk's model columns, in schema order.
    zs : list of ndarray (n, latent_dim)
        Candidate *decoded* latent codes (what the reader will have): the grid, the
        exceptions and the plain coders are the same for all of them, only the
        model-coded columns differ.
    bounds : list
        :func:`resolve_bounds`.

    Returns
    -------
    list of bytes
        One section per code (``FORMAT.md``, "Bounded values").

    Raises
    ------
    DataError
        A value the model has no level for that cannot be stored exactly (too long,
        or a time pandas cannot represent).
    """
    return _sections(model, *_cells(model, X, bounds), zs)


def _sections(model: FittedVAE, order: list[ColumnSpec], cells: list[tuple[Any, ...]],
              exc: list[tuple[int, int, str]], zs: list[np.ndarray],
              known: list[tuple[Any, ...] | None] | None = None) -> list[bytes]:
    """:func:`encode_values` from the columns' cells (:func:`_cells`); ``known``: the
    :func:`_predictions` of some codes, when the caller has them."""
    exceptions = _pack_exceptions(exc, order)
    crc = integers_crc([q[ok] for q, ok, *_ in cells])
    sections = []
    for z, prediction in zip(zs, known or [None] * len(zs), strict=True):
        _, guess, t_mean, t_sd = prediction or _predictions(model, z)
        columns = []
        for j, (spec, (q, ok, whole, step, origin, head, plain)) in enumerate(
                zip(order, cells, strict=True)):
            if spec.kind != "numeric":
                columns.append(encode_column(q[ok], predicted=guess[spec.name][ok],
                                             plain=plain))
                continue
            gauss = None
            if step is not None:  # numeric columns lead the model order: j is their index
                gauss = tuple(a[ok] for a in _gaussian(spec, t_mean[:, j], t_sd[:, j], step,
                                                       origin))
            coder, data = encode_column(q[ok], gaussian=gauss, plain=plain)  # type: ignore[arg-type]
            if head:
                coder, data = coder | SHIFTED, head + data
            columns.append((coder | (WHOLE if whole else 0), data))
        sections.append(pack_section(crc, exceptions, columns))
    return sections


def _exact_text(value: Any, column: str, row: int) -> str:
    """:func:`_text` of a value stored exactly, checked to parse back."""
    text = _text(value)
    try:
        back = _parse(text)
        if text[0] == "t" and back != pd.Timestamp(value):
            raise FileFormatError("a time that does not round-trip")
    except FileFormatError:
        raise DataError(f"the value {value!r} of column {column!r} (row {row + 1} of the "
                        "chunk) cannot be stored exactly") from None
    return text


def decode_values(model: FittedVAE, section: bytes, n_rows: int, z: np.ndarray,
                  bounds: list[float | None], missing: np.ndarray | None) -> Any:
    """Rows of one chunk from its bounded-values section.

    Parameters
    ----------
    section : bytes
        As written by :func:`encode_values`.
    z : ndarray (n_rows, latent_dim)
        The chunk's decoded latent codes (zeros for a chunk without codes).
    bounds : list
        The header's bounds, per schema column (:func:`check_bounds`).
    missing : ndarray of bool (n_rows, n_columns) or None
        The chunk's missing mask (schema column order).

    Returns
    -------
    DataFrame
        The model's columns in schema order (blank cells still hold placeholders:
        the caller blanks them from the mask).

    Raises
    ------
    FileFormatError
        A damaged section, or predictions that decode to integers other than the
        ones written (the CRC).
    """
    schema = model.schema
    order = _model_order(schema)
    crc, exc_bytes, columns = unpack_section(section, len(order))
    predicted, guesses, t_mean, t_sd = _predictions(model, z, frame=True)
    assert predicted is not None
    names = schema.names()
    blank = np.zeros((n_rows, len(names)), dtype=bool) if missing is None else missing
    exceptions = _unpack_exceptions(exc_bytes, n_rows, len(order))
    by_name = dict(zip(names, bounds, strict=True))
    position = {name: i for i, name in enumerate(names)}
    per_column: dict[int, list[tuple[int, Any]]] = {}
    for r, c, v in exceptions:
        per_column.setdefault(c, []).append((r, v))
    out = predicted.copy()
    ints = []
    for j, (spec, (coder, data)) in enumerate(zip(order, columns, strict=True)):
        cells = per_column.get(j, [])
        stored = ~blank[:, position[spec.name]]
        stored[[r for r, _ in cells]] = False
        n = int(stored.sum())
        if spec.kind == "numeric":
            whole = bool(coder & WHOLE)
            mode, step = _grid(spec, float(by_name[spec.name]), whole)  # type: ignore[arg-type]
            origin = 0.0
            if coder & SHIFTED:
                origin, data = _read_origin(data, mode, step, spec.name)
            coder &= _CODER
            gauss = None
            if mode in ("int", "float"):  # j is the numeric column's index (see above)
                gauss = tuple(a[stored] for a in _gaussian(spec, t_mean[:, j], t_sd[:, j], step,
                                                           origin))
            q = decode_column(coder, data, n, gaussian=gauss)  # type: ignore[arg-type]
            full = np.zeros(n_rows, dtype=np.int64)
            full[stored] = _checked(q, n)
            col = (_from_grid(spec, full, mode, step, origin) if mode != "text"
                   else out[spec.name])
        else:
            q = _checked(decode_column(coder, data, n, predicted=guesses[spec.name][stored]), n)
            if q.size and (q.min() < 0 or q.max() >= len(spec.levels)):
                raise FileFormatError("bounded values are corrupt (a level code out of range)")
            full = np.zeros(n_rows, dtype=np.int64)
            full[stored] = q
            col = levels_series(spec, full)
        ints.append(q)
        col.index = out.index
        out[spec.name] = _with_exceptions(col, spec, cells)
    if integers_crc(ints) != crc:
        raise FileFormatError("bounded values do not decode to what was written: the model's "
                              "predictions differ on this machine (or the file is damaged)")
    return out


def _checked(q: np.ndarray, n: int) -> np.ndarray:
    if q.shape != (n,):
        raise FileFormatError("bounded values are corrupt (wrong number of values)")
    return q


def _model_order(schema: TabularSchema) -> list[ColumnSpec]:
    """The columns in the model's order (:attr:`TabularSchema.model_order`)."""
    by_name = {c.name: c for c in schema.columns}
    return [by_name[name] for name in schema.model_order]


def _text(value: Any) -> str:
    """A value stored exactly, as a tagged text: ``b`` bool, ``i`` integer (decimal),
    ``f`` float (``repr``), ``t`` time (ISO 8601), ``s`` text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "b" + ("1" if value else "0")
    if isinstance(value, int):
        return "i" + str(value)
    if isinstance(value, float):
        return "f" + repr(value)
    if isinstance(value, (pd.Timestamp, np.datetime64, datetime.datetime, datetime.date)):
        return "t" + pd.Timestamp(value).isoformat()
    return "s" + str(value)


def _parse(text: str) -> Any:
    """Inverse of :func:`_text`."""
    tag, body = text[:1], text[1:]
    try:
        if tag == "b" and body in ("0", "1"):
            return body == "1"
        if tag == "i":
            return int(body)
        if tag == "f" and body.lower() not in ("nan", "+nan", "-nan"):
            return float(body)  # (a blank is never an exception)
        if tag == "t" and _ISO_TIME.fullmatch(body):  # no "now", "today", "NaT"
            stamp = pd.Timestamp(body)
            if not pd.isna(stamp):
                return stamp
        if tag == "s":
            return body
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        pass
    raise FileFormatError(f"bounded values are corrupt (exception value {text[:40]!r})")


def _pack_exceptions(exc: list[tuple[int, int, str]], order: list[ColumnSpec]) -> bytes:
    if not exc:
        return b""
    rows, cols, texts = zip(*exc, strict=True)
    try:
        return pack_table(pd.DataFrame({"row": np.array(rows, dtype=np.uint32),
                                        "column": np.array(cols, dtype=np.uint32),
                                        "value": pd.array(texts, dtype=object)}))
    except ValueError as exc:  # past the table's bounds (a value over 64 KiB, or all)
        sizes = [len(t.encode("utf-8", "replace")) for t in texts]
        long = int(np.argmax(sizes))
        raise DataError(f"{len(texts)} values of this chunk must be stored exactly (the model "
                        f"has no level or grid cell for them), more than a chunk can hold "
                        f"({exc}); the longest, {sizes[long]} bytes, is in column "
                        f"{order[cols[long]].name!r}, row {rows[long] + 1} of the chunk") from None


def _unpack_exceptions(data: bytes, n_rows: int, n_cols: int) -> list[tuple[int, int, Any]]:
    if not data:
        return []
    table = unpack_table(data, table_size_limit(n_rows * n_cols, 3))
    types = [str(t) for t in table.dtypes]
    if (list(table.columns) != ["row", "column", "value"] or len(table) > n_rows * n_cols
            or types[:2] != ["uint32", "uint32"]):
        raise FileFormatError("bounded values are corrupt (the exceptions table)")
    rows = table["row"].to_numpy(dtype=np.int64)
    cols = table["column"].to_numpy(dtype=np.int64)
    texts = table["value"].tolist()
    if (rows.size and (rows.max() >= n_rows or cols.max() >= n_cols)) or not all(
            isinstance(t, str) for t in texts):
        raise FileFormatError("bounded values are corrupt (an exception outside the chunk)")
    return list(zip(rows.tolist(), cols.tolist(), [_parse(t) for t in texts], strict=True))


def _with_exceptions(col: pd.Series, spec: ColumnSpec, cells: list[tuple[int, Any]]
                     ) -> pd.Series:
    """``col`` with the exactly stored values put in; the column becomes ``object``
    where its dtype cannot hold them as they are."""
    if not cells:
        return col
    values = [v for _, v in cells]
    if isinstance(col.dtype, pd.CategoricalDtype):
        new = [v for v in dict.fromkeys(values) if v not in col.cat.categories]
        try:
            col = col.cat.add_categories(new)
        except (ValueError, TypeError):  # e.g. True beside the category 1
            col = col.astype(object)
    elif col.dtype == object:
        col = col.copy()
    else:
        try:
            cast = pd.Series(values, dtype=object).astype(col.dtype)
            same = all(type(a) is type(b) and a == b
                       for a, b in zip(cast.tolist(), values, strict=True))
        except (TypeError, ValueError, OverflowError):
            same = False
        if same:
            col, values = col.copy(), cast.array
        else:
            col = col.astype(object)
    col.iloc[[r for r, _ in cells]] = values
    return col
