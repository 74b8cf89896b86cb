"""The fitted network in numpy: encoder, decoder and likelihood heads (MLP configs).

:class:`NumpyVAE` is built from the architecture config and the model file's float32
tensors (checked against :func:`.layout.expected_shapes` first) and mirrors
:class:`vaekit.core.vae.VAE` layer by layer.  Arrays are float32; leading axes
broadcast as in the torch modules (``(k, n, d)`` for ``k`` noise draws).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functions as fn
from .constants import LOG_2PI, LOG_LEVELS_M1, LOGVAR_MAX, LOGVAR_MIN
from .layout import expected_shapes


class _Linear:
    """y = x W^T + b with W stored transposed and contiguous for the BLAS call.

    With ``halve`` the layer also keeps its weights and bias halved (exact: a power of
    two) for the fast SiLU (:func:`.functions.silu_of_half`).
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, halve: bool = False) -> None:
        # Copies: the caller's arrays may be a live torch module's memory.
        self.wt = np.array(weight.T, dtype=np.float32, order="C", copy=True)
        self.w = np.array(weight, dtype=np.float32, order="C", copy=True)
        self.b = np.array(bias, dtype=np.float32, order="C", copy=True)
        half = np.float32(0.5)
        self.wt_half = self.wt * half if halve else None
        self.b_half = self.b * half if halve else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = x @ self.wt
        out += self.b
        return out

    def half(self, x: np.ndarray) -> np.ndarray:
        """``self(x) / 2``, exactly."""
        assert self.wt_half is not None and self.b_half is not None
        out = x @ self.wt_half
        out += self.b_half
        return out

    def row_invariant(self, x: np.ndarray) -> np.ndarray:
        """``W @ x^T``: a row's result does not depend on its place in the block (as
        :func:`vaekit.core.networks.row_invariant_linear`, for narrow layers)."""
        flat = x.reshape(-1, x.shape[-1])
        out = (self.w @ flat.T).T + self.b
        return out.reshape(*x.shape[:-1], out.shape[-1])


class _MLP:
    """Linear layers with SiLU between them (none after the last).

    Two evaluations of the same function: the default one, whose floats the codec
    depends on (a ``.vkc`` file's model-coded values are decoded under the decoder's
    prediction, so it must not change from one vaekit version to the next), and
    ``fast=True`` for scores and for choosing codes (within float rounding of the
    other; a code, once written, is never recomputed by a reader): SiLU layers
    computed at half scale and finished by :func:`.functions.silu_of_half`, three
    passes instead of four.
    """

    def __init__(self, weights: dict[str, np.ndarray], prefix: str) -> None:
        idx = sorted(int(k[len(prefix) + 1:].split(".")[0]) for k in weights
                     if k.startswith(prefix + ".") and k.endswith(".weight")
                     and k[len(prefix) + 1:].split(".")[0].isdigit())
        last = len(idx) - 1
        self.layers = [_Linear(weights[f"{prefix}.{i}.weight"], weights[f"{prefix}.{i}.bias"],
                               halve=j < last)
                       for j, i in enumerate(idx)]

    def __call__(self, x: np.ndarray, fast: bool = False) -> np.ndarray:
        lead = x.shape[:-1]
        h = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=np.float32)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last:
                h = layer(h)
            elif fast:
                h = fn.silu_of_half(layer.half(h))
            else:
                h = fn.silu(layer(h))
        return h.reshape(*lead, h.shape[-1])


class _Warp:
    """:class:`vaekit.core.networks.FeatureWarp` in numpy."""

    def __init__(self, lp: dict[str, Any]) -> None:
        n = int(lp["n_in"])
        self.width = np.float32(lp["asinh_width"])
        self.offset = (np.zeros(n, np.float32) if lp.get("offset") is None
                       else np.asarray(lp["offset"], np.float32))
        self.scale = (np.ones(n, np.float32) if lp.get("scale") is None
                      else np.asarray(lp["scale"], np.float32))
        self.asinh = np.zeros(n, dtype=bool)
        if lp.get("asinh") is not None:
            flags = [bool(a) for a in lp["asinh"]]
            self.asinh[: len(flags)] = flags
        self.n = n
        self.any_asinh = bool(self.asinh.any())

    def to_metric(self, t: np.ndarray) -> np.ndarray:
        k = t.shape[-1]
        u = t
        if self.any_asinh:
            u = np.where(self.asinh[:k], self.width * np.sinh(np.clip(t / self.width, -88.0, 88.0)),
                         t)
        return (u - self.offset[:k]) / self.scale[:k]

    def from_metric(self, v: np.ndarray) -> np.ndarray:
        k = v.shape[-1]
        u = v * self.scale[:k] + self.offset[:k]
        if self.any_asinh:
            u = np.where(self.asinh[:k], self.width * np.arcsinh(u / self.width), u)
        return u


