"""Model files: safetensors weights plus JSON metadata in one file, no pickle.

Layout: a standard safetensors file.  Its header's ``__metadata__`` holds three strings:

``vaekit_format``
    ``"vaekit-model"``.
``vaekit_format_version``
    Integer as text; readers refuse versions newer than :data:`FORMAT_VERSION`.
``vaekit_meta``
    JSON: vaekit version, estimator class and parameters, architecture config,
    preprocessing schema, training history, thresholds, and how the fixed scoring
    noise is drawn (``fitted.noise``: ``"pcg64-box-muller"``, see
    :mod:`vaekit.runtime.noise`; absent in older files, which draw it with torch's
    generator).
``vaekit_sha256``
    SHA-256 over the metadata JSON and every tensor (name, dtype, shape, bytes) in
    name order, so a flipped bit anywhere is detected, and used as the model's
    fingerprint by the codec.

Loading parses only JSON and raw tensor bytes, so a model file from a stranger
cannot run code.  Nor can it make the reader allocate on its say-so: the file must be
a regular file of at most :data:`MAX_MODEL_BYTES`, its first 9 bytes (header length,
then ``{``) are checked before the rest is read, every tensor must be float32, the JSON
may not nest deeper than :data:`MAX_JSON_DEPTH` nor hold ``NaN``, ``Infinity`` or
integers beyond 64 bits; :mod:`.checks` then checks the metadata's schema and the
tensors' shapes against the architecture before anything is built.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from .._version import __version__
from ..errors import FileFormatError
from ..files import untrusted

FORMAT_NAME = "vaekit-model"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 2**20
# Bounds a reader enforces before it reads or allocates more (see the module docstring).
MAX_MODEL_BYTES = 4 * 2**30
MAX_TENSORS = 4096
MAX_JSON_DEPTH = 32


def fingerprint(tensors: dict[str, np.ndarray], meta_json: str) -> str:
    """SHA-256 (hex) of a model's metadata JSON and tensors, independent of file layout.

    Each tensor contributes its name, ``torch.float32`` (the dtype's name as the first
    files were hashed with), its shape and its little-endian bytes.
    """
    h = hashlib.sha256()
    h.update(meta_json.encode("utf-8"))
    for name in sorted(tensors):
        t = np.asarray(tensors[name])
        t = np.ascontiguousarray(t, dtype=t.dtype.newbyteorder("<"))
        dtype = "torch.float32" if t.dtype == np.float32 else f"numpy.{t.dtype.name}"
        h.update(f"\0{name}\0{dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.tobytes())
    return h.hexdigest()


def dump_model(tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    """Serialize a model to bytes (the content of a ``.vaekit`` file).

    vaekit's tensors are float32; others are written as they are (and refused on
    reading).
    """
    meta = {"vaekit_version": __version__, **meta}
    meta_json = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
    tensors = {k: np.ascontiguousarray(np.asarray(v)) for k, v in tensors.items()}
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


def parse_model(data: bytes, source: str = "<bytes>") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Parse and verify model bytes; return ``(tensors, meta)``.

    ``meta`` gains the key ``"fingerprint"`` (the verified SHA-256).  Only the file's
    own integrity is checked here; :func:`vaekit.fitted.checks.check_model` checks the
    metadata's schema and the tensors against the architecture.

    Raises
    ------
    FileFormatError
        Not a vaekit model, truncated, tampered with, from a newer format version,
        tensors that are not float32, or JSON with non-finite numbers, integers beyond
        64 bits or nesting deeper than :data:`MAX_JSON_DEPTH`.
    """
    check_model_prefix(data[:9], len(data), source)
    header = _read_header(data, source)
    md = header.get("__metadata__") or {}
    if not isinstance(md, dict) or md.get("vaekit_format") != FORMAT_NAME:
        raise FileFormatError(f"{source}: a safetensors file, but not a vaekit model")
    version_text = md.get("vaekit_format_version")
    if not (isinstance(version_text, str) and version_text.isdigit() and len(version_text) < 10):
        raise FileFormatError(f"{source}: model file has no valid format version")
    version = int(version_text)
    if version > FORMAT_VERSION:
        raise FileFormatError(
            f"{source}: written by a newer vaekit (model format {version}; this vaekit "
            f"{__version__} reads up to {FORMAT_VERSION}). Upgrade vaekit to load it."
        )
    if version < 1:
        raise FileFormatError(f"{source}: unknown model format version {version}")
    _check_tensor_entries(header, source)
    (n,) = struct.unpack("<Q", data[:8])
    check_declared(header, len(data) - 8 - n, source)
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
        raise FileFormatError(f"{source}: model weights are unreadable ({exc})") from None
    meta_json = md.get("vaekit_meta")
    if not isinstance(meta_json, str):
        raise FileFormatError(f"{source}: model file has no metadata")
    digest = fingerprint(tensors, meta_json)
    if digest != md.get("vaekit_sha256"):
        raise FileFormatError(
            f"{source}: checksum mismatch: the model file is corrupt or was modified"
        )
    meta = load_json(meta_json, f"{source}: model metadata")
    if not isinstance(meta, dict):
        raise FileFormatError(f"{source}: model metadata is not a JSON object")
    meta["fingerprint"] = digest
    return tensors, meta


