"""One chunk of rows <-> one ``.vkc`` chunk payload through a fitted model.

The pure per-chunk functions :func:`compress_chunk` / :func:`decompress_chunk` (the
streaming writer and reader of :mod:`.streams` and the parallel engines call them),
the container header (:func:`container_header`) and how a DataFrame splits into model
and passthrough columns.  The payload layout is specified in ``FORMAT.md`` (section
"Chunk payload"); its constants live in :mod:`.payload`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..codec.container import (
    CODEC_NAME,
    CODEC_VERSION,
    DEFAULT_CHUNK_ROWS,
)
from ..codec.packing import (
    pack_codes,
    pack_mask,
    pack_table,
    table_size_limit,
    unpack_codes,
    unpack_mask,
    unpack_table,
)
from ..codec.quantize import LatentQuantizer
from ..errors import DataError, FileFormatError
from .bounded import (
    check_bounds,
    decode_values,
    encode_best,
)
from .container_checks import (
    COMPACT_HEADER_VERSION,
    check_chunk_rows,
    quantizer_digest,
    resolve_quantizer,
)
from .digits import decode_rounded
from .model import FittedVAE
from .payload import (
    COARSE_SHIFT,
    FLAG_MASK,
    FLAG_NO_CODES,
    FLAG_PASSTHROUGH,
    FLAG_VALUES,
    LATENT_CODEC_VERSION,
    MASK_LENGTH,
    PAYLOAD_HEAD,
    PAYLOAD_VERSION,
    VALUES_LENGTH,
    chunk_code_bits,
)

__all__ = ["compress_chunk", "container_header", "decompress_chunk"]

# Coarsenings (fewer bits per latent dimension) a bounded chunk's writer weighs.
COARSE_STEPS = (0, 2, 4)


# --------------------------------------------------------------------------- layout


def names_of(columns: Sequence[Any]) -> list[str]:
    """Column labels as strings."""
    return [str(c) for c in columns]


def _split_frame(model: FittedVAE, X: pd.DataFrame,
                 id_columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(model columns in fitted order, passthrough columns)`` of a frame."""
    have = names_of(X.columns)
    if len(set(have)) != len(have):
        raise DataError(f"duplicate column names: {sorted({c for c in have if have.count(c) > 1})}")
    want = model.column_names
    ids = [str(c) for c in id_columns]
    missing = [c for c in want + ids if c not in have]
    if missing:
        raise DataError(f"missing column(s) {missing}; the model was fitted on {want}"
                        + (f" and id columns {ids} were named" if ids else ""))
    # A column the model does not know and nobody named as an id would be lost
    # without a trace; refuse instead of dropping data.
    stray = [c for c in have if c not in want and c not in ids]
    if stray:
        raise DataError(f"column(s) {stray} are not model columns; name them as id columns "
                        "to carry them losslessly, or drop them")
    # Relabel and reorder only when needed: both copy every value.
    frame = X if list(X.columns) == have else X.set_axis(have, axis=1)
    model_part = frame if have == want else frame[want]
    ids_part = X.iloc[:, [have.index(c) for c in ids]] if ids else None
    return model_part, ids_part


