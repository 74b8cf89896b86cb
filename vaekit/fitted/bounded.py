"""Error-bounded values: every value of a table within its column's bound, coded by
the model where the model helps (``FORMAT.md``, section "Bounded values").

The latent code of a row is stored as in every ``.vkc`` file; with bounds, each cell
is stored as well, on a grid that does not depend on the model:

* numeric columns with bound ``e > 0``: the index ``q = rint(x / step)`` (float
  columns: ``step = 2e``, narrowed to ``2(e - D)`` on a decimal grid, whose values
  come back rounded to the decimal ``D = 10 ** (floor(log10 e) - 2)``:
  :mod:`.grids`) or ``floor((x + s // 2) / s)`` with the integer step ``s = 2
  floor(e) + 1`` (codec version 7; integer columns: exact below ``e = 1``).  The
  value comes back as ``q * step``, so ``|x - x'| <= e`` -- checked for every value
  when it is written (after the column's own dtype is restored, float32 included);
  a value that would miss (beyond ``2^52`` steps, not finite) is stored exactly
  instead.  No clipping to the training range: a value far outside it keeps its
  bound.
  On a coarse grid the writer may shift the grid by an origin ``0 <= o < step``
  (``q * step + o``, the origin stored with the column) so that a grid point sits on
  the chunk's data: where the cell edges fall decides how many values share a cell.
* numeric columns with bound 0 (lossless): integer columns exactly, float columns
  as their float64 bit patterns.
* binary and categorical columns: their level, exactly.  A value that is no level
  (never seen in training) is stored exactly, as text.
* date and time columns: exactly, as nanoseconds since 1970 UTC (files before
  codec version 5: as text).

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
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..codec.coders import Coded, order0_bits, stack_words
from ..codec.packing import pack_table, table_size_limit, unpack_table
from ..codec.values import (
    coarse_prediction,
    decode_column,
    encode_column,
    gaussian_estimate,
    gaussian_estimates,
    integers_crc,
    pack_section,
    plain_column,
    unpack_section,
)
from ..data.tabular import ColumnSpec, TabularSchema, levels_series
from ..errors import DataError, FileFormatError
from ..files.dates import is_time_dtype
from .grids import (
    CODER_BITS,
    SHIFTED,
    WHOLE,
    column_floats,
    from_grid,
    grid_of,
    integer_dtype,
    origin_bytes,
    read_origin,
    shift_grid,
    to_grid,
    whole_numbers,
)
from .model import FittedVAE

__all__ = ["resolve_bounds", "header_bounds", "encode_values", "encode_best", "decode_values",
           "check_bounds"]

# Bounds above this (column units) are refused: wider than any float64 value needs,
# and the grid steps derived from them stay finite.
MAX_BOUND = 1e300
# Rows a chunk's latent-code options are weighed on (encode_best), and cells per
# column the Gaussian coder's length is estimated on there: the options are ranked on
# the same cells, so their differences need fewer than one length alone.
ESTIMATE_ROWS = 1024
OPTION_SAMPLE = 128
# The no-codes section is coded only when its approximate length is below this
# multiple of the chunk with codes.  The estimate is an ideal code length, so it
# errs low (down to -10 % on the dev tables' 84 no-codes sections) and hardly ever
# high (+0.4 % at most): past 1.05 the section is larger.
_TRY_FALLBACK = 1.05
# A section's rANS words past its measured columns' words plus this multiple of its
# estimated columns' words are a sampled estimate gone wrong: those are then measured.
_ESTIMATE_SLACK = 1.1
# The times an exception may hold (what pd.Timestamp.isoformat writes).
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d(T\d\d:\d\d:\d\d(\.\d{1,9})?)?([+-]\d\d:\d\d)?")


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


def header_bounds(max_abs_error: float | Mapping[str, float],
                  resolved: list[float | None]) -> float | list[float | None]:
    """What a header records for ``max_abs_error`` (``resolved``: its
    :func:`resolve_bounds`, which checked it): a single bound in SDs as is (the reader
    multiplies by the model's SDs exactly as the writer did), a dict as absolute
    bounds per column."""
    if isinstance(max_abs_error, Mapping):
        return resolved
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
    if _no_codes(z):  # decode one row, for all
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


class _Cell(NamedTuple):
    """One model column of a chunk on its grid: indices ``q`` (level codes), where a
    cell is stored on it (``ok``; else blank or an exception), the WHOLE flag, the
    step (None: not a numeric grid), the origin and its bytes, the plain coders'
    result, the stored indices ``q[ok]`` and their :func:`order0_bits`."""

    q: np.ndarray
    ok: np.ndarray
    whole: bool
    step: float | None
    origin: float | int
    head: bytes
    plain: Coded
    kept: np.ndarray
    order0: tuple[float, int]


_Cells = tuple[list[ColumnSpec], list[_Cell], list[tuple[int, int, str]]]


def _cells(model: FittedVAE, X: pd.DataFrame | np.ndarray, bounds: list[float | None],
           prepared: dict[str, np.ndarray] | None = None) -> _Cells:
    """Each model column's stored integers, on its grid: ``(order, cells, exceptions)``
    with a :class:`_Cell` per column in model order.  ``prepared``: ``model.prepare(X)``
    when the caller has it (its level codes are reused, not looked up again)."""
    schema = model.schema
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X),
                                                               columns=schema.names())
    by_name = dict(zip(schema.names(), bounds, strict=True))
    order = _model_order(schema)
    cells = []
    exc: list[tuple[int, int, str]] = []
    for j, spec in enumerate(order):
        s = frame[spec.name]
        present = ~s.isna().to_numpy()
        whole, step, origin, head, floats = False, None, 0.0, b"", False
        if spec.kind == "numeric":
            bound = float(by_name[spec.name])  # type: ignore[arg-type]
            # the column as floats once, for the whole-number test and the grid (exact
            # integers and times are never floats)
            floats = (None if is_time_dtype(spec.dtype) or (
                integer_dtype(spec) and pd.api.types.is_integer_dtype(s.dtype))
                else column_floats(s, spec))
            whole = (bound > 0 and floats is not None and not integer_dtype(spec)
                     and whole_numbers(s, spec, present, floats[0]))
            grid = grid_of(spec, bound, whole)
            q, ok = to_grid(spec, s, present, grid, bound, floats=floats)
            step = grid.step if grid.mode in ("int", "float") else None
            q, origin = shift_grid(spec, s, present, q, ok, grid, bound)
            head = origin_bytes(origin, grid.mode) if origin else b""
            floats = grid.mode == "bits"  # float64 bit patterns: pcodec's float modes compete
        else:
            q, ok = _level_cells(schema, spec, s, prepared)
        kept = q[ok]
        cells.append(_Cell(q, ok, whole, step, origin, head, plain_column(kept, floats),
                           kept, order0_bits(kept)))
        for row in np.flatnonzero(present & ~ok):
            exc.append((int(row), j, _exact_text(s.iloc[row], spec.name, row)))
    return order, cells, exc


def _level_cells(schema: TabularSchema, spec: ColumnSpec, s: pd.Series,
                 prepared: dict[str, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """A level column's codes and where they are stored (a level of the schema), from
    the prepared rows when given (the same codes the network saw), else from ``s``."""
    if prepared is None:
        codes, ok, _ = schema.level_codes(spec, s)
        return codes, ok
    key = "bin" if spec.kind == "binary" else "cat"
    k = [c.name for c in schema.specs(spec.kind)].index(spec.name)
    return (np.asarray(prepared[key][:, k]).astype(np.int64),
            np.asarray(prepared[key + "_mask"][:, k]) > 0)


def encode_best(model: FittedVAE, X: pd.DataFrame | np.ndarray,
                options: list[tuple[int, np.ndarray]], bounds: list[float | None],
                prepared: dict[str, np.ndarray] | None = None) -> tuple[int, bytes]:
    """The values section of one chunk under the best of several latent codes.

    ``options`` are ``(n_bytes, z)`` pairs: how many bytes the option stores besides
    the values (its packed codes) and the decoded latent codes the reader will have;
    the last is the fallback (no codes, z = 0).  The others are weighed by
    approximate lengths on a sample of the rows (no coder runs) and the best of them
    is coded.  The fallback is coded too unless its approximate length is well past
    that chunk's (:func:`_fallback_loses`); the smaller chunk is kept (the fallback
    on a tie).

    Returns
    -------
    (index of the option kept, its section)
    """
    order, cells, exc = _cells(model, X, bounds, prepared)
    coded = options[:-1]
    pick = 0
    if len(coded) > 1:
        # Weighed on evenly spaced rows only: the estimate ranks options whose
        # lengths differ by whole percents, and a sample of about ESTIMATE_ROWS rows
        # ranks them as the whole chunk does at a fraction of the decoder passes.
        n = len(cells[0].q) if cells else 0
        rows = np.arange(0, n, max(1, -(-n // ESTIMATE_ROWS)))
        bits = _estimate(order, cells, [_predictions(model, z[rows]) for _, z in coded],
                         rows)
        pick = int(np.argmin([8 * extra + b for (extra, _), b in zip(coded, bits,
                                                                     strict=True)]))
    (chosen,) = _sections(model, order, cells, exc, [options[pick][1]])
    if _fallback_loses(model, order, cells, 8 * (options[pick][0] + len(chosen))):
        return pick, chosen
    (fallback,) = _sections(model, order, cells, exc, [options[-1][1]])
    if options[-1][0] + len(fallback) <= options[pick][0] + len(chosen):
        return len(options) - 1, fallback
    return pick, chosen


def _estimate(order: list[ColumnSpec], cells: list[_Cell],
              predictions: list[tuple[Any, ...]], rows: np.ndarray) -> list[float]:
    """Approximate bits of the sections under each code's :func:`_predictions` at
    ``rows``: per column the smaller of its order-0 entropy (all rows) and the
    model coder's approximate length (the Gaussian coder's :func:`gaussian_estimate`,
    or the order-0 entropy of the levels' ranks) on those rows, scaled to all of them."""
    # about what the counts coder's table costs: 24 bits per distinct value
    base = [c.order0[0] + 24 * c.order0[1] for c in cells]
    out = []
    for _, guess, t_mean, t_sd in predictions:
        total = 0.0
        gauss, gauss_base = [], []  # numeric columns: priced together, below
        for j, (spec, c) in enumerate(zip(order, cells, strict=True)):
            q, ok, step, origin = c.q[rows], c.ok[rows], c.step, c.origin
            scale = c.kept.size / max(np.count_nonzero(ok), 1)
            if spec.kind != "numeric":
                ranks = np.where(q[ok] == guess[spec.name][ok], 0, 1 + q[ok])
                bits, distinct = order0_bits(ranks)
                total += min(base[j], bits * scale + 24 * distinct)
            elif step is not None and ok.any():
                gauss.append((q[ok], *_gaussian(spec, t_mean[ok, j], t_sd[ok, j], step,
                                                origin)))
                gauss_base.append((base[j], scale))
            else:
                total += base[j]
        for (floor, scale), bits in zip(gauss_base, gaussian_estimates(gauss, OPTION_SAMPLE),
                                        strict=True):
            total += min(floor, bits * scale)
        out.append(total)
    return out


