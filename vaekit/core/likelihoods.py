"""Log-likelihood heads p(x|z) per column kind, as functions of tensors (nats).

Every function returns elementwise log-probabilities or log-densities with all
constants included, so sums of them are honest log-likelihoods in nats.
Leading dimensions broadcast, which lets the same code evaluate k importance
samples at once (shape ``(k, n, ...)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.constants import LOG_2PI, LOG_LEVELS_M1, MAX_STANDARDIZED


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, scale^2), elementwise, in nats (includes -0.5 log 2 pi).

    Saturates at ``|x - mean| / scale = 1e15`` (about -5e29 nats) so that absurd
    values give a finite, lowest-possible score rather than overflowing float32.
    """
    z = ((x - mean) / scale).clamp(-MAX_STANDARDIZED, MAX_STANDARDIZED)
    return -0.5 * LOG_2PI - torch.log(scale) - 0.5 * z * z


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; sigmoid(logits)) for x in {0, 1}, elementwise, in nats."""
    return x * logits - F.softplus(logits)


def categorical_log_prob(index: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[index]; ``logits`` has the categories in its last axis."""
    logp = torch.log_softmax(logits, dim=-1)
    index = index.expand(logp.shape[:-1])
    return torch.gather(logp, -1, index.unsqueeze(-1)).squeeze(-1)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, accurate over the whole range (Maechler, 2012)."""
    x = torch.clamp(x, max=-1e-12)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def discretized_logistic_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, n_levels: int = 256
) -> torch.Tensor:
    """Log-probability of 8-bit pixels under a discretized logistic, in nats.

    Pixel values ``x`` lie on the grid ``{0, 1/(L-1), ..., 1}`` with ``L = n_levels``.
    Each grid value owns the interval of width ``1/(L-1)`` around it; the two end
    values own the tails, so the probabilities of all levels sum to exactly one.

    Why this likelihood for images: pixels are stored as 8-bit integers, so the
    discretized logistic gives a true probability mass (log p <= 0, comparable across
    models in bits per pixel) with a learned, per-pixel spread.  A continuous
    Bernoulli is a density on [0, 1] that ignores the quantization and whose values
    are not comparable with the probability of the stored 8-bit data.
    """
    half = 0.5 / (n_levels - 1)
    inv_s = torch.exp(-log_scale)
    upper = (x + half - mean) * inv_s
    lower = (x - half - mean) * inv_s
    # log(sigmoid(u) - sigmoid(l)) evaluated on the side of zero where it is accurate.
    flip = (upper + lower) > 0
    a = torch.where(flip, -lower, upper)
    b = torch.where(flip, -upper, lower)
    log_a = F.logsigmoid(a)
    interior = log_a + _log1mexp(F.logsigmoid(b) - log_a)
    first = F.logsigmoid(upper)  # P(X <= half): level 0 takes the left tail
    last = F.logsigmoid(-lower)  # P(X >= 1 - half): level L-1 takes the right tail
    return torch.where(x < half, first, torch.where(x > 1.0 - half, last, interior))


def bounded_scale(raw: torch.Tensor, min_scale: float | torch.Tensor) -> torch.Tensor:
    """Positive scale with a floor, so a likelihood cannot collapse to a spike."""
    return min_scale + F.softplus(raw)


class TabularLikelihood(nn.Module):
    """Maps decoder output to per-column log-likelihoods of a mixed-type row.

    The decoder output is laid out as ``[numeric means | numeric raw scales |
    binary logits | categorical logits (one block per column)]``.  Numeric columns
    get a heteroscedastic Gaussian whose scale is floored at ``min_scale`` (in
    transformed units) and shifted by the schema's log-Jacobian so that densities
    are in the input's own units.

    Parameters
    ----------
    n_numeric, n_binary : int
    cat_sizes : sequence of int
        Levels per categorical column.
    min_scale : float or sequence of float
        Floor of the Gaussian standard deviation (one per numeric column, or one for
        all), in transformed units (robust standard deviations).
    """

    def __init__(
        self,
        n_numeric: int,
        n_binary: int,
        cat_sizes: Sequence[int],
        min_scale: float | Sequence[float] = 0.01,
    ) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.n_binary = n_binary
        self.cat_sizes = [int(k) for k in cat_sizes]
        floors = torch.as_tensor(min_scale, dtype=torch.float32).expand(n_numeric).clone()
        # Derived from the config, so kept out of the state dict.
        self.register_buffer("min_scale", floors, persistent=False)

    @property
    def n_params(self) -> int:
        """Width of the decoder output this head expects."""
        return 2 * self.n_numeric + self.n_binary + sum(self.cat_sizes)

    @property
    def n_features(self) -> int:
        return self.n_numeric + self.n_binary + len(self.cat_sizes)

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
        n, b = self.n_numeric, self.n_binary
        mean = params[..., :n]
        scale = bounded_scale(params[..., n : 2 * n], self.min_scale)
        logits = params[..., 2 * n : 2 * n + b]
        blocks = list(torch.split(params[..., 2 * n + b :], self.cat_sizes, dim=-1))
        return mean, scale, logits, blocks

    def log_prob(self, params: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-column log-likelihood (..., n, n_features) in nats; 0 where missing."""
        mean, scale, logits, blocks = self.split(params)
        parts = [
            (gaussian_log_prob(batch["num"], mean, scale) + batch["num_logjac"])
            * batch["num_mask"],
            bernoulli_log_prob(batch["bin"], logits) * batch["bin_mask"],
        ]
        for j, block in enumerate(blocks):
            lp = categorical_log_prob(batch["cat"][:, j], block)
            parts.append((lp * batch["cat_mask"][:, j]).unsqueeze(-1))
        return torch.cat(parts, dim=-1)

    def mean(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        """Point reconstruction: Gaussian means, P(second level), most likely category."""
        mean, _, logits, blocks = self.split(params)
        cats = [blk.argmax(dim=-1) for blk in blocks]
        cat = torch.stack(cats, dim=-1) if cats else mean.new_zeros(mean.shape[:-1] + (0,))
        return {"num": mean, "bin": torch.sigmoid(logits), "cat": cat}


class ImageLikelihood(nn.Module):
    """Likelihood of 8-bit pixels, per pixel and channel, in nats.

    Two parameterisations (the config's ``image_scale``):

    ``"pixel"`` (compressors, and every model written before ``image_scale`` existed)
        Discretized logistic; the decoder outputs 2C channels: a mean and a scale per
        pixel, both functions of z.  The sharpest 8-bit code, but its scales learn
        *how sure* to be of each pixel, so flat backgrounds cost almost nothing and
        the likelihood tracks how complex an image is rather than what it shows
        (Nalisnick et al. 2019).
    ``"shared"`` (anomaly detectors on images)
        Gaussian; the decoder outputs C channels, the means, squashed into the pixel
        range by a sigmoid; one learned standard deviation per channel is shared by
        every pixel and image.  Every pixel is judged on the same scale, so the cost
        of an image is its squared distance from the reconstruction over 2 sigma^2 (a
        calibrated reconstruction error, as PCA's) and a blank background cannot buy
        likelihood.  The density times the width of an 8-bit level (1/255) is the
        probability of the stored level (midpoint rule), so the term stays a code
        length of the 8-bit image, comparable with a lossless coder's.

    Parameters
    ----------
    channels : int
    min_scale : float
        Floor of the scale (logistic scale, or the Gaussian's standard deviation), in
        pixel units of [0, 1].
    image_scale : {"pixel", "shared"}
    """

    def __init__(self, channels: int, min_scale: float = 1e-3, image_scale: str = "pixel") -> None:
        super().__init__()
        self.channels = int(channels)
        self.min_scale = float(min_scale)
        if image_scale not in ("pixel", "shared"):
            raise ValueError(f"unknown image_scale {image_scale!r}")
        self.image_scale = image_scale
        if image_scale == "shared":
            # softplus(-2.25) = 0.1: a tenth of the pixel range to start with.  The floor
            # (min_scale, 1e-3) is far below the scales learned (0.09 to 0.13 on MNIST).
            self.raw_scale = nn.Parameter(torch.full((self.channels, 1, 1), -2.25))

    @property
    def out_channels(self) -> int:
        """Channels of the decoder output this head expects."""
        return self.channels if self.image_scale == "shared" else 2 * self.channels

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.channels
        if self.image_scale == "shared":
            mean = torch.sigmoid(params[..., :c, :, :])
            log_scale = torch.log(bounded_scale(self.raw_scale, self.min_scale)).expand_as(mean)
            return mean, log_scale
        mean = params[..., :c, :, :]
        log_scale = torch.log(bounded_scale(params[..., c:, :, :], self.min_scale))
        return mean, log_scale

    def log_prob(self, params: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-pixel log-probability (..., n, C*H*W) in nats."""
        mean, log_scale = self.split(params)
        if self.image_scale == "shared":
            lp = gaussian_log_prob(batch["x"], mean, log_scale.exp()) - LOG_LEVELS_M1
        else:
            lp = discretized_logistic_log_prob(batch["x"], mean, log_scale)
        return lp.flatten(start_dim=-3)

    def mean(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, _ = self.split(params)
        return {"x": mean.clamp(0.0, 1.0)}