def container_header(model: FittedVAE, quantizer: LatentQuantizer, *,
                     columns: Sequence[str] | None, id_columns: Sequence[str] = (),
                     chunk_rows: int = DEFAULT_CHUNK_ROWS, n_rows: int | None = None,
                     embedded: bool = False,
                     bounds: float | list[float | None] | None = None,
                     self_describing: bool = False) -> dict[str, Any]:
    """The container's header JSON object (keys documented in ``FORMAT.md``).

    Parameters
    ----------
    columns : sequence of str or None
        Output column order (DataFrame input: model and id columns as given);
        ``None`` for array and image input.
    n_rows : int, optional
        Total rows, when known before writing (the trailer always has the count).
    bounds : float or list, optional
        Bounded values: a bound in SDs of each numeric column, or one absolute bound
        per schema column (:func:`.bounded.resolve_bounds`).
    self_describing : bool
        Copy the model's schema and quantizer into the header (codec version 2 without
        bounds), so the file's codes can be checked and described without the model.
        Default: the header refers to the model (codec version 6; 7, ``CODEC_VERSION``,
        with bounds): no ``schema``, the model and its quantizer by the first 16 hex
        digits of their SHA-256, no ``columns`` when they are the model's own; about 135
        bytes stored for a table.  Files with bounds are version 7 either way.
    """
    header: dict[str, Any] = {
        "codec": CODEC_NAME,
        # the oldest version that reads the file: the odd integer steps of version 7
        # only matter to bounded values
        "codec_version": (CODEC_VERSION if bounds is not None
                          else LATENT_CODEC_VERSION if self_describing
                          else COMPACT_HEADER_VERSION),
        "vaekit_version": __version__,
        "model_fingerprint": model.fingerprint(),
        "model_embedded": bool(embedded),
        "input_kind": model.input_kind,
        "input_form": model.input_form,
        "schema": model.schema.to_dict(),
        "latent_dim": model.latent_dim,
        "quantizer": quantizer.to_dict(),
        "columns": None if columns is None else [str(c) for c in columns],
        "passthrough": [str(c) for c in id_columns],
        "chunk_rows": int(chunk_rows),
        "n_rows": None if n_rows is None else int(n_rows),
    }
    if not self_describing:
        del header["schema"]
        digest = quantizer_digest(quantizer)
        if header["codec_version"] >= COMPACT_HEADER_VERSION:
            # a short file's header is most of it: 16 hex digits name the quantizer,
            # and the model's own column order goes without saying
            digest = digest[:16]
            header["model_fingerprint"] = header["model_fingerprint"][:16]
            if (not id_columns and model.input_form == "frame"
                    and header["columns"] == list(model.column_names)):
                del header["columns"]
        header["quantizer"] = digest
        header = {("quantizer_sha256" if k == "quantizer" else k): v for k, v in header.items()}
    if bounds is not None:
        header["value_bounds"] = ({"sd_units": float(bounds)} if isinstance(bounds, float)
                                  else [None if b is None else float(b) for b in bounds])
    return header


# --------------------------------------------------------------------------- per chunk


