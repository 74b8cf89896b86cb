"""Encoder and decoder networks: an MLP for vectors, a small CNN for images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.constants import LOGVAR_MAX, LOGVAR_MIN


def soft_clamp(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Smoothly keep ``x`` within (lo, hi); close to identity in between."""
    return hi - F.softplus(hi - (lo + F.softplus(x - lo)))


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """Wraps a body network whose output is split into (mean, log-variance)."""

    def __init__(self, body: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.body = body
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        mu, raw = h[..., : self.latent_dim], h[..., self.latent_dim :]
        return mu, soft_clamp(raw, LOGVAR_MIN, LOGVAR_MAX)


def mlp_encoder(d_in: int, hidden: Sequence[int], latent_dim: int) -> GaussianEncoder:
    return GaussianEncoder(mlp([d_in, *hidden, 2 * latent_dim]), latent_dim)


def mlp_decoder(latent_dim: int, hidden: Sequence[int], d_out: int) -> nn.Sequential:
    return mlp([latent_dim, *reversed(list(hidden)), d_out])


def conv_plan(height: int, width: int, max_down: int = 4) -> int:
    """Number of stride-2 stages: halve while both sides stay even and >= 4 after."""
    n = 0
    while n < max_down and height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 4:
        height, width, n = height // 2, width // 2, n + 1
    return n


def conv_channels(n_down: int, base: int) -> list[int]:
    return [min(base * 2**i, 4 * base) for i in range(n_down)]


class ConvBody(nn.Module):
    """Strided convolutions then a linear layer to ``d_out`` features."""

    def __init__(self, shape: Sequence[int], n_down: int, base: int, d_out: int) -> None:
        super().__init__()
        c, h, w = shape
        chans = conv_channels(n_down, base)
        layers: list[nn.Module] = []
        prev = c
        for ch in chans:
            layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.SiLU()]
            prev = ch
        self.convs = nn.Sequential(*layers)
        flat = prev * (h // 2**n_down) * (w // 2**n_down)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 256), nn.SiLU(), nn.Linear(256, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x))


class ConvDecoder(nn.Module):
    """Linear layer to a small feature map, then transposed convolutions up to (out_c, H, W)."""

    def __init__(self, latent_dim: int, shape: Sequence[int], n_down: int, base: int,
                 out_channels: int) -> None:
        super().__init__()
        _, h, w = shape
        chans = conv_channels(n_down, base)[::-1]
        self.start = (chans[0] if chans else base, h // 2**n_down, w // 2**n_down)
        c0, h0, w0 = self.start
        self.fc = nn.Sequential(nn.Linear(latent_dim, 256), nn.SiLU(), nn.Linear(256, c0 * h0 * w0),
                                nn.SiLU())
        layers: list[nn.Module] = []
        prev = c0
        for ch in chans[1:]:
            layers += [nn.ConvTranspose2d(prev, ch, 4, stride=2, padding=1), nn.SiLU()]
            prev = ch
        if chans:
            layers.append(nn.ConvTranspose2d(prev, out_channels, 4, stride=2, padding=1))
        else:
            layers.append(nn.Conv2d(prev, out_channels, 3, padding=1))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.fc(z.reshape(-1, z.shape[-1])).reshape(-1, *self.start)
        out = self.deconvs(h)
        return out.reshape(*lead, *out.shape[1:])


def conv_encoder(shape: Sequence[int], latent_dim: int, base: int = 32) -> GaussianEncoder:
    n_down = conv_plan(shape[1], shape[2])
    return GaussianEncoder(ConvBody(shape, n_down, base, 2 * latent_dim), latent_dim)


def conv_decoder(latent_dim: int, shape: Sequence[int], out_channels: int,
                 base: int = 32) -> ConvDecoder:
    n_down = conv_plan(shape[1], shape[2])
    return ConvDecoder(latent_dim, shape, n_down, base, out_channels)


class FlattenImage(nn.Module):
    """Lets an MLP encoder read images (used when ``architecture="mlp"`` for images)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(start_dim=-3))


class UnflattenImage(nn.Module):
    def __init__(self, body: nn.Module, shape: Sequence[int]) -> None:
        super().__init__()
        self.body = body
        self.shape = tuple(shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.body(z)
        return out.reshape(*out.shape[:-1], *self.shape)


# ----------------------------------------------------------------------------- linear path
# Used by budgeted compressors (``"linear_path"`` in the architecture config; off by
# default, so detectors and plain VAEs never build these).  The encoder mean and the
# decoder mean are a linear map plus an MLP correction whose output starts at zero;
# the compressor initialises the linear maps from PCA, so an untrained model is the
# PCA codec and training can only start from there.


class FeatureWarp(nn.Module):
    """Fixed per-feature map between model values ``t`` and a metric space ``v``.

    ``v = (u - offset) / scale`` with ``u = w * sinh(t / w)`` on the ``asinh`` features
    (the inverse of the schema's tail compression) and ``u = t`` elsewhere.  Squared
    error in ``v`` is squared error in the input's own units divided by each
    feature's variance ("standardized units").  All constants come from the
    architecture config, so they are buffers outside the state dict.

    Parameters
    ----------
    n : int
        Number of features (linear inputs of the encoder).
    offset, scale : list of float or None
        Per-feature location and spread of ``u`` (``None``: 0 and 1).
    asinh : list of bool or None
        Which leading features carry the asinh compression (``None``: none).
    width : float
        The compression width ``w``.
    """

    def __init__(self, n: int, offset: Sequence[float] | None = None,
                 scale: Sequence[float] | None = None, asinh: Sequence[bool] | None = None,
                 *, width: float) -> None:
        super().__init__()
        self.n = int(n)
        self.width = float(width)
        off = torch.zeros(n) if offset is None else torch.as_tensor(offset, dtype=torch.float32)
        sc = torch.ones(n) if scale is None else torch.as_tensor(scale, dtype=torch.float32)
        flags = torch.zeros(n, dtype=torch.bool)
        if asinh is not None:
            flags[: len(asinh)] = torch.as_tensor(list(asinh), dtype=torch.bool)
        self.register_buffer("offset", off.clone(), persistent=False)
        self.register_buffer("scale", sc.clone(), persistent=False)
        self.register_buffer("asinh", flags, persistent=False)
        # From the config, not the tensor: the module can then be built on the "meta"
        # device (no memory), which model-file checks do to learn its tensor shapes.
        self.any_asinh = asinh is not None and any(bool(a) for a in asinh)

    def to_metric(self, t: torch.Tensor) -> torch.Tensor:
        """Model values of the first ``k`` features (..., k) -> metric values."""
        k = t.shape[-1]
        u = t
        if self.any_asinh:
            # sinh overflows float32 just past 88; clamping there only turns inf into a
            # large finite value (a clipped encoder input of an extreme row).
            u = torch.where(self.asinh[:k],
                            self.width * torch.sinh((t / self.width).clamp(-88.0, 88.0)), t)
        return (u - self.offset[:k]) / self.scale[:k]

    def from_metric(self, v: torch.Tensor) -> torch.Tensor:
        """Metric values of the first ``k`` features (..., k) -> model values."""
        k = v.shape[-1]
        u = v * self.scale[:k] + self.offset[:k]
        if self.any_asinh:
            u = torch.where(self.asinh[:k], self.width * torch.asinh(u / self.width), u)
        return u


def row_invariant_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` computed as ``W @ x^T``, so a row's result does not depend on its
    position in the batch.

    For narrow layers (a few inputs and outputs, as in the PCA-sized linear path) the
    CPU matrix kernels behind ``nn.Linear`` give rows different rounding depending on
    where they sit in the block, which broke "same row, same bytes" across splits.
    """
    flat = x.reshape(-1, x.shape[-1])
    out = torch.addmm(layer.bias.unsqueeze(1), layer.weight, flat.T).T
    return out.reshape(*x.shape[:-1], out.shape[-1])


def _zero_rows(layer: nn.Linear, rows: slice) -> None:
    with torch.no_grad():
        layer.weight[rows].zero_()
        layer.bias[rows].zero_()


class LinearResidualEncoder(nn.Module):
    """Gaussian encoder whose mean is ``linear(warp(x[:n_linear])) + mlp(x)[:latent]``.

    The MLP's mean outputs start at exactly zero and the linear map at zero weights
    (the compressor sets it from PCA); the log-variance comes from the MLP alone.
    ``flatten``: the input is an image batch (..., C, H, W), read as a vector.
    """

    def __init__(self, d_in: int, hidden: Sequence[int], latent_dim: int, warp: FeatureWarp,
                 flatten: bool = False) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.flatten = flatten
        self.warp = warp
        self.body = mlp([d_in, *hidden, 2 * latent_dim])
        self.linear = nn.Linear(warp.n, latent_dim)
        _zero_rows(self.body[-1], slice(0, latent_dim))
        _zero_rows(self.linear, slice(None))

    @property
    def head(self) -> nn.Linear:
        """The MLP's output layer: rows ``[:latent]`` mean corrections, then log-variances."""
        return self.body[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.flatten:
            x = x.flatten(start_dim=-3)
        h = self.body(x)
        metric = self.warp.to_metric(x[..., : self.warp.n])
        mu = row_invariant_linear(self.linear, metric) + h[..., : self.latent_dim]
        return mu, soft_clamp(h[..., self.latent_dim :], LOGVAR_MIN, LOGVAR_MAX)


class LinearResidualDecoder(nn.Module):
    """Decoder whose first ``n_out`` outputs (the numeric means) are
    ``warp⁻¹(linear(z) + mlp(z)[:n_out])``; the other outputs come from the MLP.

    ``out_shape``: reshape the flat output to it (images: (2C, H, W)).
    """

    def __init__(self, latent_dim: int, hidden: Sequence[int], d_out: int, n_out: int,
                 warp: FeatureWarp, out_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.n_out = int(n_out)
        self.warp = warp
        self.out_shape = None if out_shape is None else tuple(int(s) for s in out_shape)
        self.body = mlp([latent_dim, *reversed(list(hidden)), d_out])
        self.linear = nn.Linear(latent_dim, self.n_out)
        _zero_rows(self.body[-1], slice(0, self.n_out))
        _zero_rows(self.linear, slice(None))

    @property
    def head(self) -> nn.Linear:
        """The MLP's output layer (rows ``[:n_out]``: mean corrections)."""
        return self.body[-1]

    def metric_mean(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(means in the metric space (..., n_out), the other flat outputs)."""
        h = self.body(z)
        return row_invariant_linear(self.linear, z) + h[..., : self.n_out], h[..., self.n_out :]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        v, rest = self.metric_mean(z)
        out = torch.cat([self.warp.from_metric(v), rest], dim=-1)
        if self.out_shape is not None:
            out = out.reshape(*out.shape[:-1], *self.out_shape)
        return out
