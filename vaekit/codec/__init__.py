"""Low-level codec: the ``.vkc`` container and compact encodings of codes and tables.

This package knows nothing about models or training (it never imports torch):

* :mod:`vaekit.codec.container` -- versioned, CRC-protected, streamable container
  of row chunks (:class:`ContainerWriter`, :class:`ContainerReader`,
  :func:`read_header`, :func:`read_info`).
* :mod:`vaekit.codec.packing` -- :func:`pack_codes` / :func:`unpack_codes` for
  integer codes at per-dimension bit widths (zstd entropy coding) and
  :func:`pack_table` / :func:`unpack_table` for passthrough columns (Arrow IPC).

The byte-level format is specified in ``FORMAT.md`` in this directory.  Every
damaged or foreign file raises :class:`vaekit.errors.FileFormatError`.
"""

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

__all__ = [
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