def compress_chunk(X: Any, model: FittedVAE, quantizer: LatentQuantizer,
                   id_columns: Sequence[str] = (), set_threads: bool = True,
                   bounds: list[float | None] | None = None,
                   prepared: dict[str, np.ndarray] | None = None) -> bytes:
    """Encode one chunk of rows to its container payload.

    Parameters
    ----------
    X : DataFrame, ndarray (n, d) or images (n, H, W[, C])
        Rows in the form the model was fitted on.  A DataFrame must hold the model's
        columns plus exactly the ``id_columns`` (any other column is refused, so
        nothing is dropped silently).
    model : FittedVAE
    quantizer : LatentQuantizer
    id_columns : sequence of str
        Columns carried losslessly (DataFrame input only).
    set_threads : bool
        Run the encoder on the model's ``n_jobs`` threads; False inside a worker pool
        (:mod:`.workers`), which sets one thread per worker for its whole run.
    bounds : list, optional
        Store every value within these bounds as well (:mod:`.bounded`).
    prepared : dict, optional
        ``model.prepare`` of these rows' model columns, when the caller has it (a
        reader thread prepared them): used instead of preparing them here.  Preparing
        is row by row, so the bytes are the same either way.

    Returns
    -------
    bytes
        ``head | packed codes | [missing mask] | [bounded values] | [passthrough
        table]`` (see ``FORMAT.md``).  A pure
        function: the same rows give the same bytes whatever else is being encoded,
        because the encoder runs in fixed-shape blocks.
    """
    ids = None
    if isinstance(X, pd.DataFrame) and model.input_kind == "tabular":
        X, ids = _split_frame(model, X, id_columns)
    elif id_columns:
        raise DataError("id columns need DataFrame input")
    n = len(X)
    if n == 0:
        codes = np.zeros((0, quantizer.n_dims), dtype=np.int64)
    else:
        if prepared is None:
            prepared = model.prepare(X)
        means = model.encode_means(prepared, set_threads)
        codes = quantizer.encode(means)
    packed = pack_codes(codes, quantizer.bits)
    values = b""
    flags = 0
    if bounds is not None and n:
        # Coded under the decoder's prediction from the codes as the reader decodes
        # them -- the codes at full precision or coarsened by r bits, which cost less
        # and predict a little worse -- or from no code at all (z = 0, the prior's
        # mean): per chunk whichever makes the smallest chunk.
        options = []  # (flags, packed codes, decoded codes)
        for r in COARSE_STEPS:
            q = quantizer.coarsened(r)
            if r and not q.total_bits:
                break  # no bits left: that is the no-codes option
            c = codes if r == 0 else q.encode(means)
            # r = 0: the full-precision codes, packed above already.
            options.append((r << COARSE_SHIFT, packed if r == 0 else pack_codes(c, q.bits),
                            q.decode(c)))
        options.append((FLAG_NO_CODES, b"", np.zeros(codes.shape, dtype=np.float32)))
        best, section = encode_best(model, X, [(len(p), z) for _, p, z in options], bounds,
                                    prepared)
        flags, packed = options[best][0], options[best][1]
        values = VALUES_LENGTH.pack(len(section)) + section
    mask = b""
    if model.input_kind == "tabular" and n:
        # The same test the schema uses for "missing" (isna), so exactly the cells
        # the encoder saw as missing come back blank.
        missing = (X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))).isna()
        if missing.to_numpy().any():
            frame = pack_mask(missing.to_numpy())
            mask = MASK_LENGTH.pack(len(frame)) + frame
            flags |= FLAG_MASK
    table = b""
    if ids is not None:
        try:
            table = pack_table(ids)
        except ValueError as exc:  # an id too long, a column Arrow cannot hold
            raise DataError(f"id columns: {exc}") from None
        flags |= FLAG_PASSTHROUGH
    if values:
        flags |= FLAG_VALUES
    return (PAYLOAD_HEAD.pack(PAYLOAD_VERSION, flags, len(packed)) + packed + mask + values
            + table)


