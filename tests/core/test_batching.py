"""Fixed-shape inference blocks."""

from __future__ import annotations

import torch

from vaekit.core.batching import padded_blocks


def test_padded_blocks_cover_every_row_once() -> None:
    x = torch.arange(10 * 3, dtype=torch.float32).reshape(10, 3)
    blocks = list(padded_blocks({"x": x}, torch.device("cpu"), block=4))
    assert [n for _, n in blocks] == [4, 4, 2]
    assert all(b["x"].shape == (4, 3) and b["x"].is_contiguous() for b, _ in blocks)
    assert all(b["x"].data_ptr() != x.data_ptr() for b, _ in blocks)  # copies, not views
    rows = torch.cat([b["x"][:n] for b, n in blocks])
    assert torch.equal(rows, x)
    assert torch.equal(blocks[-1][0]["x"][2:], x[[9, 9]])  # padded with the last row
