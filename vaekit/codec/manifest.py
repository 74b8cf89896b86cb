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
``model_fingerprint``     64 hex digits, equal to every part header's
                          ``model_fingerprint`` (see ``FORMAT.md``)
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
Parts of older runs are removed after the rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import DataError, FileFormatError
from ..files.atomic import atomic_write_bytes
from .container import CODEC_NAME, read_info

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_PREFIX",
    "MANIFEST_VERSION",
    "Manifest",
    "checked_file",
    "sha256_file",
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
_PART_NAME = re.compile(r"^(part-[0-9a-f]+-\d+\.vkc|model-[0-9a-f]+\.vaekit)$")
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


def is_manifest(source: str | os.PathLike[str]) -> bool:
    """True if the file starts like a manifest (its first bytes, nothing else)."""
    try:
        with open(source, "rb") as fh:
            head = fh.read(len(MANIFEST_PREFIX))
    except (IsADirectoryError, FileNotFoundError):
        return False
    return head == MANIFEST_PREFIX


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def _entry(obj: Any, where: str, *, with_rows: bool) -> ManifestFile:
    if not isinstance(obj, dict):
        raise FileFormatError(f"{where} is not an object")
    path, size, digest = obj.get("path"), obj.get("bytes"), obj.get("sha256")
    rows = obj.get("rows", 0) if with_rows else 0
    # Only bare names of the kinds this module writes, inside the parts folder: a
    # manifest must not be able to point the reader at arbitrary files.
    ok_path = (isinstance(path, str) and path.count("/") == 1
               and path.split("/")[0].endswith(".parts")
               and _PART_NAME.match(path.split("/")[1]) is not None)
    if not ok_path:
        raise FileFormatError(f"{where} has an unexpected path {path!r}")
    for name, value in (("bytes", size), ("rows", rows)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FileFormatError(f"{where} has a bad {name!r} value {value!r}")
    if not isinstance(digest, str) or re.fullmatch(r"[0-9a-f]{64}", digest) is None:
        raise FileFormatError(f"{where} has a bad sha256 {digest!r}")
    source = obj.get("source")
    return ManifestFile(path, int(rows), int(size), digest,
                        source if isinstance(source, str) else None)


def read_manifest(path: str | os.PathLike[str], *, check_files: bool = True) -> Manifest:
    """Parse and check a manifest.

    Parameters
    ----------
    path : path-like
    check_files : bool
        Also check that every part (and the model file) exists with the recorded
        size, so a missing part is reported before any row is decoded.  The
        SHA-256 of a part is checked when the part is read.

    Raises
    ------
    FileFormatError
        Not a manifest, from a newer vaekit, damaged, or a part missing.
    """
    name = os.fspath(path)
    with open(name, "rb") as fh:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if not data.startswith(MANIFEST_PREFIX):
        raise FileFormatError(f"{name}: not a vaekit manifest")
    if len(data) > MAX_MANIFEST_BYTES:
        raise FileFormatError(f"{name}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FileFormatError(f"{name}: manifest is corrupt (not valid JSON)") from None
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise FileFormatError(f"{name}: manifest is corrupt (version {version!r})")
    if version > MANIFEST_VERSION:
        raise FileFormatError(f"{name}: manifest version {version}; this vaekit {__version__} "
                              f"reads up to {MANIFEST_VERSION}. Upgrade vaekit.")
    if obj.get("codec") != CODEC_NAME:
        raise FileFormatError(f"{name}: manifest of unknown codec {obj.get('codec')!r}")
    fingerprint = obj.get("model_fingerprint")
    if not isinstance(fingerprint, str) or re.fullmatch(r"[0-9a-f]{64}", fingerprint) is None:
        raise FileFormatError(f"{name}: manifest has a bad model_fingerprint")
    parts_obj = obj.get("parts")
    if not isinstance(parts_obj, list):
        raise FileFormatError(f"{name}: manifest has no list of parts")
    parts = tuple(_entry(p, f"{name}: part {i + 1}", with_rows=True)
                  for i, p in enumerate(parts_obj))
    model = None
    if obj.get("model") is not None:
        model = _entry(obj["model"], f"{name}: model entry", with_rows=False)
    manifest = Manifest(name, fingerprint, parts, model)
    if obj.get("n_rows") != manifest.n_rows:
        raise FileFormatError(f"{name}: manifest is corrupt (n_rows {obj.get('n_rows')!r} is "
                              f"not the sum of its parts' rows, {manifest.n_rows})")
    if check_files:
        for i, entry in enumerate(parts + ((model,) if model else ())):
            label = f"part {i + 1} of {len(parts)}" if i < len(parts) else "model file"
            file = manifest.resolve(entry)
            try:
                size = os.path.getsize(file)
            except OSError:
                raise FileFormatError(f"{name}: {label} ({file}) is missing") from None
            if size != entry.bytes:
                raise FileFormatError(f"{name}: {label} ({file}) has {size} bytes, the "
                                      f"manifest says {entry.bytes}")
    return manifest


def checked_file(manifest: Manifest, entry: ManifestFile, label: str) -> str:
    """The path of a manifest's file, after checking its SHA-256 against the manifest."""
    file = manifest.resolve(entry)
    if sha256_file(file) != entry.sha256:
        raise FileFormatError(f"{manifest.path}: {label} ({file}) is not the file the manifest "
                              "was written with (SHA-256 differs)")
    return file


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
    """

    def __init__(self, path: str | os.PathLike[str], model_fingerprint: str, *,
                 model_bytes: bytes | None = None) -> None:
        self.path = os.fspath(path)
        self._fingerprint = model_fingerprint
        self._model_bytes = model_bytes
        self._dir = Path(self.path + ".parts")
        self._token = secrets.token_hex(4)
        self._parts: list[ManifestFile] = []
        self._written: list[Path] = []
        self._closed = False

    @property
    def n_rows(self) -> int:
        """Rows in the parts added so far."""
        return sum(p.rows for p in self._parts)

    @property
    def bytes_written(self) -> int:
        """Bytes of the parts added so far."""
        return sum(p.bytes for p in self._parts)

    def _write(self, name: str, data: bytes) -> ManifestFile:
        self._dir.mkdir(exist_ok=True)
        target = self._dir / name
        self._written.append(target)
        atomic_write_bytes(target, data)
        return ManifestFile(f"{self._dir.name}/{name}", 0, len(data),
                            hashlib.sha256(data).hexdigest())

    def add_part(self, data: bytes, rows: int, source: str | None = None) -> ManifestFile:
        """Write the next part: ``data`` is a complete container of ``rows`` rows."""
        if self._closed:
            raise ValueError("add_part on a closed ManifestWriter")
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
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._remove_stale()
        return manifest

    def _remove_stale(self) -> None:
        """Remove parts of earlier runs (only names this module writes)."""
        keep = {p.name for p in self._written}
        for entry in self._dir.iterdir():
            if entry.name not in keep and _PART_NAME.match(entry.name):
                try:
                    entry.unlink()
                except OSError:
                    pass  # another process's cleanup; the manifest is already correct

    def abort(self) -> None:
        """Give up: remove the parts written by this writer; ``path`` is untouched."""
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
