"""Hostile model files: valid checksums, absurd or malformed contents (issue 15).

The checksum is no signature: every file here is built from a real model's contents,
mutated, and written with a fresh, valid checksum -- so each refusal below comes from
the checks of the contents (:mod:`vaekit.fitted.checks`, the JSON rules and the early
file checks of :mod:`vaekit.fitted.model_file`), not from the checksum.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import re
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save as st_save

import vaekit
import vaekit.core
import vaekit.fitted.backends as fitted_backends
from vaekit import FileFormatError, VAEAnomalyDetector, VAECompressor
from vaekit.estimators.persistence import estimator_for
from vaekit.fitted import FittedVAE
from vaekit.fitted import model_file as mf
from vaekit.fitted.describe import describe
from vaekit.fitted.model_file import FORMAT_NAME, FORMAT_VERSION, dump_model, parse_model
from vaekit.fitted.streams import iter_decompressed

from ..conftest import run_cli

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=120), "b": rng.integers(0, 2, 120),
                         "c": rng.choice(list("xyz"), 120), "d": rng.normal(size=120)})


@pytest.fixture(scope="module")
def detector_bytes(frame: pd.DataFrame) -> bytes:
    return VAEAnomalyDetector(epochs=1, random_state=0).fit(frame).to_bytes()


@pytest.fixture(scope="module")
def compressor(frame: pd.DataFrame) -> VAECompressor:
    # bytes_per_row: the budgeted route, whose config has a linear path.
    return VAECompressor(epochs=1, random_state=0, bytes_per_row=4).fit(frame)


@pytest.fixture(scope="module")
def image_bytes() -> bytes:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(30, 8, 8), dtype=np.uint8)  # (N, H, W): layout NHW
    return VAEAnomalyDetector(epochs=1, random_state=0).fit(images).to_bytes()


@pytest.fixture
def no_network_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a real network from a hostile file is the bug: make it fail loudly."""
    def refuse(config: Any, *_: Any) -> None:
        raise AssertionError(f"a network was built from a hostile config: {config}")
    # Both backends' builders: the torch modules and the numpy runtime's network.
    monkeypatch.setattr(vaekit.core, "build_vae", refuse)
    monkeypatch.setattr(fitted_backends, "NumpyVAE", refuse)


