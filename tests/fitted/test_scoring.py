"""Scoring determinism: the inference block depends on the model and ``n_samples`` only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vaekit.fitted.backends import INFERENCE_BLOCK, NumpyBackend, TorchBackend, scoring_block


@pytest.fixture(scope="module")
def est(demo_model_file: Path):
    import vaekit

    return vaekit.load(demo_model_file)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_larger_blocks_give_the_same_scores(est, demo_features, backend) -> None:
    # Determinism needs only a block size fixed by the model; that larger blocks match
    # 256-row blocks is a property of the CPU's matmul kernels, so it is checked to
    # float rounding (on the machines measured so far it held bit for bit).
    fitted = est.fitted_
    tensors = fitted.prepare(demo_features[est.schema_.names()])
    runner = (NumpyBackend(fitted.config, fitted.weights()) if backend == "numpy"
              else TorchBackend(fitted.network, "cpu"))
    for k in (1, 2, 4, 8, 16):
        block = scoring_block(fitted.config, k)
        assert block % INFERENCE_BLOCK == 0 and block >= INFERENCE_BLOCK
        eps = fitted.noise(k)
        ref = runner.scores(tensors, eps, block=INFERENCE_BLOCK)
        for b in {block, 4 * INFERENCE_BLOCK}:
            got = runner.scores(tensors, eps, block=b)
            np.testing.assert_allclose(got.elbo, ref.elbo, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(got.recon_per_feature, ref.recon_per_feature,
                                       rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(got.kl, ref.kl, rtol=1e-5, atol=1e-4)
            again = runner.scores(tensors, eps, block=b)
            np.testing.assert_array_equal(got.elbo, again.elbo)


def test_scoring_block_depends_on_model_and_samples_only(est) -> None:
    config = est.fitted_.config
    assert scoring_block(config, 1) == 4 * INFERENCE_BLOCK
    assert scoring_block(config, 16) == INFERENCE_BLOCK
    assert scoring_block(config, 64) == INFERENCE_BLOCK
    assert scoring_block({"kind": "image", "architecture": "conv"}, 1) == INFERENCE_BLOCK
    assert scoring_block({"kind": "image", "architecture": "mlp"}, 1) == INFERENCE_BLOCK
