"""Tabular schema: infer column kinds, learn scaling, encode rows to tensors and back.

A :class:`TabularSchema` is fitted once on training data and stored (as JSON) in the
model file.  It turns a DataFrame into the dictionary of float tensors the VAE core
consumes and turns decoded parameters back into a DataFrame in the input's own form.

Column kinds
------------
``numeric``
    Modelled by a heteroscedastic Gaussian in a *transformed* space
    ``t = T(x)``.  ``T`` is a robust affine map ``u = (x - median) / s`` (``s`` from the
    inter-quartile range) followed, for heavy-tailed or skewed columns, by the soft
    compression ``t = c * asinh(u / c)`` (linear within ``c`` robust standard
    deviations, logarithmic beyond).  The log-Jacobian ``log |dt/dx|`` is kept per value
    so that log-likelihoods are densities **in the input's own units** (nats).
``binary``
    Two distinct values; Bernoulli.
``categorical``
    Non-numeric values, and every pandas ``category`` column; categorical (softmax).
    Values not seen during ``fit`` are flagged (never a crash) and charged as an
    escape to an unseen level (below).

Dates and times (a datetime dtype, or text holding only ISO 8601 dates / times) are
``numeric`` columns whose value is days since 1970-01-01 and whose stored dtype is the
datetime dtype, restored on the way out (:mod:`vaekit.data.columns`).  Dtypes
round-trip: booleans, nullable ``Int64`` / ``boolean``, ``category``, ``float32``,
``string`` and Arrow-backed (``pd.ArrowDtype``) columns come back as they went in.

Identifiers are refused by name, not modelled: a text column whose values are all
different, and an integer column of different values in row order or filling a
range (:func:`~vaekit.data.columns.integer_id_reason`); pass them as id columns.

Missing values (NaN / None / empty) are allowed in every column: the encoder sees a
filled value plus a 0/1 "observed" mask, and the likelihood of a missing *value* is
marginalized out (the decoder never scores an imputed value).

Which cells are missing is data, though (:meth:`TabularSchema.cell_log_probs`).  Each
column's missing rate is learned from the training counts with the
Krichevsky-Trofimov estimate ``p_miss = (k + 1/2) / (n + 1)`` (``k`` of ``n`` rows
blank): a cell costs ``-log p_miss`` when blank and ``-log(1 - p_miss)`` when present,
in every row, so the mask has a proper code length.  Per-column rates rather than a
decoder output for the mask: exact, no change to the network, and on a complete table
they add the same constant to every row (ranking unchanged).  A column never blank in
training makes a blank cost about ``log(2n)`` nats.  A blank cell also costs the
column's typical (median training) value cost, ``missing_cost``, when the model learned
one (detectors do, compressors keep the honest code length), so blanking a cell never
makes a row look like it holds a perfectly typical value for free.

A value that is not a level (a new category) escapes to an "other" level.  Its
probability: when the schema left rare levels out (``min_level_count``; detectors
treat values seen once as novel, since one example teaches nothing about a level),
the Good-Turing rate of novel values, ``(n_rare + 1/2) / (n_obs + 1)`` (``n_rare`` of
``n_obs`` present training cells held a left-out value; KT-smoothed), capped at 1/2;
otherwise the Witten-Bell estimate ``K / (n_obs + K)`` (``K`` levels; PPM's "method
C"), at most 1/2 since every level was seen.  The escape therefore costs at least what
``-log(1 - p_esc)`` (a seen level's share) does; the scorer charges an unseen cell the
decoder cost of the most expensive seen level for that row (see
:mod:`vaekit.fitted.scoring`).  After the escape the value still has to be *spelled*:
its UTF-8 bytes cost what an order-0 byte model of the column's levels charges
(:mod:`vaekit.data.levels`), so a long or strange new value costs more than a short
familiar-looking one.  Schemas written before the spelling rule (no
``unseen_spelling`` key) charge no spelling, so old model files score as before.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .columns import (
    _is_missing,
    _numbers,
    as_float,
    dtype_name,
    integer_id_reason,
    is_time_dtype,
    looks_like_times,
    restore_dtype,
    restore_times,
    safe_dtype,
    time_days,
    time_dtype_name,
)
from .levels import byte_log_probs, json_scalar, level_key, sorted_levels, spelling_nats
from .numeric import ASINH_WIDTH, encode_numerics
from .statistics import choose_transform, finite_sd, resolution, robust_center_scale

KINDS = ("numeric", "binary", "categorical")
# Encoder inputs are clipped here (robust SDs): q(z|x) may be any distribution, so the
# ELBO stays a bound, and a value never seen in training cannot overflow the encoder.
ENCODER_CLIP = 1e4
MAX_CATEGORIES = 1000
# Recorded in the schema of new fits: unseen values are charged their spelling
# (vaekit.data.levels).  Schemas without it score unseen cells as they did.
SPELLING_RULE = "utf8-kt-order0"


@dataclass
class ColumnSpec:
    """What the schema learned about one input column.

    Attributes
    ----------
    name : str
        Column name as in the input.
    kind : {"numeric", "binary", "categorical"}
    dtype : str
        The input's dtype (``str(series.dtype)``), restored on the way out.
    center, scale : float
        Robust location and scale (numeric columns), in the column's units.
    transform : {"affine", "asinh"}
        Numeric transform (see module docstring).
    resolution : float
        Smallest gap between distinct training values (numeric columns), in the
        column's units: 1 for integer counts, the rounding step for rounded data.
    levels : list
        Category values in code order (binary: exactly two; categorical: all seen).
    low, high : float or None
        Smallest and largest training value (numeric columns), in the column's units.
        Reconstructions are clipped to this range: the true value of a typical row
        lies inside it, so clipping can only bring a reconstruction closer.  ``None``
        in model files written before the range was recorded (no clipping).
    n_missing : int or None
        Training rows where the column was blank (the missingness model's count).
        ``None`` in model files written before it was recorded: those score as they
        always did (a blank cell and an unseen category add 0 nats).
    missing_cost : float or None
        Nats a blank cell is charged for its value besides ``-log p_miss``: the median
        value cost of the column's present cells in training (detectors); ``None``: 0.
    n_rare : int or None
        Training cells whose level was left out as rare (``min_level_count``);
        ``None`` when the schema keeps every level.
    sd : float or None
        Standard deviation of the training values (numeric columns), in the
        column's units: the unit of the codec's error bound ``max_abs_error``.
        ``None`` in model files written before it was recorded.
    """

    name: str
    kind: str
    dtype: str
    center: float = 0.0
    scale: float = 1.0
    transform: str = "affine"
    resolution: float = 0.0
    levels: list = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    n_missing: int | None = None
    missing_cost: float | None = None
    n_rare: int | None = None
    sd: float | None = None

    def untransform(self, t: np.ndarray) -> np.ndarray:
        """Values in the column's units for transformed values ``t`` (float64): the
        inverse of the affine map and, on asinh columns, of the tail compression."""
        u = ASINH_WIDTH * np.sinh(t / ASINH_WIDTH) if self.transform == "asinh" else t
        return u * self.scale + self.center

    def slope(self, t: np.ndarray) -> np.ndarray | float:
        """``dx/dt`` at transformed values ``t``: how a spread in the model's units
        (a decoder SD) maps to the column's units."""
        if self.transform == "asinh":
            return self.scale * np.cosh(t / ASINH_WIDTH)
        return self.scale

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "dtype": self.dtype}
        if self.kind == "numeric":
            d.update(center=self.center, scale=self.scale, transform=self.transform,
                     resolution=self.resolution)
            if self.low is not None and self.high is not None:
                d.update(low=self.low, high=self.high)
            if self.sd is not None:
                d["sd"] = self.sd
        else:
            d["levels"] = list(self.levels)
        if self.n_missing is not None:
            d["n_missing"] = int(self.n_missing)
        if self.missing_cost is not None:
            d["missing_cost"] = float(self.missing_cost)
        if self.n_rare is not None:
            d["n_rare"] = int(self.n_rare)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnSpec:
        if d.get("kind") not in KINDS:
            raise ValueError(f"unknown column kind {d.get('kind')!r}")
        return cls(
            name=str(d["name"]),
            kind=d["kind"],
            dtype=str(d["dtype"]),
            center=float(d.get("center", 0.0)),
            scale=float(d.get("scale", 1.0)),
            transform=str(d.get("transform", "affine")),
            resolution=float(d.get("resolution", 0.0)),
            levels=list(d.get("levels", [])),
            low=None if d.get("low") is None else float(d["low"]),
            high=None if d.get("high") is None else float(d["high"]),
            n_missing=None if d.get("n_missing") is None else int(d["n_missing"]),
            missing_cost=None if d.get("missing_cost") is None else float(d["missing_cost"]),
            n_rare=None if d.get("n_rare") is None else int(d["n_rare"]),
            sd=None if d.get("sd") is None else float(d["sd"]),
        )


