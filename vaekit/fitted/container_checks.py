"""The rules a ``.vkc`` file's header and chunk sequence must follow (FORMAT.md).

Shared by decoding (:func:`vaekit.fitted.streams.iter_decompressed`) and by
``vaekit info --verify`` (:func:`vaekit.fitted.describe.verify_container`), so a file that ``info --verify``
calls sound is one that ``decompress`` reads: every key of the header, no chunk over
``chunk_rows``, only the last chunk short, the rows adding up to the header's count,
and each chunk's payload sections laid out as the header's quantizer implies.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

from .._version import __version__
from ..codec.container import CODEC_NAME, CODEC_VERSION, MAX_CHUNK_ROWS, ContainerReader
from ..codec.quantize import LatentQuantizer
from ..errors import FileFormatError

__all__ = ["COMPACT_HEADER_VERSION", "check_chunk_rows", "check_header", "checked_chunks",
           "header_quantizer", "quantizer_digest", "resolve_quantizer"]


# Header keys (FORMAT.md) and the JSON type each must have; ints are never booleans.
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "codec_version": (int,), "vaekit_version": (str,), "model_fingerprint": (str,),
    "model_embedded": (bool,), "input_kind": (str,), "input_form": (str,),
    "schema": (dict,), "latent_dim": (int,), "quantizer": (dict,),
    "columns": (list, type(None)), "passthrough": (list,), "chunk_rows": (int,),
    "n_rows": (int, type(None)),
}
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
# Codec version 6 on: a model-referenced header names its model and its quantizer by the
# first 16 hex digits of their SHA-256 (a guard against decoding with another model by
# mistake: whoever writes a file chooses its bytes anyway) and may leave out
# ``columns`` when they are the model's own.
COMPACT_HEADER_VERSION = 6
_SHORT_DIGEST = re.compile(r"[0-9a-f]{16}")


def check_header(header: dict[str, Any], source: str) -> None:
    """Refuse a header that lacks a key, has a wrong type or an impossible value.

    Every key is checked before anything is built from the header, so a damaged or
    crafted file (with valid CRCs) is a :class:`FileFormatError` naming the file and
    the key, never a traceback.
    """
    if header.get("codec") != CODEC_NAME:
        raise FileFormatError(f"{source}: not a vaekit compressed file "
                              f"(codec {str(header.get('codec'))[:40]!r})")
    version = header.get("codec_version")
    if type(version) is int and version > CODEC_VERSION:
        raise FileFormatError(f"{source}: codec version {version}; this vaekit "
                              f"{__version__} reads up to {CODEC_VERSION}. Upgrade vaekit.")
    referenced = type(version) is int and version >= 3 and "quantizer" not in header
    compact = referenced and type(version) is int and version >= COMPACT_HEADER_VERSION
    for key, kinds in _HEADER_TYPES.items():
        if referenced and key in ("schema", "quantizer"):
            continue  # a model-referenced header (codec 3): the model holds them
        if compact and key == "columns" and key not in header:
            continue  # the model's columns in its order, nothing passed through
        value = header.get(key, ...)
        if value is ... or not isinstance(value, kinds) or (
                isinstance(value, bool) and bool not in kinds):
            what = "missing" if value is ... else f"a {type(value).__name__}"
            raise FileFormatError(f"{source}: header key {key!r} is {what}, not "
                                  f"{' or '.join(k.__name__ for k in kinds)}")

    def bad(key: str, why: str) -> FileFormatError:
        return FileFormatError(f"{source}: header key {key!r} {why}")

    if version < 1:
        raise bad("codec_version", f"is {version}; versions start at 1")
    if "value_bounds" in header and version < 3:
        raise bad("value_bounds", f"needs codec version 3 (the header says {version})")
    form, digits = (_SHORT_DIGEST, 16) if compact else (_FINGERPRINT, 64)
    if not form.fullmatch(header["model_fingerprint"]):
        raise bad("model_fingerprint", f"is not {digits} lowercase hex digits")
    if header["input_kind"] not in ("tabular", "image"):
        raise bad("input_kind", f"is {header['input_kind'][:40]!r}, not 'tabular' or 'image'")
    if header["input_form"] not in ("frame", "array"):
        raise bad("input_form", f"is {header['input_form'][:40]!r}, not 'frame' or 'array'")
    if not 1 <= header["chunk_rows"] <= MAX_CHUNK_ROWS:
        raise bad("chunk_rows", f"is {header['chunk_rows']}; it must be in 1..{MAX_CHUNK_ROWS}")
    if header["n_rows"] is not None and header["n_rows"] < 0:
        raise bad("n_rows", "is negative")
    if "columns" not in header and header["passthrough"]:
        raise bad("passthrough", "needs 'columns'")
    for key in ("columns", "passthrough"):
        names = header.get(key) or []
        if not all(isinstance(c, str) for c in names) or len(set(names)) != len(names):
            raise bad(key, "must list distinct strings")
    if header.get("columns") is not None and not set(header["passthrough"]) <= set(
            header["columns"]):
        raise bad("passthrough", "names a column that 'columns' lacks")
    if referenced:
        digest = header.get("quantizer_sha256")
        if not isinstance(digest, str) or not form.fullmatch(digest):
            raise bad("quantizer_sha256", f"is not {digits} lowercase hex digits")
        return
    quantizer = header_quantizer(header, source)
    if quantizer.n_dims != header["latent_dim"]:
        raise bad("quantizer", f"has {quantizer.n_dims} dimensions; 'latent_dim' says "
                  f"{header['latent_dim']}")


def quantizer_digest(quantizer: LatentQuantizer) -> str:
    """SHA-256 (hex) of a quantizer's JSON (sorted keys, no spaces): how a
    model-referenced header names the quantizer its codes were made with."""
    text = json.dumps(quantizer.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_quantizer(header: dict[str, Any], model: Any, source: str) -> LatentQuantizer:
    """The quantizer of a file's codes: the header's own, or (a model-referenced header)
    the model's, which must be the one the header names."""
    if "quantizer" in header:
        return header_quantizer(header, source)
    quantizer = model.default_quantizer()
    stored = header.get("quantizer_sha256")
    if not isinstance(stored, str) or quantizer_digest(quantizer)[:len(stored)] != stored:
        raise FileFormatError(f"{source}: the model's quantizer is not the one these codes "
                              "were made with (header key 'quantizer_sha256')")
    return quantizer


