"""Rows <-> ``.vkc`` containers through a fitted VAE: the codec's streaming API.

This module is the bridge between a fitted model (:class:`~vaekit.fitted.FittedVAE`)
and the container (:mod:`vaekit.codec.container`).  A row is stored as its
quantized posterior mean (:mod:`vaekit.codec.quantize`), bit-packed and
zstd-coded (:func:`~vaekit.codec.packing.pack_codes`); identifier columns travel
losslessly beside the codes (:func:`~vaekit.codec.packing.pack_table`).

Public API (stable; the ``vaekit compress`` / ``decompress`` CLI is built on it):

* :class:`CompressedWriter` -- streaming writer: ``write()`` any number of rows,
  chunks of exactly ``chunk_rows`` rows are written as they fill, so memory is
  bounded by one chunk and the bytes do not depend on how the input was split.
* :func:`iter_decompressed` -- streaming reader: yields one decoded chunk at a time
  in the input's own form (DataFrame / ndarray / images).
* :func:`compress_chunk` / :func:`decompress_chunk` -- the pure per-chunk
  functions both of them use (and that a parallel engine can call).
* :func:`model_fingerprint`, :func:`quantizer_for`, :func:`container_header`.

Header keys and the chunk payload layout are specified in ``FORMAT.md`` (section
"Header keys and chunk payload").
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import IO, Any

import numpy as np
import pandas as pd

from ..codec.container import (
    CODEC_NAME,
    CODEC_VERSION,
    DEFAULT_CHUNK_ROWS,
    FORMAT_VERSION,
    MAX_CHUNK_ROWS,
    ContainerReader,
    ContainerWriter,
)
from ..codec.quantize import LatentQuantizer
from ..errors import DataError, FileFormatError
from .bounded import header_bounds, resolve_bounds
from .chunks import compress_chunk, container_header, decompress_chunk, names_of
from .container_checks import check_header, checked_chunks, resolve_quantizer
from .model import FittedVAE, as_fitted
from .stream_ids import check_id_lengths
from .workers import single_threaded, worker_pool

__all__ = [
    "CODEC_NAME",
    "CODEC_VERSION",
    "DEFAULT_CHUNK_ROWS",
    "CompressedWriter",
    "compress_chunk",
    "container_header",
    "decompress_bytes",
    "decompress_chunk",
    "iter_decompressed",
    "load_embedded_model",
    "model_fingerprint",
    "quantizer_for",
    "writer_bounds",
]

# A chunk's working set: rows x (model columns or pixels + latent dims) at most this
# many cells (256 MB of float32), so a chunk_rows far above DEFAULT_CHUNK_ROWS is
# refused for wide rows by the writer and by the reader before decoding.
MAX_CHUNK_CELLS = 2**26
# CompressedWriter(max_abs_error=MODEL_GRID): the value grid the model chose, if any.
MODEL_GRID = "model"


# --------------------------------------------------------------------------- model side


def model_fingerprint(model: Any) -> str:
    """The decoding fingerprint of a model (:meth:`FittedVAE.fingerprint`)."""
    return as_fitted(model).fingerprint()


def quantizer_for(model: Any) -> LatentQuantizer:
    """The model's stored quantizer or its default (:meth:`FittedVAE.default_quantizer`)."""
    return as_fitted(model).default_quantizer()


def load_embedded_model(blob: bytes, device: str | None = None) -> FittedVAE:
    """The fitted model embedded in a container (model-file bytes; no pickle)."""
    return FittedVAE.from_bytes(blob, device=device, source="embedded model")


# --------------------------------------------------------------------------- streaming


def writer_bounds(model: FittedVAE, max_abs_error: float | Mapping[str, float] | str | None
                  ) -> tuple[float | Mapping[str, float] | None, list[float | None] | None]:
    """``(max_abs_error, bounds)`` a writer stores values with: ``"model"`` replaced by
    the grid the model chose (or None: the latent code alone), and the bound of each
    column (:func:`.bounded.resolve_bounds`), checked.

    Raises
    ------
    ValueError
        Another string than ``"model"``.
    DataError
        A bound the model cannot take (negative, not finite, an unknown column, ...).
    """
    if isinstance(max_abs_error, str):
        if max_abs_error != MODEL_GRID:
            raise ValueError(f"max_abs_error is {max_abs_error!r}: a number, a dict of "
                             f"numbers, None or {MODEL_GRID!r}")
        max_abs_error = model.extra.get("grid_bound")
    return max_abs_error, (None if max_abs_error is None
                           else resolve_bounds(model, max_abs_error))


