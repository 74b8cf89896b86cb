"""Category levels: which values are one level, their order, rare levels, spelling.

Levels compare by value and type family (:func:`level_key`): ``"1"`` (text) and ``1``
(number) are different levels, ``1``, ``1.0`` and ``np.int64(1)`` the same one.
:func:`sorted_levels` gives a column's levels in the schema's order and can leave out
levels seen fewer than a minimum number of times (detectors: values seen once).

A value that is not a level (never seen in training, or left out as rare) cannot be
named by an index: a code has to escape (the schema's escape probability) and then
*spell the value*, byte by byte, as PPM does after an escape to its order -1 context.
:func:`spelling_nats` prices the spelling: an order-0 model of the UTF-8 bytes of the
column's levels (each level counted once, plus one end-of-value symbol per level),
with the Krichevsky-Trofimov estimate ``(c + 1/2) / (N + 257/2)`` over the 256 byte
values and the end symbol, so bytes that never occur in a level still have a
probability.  The spelling costs ``-sum log p(byte) - log p(end)`` nats.

Why it belongs in a score: a mistyped or novel category ("wset" for "west") is a
value the model has no level for, and the honest price of a value is what it takes
to transmit it.  The cost grows with the value's length and with how unlike the
column's levels its bytes are; it is derived from the stored levels alone, so model
files need no new tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# Symbols of the spelling model: 256 byte values, then the end of the value.
_N_SYMBOLS = 257
_END = 256


def json_scalar(v: Any) -> Any:
    """Turn a numpy / pandas scalar into a plain JSON value (levels are stored as JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def level_key(v: Any) -> tuple[str, Any]:
    """The identity of a level: ``("b", bool)``, ``("n", float)`` or ``("s", str)``."""
    v = json_scalar(v)
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", float(v))
    return ("s", str(v))


def sorted_levels(observed: pd.Series, min_count: int = 1) -> tuple[list, int | None]:
    """Distinct values in the schema's order, and the cells left out as rare.

    Values seen fewer than ``min_count`` times are left out when at least two values
    remain; the second result counts their cells: 0 when no value is rare, ``None``
    when rare values were kept (fewer than two common ones), since their cells then
    say nothing about how often a value is new.
    """
    uniq: dict[Any, Any] = {}
    counts: dict[Any, int] = {}
    for v in observed.tolist():
        key = level_key(v)
        uniq.setdefault(key, json_scalar(v))
        counts[key] = counts.get(key, 0) + 1
    keys = sorted(uniq, key=lambda k: (k[0], k[1]))
    kept = [k for k in keys if counts[k] >= min_count]
    if len(kept) == len(keys):
        return [uniq[k] for k in keys], 0
    if len(kept) < 2:
        return [uniq[k] for k in keys], None
    return [uniq[k] for k in kept], sum(counts[k] for k in keys if counts[k] < min_count)


def literal_text(value: Any) -> str:
    """The text a value is spelled as: strings as they are, numbers in shortest
    round-trip form with integral values written without a fraction ("2", "1.5")."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f) and f.is_integer() and abs(f) < 2**53:
            return str(int(f))
        return repr(f)
    return str(value)


def byte_log_probs(levels: Sequence[Any]) -> np.ndarray:
    """Log-probabilities (nats) of the 257 spelling symbols learned from ``levels``.

    Returns
    -------
    ndarray of shape (257,), float64
        Bytes 0-255, then the end-of-value symbol.
    """
    counts = np.zeros(_N_SYMBOLS, dtype=np.float64)
    for level in levels:
        data = literal_text(level).encode("utf-8", "surrogatepass")
        counts += np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=_N_SYMBOLS)
        counts[_END] += 1.0
    return np.log(counts + 0.5) - math.log(counts.sum() + _N_SYMBOLS / 2)


def spelling_nats(values: Sequence[Any], log_probs: np.ndarray) -> np.ndarray:
    """Code length (nats) of spelling each value under ``log_probs``, float64 (n,)."""
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        data = literal_text(value).encode("utf-8", "surrogatepass")
        out[i] = -(log_probs[np.frombuffer(data, dtype=np.uint8)].sum() + log_probs[_END])
    return out