def contents(blob: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A model's tensors and metadata as ``dump_model`` takes them."""
    arrays, meta = parse_model(blob)
    tensors = {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}
    meta.pop("fingerprint")
    meta.pop("vaekit_version", None)
    return tensors, meta


def redump(blob: bytes, mutate: Callable[[dict[str, Any]], Any] | None = None,
           mutate_tensors: Callable[[dict[str, torch.Tensor]], Any] | None = None) -> bytes:
    """``blob`` with its metadata / tensors mutated, written with a valid checksum."""
    tensors, meta = contents(blob)
    if mutate is not None:
        mutate(meta)
    if mutate_tensors is not None:
        mutate_tensors(tensors)
    return dump_model(tensors, meta)


def raw_model(tensors: dict[str, torch.Tensor], meta_json: str) -> bytes:
    """A model file with the metadata JSON text exactly as given (NaN literals, deep
    nesting, huge integers: what ``dump_model`` would never write), valid checksum."""
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    header = {"vaekit_format": FORMAT_NAME, "vaekit_format_version": str(FORMAT_VERSION),
              "vaekit_meta": meta_json, "vaekit_sha256": mf.fingerprint(tensors, meta_json)}
    return st_save(tensors, metadata=header)


def load_bytes(blob: bytes) -> Any:
    """What ``vaekit.load`` does after reading the file."""
    return estimator_for(FittedVAE.from_bytes(blob, source="hostile.vaekit"))


def at(path: str) -> Callable[[dict[str, Any], Any], None]:
    """A setter of the value at a dotted key path (``fitted.config.hidden[0]``)."""
    keys: list[Any] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        keys.append(name)
        keys += [int(i) for i in rest.rstrip("]").split("][")] if rest else []

    def set_value(meta: dict[str, Any], value: Any) -> None:
        node = meta
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return set_value


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda meta: at(path)(meta, value)


# ------------------------------------------------------ 1. absurd architectures, no allocation

ABSURD_TABULAR = [
    ("fitted.config.hidden", [8_000_000, 32], "fitted.config.hidden[0]"),
    ("fitted.config.latent_dim", 10**12, "fitted.config.latent_dim"),
    ("params.n_samples", 10**7, "params.n_samples"),
    ("fitted.config.d_in", 10**9, "fitted.config.d_in"),
    ("fitted.config.n_numeric", 10**6, "fitted.config.n_numeric"),
    ("fitted.config.cat_sizes", [10**7], "fitted.config.cat_sizes[0]"),
    ("fitted.schema.columns[2].levels", [f"l{i}" for i in range(5000)],
     "fitted.schema.columns[2].levels"),
    ("fitted.config.hidden", [4] * 1000, "fitted.config.hidden"),
    ("fitted.n_features_in", 10**9, "fitted.n_features_in"),
    # Within every bound, but the stored weights are 32-wide: the shapes decide.
    ("fitted.config.hidden", [2**20, 2**20], "implies"),
]


@pytest.mark.parametrize("path, value, named", ABSURD_TABULAR,
                         ids=[f"{p}={str(v)[:20]}" for p, v, _ in ABSURD_TABULAR])
def test_absurd_tabular_architecture_is_refused_before_allocation(
        detector_bytes: bytes, no_network_built: None, path: str, value: Any,
        named: str) -> None:
    bad = redump(detector_bytes, setting(path, value))
    assert len(bad) < 200_000  # a small file claiming a huge network
    with pytest.raises(FileFormatError, match=re.escape(named)):
        load_bytes(bad)


ABSURD_IMAGE = [
    ("fitted.schema.shape", [1, 10**6, 10**6], "fitted.schema.shape[1]"),
    ("fitted.schema.shape", [3, 4096, 4096], "fitted.schema.shape"),
    ("fitted.config.conv_base", 10**6, "fitted.config.conv_base"),
    ("fitted.config.latent_dim", 2**20, "fitted.latent_stats.kl"),
]


@pytest.mark.parametrize("path, value, named", ABSURD_IMAGE,
                         ids=[f"{p}={str(v)[:20]}" for p, v, _ in ABSURD_IMAGE])
def test_absurd_image_architecture_is_refused_before_allocation(
        image_bytes: bytes, no_network_built: None, path: str, value: Any,
        named: str) -> None:
    def mutate(meta: dict[str, Any]) -> None:
        at(path)(meta, value)
        if path == "fitted.schema.shape":
            meta["fitted"]["config"]["shape"] = value
    with pytest.raises(FileFormatError, match=re.escape(named)):
        load_bytes(redump(image_bytes, mutate))


def test_large_image_within_bounds_is_refused_by_its_tensor_shapes(
        image_bytes: bytes, no_network_built: None) -> None:
    # 2048 x 2048 pixels pass the bounds; the conv network they imply has ~5e8
    # parameters, computed on the meta device and compared with the few stored.
    def mutate(meta: dict[str, Any]) -> None:
        meta["fitted"]["schema"]["shape"] = meta["fitted"]["config"]["shape"] = [1, 2048, 2048]
        meta["fitted"]["n_features_in"] = 2048 * 2048
    with pytest.raises(FileFormatError, match=r"implies .* parameters in all"):
        load_bytes(redump(image_bytes, mutate))


def test_absurd_model_embedded_in_a_vkc_is_refused(
        compressor: VAECompressor, frame: pd.DataFrame, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = redump(compressor.to_bytes(), setting("fitted.config.hidden", [8_000_000, 32]))
    fitted = compressor.fitted_
    # The writer embeds ``to_bytes()``: this container carries the hostile model.
    monkeypatch.setattr(fitted, "to_bytes", lambda: hostile)
    vkc = tmp_path / "hostile.vkc"
    vkc.write_bytes(compressor.compress(frame, embed_model=True))
    monkeypatch.undo()

    def refuse(config: Any, *_: Any) -> None:
        raise AssertionError("a network was built from the embedded hostile config")
    monkeypatch.setattr(vaekit.core, "build_vae", refuse)
    monkeypatch.setattr(fitted_backends, "NumpyVAE", refuse)
    with pytest.raises(FileFormatError, match=re.escape("fitted.config.hidden[0]")):
        list(iter_decompressed(vkc))
    out = tmp_path / "out.csv"
    result = run_cli("decompress", vkc, "-o", out)
    assert result.exit_code == 4, result.output
    assert "fitted.config.hidden[0]" in result.output
    assert not out.exists()


def test_cli_refuses_an_absurd_model_with_exit_4(detector_bytes: bytes, frame: pd.DataFrame,
                                                 tmp_path: Path) -> None:
    model = tmp_path / "absurd.vaekit"
    model.write_bytes(redump(detector_bytes, setting("fitted.config.latent_dim", 10**12)))
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    before = data.read_bytes()
    out = tmp_path / "scores.csv"
    result = run_cli("score", data, "-m", model, "-o", out, "--quiet")
    assert result.exit_code == 4, result.output
    assert "absurd.vaekit" in result.output and "fitted.config.latent_dim" in result.output
    assert not out.exists() and data.read_bytes() == before
    info = run_cli("info", model)
    assert info.exit_code == 4 and "fitted.config.latent_dim" in info.output


# ----------------------------------------------------------------- 2. NaN and inf in a model

NON_FINITE = [
    ("fitted.score_quantiles.q[0]", math.nan, "NaN"),
    ("params.contamination", math.nan, "NaN"),
    ("fitted.latent_stats.kl[0]", math.inf, "Infinity"),
    ("fitted.latent_stats.posterior_sd[1]", -math.inf, "-Infinity"),
    ("fitted.schema.columns[0].center", math.nan, "NaN"),
    ("fitted.schema.columns[3].scale", math.inf, "Infinity"),
    ("fitted.schema.columns[0].high", math.nan, "NaN"),
    ("fitted.history[0].train_elbo", math.nan, "NaN"),
    ("fitted.config.min_scale", math.inf, "Infinity"),
    ("fitted.config.num_min_scale[0]", math.nan, "NaN"),
]


@pytest.mark.parametrize("path, value, shown", NON_FINITE, ids=[p for p, _, _ in NON_FINITE])
def test_non_finite_metadata_is_refused_naming_the_key(detector_bytes: bytes, path: str,
                                                       value: float, shown: str) -> None:
    tensors, meta = contents(detector_bytes)
    at(path)(meta, value)
    text = json.dumps(meta, sort_keys=True, allow_nan=True)  # Python writes NaN literals
    assert shown in text
    with pytest.raises(FileFormatError, match=re.escape(f"'{path}' is {shown}")):
        load_bytes(raw_model(tensors, text))


def test_number_overflowing_to_infinity_is_refused(compressor: VAECompressor) -> None:
    tensors, meta = contents(compressor.to_bytes())
    meta["fitted"]["quantizer"]["lo"][0] = 123456.789
    text = json.dumps(meta, sort_keys=True).replace("123456.789", "-1e999")
    with pytest.raises(FileFormatError, match=re.escape("'fitted.quantizer.lo[0]' is -inf")):
        load_bytes(raw_model(tensors, text))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(detector_bytes: bytes,
                                                          value: float) -> None:
    def poison(tensors: dict[str, torch.Tensor]) -> None:
        tensors["decoder.2.weight"] = tensors["decoder.2.weight"].clone()
        tensors["decoder.2.weight"][3, 1] = value
    with pytest.raises(FileFormatError, match=r"'decoder\.2\.weight' holds NaN or infinite"):
        load_bytes(redump(detector_bytes, mutate_tensors=poison))


def test_cli_refuses_a_nan_threshold_model(detector_bytes: bytes, frame: pd.DataFrame,
                                           tmp_path: Path) -> None:
    tensors, meta = contents(detector_bytes)
    meta["fitted"]["score_quantiles"]["q"][:10] = [math.nan] * 10
    model = tmp_path / "nan.vaekit"
    model.write_bytes(raw_model(tensors, json.dumps(meta, allow_nan=True)))
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    result = run_cli("score", data, "-m", model, "-o", out, "--quiet")
    assert result.exit_code == 4, result.output
    assert "fitted.score_quantiles.q[0]" in result.output and not out.exists()


# ------------------------------------------------------ 3. malformed metadata, valid checksum


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    parent, _, key = path.rpartition(".")

    def mutate(meta: dict[str, Any]) -> None:
        node = meta
        for k in parent.split("."):
            node = node[k]
        node.pop(key)
    return mutate


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("hidden as text", setting("fitted.config.hidden", "32,32"), "fitted.config.hidden"),
    ("bool latent", setting("fitted.config.latent_dim", True), "fitted.config.latent_dim"),
    ("negative latent", setting("fitted.config.latent_dim", -3), "fitted.config.latent_dim"),
    ("float width", setting("fitted.config.hidden", [32.5, 32]), "fitted.config.hidden[0]"),
    ("no config kind", _drop("fitted.config.kind"), "fitted.config.kind"),
    ("no latent stats", _drop("fitted.latent_stats"), "fitted.latent_stats"),
    ("unknown column kind", setting("fitted.schema.columns[0].kind", "complex"),
     "fitted.schema.columns[0].kind"),
    ("no columns", setting("fitted.schema.columns", []), "fitted.schema.columns"),
    ("binary with 3 levels", setting("fitted.schema.columns[1].levels", [0, 1, 2]),
     "fitted.schema.columns[1].levels"),
    ("repeated level", setting("fitted.schema.columns[2].levels", ["x", "x", "y"]),
     "fitted.schema.columns[2].levels"),
    ("level as object", setting("fitted.schema.columns[2].levels", ["x", {"a": 1}, "y"]),
     "fitted.schema.columns[2].levels[1]"),
    ("zero scale", setting("fitted.schema.columns[0].scale", 0), "fitted.schema.columns[0].scale"),
    ("text center", setting("fitted.schema.columns[0].center", "1.0"),
     "fitted.schema.columns[0].center"),
    ("repeated name", setting("fitted.schema.columns[3].name", "a"),
     "fitted.schema.columns[3].name"),
    ("cat sizes off", setting("fitted.config.cat_sizes", [3, 3]), "fitted.config.cat_sizes"),
    ("short kl", setting("fitted.latent_stats.kl", [0.1]), "fitted.latent_stats.kl"),
    ("history object", setting("fitted.history", {"a": 1}), "fitted.history"),
    ("history entry list", setting("fitted.history[0]", [1, 2]), "fitted.history[0]"),
    ("contamination 0.9", setting("params.contamination", 0.9), "params.contamination"),
    ("device tpu", setting("params.device", "tpu:0"), "params.device"),
    ("epochs text", setting("params.epochs", "many"), "epochs"),
    ("no scores", setting("fitted.decision_scores", []), "fitted.decision_scores"),
    ("scores text", setting("fitted.decision_scores", "abc"), "fitted.decision_scores"),
    ("int feature names", setting("fitted.feature_names_in", [1, 2, 3, 4]),
     "fitted.feature_names_in[0]"),
    ("negative seed", setting("fitted.seed", -1), "fitted.seed"),
    ("huge n_features_in", setting("fitted.n_features_in", 10**30), "beyond 64 bits"),
    ("list at the top", lambda meta: meta.clear() or meta.update({"fitted": []}),
     "lacks the 'fitted'"),
    ("estimator number", setting("estimator", 5), "estimator"),
    ("input form null", setting("fitted.input_form", None), "fitted.input_form"),
    ("n_jobs huge", setting("params.n_jobs", 10**9), "params.n_jobs"),
    ("negative n_missing", setting("fitted.schema.columns[0].n_missing", -1),
     "fitted.schema.columns[0].n_missing"),
    ("n_missing above rows", setting("fitted.schema.columns[0].n_missing", 10**9),
     "fitted.schema.columns[0].n_missing"),
    ("n_missing float", setting("fitted.schema.columns[2].n_missing", 1.5),
     "fitted.schema.columns[2].n_missing"),
    ("missing_cost text", setting("fitted.schema.columns[0].missing_cost", "1.0"),
     "fitted.schema.columns[0].missing_cost"),
    ("missing_cost huge", setting("fitted.schema.columns[1].missing_cost", 1e300),
     "fitted.schema.columns[1].missing_cost"),
    ("n_rare above rows", setting("fitted.schema.columns[0].n_rare", 10**9),
     "fitted.schema.columns[0].n_rare"),
    ("n_rare negative", setting("fitted.schema.columns[1].n_rare", -3),
     "fitted.schema.columns[1].n_rare"),
    ("unknown spelling rule", setting("fitted.schema.unseen_spelling", "gpt"),
     "fitted.schema.unseen_spelling"),
    ("spelling rule number", setting("fitted.schema.unseen_spelling", 1),
     "fitted.schema.unseen_spelling"),
]


@pytest.mark.parametrize("mutate, named", [(m, n) for _, m, n in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_malformed_metadata_is_refused_naming_the_key(detector_bytes: bytes,
                                                      mutate: Callable[[dict[str, Any]], Any],
                                                      named: str) -> None:
    with pytest.raises(FileFormatError, match=re.escape(named)):
        load_bytes(redump(detector_bytes, mutate))


MALFORMED_CODEC = [
    ("quantizer version", setting("fitted.quantizer.version", 99), "fitted.quantizer.version"),
    ("quantizer bits", setting("fitted.quantizer.bits", [3]), "fitted.quantizer.bits"),
    ("quantizer 17 bits", lambda m: m["fitted"]["quantizer"]["bits"].__setitem__(0, 17),
     "fitted.quantizer.bits[0]"),
    ("offset length", setting("fitted.config.linear_path.offset", [0.0]),
     "fitted.config.linear_path.offset"),
    ("asinh flag", setting("fitted.config.linear_path.asinh", ["yes", False]),
     "fitted.config.linear_path.asinh[0]"),
    ("n_in beyond d_in", lambda m: m["fitted"]["config"]["linear_path"].update(
        n_in=11, offset=None, scale=None, asinh=None), "fitted.config.linear_path.n_in"),
    ("beta text", setting("fitted.beta_used", "auto"), "fitted.beta_used"),
    # The value grid a budget chose (issue 17).
    ("negative grid bound", setting("fitted.grid_bound", -0.5), "fitted.grid_bound"),
    ("huge grid bound", setting("fitted.grid_bound", 1e300), "fitted.grid_bound"),
    ("grid bound text", setting("fitted.grid_bound", "fine"), "fitted.grid_bound"),
]


@pytest.mark.parametrize("mutate, named", [(m, n) for _, m, n in MALFORMED_CODEC],
                         ids=[name for name, _, _ in MALFORMED_CODEC])
def test_malformed_compressor_metadata_is_refused(compressor: VAECompressor,
                                                  mutate: Callable[[dict[str, Any]], Any],
                                                  named: str) -> None:
    with pytest.raises(FileFormatError, match=re.escape(named)):
        load_bytes(redump(compressor.to_bytes(), mutate))


MALFORMED_IMAGE = [
    ("NHW with 3 channels", lambda m: (at("fitted.schema.shape")(m, [3, 8, 8]),
                                       at("fitted.config.shape")(m, [3, 8, 8])),
     "fitted.schema.layout"),
    ("object dtype", setting("fitted.schema.dtype", "object"), "fitted.schema.dtype"),
    ("config shape off", setting("fitted.config.shape", [1, 8, 9]), "fitted.config.shape"),
    ("2 channels", lambda m: (at("fitted.schema.shape")(m, [2, 8, 8])), "fitted.schema.shape[0]"),
    ("conv for tables kind", setting("fitted.config.kind", "tabular"), "fitted.config.kind"),
    # The image detector's scoring rule (issue 18): only the values vaekit writes.
    ("unknown pixel scale", setting("fitted.config.image_scale", "per-row"),
     "fitted.config.image_scale"),
    ("unknown complexity coder", setting("fitted.config.complexity", "gzip -9"),
     "fitted.config.complexity"),
    ("complexity not a string", setting("fitted.config.complexity", 1),
     "fitted.config.complexity"),
    ("complexity cap over zlib's bound", setting("fitted.config.complexity_cap", 1e9),
     "fitted.config.complexity_cap"),
    ("negative complexity cap", setting("fitted.config.complexity_cap", -1.0),
     "fitted.config.complexity_cap"),
    ("complexity cap not a number", setting("fitted.config.complexity_cap", "all"),
     "fitted.config.complexity_cap"),
    ("complexity cap without a coder", lambda m: m["fitted"]["config"].pop("complexity"),
     "fitted.config.complexity_cap"),
    ("a value grid for images", setting("fitted.grid_bound", 0.1), "fitted.grid_bound"),
]


@pytest.mark.parametrize("mutate, named", [(m, n) for _, m, n in MALFORMED_IMAGE],
                         ids=[name for name, _, _ in MALFORMED_IMAGE])
def test_malformed_image_metadata_is_refused(image_bytes: bytes,
                                             mutate: Callable[[dict[str, Any]], Any],
                                             named: str) -> None:
    with pytest.raises(FileFormatError, match=re.escape(named)):
        load_bytes(redump(image_bytes, mutate))


def test_deep_nesting_and_huge_integers_are_refused(detector_bytes: bytes) -> None:
    tensors, meta = contents(detector_bytes)
    meta["params"]["verbose"] = "PLACEHOLDER"
    text = json.dumps(meta, sort_keys=True)
    cases = {
        "[" * 100_000 + "]" * 100_000: "nested too deeply",   # RecursionError in json
        "[" * 200 + "]" * 200: "nested too deeply",           # parses, but over the bound
        "9" * 5000: "integer of 5000 digits",                 # over Python's int limit
    }
    for value, message in cases.items():
        blob = raw_model(tensors, text.replace('"PLACEHOLDER"', value))
        with pytest.raises(FileFormatError, match=message):
            load_bytes(blob)


def test_malformed_tensors_are_refused(detector_bytes: bytes) -> None:
    def retype(tensors: dict[str, torch.Tensor]) -> None:
        tensors["decoder.0.bias"] = tensors["decoder.0.bias"].double()
    with pytest.raises(FileFormatError, match="'decoder.0.bias' has dtype 'F64'"):
        load_bytes(redump(detector_bytes, mutate_tensors=retype))
    with pytest.raises(FileFormatError, match=r"missing tensors \['decoder.0.bias'\]"):
        load_bytes(redump(detector_bytes, mutate_tensors=lambda t: t.pop("decoder.0.bias")))
    with pytest.raises(FileFormatError, match=r"unexpected tensors \['extra'\]"):
        load_bytes(redump(detector_bytes, mutate_tensors=lambda t: t.update(extra=torch.ones(2))))
    # A 0-dim tensor once crashed the checksum (a float cannot be viewed as bytes).
    with pytest.raises(FileFormatError, match="unexpected tensors"):
        load_bytes(redump(detector_bytes, mutate_tensors=lambda t: t.update(x=torch.tensor(1.0))))


@pytest.mark.parametrize("version", ["abc", "0", "-1", "9" * 40])
def test_bad_format_versions_are_refused(detector_bytes: bytes, version: str) -> None:
    blob = detector_bytes.replace(f'"vaekit_format_version":"{FORMAT_VERSION}"'.encode(),
                                  f'"vaekit_format_version":"{version}"'.encode())
    # Keep the header length right: pad or fail the test setup loudly.
    (n,) = struct.unpack("<Q", detector_bytes[:8])
    delta = len(blob) - len(detector_bytes)
    blob = struct.pack("<Q", n + delta) + blob[8:]
    with pytest.raises(FileFormatError, match="format version|newer vaekit"):
        load_bytes(blob)


def _key_paths(value: Any, path: str = "") -> list[str]:
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _key_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):  # the first few entries of long lists
            out += _key_paths(v, f"{path}[{i}]")
    return out


SUBSTITUTES = [None, True, False, -1, 0, 1, 2**40, 0.5, -2.5, "", "x", [], [1], {}, {"a": 1}]


@pytest.mark.parametrize("which", ["detector", "compressor", "image"])
def test_any_json_value_at_any_key_loads_or_is_refused(
        which: str, detector_bytes: bytes, compressor: VAECompressor, image_bytes: bytes,
        frame: pd.DataFrame) -> None:
    """Fuzz: each substitution either loads into a model that works, or raises
    FileFormatError -- never another exception, never a model that crashes later."""
    blob = {"detector": detector_bytes, "compressor": compressor.to_bytes(),
            "image": image_bytes}[which]
    tensors, meta = contents(blob)
    meta["fitted"].get("decision_scores", [])[5:] = []  # keep the fuzzed files small
    paths = _key_paths(meta)
    rng = random.Random(15)
    cases = [(p, v) for p in paths for v in SUBSTITUTES]
    rng.shuffle(cases)
    rows = (frame.head(4) if which != "image"
            else np.random.default_rng(1).integers(0, 256, size=(4, 8, 8), dtype=np.uint8))
    loaded = 0
    for path, value in cases[:400]:
        mutated = json.loads(json.dumps(meta))
        at(path)(mutated, value)
        try:
            est = load_bytes(dump_model(tensors, mutated))
        except FileFormatError:
            continue
        loaded += 1
        # Accepted: then it must work (a value it tolerates must be harmless).
        if isinstance(est, VAECompressor):
            est.inverse_transform(est.transform(rows))
        else:
            est.predict(rows)
    assert loaded < 400  # most substitutions are refused


# ------------------------------------------------------------ 4. early file checks


class _CountingReads(io.RawIOBase):
    """A file object that records how many bytes were read from it."""

    def __init__(self, fh: Any, log: list[int]) -> None:
        self.fh, self.log = fh, log

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.log.append(len(data))
        return data

    def fileno(self) -> int:
        return self.fh.fileno()

    def close(self) -> None:
        self.fh.close()
        super().close()


@pytest.fixture
def read_log(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    log: list[int] = []
    real = os.fdopen
    monkeypatch.setattr(mf.os, "fdopen", lambda fd, *a, **k: _CountingReads(real(fd, *a, **k), log))
    return log


@pytest.mark.parametrize("head, message", [
    (struct.pack("<Q", 2**40) + b"{", "does not fit"),          # header longer than the file
    (struct.pack("<Q", 16) + b"PK\x03\x04" + b"\0" * 12, "unreadable header"),  # not JSON
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "does not fit"),          # another format's magic
])
def test_bad_first_bytes_are_refused_before_reading_the_rest(
        tmp_path: Path, read_log: list[int], head: bytes, message: str) -> None:
    path = tmp_path / "bad.vaekit"
    path.write_bytes(head + b"\0" * 2**20)
    with pytest.raises(FileFormatError, match=message):
        vaekit.load(path)
    assert sum(read_log) <= 9  # the header length and one byte, not the 1 MiB


def test_oversized_file_is_refused_before_reading(tmp_path: Path, read_log: list[int]) -> None:
    path = tmp_path / "huge.vaekit"
    with open(path, "wb") as fh:  # sparse: its size says 4 GiB + 1, its disk use is nothing
        fh.write(struct.pack("<Q", 100) + b"{")
        fh.truncate(mf.MAX_MODEL_BYTES + 1)
    with pytest.raises(FileFormatError, match="larger than any vaekit model"):
        vaekit.load(path)
    assert sum(read_log) <= 9


def _finishes(fn: Callable[[], Any], seconds: float = 20.0) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked on a FIFO"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_devices_are_refused_not_hung(tmp_path: Path) -> None:
    fifo = tmp_path / "model.vaekit"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(FileFormatError, match="not a regular file"):
        _finishes(lambda: vaekit.load(fifo))
    with pytest.raises(FileFormatError, match="not a regular file"):
        _finishes(lambda: describe(str(fifo)))
    result = _finishes(lambda: run_cli("info", fifo))
    assert result.exit_code == 4 and "not a regular file" in result.output
    if os.path.exists("/dev/zero"):
        with pytest.raises(FileFormatError, match="not a regular file"):
            _finishes(lambda: vaekit.load("/dev/zero"))
    with pytest.raises(FileFormatError, match="folder"):
        vaekit.load(tmp_path)


def test_real_models_still_load_and_describe(detector_bytes: bytes, compressor: VAECompressor,
                                             image_bytes: bytes, tmp_path: Path) -> None:
    for name, blob in (("d", detector_bytes), ("c", compressor.to_bytes()), ("i", image_bytes)):
        path = tmp_path / f"{name}.vaekit"
        path.write_bytes(blob)
        assert vaekit.load(path).to_bytes() == blob
        assert describe(str(path))["type"] == "model"



def test_padded_model_is_refused_from_its_header_before_the_weights_are_read(
        tmp_path: Path, detector_bytes: bytes, read_log: list[int]) -> None:
    # A valid model with a sparse 1 GiB tail: the header's byte ranges no longer tile
    # the file, which is seen before the (would-be 1 GiB) weights are read.
    path = tmp_path / "padded.vaekit"
    path.write_bytes(detector_bytes)
    with open(path, "r+b") as fh:
        fh.truncate(len(detector_bytes) + 2**30)
    (n,) = struct.unpack("<Q", detector_bytes[:8])
    with pytest.raises(FileFormatError, match="header describes .* bytes of weights"):
        vaekit.load(path)
    assert sum(read_log) <= 8 + n  # the header, none of the weights


def test_header_shapes_are_checked_against_the_config_before_reading(
        tmp_path: Path, detector_bytes: bytes, read_log: list[int]) -> None:
    # The header declares one tensor twice as large as the config implies (the byte
    # ranges still tile the file): refused from the header alone.
    header_len = struct.unpack("<Q", detector_bytes[:8])[0]
    header = json.loads(detector_bytes[8:8 + header_len])
    name = next(k for k in sorted(header) if k != "__metadata__")
    entry = header[name]
    extra = 4 * int(np.prod(entry["shape"]))
    entry["shape"] = [2 * entry["shape"][0], *entry["shape"][1:]]
    begin, end = entry["data_offsets"]
    entry["data_offsets"] = [begin, end + extra]
    for other in header.values():
        if other is not entry and isinstance(other, dict) and "data_offsets" in other:
            b, e = other["data_offsets"]
            if b >= end:
                other["data_offsets"] = [b + extra, e + extra]
    text = json.dumps(header).encode()
    data = detector_bytes[8 + header_len:]
    blob = (struct.pack("<Q", len(text)) + text + data[:end] + b"\0" * extra + data[end:])
    path = tmp_path / "shape.vaekit"
    path.write_bytes(blob)
    with pytest.raises(FileFormatError, match=f"tensor {name!r} has shape"):
        vaekit.load(path)
    assert sum(read_log) <= 8 + len(text)


@pytest.mark.parametrize(("value", "words"), [
    ("x", "not a number"), (None, "not a number"), (1e308, "beyond"), (True, "not a number"),
])
def test_history_numbers_are_numbers(detector_bytes: bytes, value: Any, words: str) -> None:
    # vaekit info and the report compute with these: a string there crashed both
    tensors, meta = contents(detector_bytes)
    meta.pop("fingerprint", None)
    meta["fitted"]["history"][-1]["train_elbo"] = value
    blob = raw_model(tensors, json.dumps(meta))
    with pytest.raises(FileFormatError, match=r"fitted\.history\[\d+\]\.train_elbo.*" + words):
        load_bytes(blob)


@pytest.mark.parametrize(("part", "value"), [("encoder", 3e38), ("encoder", 1e30),
                                             ("decoder", 3e38)])
def test_finite_weights_that_overflow_are_refused_at_load(detector_bytes: bytes, part: str,
                                                          value: float) -> None:
    # Every weight finite and of the right shape, but the network overflows float32:
    # every score was NaN (rank 1, is_anomaly 0, exit 0).
    tensors, meta = contents(detector_bytes)
    meta.pop("fingerprint", None)
    name = next(n for n in sorted(tensors) if n.startswith(part) and n.endswith("bias"))
    tensors[name] = torch.full_like(tensors[name], value)
    blob = raw_model(tensors, json.dumps(meta))
    with pytest.raises(FileFormatError, match="non-finite scores|typical row"):
        load_bytes(blob)
