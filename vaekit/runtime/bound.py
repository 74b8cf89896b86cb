"""Per-row bound terms (ELBO / IWAE) of the numpy network, in fixed-shape blocks.

The same quantities as :func:`vaekit.core.objectives.iwae_terms` (see there for the
per-feature split of the importance-weighted bound).  Rows go through in blocks of a
fixed number of rows, the last one padded, so a row's result never depends on the
other rows, the chunking or the threads (BLAS runs on one thread: parallelism comes
from scoring several chunks at once).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from . import functions as fn
from .network import NumpyVAE

Batch = dict[str, np.ndarray]


def padded_blocks(batch: Batch, block: int) -> Iterator[tuple[Batch, int]]:
    """``(rows, n_real)`` blocks of exactly ``block`` rows; the last repeats its last row."""
    n = next(iter(batch.values())).shape[0]
    for start in range(0, n, block):
        stop = min(n, start + block)
        if stop - start == block:
            # A fresh C-ordered copy, not a view at whatever offset the slice starts:
            # some BLAS kernels take another path for another alignment (as
            # core.batching clones).
            yield {k: np.array(v[start:stop], order="C", copy=True)
                   for k, v in batch.items()}, block
            continue
        index = np.minimum(np.arange(start, start + block), stop - 1)
        yield {k: v[index] for k, v in batch.items()}, stop - start


def map_blocks(fn: Callable[[Batch], tuple[np.ndarray | None, ...]], batch: Batch,
               block: int, float64: bool = True) -> list[np.ndarray | None]:
    """Apply ``fn`` to fixed-shape blocks; concatenate each output (as float64 unless
    ``float64`` is False: then in its own dtype)."""
    pieces: list[list[np.ndarray]] = []
    outs: tuple[np.ndarray | None, ...] = ()
    for b, n_real in padded_blocks(batch, block):
        outs = fn(b)
        if not pieces:
            pieces = [[] for _ in outs]
        for acc, out in zip(pieces, outs, strict=True):
            if out is not None:
                acc.append(out[:n_real].astype(np.float64) if float64 else out[:n_real])
    return [np.concatenate(acc) if acc else None for acc in pieces]


def block_terms(net: NumpyVAE, batch: Batch, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(recon_per_feature, kl)`` of one block, float32, nats."""
    mu, logvar = net.encode(batch["x"], fast=True)
    k = eps.shape[0]
    sd = np.exp(np.float32(0.5) * logvar)
    z = mu[None] + sd[None] * eps[:, None, :]  # (k, n, d)
    varying, offset = net.log_prob_parts(net.decode(z, fast=True), batch)  # (k, n, F), (n, F)
    if k == 1:
        # The ELBO with the closed-form KL (lower variance than a one-sample estimate).
        kl = fn.row_sums(fn.gaussian_kl(mu, logvar))
        loglik = varying[0]
        return (loglik if offset is None else loglik + offset), kl
    # log p(z) - log q(z|x) per draw, 2 pi cancelling; (z - mu) / sd is the draw itself.
    latent = (np.float32(-0.5) * fn.row_sums(z * z)
              + np.float32(0.5) * (fn.row_sums(logvar)[None] + fn.row_sums(eps * eps)[:, None]))
    # The offset is the same for every draw: it cancels in the weights.
    log_w = fn.row_sums(varying) + latent
    # a = softmax(log_w) over the draws: the importance weights.
    a = np.exp(log_w - log_w.max(axis=0))
    a /= a.sum(axis=0)
    pf = np.einsum("kn,knf->nf", a, varying)
    if offset is not None:
        pf += offset
    tiny = np.finfo(np.float32).tiny
    entropy = -(a * np.log(np.maximum(a, tiny))).sum(axis=0)
    kl = -((a * latent).sum(axis=0) + entropy - np.float32(math.log(k)))
    return pf, kl


def score_rows(net: NumpyVAE, batch: Batch, eps: np.ndarray,
               block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(recon_per_feature, elbo, kl)`` for every row, float64 nats; the bound is
    summed from the per-feature terms in float64, so they add up to it exactly."""
    if block <= 0 or block % 4:
        # row_sums keeps a row's bits wherever it sits only for whole groups of 4 rows
        raise ValueError(f"block must be a positive multiple of 4 rows, not {block}")
    eps = np.asarray(eps, dtype=np.float32)
    pf, kl = map_blocks(lambda b: block_terms(net, b, eps), batch, block)
    assert pf is not None and kl is not None
    return pf, pf.sum(axis=1) - kl, kl


def encode_rows(net: NumpyVAE, x: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances of every row, float64."""
    # The fast evaluation: codes are chosen once, when written, and never recomputed
    # by a reader (only the decoder's floats must stay the same across versions).
    mu, logvar = map_blocks(lambda b: net.encode(b["x"], fast=True), {"x": x}, block)
    assert mu is not None and logvar is not None
    return mu, logvar


def decode_rows(net: NumpyVAE, z: np.ndarray, block: int,
                scales: bool = False) -> list[np.ndarray]:
    """Point reconstructions (:meth:`NumpyVAE.mean`) of codes ``z``; with ``scales``
    (tables) the numeric columns' Gaussian scales (:meth:`NumpyVAE.numeric`) appended,
    from the same decoder pass."""

    def run(b: Batch) -> tuple[np.ndarray, ...]:
        params = net.decode(b["z"])
        means = net.mean(params)
        return (*means, net.numeric(params)[1]) if scales else means

    outs = map_blocks(run, {"z": np.ascontiguousarray(z, dtype=np.float32)}, block,
                      float64=False)
    return [o for o in outs if o is not None]
