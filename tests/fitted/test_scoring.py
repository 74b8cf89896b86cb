"""Scoring determinism: the inference block depends on the model and ``n_samples`` only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.core.batching import INFERENCE_BLOCK
from vaekit.fitted.scoring import score_rows, scoring_block


@pytest.fixture(scope="module")
def est(demo_model_file: Path):
    import vaekit

    return vaekit.load(demo_model_file)


def test_larger_blocks_give_the_same_scores(est, demo_features) -> None:
    # Determinism needs only a block size fixed by the model; that larger blocks match
    # 256-row blocks is a property of the CPU's matmul kernels, so it is checked to
    # float rounding (on the machines measured so far it held bit for bit).
    tensors = est.schema_.encode(demo_features[est.schema_.names()])
    for k in (1, 2, 4, 8, 16):
        block = scoring_block(est.model_, k)
        assert block % INFERENCE_BLOCK == 0 and block >= INFERENCE_BLOCK
        ref = score_rows(est.model_, tensors, n_samples=k, seed=est.seed_, block=INFERENCE_BLOCK)
        for b in {block, 4 * INFERENCE_BLOCK}:
            got = score_rows(est.model_, tensors, n_samples=k, seed=est.seed_, block=b)
            np.testing.assert_allclose(got.elbo, ref.elbo, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(got.recon_per_feature, ref.recon_per_feature,
                                       rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(got.kl, ref.kl, rtol=1e-5, atol=1e-4)
            again = score_rows(est.model_, tensors, n_samples=k, seed=est.seed_, block=b)
            np.testing.assert_array_equal(got.elbo, again.elbo)


def test_scoring_block_depends_on_model_and_samples_only(est) -> None:
    assert scoring_block(est.model_, 1) == 4 * INFERENCE_BLOCK
    assert scoring_block(est.model_, 16) == INFERENCE_BLOCK
    assert scoring_block(est.model_, 64) == INFERENCE_BLOCK
    image_like = torch.nn.Module()
    image_like.config = {"kind": "image", "architecture": "conv"}  # type: ignore[assignment]
    assert scoring_block(image_like, 1) == INFERENCE_BLOCK  # type: ignore[arg-type]
