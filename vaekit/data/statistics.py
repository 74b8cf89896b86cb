"""Statistics of a numeric column learned at fit: centre, scales, resolution, transform.

:class:`vaekit.data.TabularSchema` stores them per column (``ColumnSpec``): a robust
centre and scale (the affine map), the plain standard deviation (the unit of the
codec's error bound), the smallest gap between values (the resolution floor of the
likelihood) and whether the column gets the asinh tail compression.
"""

from __future__ import annotations

import numpy as np

IQR_TO_SD = 1.3489795  # IQR of a standard normal
# A column whose 0.5 % / 99.5 % quantiles lie further than this many robust standard
# deviations from the median (a Gaussian's are at 2.58) is heavy-tailed or skewed.
HEAVY_TAIL_LIMIT = 6.0
# ... and so is one with any value further out than this: a single value at 1e30 would
# otherwise reach the networks as is and overflow float32 (training diverges).
EXTREME_LIMIT = 1e3


def robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and a robust standard deviation (IQR, then MAD, then SD, then 1)."""
    v = values[~np.isnan(values)]
    center = float(np.median(v))
    q25, q75 = np.percentile(v, [25, 75])
    # Each fallback is computed only when the one before is degenerate (the SD also
    # overflows on values like 1e300, which the IQR ignores).
    candidates = (
        lambda: (q75 - q25) / IQR_TO_SD,
        lambda: 1.4826 * float(np.median(np.abs(v - center))),
        lambda: float(np.std(v)),
    )
    for candidate in candidates:
        scale = candidate()
        if np.isfinite(scale) and scale > 1e-12 * max(1.0, abs(center)):
            return center, float(scale)
    return center, 1.0


def finite_sd(values: np.ndarray) -> float:
    """Standard deviation of the observed values (the unit of error bounds); an SD
    that overflows float64 is stored as the largest float."""
    with np.errstate(over="ignore", invalid="ignore"):
        sd = float(np.nanstd(values))
    return sd if np.isfinite(sd) else float(np.finfo(np.float64).max)


def resolution(values: np.ndarray) -> float:
    """Smallest gap between distinct observed values (0 with fewer than two)."""
    v = np.unique(values[~np.isnan(values)])
    return float(np.min(np.diff(v))) if len(v) > 1 else 0.0


def choose_transform(values: np.ndarray, center: float, scale: float) -> str:
    """``"asinh"`` for heavy-tailed, skewed or extreme columns, else ``"affine"``."""
    v = values[~np.isnan(values)]
    u = (v - center) / scale
    lo, hi = np.percentile(u, [0.5, 99.5])
    extreme = len(u) > 0 and float(np.max(np.abs(u))) > EXTREME_LIMIT
    return "asinh" if max(-lo, hi) > HEAVY_TAIL_LIMIT or extreme else "affine"
