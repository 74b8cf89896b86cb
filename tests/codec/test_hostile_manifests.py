"""Hostile and concurrent manifests (:mod:`vaekit.codec.manifest`, issue 15).

* Two writers to one output: neither deletes the other's parts; the last manifest
  published wins and decodes in full; files no manifest names are left alone.
* Parts that are FIFOs or symbolic links (to ``/dev/zero``) are refused quickly,
  before they are opened, by the reader and by ``vaekit decompress`` (exit 4).
* Malformed manifests with valid checksums are a :class:`FileFormatError` naming
  the file and the key (CLI exit 4, no traceback, no output left), never a hang
  or an allocation on the file's say-so.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaekit import VAECompressor
from vaekit.cli import EXIT_FILE
from vaekit.codec import manifest as manifest_module
from vaekit.codec.manifest import (
    MAX_PARTS,
    ManifestWriter,
    is_manifest,
    open_checked,
    read_manifest,
)
from vaekit.errors import DataError, FileFormatError
from vaekit.fitted.manifests import iter_decompressed_manifest
from vaekit.fitted.streams import CompressedWriter, iter_decompressed

from ..conftest import run_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types, SIGALRM")
SPLIT = 25  # rows in the first of two parts (of 60)
HAS_FIFO = hasattr(os, "mkfifo") and hasattr(signal, "SIGALRM")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])


@pytest.fixture(scope="module")
def model(frame: pd.DataFrame) -> VAECompressor:
    return VAECompressor(epochs=2, random_state=0).fit(frame)


@pytest.fixture(scope="module")
def parts(model: VAECompressor, frame: pd.DataFrame) -> list[tuple[bytes, int]]:
    def container(rows: pd.DataFrame) -> bytes:
        buffer = io.BytesIO()
        with CompressedWriter(buffer, model) as writer:
            writer.write(rows)
        return buffer.getvalue()

    return [(container(frame.iloc[:SPLIT]), SPLIT),
            (container(frame.iloc[SPLIT:]), len(frame) - SPLIT)]


@pytest.fixture(scope="module")
def expected(model: VAECompressor, parts) -> pd.DataFrame:
    """What decoding both parts gives, straight from their bytes."""
    return pd.concat([frame for data, _ in parts
                      for frame in iter_decompressed(io.BytesIO(data), model)],
                     ignore_index=True)


def _writer(path: Path, model: VAECompressor) -> ManifestWriter:
    return ManifestWriter(path, model.fitted_.fingerprint(),
                          model_bytes=model.fitted_.to_bytes())


def _publish(path: Path, model: VAECompressor, parts) -> None:
    writer = _writer(path, model)
    for data, rows in parts:
        writer.add_part(data, rows)
    writer.close()


@pytest.fixture()
def written(tmp_path: Path, model, parts) -> Path:
    """A valid two-part manifest with the model stored beside the parts."""
    path = tmp_path / "out.vkc"
    _publish(path, model, parts)
    return path


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _listed(path: Path) -> set[str]:
    manifest = read_manifest(path, check_files=False)
    files = manifest.parts + ((manifest.model,) if manifest.model else ())
    return {f.path.split("/")[1] for f in files}


def _decoded(path: Path) -> pd.DataFrame:
    return pd.concat(list(iter_decompressed_manifest(path)))


class Hung(BaseException):
    """Not an OSError, so no ``except OSError`` in the code under test can swallow it."""


@pytest.fixture()
def deadline():
    """Fail (instead of hanging the suite) if the test takes more than 10 s."""
    def on_alarm(signum, frame):
        raise Hung("hung: no answer within 10 s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- two writers


def test_two_interleaved_writers_keep_each_others_parts(tmp_path, model, parts, expected):
    path = tmp_path / "out.vkc"
    folder = tmp_path / "out.vkc.parts"
    _publish(path, model, parts)
    first = _listed(path)

    a, b = _writer(path, model), _writer(path, model)
    a_file = Path(a.add_part(*parts[0]).path).name
    b.add_part(*parts[0])
    b.add_part(*parts[1])
    b.close()  # replaces the first manifest while `a` is still writing
    assert a_file in _names(folder), "b deleted a part of a live writer"
    assert not first & _names(folder)  # the replaced manifest's own files went
    pd.testing.assert_frame_equal(_decoded(path), expected)
    b_files = _listed(path)

    a.add_part(*parts[1])
    a.close()  # last to publish: wins, complete
    pd.testing.assert_frame_equal(_decoded(path), expected)
    assert read_manifest(path).n_rows == 60
    assert not b_files & _names(folder)  # named by the manifest a replaced
    assert _names(folder) == _listed(path)


def test_writer_closing_first_leaves_the_slower_writer_alone(tmp_path, model, parts,
                                                             expected):
    path = tmp_path / "out.vkc"
    folder = tmp_path / "out.vkc.parts"
    slow, fast = _writer(path, model), _writer(path, model)
    slow_entry = slow.add_part(*parts[0])
    fast.add_part(*parts[0])
    fast.add_part(*parts[1])
    fast.close()
    assert (tmp_path / slow_entry.path).exists()
    slow.abort()  # the slow one gives up: only its own part goes, the output stays
    assert not (tmp_path / slow_entry.path).exists()
    assert _names(folder) == _listed(path)
    pd.testing.assert_frame_equal(_decoded(path), expected)


def test_concurrent_writers_in_threads(tmp_path, model, parts, expected):
    path = tmp_path / "out.vkc"
    errors: list[BaseException] = []

    def runs() -> None:
        try:
            for _ in range(6):
                _publish(path, model, parts)
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=runs) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    pd.testing.assert_frame_equal(_decoded(path), expected)  # every listed part is there


def test_files_no_manifest_names_are_left_alone(tmp_path, model, parts):
    path = tmp_path / "out.vkc"
    folder = tmp_path / "out.vkc.parts"
    _publish(path, model, parts)
    strays = {
        "notes.txt": b"mine",
        "part-0123456789abcdef-00000.vkc": parts[0][0],  # our naming, listed nowhere
        "model-0123456789abcdef.vaekit": b"a model of another run",
        ".part-00000.vkc.abcdef.tmp": b"a write in progress",
    }
    for name, data in strays.items():
        (folder / name).write_bytes(data)
    (folder / "sub").mkdir()
    _publish(path, model, parts[::-1])
    now = _names(folder)
    assert set(strays) | {"sub"} <= now
    for name, data in strays.items():
        assert (folder / name).read_bytes() == data
    assert now - set(strays) - {"sub"} == _listed(path)


def test_a_copied_manifest_does_not_delete_the_original_parts(written, model, parts,
                                                              expected):
    copy = written.parent / "copy.vkc"
    shutil.copyfile(written, copy)  # lists out.vkc.parts/..., not copy.vkc.parts/
    _publish(copy, model, parts)
    pd.testing.assert_frame_equal(_decoded(written), expected)
    pd.testing.assert_frame_equal(_decoded(copy), expected)


def _hostile_old(path: Path, listed: str) -> None:
    """Make ``path`` a manifest (checks valid) whose one part is ``listed``."""
    obj = json.loads(path.read_text())
    obj["parts"] = [dict(obj["parts"][0], path=listed)]
    obj["n_rows"] = obj["parts"][0]["rows"]
    obj["model"] = None
    path.write_text(json.dumps(obj))
    read_manifest(path, check_files=False)


def test_a_hostile_old_manifest_cannot_direct_deletions(tmp_path, model, parts):
    path = tmp_path / "out.vkc"
    _publish(path, model, parts)
    # 1. it lists a file in another folder: not ours to delete
    victim = tmp_path / "victim.parts" / "part-aaaa-00000.vkc"
    victim.parent.mkdir()
    victim.write_bytes(parts[0][0])
    _hostile_old(path, "victim.parts/part-aaaa-00000.vkc")
    _publish(path, model, parts)
    assert victim.read_bytes() == parts[0][0]
    # 2. it lists a symbolic link in our folder: neither the link nor its target goes
    target = tmp_path / "precious.vkc"
    target.write_bytes(b"keep me")
    link = tmp_path / "out.vkc.parts" / "part-bbbb-00000.vkc"
    link.symlink_to(target)
    _hostile_old(path, "out.vkc.parts/part-bbbb-00000.vkc")
    _publish(path, model, parts)
    assert target.read_bytes() == b"keep me" and link.is_symlink()
    # 3. it is damaged: it names nothing, so nothing is deleted
    before = _names(tmp_path / "out.vkc.parts")
    path.write_bytes(path.read_bytes()[:-20])
    _publish(path, model, parts)
    assert before < _names(tmp_path / "out.vkc.parts")
    assert read_manifest(path).n_rows == 60


def test_abort_after_close_and_a_failed_close_keep_the_output(written, model, parts,
                                                              expected):
    with pytest.raises(RuntimeError, match="late"):
        with _writer(written, model) as writer:
            writer.add_part(*parts[0])
            writer.add_part(*parts[1])
            writer.close()
            raise RuntimeError("late")
    pd.testing.assert_frame_equal(_decoded(written), expected)
    writer = _writer(written, model)
    writer.add_part(parts[0][0], 0)
    with pytest.raises(DataError, match="no rows"):
        writer.close()
    pd.testing.assert_frame_equal(_decoded(written), expected)


def test_writer_refuses_more_parts_than_a_reader_accepts(tmp_path, model, parts, monkeypatch):
    monkeypatch.setattr(manifest_module, "MAX_PARTS", 2)
    writer = _writer(tmp_path / "out.vkc", model)
    writer.add_part(*parts[0])
    writer.add_part(*parts[1])
    with pytest.raises(DataError, match="more than 2 parts"):
        writer.add_part(*parts[0])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- FIFOs and links


def _swap(path: Path, kind: str, which: str) -> Path:
    """Replace part 2 (or the model file) by a FIFO or a symbolic link."""
    manifest = read_manifest(path)
    entry = manifest.parts[1] if which == "part" else manifest.model
    file = Path(manifest.resolve(entry))
    copy = file.with_name("saved")
    file.rename(copy)
    if kind == "fifo":
        os.mkfifo(file)
    elif kind == "dev-zero":
        file.symlink_to("/dev/zero")
    else:  # a link to a copy of the very bytes listed: still refused
        file.symlink_to(copy)
    return file


@pytest.mark.skipif(not HAS_FIFO, reason="needs os.mkfifo and SIGALRM")
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "link-to-copy"])
@pytest.mark.parametrize("which", ["part", "model"])
def test_fifo_and_symlink_parts_are_refused_quickly(written, kind, which, deadline):
    file = _swap(written, kind, which)
    label = "part 2 of 2" if which == "part" else "model file"
    why = "not a regular file" if kind == "fifo" else "symbolic link"
    with pytest.raises(FileFormatError, match=rf"out\.vkc: {label} \(.*\) .*{why}"):
        read_manifest(written)
    with pytest.raises(FileFormatError, match=why):
        list(iter_decompressed_manifest(written))
    manifest = read_manifest(written, check_files=False)
    entry = manifest.parts[1] if which == "part" else manifest.model
    with pytest.raises(FileFormatError, match=why):
        open_checked(manifest, entry, label)
    out = written.parent / "restored.csv"
    result = run_cli("decompress", written, "-o", out, "-q")
    assert result.exit_code == EXIT_FILE, result.output
    assert str(written) in result.output and why in result.output
    assert not out.exists()
    kept = stat.S_ISFIFO if kind == "fifo" else stat.S_ISLNK
    assert kept(os.lstat(file).st_mode)  # untouched


@pytest.mark.skipif(not HAS_FIFO, reason="needs os.mkfifo and SIGALRM")
def test_part_swapped_for_a_fifo_after_the_check_is_not_waited_on(written, monkeypatch,
                                                                  deadline):
    # The lstat check is passed (as if the swap came just after it): the open
    # itself must neither block on the FIFO nor read it.
    file = _swap(written, "fifo", "part")
    manifest = read_manifest(written, check_files=False)
    monkeypatch.setattr(manifest_module, "_check_file", lambda *a: None)
    with pytest.raises(FileFormatError, match="not a regular file|changed while it was opened"):
        open_checked(manifest, manifest.parts[1], "part 2 of 2")
    file.unlink()
    file.symlink_to("/dev/zero")
    with pytest.raises(FileFormatError, match="cannot be opened"):
        open_checked(manifest, manifest.parts[1], "part 2 of 2")


@pytest.mark.skipif(not HAS_FIFO, reason="needs os.mkfifo and SIGALRM")
def test_a_fifo_as_the_manifest_is_not_waited_on(tmp_path, deadline):
    fifo = tmp_path / "out.vkc"
    os.mkfifo(fifo)
    assert not is_manifest(fifo)
    with pytest.raises(FileFormatError, match="not a regular file"):
        read_manifest(fifo)


def test_decoded_rows_beyond_the_manifest_count_stop_at_once(written):
    obj = json.loads(written.read_text())
    obj["parts"][0]["rows"] -= 1
    obj["n_rows"] -= 1
    written.write_text(json.dumps(obj))
    with pytest.raises(FileFormatError, match=r"part 1 holds at least 25 rows, .* says 24"):
        list(iter_decompressed_manifest(written))


# --------------------------------------------------------------------------- malformed


def _set(key, value):
    def change(obj):
        obj[key] = value
    return change


def _drop(key):
    def change(obj):
        del obj[key]
    return change


def _part(key, value=..., index=0):
    def change(obj):
        if value is ...:
            del obj["parts"][index][key]
        else:
            obj["parts"][index][key] = value
    return change


def _rename(template):
    def change(obj):
        name = obj["parts"][0]["path"].split("/")[1]
        obj["parts"][0]["path"] = template.format(name=name)
    return change


def _duplicate(obj):
    obj["parts"][1] = dict(obj["parts"][0])
    obj["n_rows"] = 2 * obj["parts"][0]["rows"]


def _many_parts(obj):
    obj["parts"] = [obj["parts"][0]] * 4
    obj["n_rows"] = 4 * obj["parts"][0]["rows"]


def _other_folder(obj):
    name = obj["parts"][1]["path"].split("/")[1]
    obj["parts"][1]["path"] = "elsewhere.vkc.parts/" + name


def _model_elsewhere(obj):
    obj["model"]["path"] = "elsewhere.parts/" + obj["model"]["path"].split("/")[1]


def _text(old: bytes, new: bytes):
    def change(data: bytes) -> bytes:
        assert old in data
        return data.replace(old, new, 1)
    return change


def _append(extra: bytes):
    def change(data: bytes) -> bytes:
        return data.rstrip().removesuffix(b"}") + b', "x": ' + extra + b"}"
    return change


# name -> (change of the JSON object, or of the text; what the message must say)
MALFORMED = {
    "deep JSON": (_append(b"[" * 200_000 + b"]" * 200_000), "nested too deeply"),
    "deep objects": (_append(b'{"a":' * 5_000 + b"1" + b"}" * 5_000), "nested too deeply"),
    "5000-digit int": (_append(b"9" * 5000), "integer of 5000 digits"),
    "huge rows": (_part("rows", 10**30), "integer of 31 digits"),
    "rows over 2**63": (_part("rows", 2**63), "'parts\\[0\\].rows' is an integer beyond 64 bits"),
    "NaN": (_append(b"NaN"), "is NaN, not a finite number"),
    "Infinity rows": (_text(b'"rows": 25', b'"rows": Infinity'),
                      "'parts\\[0\\].rows' is Infinity, not a finite number"),
    "-Infinity": (_append(b"-Infinity"), "is -Infinity, not a finite number"),
    "duplicate key": (_text(b'"n_rows"', b'"n_rows": 0, "n_rows"'), "'n_rows' appears twice"),
    "duplicate format": (_append(b'"x", "format": "other"'), "'format' appears twice"),
    "separators": (_append(b"[" + b"[]," * 1_500_000 + b"[]]"), "JSON separators"),
    "version 2": (_set("version", 2), "manifest version 2.*Upgrade vaekit"),
    "version true": (_set("version", True), r"version True"),
    "version float": (_set("version", 1.0), r"version 1\.0"),
    "version null": (_set("version", None), r"version None"),
    "no vaekit_version": (_drop("vaekit_version"), "vaekit_version None"),
    "vaekit_version list": (_set("vaekit_version", [1]), r"vaekit_version \[1\]"),
    "fingerprint int": (_set("model_fingerprint", 7), "model_fingerprint"),
    "no model key": (_drop("model"), "no 'model' key"),
    "model list": (_set("model", []), "model entry is not an object"),
    "model without sha256": (lambda o: o["model"].pop("sha256"), "model entry has a bad sha256"),
    "model too big": (lambda o: o["model"].update(bytes=2**30 + 1),
                      rf"model entry has {2**30 + 1} bytes, more than the {2**30}"),
    "model path of a part": (lambda o: o["model"].update(path=o["parts"][0]["path"]),
                             "model entry has an unexpected path"),
    "model in another folder": (_model_elsewhere, "model entry has an unexpected path"),
    "parts empty": (_set("parts", []), "lists no parts"),
    "parts null": (_set("parts", None), "no list of parts"),
    "parts string": (_set("parts", "out.vkc.parts"), "no list of parts"),
    "part null": (_set("parts", [None]), "part 1 is not an object"),
    "too many parts": (_many_parts, "lists 4 parts, more than 3"),
    "duplicate part": (_duplicate, r"part 2 has the path of part 1"),
    "parts in two folders": (_other_folder, r"part 2 has an unexpected path"),
    "negative rows": (_part("rows", -1), "bad 'rows' value -1"),
    "rows missing": (_part("rows"), "bad 'rows' value None"),
    "rows float": (_part("rows", 25.0), r"bad 'rows' value 25\.0"),
    "rows bool": (_part("rows", False), "bad 'rows' value False"),
    "bytes string": (_part("bytes", "100"), "bad 'bytes' value '100'"),
    "bytes negative": (_part("bytes", -100), "bad 'bytes' value -100"),
    "sha256 upper": (lambda o: o["parts"][0].update(sha256=o["parts"][0]["sha256"].upper()),
                     "bad sha256"),
    "sha256 list": (_part("sha256", ["0" * 64]), "bad sha256"),
    "source int": (_part("source", 3), "bad 'source' value 3"),
    "source object": (_part("source", {"a": 1}), "bad 'source' value"),
    "n_rows float": (_set("n_rows", 60.0), r"n_rows 60\.0 is not the sum"),
    "n_rows true": (_set("n_rows", True), r"n_rows True is not the sum"),
    "n_rows negative": (_set("n_rows", -60), r"n_rows -60 is not the sum"),
    "path absolute": (_rename("/tmp/{name}"), "unexpected path"),
    "path dotdot": (_rename("../{name}"), "unexpected path"),
    "path dotdot folder": (_rename("../out.vkc.parts/{name}"), "unexpected path"),
    "path backslash": (_rename("out.vkc.parts\\{name}"), "unexpected path"),
    "path backslash folder": (_rename("..\\out.vkc.parts/{name}"), "unexpected path"),
    "path drive": (_rename("C:out.vkc.parts/{name}"), "unexpected path"),
    "path NUL": (_rename("out.vkc.parts/{name}\x00.txt"), "unexpected path"),
    "path NUL folder": (_rename("out\x00.vkc.parts/{name}"), "unexpected path"),
    "path newline": (_rename("out.vkc.parts/{name}\n"), "unexpected path"),
    "path control": (_rename("out\x1b.vkc.parts/{name}"), "unexpected path"),
    "path unicode digits": (lambda o: o["parts"][0].update(
        path=o["parts"][0]["path"].replace("-00000.vkc", "-\u0660\u0660\u0660\u0660\u0660.vkc")),
        "unexpected path"),
    "path of a model": (lambda o: o["parts"][0].update(path=o["model"]["path"]),
                        "unexpected path"),
    "path list": (_part("path", ["out.vkc.parts", "x"]), "unexpected path"),
    "path long token": (_rename("out.vkc.parts/part-" + "a" * 40 + "-00000.vkc"),
                        "unexpected path"),
    "path no folder": (_rename("{name}"), "unexpected path"),
    "path empty": (_rename(""), "unexpected path"),
}


def _mutate(path: Path, change) -> None:
    try:
        obj = json.loads(path.read_bytes())
        change(obj)
        data = json.dumps(obj).encode()
    except (TypeError, AttributeError, AssertionError, KeyError):
        data = change(path.read_bytes())  # a change of the text
    path.write_bytes(data)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_manifest_is_a_format_error(written: Path, case, monkeypatch, deadline):
    monkeypatch.setattr(manifest_module, "MAX_PARTS", 3)
    change, message = MALFORMED[case]
    _mutate(written, change)
    assert written.read_bytes().startswith(manifest_module.MANIFEST_PREFIX)
    with pytest.raises(FileFormatError, match=message) as info:
        read_manifest(written, check_files=False)
    assert str(info.value).startswith(f"{written}: ")

    before = written.read_bytes()
    out = written.parent / "restored.csv"
    result = run_cli("decompress", written, "-o", out, "-q")
    assert result.exit_code == EXIT_FILE, (case, result.output, result.exception)
    assert str(written) in result.output
    assert not out.exists() and written.read_bytes() == before
    info_result = run_cli("info", written)
    assert info_result.exit_code == EXIT_FILE, (case, info_result.output)


def test_the_separator_count_is_checked_before_parsing(written, monkeypatch):
    monkeypatch.setattr(manifest_module, "MAX_JSON_TOKENS", 10)

    def never(*args, **kwargs):
        raise AssertionError("the parser ran")

    monkeypatch.setattr(manifest_module.json, "loads", never)
    with pytest.raises(FileFormatError, match=r"JSON separators, more than the 10"):
        read_manifest(written)


def test_the_bounds_are_generous_for_real_manifests(tmp_path, model, parts):
    # MAX_PARTS entries (with long source paths) stay under the separator and
    # byte bounds: a real manifest at the part limit is read.
    path = tmp_path / "out.vkc"
    _publish(path, model, parts)
    obj = json.loads(path.read_text())
    template = obj["parts"][0]
    obj["parts"] = [dict(template, path=template["path"].replace("-00000.", f"-{i:05d}."),
                         rows=1, source="/data/exports/2026-11-01, part [a:b]/x,y:z.csv")
                    for i in range(MAX_PARTS)]
    obj["n_rows"] = MAX_PARTS
    data = json.dumps(obj).encode()
    assert len(data) < manifest_module.MAX_MANIFEST_BYTES
    path.write_bytes(data)
    assert len(read_manifest(path, check_files=False).parts) == MAX_PARTS