def _fallback_loses(model: FittedVAE, order: list[ColumnSpec], cells: list[_Cell],
                    bits: float) -> bool:
    """Whether the no-codes section's approximate length (per column the smaller of
    the plain coders' exact size and the Gaussian coder's estimate under the
    prediction at z = 0) exceeds ``_TRY_FALLBACK`` times ``bits``, a chunk's exact
    length with codes: then it is not worth coding.

    A lower bound settles most chunks first: with one prediction for every cell, a
    column costs at least its order-0 entropy (no fixed distribution codes the
    cells in fewer bits, whether Gaussian or ranks under one guessed level)."""
    floor = sum(min(8.0 * c.plain.size, c.order0[0]) for c in cells)
    if floor > _TRY_FALLBACK * bits:
        return True
    _, _, t_mean, t_sd = _predictions(model, np.zeros((1, model.latent_dim), np.float32))
    total = 0.0
    for j, (spec, c) in enumerate(zip(order, cells, strict=True)):
        best = 8.0 * c.plain.size
        if spec.kind == "numeric" and c.step is not None and c.kept.size:
            best = min(best, gaussian_estimate(
                c.kept, *_gaussian(spec, t_mean[:, j], t_sd[:, j], c.step, c.origin)))
        total += best
    return total > _TRY_FALLBACK * bits


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


