"""The chunk payload layout of ``.vkc`` files written through a fitted model.

``FORMAT.md`` (section "Chunk payload") specifies it:
``head (version, flags, C) | packed codes (C) | [u32 K | missing mask (K)] | [ids]``.
:mod:`.streams` writes and decodes payloads with these constants;
:func:`payload_sections` measures one without decoding it (``vaekit info``'s size
breakdown).
"""

from __future__ import annotations

import struct

from ..errors import FileFormatError

__all__ = ["PAYLOAD_HEAD", "PAYLOAD_VERSION", "FLAG_PASSTHROUGH", "FLAG_MASK", "MASK_LENGTH",
           "payload_sections"]

# Payload head: payload version, flags, length of the packed codes (bytes).
PAYLOAD_HEAD = struct.Struct("<BBI")
PAYLOAD_VERSION = 1
FLAG_PASSTHROUGH = 1
# Codec version 2: a missing mask (u32 length, then pack_mask's frame) follows the
# codes when a chunk had missing cells.  Codec-1 files never set this flag.
FLAG_MASK = 2
MASK_LENGTH = struct.Struct("<I")


def payload_sections(payload: bytes) -> dict[str, int]:
    """Bytes of each section of one chunk payload (nothing is decompressed).

    Returns
    -------
    dict
        ``head`` (the 6-byte payload head), ``codes`` (packed codes), ``missing_mask``
        (its 4-byte length field and frame; 0 without one) and ``ids`` (the
        passthrough table; 0 without one); they add up to ``len(payload)``.

    Raises
    ------
    FileFormatError
        If the lengths in the payload do not fit it.
    """
    if len(payload) < PAYLOAD_HEAD.size:
        raise FileFormatError("chunk payload is corrupt (shorter than its head)")
    _, flags, n_codes = PAYLOAD_HEAD.unpack_from(payload)
    end = PAYLOAD_HEAD.size + n_codes
    mask = 0
    if flags & FLAG_MASK and end + MASK_LENGTH.size <= len(payload):
        mask = MASK_LENGTH.size + MASK_LENGTH.unpack_from(payload, end)[0]
    if end + mask > len(payload):
        raise FileFormatError("chunk payload is corrupt (its sections run past its end)")
    ids = len(payload) - end - mask if flags & FLAG_PASSTHROUGH else 0
    # Bytes nothing claims cannot be in a valid payload; count them with the head so
    # the sections always add up (the decoder refuses such a chunk).
    head = len(payload) - n_codes - mask - ids
    return {"head": head, "codes": n_codes, "missing_mask": mask, "ids": ids}
