"""Decoding a manifest of part containers (written by a parallel engine) with a model.

The manifest format itself is pure data (:mod:`vaekit.codec.manifest`); this module
adds the model: which one decodes the parts (:func:`vaekit.fitted.streams.resolve_model`,
the same rule as a single container) and the row-ordered stream of decoded chunks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from typing import IO, Any

import pandas as pd

from ..codec.manifest import Manifest, is_manifest, open_checked, read_manifest
from ..errors import FileFormatError
from .model import FittedVAE, as_fitted
from .streams import iter_decompressed, resolve_model

__all__ = ["iter_decompressed_any", "iter_decompressed_manifest", "manifest_model"]


def manifest_model(manifest: Manifest, model: Any = None,
                   device: str | None = None) -> FittedVAE:
    """The model to decode a manifest's parts with: ``model`` if it wrote them, else the
    model stored beside them (checked against its recorded SHA-256)."""
    blob = None
    if manifest.model is not None and (model is None or
                                       _fingerprint(model) != manifest.model_fingerprint):
        # the checked handle: its size and SHA-256 were verified, so read exactly that
        with open_checked(manifest, manifest.model, "model file") as fh:
            blob = fh.read(manifest.model.bytes)
    return resolve_model(manifest.model_fingerprint, blob, model, device, manifest.path)


def _fingerprint(model: Any) -> str:
    return as_fitted(model).fingerprint()


def iter_decompressed_manifest(path: str | os.PathLike[str], model: Any = None,
                               *, device: str | None = None) -> Iterator[Any]:
    """Decode all parts of a manifest, in row order, chunk by chunk.

    Parameters
    ----------
    path : path-like
        The manifest (``OUT.vkc`` written by a parallel engine).
    model : FittedVAE or fitted estimator, optional
        The model that compressed the parts; ``None``: the model stored beside them.
    device : str, optional
        Device for a stored model.

    Yields
    ------
    DataFrame, ndarray or image array
        As :func:`~vaekit.fitted.streams.iter_decompressed`; DataFrames are indexed
        by row position in the whole data set, so the output equals that of one
        container holding the same rows.

    Raises
    ------
    FileFormatError
        Damaged or missing part, a part replaced by another file, or wrong model.
    """
    manifest = read_manifest(path)  # every part a regular file of its recorded size
    fitted = manifest_model(manifest, model, device)
    offset = 0
    for i, part in enumerate(manifest.parts):
        label = f"part {i + 1} of {len(manifest.parts)}"
        # Decode from the handle whose bytes were hashed: a part swapped for a FIFO,
        # a device or another file after the check is never read.
        with open_checked(manifest, part, label) as fh, \
                closing(_decoded(iter_decompressed(fh, fitted, device=device),
                                 f"{manifest.path}: {label}")) as chunks:
            rows = 0
            for values in chunks:
                if isinstance(values, pd.DataFrame):
                    values.index = pd.RangeIndex(offset + rows, offset + rows + len(values))
                rows += len(values)
                if rows > part.rows:  # stop at once, not after decoding the rest
                    break
                yield values
        if rows != part.rows:
            raise FileFormatError(f"{manifest.path}: part {i + 1} holds "
                                  f"{'at least ' if rows > part.rows else ''}{rows} rows, "
                                  f"the manifest says {part.rows}")
        offset += rows


def _decoded(chunks: Iterator[Any], where: str) -> Iterator[Any]:
    """``chunks``, with a format error from decoding prefixed by the manifest and part."""
    try:
        yield from chunks
    except FileFormatError as exc:
        raise FileFormatError(f"{where}: {exc}") from exc


def iter_decompressed_any(source: str | os.PathLike[str] | IO[bytes], model: Any = None, *,
                          device: str | None = None) -> Iterator[Any]:
    """Decode a single ``.vkc`` container or a manifest of parts, whichever ``source`` is.

    A drop-in replacement for :func:`~vaekit.fitted.streams.iter_decompressed`
    (file objects are always read as containers).
    """
    if isinstance(source, (str, os.PathLike)) and is_manifest(source):
        return iter_decompressed_manifest(source, model, device=device)
    return iter_decompressed(source, model, device=device)
