"""The multi-part manifest format (:mod:`vaekit.codec.manifest`), without Dask.

Parts are real ``.vkc`` containers of a tiny fitted ``VAECompressor``; the manifest
is written with :class:`ManifestWriter` and then damaged on purpose.  Every damaged
or hostile manifest must raise :class:`FileFormatError` before any part is read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# Names that may move during the restructure: keep them here.
from vaekit import VAECompressor
from vaekit.codec import manifest as manifest_module
from vaekit.codec.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_PREFIX,
    MANIFEST_VERSION,
    ManifestWriter,
    checked_file,
    count_rows,
    describe_manifest,
    is_manifest,
    read_manifest,
)
from vaekit.errors import DataError, FileFormatError
from vaekit.fitted.streams import CompressedWriter

SPLIT = 25  # rows in part 1 of 2 (of 60)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])


@pytest.fixture(scope="module")
def model(frame: pd.DataFrame) -> VAECompressor:
    return VAECompressor(epochs=2, random_state=0).fit(frame)


def _container(model: VAECompressor, rows: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    with CompressedWriter(buffer, model) as writer:
        writer.write(rows)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def parts(model: VAECompressor, frame: pd.DataFrame) -> list[tuple[bytes, int]]:
    """Two part containers: rows [0, SPLIT) and [SPLIT, 60)."""
    return [(_container(model, frame.iloc[:SPLIT]), SPLIT),
            (_container(model, frame.iloc[SPLIT:]), len(frame) - SPLIT)]


@pytest.fixture(scope="module")
def fingerprint(model: VAECompressor) -> str:
    return model.fitted_.fingerprint()


def _write(path: Path, parts, fingerprint: str, model_bytes: bytes | None = None):
    writer = ManifestWriter(path, fingerprint, model_bytes=model_bytes)
    for i, (data, rows) in enumerate(parts):
        writer.add_part(data, rows, source=f"input-{i}.csv")
    return writer.close()


@pytest.fixture()
def written(tmp_path: Path, parts, fingerprint) -> Path:
    """A valid two-part manifest at ``tmp_path / "out.vkc"``."""
    path = tmp_path / "out.vkc"
    _write(path, parts, fingerprint)
    return path


def _rewrite(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj))  # json.dumps keeps "format" first: the prefix holds


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- reading


def test_read_valid_manifest(written: Path, parts, fingerprint):
    text = written.read_bytes()
    assert text.startswith(MANIFEST_PREFIX) and text.endswith(b"\n")
    obj = json.loads(text)
    assert obj["format"] == MANIFEST_FORMAT and obj["version"] == MANIFEST_VERSION
    assert obj["codec"] == "vaekit-latent-codes" and obj["model"] is None
    assert obj["n_rows"] == 60

    manifest = read_manifest(written)
    assert manifest.path == str(written)
    assert manifest.model_fingerprint == fingerprint and manifest.model is None
    assert manifest.n_rows == 60 and len(manifest.parts) == 2
    assert manifest.parts_bytes == sum(len(d) for d, _ in parts)
    assert manifest.to_json() == obj
    for i, (entry, (data, rows)) in enumerate(zip(manifest.parts, parts, strict=True)):
        assert entry.path.startswith("out.vkc.parts/part-") and entry.path.endswith(f"-{i:05d}.vkc")
        assert (entry.rows, entry.bytes) == (rows, len(data))
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.source == f"input-{i}.csv"
        file = checked_file(manifest, entry, f"part {i + 1}")
        assert file == str(written.parent / entry.path)
        assert Path(file).read_bytes() == data
        assert count_rows(file) == rows  # each part is a complete container

    assert count_rows(written) == 60
    info = describe_manifest(written)
    assert info["type"] == "manifest" and info["rows"] == 60 and info["parts"] == 2
    assert info["parts_bytes"] == manifest.parts_bytes and info["model_stored"] is False
    assert info["file_bytes"] == len(text)
    assert info["bytes_per_row"] == round(manifest.parts_bytes / 60, 3)


def test_embedded_model_is_listed_and_checked(tmp_path: Path, parts, fingerprint, model):
    blob = model.fitted_.to_bytes()
    path = tmp_path / "out.vkc"
    _write(path, parts, fingerprint, model_bytes=blob)
    manifest = read_manifest(path)
    assert manifest.model is not None and manifest.model.rows == 0
    assert manifest.model.path.startswith("out.vkc.parts/model-")
    assert manifest.model.path.endswith(".vaekit")
    assert manifest.n_rows == 60 and manifest.parts_bytes == sum(len(d) for d, _ in parts)
    assert Path(checked_file(manifest, manifest.model, "model file")).read_bytes() == blob
    assert describe_manifest(path)["model_stored"] is True
    assert "rows" not in json.loads(path.read_text())["model"]

    model_file = Path(manifest.resolve(manifest.model))
    model_file.write_bytes(model_file.read_bytes()[:-1])
    with pytest.raises(FileFormatError, match=r"model file .* has \d+ bytes, the manifest says"):
        read_manifest(path)


@pytest.mark.parametrize("bad", [
    "../../etc/passwd",
    "../out.vkc.parts/{name}",
    "out.vkc.parts/../../{name}",
    "out.vkc.parts/../{name}",
    "/etc/passwd",
    "/{name}",
    "/tmp/out.vkc.parts/{name}",
    "{name}",
    "out.vkc.parts/sub/{name}",
    "out.vkc.parts/evil.vkc",
    "out.vkc.parts/{name}/..",
    "out.vkc.parts/.",
    "out.vkc.notparts/{name}",
    "",
    None,
    7,
])
@pytest.mark.parametrize("where", ["part", "model"])
def test_traversal_and_absolute_paths_are_refused(tmp_path, parts, fingerprint, model,
                                                 bad, where):
    path = tmp_path / "out.vkc"
    _write(path, parts, fingerprint, model_bytes=model.fitted_.to_bytes())
    obj = json.loads(path.read_text())
    entry = obj["parts"][1] if where == "part" else obj["model"]
    name = entry["path"].split("/")[1]
    entry["path"] = bad.format(name=name) if isinstance(bad, str) else bad
    _rewrite(path, obj)
    label = "part 2" if where == "part" else "model entry"
    # refused on parsing, before any file is looked at
    with pytest.raises(FileFormatError, match=f"{label} has an unexpected path"):
        read_manifest(path, check_files=False)
    with pytest.raises(FileFormatError, match="unexpected path"):
        read_manifest(path)


def test_part_of_another_size_or_missing(written: Path):
    manifest = read_manifest(written)
    part = Path(manifest.resolve(manifest.parts[1]))
    size = part.stat().st_size
    part.write_bytes(part.read_bytes() + b"\0")
    with pytest.raises(FileFormatError,
                       match=rf"part 2 of 2 .* has {size + 1} bytes, the manifest says {size}"):
        read_manifest(written)
    assert read_manifest(written, check_files=False).n_rows == 60  # sizes only with files
    assert count_rows(written) == 60
    part.unlink()
    with pytest.raises(FileFormatError, match=r"part 2 of 2 .* is missing"):
        read_manifest(written)


def test_part_with_another_sha256(written: Path):
    manifest = read_manifest(written)
    part = Path(manifest.resolve(manifest.parts[0]))
    original = part.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 1
    part.write_bytes(bytes(data))  # same size: read_manifest cannot tell
    manifest = read_manifest(written)
    checked_file(manifest, manifest.parts[1], "part 2")
    with pytest.raises(FileFormatError,
                       match=r"part 1 \(.*\) is not the file .*\(SHA-256 differs\)"):
        checked_file(manifest, manifest.parts[0], "part 1")

    # the other way round: the recorded hash changed
    part.write_bytes(original)
    obj = json.loads(written.read_text())
    obj["parts"][0]["sha256"] = "0" * 64
    _rewrite(written, obj)
    manifest = read_manifest(written)
    with pytest.raises(FileFormatError, match="SHA-256 differs"):
        checked_file(manifest, manifest.parts[0], "part 1")


def test_manifest_over_the_size_limit(written: Path, monkeypatch):
    size = written.stat().st_size
    monkeypatch.setattr(manifest_module, "MAX_MANIFEST_BYTES", size)
    assert read_manifest(written).n_rows == 60  # exactly at the limit
    monkeypatch.setattr(manifest_module, "MAX_MANIFEST_BYTES", size - 1)
    with pytest.raises(FileFormatError, match=rf"manifest larger than {size - 1} bytes"):
        read_manifest(written)
    with pytest.raises(FileFormatError, match="larger than"):
        count_rows(written)


def _set(key, value):
    def change(obj):
        obj[key] = value
    return change


def _drop(key):
    def change(obj):
        del obj[key]
    return change


def _part(key, value=...):
    def change(obj):
        if value is ...:
            del obj["parts"][0][key]
        else:
            obj["parts"][0][key] = value
    return change


BAD_OBJECTS = {
    "newer version": (_set("version", MANIFEST_VERSION + 1), "Upgrade vaekit"),
    "version 0": (_set("version", 0), r"corrupt \(version 0\)"),
    "version text": (_set("version", "1"), r"corrupt \(version '1'\)"),
    "no version": (_drop("version"), r"corrupt \(version None\)"),
    "other codec": (_set("codec", "zip"), "unknown codec 'zip'"),
    "no codec": (_drop("codec"), "unknown codec None"),
    "short fingerprint": (_set("model_fingerprint", "ab" * 8), "bad model_fingerprint"),
    "upper-case fingerprint": (_set("model_fingerprint", "AB" * 32), "bad model_fingerprint"),
    "no fingerprint": (_drop("model_fingerprint"), "bad model_fingerprint"),
    "no parts": (_drop("parts"), "no list of parts"),
    "parts not a list": (_set("parts", {"0": {}}), "no list of parts"),
    "part not an object": (_set("parts", ["out.vkc.parts/x.vkc"]), "part 1 is not an object"),
    "no n_rows": (_drop("n_rows"), r"n_rows None is not the sum of its parts' rows, 60"),
    "wrong n_rows": (_set("n_rows", 61), r"n_rows 61 is not the sum"),
    "part without path": (_part("path"), "part 1 has an unexpected path None"),
    "part without bytes": (_part("bytes"), "part 1 has a bad 'bytes' value None"),
    "negative bytes": (_part("bytes", -1), "bad 'bytes' value -1"),
    "bool bytes": (_part("bytes", True), "bad 'bytes' value True"),
    "float bytes": (_part("bytes", 10.0), "bad 'bytes' value 10.0"),
    "negative rows": (_part("rows", -5), "bad 'rows' value -5"),
    "text rows": (_part("rows", "25"), "bad 'rows' value '25'"),
    "part without sha256": (_part("sha256"), "part 1 has a bad sha256 None"),
    "short sha256": (_part("sha256", "0" * 63), "bad sha256"),
    "model not an object": (_set("model", "out.vkc.parts/model-00.vaekit"),
                            "model entry is not an object"),
}


@pytest.mark.parametrize("case", list(BAD_OBJECTS))
def test_bad_manifest_objects(written: Path, case):
    change, message = BAD_OBJECTS[case]
    obj = json.loads(written.read_text())
    change(obj)
    _rewrite(written, obj)
    with pytest.raises(FileFormatError, match=message):
        read_manifest(written, check_files=False)


BAD_TEXTS = {
    "truncated": (lambda t: t[: len(t) // 2], "not valid JSON"),
    "trailing garbage": (lambda t: t + b"}", "not valid JSON"),
    "not UTF-8": (lambda t: t.replace(b'"version"', b'"\xff\xfe"', 1), "not UTF-8"),
    "other format": (lambda t: t.replace(b"vaekit-manifest", b"vaekit-manifesto", 1),
                     "not a vaekit manifest"),
    "prefix spacing": (lambda t: t.replace(b'{"format": ', b'{"format":', 1),
                       "not a vaekit manifest"),
    "leading space": (lambda t: b" " + t, "not a vaekit manifest"),
    "empty": (lambda t: b"", "not a vaekit manifest"),
    "a JSON list": (lambda t: b"[" + t + b"]", "not a vaekit manifest"),
}


@pytest.mark.parametrize("case", list(BAD_TEXTS))
def test_bad_manifest_texts(written: Path, case):
    change, message = BAD_TEXTS[case]
    written.write_bytes(change(written.read_bytes()))
    with pytest.raises(FileFormatError, match=message):
        read_manifest(written)


def test_a_container_is_not_read_as_a_manifest(written: Path):
    part = written.parent / read_manifest(written).parts[0].path
    with pytest.raises(FileFormatError, match="not a vaekit manifest"):
        read_manifest(part)


def test_deeply_nested_manifest_is_a_file_format_error(written: Path):
    obj = written.read_bytes().rstrip().removesuffix(b"}")
    written.write_bytes(obj + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(FileFormatError):
        read_manifest(written)


def test_huge_integer_is_a_file_format_error(written: Path):
    obj = written.read_bytes().rstrip().removesuffix(b"}")
    written.write_bytes(obj + b', "x": ' + b"9" * 5000 + b"}")
    with pytest.raises(FileFormatError):
        read_manifest(written)


@pytest.mark.parametrize("folder", ["..\\..\\x.parts", "C:x.parts", "a\\..\\..\\out.vkc.parts"])
def test_separators_in_the_folder_name_are_refused(written: Path, folder):
    obj = json.loads(written.read_text())
    obj["parts"][0]["path"] = folder + "/" + obj["parts"][0]["path"].split("/")[1]
    _rewrite(written, obj)
    with pytest.raises(FileFormatError, match="unexpected path"):
        read_manifest(written, check_files=False)


# --------------------------------------------------------------------------- is_manifest


def test_is_manifest(written: Path, tmp_path: Path):
    manifest = read_manifest(written)
    part = Path(manifest.resolve(manifest.parts[0]))
    assert is_manifest(written) and is_manifest(str(written))
    assert not is_manifest(part)
    assert part.read_bytes()[:1] == b"\x89"

    rng = np.random.default_rng(1)
    random_file = tmp_path / "random.bin"
    random_file.write_bytes(rng.bytes(4096))
    text_file = tmp_path / "other.json"
    text_file.write_text('{"format": "vaekit-manifesto", "version": 1}')
    short = tmp_path / "short"
    short.write_bytes(MANIFEST_PREFIX[:-1])
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for path in (random_file, text_file, short, empty, tmp_path, tmp_path / "missing.vkc"):
        assert not is_manifest(path), path
    # the prefix is all it looks at
    damaged = tmp_path / "damaged.vkc"
    damaged.write_bytes(MANIFEST_PREFIX + b", garbage")
    assert is_manifest(damaged)
    with pytest.raises(FileFormatError, match="not valid JSON"):
        count_rows(damaged)


# --------------------------------------------------------------------------- writing


def test_writer_publishes_parts_then_manifest(tmp_path: Path, parts, fingerprint):
    path = tmp_path / "out.vkc"
    folder = tmp_path / "out.vkc.parts"
    writer = ManifestWriter(path, fingerprint)
    (d0, r0), (d1, r1) = parts
    e0 = writer.add_part(d0, r0, source="first")
    assert not path.exists()  # nothing published before close
    e1 = writer.add_part(d1, r1)
    assert (writer.n_rows, writer.bytes_written) == (r0 + r1, len(d0) + len(d1))
    assert _files(folder) == sorted(Path(e.path).name for e in (e0, e1))
    assert not path.exists()
    manifest = writer.close()
    assert manifest.parts == (e0, e1) and e1.source is None
    assert read_manifest(path) == manifest
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]
    with pytest.raises(ValueError, match="closed"):
        writer.add_part(d0, r0)
    with pytest.raises(ValueError, match="closed"):
        writer.close()


def test_abort_removes_what_it_wrote(tmp_path: Path, parts, fingerprint):
    path = tmp_path / "out.vkc"
    writer = ManifestWriter(path, fingerprint, model_bytes=b"model")
    for data, rows in parts:
        writer.add_part(data, rows)
    assert len(_files(tmp_path / "out.vkc.parts")) == 2
    writer.abort()
    assert _files(tmp_path) == []  # parts and their (empty) folder gone, no manifest
    with pytest.raises(ValueError, match="closed"):
        writer.add_part(*parts[0])


def test_abort_keeps_the_previous_output(tmp_path: Path, parts, fingerprint):
    path = tmp_path / "out.vkc"
    old = _write(path, parts, fingerprint)
    old_text = path.read_bytes()
    folder = tmp_path / "out.vkc.parts"
    old_files = _files(folder)

    writer = ManifestWriter(path, fingerprint)
    new = writer.add_part(*parts[0])
    assert len(_files(folder)) == 3
    writer.abort()
    assert _files(folder) == old_files  # only its own part went; the folder stays
    assert path.read_bytes() == old_text
    assert read_manifest(path) == old
    assert Path(new.path).name not in _files(folder)


def test_context_manager_aborts_on_error(tmp_path: Path, parts, fingerprint):
    path = tmp_path / "out.vkc"
    with pytest.raises(RuntimeError, match="worker died"):
        with ManifestWriter(path, fingerprint) as writer:
            writer.add_part(*parts[0])
            raise RuntimeError("worker died")
    assert _files(tmp_path) == []

    with ManifestWriter(path, fingerprint) as writer:
        for data, rows in parts:
            writer.add_part(data, rows)
    assert read_manifest(path).n_rows == 60  # closed on a clean exit


def test_close_without_rows_publishes_nothing(tmp_path: Path, fingerprint, parts):
    path = tmp_path / "out.vkc"
    writer = ManifestWriter(path, fingerprint, model_bytes=b"model")
    with pytest.raises(DataError, match="no rows"):
        writer.close()
    assert _files(tmp_path) == []
    writer = ManifestWriter(path, fingerprint)
    writer.add_part(parts[0][0], 0)
    with pytest.raises(DataError, match="no rows"):
        writer.close()
    assert _files(tmp_path) == []


def test_new_run_replaces_old_parts_only_after_publishing(tmp_path: Path, parts, fingerprint):
    path = tmp_path / "out.vkc"
    _write(path, parts, fingerprint)
    folder = tmp_path / "out.vkc.parts"
    old_files = set(_files(folder))
    (folder / "notes.txt").write_text("not ours")
    (folder / "part-zz-00000.vkc").write_bytes(b"not a name this module writes")

    writer = ManifestWriter(path, fingerprint)
    writer.add_part(*parts[1])
    writer.add_part(*parts[0])
    assert old_files < set(_files(folder))  # old parts stay until the manifest is renamed
    assert read_manifest(path).parts[0].rows == SPLIT
    manifest = writer.close()
    assert [p.rows for p in manifest.parts] == [60 - SPLIT, SPLIT]
    now = set(_files(folder))
    assert not old_files & now
    assert {"notes.txt", "part-zz-00000.vkc"} < now
    assert read_manifest(path) == manifest


def test_abort_after_close_keeps_the_published_output(tmp_path: Path, parts, fingerprint):
    path = tmp_path / "out.vkc"
    with pytest.raises(RuntimeError):
        with ManifestWriter(path, fingerprint) as writer:
            for data, rows in parts:
                writer.add_part(data, rows)
            writer.close()
            raise RuntimeError("after close")
    assert read_manifest(path).n_rows == 60