def _sections(model: FittedVAE, order: list[ColumnSpec], cells: list[_Cell],
              exc: list[tuple[int, int, str]], zs: list[np.ndarray]) -> list[bytes]:
    """:func:`encode_values` from the columns' cells (:func:`_cells`)."""
    exceptions = _pack_exceptions(exc, order)
    crc = integers_crc([c.kept for c in cells])
    sections = []
    for z in zs:
        constant = _no_codes(z)  # one prediction serves every cell
        prediction = _predictions(model, z[:1] if constant else z)
        columns = [_column(spec, cell, j, prediction, constant)
                   for j, (spec, cell) in enumerate(zip(order, cells, strict=True))]
        words = stack_words(columns)
        # measured columns' words are exact (on one stack, within a few words of their
        # sum): the slack is for the estimated ones only
        measured = sum(c.words for c in columns if not c.estimated)
        estimated = sum(c.words for c in columns if c.estimated)
        if estimated and len(words) // 4 > measured + _ESTIMATE_SLACK * estimated + 8:
            # A sampled estimate missed some column's pattern: measure those columns,
            # so the plain coders win where the Gaussian does not.
            columns = [_column(order[j], cells[j], j, prediction, constant, measure=True)
                       if c.estimated else c for j, c in enumerate(columns)]
            words = stack_words(columns)
        sections.append(pack_section(crc, exceptions, columns, words))
    return sections


