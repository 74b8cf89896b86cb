"""The chunk payload layout of ``.vkc`` files written through a fitted model.

``FORMAT.md`` (section "Chunk payload") specifies it:
``head (version, flags, C) | packed codes (C) | [u32 K | missing mask (K)] |
[u32 V | bounded values (V)] | [ids]``.
:mod:`.streams` writes and decodes payloads with these constants;
:func:`payload_sections` measures one without decoding it (``vaekit info``'s size
breakdown).
"""

from __future__ import annotations

import struct
from typing import Any

from ..codec.quantize import LatentQuantizer
from ..errors import FileFormatError

__all__ = ["PAYLOAD_HEAD", "PAYLOAD_VERSION", "FLAG_PASSTHROUGH", "FLAG_MASK", "FLAG_VALUES", "FLAG_NO_CODES",
           "COARSE_SHIFT", "COARSE_MASK", "MASK_LENGTH", "VALUES_LENGTH",
           "LATENT_CODEC_VERSION", "chunk_code_bits", "payload_sections"]

# Payload head: payload version, flags, length of the packed codes (bytes).
PAYLOAD_HEAD = struct.Struct("<BBI")
PAYLOAD_VERSION = 1
FLAG_PASSTHROUGH = 1
# Codec version 2: a missing mask (u32 length, then pack_mask's frame) follows the
# codes when a chunk had missing cells.  Codec-1 files never set this flag.
FLAG_MASK = 2
MASK_LENGTH = struct.Struct("<I")
# Codec version 3: with the header key "value_bounds", every chunk with rows carries
# its bounded values (u32 length, then vaekit.codec.values' section) after the mask.
FLAG_VALUES = 4
# ... and a chunk of such a file may leave its codes out (C = 0): its values are then
# coded under the decoder's prediction at z = 0 (the prior's mean).
FLAG_NO_CODES = 8
# ... or store them coarsened: bits 4-6 hold r (0-7), the codes have r fewer bits per
# dimension (LatentQuantizer.coarsened); only with bounded values.
COARSE_SHIFT, COARSE_MASK = 4, 0x70
VALUES_LENGTH = struct.Struct("<I")
# The codec version of files without bounded values (readers of version 2 read them).
LATENT_CODEC_VERSION = 2


def chunk_code_bits(flags: int, n_codes: int, header: dict[str, Any],
                    quantizer: LatentQuantizer) -> LatentQuantizer | None:
    """Check a chunk's payload flags against its file's header; the quantizer its codes
    are packed with (coarsened by the chunk's ``r``), or None for a chunk without
    codes.

    Raises
    ------
    FileFormatError
        Flags the file's codec version does not define, codes in a chunk that says it
        has none, or a coarsening that leaves a step or center not finite.
    """
    known = (FLAG_PASSTHROUGH | (FLAG_MASK if header.get("codec_version", 1) >= 2 else 0)
             | (FLAG_VALUES | FLAG_NO_CODES | COARSE_MASK if "value_bounds" in header else 0))
    if flags & ~known:
        raise FileFormatError(f"chunk payload is corrupt (flags {flags})")
    if flags & FLAG_NO_CODES:
        if n_codes or flags & COARSE_MASK:
            raise FileFormatError("chunk payload is corrupt (codes where it says there are "
                                  "none)")
        return None
    try:
        return quantizer.coarsened((flags & COARSE_MASK) >> COARSE_SHIFT)
    except ValueError as exc:  # a stranger's quantizer whose coarse cells overflow
        raise FileFormatError(f"chunk payload is corrupt (coarse codes: {exc})") from None


def payload_sections(payload: bytes) -> dict[str, int]:
    """Bytes of each section of one chunk payload (nothing is decompressed).

    Returns
    -------
    dict
        ``head`` (the 6-byte payload head), ``codes`` (packed codes), ``missing_mask``
        (its 4-byte length field and frame; 0 without one), ``values`` (the bounded
        values with their length field; 0 without) and ``ids`` (the passthrough
        table; 0 without one); they add up to ``len(payload)``.

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
    values = 0
    if flags & FLAG_VALUES and end + mask + VALUES_LENGTH.size <= len(payload):
        values = VALUES_LENGTH.size + VALUES_LENGTH.unpack_from(payload, end + mask)[0]
    if end + mask + values > len(payload):
        raise FileFormatError("chunk payload is corrupt (its sections run past its end)")
    ids = len(payload) - end - mask - values if flags & FLAG_PASSTHROUGH else 0
    # Bytes nothing claims cannot be in a valid payload; count them with the head so
    # the sections always add up (the decoder refuses such a chunk).
    head = len(payload) - n_codes - mask - values - ids
    return {"head": head, "codes": n_codes, "missing_mask": mask, "values": values, "ids": ids}