def load_json(text: str | bytes, what: str) -> Any:
    """Parse a stranger's JSON (:func:`vaekit.files.untrusted.load_json`) with this
    format's bounds; every failure is a :class:`FileFormatError` (``what`` starts the
    message, which names the key path of a non-finite number or a 65-bit integer)."""
    try:
        return untrusted.load_json(text, max_bytes=MAX_HEADER_BYTES, max_depth=MAX_JSON_DEPTH)
    except ValueError as exc:
        raise FileFormatError(f"{what}: {exc}") from None


def check_model_prefix(head: bytes, size: int, source: str) -> None:
    """Refuse a file from its first 9 bytes and its size, before reading the rest.

    A safetensors file starts with its header length (8 bytes, little-endian), which
    must fit in the file and in :data:`MAX_HEADER_BYTES`, then the header's ``{``.
    """
    if size > MAX_MODEL_BYTES:
        raise FileFormatError(f"{source}: {size} bytes is larger than any vaekit model "
                              f"(at most {MAX_MODEL_BYTES} bytes)")
    if size < 10 or len(head) < 9:
        raise FileFormatError(f"{source}: not a vaekit model (file is {size} bytes)")
    (n,) = struct.unpack("<Q", head[:8])
    if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
        raise FileFormatError(
            f"{source}: not a vaekit model, or truncated (header of {n} bytes does not fit "
            f"in {size} bytes)"
        )
    if head[8:9] != b"{":
        raise FileFormatError(f"{source}: not a vaekit model (unreadable header)")


def _read_header(data: bytes, source: str) -> dict[str, Any]:
    (n,) = struct.unpack("<Q", data[:8])
    try:
        text = data[8 : 8 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise FileFormatError(f"{source}: not a vaekit model (unreadable header)") from None
    header = load_json(text, f"{source}: model file header")
    if not isinstance(header, dict):
        raise FileFormatError(f"{source}: not a vaekit model (unexpected header)")
    return header


def check_declared(header: dict[str, Any], data_bytes: int, source: str) -> None:
    """What the header declares, checked before any tensor is read or allocated.

    Every tensor's shape and byte range must agree (float32: 4 bytes a value), the
    ranges must tile the ``data_bytes`` after the header exactly (a file padded with
    gigabytes of zeros is refused unread), and the names and shapes must be those of
    the network the metadata's config describes (after the metadata's own schema
    check; :func:`vaekit.fitted.checks.check_shapes` builds it on the ``meta``
    device, so nothing is allocated however large the config claims it to be).
    """
    from .checks import check_model_meta, check_shapes  # (checks imports the networks)

    shapes: dict[str, tuple[int, ...]] = {}
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and len(shape) <= 8
                and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40
                        for d in shape)
                and isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise FileFormatError(f"{source}: tensor {name!r} has an unreadable shape or "
                                  "byte range")
        begin, end = offsets
        if not 0 <= begin <= end or end - begin != 4 * _numel(shape):
            raise FileFormatError(f"{source}: tensor {name!r} declares shape {shape} but "
                                  f"bytes {begin}..{end}")
        shapes[name] = tuple(shape)
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise FileFormatError(f"{source}: the tensors' byte ranges overlap or leave gaps")
        covered = end
    if covered != data_bytes:
        raise FileFormatError(f"{source}: the header describes {covered} bytes of weights, "
                              f"the file holds {data_bytes} after the header")
    md = header.get("__metadata__") or {}
    meta = load_json(md.get("vaekit_meta") or "null", f"{source}: model metadata")
    check_model_meta(meta, source)
    check_shapes(shapes, meta["fitted"]["config"], source)


def _numel(shape: list[int]) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _check_tensor_entries(header: dict[str, Any], source: str) -> None:
    """Every tensor is float32 (what vaekit writes), and there are not too many."""
    names = [k for k in header if k != "__metadata__"]
    if len(names) > MAX_TENSORS:
        raise FileFormatError(f"{source}: {len(names)} tensors; a vaekit model has at most "
                              f"{MAX_TENSORS}")
    for name in names:
        entry = header[name]
        if not isinstance(entry, dict) or entry.get("dtype") != "F32":
            dtype = entry.get("dtype") if isinstance(entry, dict) else None
            raise FileFormatError(f"{source}: tensor {name!r} has dtype {dtype!r}; vaekit "
                                  "models hold float32 (F32) tensors only")


def read_model(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a ``.vaekit`` file; see :func:`parse_model`.

    Refuses, before reading past its first 9 bytes, anything that is not a regular
    file (a FIFO or device would hang or never end), a file over
    :data:`MAX_MODEL_BYTES` and one whose header length or first header byte is wrong.
    """
    path = Path(path)
    source = str(path)
    try:
        fh = untrusted.open_regular(
            path, lambda why: FileFormatError(f"{path}: {why}, so not a model file"))
    except FileNotFoundError:
        raise FileFormatError(f"{path}: model file not found") from None
    with fh:
        st = os.fstat(fh.fileno())
        head = fh.read(9)
        check_model_prefix(head, st.st_size, source)
        # The header alone first: the weights are read only once what it declares
        # (sizes, shapes, the config) has been checked, so a huge or padded file is
        # refused without reading it.
        (n,) = struct.unpack("<Q", head[:8])
        prefix = head + fh.read(n - 1)
        header = _read_header(prefix, source) if len(prefix) == 8 + n else None
        if header is None:
            raise FileFormatError(f"{path}: the file changed size while it was read")
        _check_tensor_entries(header, source)
        check_declared(header, st.st_size - 8 - n, source)
        data = prefix + fh.read(st.st_size - len(prefix))
    if len(data) != st.st_size:
        raise FileFormatError(f"{path}: the file changed size while it was read")
    return parse_model(data, source)
