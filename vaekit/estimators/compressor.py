"""VAECompressor: rows (or images) to compact quantized codes and back, within a byte budget."""

from __future__ import annotations

import dataclasses
import io
import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..codec.compressor import (
    DEFAULT_CHUNK_ROWS,
    CompressedWriter,
    _concat,
    _empty_output,
    iter_decompressed,
)
from ..codec.quantize import LatentQuantizer, fit_quantizer, halfwidth, payload_bytes_per_row
from ..core import auto_hidden, build_vae
from ..core.batching import map_blocks, take, to_device
from ..core.networks import FeatureWarp
from ..data import ImageSchema, TabularSchema
from ..data.tabular import ASINH_WIDTH
from ..errors import TrainingError
from ..training import TrainConfig, evaluate, resolve_schedule
from .base import _VAEBase, resolve_device, torch_threads

# Rows of training means used to measure the entropy-coded size of a candidate
# bit allocation (two default chunks: enough for zstd's statistics, cheap to pack).
_CALIBRATION_ROWS = 2 * DEFAULT_CHUNK_ROWS
# Most gradient steps of the tuning for quantized codes (see _tune_for_codes).
_TUNE_STEPS = 1000
# The allocation is sized on the training rows; new rows code a little larger or
# smaller (on ADBench test splits up to 3 % larger at 2 bytes/row), so aim 3 % low.
_BUDGET_MARGIN = 0.03
# Codec training of models with a linear (PCA) path (see _fit_linear_codec):
# gradient steps of the quantization-aware pass over encoder and decoder, per input
# kind (the decoder-only pass that follows gets a third as many) ...
_CODEC_STEPS = {"tabular": 3000, "image": 1500}
# ... rows held out to pick the best state (10 % of the rows, at most this many) ...
_CODEC_VAL_ROWS = 2000
# ... and rows whose decoder Jacobian sizes the bit allocation.
_SENSITIVITY_ROWS = {"tabular": 512, "image": 64}


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


