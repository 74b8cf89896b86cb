"""Chunked readers for the command line: CSV (``.csv``, ``.csv.gz``), Parquet and images.

Every reader yields :class:`Chunk` objects of bounded size, so a file of any size
is processed in constant memory.  Problems are reported as :class:`DataError`
naming the file, the line (CSV: the physical line a record starts on, header =
line 1, blank lines and line breaks inside quoted fields counted; other formats: the
1-based row) and the column.  CSV records are found by
:mod:`vaekit.files.csv_records`, which also bounds the length of one record.

Rows that cannot be used (wrong number of fields, text in a numeric column, an
infinite value) are never dropped here: they are returned in ``Chunk.bad`` and the
caller decides whether to fail or to divert them (``--on-bad-rows``).

Column types
------------
A reader is told how to read each column it needs (see :data:`COLUMN_TYPES`):

``"float"``
    A number; the spellings of :data:`NULL_SPELLINGS` (empty, ``NA``, ``NaN``, ...) are
    missing.  Anything else is a bad row.
``"level"``
    A category whose training levels were numbers: parsed as a number where it is
    one and kept as text where it is not (an unseen category, not a bad row).
``"text"``
    Kept as text (ids, categories with text levels); only an empty field is missing,
    so an id or a level ``NA`` (Namibia), ``null`` or ``N/A`` is kept as written.
``"id"``
    Like ``"text"``, and a Parquet column of any flat type is read as its text form:
    numbers and decimals as Arrow writes them, timestamps, dates and times of day
    in ISO 8601 (``2024-03-01T12:00:00``), durations as ISO 8601 durations.  Ids are
    stored as given, never modelled.
``"time"``
    A date or a date and time: text in ISO 8601 (:data:`ISO_PATTERN`: ``2024-03-01``,
    ``2024-03-01T12:00:00``, ``2024-03-01 12:00:00``, optionally ``Z`` / ``+01:00``,
    then every value of the block is in UTC) becomes ``datetime64``; Parquet
    timestamps and dates are kept as they are.  The null spellings are missing;
    anything else is a bad row.

CSV files are first read with every ``"float"`` column parsed natively by Arrow,
the fast path.  The first value that does not parse switches that block and the rest
of the file to reading those columns as text and converting them here, which is
slower but can name every bad line.

Parquet columns holding nested values (lists, structs, maps), times of day or
durations are refused by name (timestamps and dates are read; an ``"id"`` column
may hold any flat type).  Binary Parquet columns read as ``"text"`` or ``"id"`` must
hold UTF-8 text; other bytes are refused by name.  Images are checked against :data:`MAX_IMAGE_PIXELS` (and, when
scoring, the model's size) from the file's header, before any pixel is decoded.
"""

from __future__ import annotations

import csv
import datetime as _dt
import glob
import io
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import DataError
from .csv_records import (
    check_regular_file,
    first_record,
    open_input,
    read_bytes,
    record_blocks,
)
from .dates import ISO_PATTERN, coerce_times, is_time_dtype
from .npz_images import MAX_IMAGE_PIXELS, iter_npz_blocks, read_npz_images

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

COLUMN_TYPES = ("float", "level", "text", "time", "id")
# Bytes of CSV text per Arrow block; one block becomes one chunk.  2 MB is ~15 000
# rows of a 20-column numeric table: large enough to amortize per-chunk overhead,
# small enough that memory does not depend on the file size.
DEFAULT_BLOCK_BYTES = 2 * 2**20
# Rows per chunk for Parquet and image inputs.
DEFAULT_CHUNK_ROWS = 50_000
# Bytes read at the start of a file to check that it is text.
SNIFF_BYTES = 64 * 2**10
# How a missing number may be spelled in a "float" or "level" column (pandas'
# read_csv list).  In "text" columns (ids, categories) only the empty field is missing.
NULL_SPELLINGS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                  "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                  "nan", "null")
# During fit, a text column counts as numeric when at least this share of its
# values parse as numbers; the others are then reported as bad values (a typo in a
# numeric column is a bad value, not a reason to make the column a category).
NUMERIC_SHARE = 0.9


