"""scikit-learn faces of vaekit: :class:`VAEAnomalyDetector` and :class:`VAECompressor`.

Both glue the same pieces: a schema (``vaekit.data``) fitted on the input, a VAE
(``vaekit.core``) trained on the prepared tensors, and either the scoring layer
(``vaekit.scoring``) or the codec (``vaekit.codec``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import io as model_io
from .core import TrainConfig, auto_hidden, auto_latent_dim, build_vae, train_vae
from .core.batching import map_blocks
from .data import ImageSchema, TabularSchema
from .errors import DataError, FileFormatError
from .scoring import RowScores, score_rows, threshold_from_scores

Schema = TabularSchema | ImageSchema


@contextmanager
def torch_threads(n_jobs: int | None) -> Iterator[None]:
    """Run torch CPU work on ``n_jobs`` threads and restore the previous setting.

    ``None`` means one thread: vaekit's networks are small, and on a few cores one
    thread per process is faster than several fighting over tiny matrices.
    """
    n = 1 if n_jobs is None else (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` = CUDA when available, else CPU; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _is_dataframe(X: Any) -> bool:
    return isinstance(X, pd.DataFrame)


class _VAEBase(BaseEstimator):
    """Fitting, preparation, persistence and tags shared by both estimators."""

    _parameter_constraints: dict = {
        "latent_dim": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "hidden_dims": [StrOptions({"auto"}), list, tuple],
        "epochs": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kind": [StrOptions({"auto", "tabular", "image"})],
        "architecture": [StrOptions({"auto", "mlp", "conv"})],
        "categorical_features": [None, list, tuple],
        "min_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "n_jobs": [None, Integral],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # Defaults that differ per estimator.
    _trim_fraction = 0.0

    # ------------------------------------------------------------ input handling
    def _as_input(self, X: Any, *, reset: bool) -> tuple[str, Any]:
        """Validate ``X`` and return ``(kind, frame_or_images)``."""
        if _is_dataframe(X):
            kind = "tabular"
        else:
            X = check_array(X, accept_sparse=False, dtype=None, ensure_all_finite=False,
                            allow_nd=True, ensure_min_features=1)
            if reset:
                kind = self.kind
                if kind == "auto":
                    kind = "image" if X.ndim in (3, 4) else "tabular"
            else:
                kind = self.input_kind_
        if kind == "image":
            if _is_dataframe(X) or X.ndim not in (3, 4):
                raise DataError(
                    "kind='image' needs an array shaped (N, H, W), (N, H, W, C) or (N, C, H, W)"
                )
            if reset:
                self.n_features_in_ = int(np.prod(X.shape[1:]))
            elif int(np.prod(X.shape[1:])) != self.n_features_in_:
                raise DataError(
                    f"X has {int(np.prod(X.shape[1:]))} pixel values per image, but the model "
                    f"was fitted on {self.n_features_in_}"
                )
            return kind, X
        if not _is_dataframe(X) and X.ndim != 2:
            raise DataError(f"tabular input must be 2-D, got an array of shape {X.shape}")
        validate_data(self, X, reset=reset, skip_check_array=True)
        if _is_dataframe(X):
            frame = X
        else:
            frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        if not reset and not _is_dataframe(X):
            frame.columns = self.schema_.names()
        return kind, frame

    def _prepare(self, X: Any) -> dict[str, torch.Tensor]:
        """Validated input -> model tensors (for a fitted estimator)."""
        check_is_fitted(self, "model_")
        _, data = self._as_input(X, reset=False)
        return self.schema_.encode(data)

    # ------------------------------------------------------------ fitting
    def _fit_vae(self, X: Any) -> dict[str, torch.Tensor]:
        """Fit schema and VAE on ``X``; return the prepared training tensors."""
        self._validate_params()
        kind, data = self._as_input(X, reset=True)
        self.input_kind_ = kind
        self.input_form_ = "frame" if _is_dataframe(X) else "array"
        if kind == "image":
            schema: Schema = ImageSchema().fit(data)
        else:
            schema = TabularSchema(categorical=self._categorical_names(data)).fit(data)
        tensors = schema.encode(data)
        self.schema_ = schema
        self.config_ = self._architecture(kind, schema, tensors)
        rng = check_random_state(self.random_state)
        self.seed_ = int(rng.randint(0, 2**31 - 1))
        device = resolve_device(self.device)
        with torch_threads(self.n_jobs), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)
            model = build_vae(self.config_)
            self.history_ = train_vae(model, tensors, self._train_config(), self.seed_, device,
                                      progress=self._progress_callback())
        self.model_ = model
        return tensors

    def _categorical_names(self, frame: pd.DataFrame) -> list[str]:
        if not self.categorical_features:
            return []
        names = [str(c) for c in frame.columns]
        out = []
        for c in self.categorical_features:
            if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
                if not 0 <= c < len(names):
                    raise DataError(f"categorical_features index {c} is out of range")
                out.append(names[c])
            else:
                out.append(str(c))
        return out

    def _architecture(self, kind: str, schema: Schema, tensors: dict[str, torch.Tensor]) -> dict:
        d_in = int(tensors["x"][0].numel())
        if kind == "image":
            n_features = schema.n_pixels  # type: ignore[union-attr]
            arch = self.architecture if self.architecture != "auto" else "conv"
            layout: dict[str, Any] = {"shape": list(schema.shape)}  # type: ignore[union-attr]
            min_scale = 1e-3
        else:
            n_features = len(schema.columns)  # type: ignore[union-attr]
            if self.architecture == "conv":
                raise DataError("architecture='conv' needs image input")
            arch = "mlp"
            min_scale = 0.01 if self.min_scale == "auto" else self.min_scale
            layout = {"d_in": d_in, **schema.layout(),  # type: ignore[union-attr]
                      "num_min_scale": schema.numeric_floors(min_scale)}  # type: ignore[union-attr]
        latent = auto_latent_dim(n_features, kind) if self.latent_dim == "auto" else self.latent_dim
        hidden = auto_hidden(d_in) if self.hidden_dims == "auto" else list(self.hidden_dims)
        if kind == "image" and arch == "mlp" and self.hidden_dims == "auto":
            hidden = [512, 256]
        return {
            "kind": kind,
            "architecture": arch,
            "latent_dim": int(latent),
            "hidden": [int(h) for h in hidden],
            "conv_base": 32,
            "min_scale": float(min_scale if self.min_scale == "auto" else self.min_scale),
            **layout,
        }

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=None if self.epochs == "auto" else int(self.epochs),
            batch_size=None if self.batch_size == "auto" else int(self.batch_size),
            learning_rate=float(self.learning_rate),
            beta=float(self.beta),
            trim_fraction=float(getattr(self, "trim_fraction", self._trim_fraction)),
        )

    def _progress_callback(self) -> Any:
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        bar: dict[str, Any] = {}

        def update(epoch: int, epochs: int, loss: float) -> None:
            if "bar" not in bar:
                bar["bar"] = tqdm(total=epochs, desc=type(self).__name__, unit="epoch")
            bar["bar"].update(1)
            bar["bar"].set_postfix(loss=f"{loss:.3f} nats")
            if epoch == epochs:
                bar["bar"].close()

        return update

    # ------------------------------------------------------------ scoring helpers
    def _row_scores(self, X: Any) -> RowScores:
        tensors = self._prepare(X)
        with torch_threads(self.n_jobs):
            return score_rows(self.model_, tensors, n_samples=self.n_samples, seed=self.seed_,
                              device=resolve_device(self.device))

    def _feature_names_model_order(self) -> list[str]:
        if self.input_kind_ == "image":
            c, h, w = self.schema_.shape
            return [f"pixel_{k}_{i}_{j}" for k in range(c) for i in range(h) for j in range(w)]
        return self.schema_.model_order

    @torch.no_grad()
    def _encode_means(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances (n, latent_dim) as float64."""
        tensors = self._prepare(X)
        with torch_threads(self.n_jobs):
            mu, logvar = map_blocks(lambda b: self.model_.encode(b["x"]), {"x": tensors["x"]},
                                    resolve_device(self.device))
        return mu.numpy(), logvar.numpy()

    @torch.no_grad()
    def _decode_means(self, Z: np.ndarray) -> Any:
        """Point reconstructions of latent codes, in the input's own form."""
        check_is_fitted(self, "model_")
        Z = check_array(Z, dtype=np.float32)
        if Z.shape[1] != self.model_.latent_dim:
            raise DataError(f"codes have {Z.shape[1]} dimensions, the model has "
                            f"{self.model_.latent_dim}")
        lik = self.model_.likelihood
        with torch_threads(self.n_jobs):
            outs = map_blocks(lambda b: tuple(lik.mean(self.model_.decode(b["z"])).values()),
                              {"z": torch.from_numpy(Z)}, resolve_device(self.device))
        keys = ("x",) if self.input_kind_ == "image" else ("num", "bin", "cat")
        out = {k: v.numpy() for k, v in zip(keys, outs, strict=True)}
        if self.input_kind_ == "image":
            return self.schema_.decode(out["x"])
        frame = self.schema_.decode(out["num"], out["bin"], out["cat"])
        if self.input_form_ == "array":
            return frame.to_numpy()
        return frame

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted estimator to a ``.vaekit`` model file (atomic, no pickle)."""
        check_is_fitted(self, "model_")
        model_io.write_model(path, dict(self.model_.state_dict()), self._metadata())

    def _metadata(self) -> dict[str, Any]:
        params = self.get_params()
        if not (params.get("random_state") is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a RandomState object is not data
        fitted = {
            "input_kind": self.input_kind_,
            "input_form": self.input_form_,
            "schema": self.schema_.to_dict(),
            "config": self.config_,
            "seed": self.seed_,
            "history": self.history_,
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": (list(map(str, self.feature_names_in_))
                                 if hasattr(self, "feature_names_in_") else None),
        }
        fitted.update(self._extra_metadata())
        return {"estimator": type(self).__name__, "params": _jsonable(params), "fitted": fitted}

    def _extra_metadata(self) -> dict[str, Any]:
        return {}

    def _restore(self, tensors: dict[str, torch.Tensor], fitted: dict[str, Any]) -> None:
        self.input_kind_ = fitted["input_kind"]
        self.input_form_ = fitted["input_form"]
        schema = fitted["schema"]
        self.schema_ = (ImageSchema.from_dict(schema) if schema["type"] == "image"
                        else TabularSchema.from_dict(schema))
        self.config_ = fitted["config"]
        self.seed_ = int(fitted["seed"])
        self.history_ = fitted["history"]
        self.n_features_in_ = int(fitted["n_features_in"])
        if fitted.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
        model = build_vae(self.config_)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise FileFormatError(f"model weights do not match its architecture: {exc}") from None
        model.eval()
        self.model_ = model.to(resolve_device(self.device))

    # ------------------------------------------------------------ sklearn tags
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


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
    trim_fraction : float, default=0.05
        After KL warm-up, each batch's worst-fit share of rows gets no gradient, so
        anomalies in the training data cannot dominate what the model learns.
    latent_dim : "auto" or int
        Latent dimensions; auto = ceil(columns / 2) clipped to 2..16 (16 for images).
    hidden_dims : "auto" or list of int
        Hidden layer widths of the MLP (encoder; the decoder mirrors it).
    epochs, batch_size : "auto" or int
        Auto scales with the number of rows (see ``vaekit.core.resolve_schedule``).
    learning_rate : float
        Adam step size.
    beta : float
        KL weight during training only; scores always use beta = 1.
    kind : {"auto", "tabular", "image"}
        Auto: 3-D/4-D arrays are images, everything else is a table.
    architecture : {"auto", "mlp", "conv"}
        Auto: convolutional for images, MLP for tables.
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

    Attributes
    ----------
    decision_scores_ : ndarray (n_samples,)
        Anomaly scores (negative bound, nats) of the training rows (PyOD naming).
    threshold_ : float
        Anomaly-score threshold in nats.
    offset_ : float
        ``-threshold_``: ``decision_function = score_samples - offset_``.
    labels_ : ndarray of {0, 1}
        Training rows above the threshold (PyOD convention: 1 = anomaly).
    history_ : list of dict
        Per-epoch training and validation ELBO, reconstruction and KL (nats).
    """

    _parameter_constraints: dict = {
        **_VAEBase._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "trim_fraction": [Interval(Real, 0, 0.5, closed="left")],
    }

    def __init__(self, *, contamination: float | str = "auto", n_samples: int = 16,
                 trim_fraction: float = 0.05, latent_dim: int | str = "auto",
                 hidden_dims: list | str = "auto", epochs: int | str = "auto",
                 batch_size: int | str = "auto", learning_rate: float = 1e-3, beta: float = 1.0,
                 kind: str = "auto", architecture: str = "auto",
                 categorical_features: list | None = None, min_scale: float | str = "auto",
                 device: str = "auto", n_jobs: int | None = None, random_state: Any = None,
                 verbose: bool = False) -> None:
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

    def fit(self, X: Any, y: Any = None) -> VAEAnomalyDetector:
        """Fit on ``X`` (unsupervised; ``y`` is ignored).

        Parameters
        ----------
        X : DataFrame, array (n, d) or image array (n, H, W[, C])
            Training rows; may contain anomalies and missing values.
        """
        self._fit_vae(X)
        # Score the training rows with the final model (not the training-time noise).
        self.decision_scores_ = -self._row_scores(X).elbo
        self._set_threshold()
        return self

    def _set_threshold(self) -> None:
        self.threshold_ = threshold_from_scores(self.decision_scores_, self.contamination)
        self.offset_ = -self.threshold_
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)

    def score_samples(self, X: Any) -> np.ndarray:
        """Bound on log p(x) per row, in nats (higher = more normal)."""
        return self._row_scores(X).elbo

    def anomaly_score(self, X: Any) -> np.ndarray:
        """Negative bound on log p(x) per row, in nats (higher = more anomalous)."""
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
            term).  Each row sums to :meth:`anomaly_score` of that row.  Missing
            entries and unseen categories contribute 0.
        """
        s = self._row_scores(X)
        frame = pd.DataFrame(-s.recon_per_feature, columns=self._feature_names_model_order())
        if self.input_kind_ == "tabular":
            frame = frame[self.schema_.names()]
        frame["kl"] = s.kl
        index = X.index if _is_dataframe(X) else None
        if index is not None:
            frame.index = index
        return frame

    def _extra_metadata(self) -> dict[str, Any]:
        return {"decision_scores": self.decision_scores_.tolist()}

    def _restore(self, tensors: dict[str, torch.Tensor], fitted: dict[str, Any]) -> None:
        super()._restore(tensors, fitted)
        self.decision_scores_ = np.asarray(fitted["decision_scores"], dtype=np.float64)
        self._set_threshold()


class VAECompressor(TransformerMixin, _VAEBase):
    """Encode rows (or images) to latent means and decode them back.

    ``transform`` gives the posterior means (n, latent_dim); ``inverse_transform``
    turns codes back into rows in the input's own form (DataFrame with the same
    columns and dtypes, or images of the same shape and dtype).

    Parameters are those of :class:`VAEAnomalyDetector` without the scoring ones
    (``n_samples`` is used by :meth:`score`, the mean ELBO in nats per row).
    """

    def __init__(self, *, latent_dim: int | str = "auto", hidden_dims: list | str = "auto",
                 epochs: int | str = "auto", batch_size: int | str = "auto",
                 learning_rate: float = 1e-3, beta: float = 1.0, kind: str = "auto",
                 architecture: str = "auto", categorical_features: list | None = None,
                 min_scale: float | str = "auto", n_samples: int = 1, device: str = "auto",
                 n_jobs: int | None = None, random_state: Any = None,
                 verbose: bool = False) -> None:
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

    def fit(self, X: Any, y: Any = None) -> VAECompressor:
        """Fit on ``X`` (``y`` is ignored)."""
        self._fit_vae(X)
        self._n_features_out = self.model_.latent_dim
        return self

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

    def _restore(self, tensors: dict[str, torch.Tensor], fitted: dict[str, Any]) -> None:
        super()._restore(tensors, fitted)
        self._n_features_out = self.model_.latent_dim


ESTIMATORS: dict[str, type[_VAEBase]] = {
    "VAEAnomalyDetector": VAEAnomalyDetector,
    "VAECompressor": VAECompressor,
}


def load(path: str | os.PathLike, device: str | None = None) -> _VAEBase:
    """Load a fitted estimator from a ``.vaekit`` file (no pickle involved).

    Parameters
    ----------
    path : path-like
    device : str, optional
        Override the saved ``device`` parameter (e.g. load a GPU-trained model on CPU).

    Raises
    ------
    FileFormatError
        Not a vaekit model, corrupt, or from a newer format version.
    """
    tensors, meta = model_io.read_model(path)
    return from_model_data(tensors, meta, device=device)


def from_model_data(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    device: str | None = None) -> _VAEBase:
    """Build a fitted estimator from parsed model-file contents."""
    cls = ESTIMATORS.get(meta.get("estimator", ""))
    if cls is None:
        raise FileFormatError(f"unknown estimator {meta.get('estimator')!r} in model file")
    params = dict(meta.get("params", {}))
    if device is not None:
        params["device"] = device
    elif params.get("device", "auto") != "auto" and not _device_available(params["device"]):
        params["device"] = "auto"
    valid = cls().get_params()
    est = cls(**{k: v for k, v in params.items() if k in valid})
    est._restore(tensors, meta["fitted"])
    est.fingerprint_ = meta.get("fingerprint")
    return est


def _device_available(device: str) -> bool:
    return not device.startswith("cuda") or torch.cuda.is_available()


__all__ = ["VAEAnomalyDetector", "VAECompressor", "from_model_data", "load"]
