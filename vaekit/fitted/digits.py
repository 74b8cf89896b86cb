"""Honest digits: restored numbers rounded to what the codec preserves.

A decoded float such as ``1.5525648834821242`` carries 17 digits, of which the codec
preserved perhaps three: the rest are the decoder's float noise.  So decompressed
float columns are rounded, cell by cell, to a decimal step a tenth of the
decoder's own error scale for that cell: the Gaussian scale of the column given
the code (``sigma``, in the transformed space ``t``), taken to the column's units
through the schema's transform (``dx/dt = scale``, times ``cosh(t / c)`` for
asinh columns).  For a compressor fitted with a budget ``sigma`` is the measured
RMS error of the coded training rows per column; for other models it is the
decoder's predicted spread, floored at the column's data resolution.

The step is ``10 ** (floor(log10(sigma_x)) - 1)``, so the rounding moves a value
by at most ``sigma_x / 20`` (far below the codec's error) and a value is written
with one digit below the first uncertain one.  Deterministic: it depends only on
the code and the model.  Integer, boolean and categorical columns are untouched
(integers are already whole), and so are images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data.tabular import TabularSchema
from .grids import round_decimal
from .model import FittedVAE

__all__ = ["decode_rounded", "round_to_codec", "round_values", "value_error"]

# Past this many decimals a float64 holds no more digits anyway (nor do numbers this
# precise come out of a float32 decoder): left as they are.
_MAX_DECIMALS = 15


def value_error(model: FittedVAE, Z: np.ndarray) -> np.ndarray:
    """The decoder's error scale of each numeric cell, in the column's units.

    Parameters
    ----------
    Z : ndarray (n, latent_dim)
        Latent values (decoded codes).

    Returns
    -------
    ndarray (n, n_numeric), float64
        ``sigma_t * |dx/dt|`` at the decoded value, per row and numeric column
        (schema order).
    """
    numeric = model.decode_with_scales(Z)[1]
    if numeric is None:
        raise ValueError("value_error needs a table model")
    return _column_error(model.schema, *numeric)


def _column_error(schema: TabularSchema, t: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    out = np.empty_like(t)
    for j, spec in enumerate(schema.specs("numeric")):
        out[:, j] = sigma[:, j] * spec.slope(t[:, j])
    return out


def round_values(x: np.ndarray, error: np.ndarray) -> np.ndarray:
    """``x`` rounded to ``10 ** (floor(log10(error)) - 1)``, cell by cell.

    Cells with a non-finite or non-positive error, or needing more than
    ``_MAX_DECIMALS`` decimals, are left as they are.  A step of ``10**-d`` is
    applied as ``rint(x * 10**d) / 10**d`` (both exact, one correctly rounded
    division), so the result is the double nearest the decimal and prints as it.
    """
    x = np.asarray(x, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(error) & (error > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        decimals = 1 - np.floor(np.log10(np.where(ok, error, 1.0)))
    ok &= decimals <= _MAX_DECIMALS
    d = np.where(ok, decimals, 0.0).astype(np.int64)
    # Every cell at once, each with its own power of ten: the same arithmetic per cell
    # as one decimal at a time (and as the codec's decimal grids).
    return np.where(ok, round_decimal(x, d), x) + 0.0  # no "-0.0"


def decode_rounded(model: FittedVAE, Z: np.ndarray) -> Any:
    """Decoded rows of codes ``Z`` with float columns rounded (module doc), from one
    decoder pass: ``round_to_codec(model.decode_means(Z), model, Z)``."""
    values, numeric = model.decode_with_scales(Z)
    return round_to_codec(values, model, Z, numeric=numeric)


def round_to_codec(values: Any, model: FittedVAE, Z: np.ndarray,
                   numeric: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """Decoded rows (``model.decode_means(Z)``) with float columns rounded (module doc).

    ``values`` is a DataFrame or a 2-D array in schema column order; a float
    column is rounded in float64 and keeps its dtype (float32 stays float32).
    (Not clipped again to the training range: a bound such as 2.017098400750565
    would bring the digits back; rounding moves a value by at most half a step.)
    Anything else (images, no numeric columns) is returned unchanged.  ``numeric``:
    the decoder's ``(t, sigma)`` for ``Z`` when the caller has them
    (:meth:`FittedVAE.decode_with_scales`), else they are computed here.
    """
    schema = model.schema
    if not isinstance(schema, TabularSchema) or not schema.specs("numeric") or len(Z) == 0:
        return values
    error = (value_error(model, Z) if numeric is None
             else _column_error(schema, *numeric))
    names = schema.names()
    frame = isinstance(values, pd.DataFrame)
    specs = schema.specs("numeric")
    done: set[int] = set()
    if frame:
        # The plain float64 columns in one block: round_values works cell by cell, so
        # the same digits as column by column, without a pandas round trip per column.
        dtypes = dict(zip(values.columns, values.dtypes, strict=True))
        plain = [j for j, s in enumerate(specs) if dtypes.get(s.name) == np.float64]
        if plain:
            cols = [specs[j].name for j in plain]
            whole = cols == list(values.columns)
            block = (values if whole else values[cols]).to_numpy(dtype=np.float64)
            rounded = round_values(block, error[:, plain])
            if whole:  # one block in, one block out: no per-column frame
                values = pd.DataFrame(rounded, columns=values.columns, index=values.index,
                                      copy=False)
            else:
                by_name = {c: rounded[:, k] for k, c in enumerate(cols)}
                values = pd.DataFrame({c: by_name[c] if c in by_name else values[c]
                                       for c in values.columns}, index=values.index)
            done = set(plain)
    # (a frame rebuilt above is this function's own already)
    out = (values if done else values.copy()) if frame else np.array(values, copy=True)
    for j, spec in enumerate(specs):
        if j in done:
            continue
        col = out[spec.name] if frame else None
        dtype = col.dtype if frame else out.dtype
        if dtype.kind != "f":
            continue  # integers are whole already; objects are not ours to touch
        raw = col.to_numpy(dtype=np.float64) if frame else out[:, names.index(spec.name)]
        rounded = round_values(raw, error[:, j])
        if frame:  # through pandas: a nullable Float64 is not a numpy dtype
            out[spec.name] = pd.Series(rounded, index=col.index).astype(dtype)
        else:
            out[:, names.index(spec.name)] = rounded
    return out