@dataclass
class BadRow:
    """One input row that could not be used.

    Attributes
    ----------
    file : str
    line : int
        CSV: physical line (header = 1); other formats: 1-based row.
    column : str or None
    reason : str
    """

    file: str
    line: int
    column: str | None
    reason: str

    def error(self) -> DataError:
        """This problem as a :class:`DataError` (for ``--on-bad-rows fail``)."""
        return DataError(self.reason, file=self.file, row=self.line, column=self.column)


@dataclass
class Chunk:
    """A block of rows from one input file.

    Attributes
    ----------
    data : DataFrame or ndarray
        Good rows only (images: an array ``(n, H, W[, C])``).
    file : str
    lines : ndarray of int64
        Line (CSV) or 1-based row of each row of ``data``.
    bad : list of BadRow
        Rows of this block that were left out of ``data``.
    """

    data: pd.DataFrame | np.ndarray
    file: str
    lines: np.ndarray
    bad: list[BadRow] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.data.shape[0])


# --------------------------------------------------------------------------- inputs


def input_format(path: str | os.PathLike) -> str:
    """``"csv"``, ``"parquet"``, ``"npz"`` or ``"images"`` (a folder), from the name."""
    p = Path(path)
    if p.is_dir():
        return "images"
    name = p.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".npz"):
        return "npz"
    return "csv"


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Expand glob patterns (for shells that do not), keeping the order given.

    Matches of one pattern are sorted by name so a run is reproducible.

    Raises
    ------
    FileNotFoundError
        A name or pattern that matches nothing.
    """
    out: list[str] = []
    for pattern in patterns:
        if os.path.exists(pattern):
            out.append(pattern)
            continue
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else []
        if not matches:
            raise FileNotFoundError(pattern)
        out.extend(matches)
    return out


def estimate_rows(path: str | os.PathLike) -> int | None:
    """Rough number of rows in a file, for a progress bar's ETA (``None`` if unknown)."""
    fmt = input_format(path)
    if fmt != "images" and not os.path.isfile(path):
        return None  # a pipe or a device: opening it could wait for ever
    try:
        if fmt == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        if fmt == "images":
            return sum(1 for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if fmt == "npz" or str(path).lower().endswith(".gz"):
            return None
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            sample = fh.read(SNIFF_BYTES)
    except (OSError, ValueError, pa.ArrowException):
        return None
    lines = sample.count(b"\n")
    if lines < 2:
        return None
    return max(0, int(size / (len(sample) / lines)) - 1)


# --------------------------------------------------------------------------- CSV


def csv_header(path: str) -> list[str]:
    """Column names from the first record of a CSV file, after checking it is text.

    Raises
    ------
    DataError
        Empty file, binary (non-text) content, or an unusable header.
    """
    with open_input(path) as fh:
        sample = read_bytes(fh, SNIFF_BYTES, path)
    if not sample.strip():
        raise DataError("the file is empty (a header line with column names is needed)",
                        file=path)
    first = first_record(path)
    if b"\0" in sample or b"\0" in first:
        raise DataError("not a text (CSV) file: it contains binary data", file=path)
    try:
        # A sample cut inside a multi-byte character is still text: allow 3 bytes.
        sample.decode("utf-8") if len(sample) < SNIFF_BYTES else sample[:-3].decode("utf-8")
        text = first.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text (CSV) file", file=path) from None
    names = next(csv.reader(io.StringIO(text, newline="")), [])
    if not names or all(not n.strip() for n in names):
        raise DataError("the first line holds no column names", file=path, row=1)
    blank = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if blank:
        raise DataError(f"header field(s) {blank} have no column name", file=path, row=1)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"duplicate column names {dup}", file=path, row=1)
    return names