class NumpyVAE:
    """Encoder q(z|x), decoder p(x|z) and likelihood of an MLP model, in numpy.

    Parameters
    ----------
    config : dict
        The architecture config (:func:`vaekit.core.build_vae`).
    weights : dict of str to ndarray
        The model file's tensors, float32, exactly the names and shapes the config
        implies.

    Raises
    ------
    Unsupported
        For a convolutional config.
    ValueError
        When the tensors are not those the config implies.
    """

    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        expected = expected_shapes(config)
        got = {k: tuple(np.shape(v)) for k, v in weights.items()}
        if got != expected:
            wrong = sorted(set(got) ^ set(expected)) or sorted(
                k for k in got if got[k] != expected[k])
            raise ValueError(f"model tensors do not match the architecture config: {wrong[:5]} "
                             "(missing, unexpected or of the wrong shape)")
        self.kind = config["kind"]
        self.latent_dim = int(config["latent_dim"])
        lp = config.get("linear_path")
        self.warp = _Warp(lp) if lp else None
        if self.warp is not None:
            self.enc = _MLP(weights, "encoder.body")
            self.dec = _MLP(weights, "decoder.body")
            self.enc_linear = _Linear(weights["encoder.linear.weight"], weights["encoder.linear.bias"])
            self.dec_linear = _Linear(weights["decoder.linear.weight"], weights["decoder.linear.bias"])
        elif self.kind == "tabular":
            self.enc, self.dec = _MLP(weights, "encoder.body"), _MLP(weights, "decoder")
        else:
            self.enc, self.dec = _MLP(weights, "encoder.body.body"), _MLP(weights, "decoder.body")
        if self.kind == "tabular":
            self.n_numeric = int(config["n_numeric"])
            self.n_binary = int(config["n_binary"])
            self.cat_sizes = [int(k) for k in config["cat_sizes"]]
            floors = config.get("num_min_scale", config["min_scale"])
            self.min_scale = np.broadcast_to(np.asarray(floors, np.float32),
                                             (self.n_numeric,)).copy()
            self.n_out = self.n_numeric  # decoder means on the linear path
        else:
            c, h, w = (int(v) for v in config["shape"])
            self.shape = (c, h, w)
            self.n_pix = c * h * w
            self.min_scale_image = np.float32(config["min_scale"])
            self.shared = config.get("image_scale", "pixel") == "shared"
            raw = weights.get("likelihood.raw_scale")
            self.shared_scale = None
            if self.shared and raw is not None:
                # log(bounded scale), then exp, as the torch head does, one per channel
                s = np.exp(np.log(self.min_scale_image + fn.softplus(
                    np.asarray(raw, np.float32).reshape(c))))
                self.shared_scale = np.repeat(s, h * w).astype(np.float32)
            self.n_out = self.n_pix

    # ------------------------------------------------------------------ networks
    def encode(self, x: np.ndarray, fast: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances, each (n, latent_dim) float32 (``fast``:
        see :class:`_MLP`)."""
        x = x.reshape(x.shape[0], -1) if self.kind == "image" else x
        h = self.enc(x, fast)
        latent = self.latent_dim
        mu = np.ascontiguousarray(h[..., :latent])
        if self.warp is not None:
            metric = self.warp.to_metric(np.ascontiguousarray(x[..., : self.warp.n]))
            mu = self.enc_linear.row_invariant(metric) + mu
        logvar = fn.soft_clamp(np.ascontiguousarray(h[..., latent:]), LOGVAR_MIN, LOGVAR_MAX)
        return mu, logvar

    def decode(self, z: np.ndarray, fast: bool = False) -> np.ndarray:
        """Flat likelihood parameters (..., n_params) of codes ``z`` (..., latent_dim);
        images in channel-major order (means first); ``fast``: see :class:`_MLP`."""
        h = self.dec(z, fast)
        if self.warp is None:
            return h
        v = self.dec_linear.row_invariant(z) + h[..., : self.n_out]
        return np.concatenate([self.warp.from_metric(v), h[..., self.n_out:]], axis=-1)

    # ------------------------------------------------------------------ likelihoods
    def log_prob(self, params: np.ndarray, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Per-feature log p(x|z) (..., n, n_features) in nats (0 where missing)."""
        varying, offset = self.log_prob_parts(params, batch)
        return varying if offset is None else varying + offset

    def log_prob_parts(self, params: np.ndarray, batch: dict[str, np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-feature log p(x|z) as ``varying + offset``, nats, 0 where missing.

        ``varying`` (..., n, n_features) depends on the decoder's output; ``offset``
        (n, n_features), or None when there is none, does not: the Gaussian's
        normalising constant and the numeric transform's log-Jacobian.  With several
        draws per row the offset is added once per row, not once per draw.
        """
        if self.kind == "image":
            return self._image_log_prob(params, batch["x"]), None
        n, b = self.n_numeric, self.n_binary
        num = fn.gaussian_log_kernel(batch["num"], params[..., :n], self._scales(params))
        mask = batch["num_mask"]
        # x * 1.0 is exact: a block without blanks skips the pass, same bits.
        if not mask.all():
            num *= mask
        offset = batch["num_logjac"] - np.float32(0.5 * LOG_2PI)
        offset *= mask
        if b == 0 and not self.cat_sizes:
            return num, offset
        logits = np.ascontiguousarray(params[..., 2 * n:2 * n + b])
        binary = batch["bin"] * logits - fn.softplus(logits)
        binary *= batch["bin_mask"]
        cats = []
        start = 2 * n + b
        for j, k in enumerate(self.cat_sizes):
            logp = fn.log_softmax(params[..., start:start + k])
            start += k
            idx = np.broadcast_to(batch["cat"][:, j][:, None], logp.shape[:-1] + (1,))
            cats.append(np.take_along_axis(logp, idx, axis=-1)[..., 0] * batch["cat_mask"][:, j])
        parts = [num, binary] + [c[..., None] for c in cats]
        rest = np.zeros((offset.shape[0], b + len(cats)), np.float32)
        return np.concatenate(parts, axis=-1), np.concatenate([offset, rest], axis=-1)

    def _image_log_prob(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        x = x.reshape(x.shape[0], -1)
        p = self.n_pix
        if self.shared:
            mean = fn.sigmoid(np.ascontiguousarray(params[..., :p]))
            lp = fn.gaussian_log_prob(x, mean, self.shared_scale)
            lp -= np.float32(LOG_LEVELS_M1)
        else:
            mean = np.ascontiguousarray(params[..., :p])
            log_scale = np.log(self.min_scale_image
                               + fn.softplus(np.ascontiguousarray(params[..., p:2 * p])))
            lp = fn.discretized_logistic_log_prob(x, mean, log_scale)
        return lp

    def numeric(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tables: the Gaussian means and scales of the numeric columns (transformed units)."""
        return params[..., :self.n_numeric].copy(), self._scales(params)

    def _scales(self, params: np.ndarray) -> np.ndarray:
        """The numeric columns' Gaussian scales (a fresh array), floored."""
        n = self.n_numeric
        scale = fn.softplus(np.ascontiguousarray(params[..., n:2 * n]))
        scale += self.min_scale
        return scale

    def mean(self, params: np.ndarray) -> tuple[np.ndarray, ...]:
        """Point reconstruction: tables (numeric means, P(second level), most likely
        category); images (pixel means in [0, 1], shape (n, C, H, W))."""
        if self.kind == "image":
            m = params[..., : self.n_pix]
            m = fn.sigmoid(m) if self.shared else m
            return (np.clip(m, 0.0, 1.0).reshape(-1, *self.shape).astype(np.float32),)
        n, b = self.n_numeric, self.n_binary
        start = 2 * n + b
        cats = []
        for k in self.cat_sizes:
            cats.append(params[..., start:start + k].argmax(axis=-1))
            start += k
        cat = (np.stack(cats, axis=-1) if cats
               else np.zeros(params.shape[:-1] + (0,), dtype=np.int64))
        return params[..., :n].copy(), fn.sigmoid(params[..., 2 * n:2 * n + b]), cat
