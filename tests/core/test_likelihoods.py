"""Likelihood heads against independent reference computations."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from vaekit.core.likelihoods import (
    bernoulli_log_prob,
    categorical_log_prob,
    discretized_logistic_log_prob,
    gaussian_log_prob,
)


def test_gaussian_includes_all_constants() -> None:
    x = torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64)
    mean = torch.tensor([0.0, -1.0, 4.0], dtype=torch.float64)
    scale = torch.tensor([1.0, 0.5, 3.0], dtype=torch.float64)
    got = gaussian_log_prob(x, mean, scale).numpy()
    want = stats.norm.logpdf(x.numpy(), loc=mean.numpy(), scale=scale.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # Standard normal at 0: -0.5 log(2 pi).
    assert math.isclose(
        gaussian_log_prob(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(1.0)).item(),
        -0.5 * math.log(2 * math.pi), rel_tol=1e-6)


def test_bernoulli_and_categorical() -> None:
    logits = torch.tensor([0.0, 2.0, -3.0], dtype=torch.float64)
    x = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    p = 1 / (1 + np.exp(-logits.numpy()))
    want = np.log(np.where(x.numpy() == 1, p, 1 - p))
    np.testing.assert_allclose(bernoulli_log_prob(x, logits).numpy(), want, rtol=1e-12)
    block = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    idx = torch.tensor([2, 1])
    want = [3 - np.log(np.exp([1, 2, 3]).sum()), -np.log(3)]
    np.testing.assert_allclose(categorical_log_prob(idx, block).numpy(), want, rtol=1e-12)


def test_discretized_logistic_is_a_distribution_over_256_levels() -> None:
    levels = torch.arange(256, dtype=torch.float64) / 255
    for mean, log_scale in [(0.5, -3.0), (0.0, -6.0), (1.0, -1.0), (0.3, -9.0), (-2.0, 0.5)]:
        lp = discretized_logistic_log_prob(levels, torch.tensor(mean, dtype=torch.float64),
                                           torch.tensor(log_scale, dtype=torch.float64))
        assert torch.all(lp <= 1e-12)
        assert math.isclose(torch.logsumexp(lp, 0).exp().item(), 1.0, rel_tol=1e-9)


def test_discretized_logistic_matches_cdf_differences() -> None:
    x = torch.tensor([0.0, 10 / 255, 128 / 255, 1.0], dtype=torch.float64)
    mean, s = 0.45, 0.07
    cdf = stats.logistic(loc=mean, scale=s).cdf
    h = 0.5 / 255
    want = [cdf(h), cdf(10 / 255 + h) - cdf(10 / 255 - h), cdf(128 / 255 + h) - cdf(128 / 255 - h),
            1 - cdf(1 - h)]
    got = discretized_logistic_log_prob(x, torch.tensor(mean, dtype=torch.float64),
                                        torch.tensor(math.log(s), dtype=torch.float64))
    np.testing.assert_allclose(got.exp().numpy(), want, rtol=1e-9)


def test_discretized_logistic_is_finite_far_in_the_tails() -> None:
    x = torch.tensor([0.5, 0.9], dtype=torch.float64)
    lp = discretized_logistic_log_prob(x, torch.tensor(0.0, dtype=torch.float64),
                                       torch.tensor(-7.0, dtype=torch.float64))
    assert torch.isfinite(lp).all()
    assert (lp < -100).all()
