"""The codec's pure half: bytes in, bytes out -- no torch, no models, no estimators.

* :mod:`vaekit.codec.container` -- versioned, CRC-protected, streamable container
  of row chunks (:class:`ContainerWriter`, :class:`ContainerReader`,
  :func:`read_header`, :func:`read_info`).
* :mod:`vaekit.codec.packing` -- :func:`pack_codes` / :func:`unpack_codes` for
  integer codes at per-dimension bit widths (zstd entropy coding) and
  :func:`pack_table` / :func:`unpack_table` for passthrough columns (Arrow IPC).
* :mod:`vaekit.codec.quantize` -- :class:`LatentQuantizer` and the bit allocation
  (collapsed dimensions cost 0 bits; steps tied to the posterior SD).
* :mod:`vaekit.codec.manifest` -- the manifest of part containers a parallel
  engine writes (:class:`ManifestWriter`, :func:`read_manifest`).

The model-aware half -- rows <-> codes through a fitted model, ``.vkc`` streams,
the model resolver -- is :mod:`vaekit.fitted.streams` (``CompressedWriter``,
``iter_decompressed``, also importable from :mod:`vaekit`).

The byte-level format is specified in ``FORMAT.md`` in this directory.  Every
damaged or foreign file raises :class:`vaekit.errors.FileFormatError`.
"""

import importlib
from typing import Any

# Names -> the module that defines them, imported on first use: the command line's
# `--help` loads vaekit.codec.limits without numpy, pandas or zstd.
_WHERE = {
    "CODEC_NAME": "container",
    "CODEC_VERSION": "container",
    "ContainerInfo": "container",
    "ContainerReader": "container",
    "ContainerWriter": "container",
    "DEFAULT_CHUNK_ROWS": "container",
    "END_MAGIC": "container",
    "FORMAT_VERSION": "container",
    "LAYOUT_BYTES": "packing",
    "LAYOUT_PACKED": "packing",
    "LatentQuantizer": "quantize",
    "MAGIC": "container",
    "MAX_BITS": "packing",
    "TABLE_ZSTD_LEVEL": "packing",
    "ZSTD_LEVEL": "packing",
    "allocate_bits": "quantize",
    "fit_quantizer": "quantize",
    "pack_codes": "packing",
    "pack_table": "packing",
    "payload_bytes_per_row": "quantize",
    "raw_packed_size": "packing",
    "read_header": "container",
    "read_info": "container",
    "unpack_codes": "packing",
    "unpack_table": "packing",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CODEC_NAME",
    "CODEC_VERSION",
    "DEFAULT_CHUNK_ROWS",
    "END_MAGIC",
    "FORMAT_VERSION",
    "LAYOUT_BYTES",
    "LAYOUT_PACKED",
    "MAGIC",
    "MAX_BITS",
    "TABLE_ZSTD_LEVEL",
    "ZSTD_LEVEL",
    "ContainerInfo",
    "ContainerReader",
    "ContainerWriter",
    "LatentQuantizer",
    "allocate_bits",
    "fit_quantizer",
    "pack_codes",
    "pack_table",
    "payload_bytes_per_row",
    "raw_packed_size",
    "read_header",
    "read_info",
    "unpack_codes",
    "unpack_table",
]
