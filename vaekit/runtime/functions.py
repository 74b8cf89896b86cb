"""Elementwise maths of the networks and likelihoods, numpy float32 (nats where log).

Each mirrors the torch function of the same name in :mod:`vaekit.core` (SiLU,
softplus, the soft clamp, log-sigmoid, log-softmax, the log-densities), and computes
into fresh contiguous arrays: strided slices are copied once, up front, because
elementwise kernels on them are several times slower.
"""

from __future__ import annotations

import math

import numpy as np

from .constants import LOG_2PI, MAX_STANDARDIZED


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), accurate at both ends."""
    out = np.negative(np.abs(x))
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(x, 0.0)
    return out


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), in place on ``x`` (a fresh matmul output)."""
    t = np.negative(x)
    with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88: x / inf = -0, the limit
        np.exp(t, out=t)
    t += 1.0
    np.divide(x, t, out=x)
    return x


def silu_of_half(h: np.ndarray) -> np.ndarray:
    """SiLU(x) given ``h = x / 2``, in place on ``h`` (a fresh matmul output).

    x * sigmoid(x) = h * (1 + tanh(h)): three passes (numpy's float32 tanh is
    vectorised) instead of four with exp and a division.  The layer before computes
    ``h`` directly with its weights and bias halved, which is exact (a power of two).
    """
    t = np.tanh(h)
    t += np.float32(1.0)
    np.multiply(h, t, out=h)
    return h


def row_sums(x: np.ndarray) -> np.ndarray:
    """Sums over the last axis, as one ``ones @ x^T`` product.

    numpy's own reduction over a short last axis (tens of features, a few latent
    dimensions) runs a pairwise loop per row and is several times slower.  The
    ``W @ x^T`` form gives each row the same summation order wherever it sits in the
    block (see :func:`vaekit.core.networks.row_invariant_linear`) when the number of
    rows is a multiple of 4 (OpenBLAS takes another kernel for a remainder): scoring
    blocks are (:func:`.bound.score_rows` checks).
    """
    d = x.shape[-1]
    flat = x.reshape(-1, d)
    out = np.ones((1, d), dtype=x.dtype) @ flat.T
    return out.reshape(x.shape[:-1])


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.negative(softplus(np.negative(x)))


def soft_clamp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Smoothly keep ``x`` within (lo, hi) (:func:`vaekit.core.networks.soft_clamp`)."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    return hi32 - softplus(hi32 - (lo32 + softplus(x - lo32)))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def gaussian_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension, closed form, nats, in the
    inputs' dtype (:func:`vaekit.core.objectives.kl_per_dimension`)."""
    return 0.5 * (mu * mu + np.exp(logvar) - 1.0 - logvar)


def gaussian_log_prob(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """log N(x; mean, scale^2), elementwise, nats (saturating as the torch version)."""
    z = gaussian_log_kernel(x, mean, np.array(scale, dtype=np.float32, copy=True))
    z -= np.float32(0.5 * LOG_2PI)
    return z


def gaussian_log_kernel(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """log N(x; mean, scale^2) + log(2 pi) / 2: the part that varies with ``mean`` and
    ``scale``, nats.  Overwrites ``scale`` (a fresh array) with its logarithm."""
    z = np.subtract(x, mean)
    z /= scale
    np.clip(z, -MAX_STANDARDIZED, MAX_STANDARDIZED, out=z)
    z *= z
    z *= np.float32(-0.5)
    z -= np.log(scale, out=scale)
    return z


def _log1mexp(x: np.ndarray) -> np.ndarray:
    x = np.minimum(x, np.float32(-1e-12))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > -math.log(2.0), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def discretized_logistic_log_prob(x: np.ndarray, mean: np.ndarray, log_scale: np.ndarray,
                                  n_levels: int = 256) -> np.ndarray:
    """8-bit pixels under a discretized logistic, nats
    (:func:`vaekit.core.likelihoods.discretized_logistic_log_prob`)."""
    half = np.float32(0.5 / (n_levels - 1))
    inv_s = np.exp(-log_scale)
    upper = (x + half - mean) * inv_s
    lower = (x - half - mean) * inv_s
    flip = (upper + lower) > 0
    a = np.where(flip, -lower, upper)
    b = np.where(flip, -upper, lower)
    log_a = log_sigmoid(a)
    interior = log_a + _log1mexp(log_sigmoid(b) - log_a)
    first = log_sigmoid(upper)
    last = log_sigmoid(-lower)
    return np.where(x < half, first, np.where(x > 1.0 - half, last, interior))
