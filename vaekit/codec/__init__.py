"""Low-level codec: the ``.vkc`` container and compact encodings of codes and tables.

The container, packing and quantizer modules know nothing about models or
training (they never import torch); :mod:`vaekit.codec.compressor` is the bridge
that runs a fitted estimator per chunk:

* :mod:`vaekit.codec.container` -- versioned, CRC-protected, streamable container
  of row chunks (:class:`ContainerWriter`, :class:`ContainerReader`,
  :func:`read_header`, :func:`read_info`).
* :mod:`vaekit.codec.packing` -- :func:`pack_codes` / :func:`unpack_codes` for
  integer codes at per-dimension bit widths (zstd entropy coding) and
  :func:`pack_table` / :func:`unpack_table` for passthrough columns (Arrow IPC).
* :mod:`vaekit.codec.quantize` -- :class:`LatentQuantizer` and the bit allocation
  (collapsed dimensions cost 0 bits; steps tied to the posterior SD).
* :mod:`vaekit.codec.compressor` -- :class:`CompressedWriter` and
  :func:`iter_decompressed` (streaming, bounded memory), the per-chunk
  :func:`compress_chunk` / :func:`decompress_chunk`, :func:`model_fingerprint`.

The byte-level format is specified in ``FORMAT.md`` in this directory.  Every
damaged or foreign file raises :class:`vaekit.errors.FileFormatError`.
"""

from .compressor import (
    CODEC_NAME,
    CODEC_VERSION,
    DEFAULT_CHUNK_ROWS,
    CompressedWriter,
    compress_chunk,
    container_header,
    decompress_chunk,
    iter_decompressed,
    load_embedded_model,
    model_fingerprint,
    quantizer_for,
)
from .container import (
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
    "CompressedWriter",
    "LatentQuantizer",
    "allocate_bits",
    "compress_chunk",
    "container_header",
    "decompress_chunk",
    "fit_quantizer",
    "iter_decompressed",
    "load_embedded_model",
    "model_fingerprint",
    "payload_bytes_per_row",
    "quantizer_for",
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
    "pack_codes",
    "pack_table",
    "raw_packed_size",
    "read_header",
    "read_info",
    "unpack_codes",
    "unpack_table",
]
