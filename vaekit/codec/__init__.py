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

from .container import (
    CODEC_NAME,
    CODEC_VERSION,
    DEFAULT_CHUNK_ROWS,
    END_MAGIC,
    FORMAT_VERSION,
    MAGIC,
    ContainerInfo,
    ContainerReader,
    ContainerWriter,
    read_header,
    read_info,
)
from .packing import (
    LAYOUT_BYTES,
    LAYOUT_PACKED,
    MAX_BITS,
    TABLE_ZSTD_LEVEL,
    ZSTD_LEVEL,
    pack_codes,
    pack_table,
    raw_packed_size,
    unpack_codes,
    unpack_table,
)
from .quantize import LatentQuantizer, allocate_bits, fit_quantizer, payload_bytes_per_row

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
