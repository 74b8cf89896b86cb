"""Shared base of the scikit-learn estimators: input checks, fitting, persistence.

Both estimators glue the same pieces: a schema (``vaekit.data``) fitted on the input,
a VAE (``vaekit.core``) trained on the prepared tensors, and either the scoring layer
(``vaekit.fitted.scoring``) or the codec (``vaekit.codec``).
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
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ..core import auto_hidden, auto_latent_dim, build_vae
from ..core.batching import map_blocks
from ..core.objectives import kl_per_dimension
from ..data import ImageSchema, TabularSchema
from ..errors import DataError, FileFormatError
from ..files.atomic import atomic_write_bytes
from ..fitted import model_file as model_io
from ..fitted.scoring import RowScores, score_rows
from ..training import TrainConfig, train_vae

Schema = TabularSchema | ImageSchema


def n_threads(n_jobs: int | None) -> int:
    """Threads for scikit-learn's ``n_jobs``: None = 1, negative = one per CPU core."""
    return 1 if n_jobs is None else (os.cpu_count() or 1) if n_jobs < 0 else max(1, n_jobs)


@contextmanager
def torch_threads(n_jobs: int | None) -> Iterator[None]:
    """Run torch CPU work on ``n_jobs`` threads and restore the previous setting.

    ``None`` means one thread: vaekit's networks are small, and on a few cores one
    thread per process is faster than several fighting over tiny matrices.
    """
    n = n_threads(n_jobs)
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
    # Gradient steps the automatic epoch count aims for, per input kind.
    _target_steps: dict[str, int] = {"tabular": 3000, "image": 3000}
    # Cap on the automatic epoch count, per input kind.
    _max_epochs: dict[str, int] = {"tabular": 300, "image": 300}

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
        self.latent_stats_ = self._latent_stats(tensors)
        return tensors

    def _latent_stats(self, tensors: dict[str, torch.Tensor]) -> dict[str, list[float]]:
        """Per-latent-dimension statistics of the training rows, kept in the model file.

        ``kl`` mean KL to the prior (nats; ~0 = a collapsed, unused dimension),
        ``posterior_sd`` root-mean-square posterior SD, ``mean_sd`` SD of the posterior
        means across rows.  The codec sizes its quantizer from these.
        """
        mu, logvar = self._encode_tensors(tensors)
        kl = kl_per_dimension(mu, logvar)
        return {
            "kl": kl.mean(dim=0).tolist(),
            "posterior_sd": logvar.exp().mean(dim=0).sqrt().tolist(),
            "mean_sd": mu.std(dim=0, unbiased=False).tolist(),
        }

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
        hidden = (self._auto_hidden(schema, d_in) if self.hidden_dims == "auto"
                  else list(self.hidden_dims))
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

    def _auto_hidden(self, schema: Schema, d_in: int) -> list[int]:
        """MLP widths when ``hidden_dims="auto"``: 2x the row's value width.

        Sized on the values (numeric and binary columns, one-hot levels), not the
        observed-masks the encoder also sees: those double an all-numeric table's input
        without adding information when nothing is missing, and the anomaly benchmark
        measured the narrower nets as the more robust density model on contaminated tables
        (recipes/BENCHMARKS.md, "Default changes, round 3").
        """
        if isinstance(schema, TabularSchema):
            return auto_hidden(schema.value_width)
        return auto_hidden(d_in)

    def _resolved_beta(self) -> float:
        """The KL weight of VAE training."""
        return float(self.beta)

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=None if self.epochs == "auto" else int(self.epochs),
            batch_size=None if self.batch_size == "auto" else int(self.batch_size),
            learning_rate=float(self.learning_rate),
            beta=self._resolved_beta(),
            trim_fraction=float(getattr(self, "trim_fraction", self._trim_fraction)),
            target_steps=self._target_steps[getattr(self, "input_kind_", "tabular")],
            max_epochs=self._max_epochs[getattr(self, "input_kind_", "tabular")],
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
        return self._tensor_scores(self._prepare(X))

    def _tensor_scores(self, tensors: dict[str, torch.Tensor]) -> RowScores:
        """Bound terms of already prepared rows (see :func:`vaekit.fitted.scoring.score_rows`)."""
        with torch_threads(self.n_jobs):
            return score_rows(self.model_, tensors, n_samples=self.n_samples, seed=self.seed_,
                              device=resolve_device(self.device))

    def _feature_names_model_order(self) -> list[str]:
        if self.input_kind_ == "image":
            c, h, w = self.schema_.shape
            return [f"pixel_{k}_{i}_{j}" for k in range(c) for i in range(h) for j in range(w)]
        return self.schema_.model_order

    @torch.no_grad()
    def _encode_tensors(self, tensors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means and log-variances (n, latent_dim) of prepared tensors."""
        with torch_threads(self.n_jobs):
            return map_blocks(lambda b: self.model_.encode(b["x"]), {"x": tensors["x"]},
                              resolve_device(self.device))

    def _encode_means(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances (n, latent_dim) as float64."""
        mu, logvar = self._encode_tensors(self._prepare(X))
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
        atomic_write_bytes(path, self.to_bytes())

    def to_bytes(self) -> bytes:
        """The fitted estimator as the bytes of a ``.vaekit`` model file (no pickle)."""
        check_is_fitted(self, "model_")
        return model_io.dump_model(dict(self.model_.state_dict()), self._metadata())

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
            "latent_stats": self.latent_stats_,
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
        self.latent_stats_ = fitted["latent_stats"]
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


