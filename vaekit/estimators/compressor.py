"""VAECompressor: rows (or images) to compact quantized codes and back, within a byte budget."""

from __future__ import annotations

import dataclasses
import io
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._runtime import resolve_device, torch_threads
from ..codec.quantize import MAX_BYTES_PER_ROW
from ..core import build_vae as build_network
from ..core.batching import as_tensors
from ..fitted import FittedVAE
from ..fitted.grid_choice import choose_grid
from ..fitted.streams import MODEL_GRID, CompressedWriter, decompress_bytes
from ..training import TrainConfig
from ..training.codec import CodecProgress, CodecSettings, LinearCodecFit, VAECodecTuning
from ..training.sizes import budget_beta, codec_latent_dim, linear_architecture
from .base import _VAEBase


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
        Budget of a compressed file, in bytes per row (images: per image), after
        entropy coding; excludes id columns and the fixed per-file overhead
        (header, trailer, optional embedded model).  Tables then choose how to
        spend it (:mod:`vaekit.fitted.grid_choice`, measured on up to 4,096 of the
        training rows written and read back): on the latent code alone, or on the
        code plus every numeric value on a grid -- the error-bounded mode of
        ``max_abs_error``, at the smallest bound (2**2 .. 2**-14 SDs, a factor of 2**0.25
        apart) whose bytes fit 97 % of the budget -- whichever gives the smaller
        RMSE; where lossless values fit, a warning says so and every value is
        stored losslessly.  The choice is ``grid_bound_`` and is kept in the model
        file, so every later compress uses it.  The codec itself is fitted as
        follows.  Fitting with a budget builds
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
    max_abs_error : float, dict, "model" or None, default="model"
        Error-bounded files: :meth:`compress` also stores every value of a table
        within this bound of its original -- one number in standardized units (a
        multiple of each numeric column's training standard deviation: 0.01 = within
        1 % of an SD), or a dict of bounds in the columns' own units (numeric columns
        left out are stored losslessly); 0 = lossless.  Binary and categorical
        values are always exact, integer columns exact while their bound is below 1
        (in the column's units), blanks stay blank, and values far outside the
        training range keep the bound (no clipping).  The
        values are entropy-coded under the decoder's per-cell prediction from the
        latent code, or with zstd where that is smaller (per column and chunk; see
        :mod:`vaekit.fitted.bounded`).  ``"model"`` (default): the grid the budget
        chose (``grid_bound_``; see ``bytes_per_row``), else the latent code alone.
        ``None``: the latent code alone, as bounded as the model is good.  Does not
        change :meth:`transform` or :meth:`inverse_transform`.
    beta : "auto" or float
        KL weight of VAE training: used without a budget or bits (``"auto"`` =
        1), and by convolutional image models with one (``"auto"`` =
        :func:`budget_beta`).  With the linear path the budget fixes the rate
        through the quantizer and no KL weight is used (``beta_`` = 0).

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
    grid_bound_ : float or None
        The ``max_abs_error`` (standardized units; 0 = lossless) that
        :meth:`compress` uses with ``max_abs_error="model"``: the grid chosen for
        the budget (see ``bytes_per_row``), or ``None`` for the latent code alone.
    grid_choice_ : GridChoice or None
        What the choice measured: bytes per row and RMSE of the code alone, of the
        chosen grid, and of lossless values (set by ``fit`` with a budget, tables
        only; not stored in the model file).
    tune_history_ : list of float
        Mean training loss per row of each pass of the codec training (set by
        ``fit`` when a budget or bits are given; not stored in the model file).

    Notes
    -----
    Convolutional image models with a budget (``architecture="conv"``) follow the
    older route: VAE training with ``beta``, quantizer with precision = posterior
    SD, tuning for the codes (:meth:`_tune_for_codes`), refit, and decoder
    refinement (:meth:`_refine_decoder`).

    Other parameters are those of :class:`VAEAnomalyDetector` without the
    scoring ones (``n_samples`` is used by :meth:`score`, the mean ELBO in nats
    per row), except that ``hidden_dims="auto"`` for tables is twice as wide: 2x
    the whole encoder input, observed-masks included.
    """

    _parameter_constraints: dict = {
        **_VAEBase._parameter_constraints,
        "beta": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "bytes_per_row": [None, Interval(Real, 0, MAX_BYTES_PER_ROW, closed="right")],
        "max_abs_error": [None, StrOptions({MODEL_GRID}), Interval(Real, 0, None, closed="left"),
                          dict],
        "bits": [None, Interval(Integral, 0, 16, closed="both"), list, tuple],
    }

    def __init__(self, *, bytes_per_row: float | None = None, bits: int | list | None = None,
                 latent_dim: int | str = "auto", hidden_dims: list | str = "auto",
                 epochs: int | str = "auto", batch_size: int | str = "auto",
                 learning_rate: float = 1e-3, beta: float | str = "auto", kind: str = "auto",
                 architecture: str = "auto", categorical_features: list | None = None,
                 min_scale: float | str = "auto", n_samples: int = 1, device: str = "auto",
                 n_jobs: int | None = None, random_state: Any = None,
                 verbose: bool = False,
                 max_abs_error: float | dict | str | None = MODEL_GRID) -> None:
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
        self.max_abs_error = max_abs_error

    # Hidden widths sized on the whole encoder input (see architecture_config).
    _hidden_on = "input"

    # ------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, *,
            progress: CodecProgress | None = None) -> VAECompressor:
        """Fit the VAE and its quantizer on ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : DataFrame, array (n, d) or images
        y : ignored
        progress : callable, optional
            ``progress(phase, steps_done, steps_planned, held_out)`` during the codec
            training of a budgeted fit (:data:`vaekit.training.codec.CodecProgress`):
            the stage's name, gradient steps done and planned, and the last held-out
            distortion (mean loss per held-out row; ``None`` where there is none).
            Without it, ``verbose=True`` shows a tqdm bar.

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
        budgeted = self.bytes_per_row is not None or self.bits is not None
        if progress is None and self.verbose and budgeted:
            progress = _tqdm_progress()
        fitted = self._fit_linear_codec(X, progress) if budgeted else None
        if fitted is None:
            fitted = self._fit_vae_codec(X, tune=budgeted, progress=progress)
        self.grid_choice_ = None
        if self.bytes_per_row is not None:
            self._choose_grid(fitted, X)
        self._adopt(fitted)
        return self

    def _choose_grid(self, fitted: FittedVAE, X: Any) -> None:
        """Tables: spend the budget on codes alone or on codes plus gridded values,
        whichever measures the smaller error (:func:`~vaekit.fitted.grid_choice.choose_grid`)."""
        choice = choose_grid(fitted, X, float(self.bytes_per_row), seed=fitted.seed)
        self.grid_choice_ = choice
        if choice is None or choice.bound is None:
            return
        fitted.extra["grid_bound"] = choice.bound
        if choice.lossless:
            warnings.warn(
                f"bytes_per_row={self.bytes_per_row} exceeds the lossless size of these rows "
                f"(about {choice.lossless_bytes:.2f} bytes/row with the code): every value "
                "will be stored losslessly", UserWarning, stacklevel=3)

    def _settings(self) -> CodecSettings:
        return CodecSettings(bytes_per_row=self.bytes_per_row, bits=self.bits,
                             epochs=self.epochs, batch_size=self.batch_size,
                             learning_rate=float(self.learning_rate), n_jobs=self.n_jobs)

    def _fit_linear_codec(self, X: Any,
                          progress: CodecProgress | None = None) -> FittedVAE | None:
        """A budgeted MLP model that starts as the PCA codec (see the class doc).

        ``None`` (nothing fitted) when this route does not apply: a convolutional
        model, or a table without numeric columns.
        """
        kind, form, schema, data = self._fit_input(X)
        if kind == "image" and self.architecture == "conv":
            return None
        if kind == "tabular" and not schema.specs("numeric"):
            return None
        tensors = as_tensors(schema.encode(data))  # training runs in torch
        config = linear_architecture(kind, schema, tensors, latent_dim=self.latent_dim,
                                     hidden_dims=self.hidden_dims, min_scale=self.min_scale,
                                     bits=self.bits, bytes_per_row=self.bytes_per_row)
        seed = self._draw_seed()
        # The budget fixes the rate through the quantizer, so no KL weight is used.
        self.beta_ = 0.0
        device = resolve_device(self.device)
        with torch_threads(self.n_jobs), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            route = LinearCodecFit(build_network(config).to(device), kind, self._settings(),
                                   seed, device, progress)
            route.run(tensors)
        fitted = self._new_fitted(network=route.network, kind=kind, form=form, schema=schema,
                                  config=config, seed=seed, history=route.history,
                                  tensors=tensors)
        fitted.quantizer = route.quantizer
        fitted.extra["beta_used"] = self.beta_
        self.tune_history_ = route.tune_history
        return fitted

    def _fit_vae_codec(self, X: Any, *, tune: bool,
                       progress: CodecProgress | None = None) -> FittedVAE:
        """ELBO-trained VAE plus quantizer; with ``tune``, tuned for the codes (conv route)."""
        self.beta_ = self._resolved_beta()
        fitted, tensors = self._fit_elbo(X)
        route = VAECodecTuning(fitted.network, fitted.input_kind, self._settings(),
                               fitted.seed, resolve_device(self.device),
                               train_config=self._train_config(fitted.input_kind),
                               vae_epochs=len(fitted.history),
                               latent_stats=fitted.latent_stats, progress=progress)
        route.run(tensors, tune=tune, latent_statistics=fitted.latent_statistics)
        fitted.latent_stats = route.latent_stats
        fitted.quantizer = route.quantizer
        fitted.extra["beta_used"] = self.beta_
        if tune:
            self.tune_history_ = route.tune_history
        return fitted

    def _resolved_beta(self) -> float:
        return budget_beta(self.bytes_per_row) if self.beta == "auto" else float(self.beta)

    def _train_config(self, kind: str = "tabular") -> TrainConfig:
        # As the base class, but with the KL weight resolved from the budget.
        # Early stopping and the final "best epoch" pick both watch the beta = 1
        # ELBO.  With beta < 1 the encoder is meant to spend more nats than that
        # objective likes, so it peaks early while reconstructions keep improving:
        # a beta = 0.08 fit of a 4-column table stopped after 9 of 40 epochs with
        # 28x the error of the full run.  So when beta < 1 the KL weight ramps up
        # over the whole run (warmup_fraction = 1); the training loop judges no
        # epoch during warm-up, so it trains every planned epoch and keeps the last.
        warmup = 0.1 if self._resolved_beta() >= 1.0 else 1.0
        return dataclasses.replace(super()._train_config(kind), warmup_fraction=warmup)

    def _architecture(self, kind: str, schema: Any, tensors: dict[str, torch.Tensor]) -> dict:
        config = super()._architecture(kind, schema, tensors)
        config["latent_dim"] = codec_latent_dim(config, schema, latent_dim=self.latent_dim,
                                                bits=self.bits,
                                                bytes_per_row=self.bytes_per_row)
        return config

    # ------------------------------------------------------------ codes
    def transform(self, X: Any) -> np.ndarray:
        """Posterior means, shape (n, latent_dim), float64."""
        return self._model().encode_means(self._prepare(X))

    def inverse_transform(self, X: Any) -> Any:
        """Reconstruct rows from codes ``X`` (n, latent_dim), in the input's own form."""
        fitted = self._model()
        return fitted.decode_means(check_array(X, dtype=np.float32))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``latent0``, ``latent1``, ..."""
        check_is_fitted(self, "fitted_")
        return np.asarray([f"latent{i}" for i in range(self.fitted_.latent_dim)], dtype=object)

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
        fitted = self._synced()
        buf = io.BytesIO()
        with CompressedWriter(buf, fitted, id_columns=tuple(id_columns or ()),
                              embed_model=embed_model, n_rows=len(X),
                              max_abs_error=self.max_abs_error) as writer:
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
        fitted = self._model()
        # Parts carry consecutive row indices, so joining them renumbers nothing.
        return decompress_bytes(bytes(data), fitted)

    # ------------------------------------------------------------ the fitted model
    quantizer_ = property(lambda self: self._model_attr("quantizer"),
                          doc="Bit allocation and ranges (stored in the model file).")
    grid_bound_ = property(lambda self: self._model_attr("extra").get("grid_bound"),
                           doc="The value grid chosen for the budget (see bytes_per_row).")

    def _model_attr(self, name: str) -> Any:
        if "fitted_" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} is not fitted yet")
        return getattr(self.fitted_, name)

    def _adopt(self, fitted: FittedVAE) -> None:
        super()._adopt(fitted)
        self._n_features_out = fitted.latent_dim
        self.beta_ = float(fitted.extra.get(
            "beta_used", 1.0 if self.beta == "auto" else self.beta))


def default_bytes_per_row(kind: str, n_values: int) -> float:
    """The budget ``vaekit compress --fit`` uses when none is given, bytes per row.

    Tables: one byte per model column (8 bits per value before the model's
    savings; on the demo table every numeric column is restored with R^2 >= 0.98
    and every category >= 99 % right, where 4 bytes/row leaves R^2 of 0.3-0.5).
    Images: one bit per pixel value (``C x H x W / 8`` bytes), the rate of a
    good-quality JPEG.  At least 1 byte.
    """
    per_value = 1.0 if kind == "tabular" else 0.125
    return max(1.0, round(per_value * int(n_values), 3))


def _tqdm_progress() -> CodecProgress:
    """A tqdm bar for ``verbose=True`` fits: the stage, steps, held-out distortion."""
    from tqdm.auto import tqdm

    bar = tqdm(total=None, desc="VAECompressor", unit="step")

    def update(phase: str, done: int, total: int, held_out: float | None) -> None:
        if bar.total != total:
            bar.total = total
        bar.set_description_str(phase, refresh=False)
        if held_out is not None:
            bar.set_postfix_str(f"held-out distortion {held_out:.4g}", refresh=False)
        bar.update(done - bar.n)
        if phase == "done":
            bar.close()

    return update