def decompress_chunk(payload: bytes, n_rows: int, model: FittedVAE,
                     header: dict[str, Any], row_offset: int = 0, *,
                     quantizer: LatentQuantizer | None = None) -> Any:
    """Decode one chunk payload to rows in the input's own form.

    Parameters
    ----------
    payload : bytes
        As written by :func:`compress_chunk`.
    n_rows : int
        Rows in the chunk (from the container's chunk record).
    model : FittedVAE whose fingerprint matches the header
    header : dict
        The container header (:func:`container_header`); its quantizer is used.
    row_offset : int
        Index of the chunk's first row in the file; a DataFrame gets the index
        ``row_offset .. row_offset + n_rows - 1``.
    quantizer : LatentQuantizer, optional
        The header's quantizer, from a caller that has checked the header and the
        chunk's row count already (:func:`iter_decompressed`: once per file, not once
        per chunk); without it both are done here.

    Raises
    ------
    FileFormatError
        If the payload is damaged or disagrees with the header.
    """
    if quantizer is None:
        quantizer = resolve_quantizer(header, model, "container")
        check_chunk_rows(n_rows, header)
    if len(payload) < PAYLOAD_HEAD.size:
        raise FileFormatError("chunk payload is corrupt (shorter than its head)")
    version, flags, n_codes = PAYLOAD_HEAD.unpack_from(payload)
    if version != PAYLOAD_VERSION:
        raise FileFormatError(f"chunk payload is corrupt (version {version}, flags {flags})")
    end = PAYLOAD_HEAD.size + n_codes
    if end > len(payload):
        raise FileFormatError("chunk payload is corrupt (codes run past its end)")
    packed_with = chunk_code_bits(flags, n_codes, header, quantizer)
    no_codes = packed_with is None
    if packed_with is not None:
        quantizer = packed_with
    codes = (np.zeros((n_rows, quantizer.n_dims), dtype=np.int64) if no_codes
             else unpack_codes(payload[PAYLOAD_HEAD.size:end], n_rows, quantizer.bits))
    missing = None
    if flags & FLAG_MASK:
        names = model.column_names
        if n_rows == 0 or not names or end + MASK_LENGTH.size > len(payload):
            raise FileFormatError("chunk payload is corrupt (a missing mask where none fits)")
        (size,) = MASK_LENGTH.unpack_from(payload, end)
        start, end = end + MASK_LENGTH.size, end + MASK_LENGTH.size + size
        if end > len(payload):
            raise FileFormatError("chunk payload is corrupt (missing mask runs past its end)")
        missing = unpack_mask(payload[start:end], n_rows, len(names))
    section = None
    if "value_bounds" in header and n_rows:
        if not flags & FLAG_VALUES or end + VALUES_LENGTH.size > len(payload):
            raise FileFormatError("chunk payload is corrupt (no bounded values, which the "
                                  "header promises)")
        (size,) = VALUES_LENGTH.unpack_from(payload, end)
        start, end = end + VALUES_LENGTH.size, end + VALUES_LENGTH.size + size
        if end > len(payload):
            raise FileFormatError("chunk payload is corrupt (bounded values run past its end)")
        section = payload[start:end]
    passthrough = list(header.get("passthrough") or [])
    has_table = bool(flags & FLAG_PASSTHROUGH)
    if has_table != bool(passthrough) or (not has_table and end != len(payload)):
        raise FileFormatError("chunk payload disagrees with the header's passthrough columns")
    if n_rows == 0:
        values = model.empty_output()
    else:
        # a chunk without codes decodes at z = 0; floats get the digits the codec
        # keeps (.digits)
        z = (np.zeros((n_rows, quantizer.n_dims), dtype=np.float32) if no_codes
             else quantizer.decode(codes))
        if section is None:
            values = decode_rounded(model, z)
        else:
            bounds = check_bounds(header["value_bounds"], model)
            values = decode_values(model, section, n_rows, z, bounds, missing,
                                   version=header["codec_version"])
            if model.input_form == "array":
                values = values.to_numpy()
        values = _blank(values, missing, model)
    if not isinstance(values, pd.DataFrame):
        return values
    values.index = pd.RangeIndex(row_offset, row_offset + n_rows)
    if has_table:
        ids = unpack_table(payload[end:], table_size_limit(n_rows, len(passthrough)))
        if len(ids) != n_rows or names_of(ids.columns) != passthrough:
            raise FileFormatError("chunk's passthrough table disagrees with the header")
        ids.index = values.index
        for i, name in enumerate(passthrough):
            values[name] = ids.iloc[:, i]  # exact values win over reconstructions
    columns = header.get("columns")
    return values[columns] if columns is not None else values


def _blank(values: Any, missing: np.ndarray | None, model: FittedVAE) -> Any:
    """Put the blanks back: cells missing on input are NaN / null on output.

    Integer and boolean columns become pandas' nullable ``Int64`` / ``boolean``
    (still int / bool in Arrow, CSV and Parquet); others keep their dtype.
    """
    if missing is None:
        return values
    if not isinstance(values, pd.DataFrame):
        out = np.asarray(values, dtype=np.float64).copy()
        out[missing] = np.nan
        return out
    for j in np.flatnonzero(missing.any(axis=0)):
        name = model.column_names[j]
        col = values[name]
        if col.dtype.kind in "iu":
            col = col.astype(str(col.dtype).capitalize().replace("Ui", "UI"))
        elif col.dtype.kind == "b":
            col = col.astype("boolean")
        values[name] = col.mask(missing[:, j])
    return values
