"""FittedVAE: the fitted model -- everything a ``.vaekit`` file holds, and what runs on it.

Three words mean one thing each in vaekit:

network
    the ``nn.Module`` (encoder, decoder, likelihood heads; :mod:`vaekit.core`);
fitted model
    a :class:`FittedVAE`: the network plus the preprocessing schema, the noise seed,
    latent statistics, the quantizer and the input form;
estimator
    the scikit-learn face (:mod:`vaekit.estimators`) that holds one as ``fitted_``.

Jobs, engines, the codec streams and the report take a :class:`FittedVAE` (or
anything :func:`as_fitted` accepts).  This module never imports scikit-learn.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._runtime import blas_threads, device_present, torch_threads
from ..codec.quantize import LatentQuantizer, fit_quantizer
from ..data import ImageSchema, TabularSchema
from ..data.images import complexity_nats
from ..data.tabular import present_cells
from ..errors import DataError, missing_columns_message
from ..files.atomic import atomic_write_bytes
from ..runtime.functions import gaussian_kl
from . import backends, model_file
from .checks import check_model, check_typical_row
from .scoring import RowScores, score_quantiles, score_table_rows, threshold_from_quantiles

if TYPE_CHECKING:
    import torch

    from ..core.vae import VAE

Schema = TabularSchema | ImageSchema
# The explain() column of complexity-corrected image scores (minus the zlib code length).
COMPLEXITY_TERM = "complexity (zlib)"
# Most identifier columns a model remembers (``fitted.id_columns``).
MAX_ID_COLUMNS = 64


class FittedVAE:
    """A fitted model: network, schema and everything needed to score, code and decode.

    Parameters
    ----------
    network : VAE, optional
        The trained ``nn.Module``.  A model loaded from a file holds ``weights``
        instead and builds the module (importing torch) only when the torch backend
        or training needs it (:attr:`network`).
    weights : dict of str to ndarray, optional
        The network's float32 tensors by state-dict name (one of ``network`` and
        ``weights`` is required).
    schema : TabularSchema or ImageSchema
        Raw rows <-> tensors.
    config : dict
        Architecture config the network was built from (:func:`vaekit.core.build_vae`).
    seed : int
        Seeds the fixed scoring noise (common random numbers, see :mod:`.scoring`).
    input_kind : {"tabular", "image"}
    input_form : {"frame", "array"}
        Whether decoded tables come back as DataFrames or arrays.
    history : list of dict
        Training record (nats per row).
    latent_stats : dict
        Per-latent-dimension ``kl``, ``posterior_sd``, ``mean_sd`` of the training rows.
    n_features_in : int
    feature_names_in : list of str, optional
    quantizer : LatentQuantizer, optional
        The stored quantizer (compressors); see :meth:`default_quantizer`.
    estimator : str
        Class name of the estimator that fitted it (``"VAEAnomalyDetector"`` ...).
    params : dict
        That estimator's parameters, as JSON values.
    extra : dict
        Estimator-specific stored fields (``score_quantiles``, ``id_columns``,
        ``beta_used``).  A ``decision_scores`` list (every training score, as older
        model files kept them) becomes ``score_quantiles``.
    sha256 : str, optional
        The model file's verified checksum, when loaded from one.

    Notes
    -----
    The network runs on one of two backends (:attr:`backend`): numpy
    (:mod:`vaekit.runtime`, no torch needed) or torch; see
    :mod:`vaekit.fitted.backends` for how one is chosen.  Both take and return numpy
    arrays and agree to float32 rounding.
    """

    def __init__(self, *, network: VAE | None = None, schema: Schema, config: dict[str, Any], seed: int,
                 input_kind: str, input_form: str, history: list[dict[str, Any]],
                 latent_stats: dict[str, list[float]], n_features_in: int,
                 feature_names_in: list[str] | None = None,
                 quantizer: LatentQuantizer | None = None, estimator: str = "",
                 params: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                 sha256: str | None = None,
                 weights: dict[str, np.ndarray] | None = None) -> None:
        if network is None and weights is None:
            raise ValueError("FittedVAE needs a network or its weights")
        self._network = network
        self._weights = weights
        self._runners: dict[str, Any] = {}
        self.schema = schema
        self.config = config
        self.seed = int(seed)
        self.input_kind = input_kind
        self.input_form = input_form
        self.history = history
        self.latent_stats = latent_stats
        self.n_features_in = int(n_features_in)
        self.feature_names_in = feature_names_in
        self.quantizer = quantizer
        self.estimator = estimator
        self.params = dict(params or {})
        self.extra = dict(extra or {})
        self.sha256 = sha256
        # Every training row's score: in memory after a fit only (see decision_scores).
        self.training_scores: np.ndarray | None = None
        old = self.extra.pop("decision_scores", None)
        if old is not None and "score_quantiles" not in self.extra:
            self.extra["score_quantiles"] = {"n": len(old), "q": score_quantiles(old)}

    # ------------------------------------------------------------ network and backend
    @property
    def network(self) -> VAE:
        """The torch module (built from the stored weights on first use)."""
        if self._network is None:
            import torch

            from ..core import build_vae

            network = build_vae(self.config)
            assert self._weights is not None
            network.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32))
                                     for k, v in self._weights.items()}, strict=True)
            network.eval()
            self._network = network.to(self.device)
        return self._network

    def weights(self) -> dict[str, np.ndarray]:
        """The network's tensors as float32 numpy arrays, by state-dict name."""
        if self._weights is not None:
            return self._weights
        return {k: v.detach().cpu().numpy() for k, v in self.network.state_dict().items()}

    @property
    def noise_rule(self) -> str | None:
        """How the fixed scoring draws derive from :attr:`seed` (``fitted.noise``;
        ``None``: torch's generator, model files written before the numpy runtime)."""
        return self.extra.get("noise")

    @property
    def backend(self) -> str:
        """``"numpy"`` or ``"torch"``: which backend runs the network
        (:func:`vaekit.fitted.backends.choose`)."""
        return backends.choose(self.config, str(self.params.get("device", "auto")),
                               self.noise_rule)

    def _runner(self) -> Any:
        name = self.backend
        # The numpy backend holds a copy of the weights; a live torch network may still
        # be trained after that copy was taken (codec fine-tuning after the latent
        # statistics), so its copy is keyed on the parameters' identity and in-place
        # update counters.
        key = (name, self._weights_version() if name == "numpy" else ())
        if self._runners.get(name, (None, None))[0] != key:
            runner = (backends.NumpyBackend(self.config, self.weights()) if name == "numpy"
                      else backends.TorchBackend(self.network, self.device))
            self._runners[name] = (key, runner)
        return self._runners[name][1]

    def _weights_version(self) -> tuple[tuple[int, int], ...]:
        """Stored weights never change; a live module's tensors count their in-place
        writes (optimizer steps, ``copy_``, ``load_state_dict``) and a swapped tensor
        has another address.  Not seen: writes through ``.data`` and fused optimizers,
        which vaekit's training does not use."""
        if self._network is None:
            return ()
        return tuple((t.data_ptr(), t._version) for t in self._network.state_dict().values())

    def __getstate__(self) -> dict[str, Any]:
        # Backends are caches (the numpy one a second copy of the weights): not pickled.
        state = self.__dict__.copy()
        state["_runners"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._runners = {}  # also for pickles that stored (or lacked) the caches

    def noise(self, n_samples: int) -> np.ndarray:
        """The fixed ``(n_samples, latent_dim)`` draws every row is scored with."""
        return backends.fixed_noise(self.latent_dim, n_samples, self.seed, self.noise_rule)

    # ------------------------------------------------------------ runtime settings
    @property
    def device(self) -> torch.device:
        """Where the torch backend runs (the ``device`` parameter resolved)."""
        from .._runtime import resolve_device

        return resolve_device(str(self.params.get("device", "auto")))

    @property
    def n_jobs(self) -> int | None:
        """CPU threads of the backend: torch's, or the BLAS's for numpy
        (scikit-learn's ``n_jobs``; None = 1)."""
        return self.params.get("n_jobs")

    @property
    def n_samples(self) -> int:
        """Importance samples per row used for scoring by default."""
        return int(self.params.get("n_samples", 1))

    def threads(self) -> Any:
        """Context manager: CPU work on this model's ``n_jobs`` threads (torch's, or
        the BLAS's under the numpy backend)."""
        if self.backend == "numpy":
            return blas_threads(self.n_jobs)
        return torch_threads(self.n_jobs)

    # ------------------------------------------------------------ shape facts
    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    @property
    def n_features(self) -> int:
        """Model features: pixels for images, columns for tables."""
        if isinstance(self.schema, ImageSchema):
            return int(self.schema.n_pixels)
        return len(self.schema.columns)

    @property
    def column_names(self) -> list[str]:
        """The table's model columns in fitted order (empty for images)."""
        return self.schema.names() if isinstance(self.schema, TabularSchema) else []

    @property
    def feature_names(self) -> list[str]:
        """Feature names in the model's order (``pixel_c_h_w`` for images)."""
        if isinstance(self.schema, ImageSchema):
            c, h, w = self.schema.shape
            return [f"pixel_{k}_{i}_{j}" for k in range(c) for i in range(h) for j in range(w)]
        return self.schema.model_order

    @property
    def decision_scores(self) -> np.ndarray | None:
        """Anomaly scores (nats) of the training rows; None for a compressor.

        After a fit: every training row's score (kept in memory only).  After
        loading: the stored :attr:`score_quantiles`, 1,001 equally weighted points of
        the same distribution (what histograms and thresholds need).
        """
        if self.training_scores is not None:
            return self.training_scores
        return self.score_quantiles

    @property
    def score_quantiles(self) -> np.ndarray | None:
        """The 1,001 quantiles of the training scores at levels 0, 0.001, ..., 1 (nats).

        What a model file keeps of its training scores (``fitted.score_quantiles``,
        with their count ``n``), so its size does not grow with the training rows;
        see :func:`vaekit.fitted.scoring.threshold_from_quantiles`.
        """
        stored = self.extra.get("score_quantiles")
        return None if stored is None else np.asarray(stored["q"], dtype=np.float64)

    def set_training_scores(self, anomaly_scores: np.ndarray) -> None:
        """Keep the training rows' scores: all in memory, their quantiles in the file."""
        scores = np.asarray(anomaly_scores, dtype=np.float64)
        self.training_scores = scores
        self.extra["score_quantiles"] = {"n": int(scores.size), "q": score_quantiles(scores)}

    @property
    def id_columns(self) -> list[str]:
        """Identifier columns named when the model was fitted (``vaekit fit --id-column``).

        ``vaekit score`` and ``vaekit compress`` use them when no ``--id-column`` is
        given and every input has them.  Set it to a list of names (at most
        :data:`MAX_ID_COLUMNS`, none a model column; tables only).
        """
        return list(self.extra.get("id_columns") or [])

    @id_columns.setter
    def id_columns(self, names: Sequence[str]) -> None:
        names = [str(n) for n in names]
        if names and self.input_kind != "tabular":
            raise DataError("id columns apply to tables, not images")
        if len(names) > MAX_ID_COLUMNS or len(set(names)) != len(names):
            raise DataError(f"a model remembers at most {MAX_ID_COLUMNS} distinct id columns, "
                            f"got {names[:5]}{'...' if len(names) > 5 else ''}")
        modelled = [n for n in names if n in set(self.column_names)]
        if modelled:
            raise DataError(f"id column(s) {modelled} are model columns")
        if names:
            self.extra["id_columns"] = names
        else:
            self.extra.pop("id_columns", None)

    def check_frame_columns(self, columns: Iterable[Any], label: str | None = None) -> None:
        """Refuse a table that lacks a model column, naming it (with near misses).

        Raises
        ------
        DataError
            Naming ``label`` (a file or frame), the missing columns and any column
            of the input that looks like a misspelling of one.
        """
        available = list(columns)
        have = {str(c) for c in available}
        missing = [c for c in self.column_names if c not in have]
        if missing:
            raise DataError(missing_columns_message(missing, self.column_names, available),
                            file=label, row=1 if label is not None else None)

    # ------------------------------------------------------------ the work
    def prepare(self, data: Any) -> dict[str, np.ndarray]:
        """Rows -> the network's input arrays ("prepared rows", numpy).

        Parameters
        ----------
        data : DataFrame, ndarray (n, d) or image array
            A DataFrame must hold the model's columns (others are ignored); a 2-D
            array has them in fitted order.  No other validation happens here: the
            estimators and the file readers validate at their door.

        Raises
        ------
        DataError
            Naming the row (position in ``data``) and column of an unusable value.
        """
        if isinstance(self.schema, ImageSchema):
            return self.schema.encode(data)
        if not isinstance(data, pd.DataFrame):
            data = pd.DataFrame(data, columns=self.schema.names())
        return self.schema.encode(data)

    def encode(self, tensors: dict[str, np.ndarray], set_threads: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances of prepared rows, (n, latent_dim) float64.
        ``set_threads=False``: leave the (process-wide) thread setting to a worker pool."""
        with self.threads() if set_threads else nullcontext():
            return self._runner().encode(np.asarray(tensors["x"]))

    def encode_means(self, tensors: dict[str, np.ndarray], set_threads: bool = True) -> np.ndarray:
        """Posterior means (n, latent_dim) of prepared rows, float64."""
        return self.encode(tensors, set_threads)[0]

    def decode_means(self, Z: np.ndarray) -> Any:
        """Point reconstructions of latent codes ``Z`` (n, latent_dim), in the input's form."""
        return self.decode_with_scales(Z, scales=False)[0]

    def decode_with_scales(self, Z: np.ndarray, scales: bool = True
                           ) -> tuple[Any, tuple[np.ndarray, np.ndarray] | None]:
        """:meth:`decode_means` and, from the same decoder pass, the numeric columns'
        decoder means and Gaussian scales ``(t, sigma)``, each (n, n_numeric), float64,
        in the transformed units (tables with ``scales``; ``None`` otherwise)."""
        tables = isinstance(self.schema, TabularSchema)
        outs = self.decoder_outputs(Z, scales)
        if not tables:
            return self.schema.decode(outs[0]), None
        num, binary, cat = outs[:3]
        frame = self.schema.decode(num, binary, cat)
        values = frame.to_numpy() if self.input_form == "array" else frame
        return values, ((num, outs[3]) if scales else None)

    def decoder_outputs(self, Z: np.ndarray, scales: bool = False) -> list[np.ndarray]:
        """Decoder outputs of ``Z``: [t means, P(level 2), category(, scales)] or [pixels]."""
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim:
            raise DataError(f"codes have shape {Z.shape}; the model has {self.latent_dim} "
                            "latent dimensions")
        with self.threads():
            return self._runner().decode(Z, scales and isinstance(self.schema, TabularSchema))

    def empty_output(self) -> Any:
        """Zero rows in the input's form (the decoder never runs on an empty batch)."""
        one = self.decode_means(np.zeros((1, self.latent_dim)))
        return one.iloc[:0] if isinstance(one, pd.DataFrame) else one[:0]

    def score_terms(self, tensors: dict[str, np.ndarray],
                    n_samples: int | None = None) -> RowScores:
        """Bound terms (nats) of prepared rows (:class:`~vaekit.fitted.scoring.RowScores`).

        ``n_samples`` defaults to the model's own setting (:attr:`n_samples`).
        """
        with self.threads():
            return self.score_terms_unthreaded(tensors, n_samples)

    def score_terms_unthreaded(self, tensors: dict[str, np.ndarray],
                               n_samples: int | None = None) -> RowScores:
        """:meth:`score_terms` without touching the (process-wide) thread setting, for
        callers that manage threads themselves (a pool of single-threaded workers)."""
        network_scores = self._network_scores(self.n_samples if n_samples is None
                                              else int(n_samples))
        if isinstance(self.schema, TabularSchema):
            return score_table_rows(self.schema, tensors, network_scores)
        return self._with_complexity(network_scores(tensors), tensors)

    def _network_scores(self, k: int) -> Callable[[dict[str, np.ndarray]], RowScores]:
        """The backend's bound terms of prepared rows, with this model's ``k`` draws."""
        runner, eps = self._runner(), self.noise(k)
        return lambda batch: runner.scores(batch, eps)

    def _with_complexity(self, scores: RowScores, tensors: dict[str, np.ndarray]) -> RowScores:
        """Image scores with the complexity term attached when the config asks for it."""
        rule = self.config.get("complexity") if self.input_kind == "image" else None
        if rule == "zlib":  # no cap in files written before it
            scores.complexity = complexity_nats(tensors["x"], self.config.get("complexity_cap"))
        return scores

    def learn_missing_costs(self, tensors: dict[str, np.ndarray]) -> RowScores:
        """Learn each column's blank-cell value cost from the training rows; score them.

        The cost is the median, over the training rows where the column is present, of
        its value cost (nats, the negative per-column reconstruction term): a blank
        cell is then charged what a typical value would have cost plus
        ``-log p_miss``, so blanking never makes a row cheaper than a typical value
        would.  The median, not the mean, so anomalies in the training rows do not
        move it.  Returns the training rows' scores with the costs in place (one
        network pass).  Images: plain scores.
        """
        network_scores = self._network_scores(self.n_samples)
        with self.threads():
            raw = network_scores(tensors)
            if not isinstance(self.schema, TabularSchema):
                return self._with_complexity(raw, tensors)
            present = present_cells(tensors)
            by_name = {c.name: c for c in self.schema.columns}
            for j, name in enumerate(self.schema.model_order):
                cost = -raw.recon_per_feature[present[:, j], j]
                by_name[name].missing_cost = float(np.median(cost)) if cost.size else 0.0
            return score_table_rows(self.schema, tensors, network_scores, raw=raw)

    def contributions(self, scores: RowScores) -> tuple[list[str], np.ndarray]:
        """Named per-row contributions (nats) to the anomaly score, latent term excluded.

        Model order.  A table whose model prices missingness gets, per column, the
        column's own term (value cost, plus the cost of being present or of an unseen
        level) and ``"<column> (missing)"`` (the cost of a blank: ``-log p_miss`` plus
        the typical value cost; 0 where the cell is present).  Complexity-corrected
        image models get one more column, ``"complexity (zlib)"``: minus the image's
        zlib code length (nats; capped at ``config["complexity_cap"]``).  The
        contributions and the latent term sum to the anomaly score (``-scores.score``).
        """
        names = list(self.feature_names)
        own = 0.0 - scores.recon_per_feature  # 0.0 - x: no -0.0 for blank cells
        if scores.complexity is not None:
            # Complexity-corrected images: the generic coder's code length is credited.
            return (names + [COMPLEXITY_TERM],
                    np.concatenate([own, 0.0 - scores.complexity[:, None]], axis=1))
        status = scores.status_per_feature
        if status is None:
            return names, own
        blank = scores.blank
        missing = np.where(blank, 0.0 - status, 0.0)
        own = own - np.where(blank, 0.0, status)
        return names + [f"{n} (missing)" for n in names], np.concatenate([own, missing], axis=1)

    def explain(self, tensors: dict[str, np.ndarray], n_samples: int | None = None,
                index: Any = None) -> pd.DataFrame:
        """Per-row, per-column contributions to the anomaly score, in nats.

        One column per input column (categoricals summed over their levels; pixels
        named ``pixel_c_h_w``) with the negative reconstruction log-likelihood, plus
        ``kl`` (the latent term); each row sums to the row's anomaly score.  Tables
        whose model prices missingness (see :meth:`contributions`) also carry the
        cost of being present or an unseen level in the column's own term, and a
        ``"<column> (missing)"`` column per input column with the cost of a blank
        cell (0 where present).  Model files written before that: missing entries and
        unseen categories contribute 0.
        """
        s = self.score_terms(tensors, n_samples)
        names, values = self.contributions(s)
        frame = pd.DataFrame(values, columns=names)
        if self.input_kind == "tabular":
            order = self.column_names
            if len(names) > len(order):
                order = order + [f"{n} (missing)" for n in order]
            frame = frame[order]
        frame["kl"] = s.kl
        if index is not None:
            frame.index = index
        return frame

    def latent_statistics(self, tensors: dict[str, np.ndarray]) -> dict[str, list[float]]:
        """Per-latent-dimension statistics of prepared rows (kept as ``latent_stats``).

        ``kl`` mean KL to the prior (nats; ~0 = a collapsed, unused dimension),
        ``posterior_sd`` root-mean-square posterior SD, ``mean_sd`` SD of the posterior
        means across rows.  The codec sizes its quantizer from these.
        """
        mu, logvar = self.encode(tensors)
        kl = gaussian_kl(mu, logvar)
        return {
            "kl": kl.mean(axis=0).tolist(),
            "posterior_sd": np.sqrt(np.exp(logvar).mean(axis=0)).tolist(),
            "mean_sd": mu.std(axis=0).tolist(),
        }

    # ------------------------------------------------------------ decisions
    def threshold(self, contamination: float | str | None = None) -> float:
        """Anomaly-score threshold in nats from the training rows' score quantiles.

        Always read off :attr:`score_quantiles` (never the in-memory scores), so a
        model gives the same threshold before saving and after loading: exact for
        ``"auto"`` and for a contamination ``c`` with ``1000 c`` an integer, within
        one quantile step (0.1 % of the training rows) otherwise
        (:func:`vaekit.fitted.scoring.threshold_from_quantiles`).

        Parameters
        ----------
        contamination : float, "auto" or None
            Expected share of anomalies; ``None`` = the fitted parameter.

        Raises
        ------
        ValueError
            If the model kept no training scores (a compressor).
        """
        quantiles = self.score_quantiles
        if quantiles is None:
            raise ValueError(f"this {self.estimator or 'model'} kept no training scores, so "
                             "it has no threshold; give one explicitly")
        if contamination is None:
            contamination = self.params.get("contamination", "auto")
        return threshold_from_quantiles(quantiles, contamination)

    def default_quantizer(self) -> LatentQuantizer:
        """The stored quantizer, or the default one derived from ``latent_stats``.

        The default: collapsed dimensions (KL < ``KL_MIN``) cost 0 bits, every
        informative one gets the fewest bits that make its step no larger than its
        posterior SD, centred on the prior mean 0.  A pure function of the model
        file, so the same file always gives the same quantizer.
        """
        if self.quantizer is not None:
            return self.quantizer
        kl = np.asarray(self.latent_stats["kl"], dtype=np.float64)
        return fit_quantizer(center=np.zeros_like(kl),
                             scale=np.asarray(self.latent_stats["mean_sd"]),
                             precision=np.asarray(self.latent_stats["posterior_sd"]), kl=kl)

    def fingerprint(self) -> str:
        """SHA-256 (hex) of what decoding depends on: weights, architecture and schema.

        Unlike the model *file* checksum it ignores estimator parameters (``device``,
        ``n_jobs``, ...) and the training history, so a model re-saved with another
        ``n_jobs`` still opens the files it wrote, while any change to the weights or
        the schema is refused.
        """
        decoding = {"config": self.config, "schema": self.schema.to_dict(),
                    "input_kind": self.input_kind, "input_form": self.input_form}
        meta_json = json.dumps(decoding, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return model_file.fingerprint(self.weights(), meta_json)

    # ------------------------------------------------------------ model files
    def metadata(self) -> dict[str, Any]:
        """The model file's JSON metadata (format in :mod:`.model_file`)."""
        fitted = {
            "input_kind": self.input_kind,
            "input_form": self.input_form,
            "schema": self.schema.to_dict(),
            "config": self.config,
            "seed": self.seed,
            "history": self.history,
            "latent_stats": self.latent_stats,
            "n_features_in": self.n_features_in,
            "feature_names_in": self.feature_names_in,
            **self.extra,
        }
        if self.quantizer is not None:
            fitted["quantizer"] = self.quantizer.to_dict()
        return {"estimator": self.estimator, "params": self.params, "fitted": fitted}

    def to_bytes(self) -> bytes:
        """The bytes of a ``.vaekit`` model file (safetensors + JSON; deterministic)."""
        return model_file.dump_model(self.weights(), self.metadata())

    def save(self, path: str | os.PathLike) -> None:
        """Write a ``.vaekit`` model file (atomically: temporary file, then rename)."""
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, device: str | None = None,
                   source: str = "<bytes>") -> FittedVAE:
        """Parse, verify and check model bytes, then build the model (no pickle).

        Parameters
        ----------
        device : str, optional
            Override the saved ``device`` parameter.  A saved CUDA device on a machine
            without CUDA falls back to ``"auto"``.

        Raises
        ------
        FileFormatError
            Not a vaekit model, corrupt, from a newer format, or config and tensors
            that disagree.
        """
        tensors, meta = model_file.parse_model(data, source)
        return cls.from_parsed(tensors, meta, device=device, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> FittedVAE:
        """Read a ``.vaekit`` file; see :meth:`from_bytes`."""
        tensors, meta = model_file.read_model(path)
        return cls.from_parsed(tensors, meta, device=device, source=os.fspath(path))

    @classmethod
    def from_parsed(cls, tensors: dict[str, np.ndarray], meta: dict[str, Any],
                    device: str | None = None, source: str = "<bytes>") -> FittedVAE:
        """Build from :func:`.model_file.parse_model` output.

        Nothing is built before :func:`.checks.check_model` has checked the metadata's
        schema and bounds and the tensors' names, shapes and values against the
        architecture, so a stranger's file cannot make this allocate on its say-so.
        """
        check_model(tensors, meta, source)
        fitted = meta["fitted"]
        params = dict(meta.get("params", {}))
        if device is not None:
            params["device"] = device
        elif params.get("device", "auto") != "auto" and not device_present(params["device"]):
            params["device"] = "auto"
        schema_dict = fitted["schema"]
        schema: Schema = (ImageSchema.from_dict(schema_dict) if schema_dict["type"] == "image"
                          else TabularSchema.from_dict(schema_dict))
        q = fitted.get("quantizer")
        known = {"input_kind", "input_form", "schema", "config", "seed", "history",
                 "latent_stats", "n_features_in", "feature_names_in", "quantizer"}
        model = cls(
            weights=tensors, schema=schema, config=fitted["config"], seed=int(fitted["seed"]),
            input_kind=fitted["input_kind"], input_form=fitted["input_form"],
            history=fitted["history"], latent_stats=fitted["latent_stats"],
            n_features_in=int(fitted["n_features_in"]),
            feature_names_in=fitted.get("feature_names_in"),
            quantizer=None if q is None else LatentQuantizer.from_dict(q),
            estimator=str(meta.get("estimator", "")), params=params,
            extra={k: v for k, v in fitted.items() if k not in known},
            sha256=meta.get("fingerprint"),
        )
        check_typical_row(model, source)
        return model


def as_fitted(model: Any) -> FittedVAE:
    """The :class:`FittedVAE` behind ``model``: itself, or a fitted estimator's ``fitted_``.

    The one helper public entry points use to accept "a model".

    Raises
    ------
    TypeError
        For anything else (an unfitted estimator included).
    """
    if isinstance(model, FittedVAE):
        return model
    fitted = getattr(model, "fitted_", None)
    if isinstance(fitted, FittedVAE):
        # An estimator's runtime parameters, set after fitting (set_params), apply.
        params = model.get_params() if hasattr(model, "get_params") else {}
        for key in ("device", "n_jobs", "n_samples"):
            if key in params:
                fitted.params[key] = params[key]
        return fitted
    raise TypeError(f"expected a fitted vaekit estimator or FittedVAE, got "
                    f"{type(model).__name__}" + (" (not fitted yet)" if hasattr(model, "fit")
                                                 else ""))

