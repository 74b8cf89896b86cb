"""Automatic sizes: network widths, latent sizes, architecture configs and KL weights.

Each function turns estimator parameters (``"auto"`` or a value) and the prepared
training data into the architecture config :func:`vaekit.core.build_vae` builds from.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..core import auto_hidden, auto_latent_dim
from ..core.networks import FeatureWarp
from ..data import ImageSchema, TabularSchema
from ..data.numeric import ASINH_WIDTH
from ..errors import DataError

Schema = TabularSchema | ImageSchema


def architecture_config(kind: str, schema: Schema, tensors: dict[str, torch.Tensor], *,
                        architecture: str, latent_dim: int | str, hidden_dims: Any,
                        min_scale: float | str, hidden_on: str = "values") -> dict[str, Any]:
    """Architecture config of a VAE for prepared training ``tensors``.

    Parameters
    ----------
    architecture : {"auto", "mlp", "conv"}
    latent_dim, hidden_dims, min_scale : "auto" or a value (estimator parameters)
    hidden_on : {"values", "input"}
        What ``hidden_dims="auto"`` sizes tables on: 2x the row's values (numeric and
        binary columns, one-hot levels; the anomaly benchmark measured the narrower
        nets as the more robust density model on contaminated tables,
        recipes/BENCHMARKS.md "Default changes, round 3"), or 2x the whole encoder
        input, observed-masks included (the codec's capacity pays: cardio at 16 B/row
        0.041 against 0.116 standardized RMSE).
    """
    d_in = int(tensors["x"][0].numel())
    if kind == "image":
        n_features = schema.n_pixels  # type: ignore[union-attr]
        arch = architecture if architecture != "auto" else "conv"
        layout: dict[str, Any] = {"shape": list(schema.shape)}  # type: ignore[union-attr]
        floor = 1e-3
    else:
        n_features = len(schema.columns)  # type: ignore[union-attr]
        if architecture == "conv":
            raise DataError("architecture='conv' needs image input")
        arch = "mlp"
        floor = 0.01 if min_scale == "auto" else min_scale
        layout = {"d_in": d_in, **schema.layout(),  # type: ignore[union-attr]
                  "num_min_scale": schema.numeric_floors(floor)}  # type: ignore[union-attr]
    latent = auto_latent_dim(n_features, kind) if latent_dim == "auto" else latent_dim
    if hidden_dims != "auto":
        hidden = list(hidden_dims)
    elif kind == "image" and arch == "mlp":
        hidden = [512, 256]
    elif hidden_on == "values" and isinstance(schema, TabularSchema):
        hidden = auto_hidden(schema.value_width)
    else:
        hidden = auto_hidden(d_in)
    return {
        "kind": kind,
        "architecture": arch,
        "latent_dim": int(latent),
        "hidden": [int(h) for h in hidden],
        "conv_base": 32,
        "min_scale": float(floor if min_scale == "auto" else min_scale),
        **layout,
    }


def codec_latent_dim(config: dict[str, Any], schema: Schema, *, latent_dim: int | str,
                     bits: Any, bytes_per_row: float | None) -> int:
    """Latent size of a compressor's VAE (no linear path) when ``latent_dim="auto"``:
    one per listed bit width, :func:`budget_latent_dim` with a budget, else the VAE's."""
    if latent_dim != "auto":
        return int(config["latent_dim"])
    if isinstance(bits, (list, tuple)):
        return len(bits)
    if bytes_per_row is not None:
        kind = config["kind"]
        n_features = (schema.n_pixels if kind == "image"  # type: ignore[union-attr]
                      else len(schema.columns))  # type: ignore[union-attr]
        return budget_latent_dim(bytes_per_row, n_features, kind)
    return int(config["latent_dim"])


def budget_beta(bytes_per_row: float | None) -> float:
    """KL weight used for training when ``beta="auto"``.

    Without a budget: 1 (the plain ELBO).  With one: ``min(1, 0.25 / bytes_per_row)``,
    so the weight shrinks as the budget grows and the encoder may say more: a plain
    ELBO-trained VAE's KL term caps the information in its codes (on ADBench
    cardio, beta = 1 gave 7.7 nats of KL per row over 21 latent dimensions, about
    1.4 bytes), so extra bytes would buy nothing.

    How it was chosen (test RMSE in standardized units, cardio, 70/30 split, codes
    quantized, measured with step 4 of the fitting but before step 3 existed, see
    :class:`VAECompressor`): at 2 bytes/row beta = 1 gave 0.714, this rule (0.125)
    0.707, beta = 0.3 with 8 latent dimensions 0.680; at 16 bytes/row this rule
    (0.0156) gave 0.514 and beta = 0.001 0.510.  The rule is within 0.03 of the
    best setting tried at each budget; see ``recipes/results/rate_distortion.md``
    for the final numbers on all tables and MNIST.
    """
    if bytes_per_row is None:
        return 1.0
    return float(min(1.0, 0.25 / float(bytes_per_row)))


