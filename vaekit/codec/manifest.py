"""Compressed output in several parts: a small JSON manifest naming ``.vkc`` files.

A parallel engine (:mod:`vaekit.engines.dask`) compresses each partition of the
input into its own ``.vkc`` container.  The manifest ties them together, so one
path (``OUT.vkc``) still stands for the whole data set and ``vaekit decompress``
restores the rows in their original order.

Layout on disk::

    OUT.vkc                          the manifest (JSON, one line)
    OUT.vkc.parts/part-<run>-00000.vkc
    OUT.vkc.parts/part-<run>-00001.vkc
    OUT.vkc.parts/model-<run>.vaekit  only with ``embed_model=True``

The manifest is a UTF-8 JSON object whose text starts with exactly
``{"format": "vaekit-manifest"`` (:data:`MANIFEST_PREFIX`), so it is told apart
from a container (whose first byte, 0x89, is never text) by its first bytes:

========================  =====================================================
key                       meaning
========================  =====================================================
``format``                ``"vaekit-manifest"``
``version``               1; readers refuse larger values
``vaekit_version``        version of the writer (informational)
``codec``                 ``"vaekit-latent-codes"`` (every part is such a file)
``model_fingerprint``     64 hex digits; every part header's
                          ``model_fingerprint`` is it (codec 6: its first 16
                          digits, see ``FORMAT.md``)
``n_rows``                total rows, the sum of the parts' ``rows``
``model``                 ``null``, or ``{"path", "bytes", "sha256"}`` of the
                          model file written beside the parts
``parts``                 list, in row order, of ``{"path", "rows", "bytes",
                          "sha256", "source"}``: path relative to the manifest's
                          folder (``/``-separated), rows, size in bytes, SHA-256
                          (hex) of the part file, and the input it came from
                          (informational, may be ``null``)
========================  =====================================================

Writing is atomic: each part is written to a temporary name and renamed, and the
manifest itself is renamed into place last.  Part names carry a random run token,
so a new run never overwrites the parts an existing manifest points to: until
the final rename, ``OUT.vkc`` still describes the previous, complete output.
After the rename, the files listed by the replaced manifest are removed, and
nothing else (see :class:`ManifestWriter`).

Reading is strict: every bound a reader enforces (file size, parts, integers,
names, file types) is listed in ``FORMAT.md``, "Manifest bounds".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .._version import __version__
from ..errors import DataError, FileFormatError
from ..files.atomic import atomic_write_bytes
from ..files.untrusted import load_json, open_regular
from .container import CODEC_NAME, read_info

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_PREFIX",
    "MANIFEST_VERSION",
    "MAX_MANIFEST_BYTES",
    "MAX_PARTS",
    "Manifest",
    "checked_file",
    "open_checked",
    "ManifestFile",
    "ManifestWriter",
    "count_rows",
    "is_manifest",
    "describe_manifest",
    "read_manifest",
]

MANIFEST_FORMAT = "vaekit-manifest"
MANIFEST_VERSION = 1
MANIFEST_PREFIX = b'{"format": "vaekit-manifest"'
# A manifest lists file names and hashes, about 200 bytes per part: 64 MiB is
# room for 300,000 parts and keeps a damaged or foreign file from being read whole.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# Parts one manifest may list.  A Dask job writes one part per input file or
# partition; 100,000 parts hold ~80 MB of parsed entries at most.
MAX_PARTS = 100_000
# JSON separators ('{', '[', ',', ':') in the whole text, inside strings too: a
# part entry needs 11 (more if its source path has some), the rest about 30.
# Each can make one Python object of ~40 bytes: the parser stays under ~100 MB.
MAX_JSON_TOKENS = 24 * MAX_PARTS + 1024
# Digits of any JSON integer, and the largest count (rows, bytes) accepted.
MAX_INT_DIGITS = 19
# A valid manifest nests 3 deep (manifest > parts > entry).
MAX_JSON_DEPTH = 16
MAX_COUNT = 2**63 - 1
# The model file beside the parts: as for a model embedded in a container.
MAX_MODEL_FILE_BYTES = 2**30
_PART_FILE = re.compile(r"part-[0-9a-f]{1,32}-[0-9]{5,9}\.vkc", re.ASCII)
_MODEL_FILE = re.compile(r"model-[0-9a-f]{1,32}\.vaekit", re.ASCII)
_FOLDER_BAD = re.compile(r"[/\\:\x00-\x1f\x7f]")
_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_HASH_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class ManifestFile:
    """One file a manifest points to.

    Attributes
    ----------
    path : str
        Relative to the manifest's folder, ``/``-separated.
    rows : int
        Rows in the part (0 for the model file).
    bytes : int
        File size in bytes.
    sha256 : str
        SHA-256 of the file (64 hex digits).
    source : str or None
        The input the part was made from (informational).
    """

    path: str
    rows: int
    bytes: int
    sha256: str
    source: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest (see the module docstring for the keys).

    Attributes
    ----------
    path : str
        The manifest file.
    model_fingerprint : str
    parts : tuple of ManifestFile
        In row order.
    model : ManifestFile or None
        The model file written beside the parts (``embed_model=True``).
    """

    path: str
    model_fingerprint: str
    parts: tuple[ManifestFile, ...]
    model: ManifestFile | None = None

    @property
    def n_rows(self) -> int:
        """Total rows over all parts."""
        return sum(p.rows for p in self.parts)

    @property
    def parts_bytes(self) -> int:
        """Bytes of all part files (the model file not included)."""
        return sum(p.bytes for p in self.parts)

    def resolve(self, entry: ManifestFile) -> str:
        """Filesystem path of a part or model file."""
        return str(Path(self.path).parent / entry.path)

    def to_json(self) -> dict[str, Any]:
        """The manifest's JSON object, ``format`` first."""
        def one(f: ManifestFile, with_rows: bool) -> dict[str, Any]:
            d: dict[str, Any] = {"path": f.path}
            if with_rows:
                d["rows"] = f.rows
            d.update({"bytes": f.bytes, "sha256": f.sha256})
            if with_rows:
                d["source"] = f.source
            return d

        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "vaekit_version": __version__,
            "codec": CODEC_NAME,
            "model_fingerprint": self.model_fingerprint,
            "n_rows": self.n_rows,
            "model": None if self.model is None else one(self.model, False),
            "parts": [one(p, True) for p in self.parts],
        }


