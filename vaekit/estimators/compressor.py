"""VAECompressor: rows (or images) to compact quantized codes and back, within a byte budget."""

from __future__ import annotations

import io
import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..codec.compressor import DEFAULT_CHUNK_ROWS, CompressedWriter, iter_decompressed
from ..codec.quantize import LatentQuantizer, fit_quantizer
from ..core import TrainConfig, resolve_schedule
from ..core.batching import map_blocks, take, to_device
from .base import _VAEBase, resolve_device, torch_threads

# Rows of training means used to measure the entropy-coded size of a candidate
# bit allocation (two default chunks: enough for zstd's statistics, cheap to pack).
_CALIBRATION_ROWS = 2 * DEFAULT_CHUNK_ROWS
# Most gradient steps of the tuning for quantized codes (see _tune_for_codes).
_TUNE_STEPS = 1000
# The allocation is sized on the training rows; new rows code a little larger or
# smaller (on ADBench test splits up to 3 % larger at 2 bytes/row), so aim 3 % low.
_BUDGET_MARGIN = 0.03


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
        (header, trailer, optional embedded model).  Fitting with a budget:

        1. train the VAE with ``beta="auto"`` = ``min(1, 0.25 / bytes_per_row)``
           (:func:`budget_beta`) and ``latent_dim="auto"`` from
           :func:`budget_latent_dim`; when beta < 1 the KL weight ramps up over the
           whole run and the last epoch is kept (the training loop's early stopping
           judges the beta = 1 ELBO, which stops a beta < 1 fit far too early);
        2. fit the quantizer (:mod:`vaekit.codec.quantize`): collapsed dimensions
           get 0 bits, the rest bits in greedy order of step / posterior SD, the
           most bits whose entropy-coded size on the training rows is at most 97 %
           of the budget (3 % margin for new rows);
        3. tune encoder and decoder for the codes (:meth:`_tune_for_codes`: latent
           input = mean + one step of uniform noise, numeric columns scored by
           squared error over their mean predicted variance, pixels by squared
           error; a third of the training steps, at most 1000), then refit the
           quantizer to the tuned means (step 2 again);
        4. refine the decoder alone on the final codes of the training rows (a
           fifth of the training steps, at most 1000).

        Measured on cardio (test RMSE, standardized units; PCA with the same
        quantizer in brackets): at 2 bytes/row 0.771 after step 2, 0.707 with step
        4 only, 0.619 with steps 3-4 (0.613); at 16 bytes/row 0.531, 0.514 and
        0.265 (0.196).  After steps 3-4 the numeric scale outputs no longer match the
        tuned means, so :meth:`score` of a budgeted model is not a calibrated ELBO
        (a detector's model file is never tuned).
    bits : int or list of int, optional
        Expert setting instead of a budget: bits per latent dimension (an int = the
        same for every informative dimension; collapsed ones still get 0).
        Mutually exclusive with ``bytes_per_row``; steps 2 (with these bits) to 4
        above apply.  With neither, the plain VAE is kept and each informative
        dimension gets the fewest bits that make its step no larger than its
        posterior SD.
    beta : "auto" or float
        KL weight during training; ``"auto"`` = 1 without a budget, else as above.

    Other parameters are those of :class:`VAEAnomalyDetector` without the
    scoring ones (``n_samples`` is used by :meth:`score`, the mean ELBO in nats
    per row).

    Attributes
    ----------
    quantizer_ : LatentQuantizer
        Bit allocation and ranges (stored in the model file).
    beta_ : float
        KL weight actually used for training.
    tune_history_ : list of float
        Mean loss per row of each pass of steps 3 and 4 (set by ``fit`` when a
        budget or bits are given; not stored in the model file).
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
        tensors = self._fit_vae(X)
        self._n_features_out = self.model_.latent_dim
        self.quantizer_ = self._fit_quantizer(X)
        if self.bytes_per_row is not None or self.bits is not None:
            inv_var = self._numeric_inv_var(tensors)
            self.tune_history_ = self._tune_for_codes(tensors, inv_var)
            # The encoder moved: measure its statistics again and size the
            # quantizer for the tuned means.
            self.latent_stats_ = self._latent_stats(tensors)
            self.quantizer_ = self._fit_quantizer(X)
            # Then teach the decoder the final quantizer's actual codes.
            self.tune_history_ += self._refine_decoder(tensors, inv_var)
        return self

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
        return TrainConfig(
            epochs=None if self.epochs == "auto" else int(self.epochs),
            batch_size=None if self.batch_size == "auto" else int(self.batch_size),
            learning_rate=float(self.learning_rate),
            beta=self.beta_,
            warmup_fraction=warmup,
        )

    def _architecture(self, kind: str, schema: Any, tensors: dict[str, torch.Tensor]) -> dict:
        config = super()._architecture(kind, schema, tensors)
        if self.latent_dim == "auto":
            if isinstance(self.bits, (list, tuple)):
                config["latent_dim"] = len(self.bits)
            elif self.bytes_per_row is not None:
                n_features = (schema.n_pixels if kind == "image" else len(schema.columns))
                config["latent_dim"] = budget_latent_dim(self.bytes_per_row, n_features, kind)
        return config

    def _fit_quantizer(self, X: Any) -> LatentQuantizer:
        """Quantizer from the training means and ``latent_stats_`` (see the class doc)."""
        mu = self.transform(X)
        stats = self.latent_stats_
        # Evenly spaced rows (not random) keep the calibration deterministic.
        step = max(1, len(mu) // _CALIBRATION_ROWS)
        return fit_quantizer(
            center=mu.mean(axis=0), scale=mu.std(axis=0),
            precision=np.asarray(stats["posterior_sd"]), kl=np.asarray(stats["kl"]),
            bits=None if self.bits is None else (list(self.bits) if isinstance(
                self.bits, (list, tuple)) else int(self.bits)),
            bytes_per_row=(None if self.bytes_per_row is None
                           else self.bytes_per_row * (1.0 - _BUDGET_MARGIN)),
            sample=mu[::step][:_CALIBRATION_ROWS],
            chunk_rows=DEFAULT_CHUNK_ROWS,
        )

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

    @torch.no_grad()
    def transform_tensors(self, tensors: dict[str, torch.Tensor]) -> np.ndarray:
        """Posterior means (n, latent_dim) of already prepared tensors, float64."""
        with torch_threads(self.n_jobs):
            mu, _ = map_blocks(lambda b: self.model_.encode(b["x"]), {"x": tensors["x"]},
                               resolve_device(self.device))
        return mu.numpy()

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
        if not parts:  # a container of zero rows
            return self._decode_means(np.zeros((1, self.model_.latent_dim)))[:0]
        if isinstance(parts[0], pd.DataFrame):
            return pd.concat(parts, axis=0) if len(parts) > 1 else parts[0]
        return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]

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
