"""What a model (``.vaekit``) or container (``.vkc``) file holds, as a JSON-ready dict.

The facts behind ``vaekit info``; the command line only renders them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..codec.container import MAGIC, ContainerReader, read_info
from ..codec.manifest import describe_manifest, is_manifest
from ..codec.packing import table_size_limit, unpack_codes, unpack_table
from ..codec.records import record_bytes, trailer
from ..errors import FileFormatError
from ..files.untrusted import open_regular
from .checks import check_model
from .container_checks import check_header, checked_chunks, header_quantizer
from .model_file import read_model
from .payload import PAYLOAD_HEAD, chunk_code_bits, payload_sections
from .scoring import score_quantiles, threshold_from_quantiles
from .streams import iter_decompressed

__all__ = ["describe"]

def describe(path: str, *, verify: bool = False) -> dict[str, Any]:
    """What a model or container file holds, as a JSON-ready dict.

    Parameters
    ----------
    path : str
        A model (``.vaekit``), a container (``.vkc``) or the manifest of a
        multi-part container written by the Dask engine.
    verify : bool
        For a container: also read every chunk and check its CRC (a model file's
        checksum is always checked).

    Returns
    -------
    dict
        ``type`` is ``"model"``, ``"container"`` or ``"manifest"``; the other keys
        depend on it (``vaekit info --json`` prints this dict).

    Raises
    ------
    FileFormatError
        A corrupt, truncated or foreign file.
    """
    if is_manifest(path):  # (False, without opening it, for anything but a regular file)
        return describe_manifest(path)
    try:
        # a FIFO would wait for a writer, a device never ends: refused unread
        fh = open_regular(path, lambda why: FileFormatError(
            f"{path}: {why}, so not a model or .vkc file"))
    except FileNotFoundError:
        raise FileFormatError(f"{path}: file not found") from None
    with fh:
        head = fh.read(len(MAGIC))
    if head == MAGIC:
        if verify:  # every check decompress makes (a full decode when a model is embedded)
            verify_container(path)
        return _describe_container(path)
    return _describe_model(path)


def _describe_model(path: str) -> dict[str, Any]:
    """Facts of a ``.vaekit`` model file (read as data: no estimator is built, but the
    file gets the same checks as one that is loaded)."""
    tensors, meta = read_model(path)
    check_model(tensors, meta, path)
    fitted = meta.get("fitted", {})
    schema = fitted.get("schema", {})
    history = fitted.get("history") or []
    last = history[-1] if history else {}
    facts: dict[str, Any] = {
        "file": path,
        "type": "model",
        "file_bytes": os.path.getsize(path),
        "vaekit_version": meta.get("vaekit_version"),
        "estimator": meta.get("estimator"),
        "fingerprint": meta.get("fingerprint"),
        "input_kind": fitted.get("input_kind"),
        "architecture": {**{k: fitted.get("config", {}).get(k)
                            for k in ("architecture", "latent_dim", "hidden")},
                         "parameters": int(sum(t.size for t in tensors.values()))},
        "training": {
            "rows": schema.get("n_rows_fit"),
            "epochs": len(history),
            "final_train_elbo_nats": last.get("train_elbo"),
            "final_val_elbo_nats": last.get("val_elbo"),
            "seed": meta.get("params", {}).get("random_state"),  # as given to fit --seed
        },
    }
    if schema.get("type") == "tabular":
        facts["columns"] = [
            {"name": c["name"], "kind": c["kind"], "dtype": c["dtype"],
             **({"levels": len(c.get("levels", []))} if c["kind"] != "numeric" else {})}
            for c in schema.get("columns", [])
        ]
        facts["id_columns"] = list(fitted.get("id_columns") or [])
    else:
        facts["image"] = {k: schema.get(k) for k in ("shape", "layout", "dtype")}
    stored = fitted.get("score_quantiles")
    if stored is None and fitted.get("decision_scores"):  # older files: every score
        scores = fitted["decision_scores"]
        stored = {"n": len(scores), "q": score_quantiles(np.asarray(scores))}
    if stored is not None:
        params = meta.get("params", {})
        facts["anomaly"] = {
            "contamination": params.get("contamination"),
            "n_samples": params.get("n_samples"),
            "threshold_nats": threshold_from_quantiles(stored["q"],
                                                       params.get("contamination", "auto")),
            "training_scores": stored["n"],
        }
    return facts


def _describe_container(path: str) -> dict[str, Any]:
    """Facts of a single ``.vkc`` container (its footer and header), with the size
    breakdown of :func:`_size_breakdown` (``None`` for a truncated or damaged file)."""
    ci = read_info(path)
    header = dict(ci.header)
    facts: dict[str, Any] = {
        "file": path,
        "type": "container",
        "file_bytes": ci.file_bytes,
        "format_version": ci.format_version,
        "complete": ci.complete,
        "rows": ci.n_rows,
        "chunks": ci.n_chunks,
        "embedded_model_bytes": ci.embedded_model_bytes,
        # The whole file per row, model and header included (see codes_bytes_per_row).
        "bytes_per_row": (round(ci.file_bytes / ci.n_rows, 3) if ci.n_rows else None),
        "size_breakdown": None,
        "codes_bytes_per_row": None,
        "header": header,
    }
    if ci.complete:
        try:
            sizes = _size_breakdown(path, ci.file_bytes, ci.embedded_model_bytes)
        except FileFormatError as exc:
            # info without --verify still describes a file whose chunks are damaged
            facts["size_breakdown_error"] = str(exc)
        else:
            facts["size_breakdown"] = sizes
            if ci.n_rows:
                facts["codes_bytes_per_row"] = round(sizes["codes"] / ci.n_rows, 3)
    return facts


def _size_breakdown(path: str, file_bytes: int, model_bytes: int) -> dict[str, int]:
    """Where a container's bytes go: ``model``, ``header``, ``ids``, ``codes``,
    ``missing_mask``, ``values`` (bounded values), ``overhead``; the seven add up to
    ``file_bytes``.

    ``codes`` is the packed codes alone (``bytes_per_row`` budgets them plus the
    ``values`` of the grid a budget chose, if any);
    ``missing_mask`` includes its 4-byte length field; ``header`` is the header block
    without the embedded model (magic, lengths, JSON, CRCs); ``overhead`` is each
    chunk's record (about 17 bytes; 32 in files of format version 2) and payload head,
    and the trailer (about 21 bytes; 28).  Reads every
    chunk (their CRCs are checked on the way).
    """
    sizes = {"codes": 0, "missing_mask": 0, "values": 0, "ids": 0}
    overhead = chunks_bytes = 0
    with ContainerReader(path) as reader:
        version = reader.format_version
        for k, n_rows, payload in reader.iter_chunks():
            parts = payload_sections(payload)
            for key in sizes:
                sizes[key] += parts[key]
            record = record_bytes(version, k, n_rows, len(payload))
            overhead += record + parts["head"]
            chunks_bytes += record + len(payload)
        end = len(trailer(version, reader.n_chunks or 0, reader.n_rows or 0))
    overhead += end
    # The header block is what precedes the first chunk: file - chunks - trailer.
    header = file_bytes - end - chunks_bytes - model_bytes
    return {"model": model_bytes, "header": header, "ids": sizes["ids"],
            "codes": sizes["codes"], "missing_mask": sizes["missing_mask"],
            "values": sizes["values"], "overhead": overhead}


def verify_container(path: str) -> None:
    """Every check ``vaekit decompress`` makes of ``path``, without writing anything.

    With an embedded model the file is decoded in full (the strongest check there
    is); without one, the header, the chunk sequence, every CRC and each chunk's
    payload layout are checked (the packed codes' length against the quantizer's
    bits; the codes themselves need the model).

    Raises
    ------
    FileFormatError
    """
    with ContainerReader(path) as reader:
        header = reader.header
        check_header(header, path)
        if header["model_embedded"] != bool(reader.embedded_model):
            raise FileFormatError(f"{path}: header key 'model_embedded' disagrees with the "
                                  "file's embedded model")
        embedded = bool(reader.embedded_model)
        if not embedded:
            # A model-referenced header (codec 3) names its quantizer by hash only: the
            # codes' length is checked when the model is at hand (decompress).
            quantizer = header_quantizer(header, path) if "quantizer" in header else None
            for k, n_rows, payload, _ in checked_chunks(reader, header, path):
                try:
                    sections = payload_sections(payload)
                    start = PAYLOAD_HEAD.size
                    # the codes decode to n_rows rows of the quantizer's bits, less the
                    # chunk's coarsening (bounded decompression; the latent values need
                    # the model, the codes do not)
                    if quantizer is not None:
                        _, flags, n_codes = PAYLOAD_HEAD.unpack_from(payload)
                        packed_with = chunk_code_bits(flags, n_codes, header, quantizer)
                        if packed_with is not None:  # a chunk without codes has none
                            unpack_codes(payload[start:start + sections["codes"]], n_rows,
                                         packed_with.bits)
                    if sections["ids"]:  # the exact columns: one value per row
                        ids = unpack_table(payload[len(payload) - sections["ids"]:],
                                           table_size_limit(n_rows, len(header["passthrough"])))
                        if len(ids) != n_rows:
                            raise FileFormatError(f"{len(ids)} rows of ids for {n_rows} rows")
                except FileFormatError as exc:
                    raise FileFormatError(f"{path}: chunk {k + 1}: {exc}") from None
    if embedded:
        for _ in iter_decompressed(path):
            pass