class VAECompressor(TransformerMixin, _VAEBase):
    """Compress rows (or images) to quantized latent codes in a ``.vkc`` container.

    ``transform`` gives the posterior means (n, latent_dim); ``inverse_transform``
    turns codes back into rows in the input's own form (DataFrame with the same
    columns and dtypes, or images of the same shape and dtype).  :meth:`compress`
    and :meth:`decompress` go all the way to and from container bytes; for files
    larger than memory use :class:`vaekit.codec.CompressedWriter` and
    :func:`vaekit.codec.iter_decompressed` with this estimator.

    Parameters
    ----------
    bytes_per_row : float, optional
        Budget for the stored codes, in bytes per row (images: per image), after
        entropy coding; excludes id columns and the fixed per-file overhead
        (header, trailer, optional embedded model).  Fitting with a budget builds
        an MLP whose encoder mean and decoder mean each have a linear path next to
        the MLP (``"linear_path"`` in ``config_``; images use the MLP unless
        ``architecture="conv"``, which keeps the older VAE route below), then:

        1. start from PCA: the encoder's linear path gives the whitened principal
           coordinates of the rows in a *metric space* -- numeric columns in
           standardized units (the schema's asinh compression undone, then divided
           by the column's SD), binary columns and category indicators
           standardized, pixel values as they are -- and the decoder's linear path
           the PCA reconstruction; the MLP corrections start at exactly zero, so
           the model *is* the PCA codec.  ``latent_dim="auto"``:
           :func:`linear_latent_dim`;
        2. fit the quantizer (:mod:`vaekit.codec.quantize`) with each dimension's
           ``precision`` = 1 / the RMS norm of its decoder Jacobian column in the
           metric space (so at the start, exactly the allocation PCA gets with the
           same quantizer), the most bits whose entropy-coded size on the training
           rows is at most 97 % of the budget (3 % margin for new rows);
        3. train encoder and decoder (Adam, cosine-decayed step size; about 3,000
           steps for tables, 1,500 for images with ``epochs="auto"``, else
           ``epochs`` passes) on the rate-distortion objective at this allocation:
           squared error in the metric space (pixels clipped to [0, 1]; binary and
           categorical columns by their negative log-likelihood) of latent codes =
           means clipped to the quantizer range plus uniform noise of one step,
           range and step following the means' current spread;
        4. fit quantizers for the trained model (step 2 again, and the same bits
           with ranges widened just enough to fit the budget);
        5. train the decoder alone on the kept quantizer's actual codes (a third
           as many passes, half the step size).

        10 % of the rows (at most 2,000) are held out of the gradient steps; after
        the start and after every pass they are coded with the real quantizer, and
        the state and quantizer that coded them best are kept -- the PCA start
        included, so the codec is never worse than PCA with the same quantizer on
        those rows.  Finally the latent coordinates are standardized (training
        means: mean 0, SD 1; the change is folded into encoder, decoder and
        quantizer, so the codec does not change), the decoder's scale outputs are
        set to the codec's RMS error per column (pixel) and the encoder's posterior
        variance to the quantization noise ``step**2 / 12``, so :meth:`score` is a
        bound for the codec as fitted, with a KL term close to the code's size in
        nats.  Measured test RMSE and PSNR against PCA, JPEG and WebP:
        ``recipes/results/rate_distortion.md``.
    bits : int or list of int, optional
        Expert setting instead of a budget: bits per latent dimension (an int = the
        same for every informative dimension, i.e. one whose decoder Jacobian is
        not zero).  Mutually exclusive with ``bytes_per_row``; the steps above
        apply with these bits.  With neither, the plain VAE is kept and each
        informative dimension gets the fewest bits that make its step no larger
        than its posterior SD.
    beta : "auto" or float
        KL weight of VAE training: used without a budget or bits (``"auto"`` =
        1), and by convolutional image models with one (``"auto"`` =
        :func:`budget_beta`).  With the linear path the budget fixes the rate
        through the quantizer and no KL weight is used (``beta_`` = 0).

    Convolutional image models with a budget (``architecture="conv"``) follow the
    older route: VAE training with ``beta``, quantizer with precision = posterior
    SD, tuning for the codes (:meth:`_tune_for_codes`), refit, and decoder
    refinement (:meth:`_refine_decoder`).

    Other parameters are those of :class:`VAEAnomalyDetector` without the
    scoring ones (``n_samples`` is used by :meth:`score`, the mean ELBO in nats
    per row), except that ``hidden_dims="auto"`` for tables is twice as wide: 2x
    the whole encoder input, observed-masks included.

    Attributes
    ----------
    quantizer_ : LatentQuantizer
        Bit allocation and ranges (stored in the model file).
    beta_ : float
        KL weight actually used for training (0 with the linear path).
    history_ : list of dict
        With the linear path: one record per stage or pass (``phase``,
        ``val_distortion`` = mean loss per held-out row, ``train_loss``), and a
        last ``"calibrated"`` record with ``kept`` (the phase whose state was
        kept) and the bound (``train_elbo``, ``train_recon``, ``train_kl``).
    tune_history_ : list of float
        Mean training loss per row of each pass of the codec training (set by
        ``fit`` when a budget or bits are given; not stored in the model file).
    """

    _parameter_constraints: dict = {
        **_VAEBase._parameter_constraints,
        "beta": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "bytes_per_row": [None, Interval(Real, 0, None, closed="neither")],
        "bits": [None, Interval(Integral, 0, 16, closed="both"), list, tuple],
    }

    def __init__(self, *, bytes_per_row: float | None = None, bits: int | list | None = None,
                 latent_dim: int | str = "auto", hidden_dims: list | str = "auto",
                 epochs: int | str = "auto", batch_size: int | str = "auto",
                 learning_rate: float = 1e-3, beta: float | str = "auto", kind: str = "auto",
                 architecture: str = "auto", categorical_features: list | None = None,
                 min_scale: float | str = "auto", n_samples: int = 1, device: str = "auto",
                 n_jobs: int | None = None, random_state: Any = None,
                 verbose: bool = False) -> None:
        self.bytes_per_row = bytes_per_row
        self.bits = bits
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.beta = beta
        self.kind = kind
        self.architecture = architecture
        self.categorical_features = categorical_features
        self.min_scale = min_scale
        self.n_samples = n_samples
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> VAECompressor:
        """Fit the VAE and its quantizer on ``X`` (``y`` is ignored).

        Raises
        ------
        ValueError
            If both ``bytes_per_row`` and ``bits`` are set, or ``bits`` is a list
            whose length differs from the latent size or has values outside 0..16.
        """
        if self.bytes_per_row is not None and self.bits is not None:
            raise ValueError("set either bytes_per_row (a budget) or bits (an explicit "
                             "allocation), not both")
        if isinstance(self.bits, (list, tuple)):
            if any(isinstance(b, bool) or not isinstance(b, Integral) or not 0 <= b <= 16
                   for b in self.bits):
                raise ValueError(f"bits must be integers in 0..16, got {self.bits}")
            if self.latent_dim != "auto" and len(self.bits) != self.latent_dim:
                raise ValueError(f"bits has {len(self.bits)} entries but latent_dim is "
                                 f"{self.latent_dim}")
        if self.bytes_per_row is not None or self.bits is not None:
            tensors = self._fit_linear_codec(X)
            if tensors is not None:
                self._n_features_out = self.model_.latent_dim
                return self
        tensors = self._fit_vae(X)
        self._n_features_out = self.model_.latent_dim
        self.quantizer_ = self._fit_quantizer(tensors)
        if self.bytes_per_row is not None or self.bits is not None:
            inv_var = self._numeric_inv_var(tensors)
            self.tune_history_ = self._tune_for_codes(tensors, inv_var)
            # The encoder moved: measure its statistics again and size the
            # quantizer for the tuned means.
            self.latent_stats_ = self._latent_stats(tensors)
            self.quantizer_ = self._fit_quantizer(tensors)
            # Then teach the decoder the final quantizer's actual codes.
            self.tune_history_ += self._refine_decoder(tensors, inv_var)
        return self

    # ------------------------------------------------------------ linear-path codec
    def _fit_linear_codec(self, X: Any) -> dict[str, torch.Tensor] | None:
        """Fit a budgeted MLP model that starts as the PCA codec (see the class doc).

        Returns the prepared training tensors, or ``None`` (nothing fitted) when this
        path does not apply: a convolutional model, or a table without numeric columns.
        """
        self._validate_params()
        kind, data = self._as_input(X, reset=True)
        arch = self.architecture
        if kind == "image" and arch == "conv":
            return None
        self.input_kind_ = kind
        self.input_form_ = "frame" if isinstance(X, pd.DataFrame) else "array"
        if kind == "image":
            schema: Any = ImageSchema().fit(data)
        else:
            schema = TabularSchema(categorical=self._categorical_names(data)).fit(data)
        if kind == "tabular" and not schema.specs("numeric"):
            return None
        tensors = schema.encode(data)
        self.schema_ = schema
        self.config_ = self._linear_architecture(kind, schema, tensors)
        self.seed_ = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        # The budget fixes the rate through the quantizer, so no KL weight is used.
        self.beta_ = 0.0
        device = resolve_device(self.device)
        with torch_threads(self.n_jobs), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)
            model = build_vae(self.config_).to(device)
            model.eval()
            self.model_ = model
            self._init_from_pca(tensors)
            self._train_linear_codec(tensors)
            self._standardize_latents(tensors)
            self._calibrate_scales(tensors)
        self.latent_stats_ = self._latent_stats(tensors)
        return tensors

    def _linear_architecture(self, kind: str, schema: Any,
                             tensors: dict[str, torch.Tensor]) -> dict:
        """Architecture config with a ``linear_path`` (see :func:`vaekit.core.build_vae`)."""
        config: dict[str, Any] = {}
        if kind == "image":
            n_pix = int(schema.n_pixels)
            hidden = ([512, 256] if self.hidden_dims == "auto"
                      else [int(h) for h in self.hidden_dims])
            config = {"kind": "image", "architecture": "mlp", "hidden": hidden,
                      "conv_base": 32, "latent_dim": 0,
                      "min_scale": float(1e-3 if self.min_scale == "auto" else self.min_scale),
                      "shape": list(schema.shape)}
            linear = {"n_in": n_pix, "offset": None, "scale": None, "asinh": None,
                      "asinh_width": ASINH_WIDTH}
            n_linear = n_pix
        else:
            # The base class's table config (hidden sizes, likelihood floors, layout).
            config = _VAEBase._architecture(self, kind, schema, tensors)
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
        if self.latent_dim != "auto":
            latent = int(self.latent_dim)
        elif isinstance(self.bits, (list, tuple)):
            latent = len(self.bits)
        else:
            latent = linear_latent_dim(self.bytes_per_row, n_linear, kind)
        config["latent_dim"] = latent
        config["linear_path"] = linear
        return config

    def _metric_values(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(target values in the metric space, observed mask) of a prepared batch."""
        if self.input_kind_ == "image":
            v = b["x"].flatten(start_dim=1)
            return v, torch.ones_like(v)
        return self.model_.decoder.warp.to_metric(b["num"]), b["num_mask"]

    @torch.no_grad()
    def _init_from_pca(self, tensors: dict[str, torch.Tensor]) -> None:
        """Linear paths = PCA of the encoder's linear features in the metric space.

        Encoder: whitened principal coordinates (unit variance, in order of
        decreasing variance); decoder: the PCA reconstruction.  The MLP corrections
        start at zero, so the model is exactly the PCA codec at this point.
        """
        enc, dec = self.model_.encoder, self.model_.decoder
        x = tensors["x"].flatten(start_dim=1) if self.input_kind_ == "image" else tensors["x"]
        v = enc.warp.to_metric(x[:, : enc.warp.n].float()).double()
        mean = v.mean(dim=0)
        vc = v - mean
        cov = (vc.T @ vc / max(len(v), 1)).numpy()
        lam, vecs = np.linalg.eigh(cov)
        order = np.argsort(lam)[::-1]
        lam, vecs = np.maximum(lam[order], 0.0), vecs[:, order]
        k = min(self.model_.latent_dim, len(lam))
        floor = max(float(lam[0]), 1e-12) * 1e-8 if len(lam) else 1e-12
        lam_k = np.maximum(lam[:k], floor)
        q = torch.from_numpy(vecs[:, :k])
        w_enc = (q / torch.from_numpy(np.sqrt(lam_k))).T  # (k, n_in)
        enc.linear.weight.zero_()
        enc.linear.weight[:k] = w_enc.float()
        enc.linear.bias.zero_()
        enc.linear.bias[:k] = (-(w_enc @ mean)).float()
        n_out = dec.n_out
        dec.linear.weight.zero_()
        dec.linear.weight[:, :k] = (q[:n_out] * torch.from_numpy(np.sqrt(lam_k))).float()
        dec.linear.bias.copy_(mean[:n_out].float())

    def _sensitivity(self, mu: np.ndarray) -> np.ndarray:
        """RMS norm of each latent dimension's decoder Jacobian column, metric units.

        For a small quantization error ``e`` the squared reconstruction error is about
        ``sum_j e_j**2 * sens_j**2``, so ``1 / sens`` is the error scale each
        dimension tolerates: the quantizer's ``precision``.  For the PCA start this
        gives exactly the allocation PCA gets with the same quantizer.
        """
        dec = self.model_.decoder
        n = len(mu)
        m = min(n, _SENSITIVITY_ROWS[self.input_kind_])
        idx = np.linspace(0, n - 1, m).round().astype(np.int64) if n else np.zeros(0, np.int64)
        z = torch.from_numpy(mu[idx]).float().to(resolve_device(self.device))

        def f(zz: torch.Tensor) -> torch.Tensor:
            return dec.metric_mean(zz)[0]

        total = torch.zeros(mu.shape[1], dtype=torch.float64)
        jac = torch.func.vmap(torch.func.jacfwd(f))
        with torch.no_grad():
            for start in range(0, m, 16):
                j = jac(z[start:start + 16])  # (rows, n_out, latent)
                total += j.double().pow(2).sum(dim=(0, 1)).cpu()
        return np.sqrt(total.numpy() / max(m, 1))

    def _fit_codec_quantizer(self, mu: np.ndarray) -> LatentQuantizer:
        """Quantizer for the training means ``mu`` of the current encoder, bits sized by
        decoder sensitivity."""
        if isinstance(self.bits, (list, tuple)):
            # Bits given per dimension: fit_quantizer uses neither precision nor KL.
            ones = np.ones(mu.shape[1])
            return self._budget_quantizer(mu, ones, ones)
        sens = self._sensitivity(mu)
        active = sens > 1e-9 * max(float(sens.max(initial=0.0)), 1e-30)
        precision = np.where(active, 1.0 / np.maximum(sens, 1e-30), 1.0)
        # kl = 0 marks "no information": such a dimension never gets bits.
        return self._budget_quantizer(mu, precision, active.astype(np.float64))

    def _rescaled_quantizer(self, mu: np.ndarray,
                            bits: tuple[int, ...]) -> LatentQuantizer | None:
        """Quantizer with ``bits`` for the current training means ``mu``, within the budget.

        Ranges ``center +- halfwidth(bits) * f * SD`` with the smallest factor
        ``f >= 1`` (wider range, coarser steps) whose entropy-coded size on the
        training means fits the budget; ``None`` if even ``f = 2`` does not.
        """
        center, sd = mu.mean(axis=0), mu.std(axis=0)
        if self.bytes_per_row is None:
            return LatentQuantizer.from_bits(bits, center, sd)
        sample, limit = self._calibration(mu)

        def make(f: float) -> LatentQuantizer:
            return LatentQuantizer.from_bits(bits, center, sd * f)

        def fits(f: float) -> bool:
            return payload_bytes_per_row(make(f), sample, DEFAULT_CHUNK_ROWS) <= limit

        if fits(1.0):
            return make(1.0)
        if not fits(2.0):
            return None
        lo, hi = 1.0, 2.0
        for _ in range(8):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if fits(mid) else (mid, hi)
        return make(hi)

    def _codec_loss(self, z: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-row distortion of decoding ``z``: squared error in the metric space
        (standardized columns; pixel values, clipped to [0, 1] as stored), plus the
        negative log-likelihood (nats) of binary and categorical columns."""
        model = self.model_
        v_hat, rest = model.decoder.metric_mean(z)
        v, mask = self._metric_values(b)
        if self.input_kind_ == "image":
            return (v_hat.clamp(0.0, 1.0) - v).pow(2).sum(dim=-1)
        loss = ((v_hat - v).pow(2) * mask).sum(dim=-1)
        lik = model.likelihood
        if lik.n_binary or lik.cat_sizes:
            params = torch.cat([model.decoder.warp.from_metric(v_hat), rest], dim=-1)
            loss = loss - lik.log_prob(params, b)[:, lik.n_numeric:].sum(dim=-1)
        return loss

    @torch.no_grad()
    def _coded_distortion(self, tensors: dict[str, torch.Tensor], q: LatentQuantizer) -> float:
        """Mean :meth:`_codec_loss` per row with the actual quantized codes."""
        device = resolve_device(self.device)
        mu = self.transform_tensors(tensors)
        z = torch.from_numpy(q.decode(q.encode(mu))).float()
        total, n = 0.0, len(z)
        for start in range(0, n, 1024):
            b = to_device({k: v[start:start + 1024] for k, v in tensors.items()}, device)
            total += float(self._codec_loss(z[start:start + 1024].to(device), b).sum())
        return total / max(n, 1)

    def _train_linear_codec(self, tensors: dict[str, torch.Tensor]) -> None:
        """Quantization-aware training from the PCA start, keeping the best state.

        1. quantizer for the PCA start (bits by decoder sensitivity);
        2. encoder and decoder trained on ``mu + uniform noise of one step`` (the
           quantization error's distribution) to minimise :meth:`_codec_loss`;
        3. quantizer refitted to the trained encoder and decoder;
        4. decoder alone trained on the final quantizer's actual codes.

        After every pass the held-out rows (10 %, at most 2,000; the training rows
        when there are fewer than 100) are coded with the real quantizer; the state
        and quantizer with the lowest distortion there are kept -- the PCA start
        included, so the result is never worse than PCA on those rows.
        """
        model, device = self.model_, resolve_device(self.device)
        n = len(tensors["x"])
        gen = torch.Generator().manual_seed(self.seed_)
        order = torch.randperm(n, generator=gen)
        n_val = min(_CODEC_VAL_ROWS, n // 10) if n >= 100 else 0
        val_idx, train_idx = order[:n_val], order[n_val:]
        train = take(tensors, train_idx)
        held = take(tensors, val_idx) if n_val else train
        _, batch, _ = resolve_schedule(len(train_idx), TrainConfig(
            batch_size=None if self.batch_size == "auto" else int(self.batch_size),
            validation_fraction=0.0))
        steps_per_pass = max(1, math.ceil(len(train_idx) / batch))
        if self.epochs == "auto":
            passes = max(2, math.ceil(_CODEC_STEPS[self.input_kind_] / steps_per_pass))
        else:
            passes = int(self.epochs)

        q = self._fit_codec_quantizer(self.transform_tensors(tensors))
        history: list[dict[str, float]] = []
        best = {"loss": self._coded_distortion(held, q), "state": _copy_state(model), "q": q,
                "phase": "pca"}
        history.append({"epoch": 0, "phase": "pca", "val_distortion": best["loss"]})

        def consider(phase: str, epoch: int, train_loss: float | None,
                     quant: LatentQuantizer) -> None:
            loss = self._coded_distortion(held, quant)
            record = {"epoch": epoch, "phase": phase, "val_distortion": loss}
            if train_loss is not None:
                record["train_loss"] = train_loss
            history.append(record)
            if loss < best["loss"]:
                best.update(loss=loss, state=_copy_state(model), q=quant, phase=phase)

        # 2. encoder + decoder with uniform noise of the quantizer's step.  The
        # quantizer is refitted to the trained means, and its steps and range scale
        # with their spread (step = 2 * halfwidth(bits) * SD / 2**bits): so the noise
        # and the clipping range follow the batch's current spread, else the
        # encoder would just stretch its means to drown the noise.
        def noisy_loss(b: dict[str, torch.Tensor], idx: torch.Tensor, g: torch.Generator,
                       quant: LatentQuantizer) -> torch.Tensor:
            bits = torch.tensor(quant.bits, dtype=torch.float32, device=device)
            on = bits > 0
            rel_step = 2.0 * torch.from_numpy(halfwidth(quant.bits)).float().to(device) / bits.exp2()
            mu, _ = model.encode(b["x"])
            center = mu.detach().mean(dim=0)
            sd = mu.std(dim=0, unbiased=False).clamp_min(1e-6)
            reach = torch.from_numpy(halfwidth(quant.bits)).float().to(device) * sd
            clipped = torch.minimum(torch.maximum(mu, center - reach), center + reach)
            noise = ((torch.rand(mu.shape, generator=g) - 0.5).to(device)) * rel_step * sd
            z = torch.where(on, clipped + noise, center)
            return self._codec_loss(z, b).mean()

        # While the encoder moves, passes are judged with the quantizer's bits at the
        # current spread of the means (what the noise stands for).
        phase = {"loss": math.inf, "state": None}

        def consider_moving(name: str, epoch: int, train_loss: float,
                            quant: LatentQuantizer) -> None:
            mu = self.transform_tensors(train)
            moved = LatentQuantizer.from_bits(quant.bits, mu.mean(axis=0), mu.std(axis=0))
            loss = self._coded_distortion(held, moved)
            history.append({"epoch": epoch, "phase": name, "train_loss": train_loss,
                            "val_distortion": loss})
            if loss < phase["loss"]:
                phase.update(loss=loss, state=_copy_state(model))

        self._codec_passes(train, list(model.parameters()), noisy_loss, q, passes, batch,
                           float(self.learning_rate), gen, consider_moving, "codes")
        # 3. quantizers for the phase's best state: refitted (bits by sensitivity), and
        # the same bits at the means' new spread if that still fits the budget.
        if phase["state"] is not None:
            model.load_state_dict(phase["state"])
            mu = self.transform_tensors(tensors)  # consider() leaves the model as it is
            consider("requantize", 0, None, self._fit_codec_quantizer(mu))
            moved = self._rescaled_quantizer(mu, q.bits)
            if moved is not None:
                consider("rescale", 0, None, moved)
        model.load_state_dict(best["state"])
        q = best["q"]
        # 4. the decoder alone, on the kept quantizer's actual codes.
        z_hat = torch.from_numpy(q.decode(q.encode(self.transform_tensors(train)))).float()

        def code_loss(b: dict[str, torch.Tensor], idx: torch.Tensor, g: torch.Generator,
                      quant: LatentQuantizer) -> torch.Tensor:
            return self._codec_loss(z_hat[idx].to(device), b).mean()

        self._codec_passes(train, list(model.decoder.parameters()), code_loss, q,
                           max(1, passes // 3), batch, float(self.learning_rate) / 2, gen,
                           consider, "decoder")
        model.load_state_dict(best["state"])
        self.quantizer_ = best["q"]
        model.eval()
        self.history_ = history
        self._kept_phase = best["phase"]
        self.tune_history_ = [h["train_loss"] for h in history if "train_loss" in h]

    def _codec_passes(self, data: dict[str, torch.Tensor], params: list[torch.nn.Parameter],
                      loss_fn: Any, quant: LatentQuantizer, passes: int, batch: int, lr: float,
                      gen: torch.Generator, after_pass: Any, phase: str) -> None:
        """Adam passes (cosine-decayed step size) over ``data``; ``after_pass`` after each."""
        model, device = self.model_, resolve_device(self.device)
        n = len(data["x"])
        steps_per_pass = max(1, math.ceil(n / batch))
        total = passes * steps_per_pass
        opt = torch.optim.Adam(params, lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
        for epoch in range(passes):
            model.train()
            perm = torch.randperm(n, generator=gen)
            running = 0.0
            for start in range(0, n, batch):
                idx = perm[start:start + batch]
                loss = loss_fn(to_device(take(data, idx), device), idx, gen, quant)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"codec training diverged ({phase} pass {epoch + 1}): loss is "
                        f"{loss.item()}. Lower learning_rate, or look for extreme values "
                        "in the data.")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 10.0)
                opt.step()
                sched.step()
                running += float(loss.detach()) * len(idx)
            model.eval()
            after_pass(phase, epoch + 1, running / n, quant)

    @torch.no_grad()
    def _standardize_latents(self, tensors: dict[str, torch.Tensor]) -> None:
        """Change latent coordinates so the training means have mean 0 and SD 1 per dimension.

        Quantization-aware training leaves the encoder free to spread its means; the
        prior is N(0, I), so a stretched latent space inflates the KL term (and
        :meth:`score`) by thousands of nats without changing the codec.  The affine map
        ``z = c + s * z'`` is folded into the encoder's mean outputs, the decoder's first
        layers and the quantizer, so codes and reconstructions stay the same (up to
        float rounding).
        """
        model = self.model_
        mu = self.transform_tensors(tensors)
        c = mu.mean(axis=0)
        s = mu.std(axis=0)
        s = np.where(s > 1e-12, s, 1.0)
        enc, dec, lat = model.encoder, model.decoder, model.latent_dim
        c_t = torch.from_numpy(c).float().to(enc.linear.weight.device)
        s_t = torch.from_numpy(s).float().to(enc.linear.weight.device)
        enc.linear.weight.div_(s_t[:, None])
        enc.linear.bias.sub_(c_t).div_(s_t)
        enc.head.weight[:lat].div_(s_t[:, None])
        enc.head.bias[:lat].div_(s_t)
        for layer in (dec.linear, dec.body[0]):
            layer.bias.add_(layer.weight @ c_t)
            layer.weight.mul_(s_t[None, :])
        q = self.quantizer_
        self.quantizer_ = LatentQuantizer(
            bits=q.bits,
            lo=tuple(float(v) for v in (np.asarray(q.lo) - c) / s),
            step=tuple(float(v) for v in np.asarray(q.step) / s),
            center=tuple(float(v) for v in (np.asarray(q.center) - c) / s),
        )

    @torch.no_grad()
    def _calibrate_scales(self, tensors: dict[str, torch.Tensor]) -> None:
        """Make the likelihood and posterior describe the codec (so ``score`` means something).

        The decoder's scale outputs become constants per column (pixel): the RMS
        error of the coded training rows; the encoder's log-variance becomes the
        quantization noise ``step**2 / 12`` of each stored dimension (0 = the
        prior's for the others).  Neither changes the codes or the reconstructions.
        """
        model, q = self.model_, self.quantizer_
        device = resolve_device(self.device)
        mu = self.transform_tensors(tensors)
        z = torch.from_numpy(q.decode(q.encode(mu))).float()
        lat = model.latent_dim
        head = model.encoder.head
        bits = torch.tensor(q.bits) > 0
        step = torch.tensor(q.step, dtype=torch.float64)
        logvar = torch.where(bits, torch.log(step.pow(2) / 12.0 + 1e-12), torch.zeros(lat,
                             dtype=torch.float64))
        head.weight[lat:] = 0.0
        head.bias[lat:] = logvar.clamp(-15.0, 7.0).float().to(head.bias.device)
        lik = model.likelihood
        sq = None
        count = None
        for start in range(0, len(z), 1024):
            b = to_device({k: v[start:start + 1024] for k, v in tensors.items()}, device)
            params = model.decode(z[start:start + 1024].to(device))
            if self.input_kind_ == "image":
                err = (lik.mean(params)["x"] - b["x"]).pow(2).flatten(1)
                mask = torch.ones_like(err)
            else:
                err = (lik.split(params)[0] - b["num"]).pow(2) * b["num_mask"]
                mask = b["num_mask"]
            sq = err.sum(0).double() if sq is None else sq + err.sum(0).double()
            count = mask.sum(0).double() if count is None else count + mask.sum(0).double()
        rmse = (sq / count.clamp_min(1.0)).sqrt().cpu()
        dec_head = model.decoder.head
        n_out = model.decoder.n_out
        if self.input_kind_ == "image":
            target = rmse * math.sqrt(3.0) / math.pi  # logistic scale with that SD
            floor = torch.full_like(target, float(lik.min_scale))
        else:
            target = rmse
            floor = lik.min_scale.double().cpu()
        excess = (target - floor).clamp_min(1e-4)
        raw = torch.log(torch.expm1(excess))  # softplus^-1
        dec_head.weight[n_out:2 * n_out] = 0.0
        dec_head.bias[n_out:2 * n_out] = raw.float().to(dec_head.bias.device)
        # One summary record with the bound, as the VAE training's history has.
        ev = evaluate(model, tensors, torch.Generator().manual_seed(self.seed_ + 1), 4096,
                      device)
        self.history_.append({"epoch": len(self.history_), "phase": "calibrated",
                              "kept": getattr(self, "_kept_phase", "pca"),
                              "train_elbo": ev["elbo"], "train_recon": ev["recon"],
                              "train_kl": ev["kl"]})

    def _resolved_beta(self) -> float:
        return budget_beta(self.bytes_per_row) if self.beta == "auto" else float(self.beta)

    def _train_config(self) -> TrainConfig:
        # As the base class, but with the KL weight resolved from the budget.
        self.beta_ = self._resolved_beta()
        # Early stopping and the final "best epoch" pick both watch the beta = 1
        # ELBO.  With beta < 1 the encoder is meant to spend more nats than that
        # objective likes, so it peaks early while reconstructions keep improving:
        # a beta = 0.08 fit of a 4-column table stopped after 9 of 40 epochs with
        # 28x the error of the full run.  So when beta < 1 the KL weight ramps up
        # over the whole run (warmup_fraction = 1); the training loop judges no
        # epoch during warm-up, so it trains every planned epoch and keeps the last.
        warmup = 0.1 if self.beta_ >= 1.0 else 1.0
        return dataclasses.replace(super()._train_config(), warmup_fraction=warmup)

    def _auto_hidden(self, schema: Any, d_in: int) -> list[int]:
        """2x the whole encoder input (values and masks), wider than the detector's.

        A codec has no contamination to resist, and the capacity pays: sizing on the
        values alone measured cardio at 16 B/row 0.116 against 0.041 standardized
        RMSE (recipes/rate_distortion.py).
        """
        return auto_hidden(d_in)

    def _architecture(self, kind: str, schema: Any, tensors: dict[str, torch.Tensor]) -> dict:
        config = super()._architecture(kind, schema, tensors)
        if self.latent_dim == "auto":
            if isinstance(self.bits, (list, tuple)):
                config["latent_dim"] = len(self.bits)
            elif self.bytes_per_row is not None:
                n_features = (schema.n_pixels if kind == "image" else len(schema.columns))
                config["latent_dim"] = budget_latent_dim(self.bytes_per_row, n_features, kind)
        return config

    def _fit_quantizer(self, tensors: dict[str, torch.Tensor]) -> LatentQuantizer:
        """Quantizer from the training means and ``latent_stats_`` (see the class doc)."""
        stats = self.latent_stats_
        return self._budget_quantizer(self.transform_tensors(tensors),
                                      np.asarray(stats["posterior_sd"]), np.asarray(stats["kl"]))

    def _budget_quantizer(self, mu: np.ndarray, precision: np.ndarray,
                          kl: np.ndarray) -> LatentQuantizer:
        """:func:`fit_quantizer` for training means ``mu`` with ``bits`` or the budget
        (less the safety margin), its size measured on evenly spaced rows."""
        sample, limit = self._calibration(mu)
        return fit_quantizer(
            center=mu.mean(axis=0), scale=mu.std(axis=0), precision=precision, kl=kl,
            bits=None if self.bits is None else (list(self.bits) if isinstance(
                self.bits, (list, tuple)) else int(self.bits)),
            bytes_per_row=limit, sample=sample, chunk_rows=DEFAULT_CHUNK_ROWS,
        )

    def _calibration(self, mu: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Rows a quantizer's size is measured on, and the byte budget it must meet."""
        # Evenly spaced rows (not random) keep the calibration deterministic; the
        # margin leaves room for new rows coding a little larger than training rows.
        step = max(1, len(mu) // _CALIBRATION_ROWS)
        limit = None if self.bytes_per_row is None else self.bytes_per_row * (1.0 - _BUDGET_MARGIN)
        return mu[::step][:_CALIBRATION_ROWS], limit

    @torch.no_grad()
    def _numeric_inv_var(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """1 / (mean predicted variance) per numeric column over the training rows."""
        model, lik = self.model_, self.model_.likelihood
        if self.input_kind_ == "image" or not lik.n_numeric:
            return None
        with torch_threads(self.n_jobs):
            (scale,) = map_blocks(
                lambda b: (lik.split(model.decode(model.encode(b["x"])[0]))[1],),
                {"x": tensors["x"]}, resolve_device(self.device))
        return (1.0 / scale.pow(2).mean(dim=0)).float().to(resolve_device(self.device))

    def _tune_for_codes(self, tensors: dict[str, torch.Tensor],
                        inv_var: torch.Tensor | None) -> list[float]:
        """Fine-tune encoder and decoder for the quantized codes, on the training rows.

        Two mismatches between ELBO training and coding are fixed here:

        * the decoder saw means blurred by Gaussian noise of the posterior SD, but
          gets means rounded to the quantizer's steps, which at a small budget are
          several posterior SDs wide.  During tuning the latent input is the mean
          plus uniform noise of exactly one step (the quantization error's
          distribution; Balle et al., 2017), and 0-bit dimensions are fixed at
          their center;
        * the likelihood's per-row scale lets the model give up on rare values (a
          large predicted SD costs less than encoding the value): on cardio 6 of 21
          columns had a reconstruction RMSE of 0.6-1.0 SD after training.  Tuning
          scores numeric columns by squared error divided by each column's
          mean predicted variance (a homoscedastic version of the fitted
          likelihood) and pixels by squared error; binary and categorical columns
          keep their log-likelihood.

        Returns the mean loss of each pass (per row; nats for the discrete parts).
        """
        q = self.quantizer_
        model, device = self.model_, resolve_device(self.device)
        bits = (torch.tensor(q.bits) > 0).to(device)
        step = torch.where(bits.cpu(), torch.tensor(q.step), torch.zeros(len(q.bits))).float()
        center = torch.tensor(q.center).float().to(device)

        def loss(b: dict[str, torch.Tensor], idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            mu, _ = model.encode(b["x"])
            noise = (torch.rand(mu.shape, generator=gen) - 0.5) * step
            z = torch.where(bits, mu + noise.to(device), center)
            return self._code_loss(model.decode(z), b, inv_var)

        # A third of the training steps, at most _TUNE_STEPS: a tune-up, not a second run.
        return self._fine_tune(tensors, list(model.parameters()), loss, share=3, seed_offset=2)

    def _fine_tune(self, tensors: dict[str, torch.Tensor], params: list[torch.nn.Parameter],
                   loss_fn: Any, *, share: int, seed_offset: int) -> list[float]:
        """Adam passes over ``tensors`` minimising ``loss_fn(batch, index, generator)``.

        Runs ``1/share`` of the training run's steps (at most ``_TUNE_STEPS``) at half
        its learning rate; returns the mean loss of each pass.
        """
        model, device = self.model_, resolve_device(self.device)
        n = len(tensors["x"])
        _, batch, _ = resolve_schedule(n, self._train_config())
        steps = max(1, math.ceil(n / batch))
        budget = min(_TUNE_STEPS, max(1, len(self.history_) * steps // share))
        passes = max(1, math.ceil(budget / steps))
        gen = torch.Generator().manual_seed(self.seed_ + seed_offset)
        opt = torch.optim.Adam(params, lr=float(self.learning_rate) / 2)
        history = []
        with torch_threads(self.n_jobs):
            model.train()
            for _ in range(passes):
                order = torch.randperm(n, generator=gen)
                total = 0.0
                for start in range(0, n, batch):
                    idx = order[start:start + batch]
                    loss = loss_fn(to_device(take(tensors, idx), device), idx, gen)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 10.0)
                    opt.step()
                    total += float(loss.detach()) * len(idx)
                history.append(total / n)
            model.eval()
        return history

    def _code_loss(self, params: torch.Tensor, b: dict[str, torch.Tensor],
                   inv_var: torch.Tensor | None) -> torch.Tensor:
        """Loss of :meth:`_tune_for_codes` for a batch (mean per row).

        ``inv_var``: 1 / mean predicted variance per numeric column (tables).
        """
        lik = self.model_.likelihood
        if self.input_kind_ == "image":
            return (lik.mean(params)["x"] - b["x"]).pow(2).flatten(1).sum(1).mean()
        loss = -lik.log_prob(params, b)[:, lik.n_numeric:].sum(dim=-1).mean()
        if inv_var is not None:
            err = (b["num"] - lik.split(params)[0]).pow(2) * b["num_mask"]
            loss = loss + 0.5 * (err * inv_var).sum(dim=-1).mean()
        return loss

    def _refine_decoder(self, tensors: dict[str, torch.Tensor],
                        inv_var: torch.Tensor | None) -> list[float]:
        """Decoder-only passes on the final quantizer's actual codes (same loss)."""
        q = self.quantizer_
        model, device = self.model_, resolve_device(self.device)
        z_hat = torch.from_numpy(q.decode(q.encode(self.transform_tensors(tensors)))).float()

        def loss(b: dict[str, torch.Tensor], idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            return self._code_loss(model.decode(z_hat[idx].to(device)), b, inv_var)

        return self._fine_tune(tensors, list(model.decoder.parameters()), loss, share=5,
                               seed_offset=3)

    def transform_tensors(self, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        """Posterior means (n, latent_dim) of already prepared tensors, float64."""
        return self._encode_tensors(tensors)[0].numpy()

    # ------------------------------------------------------------ codes
    def transform(self, X: Any) -> np.ndarray:
        """Posterior means, shape (n, latent_dim), float64."""
        return self._encode_means(X)[0]

    def inverse_transform(self, X: Any) -> Any:
        """Reconstruct rows from codes ``X`` (n, latent_dim), in the input's own form."""
        return self._decode_means(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``latent0``, ``latent1``, ..."""
        check_is_fitted(self, "model_")
        return np.asarray([f"latent{i}" for i in range(self.model_.latent_dim)], dtype=object)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean bound on log p(x) per row, in nats (higher is better)."""
        return float(np.mean(self._row_scores(X).elbo))

    # ------------------------------------------------------------ containers
    def compress(self, X: Any, id_columns: list | tuple | None = None,
                 embed_model: bool = False) -> bytes:
        """Compress rows to a complete ``.vkc`` container.

        Parameters
        ----------
        X : DataFrame, array (n, d) or images (n, H, W[, C])
            A DataFrame must hold the model's columns plus the ``id_columns``.
        id_columns : list of str, optional
            Columns carried losslessly (ids, join keys).
        embed_model : bool
            Store this model in the container, so it decompresses without the
            model file (adds the model file's size once).

        Returns
        -------
        bytes
            Deterministic: the same rows and model give the same bytes.
        """
        check_is_fitted(self, "model_")
        buf = io.BytesIO()
        with CompressedWriter(buf, self, id_columns=tuple(id_columns or ()),
                              embed_model=embed_model, n_rows=len(X)) as writer:
            writer.write(X)
        return buf.getvalue()

    def decompress(self, data: bytes) -> Any:
        """Rows from :meth:`compress` output, in the input's own form.

        Raises
        ------
        FileFormatError
            Damaged data, or a container written by another model that does not
            embed its model.
        """
        check_is_fitted(self, "model_")
        parts = list(iter_decompressed(io.BytesIO(bytes(data)), self))
        # Parts carry consecutive row indices, so concatenating them renumbers nothing.
        return _concat(parts) if parts else _empty_output(self)

    # ------------------------------------------------------------ persistence
    def _extra_metadata(self) -> dict[str, Any]:
        return {"quantizer": self.quantizer_.to_dict(), "beta_used": self.beta_}

    def _restore(self, tensors: dict[str, torch.Tensor], fitted: dict[str, Any]) -> None:
        super()._restore(tensors, fitted)
        self._n_features_out = self.model_.latent_dim
        # Files written before quantizers were stored get the default one from
        # latent_stats_ (vaekit.codec.quantizer_for), like a detector's file.
        q = fitted.get("quantizer")
        self.quantizer_ = None if q is None else LatentQuantizer.from_dict(q)
        self.beta_ = float(fitted.get("beta_used", 1.0 if self.beta == "auto" else self.beta))


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