def _looks_numeric(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
        return False  # a pandas category is a category, whatever its values
    if pd.api.types.is_numeric_dtype(s.dtype):
        return True
    observed = s[~s.isna()]
    if len(observed) == 0:
        return False
    return bool(not np.isnan(_numbers(observed)).any())


class TabularSchema:
    """Column kinds, scaling and categories of a table, fitted once.

    Parameters
    ----------
    categorical : sequence of str, optional
        Columns to force to ``categorical``.
    binary : sequence of str, optional
        Columns to force to ``binary`` (must have at most two distinct values).
    numeric : sequence of str, optional
        Columns to force to ``numeric`` (must parse as numbers).
    min_level_count : int, default 1
        Categorical levels seen fewer times than this in training are not levels of
        their own: their cells count as novel values (escape plus spelling, see the
        module docstring), and the escape probability is learned from how many cells
        held one (Good-Turing).  Anomaly detectors use 2: one example teaches nothing
        about a level, and a value seen once in training is usually a typo or a
        one-off.  Kept only when at least two levels remain.

    Attributes
    ----------
    columns : list of ColumnSpec
        In input order.
    n_rows_fit : int
        Rows seen by ``fit``.
    """

    def __init__(
        self,
        categorical: Sequence[str] | None = None,
        binary: Sequence[str] | None = None,
        numeric: Sequence[str] | None = None,
        min_level_count: int = 1,
    ) -> None:
        self.categorical = list(categorical or [])
        self.min_level_count = int(min_level_count)
        self.binary = list(binary or [])
        self.numeric = list(numeric or [])
        self.columns: list[ColumnSpec] = []
        self.n_rows_fit = 0
        self.spells_unseen = False

    # ------------------------------------------------------------------ fitting
    def fit(self, df: pd.DataFrame) -> TabularSchema:
        """Learn column kinds, scaling and levels from ``df``.

        Raises
        ------
        DataError
            Empty input, an all-missing column, a non-numeric value in a column
            forced numeric, inf, or an identifier-like text column.
        """
        if df.shape[0] == 0:
            raise DataError("empty input: at least one row is needed to fit")
        if df.shape[1] == 0:
            raise DataError("input has no columns")
        names = [str(c) for c in df.columns]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise DataError(f"duplicate column names: {dup}")
        for forced in (self.categorical, self.binary, self.numeric):
            unknown = [c for c in forced if c not in names]
            if unknown:
                raise DataError(f"columns {unknown} given as a kind override are not in the input")
        self.columns = [self._fit_column(str(name), df.iloc[:, i]) for i, name in enumerate(names)]
        for i, spec in enumerate(self.columns):
            spec.n_missing = int(_is_missing(df.iloc[:, i]).sum())
        self.n_rows_fit = int(df.shape[0])
        self.spells_unseen = True
        return self

    def _fit_column(self, name: str, s: pd.Series) -> ColumnSpec:
        missing = _is_missing(s)
        if missing.all():
            raise DataError(
                "every value is missing; drop this column or give it data", column=name
            )
        dtype = dtype_name(s.dtype)
        observed = s[~missing]
        if name in self.categorical:
            kind = "categorical"
        elif name in self.binary:
            kind = "binary"
        elif is_time_dtype(s.dtype) or looks_like_times(s):
            # Dates and times: days since 1970-01-01 (see vaekit.data.columns).
            values = time_days(s, name)
            center, scale = robust_center_scale(values)
            return ColumnSpec(
                name, "numeric", time_dtype_name(s, name), center, scale,
                choose_transform(values, center, scale), resolution(values),
                low=float(np.nanmin(values)), high=float(np.nanmax(values)),
                sd=finite_sd(values),
            )
        elif name in self.numeric or _looks_numeric(s):
            reason = None if name in self.numeric else integer_id_reason(s)
            if reason is not None:
                raise DataError(
                    f"{reason}, so it looks like a row identifier, not a feature; pass it as "
                    "an id column (vaekit --id-column) or drop it (vaekit fit --exclude); "
                    "if it really is a measurement, give it a float dtype",
                    column=name,
                )
            values = as_float(s, name)
            n_unique = len(np.unique(values[~np.isnan(values)]))
            kind = "binary" if n_unique == 2 and name not in self.numeric else "numeric"
            if kind == "numeric":
                center, scale = robust_center_scale(values)
                return ColumnSpec(
                    name, "numeric", dtype, center, scale, choose_transform(values, center, scale),
                    resolution(values), low=float(np.nanmin(values)),
                    high=float(np.nanmax(values)), sd=finite_sd(values),
                )
        elif pd.api.types.is_bool_dtype(s.dtype):
            kind = "binary"
        else:
            kind = "binary" if observed.nunique() == 2 else "categorical"
        levels, n_rare = sorted_levels(observed, self.min_level_count if kind == "categorical"
                                        else 1)
        if kind == "binary" and len(levels) > 2:
            raise DataError(
                f"declared binary but has {len(levels)} distinct values: {levels[:5]}", column=name
            )
        if kind == "categorical":
            if len(levels) > MAX_CATEGORIES:
                raise DataError(
                    f"{len(levels)} distinct text values (more than {MAX_CATEGORIES}); if this is "
                    "an identifier, pass it as an id column or drop it",
                    column=name,
                )
            if len(levels) + (n_rare or 0) == len(observed) and len(observed) >= 50:
                raise DataError(
                    "every value is distinct, so it looks like an identifier, not a category; "
                    "pass it as an id column or drop it",
                    column=name,
                )
        # n_rare: only where the rare-level rule applied (Good-Turing escape); else the
        # Witten-Bell escape (binary columns, rare values kept, compressors).
        return ColumnSpec(name, kind, dtype, levels=levels,
                          n_rare=n_rare if self.min_level_count > 1 and kind == "categorical"
                          else None)

    # --------------------------------------------------------------- properties
    def names(self, kind: str | None = None) -> list[str]:
        """Column names, optionally of one kind, in input order."""
        return [c.name for c in self.columns if kind is None or c.kind == kind]

    def specs(self, kind: str) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind == kind]

    @property
    def cat_sizes(self) -> list[int]:
        """Number of levels of each categorical column."""
        return [len(c.levels) for c in self.specs("categorical")]

    @property
    def model_order(self) -> list[str]:
        """Column order used inside the model: numeric, then binary, then categorical."""
        return self.names("numeric") + self.names("binary") + self.names("categorical")

    @property
    def value_width(self) -> int:
        """Width of the value part of the encoder input: numerics, binaries and one-hot
        levels (the observed-masks that follow them in ``x`` are not counted)."""
        return len(self.specs("numeric")) + len(self.specs("binary")) + sum(self.cat_sizes)

    def numeric_floors(self, min_scale: float) -> list[float]:
        """Per-numeric-column floor of the Gaussian SD, in transformed units.

        A column that only takes values on a grid (counts, rounded data) has no
        density finer than its grid; flooring its SD at the grid's quantization noise
        (``resolution / sqrt(12)``) stops the model from buying unbounded likelihood
        by collapsing onto the grid points.  Never below ``min_scale``.
        """
        return [max(min_scale, c.resolution / math.sqrt(12.0) / c.scale)
                for c in self.specs("numeric")]

    def layout(self) -> dict[str, Any]:
        """Sizes the VAE core needs (JSON-serializable)."""
        return {
            "n_numeric": len(self.specs("numeric")),
            "n_binary": len(self.specs("binary")),
            "cat_sizes": self.cat_sizes,
        }

    # --------------------------------------------------------------- cell status
    @property
    def models_missingness(self) -> bool:
        """Whether the schema holds the missing counts (models written before: no)."""
        return bool(self.columns) and all(c.n_missing is not None for c in self.columns)

    def missing_rates(self) -> np.ndarray:
        """Krichevsky-Trofimov missing rate ``(k + 1/2) / (n + 1)`` per column, model order."""
        n = max(self.n_rows_fit, 0)
        by_name = {c.name: c for c in self.columns}
        k = np.array([min(by_name[c].n_missing or 0, n) for c in self.model_order], dtype=float)
        return (k + 0.5) / (n + 1.0)

    def escape_rates(self) -> np.ndarray:
        """Escape probability per binary and categorical column (binary first, the
        ``unseen`` flags' order); at most 1/2.

        Columns whose rare levels were left out (``n_rare`` recorded): the Good-Turing
        rate of novel values, ``(n_rare + 1/2) / (n_obs + 1)`` (KT-smoothed, so a
        column with none still gives a new value a small probability).  Otherwise
        Witten-Bell's ``K / (n_obs + K)``.
        """
        out = []
        for spec in self.specs("binary") + self.specs("categorical"):
            k = max(len(spec.levels), 1)
            n_obs = max(self.n_rows_fit - (spec.n_missing or 0), k)
            if spec.n_rare is not None:
                out.append(min((spec.n_rare + 0.5) / (n_obs + 1.0), 0.5))
            else:
                out.append(k / (n_obs + k))
        return np.array(out, dtype=float)

    def cell_log_probs(self, t: dict[str, np.ndarray]) -> np.ndarray | None:
        """Log-probability (nats) of each cell's status, (n, n_features), model order.

        Present seen cell: ``log(1 - p_miss)`` (+ ``log(1 - p_esc)`` for levels);
        blank cell: ``log p_miss - missing_cost``; unseen level: ``log(1 - p_miss) +
        log p_esc`` minus the value's spelling cost (``unseen_nats``).  ``None`` when the schema predates the missing counts (old model
        files score as before).
        """
        if not self.models_missingness:
            return None
        p_miss = self.missing_rates()
        present = present_cells(t)
        n_num = len(self.specs("numeric"))
        unseen = np.zeros_like(present)
        unseen[:, n_num:] = np.asarray(t["unseen"]).astype(bool)
        escape = np.zeros(present.shape[1])
        escape[n_num:] = self.escape_rates()
        by_name = {c.name: c for c in self.columns}
        value_cost = np.array([by_name[c].missing_cost or 0.0 for c in self.model_order])
        seen = np.log1p(-p_miss) + np.log1p(-escape)
        blank = np.log(p_miss) - value_cost
        new = np.log1p(-p_miss) + np.log(np.where(escape > 0, escape, 1.0))
        out = np.empty(present.shape)
        out[:] = seen
        if present.all():  # the common case: no blank or unseen cell in the chunk
            return out
        spelled = np.zeros(present.shape)
        if "unseen_nats" in t:
            spelled[:, n_num:] = np.asarray(t["unseen_nats"], dtype=np.float64)
        return np.where(present, out, np.where(unseen, new - spelled, blank))

    # --------------------------------------------------------------- checking
    def check_columns(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return ``df`` restricted to the fitted columns, in fitted order.

        Missing columns raise :class:`DataError`; extra columns are ignored with a
        warning.
        """
        have = [str(c) for c in df.columns]
        want = self.names()
        missing = [c for c in want if c not in have]
        if missing:
            raise DataError(
                f"missing column(s) {missing}; the model was fitted on columns {want}"
            )
        extra = [c for c in have if c not in want]
        if extra:
            warnings.warn(
                f"ignoring column(s) {extra} that the model was not fitted on",
                UserWarning,
                stacklevel=3,
            )
        if list(df.columns) == want:
            return df
        df = df.set_axis(have, axis=1)
        return df[want]

    # --------------------------------------------------------------- encoding
    def encode(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """Turn rows into the network's input arrays ("prepared rows").

        Returns
        -------
        dict of str to ndarray
            numpy arrays (the torch path wraps them without copying,
            :func:`vaekit.core.batching.as_tensors`):
            ``x`` (n, d_in) float32 encoder input (filled values, one-hots and masks);
            ``num``/``num_mask``/``num_logjac`` (n, n_numeric) transformed values, 1 where
            observed, and ``log |dt/dx|`` (nats); ``bin``/``bin_mask`` (n, n_binary);
            ``cat``/``cat_mask`` (n, n_categorical) level index (0 when missing) and
            mask; ``unseen`` (n, n_binary + n_categorical) 1 where a value was not seen
            during fit (binary columns first); ``unseen_nats`` (same shape, float64)
            the code length of spelling each unseen value, nats (0 elsewhere).
        """
        if df.shape[0] == 0:
            raise DataError("empty input: no rows to process")
        df = self.check_columns(df)
        n = df.shape[0]
        num, num_mask, num_logjac = self._encode_numerics(df)
        bins, bin_masks, unseen, spelling = [], [], [], []
        for spec in self.specs("binary"):
            code, mask, new, nats = self._encode_levels(spec, df[spec.name])
            bins.append(code.astype(np.float32))
            bin_masks.append(mask)
            unseen.append(new)
            spelling.append(nats)
        cats, cat_masks = [], []
        for spec in self.specs("categorical"):
            code, mask, new, nats = self._encode_levels(spec, df[spec.name])
            cats.append(code)
            cat_masks.append(mask)
            unseen.append(new)
            spelling.append(nats)

        def stack(cols: list[np.ndarray], dtype: Any) -> np.ndarray:
            if not cols:
                return np.zeros((n, 0), dtype=dtype)
            return np.stack(cols, axis=1).astype(dtype, copy=False)

        out = {
            "num": num,
            "num_mask": num_mask,
            "num_logjac": num_logjac,
            "bin": stack(bins, np.float32),
            "bin_mask": stack(bin_masks, np.float32),
            "cat": stack(cats, np.int64),
            "cat_mask": stack(cat_masks, np.float32),
            "unseen": stack(unseen, np.float32),
            "unseen_nats": stack(spelling, np.float64),
        }
        out["x"] = encoder_input(out, self.cat_sizes)
        return out

    def _encode_numerics(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Numeric columns -> transformed values, masks, log-Jacobians (n, n_numeric)
        float32 (:func:`.numeric.encode_numerics`)."""
        return encode_numerics(df, self.specs("numeric"))

    def level_codes(self, spec: ColumnSpec, s: pd.Series) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
        """Level codes of a binary or categorical column's values (0 where there is
        none), and where a value is present, and where it is not a level (bool)."""
        codes, mask, unseen, _ = self._encode_levels(spec, s)
        return codes, mask.astype(bool), unseen.astype(bool)

    def _encode_levels(
        self, spec: ColumnSpec, s: pd.Series
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Level codes, observed mask, unseen flags and the unseen values' spelling
        cost (nats, 0 elsewhere and when the schema does not spell unseen values)."""
        missing = _is_missing(s)
        lookup = {level_key(v): i for i, v in enumerate(spec.levels)}
        values = s.tolist()
        keys = [None if m else level_key(v) for v, m in zip(values, missing, strict=False)]
        codes = np.array([lookup.get(k, -1) if k is not None else -1 for k in keys], dtype=np.int64)
        unseen = (codes < 0) & ~missing
        mask = codes >= 0
        nats = np.zeros(len(values), dtype=np.float64)
        if self.spells_unseen and unseen.any():
            rows = np.flatnonzero(unseen)
            nats[rows] = spelling_nats([json_scalar(values[i]) for i in rows],
                                       byte_log_probs(spec.levels))
        return (np.where(mask, codes, 0), mask.astype(np.float32), unseen.astype(np.float32),
                nats)

    # --------------------------------------------------------------- decoding
    def decode(self, num: np.ndarray, binary_p: np.ndarray, cat_idx: np.ndarray) -> pd.DataFrame:
        """Turn model outputs back into a DataFrame in the input's form.

        Parameters
        ----------
        num : ndarray of shape (n, n_numeric)
            Values in the transformed space.
        binary_p : ndarray of shape (n, n_binary)
            Probability of the second level.
        cat_idx : ndarray of shape (n, n_categorical)
            Level indices.
        """
        out: dict[str, Any] = {}
        for j, spec in enumerate(self.specs("numeric")):
            x = spec.untransform(num[:, j].astype(np.float64))
            if spec.low is not None and spec.high is not None:
                x = np.clip(x, spec.low, spec.high)
            if spec.dtype == "float64":
                out[spec.name] = x  # already the column's dtype
            elif is_time_dtype(spec.dtype):
                out[spec.name] = restore_times(x, spec.dtype, spec.low, spec.resolution)
            else:
                out[spec.name] = restore_dtype(x, spec.dtype)
        for j, spec in enumerate(self.specs("binary")):
            idx = (binary_p[:, j] >= 0.5).astype(np.int64)
            out[spec.name] = levels_series(spec, idx)
        for j, spec in enumerate(self.specs("categorical")):
            out[spec.name] = levels_series(spec, cat_idx[:, j].astype(np.int64))
        names = self.names()
        if all(isinstance(out[c], np.ndarray) for c in names):
            # Float64 columns only: one (k, n) block that the frame takes as it is.
            block = np.empty((len(names), num.shape[0]))
            for i, c in enumerate(names):
                block[i] = out[c]
            return pd.DataFrame(block.T, columns=names, copy=False)
        return pd.DataFrame({name: out[name] for name in names})

    # --------------------------------------------------------------- storage
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "tabular",
            "n_rows_fit": self.n_rows_fit,
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.spells_unseen:
            d["unseen_spelling"] = SPELLING_RULE
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TabularSchema:
        schema = cls()
        schema.columns = [ColumnSpec.from_dict(c) for c in d["columns"]]
        schema.n_rows_fit = int(d.get("n_rows_fit", 0))
        schema.spells_unseen = d.get("unseen_spelling") == SPELLING_RULE
        return schema


def encoder_input(t: dict[str, np.ndarray], cat_sizes: Sequence[int]) -> np.ndarray:
    """Concatenate filled values, one-hot categories and observed-masks (float32).

    Missing entries are 0 in the value part; the masks let the encoder tell a
    missing value from a real 0.
    """
    num, num_mask = np.asarray(t["num"]), np.asarray(t["num_mask"])
    bins, bin_mask = np.asarray(t["bin"]), np.asarray(t["bin_mask"])
    cat, cat_mask = np.asarray(t["cat"]), np.asarray(t["cat_mask"])
    n, k, b = num.shape[0], num.shape[1], bins.shape[1]
    # Written in place into one array (no concatenation copy); float32 throughout.
    x = np.empty((n, 2 * k + 2 * b + sum(cat_sizes) + cat_mask.shape[1]), dtype=np.float32)
    part = x[:, :k]
    np.clip(num, -ENCODER_CLIP, ENCODER_CLIP, out=part)
    part *= num_mask
    np.multiply(bins, bin_mask, out=x[:, k:k + b])
    at = k + b
    for j, size in enumerate(cat_sizes):
        onehot = np.eye(size, dtype=np.float32)[cat[:, j]]
        np.multiply(onehot, cat_mask[:, j:j + 1], out=x[:, at:at + size])
        at += size
    for m in (num_mask, bin_mask, cat_mask):
        x[:, at:at + m.shape[1]] = m
        at += m.shape[1]
    return x


def present_cells(t: dict[str, np.ndarray]) -> np.ndarray:
    """Bool (n, n_features), model order: where a prepared row's cell holds a value."""
    return np.concatenate([np.asarray(t["num_mask"]), np.asarray(t["bin_mask"]),
                           np.asarray(t["cat_mask"])], axis=1).astype(bool)


def levels_series(spec: ColumnSpec, idx: np.ndarray) -> pd.Series:
    """Level codes of a binary or categorical column as its values, in its dtype."""
    values = [spec.levels[i] for i in idx]
    if spec.dtype == "category":
        return pd.Series(pd.Categorical(values, categories=spec.levels))
    return pd.Series(values).astype(safe_dtype(spec.dtype, values))