# --------------------------------------------------------------------------- reading


def _is_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


def is_manifest(source: str | os.PathLike[str]) -> bool:
    """True if ``source`` is a regular file that starts like a manifest.

    Only its first bytes are read.  Anything but a regular file (a FIFO, a device,
    a folder) is not a manifest and is not opened here: opening a FIFO would wait
    for a writer, and reading from a pipe would take bytes the container reader needs.
    """
    try:
        if not _is_regular(os.stat(source)):
            return False
        with open(source, "rb") as fh:
            head = fh.read(len(MANIFEST_PREFIX))
    except (IsADirectoryError, FileNotFoundError, NotADirectoryError):
        return False
    return head == MANIFEST_PREFIX


def _parse(name: str, data: bytes) -> dict[str, Any]:
    """The manifest's JSON object, every parser failure as a FileFormatError."""
    # Each '{', '[', ',' and ':' can make one Python object: counting them (also
    # inside strings, which only errs on the safe side) bounds the memory the
    # parser may take before it starts.
    tokens = sum(data.count(c) for c in (b"{", b"[", b",", b":"))
    if tokens > MAX_JSON_TOKENS:
        raise FileFormatError(f"{name}: manifest is corrupt ({tokens} JSON separators, more "
                              f"than the {MAX_JSON_TOKENS} that {MAX_PARTS} parts need)")
    try:
        obj = load_json(data, max_bytes=MAX_MANIFEST_BYTES, max_depth=MAX_JSON_DEPTH,
                        max_int_digits=MAX_INT_DIGITS)
    except ValueError as exc:
        raise FileFormatError(f"{name}: manifest is corrupt ({exc})") from None
    if not isinstance(obj, dict) or obj.get("format") != MANIFEST_FORMAT:
        raise FileFormatError(f"{name}: not a vaekit manifest")
    return obj


