"""Quantizing latent means to integer codes, with bits spent where the model knows something.

A row is stored as its posterior mean ``mu`` (one value per latent dimension),
quantized per dimension by a uniform quantizer::

    code  = clip(floor((mu - lo) / step), 0, 2**bits - 1)
    value = lo + (code + 0.5) * step                 (bits > 0)
    value = center                                   (bits = 0: nothing stored)

How many bits each dimension gets (the *bit allocation*):

* A dimension whose mean KL to the prior is below :data:`KL_MIN` nats is
  posterior-collapsed: the encoder says the same thing for every row, so it costs
  0 bits and decodes as ``center``.
* Informative dimensions get bits greedily, one at a time, to the dimension whose
  current step is largest *relative to its posterior standard deviation*
  ``sigma_j``.  The decoder was trained on codes blurred by noise of about
  ``sigma_j``, so its sensitivity to an error in dimension ``j`` scales like
  ``1 / sigma_j``: minimizing ``sum_j (step_j / sigma_j)**2`` (the quantization
  noise as the decoder sees it) is reverse water-filling on that weighted error,
  and the greedy order solves it exactly for uniform quantizers.  A PCA baseline
  uses the same code with ``sigma_j = 1`` (plain squared error).  A budgeted
  :class:`~vaekit.VAECompressor` with a linear (PCA) path passes
  ``sigma_j = 1 / (RMS norm of the decoder's Jacobian column j)`` instead: the
  first-order size of the reconstruction error per unit of latent error, which
  for its PCA start is exactly the PCA baseline's allocation.
* The range of dimension ``j`` is ``center_j +- h(bits_j) * scale_j`` where
  ``scale_j`` is the spread (standard deviation) of the means across rows and
  ``h(b) = 1.3 + 0.33 b`` follows the optimum of a uniform quantizer for a
  Gaussian source (Max, 1960: 1.60, 1.99, 2.34, 2.68 standard deviations for 1, 2,
  3, 4 bits) and keeps widening slowly, so coarse codes do not waste levels on
  the tails and fine ones do not clip them.

:func:`fit_quantizer` turns a budget into an allocation; with a budget in bytes
per row and sample means it measures the real entropy-coded size
(:func:`vaekit.codec.packing.pack_codes`) and takes the largest allocation that
fits, so the zstd stage's savings are spent on more bits rather than left unused.

Everything here is plain numpy in float64 and deterministic; the parameters are a
JSON object (:meth:`LatentQuantizer.to_dict`) stored in model files and
container headers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .limits import MAX_BYTES_PER_ROW  # noqa: F401  (re-exported)
from .packing import MAX_BITS, pack_codes

__all__ = [
    "KL_MIN",
    "QUANTIZER_VERSION",
    "LatentQuantizer",
    "allocate_bits",
    "fit_quantizer",
    "halfwidth",
    "payload_bytes_per_row",
]

QUANTIZER_VERSION = 1
# Mean KL (nats per row) under which a latent dimension counts as collapsed.  A
# 1-bit code carries up to ln 2 = 0.69 nats; a dimension that tells the decoder
# less than 1/35 of that is indistinguishable from the prior for every row.
KL_MIN = 0.02
# Smallest usable spread of the means (latent units): guards the step against 0.
_MIN_SCALE = 1e-6



def halfwidth(bits: int | np.ndarray) -> np.ndarray:
    """Half-width of the quantizer range, in standard deviations of the means.

    ``1.3 + 0.33 * bits``: within 0.06 of the optimal fixed-rate uniform quantizer
    of a Gaussian for 1-4 bits (Max, 1960), widening slowly beyond.
    """
    return 1.3 + 0.33 * np.asarray(bits, dtype=np.float64)


def _steps(bits: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Step sizes (latent units) of dimensions with ``bits`` bits and spreads ``scale``."""
    return 2.0 * halfwidth(bits) * scale / np.exp2(bits)