class CompressedWriter:
    """Compress rows to a ``.vkc`` container, chunk by chunk, in bounded memory.

    Parameters
    ----------
    target : str, os.PathLike or binary file object
        Destination.  Paths are written atomically (temporary file + rename on
        :meth:`close`); a file object (e.g. ``sys.stdout.buffer``) is written in place.
    model : FittedVAE
        Its quantizer (:func:`quantizer_for`) and :func:`model_fingerprint` go into
        the header.
    id_columns : sequence of str
        DataFrame columns carried losslessly (ids, join keys).  Every other column
        of the input must be a model column.
    embed_model : bool
        Store the model file inside the container (self-contained archive; costs the
        model's size once per file).
    chunk_rows : int
        Rows per chunk (default :data:`DEFAULT_CHUNK_ROWS`).  At most ``chunk_rows``
        rows are buffered between :meth:`write` calls.
    n_rows : int, optional
        Total rows, if known up front: recorded in the header and checked on close.
    threads : int
        Chunks encoded at once, each on one compute thread (:mod:`.workers`); up to
        ``threads + 1`` chunks are then held.  The bytes are the same for any value.
    max_abs_error : float, dict, None or "model"
        Store every value within this error as well (tables; :mod:`.bounded`): one
        bound in multiples of each numeric column's training SD, or a dict of bounds
        in the columns' own units; 0 = lossless.  Levels are always exact and blanks
        stay blank.  ``None``: the latent code alone.  ``"model"`` (default): the
        grid a budget-fitted model chose (``grid_bound`` in its file;
        :mod:`.grid_choice`), else the latent code alone.
    self_describing : bool
        Copy the model's schema and quantizer into the header (a few KB), so that
        ``vaekit info --verify`` checks the codes without the model.  Default: the
        header names the model and its quantizer by hash (under 1 KB for tables).

    Notes
    -----
    The header is written with the first chunk (it records the column order of the
    first DataFrame written).  Output bytes depend only on the rows, the model and
    the parameters above (not ``threads``), not on how the rows were split across
    :meth:`write` calls.

    Examples
    --------
    >>> with CompressedWriter("out.vkc", model, id_columns=["id"]) as w:  # doctest: +SKIP
    ...     for frame in pd.read_csv("big.csv", chunksize=10_000):
    ...         w.write(frame)
    """

    def __init__(self, target: str | os.PathLike[str] | IO[bytes], model: Any, *,
                 id_columns: Sequence[str] = (), embed_model: bool = False,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, n_rows: int | None = None,
                 threads: int = 1,
                 max_abs_error: float | Mapping[str, float] | str | None = MODEL_GRID,
                 self_describing: bool = False) -> None:
        model = as_fitted(model)
        max_abs_error, self._bounds = writer_bounds(model, max_abs_error)
        self._self_describing = bool(self_describing)
        self._header_bounds = (None if self._bounds is None
                               else header_bounds(max_abs_error, self._bounds))
        _check_chunk_rows(int(chunk_rows), model, ValueError, "chunk_rows")
        if id_columns and model.input_kind != "tabular":
            raise DataError("id columns need tabular (DataFrame) input")
        self._target = target
        self._model = model
        self._quantizer = model.default_quantizer()
        self._ids = [str(c) for c in id_columns]
        self._embed = bool(embed_model)
        self._chunk_rows = int(chunk_rows)
        self._expected = n_rows
        self._writer: ContainerWriter | None = None
        self._pending: list[tuple[Any, dict[str, np.ndarray] | None]] = []
        self._n_pending = 0
        self._closed = False
        self._threads = max(1, int(threads))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_threads: ExitStack | None = None
        self._inflight: deque[tuple[Future[bytes], int]] = deque()
        self.max_buffered_rows = 0
        """Most rows held between :meth:`write` calls so far (always < ``chunk_rows``)."""

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk."""
        return self._chunk_rows

    @property
    def quantizer(self) -> LatentQuantizer:
        """The quantizer used for the codes."""
        return self._quantizer

    @property
    def n_rows(self) -> int:
        """Rows accepted so far (written or buffered)."""
        return ((self._writer.n_rows if self._writer else 0)
                + sum(n for _, n in self._inflight) + self._n_pending)

    @property
    def bytes_written(self) -> int:
        """Bytes written to the target so far."""
        return self._writer.bytes_written if self._writer else 0

    def _open(self, sample: Any) -> ContainerWriter:
        columns = None
        if isinstance(sample, pd.DataFrame):
            columns = names_of(sample.columns)
        elif self._model.input_kind == "tabular" and self._model.input_form == "frame":
            # nothing written: model columns, then the id columns
            names = self._model.column_names
            columns = names + [c for c in self._ids if c not in names]
        header = container_header(self._model, self._quantizer, columns=columns,
                                  id_columns=self._ids, chunk_rows=self._chunk_rows,
                                  n_rows=self._expected, embedded=self._embed,
                                  bounds=self._header_bounds,
                                  self_describing=self._self_describing)
        blob = b""
        if self._embed:
            blob = self._model.to_bytes()
        # A self-describing file without bounds (codec 2) keeps the container format
        # of the vaekit before codec 6 as well, so that vaekit still reads it.
        return ContainerWriter(self._target, header, blob,
                               format_version=2 if header["codec_version"] <= 2 else
                               FORMAT_VERSION)

    def write(self, X: Any, prepared: dict[str, np.ndarray] | None = None) -> None:
        """Add rows (a DataFrame, a 2-D array or an image array); full chunks are written.

        ``prepared``: the model's input arrays for exactly these rows
        (``model.prepare`` of their model columns), when the caller has them -- a
        reader thread can prepare the next rows while these are encoded.  The bytes
        are the same with or without.
        """
        if self._closed:
            raise ValueError("write on a closed CompressedWriter")
        if prepared is not None and any(len(v) != len(X) for v in prepared.values()):
            raise ValueError("prepared arrays do not have one row per row written")
        if isinstance(X, pd.DataFrame) and self._writer is not None:
            want = self._columns
            if names_of(X.columns) != want:
                raise DataError(f"columns {names_of(X.columns)} differ from the first "
                                f"write's {want}")
        try:
            if self._ids and isinstance(X, pd.DataFrame):
                check_id_lengths(X, self._ids, self.n_rows)
            if self._writer is None:
                self._writer = self._open(X)
                self._columns = names_of(X.columns) if isinstance(X, pd.DataFrame) else None
            start = 0
            n = len(X)
            # Fill the pending chunk first, then cut full chunks straight from X, so
            # at most chunk_rows - 1 rows are ever copied into the buffer.
            if self._n_pending:
                take = min(n, self._chunk_rows - self._n_pending)
                self._pending.append((_rows(X, 0, take), _rows(prepared, 0, take)))
                self._n_pending += take
                start = take
                if self._n_pending == self._chunk_rows:
                    self._flush(*_concat_pending(self._pending))
            while n - start >= self._chunk_rows:
                stop = start + self._chunk_rows
                self._flush(_rows(X, start, stop), _rows(prepared, start, stop))
                start = stop
            if start < n:
                self._pending.append((_rows(X, start, n), _rows(prepared, start, n)))
                self._n_pending += n - start
            self.max_buffered_rows = max(self.max_buffered_rows, self._n_pending)
        except BaseException:
            self.abort()
            raise

    def _flush(self, rows: Any, prepared: dict[str, np.ndarray] | None = None) -> None:
        assert self._writer is not None
        if self._threads == 1:
            payload = compress_chunk(rows, self._model, self._quantizer, self._ids,
                                     bounds=self._bounds, prepared=prepared)
            self._writer.write_chunk(payload, len(rows))
        else:
            if self._pool is None:
                self._pool_threads = ExitStack()
                self._pool_threads.enter_context(single_threaded(self._model))
                self._pool = worker_pool(self._model, self._threads, "vaekit-compress")
            self._inflight.append((self._pool.submit(
                compress_chunk, rows, self._model, self._quantizer, self._ids, False,
                self._bounds, prepared),
                len(rows)))
            # Chunks go to the file in order; at most `threads` are being encoded.
            while len(self._inflight) > self._threads:
                self._write_oldest()
        self._pending, self._n_pending = [], 0

    def _write_oldest(self) -> None:
        future, n = self._inflight[0]
        payload = future.result()  # a worker's error is raised here, in row order
        self._inflight.popleft()
        assert self._writer is not None
        self._writer.write_chunk(payload, n)

    def _stop_pool(self) -> None:
        for future, _ in self._inflight:
            future.cancel()
        self._inflight.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._pool_threads is not None:
            self._pool_threads.close()  # the thread settings as they were
            self._pool_threads = None

    def close(self) -> None:
        """Write the last (partial) chunk and the trailer; publish the file."""
        if self._closed:
            return
        try:
            if self._writer is None:
                self._writer = self._open(None)
            if self._n_pending:
                self._flush(*_concat_pending(self._pending))
            while self._inflight:
                self._write_oldest()
            self._stop_pool()
            if self._expected is not None and self._writer.n_rows != self._expected:
                raise DataError(f"{self._writer.n_rows} rows were written, but n_rows="
                                f"{self._expected} was promised")
            self._writer.close()
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Give up: remove the temporary file (paths); the target is left untouched."""
        self._closed = True
        self._pending, self._n_pending = [], 0
        self._stop_pool()
        if self._writer is not None:
            self._writer.abort()

    def __enter__(self) -> CompressedWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _rows(X: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a frame, an array or a dict of prepared arrays (or None)."""
    if X is None:
        return None
    if isinstance(X, dict):
        return {k: v[start:stop] for k, v in X.items()}
    return X.iloc[start:stop] if isinstance(X, pd.DataFrame) else np.asarray(X)[start:stop]


def _concat(pieces: list[Any]) -> Any:
    if len(pieces) == 1:
        return pieces[0]
    if isinstance(pieces[0], pd.DataFrame):
        return pd.concat(pieces, axis=0, ignore_index=True)
    return np.concatenate(pieces, axis=0)


def _concat_pending(pending: list[tuple[Any, dict[str, np.ndarray] | None]]
                    ) -> tuple[Any, dict[str, np.ndarray] | None]:
    """The buffered rows as one chunk, with their prepared arrays when every piece
    has them (else None: the chunk is prepared when coded)."""
    rows = _concat([r for r, _ in pending])
    preps = [p for _, p in pending]
    if any(p is None for p in preps):
        return rows, None
    return rows, {k: np.concatenate([p[k] for p in preps], axis=0)  # type: ignore[index]
                  for k in preps[0]}  # type: ignore[union-attr]


def resolve_model(want: str, blob: bytes | None, model: Any, device: str | None,
                  name: str) -> FittedVAE:
    """The model to decode a file with: the given one, which must have written the
    file, or else the embedded one.  The one model resolver of containers and manifests.

    A model the user names is never silently replaced by the one embedded in the file
    (a stranger's file must not choose the model that runs): a mismatch is an error.

    Parameters
    ----------
    want : str
        The file's model fingerprint: 64 hex digits, or (a compact codec-6 header) its
        first 16, which a model's fingerprint must start with.
    blob : bytes or None
        The embedded model file, if any.
    model : FittedVAE, fitted estimator or None
    name : str
        The file, for messages.
    """
    if len(want) not in (16, 64):  # a prefix match must never match on nothing
        raise FileFormatError(f"{name}: the model fingerprint is not 16 or 64 hex digits")
    if model is not None:
        model = as_fitted(model)
        have = model.fingerprint()
        if have[:len(want)] == want:
            return model
        hint = ("leave out the model (-m) to use the one embedded in it" if blob else
                "decompress with the model that compressed it, or compress with the "
                "model embedded (vaekit compress --embed-model; embed_model=True in Python)")
        raise FileFormatError(
            f"{name}: wrong model: the file was written by model {want[:16]}..., the "
            f"given model is {have[:16]}...; {hint}"
        )
    if not blob:
        raise FileFormatError(
            f"{name}: no model is embedded in or stored with this file; pass the model "
            f"that compressed it (fingerprint {want[:16]}...)"
        )
    embedded = load_embedded_model(blob, device=device)
    if embedded.fingerprint()[:len(want)] != want:
        raise FileFormatError(f"{name}: the embedded model does not match the "
                              "header's model fingerprint")
    return embedded


def _check_model(header: dict[str, Any], model: FittedVAE, source: str) -> None:
    """Refuse a header that does not describe ``model``'s rows (it would decode wrongly)."""
    for key, have in (("input_kind", model.input_kind), ("input_form", model.input_form),
                      ("latent_dim", model.latent_dim)):
        if header[key] != have:
            raise FileFormatError(f"{source}: header key {key!r} is {header[key]!r}; the "
                                  f"model has {have!r}")
    columns = header.get("columns", ...)
    if columns is ...:  # a compact header (codec 6): the model's own columns
        if model.input_form != "frame":
            raise FileFormatError(f"{source}: header key 'columns' is missing")
    elif columns is not None:
        want = set(model.column_names) | set(header["passthrough"])
        if model.input_form != "frame" or set(columns) != want:
            raise FileFormatError(f"{source}: header key 'columns' does not list the "
                                  "model's columns and the passthrough columns")
    elif header["passthrough"]:
        raise FileFormatError(f"{source}: header key 'passthrough' needs 'columns'")
    _check_chunk_rows(header["chunk_rows"], model, FileFormatError, f"{source}: header key "
                      "'chunk_rows'")


def _check_chunk_rows(rows: int, model: FittedVAE, error: type[Exception], what: str) -> None:
    width = model.n_features + model.latent_dim
    if not 1 <= rows <= MAX_CHUNK_ROWS or rows * width > MAX_CHUNK_CELLS:
        raise error(f"{what} is {rows}; with {width} values per row it must be in "
                    f"1..{min(MAX_CHUNK_ROWS, MAX_CHUNK_CELLS // width)}")


def iter_decompressed(source: str | os.PathLike[str] | IO[bytes],
                      model: Any = None, *,
                      device: str | None = None) -> Iterator[Any]:
    """Decode a ``.vkc`` file chunk by chunk, in the input's own form.

    Parameters
    ----------
    source : path or binary file object
        Streams (pipes) work: one chunk is held in memory at a time.
    model : FittedVAE or fitted estimator, optional
        The model that compressed the file.  ``None``: use the model embedded in
        the file.  A model that did not write the file is refused
        (:class:`~vaekit.errors.FileFormatError` naming both fingerprints).
    device : str, optional
        Device for an embedded model (default: its saved setting, CPU if absent).

    Yields
    ------
    DataFrame, ndarray or image array
        One per chunk (at most ``chunk_rows`` rows).  DataFrames carry the id
        columns exactly as written, in the original column order, indexed by row
        position in the file.

    Raises
    ------
    FileFormatError
        Damaged, truncated or foreign file, or wrong model.
    """
    with ContainerReader(source) as reader:
        name = (os.fspath(source) if isinstance(source, (str, os.PathLike))
                else str(getattr(source, "name", "container")))
        header = reader.header
        check_header(header, name)
        if header["model_embedded"] != bool(reader.embedded_model):
            raise FileFormatError(f"{name}: header key 'model_embedded' disagrees with the "
                                  "file's embedded model")
        model = resolve_model(header["model_fingerprint"], reader.embedded_model, model,
                              device, name)
        _check_model(header, model, name)
        quantizer = resolve_quantizer(header, model, name)  # checked_chunks checks the rows
        for k, n_rows, payload, offset in checked_chunks(reader, header, name):
            try:
                yield decompress_chunk(payload, n_rows, model, header, row_offset=offset,
                                       quantizer=quantizer)
            except FileFormatError as exc:
                raise FileFormatError(f"{name}: chunk {k + 1}: {exc}") from None


def join_chunks(parts: list[Any], model: FittedVAE) -> Any:
    """Decoded chunks joined into one output (zero rows in the input's form if none)."""
    return _concat(parts) if parts else model.empty_output()


def decompress_bytes(data: bytes, model: FittedVAE) -> Any:
    """A whole in-memory container decoded into one output (:func:`iter_decompressed`
    then :func:`join_chunks`)."""
    return join_chunks(list(iter_decompressed(io.BytesIO(data), model)), model)
