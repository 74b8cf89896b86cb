"""Model files: safetensors weights plus JSON metadata in one file, no pickle.

Layout: a standard safetensors file.  Its header's ``__metadata__`` holds three strings:

``vaekit_format``
    ``"vaekit-model"``.
``vaekit_format_version``
    Integer as text; readers refuse versions newer than :data:`FORMAT_VERSION`.
``vaekit_meta``
    JSON: vaekit version, estimator class and parameters, architecture config,
    preprocessing schema, training history, thresholds.
``vaekit_sha256``
    SHA-256 over the metadata JSON and every tensor (name, dtype, shape, bytes) in
    name order, so a flipped bit anywhere is detected, and used as the model's
    fingerprint by the codec.

Loading parses only JSON and raw tensor bytes, so a model file from a stranger
cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .._version import __version__
from ..errors import FileFormatError

FORMAT_NAME = "vaekit-model"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 2**20


def fingerprint(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    """SHA-256 (hex) of a model's metadata JSON and tensors, independent of file layout."""
    h = hashlib.sha256()
    h.update(meta_json.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dump_model(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    """Serialize a model to bytes (the content of a ``.vaekit`` file)."""
    meta = {"vaekit_version": __version__, **meta}
    meta_json = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    header = {
        "vaekit_format": FORMAT_NAME,
        "vaekit_format_version": str(FORMAT_VERSION),
        "vaekit_meta": meta_json,
        "vaekit_sha256": fingerprint(tensors, meta_json),
    }
    return _canonical_header(st_save(tensors, metadata=header))


def _canonical_header(blob: bytes) -> bytes:
    """Rewrite a safetensors file's JSON header with sorted keys.

    safetensors writes its header from a hash map, so key order (and so the file's
    bytes) can differ from one call to the next; the same model must give the same
    bytes.  Data offsets are relative to the end of the header, so only the header
    changes; it is padded with spaces to a multiple of 8 bytes, as safetensors does.
    """
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + n :]


def parse_model(data: bytes, source: str = "<bytes>") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Parse and verify model bytes; return ``(tensors, meta)``.

    ``meta`` gains the key ``"fingerprint"`` (the verified SHA-256).

    Raises
    ------
    FileFormatError
        Not a vaekit model, truncated, tampered with, or from a newer format version.
    """
    header = _read_header(data, source)
    md = header.get("__metadata__") or {}
    if md.get("vaekit_format") != FORMAT_NAME:
        raise FileFormatError(f"{source}: a safetensors file, but not a vaekit model")
    try:
        version = int(md.get("vaekit_format_version", ""))
    except ValueError:
        raise FileFormatError(f"{source}: model file has no valid format version") from None
    if version > FORMAT_VERSION:
        raise FileFormatError(
            f"{source}: written by a newer vaekit (model format {version}; this vaekit "
            f"{__version__} reads up to {FORMAT_VERSION}). Upgrade vaekit to load it."
        )
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise FileFormatError(f"{source}: model weights are unreadable ({exc})") from None
    meta_json = md.get("vaekit_meta", "")
    digest = fingerprint(tensors, meta_json)
    if digest != md.get("vaekit_sha256"):
        raise FileFormatError(
            f"{source}: checksum mismatch: the model file is corrupt or was modified"
        )
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError:
        raise FileFormatError(f"{source}: model metadata is not valid JSON") from None
    meta["fingerprint"] = digest
    return tensors, meta


def _read_header(data: bytes, source: str) -> dict[str, Any]:
    if len(data) < 8:
        raise FileFormatError(f"{source}: not a vaekit model (file is {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise FileFormatError(
            f"{source}: not a vaekit model, or truncated (header of {n} bytes does not fit "
            f"in {len(data)} bytes)"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FileFormatError(f"{source}: not a vaekit model (unreadable header)") from None
    if not isinstance(header, dict):
        raise FileFormatError(f"{source}: not a vaekit model (unexpected header)")
    return header


def read_model(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a ``.vaekit`` file; see :func:`parse_model`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(f"{path}: model file not found") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: is a folder, not a model file") from None
    return parse_model(data, str(path))
