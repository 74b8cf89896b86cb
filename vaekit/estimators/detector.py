"""VAEAnomalyDetector: rank rows by negative ELBO (nats)."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import OutlierMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ..data.images import complexity_nats
from ..errors import FileFormatError
from ..fitted import FittedVAE
from ..training.elbo import TRIM_OFFSET
from .base import _is_dataframe, _VAEBase

# The image detector's defaults (architecture="auto", hidden_dims="auto", epochs="auto"):
# an MLP with one hidden layer of 256 units, trained for about 1,500 steps
# (vaekit.training.schedules), with the shared-scale pixel likelihood (see anomaly_score).  Chosen on
# recipes/benchmark_images.py (recipes/results/images.md): ~10 CPU-s for 5,000 28x28
# images on one thread, where the convolutional per-pixel-scale model took ~230.
IMAGE_HIDDEN = [256]
# trim_fraction="auto".  Tables: 0.1, the ADBench ablations' choice (recipes/BENCHMARKS.md).
# Images: 0.25 -- a model of 5,000 images loses little by skipping a quarter of each
# batch, and one-class MNIST with ~12 % other digits mixed in went from ROC-AUC 0.929
# at 0.1 to 0.956 (seeds 0-2, 7 sets; 0.4 gave 0.953).
TABLE_TRIM = 0.1
IMAGE_TRIM = 0.25
# Attributes with one value per training row: set by fit, absent after loading.
_PER_TRAINING_ROW = ("decision_scores_", "labels_")


class VAEAnomalyDetector(OutlierMixin, _VAEBase):
    """Rank rows (or images) by how poorly a VAE explains them: negative ELBO, in nats.

    Parameters
    ----------
    contamination : "auto" or float in (0, 0.5]
        Share of anomalies expected in the training data; sets ``threshold_``.
        ``"auto"`` puts the threshold at Tukey's outlier fence (Q3 + 1.5 IQR) of the
        training scores, which needs no guess of the share.
    n_samples : int, default=16
        Importance samples per row for scoring; 1 = ELBO with closed-form KL,
        more = tighter importance-weighted bound (IWAE).  Cost grows linearly.
    trim_fraction : "auto" or float in [0, 0.5), default="auto"
        After KL warm-up, each batch's worst-fit share of rows gets no gradient, so
        anomalies in the training data cannot dominate what the model learns.
        "Worst-fit" means highest anomaly score (for complexity-corrected images, the
        loss minus the image's complexity).  Auto: 0.1 for tables, 0.25 for images.
    latent_dim : "auto" or int
        Latent dimensions; auto = ceil(columns / 2) clipped to 2..16 (16 for images).
    hidden_dims : "auto" or list of int
        Hidden layer widths of the MLP (encoder; the decoder mirrors it).  Auto for
        tables = two layers of 2x the row's values (numeric and binary columns plus
        one-hot levels) rounded up to a power of two, 32..256 units; images [256]
        (the convolutional model sizes itself).
    epochs, batch_size : "auto" or int
        Auto scales with the number of rows (see ``vaekit.core.resolve_schedule``),
        aiming at about 500 gradient steps (at most 50 epochs) for tables and 1500
        for images.
    learning_rate : float
        Adam step size.
    beta : float
        KL weight during training only; scores always use beta = 1.
    kind : {"auto", "tabular", "image"}
        Auto: 3-D/4-D arrays are images, everything else is a table.
    architecture : {"auto", "mlp", "conv"}
        Auto: MLP (tables, and images: one hidden layer of 256 units).  Image models
        always use the shared-scale pixel likelihood (see :meth:`anomaly_score`).
    categorical_features : list of str or int, optional
        Columns to treat as categorical even if they hold numbers.
    min_scale : "auto" or float
        Floor of the numeric Gaussian's standard deviation (robust SDs).
    device : str
        "auto" (CUDA if available), "cpu", "cuda", "cuda:1", ...
    n_jobs : int, optional
        Torch CPU threads; None = 1, -1 = all cores.
    random_state : int, RandomState or None
        Seeds initialisation, shuffling, training noise and the scoring noise.
    verbose : bool
        Show a progress bar (stderr) with the running loss.
    complexity : "auto", "zlib" or None, default="auto"
        Images only (tables ignore it): the anomaly score subtracts each image's zlib
        code length, capped at the largest among the training images (the "input
        complexity" correction of Serra et al. 2020; see :meth:`anomaly_score`).
        "auto" and "zlib" both turn it on; ``None`` scores the plain negative bound.

    Attributes
    ----------
    decision_scores_ : ndarray (n_samples,)
        Anomaly scores (negative bound, nats) of the training rows (PyOD naming).
        Kept in memory after ``fit`` only: a model file keeps 1,001 quantiles of
        them (``fitted_.score_quantiles``), so its size does not grow with the
        training rows, and on a loaded estimator this attribute (and ``labels_``)
        is absent, with an AttributeError saying so.
    threshold_ : float
        Anomaly-score threshold in nats, read off the stored quantiles (the same
        before saving and after loading): exact for ``contamination="auto"`` and
        for shares that are whole multiples of 0.001, else within one quantile step
        (see :meth:`vaekit.fitted.FittedVAE.threshold`).  ``set_params(contamination=...)``
        on a fitted estimator moves it (and ``offset_``, ``labels_``) at once.
    offset_ : float
        ``-threshold_``: ``decision_function = score_samples - offset_``.
    labels_ : ndarray of {0, 1}
        Training rows above the threshold (PyOD convention: 1 = anomaly); after
        ``fit`` only, like ``decision_scores_``.
    history_ : list of dict
        Per-epoch training and validation ELBO, reconstruction and KL (nats).
    """

    # The automatic schedule (steps, epoch cap): vaekit.training.schedules.

    _parameter_constraints: dict = {
        **_VAEBase._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "trim_fraction": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="left")],
        "complexity": [None, StrOptions({"auto", "zlib"})],
    }

    # Parameters added after files were written: what such a file's model did (no
    # complexity correction), so get_params tells how it scores.
    _PREDATING = {"complexity": None}

    # A value seen once in training prices as a new one (escape + spelling): one
    # example teaches a level nothing, and a one-off is what a detector looks for.
    _MIN_LEVEL_COUNT = 2

    def __init__(self, *, contamination: float | str = "auto", n_samples: int = 16,
                 trim_fraction: float | str = "auto", latent_dim: int | str = "auto",
                 hidden_dims: list | str = "auto", epochs: int | str = "auto",
                 batch_size: int | str = "auto", learning_rate: float = 1e-3, beta: float = 1.0,
                 kind: str = "auto", architecture: str = "auto",
                 categorical_features: list | None = None, min_scale: float | str = "auto",
                 device: str = "auto", n_jobs: int | None = None, random_state: Any = None,
                 verbose: bool = False, complexity: str | None = "auto") -> None:
        self.complexity = complexity
        self.contamination = contamination
        self.n_samples = n_samples
        self.trim_fraction = trim_fraction
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
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _architecture(self, kind: str, schema: Any, tensors: Any) -> dict:
        if kind != "image":
            return super()._architecture(kind, schema, tensors)
        from ..training.sizes import architecture_config

        config = architecture_config(
            kind, schema, tensors,
            architecture="mlp" if self.architecture == "auto" else self.architecture,
            latent_dim=self.latent_dim,
            hidden_dims=IMAGE_HIDDEN if self.hidden_dims == "auto" else self.hidden_dims,
            min_scale=self.min_scale, hidden_on=self._hidden_on)
        # Score on semantics, not pixel texture: one shared pixel scale (see anomaly_score).
        config["image_scale"] = "shared"
        if self.complexity is not None:
            config["complexity"] = "zlib"  # "auto" and "zlib": the one coder there is
        return config

    def _resolved_trim(self, kind: str) -> float:
        if self.trim_fraction != "auto":
            return float(self.trim_fraction)
        return IMAGE_TRIM if kind == "image" else TABLE_TRIM

    def _training_data(self, config: dict[str, Any],
                       tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Complexity-corrected images: record the cap, and trim by the corrected loss.

        The cap is the largest code length among the training images: the score never
        credits an image with more complexity than any training image had, so noise
        (or any image more complex than the data) cannot buy its way to normal.
        Trimming ranks rows by loss minus complexity -- the score the detector will
        give -- so the simple anomalies of a contaminated set are left out too.
        """
        if config.get("complexity") != "zlib":
            return tensors
        complexity = complexity_nats(tensors["x"])
        config["complexity_cap"] = float(complexity.max())
        return {**tensors, TRIM_OFFSET: torch.as_tensor(complexity, dtype=torch.float32)}

    def fit(self, X: Any, y: Any = None) -> VAEAnomalyDetector:
        """Fit on ``X`` (unsupervised; ``y`` is ignored).

        Parameters
        ----------
        X : DataFrame, array (n, d) or image array (n, H, W[, C])
            Training rows; may contain anomalies and missing values.
        """
        fitted, tensors = self._fit_elbo(X)
        # Score the training rows with the final model (not the training-time noise),
        # reusing their prepared tensors instead of validating and encoding X again.
        # Also learns each column's blank-cell value cost (tables) from the same pass.
        fitted.set_training_scores(-fitted.learn_missing_costs(tensors).score)
        self._adopt(fitted)
        return self

    def _adopt(self, fitted: FittedVAE) -> None:
        super()._adopt(fitted)
        if fitted.score_quantiles is None:
            raise FileFormatError("a VAEAnomalyDetector model must hold its training scores")
        for name in _PER_TRAINING_ROW:
            self.__dict__.pop(name, None)
        if fitted.training_scores is not None:
            self.decision_scores_ = fitted.training_scores
        self._set_threshold()

    def _set_threshold(self) -> None:
        """``threshold_``, ``offset_`` (and ``labels_`` after a fit) for ``contamination``."""
        self.threshold_ = self.fitted_.threshold(self.contamination)
        self.offset_ = -self.threshold_
        if "decision_scores_" in self.__dict__:
            self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)

    def set_params(self, **params: Any) -> VAEAnomalyDetector:
        """scikit-learn's ``set_params``; a new ``contamination`` on a fitted estimator
        moves ``threshold_`` at once (from the stored training-score quantiles, so it
        works after :func:`vaekit.load` too)."""
        super().set_params(**params)
        if "contamination" in params and "fitted_" in self.__dict__:
            self._validate_params()
            self._set_threshold()
        return self

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: explain the per-training-row attributes.
        if name in _PER_TRAINING_ROW and "fitted_" in self.__dict__:
            raise AttributeError(
                f"{name} holds one value per training row and is kept in memory after fit "
                "only; this estimator was loaded from a model file, which keeps 1,001 "
                "quantiles of the training scores (fitted_.score_quantiles); threshold_ "
                "and contamination work as after fit")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def score_samples(self, X: Any) -> np.ndarray:
        """``-anomaly_score(X)``, nats (higher = more normal).

        The bound on log p(x) (:meth:`elbo`), except for complexity-corrected image
        models (the default): ``elbo(X) + min(L_zlib(x), cap)``, a log-likelihood
        ratio against zlib (see :meth:`anomaly_score`).
        """
        return self._row_scores(X).score

    def elbo(self, X: Any) -> np.ndarray:
        """The bound on log p(x) per row, nats: ELBO, or the IWAE bound for ``n_samples > 1``.

        The model's own likelihood, without the complexity term of images;
        :meth:`explain` splits its negative into per-pixel (per-column) terms and ``kl``.
        """
        return self._row_scores(X).elbo

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Anomaly score per row, nats (higher = more anomalous).

        Tables: the negative bound on log p(x) (:meth:`elbo`), with blank cells and
        unseen categories priced (see :meth:`explain`).

        Images: the negative bound under the image detector's likelihood, minus the
        image's complexity::

            anomaly_score(x) = -elbo(x) - min(L_zlib(x), cap)

        The likelihood is an MLP VAE whose decoder gives each pixel a mean and *one*
        standard deviation shared by all pixels
        (:class:`vaekit.core.likelihoods.ImageLikelihood`, ``image_scale="shared"``),
        so ``-elbo`` is a calibrated squared reconstruction error plus the latent
        term.  A likelihood that learns *per pixel* how sure to be mostly measures
        how complex an image is -- a blank background costs nothing, so a plain
        digit "1" is cheap under a model of "0"s (Nalisnick et al. 2019); vaekit's
        earlier convolutional default with per-pixel scales ranked one-class MNIST
        at ROC-AUC 0.42, below chance.  The shared scale removes most of that, but a
        plain image still has less to get wrong, so its error stays small.

        ``L_zlib(x) = 8 * len(zlib.compress(pixels, 9)) * ln 2`` is the code length
        in nats of the image's 8-bit pixels (C, H, W order) under a generic
        lossless coder (:func:`vaekit.data.images.complexity_nats`): subtracting it
        leaves the nats the model saves or wastes against a coder that knows nothing
        of the data (the input-complexity correction of Serra et al. 2020), so a
        simple image is not normal for being simple.  ``cap`` is the largest
        ``L_zlib`` among the training images (``fitted_.config["complexity_cap"]``):
        an image more complex than any training image -- noise, say -- gets no more
        credit than the most complex one, so the correction cannot make it look
        normal.  On one-class MNIST (recipes/results/images.md) the correction and
        the matching trimming (``trim_fraction``) moved mean ROC-AUC from 0.870 to
        0.956.  :meth:`elbo` and :meth:`explain` keep the bound's terms; the
        correction is the ``"complexity (zlib)"`` column.

        ``complexity=None`` scores ``-elbo(x)`` alone.  Image models saved before
        the cap existed subtract ``L_zlib`` uncapped; those saved before
        ``image_scale`` existed (per-pixel scales) score ``-elbo(x)``, as then.
        """
        return -self.score_samples(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for anomalies."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """+1 for normal rows, -1 for anomalies."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def explain(self, X: Any) -> pd.DataFrame:
        """Per-row, per-column contributions to the anomaly score (nats).

        Returns
        -------
        DataFrame
            One column per input column (categoricals summed over their levels;
            pixels named ``pixel_c_h_w`` for images) with the negative
            reconstruction log-likelihood of that column, plus ``kl`` (the latent
            term), and for complexity-corrected images (the default) a
            ``"complexity (zlib)"`` column (minus the image's capped zlib code
            length).  Each row sums to :meth:`anomaly_score`
            of that row; without the complexity column it sums to ``-elbo``.  Tables also
            get ``"<column> (missing)"`` per column (the cost of a blank cell: its
            missing rate's ``-log p_miss`` plus the column's typical value cost); a
            column's own term includes the cost of being present, or of an unseen
            category (escape plus the most expensive seen level).
        """
        fitted = self._model()
        return fitted.explain(self._prepare(X), index=X.index if _is_dataframe(X) else None)
