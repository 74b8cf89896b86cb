"""Shared base of the scikit-learn estimators: parameters, input checks, the fitted model.

An estimator is a thin face: it validates at the door (scikit-learn's helpers), calls
a training function (:mod:`vaekit.training`) and keeps the result, a
:class:`~vaekit.fitted.FittedVAE`, as ``fitted_``; scoring, coding and saving run on
that object.
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._runtime import n_threads, resolve_device, torch_threads
from ..core.batching import as_tensors
from ..data import ImageSchema, TabularSchema
from ..errors import DataError, missing_columns_message
from ..fitted import FittedVAE, as_fitted
from ..fitted.scoring import RowScores
from ..runtime.noise import NOISE_RULE
from ..training import TrainConfig, fit_elbo_network
from ..training.schedules import auto_schedule
from ..training.sizes import architecture_config

Schema = TabularSchema | ImageSchema

__all__ = ["n_threads", "resolve_device", "torch_threads"]

# Fewer training rows than this draw a warning: a VAE cannot learn a distribution
# (nor a threshold) from a handful of rows.
MIN_FIT_ROWS = 10


def _is_dataframe(X: Any) -> bool:
    return isinstance(X, pd.DataFrame)


def _from_fitted(name: str, doc: str) -> property:
    """A read-only view of an attribute of ``fitted_`` (absent until fitted)."""

    def get(self: Any) -> Any:
        try:
            fitted = self.__dict__["fitted_"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} is not fitted yet") from None
        return getattr(fitted, name)

    return property(get, doc=doc)


class _VAEBase(BaseEstimator):
    """Fitting, preparation, persistence and tags shared by both estimators."""

    # Categorical levels seen fewer times are novel values (TabularSchema).
    _MIN_LEVEL_COUNT = 1

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
    # What hidden_dims="auto" sizes tables on (see vaekit.training.sizes.architecture_config).
    _hidden_on = "values"

    # Views of the fitted model, under the names scikit-learn users expect.
    model_ = _from_fitted("network", "The trained network (``nn.Module``).")
    schema_ = _from_fitted("schema", "Preprocessing schema (raw rows <-> tensors).")
    config_ = _from_fitted("config", "Architecture config of the network.")
    seed_ = _from_fitted("seed", "Seed of the fixed scoring noise.")
    history_ = _from_fitted("history", "Training record (nats per row).")
    latent_stats_ = _from_fitted("latent_stats", "Per-latent-dimension statistics.")
    input_kind_ = _from_fitted("input_kind", '"tabular" or "image".')
    input_form_ = _from_fitted("input_form", '"frame" or "array".')
    fingerprint_ = _from_fitted("sha256", "Checksum of the model file it was loaded from.")

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
                kind = self.fitted_.input_kind
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
        try:
            validate_data(self, X, reset=reset, skip_check_array=True)
        except ValueError as exc:
            if reset or not _is_dataframe(X) or isinstance(exc, DataError):
                raise
            # scikit-learn's "feature names should match": name the columns (its own
            # message follows, so its checks still recognise it; DataError is a ValueError).
            raise DataError(f"{self._column_mismatch(X)}\n{exc}") from None
        if _is_dataframe(X):
            frame = X
        else:
            frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        if not reset and not _is_dataframe(X):
            frame.columns = self.fitted_.column_names
        return kind, frame

    def _column_mismatch(self, X: pd.DataFrame) -> str:
        """How a DataFrame's columns differ from the fitted ones (with near misses)."""
        names = self.fitted_.column_names
        have = [str(c) for c in X.columns]
        missing = [c for c in names if c not in set(have)]
        extra = [c for c in have if c not in set(names)]
        parts = [missing_columns_message(missing, names, have)] if missing else []
        if extra:
            parts.append(f"column(s) {extra} are not model columns; drop them")
        return "; ".join(parts) or f"the columns are not in the fitted order {names}"

    def _model(self) -> FittedVAE:
        """The fitted model, with this estimator's runtime parameters applied."""
        check_is_fitted(self, "fitted_")
        # Runtime parameters set after fitting (set_params) apply: see as_fitted.
        return as_fitted(self)

    def _prepare(self, X: Any) -> dict[str, np.ndarray]:
        """Validated input -> the network's prepared rows (for a fitted estimator)."""
        fitted = self._model()
        _, data = self._as_input(X, reset=False)
        return fitted.prepare(data)

    def _row_scores(self, X: Any) -> RowScores:
        return self._model().score_terms(self._prepare(X))

    # ------------------------------------------------------------ fitting
    def _fit_input(self, X: Any) -> tuple[str, str, Schema, Any]:
        """Validate ``X`` and fit its schema: ``(kind, form, schema, data)``."""
        self._validate_params()
        kind, data = self._as_input(X, reset=True)
        _check_fit_rows(len(data))
        form = "frame" if _is_dataframe(X) else "array"
        if kind == "image":
            schema: Schema = ImageSchema().fit(data)
        else:
            schema = TabularSchema(categorical=self._categorical_names(data),
                                   min_level_count=self._MIN_LEVEL_COUNT).fit(data)
        return kind, form, schema, data

    def _new_fitted(self, *, network: torch.nn.Module, kind: str, form: str, schema: Schema,
                    config: dict[str, Any], seed: int, history: list[dict[str, Any]],
                    tensors: dict[str, torch.Tensor]) -> FittedVAE:
        """Wrap a trained network as a fitted model (its latent statistics measured)."""
        fitted = FittedVAE(
            network=network, schema=schema, config=config, seed=seed, input_kind=kind,
            input_form=form, history=history, latent_stats={},
            n_features_in=int(self.n_features_in_),
            feature_names_in=(list(map(str, self.feature_names_in_))
                              if hasattr(self, "feature_names_in_") else None),
            estimator=type(self).__name__, params=self._params_json(),
            extra={"noise": NOISE_RULE},
        )
        fitted.latent_stats = fitted.latent_statistics(tensors)
        return fitted

    def _fit_elbo(self, X: Any) -> tuple[FittedVAE, dict[str, torch.Tensor]]:
        """Fit schema and VAE on ``X``; return the fitted model and the training tensors."""
        kind, form, schema, data = self._fit_input(X)
        tensors = as_tensors(schema.encode(data))  # training runs in torch
        config = self._architecture(kind, schema, tensors)
        seed = self._draw_seed()
        network, history = fit_elbo_network(
            config, self._training_data(config, tensors), self._train_config(kind), seed,
            resolve_device(self.device),
            self.n_jobs, progress=self._progress_callback())
        fitted = self._new_fitted(network=network, kind=kind, form=form, schema=schema,
                                  config=config, seed=seed, history=history, tensors=tensors)
        return fitted, tensors

    def _training_data(self, config: dict[str, Any],
                       tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the training loop sees: the prepared tensors, plus what a subclass adds
        (such as per-row trim offsets; settings they imply go into ``config``)."""
        return tensors

    def _draw_seed(self) -> int:
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

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
        return architecture_config(kind, schema, tensors, architecture=self.architecture,
                                   latent_dim=self.latent_dim, hidden_dims=self.hidden_dims,
                                   min_scale=self.min_scale, hidden_on=self._hidden_on)

    def _resolved_beta(self) -> float:
        """The KL weight of VAE training."""
        return float(self.beta)

    def _train_config(self, kind: str = "tabular") -> TrainConfig:
        return TrainConfig(
            epochs=None if self.epochs == "auto" else int(self.epochs),
            batch_size=None if self.batch_size == "auto" else int(self.batch_size),
            learning_rate=float(self.learning_rate),
            beta=self._resolved_beta(),
            trim_fraction=self._resolved_trim(kind),
            target_steps=self._schedule(kind)[0],
            max_epochs=self._schedule(kind)[1],
        )

    def _resolved_trim(self, kind: str) -> float:
        """The share of each batch's worst-fit rows that trimming leaves out."""
        return float(self._trim_fraction)

    def _schedule(self, kind: str) -> tuple[int, int]:
        """(gradient steps, epoch cap) of ``epochs="auto"``: the table in
        :mod:`vaekit.training.schedules`, for this class or the vaekit class it extends."""
        for cls in type(self).__mro__:
            found = auto_schedule(cls.__name__, kind)
            if found is not None:
                return found
        raise TypeError(f"{type(self).__name__} has no automatic schedule for {kind} input")

    def _progress_callback(self) -> Any:
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        bar: dict[str, Any] = {}

        def update(epoch: int, epochs: int, loss: float) -> None:
            if "bar" not in bar:
                bar["bar"] = tqdm(total=epochs, desc=type(self).__name__, unit="epoch")
            bar["bar"].update(1)
            # The loss is the negative ELBO per row (nats), the sign used everywhere.
            bar["bar"].set_postfix(neg_elbo=f"{loss:.3f} nats/row")
            if epoch == epochs:
                bar["bar"].close()

        return update

    # ------------------------------------------------------------ the fitted model
    def _adopt(self, fitted: FittedVAE) -> None:
        """Keep ``fitted`` as ``fitted_`` and set the attributes derived from it."""
        self.fitted_ = fitted
        self.n_features_in_ = fitted.n_features_in
        if fitted.feature_names_in is not None:
            self.feature_names_in_ = np.asarray(fitted.feature_names_in, dtype=object)

    def _params_json(self) -> dict[str, Any]:
        params = self.get_params()
        if not (params.get("random_state") is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a RandomState object is not data
        return _jsonable(params)

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted estimator to a ``.vaekit`` model file (atomic, no pickle)."""
        self._synced().save(path)

    def to_bytes(self) -> bytes:
        """The fitted estimator as the bytes of a ``.vaekit`` model file (no pickle)."""
        return self._synced().to_bytes()

    def _synced(self) -> FittedVAE:
        fitted = self._model()
        fitted.params = self._params_json()
        return fitted

    # ------------------------------------------------------------ sklearn tags
    def __sklearn_tags__(self) -> Any:
        return with_vaekit_input_tags(super().__sklearn_tags__())


def with_vaekit_input_tags(tags: Any) -> Any:
    """scikit-learn tags for what vaekit reads: missing values, categories and text
    columns, deterministic for a given ``random_state``."""
    tags.input_tags.allow_nan = True
    tags.input_tags.categorical = True
    tags.input_tags.string = True
    tags.non_deterministic = False
    return tags


def _check_fit_rows(n_rows: int) -> None:
    """Refuse 0 training rows; warn below :data:`MIN_FIT_ROWS`.

    Raises
    ------
    DataError
        For 0 rows.
    """
    if n_rows == 0:
        raise DataError("cannot fit on 0 rows: the input holds no rows")
    if n_rows < MIN_FIT_ROWS:
        what = "one row" if n_rows == 1 else f"{n_rows} rows"
        warnings.warn(f"fitting on {what}: the model can't learn a distribution from "
                      f"{what} (scores and the threshold will mean little); fit on at "
                      f"least {MIN_FIT_ROWS}, better hundreds, of rows", UserWarning,
                      stacklevel=4)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