@dataclass(frozen=True)
class LatentQuantizer:
    """Per-dimension uniform quantizer of latent means (see the module docstring).

    Attributes
    ----------
    bits : tuple of int
        Bits per latent dimension, each in ``[0, 16]``; 0 = not stored.
    lo : tuple of float
        Lower end of each dimension's range (latent units).
    step : tuple of float
        Step size per dimension (latent units; unused where ``bits`` is 0).
    center : tuple of float
        Value a 0-bit dimension decodes to (latent units).
    """

    bits: tuple[int, ...]
    lo: tuple[float, ...]
    step: tuple[float, ...]
    center: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.bits)
        if not (len(self.lo) == len(self.step) == len(self.center) == n):
            raise ValueError("quantizer fields bits, lo, step, center differ in length")
        for j, b in enumerate(self.bits):
            if not 0 <= int(b) <= MAX_BITS:
                raise ValueError(f"bits[{j}] = {b}: bit widths must be in [0, {MAX_BITS}]")
            if b and not (math.isfinite(self.step[j]) and self.step[j] > 0):
                raise ValueError(f"step[{j}] = {self.step[j]} must be a positive number")

    @property
    def n_dims(self) -> int:
        """Latent dimensions (stored or not)."""
        return len(self.bits)

    @property
    def total_bits(self) -> int:
        """Bits per row before entropy coding (the raw code size)."""
        return int(sum(self.bits))

    def encode(self, means: np.ndarray) -> np.ndarray:
        """Latent means (n, n_dims) -> integer codes (n, n_dims), int64.

        Non-finite means are a bug upstream (the encoder bounds its output) and raise.
        """
        mu = np.asarray(means, dtype=np.float64)
        if mu.ndim != 2 or mu.shape[1] != self.n_dims:
            raise ValueError(f"means must have shape (n, {self.n_dims}), got {mu.shape}")
        if not np.isfinite(mu).all():
            raise ValueError("latent means contain NaN or inf")
        bits = np.asarray(self.bits, dtype=np.int64)
        step = np.where(bits > 0, np.asarray(self.step, dtype=np.float64), 1.0)
        codes = np.floor((mu - np.asarray(self.lo)) / step)
        top = np.exp2(bits).astype(np.float64) - 1.0
        return np.clip(codes, 0.0, top).astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Integer codes (n, n_dims) -> latent values (n, n_dims), float64."""
        k = np.asarray(codes, dtype=np.float64)
        if k.ndim != 2 or k.shape[1] != self.n_dims:
            raise ValueError(f"codes must have shape (n, {self.n_dims}), got {k.shape}")
        bits = np.asarray(self.bits)
        values = np.asarray(self.lo) + (k + 0.5) * np.asarray(self.step)
        return np.where(bits > 0, values, np.asarray(self.center))

    def coarsened(self, r: int) -> LatentQuantizer:
        """This quantizer with ``r`` fewer bits per stored dimension (FORMAT.md, "Bounded
        values", "Payload"): ``max(bits - r, 0)`` bits over the same range, cells ``2^r``
        times as wide; a dimension left with 0 bits decodes to the middle of its range.

        Raises ``ValueError`` when a coarse step or center is not finite (a stranger's
        quantizer with steps near the float64 limit)."""
        if r == 0:
            return self
        bits = tuple(max(int(b) - r, 0) for b in self.bits)
        step = tuple(float(s) * 2.0 ** (int(b) - nb) if b else float(s)
                     for s, b, nb in zip(self.step, self.bits, bits, strict=True))
        center = tuple(float(c) if nb or not b else float(lo) + float(s) * 2.0 ** int(b) / 2
                       for c, lo, s, b, nb in zip(self.center, self.lo, self.step, self.bits,
                                                  bits, strict=True))
        if not all(math.isfinite(v) for v in (*step, *center)):
            raise ValueError(f"coarsened by {r} bits, a step or center is not finite")
        return LatentQuantizer(bits, tuple(self.lo), step, center)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable parameters (floats round-trip exactly through JSON)."""
        return {
            "version": QUANTIZER_VERSION,
            "method": "uniform",
            "bits": [int(b) for b in self.bits],
            "lo": [float(v) for v in self.lo],
            "step": [float(v) for v in self.step],
            "center": [float(v) for v in self.center],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatentQuantizer:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on unknown or bad params.

        The dict may come from a stranger's file: every field is type-checked (ints
        are ints, floats are finite JSON numbers, never strings or booleans), so a
        damaged file is a ``ValueError`` naming the field, never a ``TypeError``.
        """
        if not isinstance(d, dict):
            raise ValueError(f"quantizer must be an object, not {type(d).__name__}")
        if d.get("version") != QUANTIZER_VERSION or d.get("method") != "uniform":
            raise ValueError(
                f"unknown quantizer (version {d.get('version')!r}, method {d.get('method')!r})"
            )
        fields = {}
        for key in ("bits", "lo", "step", "center"):
            values = d.get(key)
            if not isinstance(values, list):
                raise ValueError(f"quantizer parameters are incomplete: {key!r} is not a list")
            for j, v in enumerate(values):
                ok = isinstance(v, int) if key == "bits" else (
                    isinstance(v, (int, float)) and math.isfinite(v))
                if isinstance(v, bool) or not ok:
                    kind = "an int" if key == "bits" else "a finite number"
                    raise ValueError(f"quantizer {key}[{j}] = {v!r} is not {kind}")
            fields[key] = tuple(int(v) if key == "bits" else float(v) for v in values)
        return cls(**fields)

    @classmethod
    def from_bits(cls, bits: Sequence[int], center: np.ndarray,
                  scale: np.ndarray) -> LatentQuantizer:
        """Quantizer with the given bits; ranges ``center +- halfwidth(bits) * scale``."""
        b = np.asarray([int(v) for v in bits], dtype=np.int64)
        center = np.asarray(center, dtype=np.float64)
        scale = np.maximum(np.asarray(scale, dtype=np.float64), _MIN_SCALE)
        lo = center - halfwidth(b) * scale
        step = _steps(b, scale)
        return cls(bits=tuple(int(v) for v in b), lo=tuple(lo.tolist()),
                   step=tuple(step.tolist()), center=tuple(center.tolist()))


def allocate_bits(scale: np.ndarray, precision: np.ndarray, active: np.ndarray,
                  total_bits: int | None, max_bits: int = MAX_BITS) -> np.ndarray:
    """Greedy bit allocation: each next bit to the coarsest dimension relative to its precision.

    Parameters
    ----------
    scale : ndarray (d,)
        Spread of the means per dimension (latent units).
    precision : ndarray (d,)
        Error scale the decoder tolerates per dimension (posterior SD; 1 for PCA).
    active : ndarray of bool (d,)
        Dimensions that may get bits.
    total_bits : int or None
        Bits per row to hand out.  ``None``: give every active dimension the fewest
        bits that make its step no larger than its precision ("as fine as the
        model can tell apart").
    max_bits : int
        Cap per dimension.

    Returns
    -------
    ndarray of int64 (d,)
        Bits per dimension.  Deterministic: ties go to the lowest index.
    """
    scale = np.maximum(np.asarray(scale, dtype=np.float64), _MIN_SCALE)
    precision = np.maximum(np.asarray(precision, dtype=np.float64), _MIN_SCALE)
    active = np.asarray(active, dtype=bool)
    bits = np.zeros(len(scale), dtype=np.int64)
    if total_bits is None:
        for j in np.flatnonzero(active):
            while bits[j] < max_bits and _steps(bits[j], scale[j]) > precision[j]:
                bits[j] += 1
        return bits
    order = _greedy_order(scale, precision, active, int(total_bits), max_bits)
    return np.bincount(order, minlength=len(scale)).astype(np.int64)


def _greedy_order(scale: np.ndarray, precision: np.ndarray, active: np.ndarray, total_bits: int,
                  max_bits: int = MAX_BITS) -> np.ndarray:
    """The dimension that gets each successive bit under :func:`allocate_bits`'s rule.

    Each choice depends only on the bits already handed out, so the allocation for
    ``t`` bits is the first ``t`` entries of this order: a search over totals needs
    the greedy loop once.
    """
    scale = np.maximum(np.asarray(scale, dtype=np.float64), _MIN_SCALE)
    precision = np.maximum(np.asarray(precision, dtype=np.float64), _MIN_SCALE)
    active = np.asarray(active, dtype=bool)
    bits = np.zeros(len(scale), dtype=np.int64)
    n = min(int(total_bits), int(active.sum()) * max_bits)
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        ratio = np.where(active & (bits < max_bits), _steps(bits, scale) / precision, -np.inf)
        j = int(np.argmax(ratio))
        bits[j] += 1
        order[i] = j
    return order


def fit_quantizer(*, center: np.ndarray, scale: np.ndarray, precision: np.ndarray,
                  kl: np.ndarray | None = None, bits: int | Sequence[int] | None = None,
                  bytes_per_row: float | None = None, sample: np.ndarray | None = None,
                  chunk_rows: int = 4096) -> LatentQuantizer:
    """Choose a quantizer for latent means from per-dimension statistics.

    Parameters
    ----------
    center, scale : ndarray (d,)
        Mean and standard deviation of the latent means across rows (latent units).
    precision : ndarray (d,)
        Posterior standard deviation per dimension (RMS over rows); 1s for PCA.
    kl : ndarray (d,), optional
        Mean KL to the prior per dimension (nats).  Dimensions under
        :data:`KL_MIN` get 0 bits.  ``None``: every dimension is informative.
    bits : int or sequence of int, optional
        Expert setting: bits per dimension (one int = the same for all
        informative dimensions).  Overrides the budget.
    bytes_per_row : float, optional
        Budget for the entropy-coded codes, in bytes per row.  With ``sample`` the
        allocation is the largest (in greedy order) whose measured
        :func:`~vaekit.codec.packing.pack_codes` size on the sample, in chunks of
        ``chunk_rows``, is at most the budget; without it, ``8 * bytes_per_row``
        raw bits (entropy coding then only makes it smaller).
    sample : ndarray (n, d), optional
        Representative latent means (e.g. of the training rows) for the measurement.
    chunk_rows : int
        Rows per chunk the codes will be packed in (the per-chunk framing is
        included in the measured size, so small samples give a safe estimate).

    Returns
    -------
    LatentQuantizer
        When neither ``bits`` nor ``bytes_per_row`` is given, each informative
        dimension gets the fewest bits that make its step at most its posterior SD.
    """
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    d = len(center)
    active = np.ones(d, dtype=bool) if kl is None else np.asarray(kl, dtype=np.float64) >= KL_MIN
    if bits is not None:
        if isinstance(bits, (int, np.integer)):
            alloc = np.where(active, int(bits), 0)
        else:
            alloc = np.asarray([int(b) for b in bits], dtype=np.int64)
            if len(alloc) != d:
                raise ValueError(f"bits has {len(alloc)} entries; the model has {d} latent "
                                 "dimensions")
        return LatentQuantizer.from_bits(alloc, center, scale)
    if bytes_per_row is None:
        return LatentQuantizer.from_bits(allocate_bits(scale, precision, active, None),
                                         center, scale)
    budget_bits = int(math.floor(8 * float(bytes_per_row)))
    if sample is None:
        return LatentQuantizer.from_bits(allocate_bits(scale, precision, active, budget_bits),
                                         center, scale)
    sample = np.asarray(sample, dtype=np.float64)
    cap = int(np.asarray(active, dtype=bool).sum()) * MAX_BITS
    order = _greedy_order(scale, precision, active, cap)

    def alloc(total: int) -> np.ndarray:
        return np.bincount(order[:total], minlength=len(scale)).astype(np.int64)

    def fits(total: int) -> bool:
        q = LatentQuantizer.from_bits(alloc(total), center, scale)
        return payload_bytes_per_row(q, sample, chunk_rows) <= bytes_per_row

    # Entropy coding only ever shrinks the code (pack_codes keeps the smaller
    # layout, so the stored size is <= raw bits / 8 + a small frame), so the
    # answer lies in [raw budget, cap]; the size grows with the total bits.
    lo_t = min(budget_bits, cap)
    while lo_t > 0 and not fits(lo_t):
        lo_t -= max(1, lo_t // 16)  # tiny budgets: the per-chunk frame may not fit
    hi_t = cap
    while lo_t < hi_t:
        mid = (lo_t + hi_t + 1) // 2
        if fits(mid):
            lo_t = mid
        else:
            hi_t = mid - 1
    return LatentQuantizer.from_bits(alloc(max(lo_t, 0)), center, scale)


def payload_bytes_per_row(quantizer: LatentQuantizer, means: np.ndarray,
                          chunk_rows: int = 4096) -> float:
    """Entropy-coded size of the codes of ``means``, in bytes per row.

    Packs ``means`` in chunks of ``chunk_rows`` rows exactly as a container chunk
    stores its codes (:func:`~vaekit.codec.packing.pack_codes`), so the per-chunk
    framing (layout byte, zstd frame header and checksum) is included.
    """
    means = np.asarray(means, dtype=np.float64)
    n = len(means)
    if n == 0:
        return 0.0
    total = 0
    for start in range(0, n, chunk_rows):
        codes = quantizer.encode(means[start:start + chunk_rows])
        total += len(pack_codes(codes, quantizer.bits))
    return total / n