def _column(spec: ColumnSpec, cell: _Cell, j: int, prediction: tuple[Any, ...],
            constant: bool, measure: bool = False) -> Coded:
    """Column ``j`` of a section under the decoder's :func:`_predictions` (one row for
    every cell when ``constant``)."""
    _, guess, t_mean, t_sd = prediction

    def stored(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, cell.kept.shape) if constant else a[cell.ok]

    if spec.kind != "numeric":
        return encode_column(cell.kept, predicted=stored(guess[spec.name]), plain=cell.plain)
    gauss = None
    if cell.step is not None:  # numeric columns lead the model order: j is their index
        gauss = tuple(stored(a) for a in _gaussian(spec, t_mean[:, j], t_sd[:, j], cell.step,
                                                   cell.origin))
    coded = encode_column(cell.kept, gaussian=gauss, plain=cell.plain,  # type: ignore[arg-type]
                          measure=measure)
    flags = (SHIFTED if cell.head else 0) | (WHOLE if cell.whole else 0)
    return coded._replace(coder=coded.coder | flags, data=cell.head + coded.data)


def _no_codes(z: np.ndarray) -> bool:
    """Whether every row decodes z = 0 (a chunk without codes): a row's prediction
    does not depend on the other rows, so one serves all."""
    return len(z) > 1 and not np.any(z)


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
                  bounds: list[float | None], missing: np.ndarray | None,
                  *, version: int) -> Any:
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
    version : int
        The file's codec version (its grids: :func:`.grids.grid_of`).

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
    unpacked = unpack_section(section, len(order), n_rows * len(order), version)
    crc, exc_bytes, columns = unpacked.crc, unpacked.exceptions, unpacked.columns
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
            grid = grid_of(spec, float(by_name[spec.name]), whole,  # type: ignore[arg-type]
                           version=version)
            mode, step = grid.mode, grid.step
            origin = 0.0
            if coder & SHIFTED:
                origin, data = read_origin(data, mode, step, spec.name)
            coder &= CODER_BITS
            gauss = None
            if mode in ("int", "float"):  # j is the numeric column's index (see above)
                gauss = tuple(a[stored] for a in _gaussian(spec, t_mean[:, j], t_sd[:, j], step,
                                                           origin))
            q = decode_column(coder, data, n, gaussian=gauss,  # type: ignore[arg-type]
                              stack=unpacked.stack)
            full = np.zeros(n_rows, dtype=np.int64)
            full[stored] = _checked(q, n)
            col = (from_grid(spec, full, grid, origin) if mode != "text"
                   else out[spec.name])
        else:
            q = _checked(decode_column(coder, data, n, predicted=guesses[spec.name][stored],
                                       stack=unpacked.stack), n)
            if q.size and (q.min() < 0 or q.max() >= len(spec.levels)):
                raise FileFormatError("bounded values are corrupt (a level code out of range)")
            full = np.zeros(n_rows, dtype=np.int64)
            full[stored] = q
            col = levels_series(spec, full)
        ints.append(q)
        col.index = out.index
        out[spec.name] = _with_exceptions(col, spec, cells)
    unpacked.finish()
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