def _count(value: Any) -> bool:
    """A JSON integer in [0, MAX_COUNT] (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _folder_ok(folder: str) -> bool:
    # One plain folder name: no separator of any system, no drive (':'), no NUL or
    # control characters; '.' and '..' cannot end in '.parts'.
    return (folder.endswith(".parts") and _FOLDER_BAD.search(folder) is None
            and len(folder.encode("utf-8")) <= 255)


def _entry(obj: Any, where: str, *, kind: str) -> ManifestFile:
    """One part (``kind="part"``) or the model entry (``kind="model"``), checked."""
    if not isinstance(obj, dict):
        raise FileFormatError(f"{where} is not an object")
    path, size, digest = obj.get("path"), obj.get("bytes"), obj.get("sha256")
    rows = obj.get("rows") if kind == "part" else 0
    # Only bare names of the kinds this module writes, inside a parts folder: a
    # manifest must not be able to point the reader at arbitrary files.
    pattern = _PART_FILE if kind == "part" else _MODEL_FILE
    ok_path = (isinstance(path, str) and path.count("/") == 1
               and _folder_ok(path.split("/")[0])
               and pattern.fullmatch(path.split("/")[1]) is not None)
    if not ok_path:
        raise FileFormatError(f"{where} has an unexpected path {path!r}")
    for key, value in (("bytes", size), ("rows", rows)):
        if not _count(value):
            raise FileFormatError(f"{where} has a bad {key!r} value {value!r}")
    if kind == "model" and size > MAX_MODEL_FILE_BYTES:  # it is read whole
        raise FileFormatError(f"{where} has {size} bytes, more than the "
                              f"{MAX_MODEL_FILE_BYTES} a model file may have")
    if not isinstance(digest, str) or _SHA256.fullmatch(digest) is None:
        raise FileFormatError(f"{where} has a bad sha256 {digest!r}")
    source = obj.get("source")
    if source is not None and not isinstance(source, str):
        raise FileFormatError(f"{where} has a bad 'source' value {source!r}")
    return ManifestFile(path, int(rows), int(size), digest, source)


def _check_parts(name: str, parts_obj: Any) -> tuple[ManifestFile, ...]:
    if not isinstance(parts_obj, list):
        raise FileFormatError(f"{name}: manifest has no list of parts")
    if not parts_obj:
        raise FileFormatError(f"{name}: manifest lists no parts")
    if len(parts_obj) > MAX_PARTS:
        raise FileFormatError(f"{name}: manifest lists {len(parts_obj)} parts, more than "
                              f"{MAX_PARTS}")
    parts = tuple(_entry(p, f"{name}: part {i + 1}", kind="part")
                  for i, p in enumerate(parts_obj))
    seen: dict[str, int] = {}
    folder = parts[0].path.split("/")[0]
    for i, part in enumerate(parts):
        if part.path in seen:  # one file decoded twice would duplicate its rows
            raise FileFormatError(f"{name}: part {i + 1} has the path of part "
                                  f"{seen[part.path] + 1} ({part.path!r})")
        seen[part.path] = i
        if part.path.split("/")[0] != folder:
            raise FileFormatError(f"{name}: part {i + 1} has an unexpected path {part.path!r} "
                                  f"(not in {folder!r}, the folder of part 1)")
    return parts


def _check_keys(name: str, obj: dict[str, Any]) -> None:
    """The top-level keys other than ``parts`` and ``model``."""
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise FileFormatError(f"{name}: manifest is corrupt (version {version!r})")
    if version > MANIFEST_VERSION:
        raise FileFormatError(f"{name}: manifest version {version}; this vaekit {__version__} "
                              f"reads up to {MANIFEST_VERSION}. Upgrade vaekit.")
    if obj.get("codec") != CODEC_NAME:
        raise FileFormatError(f"{name}: manifest of unknown codec {obj.get('codec')!r}")
    writer = obj.get("vaekit_version")
    if not isinstance(writer, str) or len(writer) > 64:
        raise FileFormatError(f"{name}: manifest is corrupt (vaekit_version {writer!r})")
    fingerprint = obj.get("model_fingerprint")
    if not isinstance(fingerprint, str) or _SHA256.fullmatch(fingerprint) is None:
        raise FileFormatError(f"{name}: manifest has a bad model_fingerprint")
    if "model" not in obj:
        raise FileFormatError(f"{name}: manifest has no 'model' key (null or the model file)")


def _check_file(name: str, label: str, file: str, entry: ManifestFile) -> os.stat_result:
    """lstat a listed file: it must be a regular file of the recorded size."""
    try:
        st = os.lstat(file)
    except OSError:
        raise FileFormatError(f"{name}: {label} ({file}) is missing") from None
    if stat.S_ISLNK(st.st_mode):
        raise FileFormatError(f"{name}: {label} ({file}) is a symbolic link; parts must be "
                              "regular files")
    if not _is_regular(st):
        raise FileFormatError(f"{name}: {label} ({file}) is not a regular file")
    if st.st_size != entry.bytes:
        raise FileFormatError(f"{name}: {label} ({file}) has {st.st_size} bytes, the "
                              f"manifest says {entry.bytes}")
    return st


def read_manifest(path: str | os.PathLike[str], *, check_files: bool = True) -> Manifest:
    """Parse and check a manifest.

    Parameters
    ----------
    path : path-like
    check_files : bool
        Also check that every part (and the model file) is a regular file (not a
        symbolic link, FIFO or device) with the recorded size, so a missing part is
        reported before any row is decoded.  The SHA-256 of a part is checked when
        the part is opened (:func:`open_checked`).

    Raises
    ------
    FileFormatError
        Not a manifest, from a newer vaekit, damaged, over a bound (see
        ``FORMAT.md``, "Manifest bounds"), or a part missing.
    """
    name = os.fspath(path)
    limit = MAX_MANIFEST_BYTES
    with open_regular(name, lambda why: FileFormatError(
            f"{name}: {why}, so not a vaekit manifest")) as fh:
        data = fh.read(limit + 1)  # bounded: a huge or endless file is not read whole
    if not data.startswith(MANIFEST_PREFIX):
        raise FileFormatError(f"{name}: not a vaekit manifest")
    if len(data) > limit:
        raise FileFormatError(f"{name}: manifest larger than {limit} bytes")
    obj = _parse(name, data)
    _check_keys(name, obj)
    parts = _check_parts(name, obj.get("parts"))
    model = None
    if obj["model"] is not None:
        model = _entry(obj["model"], f"{name}: model entry", kind="model")
        if model.path.split("/")[0] != parts[0].path.split("/")[0]:
            raise FileFormatError(f"{name}: model entry has an unexpected path {model.path!r} "
                                  "(not in the folder of the parts)")
    manifest = Manifest(name, obj["model_fingerprint"], parts, model)
    n_rows = obj.get("n_rows")
    if not _count(n_rows) or n_rows != manifest.n_rows:
        raise FileFormatError(f"{name}: manifest is corrupt (n_rows {n_rows!r} is "
                              f"not the sum of its parts' rows, {manifest.n_rows})")
    if check_files:
        for i, entry in enumerate(parts + ((model,) if model else ())):
            label = f"part {i + 1} of {len(parts)}" if i < len(parts) else "model file"
            _check_file(name, label, manifest.resolve(entry), entry)
    return manifest


def open_checked(manifest: Manifest, entry: ManifestFile, label: str) -> BinaryIO:
    """Open a manifest's file for reading, after checking it against the manifest.

    The file must be a regular file (a symbolic link, FIFO or device is refused
    before it is opened, and again on the open handle), of the recorded size and
    SHA-256.  The returned handle is positioned at the start; reading through it
    reads the bytes that were checked, even if the name is replaced meanwhile.

    Raises
    ------
    FileFormatError
        Missing, not a regular file, another size, or another SHA-256.
    """
    file = manifest.resolve(entry)
    _check_file(manifest.path, label, file, entry)
    try:
        fh = open_regular(file, lambda why: FileFormatError(
            f"{manifest.path}: {label} ({file}) {why}"), follow_symlinks=False)
    except FileNotFoundError:
        raise FileFormatError(f"{manifest.path}: {label} ({file}) is missing") from None
    try:
        if os.fstat(fh.fileno()).st_size != entry.bytes:
            raise FileFormatError(f"{manifest.path}: {label} ({file}) changed while it was "
                                  "opened (not of the recorded size)")
        h = hashlib.sha256()
        left = entry.bytes
        while left and (block := fh.read(min(left, _HASH_BLOCK))):
            h.update(block)
            left -= len(block)
        if left or h.hexdigest() != entry.sha256:
            raise FileFormatError(f"{manifest.path}: {label} ({file}) is not the file the "
                                  "manifest was written with (SHA-256 differs)")
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh


def checked_file(manifest: Manifest, entry: ManifestFile, label: str) -> str:
    """The path of a manifest's file, after the checks of :func:`open_checked`.

    Prefer :func:`open_checked`, which hands back the checked bytes themselves.
    """
    with open_checked(manifest, entry, label):
        pass
    return manifest.resolve(entry)


def count_rows(source: str | os.PathLike[str]) -> int | None:
    """Rows in a container or a manifest (``None`` when a container lacks its trailer)."""
    if is_manifest(source):
        return read_manifest(source, check_files=False).n_rows
    return read_info(source).n_rows


def describe_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a manifest holds, as a JSON-ready dict (for ``vaekit info``)."""
    manifest = read_manifest(path)
    n = manifest.n_rows
    return {
        "file": manifest.path,
        "type": "manifest",
        "file_bytes": os.path.getsize(manifest.path),
        "rows": n,
        "parts": len(manifest.parts),
        "parts_bytes": manifest.parts_bytes,
        "bytes_per_row": round(manifest.parts_bytes / n, 3) if n else None,
        "model_fingerprint": manifest.model_fingerprint,
        "model_stored": manifest.model is not None,
    }


