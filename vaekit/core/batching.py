"""Row batching helpers, including fixed-shape blocks for reproducible inference."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..runtime.constants import INFERENCE_BLOCK

Batch = dict[str, torch.Tensor]


def n_rows(batch: Batch) -> int:
    return int(next(iter(batch.values())).shape[0])


def take(batch: Batch, index: torch.Tensor) -> Batch:
    """Rows ``index`` of every tensor in a batch."""
    return {k: v[index] for k, v in batch.items()}


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


def _rows(v: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    # A fresh contiguous copy, like the gather below: every block gets newly
    # allocated (equally aligned) memory, so kernels see the same layout whatever
    # the block's position in the batch.
    return v[start:stop].clone(memory_format=torch.contiguous_format)


def padded_blocks(batch: Batch, device: torch.device,
                  block: int = INFERENCE_BLOCK) -> Iterator[tuple[Batch, int]]:
    """Yield ``(block_batch, n_real)``: blocks of exactly ``block`` rows on ``device``.

    The last block is padded by repeating its last row; callers keep the first
    ``n_real`` rows of whatever they compute.
    """
    n = n_rows(batch)
    for start in range(0, n, block):
        stop = min(n, start + block)
        if stop - start == block:  # a full block: a plain copy, cheaper than a gather
            yield to_device({k: _rows(v, start, stop) for k, v in batch.items()}, device), block
            continue
        index = torch.arange(start, start + block).clamp_max(stop - 1)
        yield to_device(take(batch, index), device), stop - start


def map_blocks(fn: Callable[[Batch], tuple[torch.Tensor, ...]], batch: Batch,
               device: torch.device, block: int = INFERENCE_BLOCK) -> list[torch.Tensor]:
    """Apply ``fn`` to fixed-shape blocks and concatenate each output on the CPU (float64)."""
    pieces: list[list[torch.Tensor]] = []
    for b, n_real in padded_blocks(batch, device, block):
        outs = fn(b)
        if not pieces:
            pieces = [[] for _ in outs]
        for acc, out in zip(pieces, outs, strict=False):
            acc.append(out[:n_real].double().cpu())
    return [torch.cat(acc) for acc in pieces]


def as_tensors(batch: dict) -> Batch:
    """Prepared rows (numpy arrays, :meth:`vaekit.fitted.FittedVAE.prepare`) as CPU
    tensors sharing their memory; tensors pass through."""
    return {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
            for k, v in batch.items()}