def header_quantizer(header: dict[str, Any], source: str) -> LatentQuantizer:
    try:
        return LatentQuantizer.from_dict(header.get("quantizer"))  # type: ignore[arg-type]
    except ValueError as exc:
        raise FileFormatError(f"{source}: header key 'quantizer': {exc}") from None


def check_chunk_rows(n_rows: int, header: dict[str, Any]) -> None:
    """A chunk may hold at most ``chunk_rows`` rows: checked before anything is decoded."""
    limit = header.get("chunk_rows")
    if type(limit) is not int or not 1 <= limit <= MAX_CHUNK_ROWS:
        raise FileFormatError(f"header key 'chunk_rows' is {limit!r}, not in 1..{MAX_CHUNK_ROWS}")
    if n_rows > limit:
        raise FileFormatError(f"chunk is corrupt: it declares {n_rows} rows, more than "
                              f"the header's chunk_rows ({limit})")


def checked_chunks(reader: ContainerReader, header: dict[str, Any],
                   name: str) -> Iterator[tuple[int, int, bytes, int]]:
    """``(k, n_rows, payload, rows_before)`` of each chunk, in order, under the
    sequence rules: at most ``chunk_rows`` rows in a chunk, every chunk but the last
    exactly ``chunk_rows``, and (at the end) as many rows as the header promises."""
    offset, short = 0, None
    for k, n_rows, payload in reader.iter_chunks():
        try:
            check_chunk_rows(n_rows, header)
        except FileFormatError as exc:
            raise FileFormatError(f"{name}: chunk {k + 1}: {exc}") from None
        if short is not None:
            raise FileFormatError(f"{name}: chunk {k + 1} is corrupt: it follows chunk "
                                  f"{short}, which holds fewer than chunk_rows rows")
        short = k + 1 if n_rows < header["chunk_rows"] else None
        yield k, n_rows, payload, offset
        offset += n_rows
    # (the container already checked the trailer's count against the chunks)
    if header.get("n_rows") is not None and header["n_rows"] != offset:
        raise FileFormatError(f"{name}: the header promises {header['n_rows']} rows, "
                              f"the file holds {offset}")