def _parse_block(data: bytes, header: Sequence[str], types: Mapping[str, pa.DataType],
                 starts: np.ndarray, path: str) -> tuple[pa.Table, np.ndarray, list[BadRow]]:
    """Arrow's parse of one block of whole records: (rows, their lines, invalid rows)."""
    invalid: list[int] = []
    bad: list[BadRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # With use_threads=False Arrow numbers the records of the block (blank lines
        # not counted), which index ``starts``.
        k = int(row.number) - 1 if row.number is not None else -1
        line = int(starts[k]) if 0 <= k < len(starts) else int(starts[0])
        invalid.append(k)
        bad.append(BadRow(path, line, None,
                          f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=list(header), use_threads=False,
                                       block_size=len(data) + 1),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        # Text columns: nothing is null here (the empty field becomes missing after);
        # number columns: the spellings of NULL_SPELLINGS are missing.
        convert_options=pacsv.ConvertOptions(column_types=dict(types),
                                             include_columns=list(types),
                                             null_values=list(NULL_SPELLINGS),
                                             strings_can_be_null=False),
    )
    keep = np.ones(len(starts), dtype=bool)
    keep[[k for k in invalid if k >= 0]] = False
    if -1 in invalid or table.num_rows != int(keep.sum()):
        # Arrow saw other records than vaekit did: refuse rather than misnumber rows.
        raise DataError("cannot tell the line numbers of this file's rows (unusual quoting?)",
                        file=path, row=int(starts[0]))
    return table, starts[keep], bad


def iter_csv(path: str, types: Mapping[str, str], *,
             block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Chunk]:
    """Read the columns named in ``types`` from a CSV file, block by block.

    Parameters
    ----------
    path : str
        ``.csv`` or ``.csv.gz`` (decompressed on the fly).
    types : mapping of column name to one of :data:`COLUMN_TYPES`
        Columns to read.  Other columns are skipped.
    block_bytes : int
        Bytes of CSV text per chunk (more when one record is longer).

    Raises
    ------
    DataError
        Not a text file, empty, header only, a column of ``types`` missing, a record
        longer than :data:`~vaekit.files.csv_records.MAX_RECORD_BYTES`, or a malformed file.
    """
    header = csv_header(path)
    missing = [c for c in types if c not in header]
    if missing:
        raise DataError(f"missing column(s) {missing}; the file has {header}", file=path, row=1)
    fast = {c: pa.float64() if t in ("float", "level") else pa.string() for c, t in types.items()}
    slow = dict.fromkeys(types, pa.string())
    arrow_types = fast
    rows = 0
    for data, starts in record_blocks(path, block_bytes):
        try:
            try:
                table, lines, bad = _parse_block(data, header, arrow_types, starts, path)
            except pa.ArrowInvalid as exc:
                if arrow_types is not fast or "conversion error" not in str(exc):
                    raise
                # Some value is not a number: read this block and the rest of the file
                # as text and convert here, which can name every bad value.
                arrow_types = slow
                table, lines, bad = _parse_block(data, header, arrow_types, starts, path)
        except pa.ArrowInvalid as exc:
            raise DataError(f"cannot parse the file near this line: {exc}", file=path,
                            row=int(starts[0])) from None
        frame = table.to_pandas()
        for c, t in types.items():
            if t in ("text", "id"):  # only the empty field is a missing text (ids like "NA" stay)
                frame[c] = frame[c].where(frame[c] != "", None)
        good, good_lines, converted_bad = coerce_frame(frame, types, lines, path)
        rows += len(starts)
        if len(lines) or bad:
            yield Chunk(good, path, good_lines, sorted(bad + converted_bad, key=_bad_key))
    if rows == 0:
        raise DataError("the file has a header but no data rows", file=path)


def _bad_key(b: BadRow) -> tuple[int, str]:
    return (b.line, b.column or "")


# --------------------------------------------------------------------------- conversion


def coerce_frame(frame: pd.DataFrame, types: Mapping[str, str], lines: np.ndarray,
                 file: str) -> tuple[pd.DataFrame, np.ndarray, list[BadRow]]:
    """Convert columns to their declared types and split off rows that cannot be used.

    Returns
    -------
    (good_frame, good_lines, bad_rows)
        ``float`` columns become float64; ``level`` columns hold floats where the value
        is a number and text where not; ``text`` columns are unchanged; ``time``
        columns become datetimes.  A row is bad when a ``float`` column holds text
        that is not a number, a ``time`` column text that is not an ISO date or
        time, or any number is infinite.
    """
    # Parquet files written by pandas may restore their own index; rows are positional here.
    frame = frame.reset_index(drop=True)
    n = len(frame)
    if (list(frame.columns) == list(types) and all(k == "float" for k in types.values())
            and all(d == np.float64 for d in frame.dtypes)
            and not np.isinf(frame.to_numpy()).any()):
        return frame, lines, []  # numbers only, all finite: nothing to convert or refuse
    bad_mask = np.zeros(n, dtype=bool)
    bad: list[BadRow] = []
    out: dict[str, pd.Series] = {}
    for name, kind in types.items():
        s = frame[name]
        if kind in ("text", "id"):
            out[name] = s
            continue
        if kind == "time":
            out[name], not_time = coerce_times(s, NULL_SPELLINGS)
            for pos in np.flatnonzero(not_time):
                bad.append(BadRow(file, int(lines[pos]), name,
                                  f"expected a date or time (ISO 8601, e.g. 2024-03-01 or "
                                  f"2024-03-01T12:00:00), found {s.iloc[pos]!r}"))
            bad_mask |= not_time
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            out[name] = s
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            not_number = np.zeros(n, dtype=bool)
        else:
            # Text read for a number column: the null spellings are missing values.
            word = s.isin(NULL_SPELLINGS).to_numpy()
            values = pd.to_numeric(s.mask(word), errors="coerce").to_numpy(dtype="float64",
                                                                          na_value=np.nan)
            not_number = np.isnan(values) & s.notna().to_numpy() & ~word
        infinite = np.isinf(values)
        if kind == "level":
            # Text in a category column is just a level the model has not seen.
            if not_number.any():
                mixed = pd.Series(values, dtype=object)
                mixed[not_number] = s[not_number].astype(object).to_numpy()
                out[name] = mixed
            else:
                out[name] = pd.Series(values)
            not_number = np.zeros(n, dtype=bool)
        else:
            out[name] = pd.Series(values)
        for pos in np.flatnonzero(not_number):
            bad.append(BadRow(file, int(lines[pos]), name,
                              f"expected a number, found {s.iloc[pos]!r}"))
        for pos in np.flatnonzero(infinite):
            bad.append(BadRow(file, int(lines[pos]), name,
                              f"infinite value {str(s.iloc[pos])!r}; use a finite number or leave "
                              "the cell empty (missing)"))
        bad_mask |= not_number | infinite
    good = pd.DataFrame(out, index=pd.RangeIndex(n))
    if bad_mask.any():
        keep = ~bad_mask
        good = good.loc[keep].reset_index(drop=True)
        lines = lines[keep]
    return good, lines, sorted(bad, key=_bad_key)


def infer_types(frame: pd.DataFrame, text_columns: Sequence[str] = ()) -> dict[str, str]:
    """Choose ``"float"``, ``"time"`` or ``"text"`` for each column of a frame read as
    text (fit).

    A column is numeric when at least :data:`NUMERIC_SHARE` of its non-missing values
    parse as numbers; the rest of its values are then bad values, so a stray typo
    in a numeric column is reported instead of turning it into a category.  It is
    a date / time column when it has a datetime dtype (Parquet) or at least that
    share of its values are ISO 8601 dates or times (:data:`ISO_PATTERN`; numbers
    are tried first, so ``20240301`` stays a number).  ``text_columns`` (declared
    categorical) are always text.
    """
    types: dict[str, str] = {}
    for name in frame.columns:
        s = frame[name]
        if str(name) in text_columns:
            types[str(name)] = "text"
            continue
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            types[str(name)] = "float"
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            types[str(name)] = "text"
            continue
        if is_time_dtype(s.dtype):
            types[str(name)] = "time"
            continue
        observed = s.dropna()
        observed = observed[~observed.isin(NULL_SPELLINGS)]
        if len(observed) == 0:
            types[str(name)] = "float"  # all missing: the schema reports it
            continue
        parsed = pd.to_numeric(observed, errors="coerce")
        share = float(parsed.notna().mean())
        values = observed.tolist()
        dates = sum(1 for v in values if isinstance(v, str) and ISO_PATTERN.match(v)
                    or isinstance(v, (_dt.date, pd.Timestamp)))
        types[str(name)] = ("float" if share >= NUMERIC_SHARE else
                            "time" if dates >= NUMERIC_SHARE * len(values) else "text")
    return types


def integer_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Make float columns that hold only whole numbers (no missing) int64, as pandas does."""
    out = {}
    for name in frame.columns:
        s = frame[name]
        if s.dtype == np.float64 and len(s) and not s.isna().any():
            v = s.to_numpy()
            if np.all(v == np.rint(v)) and np.all(np.abs(v) < 2**53):
                s = pd.Series(v.astype(np.int64))
        out[name] = s
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- Parquet


def iter_parquet(path: str, types: Mapping[str, str] | None, *,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Read the columns of ``types`` (all columns when ``None``) from a Parquet file."""
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file ({exc})", file=path) from None
    names = list(pf.schema_arrow.names)
    if types is not None:
        missing = [c for c in types if c not in names]
        if missing:
            raise DataError(f"missing column(s) {missing}; the file has {names}", file=path)
    columns = list(types) if types is not None else names
    _check_parquet_types(path, pf.schema_arrow, columns,
                         [c for c in columns if types is not None and types[c] == "id"])
    start = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            frame = _as_text(batch, types or {}, path).to_pandas()
            lines = np.arange(start + 1, start + 1 + len(frame), dtype=np.int64)
            start += len(frame)
            kinds = types if types is not None else dict.fromkeys(columns, "text")
            good, good_lines, bad = coerce_frame(frame, kinds, lines, path)
            yield Chunk(good, path, good_lines, bad)
    except pa.ArrowException as exc:
        raise DataError(f"cannot read the Parquet file ({exc})", file=path) from None
    if start == 0:
        raise DataError("the file has no rows", file=path)


def _as_text(batch: pa.RecordBatch, types: Mapping[str, str], path: str) -> pa.RecordBatch:
    """Binary ``"text"`` / ``"id"`` columns as text, ``"id"`` columns of any type as text."""
    for i, name in enumerate(batch.schema.names):
        kind, column = types.get(name), batch.column(i)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        t = column.type
        binary = (pa.types.is_binary(t) or pa.types.is_large_binary(t)
                  or pa.types.is_fixed_size_binary(t))
        if kind not in ("text", "id") or not (binary or kind == "id"):
            continue
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            text = column
        elif binary:
            try:
                text = column.cast(pa.large_binary()).cast(pa.large_string())
            except pa.ArrowInvalid:
                raise DataError("holds bytes that are not UTF-8 text (ids and categories "
                                "are read as text)", file=path, column=name) from None
        elif pa.types.is_temporal(t):
            text = pa.array([None if v is None else pd.Timedelta(v).isoformat()
                             if pa.types.is_duration(t) else v.isoformat()
                             for v in column.to_pylist()], pa.large_string())
        else:
            text = column.cast(pa.large_string())
        batch = batch.set_column(i, name, text)
    return batch


def _check_parquet_types(path: str, schema: pa.Schema, columns: Sequence[str],
                         ids: Sequence[str] = ()) -> None:
    """Refuse columns vaekit cannot model: nested values, times of day, durations.

    Timestamps and dates are read (modelled as dates, see
    :mod:`vaekit.data.columns`); a time of day or a duration would reach the model as
    a bare number, and a list or struct column crashes later: both are refused here,
    by name, before any row is read.
    """
    for name in columns:
        t = schema.field(name).type
        if pa.types.is_nested(t):
            raise DataError(f"nested values ({t}): vaekit reads flat "
                            "columns only: flatten it into columns of numbers or text, or "
                            "leave it out (vaekit fit --exclude)", file=path, column=name)
        if pa.types.is_temporal(t) and not (pa.types.is_timestamp(t) or pa.types.is_date(t)
                                            or name in ids):  # ids: stored as text
            raise DataError(f"times of day or durations ({t}), which vaekit does not "
                            "model: convert it to a number (e.g. seconds) or to "
                            "text, or leave it out (vaekit fit --exclude)", file=path, column=name)


# --------------------------------------------------------------------------- images


def read_images(path: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """All images of an ``.npz`` file (key ``X`` or ``data``) or an image folder.

    ``size`` (height, width), when known (a fitted model's), is checked from the
    file's header before any pixel is read; so is :data:`MAX_IMAGE_PIXELS`.  An
    ``.npz`` array is read whole only up to
    :data:`~vaekit.files.npz_images.MAX_NPZ_ARRAY_BYTES` (4 GiB), checked from its
    header before anything is allocated (see :mod:`vaekit.files.npz_images`).
    """
    if input_format(path) == "images":
        return load_image_folder(path, size=size)
    check_regular_file(path, ".npz")
    return read_npz_images(path, size)


def iter_images(path: str, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                size: tuple[int, int] | None = None) -> Iterator[Chunk]:
    """Images of an ``.npz`` file or a folder, in chunks.

    An ``.npz`` array is streamed from the file: memory holds one chunk (at most
    ``chunk_rows`` images and :data:`~vaekit.files.npz_images.BLOCK_BYTES` of
    pixels), whatever the array's size.  A folder is loaded whole.
    """
    if input_format(path) == "images":
        blocks: Iterator[np.ndarray] = iter(_folder_blocks(path, size, chunk_rows))
    else:
        check_regular_file(path, ".npz")
        blocks = iter_npz_blocks(path, max_rows=chunk_rows, size=size)
    start = 0
    for block in blocks:
        yield Chunk(block, path, np.arange(start + 1, start + 1 + len(block), dtype=np.int64))
        start += len(block)


def _folder_blocks(path: str, size: tuple[int, int] | None, rows: int) -> list[np.ndarray]:
    images = load_image_folder(path, size=size)
    return [images[i:i + rows] for i in range(0, len(images), rows)]


# --------------------------------------------------------------------------- dispatch


def iter_table(path: str, types: Mapping[str, str], *, block_bytes: int = DEFAULT_BLOCK_BYTES,
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Chunks of a CSV or Parquet file, reading the columns of ``types``."""
    if not os.path.exists(path):
        raise DataError("file not found", file=path)
    if input_format(path) == "parquet":
        check_regular_file(path, "Parquet")
        return iter_parquet(path, types, chunk_rows=chunk_rows)
    if input_format(path) in ("npz", "images"):
        raise DataError("expected a table (CSV or Parquet), got images", file=path)
    return iter_csv(path, types, block_bytes=block_bytes)


def table_columns(path: str) -> list[str]:
    """Column names of a CSV or Parquet file."""
    if input_format(path) == "parquet":
        check_regular_file(path, "Parquet")
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable Parquet file ({exc})", file=path) from None
    return csv_header(path)


def load_image_folder(folder: str | os.PathLike, mode: str | None = None,
                      size: tuple[int, int] | None = None) -> np.ndarray:
    """Read every PNG/JPEG file of a folder (sorted by name) into one uint8 array.

    Parameters
    ----------
    folder : path
        Folder of images, all the same size.
    mode : {"L", "RGB"}, optional
        Pillow mode to convert to; by default the first image's mode decides
        (grayscale stays grayscale, everything else becomes RGB).
    size : (height, width), optional
        The size every image must have (a fitted model's); by default the first
        image's.

    Returns
    -------
    ndarray of uint8, shape (N, H, W) for grayscale or (N, H, W, 3)

    Raises
    ------
    DataError
        An unreadable image, or one whose header declares another size or more than
        :data:`MAX_IMAGE_PIXELS` pixels: checked before its pixels are decoded, so a
        small file declaring a huge image allocates nothing.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no PNG or JPEG files in {folder}")
    expected = None if size is None else (int(size[1]), int(size[0]))  # Pillow: (w, h)
    images = []
    for path in files:
        if not path.is_file():  # a pipe or a device would hang or never end
            raise DataError("not a regular file", file=str(path))
        try:
            with warnings.catch_warnings():
                # Pillow only warns below twice its own bound; ours is checked below.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im_ctx = Image.open(path)
            with im_ctx as im:  # Pillow reads the header only; pixels are decoded below
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise DataError(f"the image declares {w}x{h} pixels, over the bound of "
                                    f"{MAX_IMAGE_PIXELS} pixels per image", file=str(path))
                if expected is not None and (w, h) != expected:
                    other = f"{files[0].name} is" if images else "the model expects"
                    raise DataError(f"image is {w}x{h} (width x height), but {other} "
                                    f"{expected[0]}x{expected[1]}; all images must have the "
                                    "same size", file=str(path))
                expected = (w, h)
                if mode is None:
                    mode = "L" if im.mode in ("L", "1", "I;16", "I") else "RGB"
                arr = np.asarray(im.convert(mode))
        except Image.DecompressionBombError as exc:
            raise DataError(f"the image is too large to read ({exc})", file=str(path)) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
            raise DataError(f"cannot read image: {exc}", file=str(path)) from None
        if images and arr.shape != images[0].shape:
            raise DataError(
                f"image is {arr.shape}, but {files[0].name} is {images[0].shape}; all images "
                "in a folder must have the same size",
                file=str(path),
            )
        images.append(arr)
    return np.stack(images)
