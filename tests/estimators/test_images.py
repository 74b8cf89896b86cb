"""The image path on real MNIST digits from ../shared (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit import VAEAnomalyDetector, VAECompressor

from ..conftest import MNIST


@pytest.fixture(scope="module")
def mnist() -> np.ndarray:
    if not MNIST.exists():
        pytest.skip(f"{MNIST} not available")
    with np.load(MNIST, allow_pickle=False) as f:
        return f["data"][:1200]


def test_conv_vae_learns_mnist(mnist: np.ndarray) -> None:
    comp = VAECompressor(epochs=3, random_state=0).fit(mnist[:1000])
    assert comp.config_["architecture"] == "conv"
    hist = comp.history_
    assert hist[-1]["val_elbo"] > hist[0]["val_elbo"]
    # A proper log-probability of 8-bit pixels: negative, and far better than uniform
    # (784 * log 256 = 4347 nats).
    mean_elbo = comp.score(mnist[1000:])  # nats per image
    assert -4347 < mean_elbo < 0
    out = comp.inverse_transform(comp.transform(mnist[1000:1010]))
    assert out.shape == (10, 28, 28) and out.dtype == np.uint8


def test_mnist_detector_flags_noise(mnist: np.ndarray) -> None:
    det = VAEAnomalyDetector(epochs=3, random_state=0, n_samples=4).fit(mnist[:1000])
    noise = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    normal = det.anomaly_score(mnist[1000:1100])
    assert det.anomaly_score(noise).min() > normal.max()
