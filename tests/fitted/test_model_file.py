"""Model files: safetensors + JSON, no pickle, verified, atomic."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import vaekit
from vaekit import FileFormatError, VAEAnomalyDetector, VAECompressor
from vaekit.fitted.model_file import FORMAT_VERSION, dump_model, parse_model


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    det = VAEAnomalyDetector(epochs=3, random_state=0).fit(X)
    path = tmp_path_factory.mktemp("m") / "model.vaekit"
    det.save(path)
    return det, X, path


def test_save_load_gives_bit_identical_scores(fitted) -> None:
    det, X, path = fitted
    again = vaekit.load(path)
    assert isinstance(again, VAEAnomalyDetector)
    np.testing.assert_array_equal(again.score_samples(X), det.score_samples(X))
    np.testing.assert_array_equal(again.predict(X), det.predict(X))
    assert again.threshold_ == det.threshold_
    assert again.history_ == det.history_
    assert again.get_params() == det.get_params()
    # to_bytes() is the file's content, and a loaded model gives back the same bytes.
    assert det.to_bytes() == path.read_bytes() == again.to_bytes()


def test_file_is_plain_safetensors_without_pickle(fitted) -> None:
    _, _, path = fitted
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["vaekit_meta"])
    assert meta["estimator"] == "VAEAnomalyDetector"
    assert meta["fitted"]["schema"]["type"] == "tabular"
    assert b"\x80\x04" not in data[:16]  # no pickle protocol header at the start


@pytest.mark.parametrize("where", ["header", "weights", "last"])
def test_tampered_file_is_refused(fitted, tmp_path, where: str) -> None:
    _, _, path = fitted
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    pos = {"header": 8 + n // 2, "weights": 8 + n + 5, "last": len(data) - 1}[where]
    data[pos] ^= 0x04
    bad = tmp_path / "bad.vaekit"
    bad.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="bad.vaekit"):
        vaekit.load(bad)


def test_truncated_and_foreign_files_are_refused(fitted, tmp_path) -> None:
    _, _, path = fitted
    data = path.read_bytes()
    for cut in (0, 5, 100, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{cut}.vaekit"
        p.write_bytes(data[:cut])
        with pytest.raises(FileFormatError):
            vaekit.load(p)
    text = tmp_path / "notes.vaekit"
    text.write_text("hello, this is not a model\n" * 10)
    with pytest.raises(FileFormatError, match="not a vaekit model"):
        vaekit.load(text)
    with pytest.raises(FileFormatError, match="not found"):
        vaekit.load(tmp_path / "missing.vaekit")


def test_future_version_is_refused(fitted) -> None:
    det, _, path = fitted
    tensors, meta = parse_model(path.read_bytes())
    meta.pop("fingerprint")
    data = dump_model(tensors, meta)
    newer = data.replace(
        f'"vaekit_format_version":"{FORMAT_VERSION}"'.encode(),
        f'"vaekit_format_version":"{FORMAT_VERSION + 1}"'.encode())
    assert newer != data
    with pytest.raises(FileFormatError, match="newer vaekit"):
        parse_model(newer)


def test_save_is_atomic(fitted, tmp_path, monkeypatch) -> None:
    det, _, _ = fitted
    target = tmp_path / "keep.vaekit"
    target.write_bytes(b"old content")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        det.save(target)
    assert target.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.vaekit"]


def test_compressor_and_image_models_round_trip(tmp_path, digits_images) -> None:
    comp = VAECompressor(epochs=2, random_state=0).fit(digits_images[:64])
    comp.save(tmp_path / "img.vaekit")
    again = vaekit.load(tmp_path / "img.vaekit")
    np.testing.assert_array_equal(again.transform(digits_images[:10]),
                                  comp.transform(digits_images[:10]))
    out = again.inverse_transform(again.transform(digits_images[:3]))
    assert out.shape == (3, 8, 8) and out.dtype == np.uint8
