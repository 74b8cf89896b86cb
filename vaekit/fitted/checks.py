"""Checks of a model file's contents before anything is built from it.

A model file from a stranger is data, and its checksum is no signature: anyone can
write a file with a valid one.  So after :func:`.model_file.parse_model` has verified
the checksum (and refused non-finite numbers, 64-bit-overflowing integers and deep
nesting in the JSON), :func:`check_model` checks

1. the whole metadata against the schema vaekit writes (types, allowed values, the
   bounds below), naming the key path of the first thing that is wrong;
2. that the architecture config agrees with the preprocessing schema (column counts,
   level counts, image shape) and with the latent statistics and quantizer;
3. the stored tensors against the shapes the config implies, computed from the config
   for MLPs (:func:`vaekit.runtime.layout.expected_shapes`, no torch) and by building
   convolutional networks on PyTorch's ``meta`` device; neither allocates: the same names,
   the same shapes, so the parameter count implied by the config equals the stored
   one; and every weight finite.

Only then does :class:`~vaekit.fitted.FittedVAE` build the network for real, so a
20 KB file claiming a hidden layer of 8e6 units is refused without allocating it.
Every failure is a :class:`~vaekit.errors.FileFormatError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..codec.quantize import QUANTIZER_VERSION, LatentQuantizer
from ..data.images import LAYOUTS
from ..data.tabular import KINDS, MAX_CATEGORIES, SPELLING_RULE
from ..errors import DataError, FileFormatError
from ..runtime.layout import expected_shapes, supports
from ..runtime.noise import NOISE_RULE
from .scoring import QUANTILE_GRID

# Bounds a reader enforces (vaekit/codec/FORMAT.md lists them with the container's).
MAX_WIDTH = 2**20        # a layer width, the encoder input, the latent size, columns
MAX_LAYERS = 64          # hidden layers
MAX_IMAGE_SIDE = 2**15   # image height or width
MAX_PIXELS = 2**24       # C * H * W
MAX_CONV_BASE = 1024     # channels of the first convolution
MAX_SAMPLES = 10_000     # importance samples per row
MAX_THREADS = 4096       # |n_jobs|
MAX_ROWS = 2**40         # rows a model was fitted on / training scores it kept
MAX_COST = 1e6           # |nats| a blank cell's typical value cost may be
MAX_TEXT = 4096          # characters of a name, dtype or other short string
MAX_ID_COLUMNS = 64      # identifier columns a model remembers (fitted.id_columns)
MAX_GRID_BOUND = 1e6     # fitted.grid_bound, standardized units (SDs)
IMAGE_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
                "float16", "float32", "float64")
IMAGE_SCALES = ("pixel", "shared")   # fitted.config.image_scale
COMPLEXITY_CODERS = ("zlib",)        # fitted.config.complexity
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:[0-9]{1,3})?)")


class _Meta:
    """Typed reads of a stranger's JSON that fail with the key path named."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, what: str) -> FileFormatError:
        return FileFormatError(f"{self.source}: model metadata '{path}' {what}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "is missing or not an object")
        return value

    def int(self, value: Any, path: str, lo: int, hi: int) -> int:
        # bool is an int in Python, not in a model file.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(path, f"is {_shown(value)}, not an integer")
        if not lo <= value <= hi:
            raise self.fail(path, f"is {value}, outside [{lo}, {hi}]")
        return value

    def num(self, value: Any, path: str, lo: float | None = None, *,
            positive: bool = False) -> float:
        """A finite number (finiteness is checked at parse time), ``>= lo`` / ``> 0``."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.fail(path, f"is {_shown(value)}, not a number")
        if positive and not value > 0:
            raise self.fail(path, f"is {value}, not a positive number")
        if lo is not None and value < lo:
            raise self.fail(path, f"is {value}, below {lo}")
        return float(value)

    def str(self, value: Any, path: str, choices: Sequence[str] | None = None) -> str:
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise self.fail(path, f"is {_shown(value)}, not a string")
        if choices is not None and value not in choices:
            what = path.rsplit(".", 1)[-1].split("[")[0].replace("_", " ")
            raise self.fail(path, f"is {value!r}: unknown {what}, expected one of "
                                  f"{list(choices)}")
        return value

    def list(self, value: Any, path: str, lo: int = 0, hi: int = MAX_WIDTH) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"is {_shown(value)}, not a list")
        if not lo <= len(value) <= hi:
            raise self.fail(path, f"has {len(value)} entries, not {lo}..{hi}")
        return value

    def nums(self, value: Any, path: str, length: int, lo: float | None = None, *,
             positive: bool = False) -> list[float]:
        items = self.list(value, path, length, length)
        return [self.num(v, f"{path}[{i}]", lo, positive=positive) for i, v in enumerate(items)]


def _shown(value: Any) -> str:
    text = "missing" if value is None else f"{type(value).__name__} {value!r}"
    return text if len(text) <= 60 else text[:57] + "..."


def check_model(tensors: dict[str, np.ndarray], meta: Any, source: str) -> None:
    """All checks of parsed model-file contents (see the module docstring).

    Raises
    ------
    FileFormatError
        Naming ``source`` and the key path or tensor name at fault.
    """
    check_model_meta(meta, source)
    check_weights(tensors, meta["fitted"]["config"], source)


def check_model_meta(meta: Any, source: str) -> None:
    """Refuse metadata that differs from the schema vaekit writes or breaks a bound.

    Raises
    ------
    FileFormatError
        Naming ``source`` and the offending key path.
    """
    m = _Meta(source)
    meta = m.obj(meta, "(top level)")
    if "vaekit_version" in meta:
        m.str(meta["vaekit_version"], "vaekit_version")
    m.str(meta.get("estimator", ""), "estimator")
    _check_params(m, m.obj(meta.get("params", {}), "params"))
    if not isinstance(meta.get("fitted"), dict):
        raise FileFormatError(f"{source}: model metadata lacks the 'fitted' object")
    fitted = meta["fitted"]
    kind = m.str(fitted.get("input_kind"), "fitted.input_kind", ("tabular", "image"))
    m.str(fitted.get("input_form"), "fitted.input_form", ("frame", "array"))
    m.int(fitted.get("seed"), "fitted.seed", 0, 2**63 - 1)
    n_in = m.int(fitted.get("n_features_in"), "fitted.n_features_in", 1, MAX_PIXELS)
    names = fitted.get("feature_names_in")
    if names is not None:
        for i, name in enumerate(m.list(names, "fitted.feature_names_in", n_in, n_in)):
            m.str(name, f"fitted.feature_names_in[{i}]")
    _check_history(m, fitted.get("history"))
    schema = m.obj(fitted.get("schema"), "fitted.schema")
    m.str(schema.get("type"), "fitted.schema.type", (kind,))
    config = m.obj(fitted.get("config"), "fitted.config")
    latent = _check_config(m, config, kind)
    # What the estimators check new rows against must be what the schema encodes.
    columns: list[str] = []
    if kind == "tabular":
        columns = _check_tabular(m, schema, config)
        if n_in != len(columns):
            raise m.fail("fitted.n_features_in", f"is {n_in}, but the schema has "
                                                 f"{len(columns)} columns")
        if names is not None and names != columns:
            raise m.fail("fitted.feature_names_in", "differs from the schema's column names")
    else:
        pixels = _check_image(m, schema, config)
        if n_in != pixels:
            raise m.fail("fitted.n_features_in", f"is {n_in}, but the images have {pixels} "
                                                 "values")
        if names is not None:
            raise m.fail("fitted.feature_names_in", "is set for an image model")
    stats = m.obj(fitted.get("latent_stats"), "fitted.latent_stats")
    m.nums(stats.get("kl"), "fitted.latent_stats.kl", latent)
    for key in ("posterior_sd", "mean_sd"):
        m.nums(stats.get(key), f"fitted.latent_stats.{key}", latent, lo=0.0)
    if fitted.get("quantizer") is not None:
        _check_quantizer(m, m.obj(fitted["quantizer"], "fitted.quantizer"), latent)
    if fitted.get("decision_scores") is not None:  # older files: every training score
        scores = m.list(fitted["decision_scores"], "fitted.decision_scores", 1, MAX_ROWS)
        if not set(map(type, scores)) <= {float, int}:  # one per training row: bulk first
            for i, v in enumerate(scores):
                m.num(v, f"fitted.decision_scores[{i}]")
        if fitted.get("score_quantiles") is not None:
            raise m.fail("fitted.decision_scores", "is given beside fitted.score_quantiles")
    if fitted.get("score_quantiles") is not None:
        _check_quantiles(m, m.obj(fitted["score_quantiles"], "fitted.score_quantiles"))
    if fitted.get("id_columns") is not None:
        ids = m.list(fitted["id_columns"], "fitted.id_columns", 0, MAX_ID_COLUMNS)
        if ids and kind != "tabular":
            raise m.fail("fitted.id_columns", "is set for an image model")
        model_columns = set(columns)
        for i, name in enumerate(ids):
            if m.str(name, f"fitted.id_columns[{i}]") in model_columns:
                raise m.fail(f"fitted.id_columns[{i}]", f"is {name!r}, a model column")
        if len(set(ids)) != len(ids):
            raise m.fail("fitted.id_columns", "repeats a name")
    if "beta_used" in fitted:
        m.num(fitted["beta_used"], "fitted.beta_used", lo=0.0)
    if "grid_bound" in fitted:
        if kind != "tabular":
            raise m.fail("fitted.grid_bound", "is set for an image model (images have no "
                                              "value grid)")
        bound = m.num(fitted["grid_bound"], "fitted.grid_bound", lo=0.0)
        if bound > MAX_GRID_BOUND:
            raise m.fail("fitted.grid_bound", f"is {bound}, over {MAX_GRID_BOUND:g} SDs")
    if fitted.get("noise") is not None:
        m.str(fitted["noise"], "fitted.noise", (NOISE_RULE,))


def _check_quantiles(m: _Meta, stored: dict[str, Any]) -> None:
    """The training scores' quantile grid: its row count, and 1,001 sorted numbers."""
    path = "fitted.score_quantiles"
    m.int(stored.get("n"), f"{path}.n", 1, MAX_ROWS)
    q = m.nums(stored.get("q"), f"{path}.q", QUANTILE_GRID + 1)
    for i in range(1, len(q)):
        if q[i] < q[i - 1]:
            raise m.fail(f"{path}.q[{i}]", f"is {q[i]}, below the quantile before it "
                                           f"({q[i - 1]}): not sorted")


def _check_params(m: _Meta, params: dict[str, Any]) -> None:
    """The parameters a loaded model uses at once; the estimator validates the rest."""
    if "n_samples" in params:
        m.int(params["n_samples"], "params.n_samples", 1, MAX_SAMPLES)
    if "device" in params:
        device = m.str(params["device"], "params.device")
        if not _DEVICE.fullmatch(device):
            raise m.fail("params.device", f"is {device!r}, not auto, cpu, mps, cuda or cuda:N")
    if params.get("n_jobs") is not None:
        m.int(params["n_jobs"], "params.n_jobs", -MAX_THREADS, MAX_THREADS)
    if "contamination" in params and params["contamination"] != "auto":
        c = m.num(params["contamination"], "params.contamination", positive=True)
        if c > 0.5:
            raise m.fail("params.contamination", f"is {c}, not 'auto' or in (0, 0.5]")
    if params.get("complexity") is not None:
        m.str(params["complexity"], "params.complexity", ("auto", *COMPLEXITY_CODERS))
    if params.get("random_state") is not None:
        m.int(params["random_state"], "params.random_state", 0, 2**63 - 1)


# Keys of a training-history record that hold text (training/elbo.py, training/codec.py).
_HISTORY_TEXT = ("phase", "kept")
# Largest |number| in a history record (epochs, nats per row, KL weights).
MAX_HISTORY_VALUE = 1e15


def _check_history(m: _Meta, history: Any) -> None:
    for i, record in enumerate(m.list(history, "fitted.history", 0, MAX_ROWS)):
        record = m.obj(record, f"fitted.history[{i}]")
        for key, v in record.items():
            path = f"fitted.history[{i}].{key}"
            # vaekit writes text only under these keys; every other value is a
            # number (readers such as `vaekit info` and the report compute with them)
            if key in _HISTORY_TEXT:
                m.str(v, path)
            elif abs(m.num(v, path)) > MAX_HISTORY_VALUE:
                raise m.fail(path, f"is {v}, beyond +-{MAX_HISTORY_VALUE:g}")


def _check_config(m: _Meta, config: dict[str, Any], kind: str) -> int:
    """Types and bounds of the architecture config; returns its latent size."""
    m.str(config.get("kind"), "fitted.config.kind", (kind,))
    arch = m.str(config.get("architecture"), "fitted.config.architecture",
                 ("mlp", "conv") if kind == "image" else ("mlp",))
    latent = m.int(config.get("latent_dim"), "fitted.config.latent_dim", 1, MAX_WIDTH)
    hidden = m.list(config.get("hidden"), "fitted.config.hidden", 0, MAX_LAYERS)
    for i, h in enumerate(hidden):
        m.int(h, f"fitted.config.hidden[{i}]", 1, MAX_WIDTH)
    if arch == "conv" or "conv_base" in config:
        m.int(config.get("conv_base"), "fitted.config.conv_base", 1, MAX_CONV_BASE)
    m.num(config.get("min_scale"), "fitted.config.min_scale", positive=True)
    lp = config.get("linear_path")
    if lp not in (None, False):
        lp = m.obj(lp, "fitted.config.linear_path")
        if arch != "mlp":
            raise m.fail("fitted.config.linear_path", "needs architecture 'mlp'")
        n = m.int(lp.get("n_in"), "fitted.config.linear_path.n_in", 1, MAX_PIXELS)
        if lp.get("offset") is not None:
            m.nums(lp["offset"], "fitted.config.linear_path.offset", n)
        if lp.get("scale") is not None:
            m.nums(lp["scale"], "fitted.config.linear_path.scale", n, positive=True)
        if lp.get("asinh") is not None:
            for i, flag in enumerate(m.list(lp["asinh"], "fitted.config.linear_path.asinh", 0, n)):
                if not isinstance(flag, bool):
                    raise m.fail(f"fitted.config.linear_path.asinh[{i}]", "is not true/false")
        m.num(lp.get("asinh_width"), "fitted.config.linear_path.asinh_width", positive=True)
    return latent


def _check_tabular(m: _Meta, schema: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """A tabular schema, and the config's layout agreeing with it; returns the names."""
    n_rows = m.int(schema.get("n_rows_fit", 0), "fitted.schema.n_rows_fit", 0, MAX_ROWS)
    if schema.get("unseen_spelling") is not None:
        m.str(schema["unseen_spelling"], "fitted.schema.unseen_spelling", (SPELLING_RULE,))
    columns = m.list(schema.get("columns"), "fitted.schema.columns", 1, MAX_WIDTH)
    counts = {k: 0 for k in KINDS}
    cat_sizes: list[int] = []
    seen: set[str] = set()
    for i, col in enumerate(columns):
        path = f"fitted.schema.columns[{i}]"
        col = m.obj(col, path)
        name = m.str(col.get("name"), f"{path}.name")
        if name in seen:
            raise m.fail(f"{path}.name", f"repeats the column name {name!r}")
        seen.add(name)
        kind = m.str(col.get("kind"), f"{path}.kind", KINDS)
        _check_dtype(m, col.get("dtype"), f"{path}.dtype", numeric=kind == "numeric")
        counts[kind] += 1
        # The missingness model (absent in files written before it: scored as then).
        if col.get("n_missing") is not None:
            m.int(col["n_missing"], f"{path}.n_missing", 0, n_rows)
        if col.get("n_rare") is not None:
            m.int(col["n_rare"], f"{path}.n_rare", 0, n_rows)
        if col.get("missing_cost") is not None:
            cost = m.num(col["missing_cost"], f"{path}.missing_cost")
            if abs(cost) > MAX_COST:
                raise m.fail(f"{path}.missing_cost", f"is {cost}, outside "
                                                     f"[-{MAX_COST:g}, {MAX_COST:g}] nats")
        if kind == "numeric":
            _check_numeric_column(m, col, path)
            continue
        n = 2 if kind == "binary" else None
        levels = m.list(col.get("levels"), f"{path}.levels", n or 1, n or MAX_CATEGORIES)
        keys = set()
        for j, level in enumerate(levels):
            if not isinstance(level, (str, int, float)):  # bool is an int
                raise m.fail(f"{path}.levels[{j}]", f"is {_shown(level)}, not a level value")
            if isinstance(level, str):
                m.str(level, f"{path}.levels[{j}]")
            # The schema's own level identity: 1 and 1.0 are one level, "1" another.
            keys.add(("b", level) if isinstance(level, bool) else
                     ("s", level) if isinstance(level, str) else ("n", float(level)))
        if len(keys) != len(levels):
            raise m.fail(f"{path}.levels", "repeats a level")
        if kind == "categorical":
            cat_sizes.append(len(levels))
    c = "fitted.config"
    n_num = m.int(config.get("n_numeric"), f"{c}.n_numeric", counts["numeric"], counts["numeric"])
    n_bin = m.int(config.get("n_binary"), f"{c}.n_binary", counts["binary"], counts["binary"])
    sizes = m.list(config.get("cat_sizes"), f"{c}.cat_sizes", len(cat_sizes), len(cat_sizes))
    for j, (k, want) in enumerate(zip(sizes, cat_sizes, strict=True)):
        m.int(k, f"{c}.cat_sizes[{j}]", want, want)
    # The encoder input: values, one-hot levels, then one observed-mask per column.
    d_in = 2 * (n_num + n_bin) + sum(cat_sizes) + len(cat_sizes)
    m.int(config.get("d_in"), f"{c}.d_in", d_in, d_in)
    if "num_min_scale" in config:
        m.nums(config["num_min_scale"], f"{c}.num_min_scale", n_num, positive=True)
    lp = config.get("linear_path")
    if isinstance(lp, dict):
        m.int(lp["n_in"], f"{c}.linear_path.n_in", max(1, n_num), d_in)
    return [col["name"] for col in columns]


def _check_dtype(m: _Meta, dtype: Any, path: str, *, numeric: bool) -> None:
    """A dtype pandas knows (outputs are cast to it); numbers or booleans for numeric."""
    text = m.str(dtype, path)
    try:
        kind = pd.api.types.pandas_dtype(text).kind if len(text) <= 64 else None
    except (TypeError, ValueError):
        kind = None
    if kind is None or (numeric and kind not in "biufM"):
        raise m.fail(path, f"is {text[:64]!r}, not a "
                           f"{'numeric ' if numeric else ''}dtype")


def _check_numeric_column(m: _Meta, col: dict[str, Any], path: str) -> None:
    m.num(col.get("center"), f"{path}.center")
    m.num(col.get("scale"), f"{path}.scale", positive=True)
    m.str(col.get("transform"), f"{path}.transform", ("affine", "asinh"))
    m.num(col.get("resolution"), f"{path}.resolution", lo=0.0)
    if col.get("sd") is not None:
        m.num(col["sd"], f"{path}.sd", lo=0.0)
    low, high = col.get("low"), col.get("high")
    if low is not None or high is not None:
        lo = m.num(low, f"{path}.low")
        if m.num(high, f"{path}.high") < lo:
            raise m.fail(f"{path}.high", "is below its 'low'")


def _check_image(m: _Meta, schema: dict[str, Any], config: dict[str, Any]) -> int:
    """An image schema, and the config's shape agreeing with it; returns C * H * W."""
    path = "fitted.schema"
    shape = m.list(schema.get("shape"), f"{path}.shape", 3, 3)
    c = m.int(shape[0], f"{path}.shape[0]", 1, 4)
    if c == 2:
        raise m.fail(f"{path}.shape[0]", "is 2; images have 1, 3 or 4 channels")
    h = m.int(shape[1], f"{path}.shape[1]", 1, MAX_IMAGE_SIDE)
    w = m.int(shape[2], f"{path}.shape[2]", 1, MAX_IMAGE_SIDE)
    if c * h * w > MAX_PIXELS:
        raise m.fail(f"{path}.shape", f"has {c * h * w} values per image, over {MAX_PIXELS}")
    # The image detector's scoring rule (absent in files written before it: the
    # per-pixel-scale likelihood and the plain bound, scored as then).
    if "image_scale" in config:
        m.str(config["image_scale"], "fitted.config.image_scale", IMAGE_SCALES)
    if "complexity" in config:
        m.str(config["complexity"], "fitted.config.complexity", COMPLEXITY_CODERS)
    if "complexity_cap" in config:
        if "complexity" not in config:
            raise m.fail("fitted.config.complexity_cap", "is set without a complexity coder")
        # No image codes to more than zlib's stored-block bound of its bytes.
        bound = 8 * math.log(2) * (c * h * w + c * h * w // 1000 + 64)
        cap = m.num(config["complexity_cap"], "fitted.config.complexity_cap", lo=0.0)
        if cap > bound:
            raise m.fail("fitted.config.complexity_cap",
                         f"is {cap}, over the most nats an image of {c * h * w} values "
                         f"can take under zlib ({bound:.1f})")
    layout = m.str(schema.get("layout"), f"{path}.layout", LAYOUTS)
    if layout == "NHW" and c != 1:
        raise m.fail(f"{path}.layout", f"is NHW (grayscale) for {c} channels")
    m.str(schema.get("dtype"), f"{path}.dtype", IMAGE_DTYPES)
    if config.get("shape") != shape:
        raise m.fail("fitted.config.shape", f"is {_shown(config.get('shape'))}, not the "
                     f"schema's {shape}")
    lp = config.get("linear_path")
    if isinstance(lp, dict):
        m.int(lp["n_in"], "fitted.config.linear_path.n_in", c * h * w, c * h * w)
    return c * h * w


def _check_quantizer(m: _Meta, q: dict[str, Any], latent: int) -> None:
    path = "fitted.quantizer"
    m.int(q.get("version"), f"{path}.version", QUANTIZER_VERSION, QUANTIZER_VERSION)
    m.str(q.get("method"), f"{path}.method", ("uniform",))
    for i, b in enumerate(m.list(q.get("bits"), f"{path}.bits", latent, latent)):
        m.int(b, f"{path}.bits[{i}]", 0, 16)
    for key in ("lo", "step", "center"):
        m.nums(q.get(key), f"{path}.{key}", latent)
    try:
        LatentQuantizer.from_dict(q)
    except ValueError as exc:
        raise m.fail(path, f"is unusable: {exc}") from None


def check_shapes(shapes: dict[str, tuple[int, ...]], config: dict[str, Any],
                 source: str) -> None:
    """The tensor names and shapes a file declares are exactly those ``config`` implies.

    ``config`` must have passed :func:`check_model_meta`.  The expected shapes are
    computed from the config (MLPs) or by building the network on PyTorch's ``meta``
    device (convolutional networks): no memory is allocated, however large the config
    claims the network to be.  Run on the safetensors header before
    the weights are read (:func:`.model_file.read_model`), and on the loaded tensors.
    """
    try:
        expected = _implied_shapes(config)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        raise FileFormatError(f"{source}: model metadata 'fitted.config' does not describe "
                              f"a network ({exc})") from None
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = [n for n in sorted(expected) if n in shapes and tuple(shapes[n]) != expected[n]]
    if missing or unexpected or wrong:
        implied = sum(_numel(s) for s in expected.values())
        stored = sum(_numel(tuple(s)) for s in shapes.values())
        detail = "; ".join(part for part in (
            f"missing tensors {missing[:5]}" if missing else "",
            f"unexpected tensors {unexpected[:5]}" if unexpected else "",
            f"tensor {wrong[0]!r} has shape {tuple(shapes[wrong[0]])}, not "
            f"{expected[wrong[0]]}" if wrong else "") if part)
        raise FileFormatError(
            f"{source}: model weights do not match its architecture config: {detail} (the "
            f"config implies {implied} parameters in all, the file stores {stored})")


def _implied_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of the network ``config`` describes, allocating nothing: from
    :func:`vaekit.runtime.expected_shapes` for MLPs (no torch), else from the torch
    modules built on the ``meta`` device."""
    if supports(config):
        return expected_shapes(config)
    import torch

    from ..core import build_vae

    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in build_vae(config).state_dict().items()}


def check_weights(tensors: dict[str, np.ndarray], config: dict[str, Any],
                  source: str) -> None:
    """The stored tensors are exactly those ``config`` implies (:func:`check_shapes`),
    float32 and finite."""
    check_shapes({k: tuple(v.shape) for k, v in tensors.items()}, config, source)
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype != np.float32:
            raise FileFormatError(f"{source}: tensor {name!r} is {t.dtype}, not float32")
        if not bool(np.isfinite(t).all()):
            raise FileFormatError(f"{source}: tensor {name!r} holds NaN or infinite weights")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def check_typical_row(model: Any, source: str) -> None:
    """Refuse a fitted model whose network overflows on its own typical row.

    The checks before building see finite weights of the right shapes; weights such
    as 3e38 still overflow float32 inside the network, and every score would be NaN.
    The decoder's mean at the latent origin is the row the model finds most typical:
    the decoder's outputs there (what the codec decodes with; a NaN would reach
    ``prepare`` as a blank cell, which scores finite) and the row's score must be
    finite.  (One row: two decoder passes and one scoring pass.)
    """
    try:
        with np.errstate(all="ignore"):  # overflow is what this looks for
            origin = np.zeros((1, model.latent_dim), dtype=np.float32)
            raw = model.decoder_outputs(origin, scales=True)
            finite = all(np.isfinite(np.asarray(o, dtype=np.float64)).all() for o in raw)
            if finite:
                row = model.decode_means(origin)
                finite = bool(np.all(np.isfinite(
                    model.score_terms(model.prepare(row), n_samples=1).score)))
    except (DataError, ValueError, RuntimeError, OverflowError) as exc:
        raise FileFormatError(f"{source}: the model's network does not reproduce a "
                              f"typical row ({str(exc).splitlines()[0][:200]})") from None
    if not finite:
        raise FileFormatError(f"{source}: the model's network gives non-finite scores "
                              "(its weights overflow float32)")