# --------------------------------------------------------------------------- writing


class ManifestWriter:
    """Write part containers one by one, then publish the manifest atomically.

    Parameters
    ----------
    path : path-like
        The manifest to write (e.g. ``OUT.vkc``).  Parts go to ``OUT.vkc.parts/``.
    model_fingerprint : str
        Decoding fingerprint of the model the parts were compressed with
        (:meth:`vaekit.fitted.FittedVAE.fingerprint`).
    model_bytes : bytes, optional
        The model file, stored once beside the parts so decompression needs no model.

    Notes
    -----
    Parts are added in row order with :meth:`add_part` (the bytes of one complete
    ``.vkc`` container each, e.g. from a worker).  Nothing at ``path`` changes
    until :meth:`close`; :meth:`abort` removes the parts written so far.

    Part names carry a random run token, so two writers to one output never write
    the same name.  When :meth:`close` replaces a manifest, it deletes only the
    files *that* manifest lists (in this writer's parts folder), after the new one
    is published: the parts of another writer still running, and any file no
    manifest names, are left alone.  Of two runs to one output the last to
    publish wins, complete and readable.
    """

    def __init__(self, path: str | os.PathLike[str], model_fingerprint: str, *,
                 model_bytes: bytes | None = None) -> None:
        self.path = os.fspath(path)
        self._fingerprint = model_fingerprint
        self._model_bytes = model_bytes
        self._dir = Path(self.path + ".parts")
        self._token = secrets.token_hex(8)
        self._parts: list[ManifestFile] = []
        self._written: list[Path] = []
        self._closed = False
        self._published = False

    @property
    def n_rows(self) -> int:
        """Rows in the parts added so far."""
        return sum(p.rows for p in self._parts)

    @property
    def bytes_written(self) -> int:
        """Bytes of the parts added so far."""
        return sum(p.bytes for p in self._parts)

    def _write(self, name: str, data: bytes) -> ManifestFile:
        target = self._dir / name
        self._written.append(target)
        for attempt in range(3):
            self._dir.mkdir(exist_ok=True)
            try:
                atomic_write_bytes(target, data)
                break
            except FileNotFoundError:
                # Another writer's abort() removed the (then empty) folder between
                # our mkdir and our write: make it again.
                if attempt == 2:
                    raise
        return ManifestFile(f"{self._dir.name}/{name}", 0, len(data),
                            hashlib.sha256(data).hexdigest())

    def add_part(self, data: bytes, rows: int, source: str | None = None) -> ManifestFile:
        """Write the next part: ``data`` is a complete container of ``rows`` rows.

        Raises
        ------
        DataError
            Past :data:`MAX_PARTS` parts (readers refuse such a manifest).
        """
        if self._closed:
            raise ValueError("add_part on a closed ManifestWriter")
        if len(self._parts) >= MAX_PARTS:
            raise DataError(f"more than {MAX_PARTS} parts in one manifest; use fewer, larger "
                            "input files or partitions")
        entry = self._write(f"part-{self._token}-{len(self._parts):05d}.vkc", data)
        entry = ManifestFile(entry.path, int(rows), entry.bytes, entry.sha256, source)
        self._parts.append(entry)
        return entry

    def close(self) -> Manifest:
        """Write the model file (if embedding) and publish the manifest.

        Raises
        ------
        DataError
            If no part holds any row.
        """
        if self._closed:
            raise ValueError("close on a closed ManifestWriter")
        try:
            if self.n_rows == 0:
                raise DataError("no rows to compress")
            model = None
            if self._model_bytes is not None:
                model = self._write(f"model-{self._token}.vaekit", self._model_bytes)
            manifest = Manifest(self.path, self._fingerprint, tuple(self._parts), model)
            text = json.dumps(manifest.to_json(), ensure_ascii=False, allow_nan=False) + "\n"
            assert text.encode("utf-8").startswith(MANIFEST_PREFIX)
            replaced = self._replaced_files()
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except BaseException:
            self.abort()
            raise
        self._closed = self._published = True
        self._remove(replaced, manifest)
        return manifest

    def _replaced_files(self) -> list[ManifestFile]:
        """The files listed by the manifest about to be replaced, in our parts folder.

        Read with every check of :func:`read_manifest` (but not of the files): a
        damaged or foreign file at ``path`` names nothing, so nothing is deleted.
        A manifest copied from elsewhere lists another folder: nothing either.
        """
        try:
            if not is_manifest(self.path):
                return []
            old = read_manifest(self.path, check_files=False)
        except (FileFormatError, OSError):
            return []
        listed = old.parts + ((old.model,) if old.model is not None else ())
        return [f for f in listed if f.path.split("/")[0] == self._dir.name]

    def _remove(self, replaced: list[ManifestFile], manifest: Manifest) -> None:
        """Delete the replaced manifest's files that the new one does not list."""
        keep = {f.path for f in manifest.parts}
        if manifest.model is not None:
            keep.add(manifest.model.path)
        for entry in replaced:
            if entry.path in keep:
                continue
            target = self._dir / entry.path.split("/")[1]
            try:
                if stat.S_ISREG(os.lstat(target).st_mode):
                    target.unlink()
            except OSError:
                pass  # gone already (another run's cleanup): the manifest is correct

    def abort(self) -> None:
        """Give up: remove the parts written by this writer; ``path`` is untouched.

        After :meth:`close` has published the manifest this does nothing: its
        parts belong to the published output.
        """
        if self._published:
            return
        self._closed = True
        for target in self._written:
            try:
                target.unlink()
            except FileNotFoundError:
                pass
        self._written = []
        try:
            self._dir.rmdir()  # only if empty: an older run's parts stay
        except OSError:
            pass

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            if not self._closed:
                self.close()
        else:
            self.abort()
