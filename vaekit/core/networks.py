"""Encoder and decoder networks: an MLP for vectors, a small CNN for images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Posterior log-variance bounds: wide enough for very precise codes (sigma ~ 3e-4)
# and vague ones, narrow enough that exp() can never overflow.
LOGVAR_MIN, LOGVAR_MAX = -16.0, 8.0


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