def budget_latent_dim(bytes_per_row: float, n_features: int, kind: str) -> int:
    """Latent size used when ``latent_dim="auto"`` and a budget is set.

    Tables: the number of input columns, capped at 32 -- with a low KL weight the
    encoder can keep every column's own variation once the budget allows it, and
    dimensions the budget cannot pay for get 0 bits and cost nothing.  Images: one
    dimension per byte of budget, 16..128 (at 64 bytes/image the allocation gave
    the 64 dimensions 8.8 bits each on average).
    """
    if kind == "image":
        return int(min(128, max(16, math.ceil(bytes_per_row))))
    return int(min(32, max(2, n_features)))


def linear_latent_dim(bytes_per_row: float | None, n_linear: int, kind: str) -> int:
    """Latent size of a model with a linear (PCA) path when ``latent_dim="auto"``.

    Tables: one dimension per linearly read feature (numeric columns, binary
    columns and category indicators), at most 64 -- principal components the
    budget cannot pay for get 0 bits and cost nothing.  Images: 8 per byte of
    budget, 16..512 and at most the number of pixels (PCA with the same quantizer
    spends its bits on 67, 122 and 234 components of MNIST at 16, 32 and 64
    bytes/image).  Images without a budget (``bits`` only): 16.
    """
    if kind == "image":
        if bytes_per_row is None:
            return int(min(16, n_linear))
        return int(min(n_linear, 512, max(16, 8 * math.ceil(bytes_per_row))))
    return int(min(64, max(1, n_linear)))


def linear_architecture(kind: str, schema: Schema, tensors: dict[str, torch.Tensor], *,
                        latent_dim: int | str, hidden_dims: Any, min_scale: float | str,
                        bits: Any, bytes_per_row: float | None) -> dict[str, Any]:
    """Architecture config with a ``linear_path`` (see :func:`vaekit.core.build_vae`).

    Tables take :func:`architecture_config`'s table layout with hidden widths sized on
    the whole encoder input; the linear path reads the row's values in the metric
    space (asinh undone, standardized).  ``latent_dim="auto"``: one per listed bit
    width, else :func:`linear_latent_dim`.
    """
    config: dict[str, Any] = {}
    if kind == "image":
        n_pix = int(schema.n_pixels)
        hidden = ([512, 256] if hidden_dims == "auto"
                  else [int(h) for h in hidden_dims])
        config = {"kind": "image", "architecture": "mlp", "hidden": hidden,
                  "conv_base": 32, "latent_dim": 0,
                  "min_scale": float(1e-3 if min_scale == "auto" else min_scale),
                  "shape": list(schema.shape)}
        linear = {"n_in": n_pix, "offset": None, "scale": None, "asinh": None,
                  "asinh_width": ASINH_WIDTH}
        n_linear = n_pix
    else:
        config = architecture_config(kind, schema, tensors, architecture="mlp",
                                     latent_dim=latent_dim, hidden_dims=hidden_dims,
                                     min_scale=min_scale, hidden_on="input")
        x = tensors["x"].double()
        n_linear = schema.value_width
        asinh = [c.transform == "asinh" for c in schema.specs("numeric")]
        # The warp with offset 0 and scale 1 only undoes the asinh (float64 here).
        values = FeatureWarp(n_linear, asinh=asinh, width=ASINH_WIDTH).to_metric(
            x[:, :n_linear])
        offset = values.mean(dim=0)
        scale = values.std(dim=0, unbiased=False)
        scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
        linear = {"n_in": n_linear, "offset": offset.tolist(), "scale": scale.tolist(),
                  "asinh": asinh, "asinh_width": ASINH_WIDTH}
    if latent_dim != "auto":
        latent = int(latent_dim)
    elif isinstance(bits, (list, tuple)):
        latent = len(bits)
    else:
        latent = linear_latent_dim(bytes_per_row, n_linear, kind)
    config["latent_dim"] = latent
    config["linear_path"] = linear
    return config
