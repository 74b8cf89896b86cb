"""The VAE module and its construction from a JSON-able architecture config."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from . import networks as nets
from .likelihoods import ImageLikelihood, TabularLikelihood


class VAE(nn.Module):
    """Encoder q(z|x) = N(mu, diag(sigma^2)), decoder p(x|z), prior N(0, I).

    Parameters
    ----------
    encoder : nn.Module
        Maps the encoder input ``batch["x"]`` to ``(mu, logvar)``.
    decoder : nn.Module
        Maps ``z`` (any leading dimensions) to likelihood parameters.
    likelihood : TabularLikelihood or ImageLikelihood
        Turns decoder output and a batch into per-feature log-likelihoods (nats).
    config : dict
        The architecture config this module was built from (see :func:`build_vae`).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module,
                 config: dict[str, Any]) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.config = dict(config)
        self.latent_dim = int(config["latent_dim"])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (n, latent_dim)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for latent codes ``z`` (..., latent_dim)."""
        return self.decoder(z)

    def log_likelihood(self, params: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-feature log p(x|z) in nats, shape (..., n, n_features)."""
        return self.likelihood.log_prob(params, batch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(x)


def auto_hidden(width_in: int) -> list[int]:
    """Two hidden layers of about 2x ``width_in`` (rounded up to a power of two),
    32..256 units.  Which width to size on is the estimator's choice
    (``_auto_hidden``: the detector uses the row's values, the compressor the whole
    encoder input)."""
    width = int(min(256, max(32, 2 ** math.ceil(math.log2(max(2 * width_in, 1))))))
    return [width, width]


def auto_latent_dim(n_features: int, kind: str) -> int:
    """Latent size when the user leaves it to us.

    Tabular: about half the number of input columns, at least 2 and at most 16 —
    enough to hold the correlated structure of typical tables while the KL term
    prunes unused dimensions.  Images: 16.
    """
    if kind == "image":
        return 16
    return int(min(16, max(2, math.ceil(n_features / 2))))


def build_vae(config: dict[str, Any]) -> VAE:
    """Construct a :class:`VAE` from an architecture config.

    Keys: ``kind`` ("tabular" | "image"), ``latent_dim``, ``architecture``
    ("mlp" | "conv"), ``hidden`` (list of ints, MLP), ``conv_base`` (int),
    ``min_scale`` (float), ``num_min_scale`` (per numeric column, tables), and the
    data layout: ``n_numeric``, ``n_binary``,
    ``cat_sizes``, ``d_in`` for tables; ``shape`` (C, H, W) for images.
    Images may also carry ``image_scale`` ("pixel", the default when absent, or
    "shared", see :class:`~vaekit.core.likelihoods.ImageLikelihood`) and
    ``complexity`` ("zlib": scores subtract the image's zlib code length, see
    :func:`vaekit.data.images.complexity_nats`; absent = plain bound) with
    ``complexity_cap`` (nats: the largest training image's length, the most any
    image is credited; absent in files written before it = no cap).

    Optional ``linear_path`` (MLP models only; absent = off): a dict with ``n_in``
    (encoder features read linearly: the leading ``n_in`` entries of the encoder
    input, or all pixels), ``offset``, ``scale``, ``asinh`` (per feature, or null)
    and ``asinh_width`` -- see :class:`~vaekit.core.networks.FeatureWarp`.  The
    encoder and decoder means then get a linear path next to the MLP
    (:class:`~vaekit.core.networks.LinearResidualEncoder` /
    :class:`~vaekit.core.networks.LinearResidualDecoder`); budgeted compressors
    initialise it from PCA.
    """
    latent = int(config["latent_dim"])
    lik = _likelihood(config)
    if config.get("linear_path"):
        enc, dec = _linear_path_networks(config, latent, lik)
    elif config["kind"] == "tabular":
        hidden = config["hidden"]
        enc = nets.mlp_encoder(config["d_in"], hidden, latent)
        dec = nets.mlp_decoder(latent, hidden, lik.n_params)  # type: ignore[arg-type]
    else:
        shape = [int(v) for v in config["shape"]]
        out_c = lik.out_channels  # type: ignore[union-attr]
        if config["architecture"] == "conv":
            enc = nets.conv_encoder(shape, latent, config["conv_base"])
            dec = nets.conv_decoder(latent, shape, out_c, config["conv_base"])
        else:
            hidden = config["hidden"]
            n_pix = shape[0] * shape[1] * shape[2]
            enc = nets.GaussianEncoder(nets.FlattenImage(nets.mlp([n_pix, *hidden, 2 * latent])),
                                       latent)
            dec = nets.UnflattenImage(nets.mlp_decoder(latent, hidden, out_c * n_pix // shape[0]),
                                      [out_c, shape[1], shape[2]])
    return VAE(enc, dec, lik, config)


def _likelihood(config: dict[str, Any]) -> nn.Module:
    """The likelihood head of a config (tables or images)."""
    if config["kind"] == "tabular":
        return TabularLikelihood(
            config["n_numeric"], config["n_binary"], config["cat_sizes"],
            config.get("num_min_scale", config["min_scale"]),
        )
    if config["kind"] == "image":
        return ImageLikelihood(int(config["shape"][0]), config["min_scale"],
                               config.get("image_scale", "pixel"))
    raise ValueError(f"unknown model kind {config['kind']!r}")


def _linear_path_networks(config: dict[str, Any], latent: int,
                          lik: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Encoder and decoder for configs with ``linear_path`` (see :func:`build_vae`)."""
    lp = config["linear_path"]
    warp = nets.FeatureWarp(int(lp["n_in"]), lp.get("offset"), lp.get("scale"), lp.get("asinh"),
                            width=float(lp["asinh_width"]))
    hidden = config["hidden"]
    if config["kind"] == "tabular":
        enc = nets.LinearResidualEncoder(config["d_in"], hidden, latent, warp)
        dec = nets.LinearResidualDecoder(latent, hidden, lik.n_params,  # type: ignore[arg-type]
                                         config["n_numeric"], warp)
        return enc, dec
    if config["architecture"] != "mlp":
        raise ValueError("linear_path needs architecture 'mlp'")
    shape = [int(v) for v in config["shape"]]
    n_pix = shape[0] * shape[1] * shape[2]
    enc = nets.LinearResidualEncoder(n_pix, hidden, latent, warp, flatten=True)
    dec = nets.LinearResidualDecoder(latent, hidden, 2 * n_pix, n_pix, warp,
                                     [2 * shape[0], shape[1], shape[2]])
    return enc, dec
