"""The ``.vkc`` container: a versioned, checksummed, streamable file of row chunks.

A container holds one JSON header (defined by the caller; stored zstd-compressed
under a fixed dictionary since format version 2), an optional embedded
model blob and any number of chunks of opaque payload bytes, each tagged with the
number of rows it encodes, followed by a trailer.  Every part carries a CRC32, so a
single flipped bit anywhere in the file is reported as a :class:`FileFormatError`
that names the damaged part; a file cut short anywhere is reported as truncated.
The byte-level layout is specified in ``FORMAT.md`` next to this module.

Writing is streaming (chunks go to disk as they are produced) and, for paths,
atomic: data goes to a temporary file in the destination directory that is renamed
onto the final name only when the writer closes without error.  Reading is
streaming too: :meth:`ContainerReader.iter_chunks` holds one chunk at a time.

Chunks are numbered from 0 in the API (``chunk_index``); error messages count them
from 1 for people ("chunk 1 of 40" is the chunk with index 0).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ..errors import FileFormatError
from ..files.atomic import AtomicFile
from .guards import MAX_HEADER_JSON_BYTES, Source, load_json, open_regular
from .records import (
    CHUNK_TAG,
    END_MAGIC,
    FIXED_TRAILER_SIZE,
    TRAILER_TAG,
    chunk_head,
    crc,
    probe_trailer,
    read_chunk_head,
    read_trailer,
    trailer,
)

__all__ = [
    "MAGIC",
    "END_MAGIC",
    "FORMAT_VERSION",
    "ContainerInfo",
    "ContainerReader",
    "ContainerWriter",
    "read_header",
    "read_info",
]

# PNG-style signature: the non-ASCII first byte marks the file as binary (and catches
# 7-bit transfers), "VKC" names it, CR LF / LF catch newline translation and 0x1A
# stops ``type`` on DOS.  No valid UTF-8 or ASCII text starts with 0x89.
MAGIC = b"\x89VKC\r\n\x1a\n"
# 2: the header JSON is stored as a zstd frame under HEADER_DICTIONARY (about a
# quarter of its size: the header is most of a short file); version-1 files (plain
# JSON) still read.
# 3: chunk records and the trailer write their numbers as uvarints (vaekit.codec.records:
# 17 + 21 bytes instead of 32 + 28 for a one-chunk file).
FORMAT_VERSION = 3
# The zstd raw-content dictionary of version-2 header JSON (FORMAT.md, "Header
# block"): typical header text, so a header costs little more than its own values.
# Part of the format: never change these bytes within a format version.
HEADER_DICTIONARY = (
    b'{"format_version":2,"codec":"vaekit-latent-codes","codec_version":3,'
    b'"vaekit_version":"0.1.0","model_fingerprint":"","model_embedded":false,'
    b'"input_kind":"image","input_form":"array","schema":{"kind":"tabular","columns":'
    b'[{"name":"","kind":"numeric","dtype":"float64"}]},"quantizer":{"bits":[],'
    b'"lo":[],"step":[],"center":[]},"input_kind":"tabular","input_form":"frame",'
    b'"latent_dim":,"quantizer_sha256":"","columns":["x0","x1","x2"],"passthrough":[],'
    b'"chunk_rows":4096,"n_rows":null,"value_bounds":{"sd_units":0.1}}0123456789abcdef')
# The header's "codec" and "codec_version" for rows stored as quantized latent codes.
CODEC_NAME = "vaekit-latent-codes"
# 2: a chunk may carry a missing mask (payload flag bit 1); version-1 files still read.
# 3: a header that names the model instead of copying its schema and quantizer, and
# error-bounded values (header key "value_bounds", payload flag bit 2).  Self-describing
# files without bounds are still version 2.
# 4: a lossless float column may be coded as pcodec of its floats (bounded-values coder
# 7).
# 5: float grids of bounded values are decimal ones (cells rounded to a decimal step)
# and dates and times are stored as nanoseconds (vaekit.fitted.grids).
# 6: compact files: the bounded-values section with uvarint lengths, one rANS stack per
# chunk and an adaptive order-0 coder (vaekit.codec.values), and a model-referenced
# header that names the model and quantizer by 16 hex digits and may leave out
# "columns" (vaekit.fitted.container_checks).
# 7: integer grids take the odd step 2 floor(bound) + 1 (vaekit.fitted.grids).
# CODEC_VERSION is the newest version this vaekit reads, and the one it writes for
# files with bounded values; files without are written as the oldest version that
# reads them (6 for a model-referenced header; 2, in container format 2, for a
# self-describing one, so that a vaekit from before version 6 reads it).
CODEC_VERSION = 7
# Rows per chunk a writer uses by default.  4096 rows keep a chunk's working set small
# (a chunk of 28x28 images is 12.8 MB of float32 pixels) while the per-chunk framing
# (chunk record, payload head, layout byte, zstd frame header and checksum: about 40
# bytes) costs about 0.01 bytes per row.
DEFAULT_CHUNK_ROWS = 4096
# Most rows a chunk (and the header's "chunk_rows") may declare: a reader refuses
# more before decoding anything, so a chunk's working set stays bounded.
MAX_CHUNK_ROWS = 2**20

# magic, format version, its bitwise complement (so a flipped bit in the version is
# "corrupt", not "newer"), JSON length (bytes), model length (bytes).
_VERSION = struct.Struct("<8sHH")
_LENGTHS = struct.Struct("<IQ")
_CRC = struct.Struct("<I")

_PREFIX_SIZE = _VERSION.size + _LENGTHS.size + _CRC.size  # 28 bytes

_MAX_CHUNKS = 2**32 - 1
_MAX_ROWS = 2**64 - 1
# Sizes a reader refuses before reading (FORMAT.md, "Bounds"), and a writer before
# writing (the header JSON: guards.MAX_HEADER_JSON_BYTES): a model file holds a
# small network, a chunk at most MAX_CHUNK_ROWS rows.
MAX_EMBEDDED_MODEL_BYTES = 2**30
MAX_CHUNK_PAYLOAD_BYTES = 2**30


_crc = crc


# --------------------------------------------------------------------------- writing


def _encode_header(header: dict[str, Any], version: int = FORMAT_VERSION) -> bytes:
    """Serialize the caller's header dict to UTF-8 JSON with ``format_version`` first.

    Key order is kept (it can carry meaning, e.g. column order in a schema), so the
    same dict built the same way always gives the same bytes.
    """
    if not isinstance(header, dict):
        raise TypeError(f"header must be a dict, not {type(header).__name__}")
    given = header.get("format_version", version)
    if given != version or isinstance(given, bool):
        raise ValueError(
            f"header key 'format_version' is reserved for the container format "
            f"({version}); got {given!r}"
        )
    body = {"format_version": version}
    body.update((k, v) for k, v in header.items() if k != "format_version")
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"header must be JSON-serializable (no NaN/inf): {exc}") from exc
    data = text.encode("utf-8")
    try:
        load_json(data)  # what a reader refuses, a writer does not write
    except ValueError as exc:
        raise ValueError(f"header JSON: {exc}") from None
    return data


def _header_dictionary() -> Any:
    import zstandard as zstd

    return zstd.ZstdCompressionDict(HEADER_DICTIONARY, dict_type=zstd.DICT_TYPE_RAWCONTENT)


def compress_header_json(header_json: bytes) -> bytes:
    """The stored form of a version-2 header: one zstd frame (content size, no
    checksum -- the header CRC covers it -- no dictionary ID) under
    :data:`HEADER_DICTIONARY`."""
    import zstandard as zstd

    return zstd.ZstdCompressor(level=19, dict_data=_header_dictionary(), write_checksum=False,
                               write_content_size=True, write_dict_id=False
                               ).compress(header_json)


def _header_block(stored_json: bytes, model: bytes, version: int = FORMAT_VERSION) -> bytes:
    """File header: magic, version, lengths + their CRC, the header JSON as stored
    (:func:`compress_header_json` from version 2 on), model, CRC of it all."""
    prefix = _VERSION.pack(MAGIC, version, version ^ 0xFFFF)
    prefix += _LENGTHS.pack(len(stored_json), len(model))
    prefix += _CRC.pack(_crc(prefix))
    return prefix + stored_json + model + _CRC.pack(_crc(prefix, stored_json, model))


def _is_fileobj(target: object) -> bool:
    return hasattr(target, "write") and not isinstance(target, (str, bytes, os.PathLike))


class ContainerWriter:
    """Write a ``.vkc`` container chunk by chunk.

    Parameters
    ----------
    target : str, os.PathLike or binary file object
        Destination path, or an already-open binary file object (e.g.
        ``sys.stdout.buffer``).  For a path, bytes go to a temporary file
        ``.<name>.<random>.tmp`` in the same directory (:class:`vaekit.files.atomic.AtomicFile`),
        which is fsynced and renamed onto ``target`` by :meth:`close`; on error it is removed and an existing file
        at ``target`` is left untouched.  A file object is written in place, flushed
        but not closed; if writing fails part-way it simply lacks the trailer, which
        any reader reports as truncated.
    header : dict
        JSON-serializable metadata (model fingerprint, quantizer parameters, schema,
        ...).  The key ``"format_version"`` is reserved: it is set to
        ``format_version`` (and must equal it if given).  Key order is kept.
    embedded_model : bytes, optional
        Opaque blob stored in the header block (e.g. a serialized model); may be
        empty.
    format_version : int, optional
        2 writes the fixed-width chunk records and trailer of format version 2 (what
        readers before version 3 read); default :data:`FORMAT_VERSION`.

    Examples
    --------
    >>> with ContainerWriter("out.vkc", {"model": "abc"}) as w:   # doctest: +SKIP
    ...     w.write_chunk(payload, n_rows=4096)
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[bytes],
        header: dict[str, Any],
        embedded_model: bytes = b"",
        *,
        format_version: int = FORMAT_VERSION,
    ) -> None:
        if format_version not in (2, FORMAT_VERSION):
            raise ValueError(f"format_version must be 2 or {FORMAT_VERSION}, not "
                             f"{format_version!r}")
        self._version = format_version
        header_json = _encode_header(header, format_version)  # validate before the disk
        if len(embedded_model) > MAX_EMBEDDED_MODEL_BYTES:
            raise ValueError(f"embedded model of {len(embedded_model)} bytes; the limit "
                             f"is {MAX_EMBEDDED_MODEL_BYTES}")
        block = _header_block(compress_header_json(header_json), bytes(embedded_model),
                              format_version)
        self._atomic: AtomicFile | None = None
        self._n_chunks = 0
        self._n_rows = 0
        self._bytes = 0
        self._closed = False
        if _is_fileobj(target):
            self._file: IO[bytes] = target  # type: ignore[assignment]
        else:
            self._atomic = AtomicFile(target)  # type: ignore[arg-type]
            self._file = self._atomic.fh
        try:
            self._write(block)
        except BaseException:
            self.abort()
            raise

    def _write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._bytes += len(data)

    @property
    def n_chunks(self) -> int:
        """Chunks written so far."""
        return self._n_chunks

    @property
    def n_rows(self) -> int:
        """Rows written so far (sum of ``n_rows`` over chunks)."""
        return self._n_rows

    @property
    def bytes_written(self) -> int:
        """Bytes written so far, including the trailer once closed."""
        return self._bytes

    def write_chunk(self, payload: bytes | bytearray | memoryview, n_rows: int) -> None:
        """Append one chunk.

        Parameters
        ----------
        payload : bytes-like
            The chunk's bytes (may be empty); opaque to the container.
        n_rows : int
            Number of rows the payload encodes (>= 0); summed into the trailer.
        """
        if self._closed:
            raise ValueError("write_chunk on a closed ContainerWriter")
        n_rows = int(n_rows)
        if not 0 <= n_rows <= _MAX_ROWS or self._n_rows + n_rows > _MAX_ROWS:
            raise ValueError(f"n_rows must be in [0, 2**64) in total, got {n_rows}")
        if self._n_chunks >= _MAX_CHUNKS:
            raise ValueError(f"a container holds at most {_MAX_CHUNKS} chunks")
        data = memoryview(payload).cast("B")
        if len(data) > MAX_CHUNK_PAYLOAD_BYTES:
            raise ValueError(f"chunk payload of {len(data)} bytes; the limit is "
                             f"{MAX_CHUNK_PAYLOAD_BYTES}")
        head = chunk_head(self._version, self._n_chunks, n_rows, len(data))
        try:
            self._write(head)
            self._write(data)
            self._write(_CRC.pack(_crc(head, data)))
        except BaseException:
            self.abort()
            raise
        self._n_chunks += 1
        self._n_rows += n_rows

    def close(self) -> None:
        """Write the trailer and publish the file (atomic rename for paths).

        Calling it again is a no-op.  If publishing fails the temporary file is
        removed and the exception propagates.
        """
        if self._closed:
            return
        try:
            self._write(trailer(self._version, self._n_chunks, self._n_rows))
            self._file.flush()
            if self._atomic is not None:
                self._atomic.commit()
                self._atomic = None
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Give up: remove the temporary file (paths) and mark the writer closed.

        The final path is never touched.  For a file object nothing can be taken
        back; the output lacks its trailer and readers report it as truncated.
        """
        self._closed = True
        if self._atomic is not None:
            self._atomic.abort()
            self._atomic = None

    def __enter__(self) -> ContainerWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ContainerInfo:
    """Summary of a container, as shown by ``vaekit info``.

    Attributes
    ----------
    header : dict
        The caller's header (including ``"format_version"``).
    format_version : int
    embedded_model_bytes : int
        Size of the embedded model blob in bytes (0 if none).
    n_chunks, n_rows : int or None
        From the trailer; ``None`` when the trailer is missing or damaged
        (the file is truncated or corrupt).
    file_bytes : int
        Size of the file in bytes.
    """

    header: dict[str, Any]
    format_version: int
    embedded_model_bytes: int
    n_chunks: int | None
    n_rows: int | None
    file_bytes: int

    @property
    def complete(self) -> bool:
        """True when the trailer is present and intact (chunk CRCs not checked)."""
        return self.n_chunks is not None


class ContainerReader:
    """Read and validate a ``.vkc`` container, streaming its chunks.

    Opening reads and checks the magic bytes, format version and header block
    (raising :class:`FileFormatError` if any is wrong).  For a seekable source the
    trailer is read first (by seeking to the end) so that :attr:`n_chunks` and
    :attr:`n_rows` are known up front and error messages can say "chunk 17 of 40".

    Parameters
    ----------
    source : str, os.PathLike or binary file object
        A path (opened and closed by the reader) or an open binary file object
        positioned at the start of the container (not closed by the reader; may be
        non-seekable, e.g. ``sys.stdin.buffer``).

    Notes
    -----
    Memory use is bounded by the largest chunk payload (about twice that for
    non-seekable streams, which are read in pieces) plus the header.
    """

    def __init__(self, source: str | os.PathLike[str] | IO[bytes]) -> None:
        if hasattr(source, "read"):
            f: IO[bytes] = source  # type: ignore[assignment]
            self._owns = False
            name = str(getattr(f, "name", "<stream>"))
        else:
            name = os.fspath(source)  # type: ignore[arg-type]
            f = open_regular(name)  # closed by close() / __exit__
            self._owns = True
        self._f = f
        self._trailer: tuple[int, int] | None = None
        self._consumed = False
        try:
            self._src = Source(f, name)
            head = self._read_version()  # the magic first, before anything else
            self._format_version = _VERSION.unpack(head)[1]
            self._trailer_size = FIXED_TRAILER_SIZE  # until the probe finds the trailer
            if self._src.seekable:
                self._trailer = self._probe_trailer()
                self._src.seek(_VERSION.size)
            self._read_header(head)
        except BaseException:
            self.close()
            raise

    # -- header ------------------------------------------------------------------

    def _read_version(self) -> bytes:
        """Read and check the magic and the format version; return those 12 bytes."""
        src = self._src
        head = src.read_upto(_VERSION.size)
        if len(head) < len(MAGIC):
            if not head:
                raise src.error("empty file: not a vaekit container")
            if MAGIC.startswith(head):
                raise src.error("truncated: file ends inside the magic bytes")
            raise src.error("not a vaekit container (bad magic bytes)")
        if head[: len(MAGIC)] != MAGIC:
            raise src.error("not a vaekit container (bad magic bytes)")
        if len(head) < _VERSION.size:
            raise src.error("truncated: header ends early (in the format version)")
        _, version, check = _VERSION.unpack(head)
        if check != version ^ 0xFFFF:
            raise src.error("header is corrupt (format version field damaged)")
        if version > FORMAT_VERSION:
            raise src.error(
                f"written by a newer vaekit: format version {version}, "
                f"this reader understands up to {FORMAT_VERSION}"
            )
        if version < 1:
            raise src.error(f"header is corrupt (unknown format version {version})")
        return head

    def _read_header(self, head: bytes) -> None:
        src = self._src
        version = _VERSION.unpack(head)[1]
        rest = src.read_exact(_LENGTHS.size + _CRC.size, "header ends early (in the lengths)")
        (prefix_crc,) = _CRC.unpack_from(rest, _LENGTHS.size)
        if prefix_crc != _crc(head, rest[: _LENGTHS.size]):
            raise src.error("header is corrupt (CRC mismatch in the header lengths)")
        json_len, model_len = _LENGTHS.unpack_from(rest)
        for size, limit, what in ((json_len, MAX_HEADER_JSON_BYTES, "header JSON"),
                                  (model_len, MAX_EMBEDDED_MODEL_BYTES, "embedded model")):
            if size > limit:
                raise src.error(f"header is corrupt ({what} of {size} bytes; "
                                f"the limit is {limit})")
        self._check_fits(json_len + model_len + _CRC.size, "header ends early")
        header_json = src.read_exact(json_len, "header ends early (in the JSON)")
        model = src.read_exact(model_len, "header ends early (in the embedded model)")
        (crc,) = _CRC.unpack(src.read_exact(_CRC.size, "header ends early (in its CRC)"))
        if crc != _crc(head, rest, header_json, model):
            raise src.error("header is corrupt (CRC mismatch)")
        self._header = self._parse_header_json(header_json, version)
        self._embedded_model = model
        self._format_version = version
        self._data_start = src.pos

    def _parse_header_json(self, data: bytes, version: int) -> dict[str, Any]:
        if version >= 2:
            from .packing import _decompress

            data = _decompress(data, None, f"{self._src.name}: header JSON",
                               limit=MAX_HEADER_JSON_BYTES, dictionary=_header_dictionary())
        try:
            header = load_json(data)
        except ValueError as exc:  # (UnicodeDecodeError is a ValueError)
            raise self._src.error(f"header is corrupt (invalid JSON: {exc})") from None
        if not isinstance(header, dict) or header.get("format_version") != version:
            raise self._src.error("header is corrupt (JSON lacks a matching 'format_version')")
        return header

    def _check_fits(self, needed: int, truncated: str) -> None:
        """Refuse a length larger than what is left (seekable sources only)."""
        left = self._src.remaining()
        if left is not None and needed > left:
            raise self._src.error(f"truncated: {truncated} (needs {needed} bytes, {left} left)")

    # -- trailer -----------------------------------------------------------------

    def _probe_trailer(self) -> tuple[int, int] | None:
        """Read the trailer from the end of a seekable file; None if not intact."""
        found = probe_trailer(self._src, self._format_version, _PREFIX_SIZE + _CRC.size)
        if found is None:
            return None
        n_chunks, n_rows, self._trailer_size = found
        return n_chunks, n_rows

    def _finish(self, tag: bytes, n_read: int, rows_read: int) -> None:
        """Read and check the trailer whose tag was just read; then expect EOF."""
        src = self._src
        n_chunks, n_rows, more = read_trailer(src, self._format_version)
        if (n_chunks, n_rows) != (n_read, rows_read):
            raise src.error(
                f"trailer is corrupt: it records {n_chunks} chunks / {n_rows} rows "
                f"but the file holds {n_read} chunks / {rows_read} rows"
            )
        if more or src.read_upto(1):
            raise src.error("corrupt: unexpected data after the trailer")
        self._trailer = (n_chunks, n_rows)

    # -- chunks ------------------------------------------------------------------

    def _label(self, k: int) -> str:
        """Human name of the chunk with index ``k``: "chunk 17 of 40" (1-based)."""
        total = "" if self._trailer is None else f" of {self._trailer[0]}"
        return f"chunk {k + 1}{total}"

    def iter_chunks(self) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(chunk_index, n_rows, payload)`` for every chunk, in order.

        Each chunk's CRC is checked before it is yielded; after the last chunk the
        trailer is checked (its chunk and row counts must match what was read) and
        end of file is expected.  Only one payload is held at a time.

        Yields
        ------
        chunk_index : int
            0-based position of the chunk.
        n_rows : int
            Rows encoded in the chunk.
        payload : bytes

        Raises
        ------
        FileFormatError
            On truncation, CRC mismatch or any inconsistency, naming the part.
        """
        src = self._src
        if self._consumed and not src.seekable:
            raise ValueError("iter_chunks: a non-seekable stream can only be read once")
        self._consumed = True
        if src.seekable:
            src.seek(self._data_start)
        k, rows = 0, 0
        while True:
            tag = src.read_upto(4)
            if tag == CHUNK_TAG:
                n_rows, payload = self._read_chunk(k)
                yield k, n_rows, payload
                del payload  # hold nothing while the consumer works on the next one
                k, rows = k + 1, rows + n_rows
            elif tag == TRAILER_TAG:
                self._finish(tag, k, rows)
                return
            else:
                raise self._bad_tag(tag, k)

    def _bad_tag(self, tag: bytes, k: int) -> FileFormatError:
        """Error for a record tag that is neither a chunk's nor the trailer's."""
        after = f"after chunk {k}" if k else "after the header"
        if not tag:
            return self._src.error(f"truncated: missing trailer (file ends {after})")
        expected = None if self._trailer is None else self._trailer[0]
        if len(tag) < 4:
            part = "trailer" if expected == k else f"record {after}"
            return self._src.error(f"truncated: {part} ends early")
        if expected is not None and k < expected:
            return self._src.error(f"{self._label(k)} is corrupt (bad record tag)")
        if expected == k:
            return self._src.error("trailer is corrupt (bad record tag)")
        return self._src.error(f"corrupt: the record {after} is neither a chunk nor the trailer")

    def _read_chunk(self, k: int) -> tuple[int, bytes]:
        """Read chunk ``k`` after its tag; return ``(n_rows, payload)``."""
        src = self._src
        label = self._label(k)
        index, n_rows, length, record = read_chunk_head(src, self._format_version, label)
        if index != k:
            raise src.error(f"{label} is corrupt (its header says index {index})")
        if length > MAX_CHUNK_PAYLOAD_BYTES:
            raise src.error(f"{label} is corrupt (payload of {length} bytes; the limit is "
                            f"{MAX_CHUNK_PAYLOAD_BYTES})")
        if self._trailer is not None:
            if k >= self._trailer[0]:
                raise src.error(
                    f"trailer is corrupt: it records {self._trailer[0]} chunks, but there are more"
                )
            limit = src.end - self._trailer_size  # type: ignore[operator]
            if length + _CRC.size > limit - src.pos:
                raise src.error(f"{label} is corrupt (its length runs into the trailer)")
        self._check_fits(length + _CRC.size, f"{label} ends early")
        payload = src.read_exact(length, f"{label} ends early")
        (stored,) = _CRC.unpack(src.read_exact(_CRC.size, f"{label} ends early (in its CRC)"))
        if stored != _crc(record, payload):
            raise src.error(f"{label} is corrupt (CRC mismatch)")
        return n_rows, payload

    # -- public properties -------------------------------------------------------

    @property
    def header(self) -> dict[str, Any]:
        """The header dict stored by the writer (includes ``"format_version"``)."""
        return self._header

    @property
    def embedded_model(self) -> bytes:
        """The embedded model blob (``b""`` if none)."""
        return self._embedded_model

    @property
    def format_version(self) -> int:
        """Container format version of the file."""
        return self._format_version

    @property
    def n_chunks(self) -> int | None:
        """Number of chunks per the trailer.

        Known on open for seekable sources with an intact trailer; otherwise
        ``None`` until :meth:`iter_chunks` has read to the end.
        """
        return None if self._trailer is None else self._trailer[0]

    @property
    def n_rows(self) -> int | None:
        """Total rows per the trailer (same availability as :attr:`n_chunks`)."""
        return None if self._trailer is None else self._trailer[1]

    def verify(self) -> tuple[int, int]:
        """Read every chunk, checking all CRCs and the trailer.

        Returns
        -------
        (n_chunks, n_rows) : tuple of int
        """
        for _ in self.iter_chunks():
            pass
        assert self._trailer is not None
        return self._trailer

    def close(self) -> None:
        """Close the file if the reader opened it (file objects are left open)."""
        if self._owns:
            self._f.close()

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate only the header of a container.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        The caller's header (including ``"format_version"``).
    """
    with ContainerReader(path) as reader:
        return reader.header


def read_info(path: str | os.PathLike[str]) -> ContainerInfo:
    """Header, sizes and trailer counts of a container, without reading the chunks.

    Chunk CRCs are not checked (use :meth:`ContainerReader.verify` for that).
    """
    with ContainerReader(path) as reader:
        return ContainerInfo(
            header=reader.header,
            format_version=reader.format_version,
            embedded_model_bytes=len(reader.embedded_model),
            n_chunks=reader.n_chunks,
            n_rows=reader.n_rows,
            file_bytes=reader._src.end or 0,
        )
