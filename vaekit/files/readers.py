"""Chunked readers for the command line: CSV (``.csv``, ``.csv.gz``), Parquet and images.

Every reader yields :class:`Chunk` objects of bounded size, so a file of any size
is processed in constant memory.  Problems are reported as :class:`DataError`
naming the file, the line (CSV: physical line, header = line 1; other formats: the
1-based row) and the column.

Rows that cannot be used (wrong number of fields, text in a numeric column, an
infinite value) are never dropped here: they are returned in ``Chunk.bad`` and the
caller decides whether to fail or to divert them (``--on-bad-rows``).

Column types
------------
A reader is told how to read each column it needs (see :data:`COLUMN_TYPES`):

``"float"``
    A number; empty / ``NA`` / ``NaN`` are missing.  Anything else is a bad row.
``"level"``
    A category whose training levels were numbers: parsed as a number where it is
    one and kept as text where it is not (an unseen category, not a bad row).
``"text"``
    Kept as text (ids, categories with text levels).

CSV files are first read with every ``"float"`` column parsed natively by Arrow,
the fast path.  The first value that does not parse switches the rest of that
file to reading those columns as text and converting them here, which is slower
but can name every bad line.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

COLUMN_TYPES = ("float", "level", "text")
# Bytes of CSV text per Arrow block; one block becomes one chunk.  2 MB is ~15 000
# rows of a 20-column numeric table: large enough to amortize per-chunk overhead,
# small enough that memory does not depend on the file size.
DEFAULT_BLOCK_BYTES = 2 * 2**20
# Rows per chunk for Parquet and image inputs.
DEFAULT_CHUNK_ROWS = 50_000
# Bytes read at the start of a file to check that it is text and find its header.
SNIFF_BYTES = 64 * 2**10
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


def _open_text_sample(path: str) -> bytes:
    """The first bytes of a (possibly gzip-compressed) file, decompressed."""
    try:
        if path.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read(SNIFF_BYTES)
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except (gzip.BadGzipFile, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"not a valid gzip file ({exc})", file=path) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a CSV file", file=path) from None


def csv_header(path: str) -> list[str]:
    """Column names from the first line of a CSV file, after checking it is text.

    Raises
    ------
    DataError
        Empty file, binary (non-text) content, or an unusable header.
    """
    sample = _open_text_sample(path)
    if not sample.strip():
        raise DataError("the file is empty (a header line with column names is needed)",
                        file=path)
    if b"\0" in sample:
        raise DataError("not a text (CSV) file: it contains binary data", file=path)
    try:
        # A sample cut inside a multi-byte character is still text: allow 3 bytes.
        sample.decode("utf-8") if len(sample) < SNIFF_BYTES else sample[:-3].decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text (CSV) file", file=path) from None
    text = sample.decode("utf-8", errors="ignore").lstrip("\ufeff")
    first = text.splitlines()[0] if text.splitlines() else ""
    names = next(csv.reader(io.StringIO(first)), [])
    if not names or all(not n.strip() for n in names):
        raise DataError("the first line holds no column names", file=path, row=1)
    blank = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if blank:
        raise DataError(f"header field(s) {blank} have no column name", file=path, row=1)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"duplicate column names {dup}", file=path, row=1)
    return names


class _LineMap:
    """Physical line numbers of the valid rows of a CSV file.

    Arrow skips rows with the wrong number of fields (we ask it to, to report them);
    the valid rows are then numbered by skipping those lines.  This assumes one
    record per line (no line breaks inside quoted fields) and no blank lines.

    Attributes
    ----------
    pending : list of int
        Invalid lines at or after :attr:`next_line` (reported by Arrow, which parses
        a block before it is handed out).
    passed : int
        Invalid lines before :attr:`next_line`; only their count is kept, so memory
        does not grow with the number of bad rows.
    """

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.passed = 0
        self.next_line = 2  # line 1 is the header

    def take(self, n: int) -> np.ndarray:
        """Line numbers of the next ``n`` valid rows."""
        skip = sorted(self.pending)
        lines = np.arange(self.next_line, self.next_line + n + len(skip), dtype=np.int64)
        if skip:
            lines = lines[~np.isin(lines, skip)]
        lines = lines[:n]
        if n:
            self.next_line = int(lines[-1]) + 1
        self.passed += sum(1 for x in self.pending if x < self.next_line)
        self.pending = [x for x in self.pending if x >= self.next_line]
        return lines


def _csv_reader(path: str, types: Mapping[str, pa.DataType], skip_rows: int,
                block_bytes: int, line_map: _LineMap, file_label: str,
                bad: list[BadRow]) -> pacsv.CSVStreamingReader:
    def on_invalid(row: pacsv.InvalidRow) -> str:
        # With use_threads=False Arrow knows the physical line of every row.
        line = int(row.number) if row.number is not None else line_map.next_line
        line_map.pending.append(line)
        bad.append(BadRow(file_label, line, None,
                          f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=False,
                                       skip_rows_after_names=skip_rows),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types=dict(types),
                                             include_columns=list(types),
                                             strings_can_be_null=True),
    )


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
        Bytes of CSV text per chunk.

    Raises
    ------
    DataError
        Not a text file, empty, header only, a column of ``types`` missing, or a
        malformed file.
    """
    header = csv_header(path)
    missing = [c for c in types if c not in header]
    if missing:
        raise DataError(f"missing column(s) {missing}; the file has {header}", file=path, row=1)
    fast = {c: pa.float64() if t in ("float", "level") else pa.string() for c, t in types.items()}
    slow = dict.fromkeys(types, pa.string())
    line_map = _LineMap()
    rows_read = 0  # valid rows already yielded
    bad: list[BadRow] = []
    arrow_types = fast
    reader = None
    while True:
        try:
            if reader is None:
                # Arrow parses the first block on open, so opening can fail too.
                skip = rows_read + line_map.passed
                reader = _csv_reader(path, arrow_types, skip, block_bytes, line_map, path, bad)
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            if arrow_types is fast and "conversion error" in str(exc):
                # Some value is not a number: re-read the rest of the file as text,
                # starting after the rows (valid or not) already handled.
                arrow_types = slow
                # Rows from here on are read again and reported again.
                line_map.pending = []
                bad[:] = [b for b in bad if b.line < line_map.next_line]
                reader = None
                continue
            raise DataError(f"cannot parse the file: {exc}", file=path) from None
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"cannot read the file: {exc}", file=path) from None
        n = batch.num_rows
        lines = line_map.take(n)
        frame = batch.to_pandas()
        here = [b for b in bad if b.line < line_map.next_line]
        bad[:] = [b for b in bad if b.line >= line_map.next_line]
        good, good_lines, converted_bad = coerce_frame(frame, types, lines, path)
        rows_read += n
        if n or here:
            yield Chunk(good, path, good_lines, sorted(here + converted_bad, key=_bad_key))
    if bad:  # invalid rows after the last valid one
        yield Chunk(pd.DataFrame({c: pd.Series(dtype="float64") for c in types}), path,
                    np.zeros(0, dtype=np.int64), sorted(bad, key=_bad_key))
    if rows_read == 0 and not line_map.passed and not line_map.pending:
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
        is a number and text where not; ``text`` columns are unchanged.  A row is bad
        when a ``float`` column holds text that is not a number, or any number is
        infinite.
    """
    # Parquet files written by pandas may restore their own index; rows are positional here.
    frame = frame.reset_index(drop=True)
    n = len(frame)
    bad_mask = np.zeros(n, dtype=bool)
    bad: list[BadRow] = []
    out: dict[str, pd.Series] = {}
    for name, kind in types.items():
        s = frame[name]
        if kind == "text":
            out[name] = s
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            out[name] = s
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            values = s.to_numpy(dtype="float64", na_value=np.nan)
            not_number = np.zeros(n, dtype=bool)
        else:
            values = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            not_number = np.isnan(values) & s.notna().to_numpy()
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
    """Choose ``"float"`` or ``"text"`` for each column of a frame read as text (fit).

    A column is numeric when at least :data:`NUMERIC_SHARE` of its non-missing values
    parse as numbers; the rest of its values are then bad values, so a stray typo
    in a numeric column is reported instead of turning it into a category.
    ``text_columns`` (declared categorical) are always text.
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
        observed = s.dropna()
        if len(observed) == 0:
            types[str(name)] = "float"  # all missing: the schema reports it
            continue
        parsed = pd.to_numeric(observed, errors="coerce")
        share = float(parsed.notna().mean())
        types[str(name)] = "float" if share >= NUMERIC_SHARE else "text"
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
    start = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            frame = batch.to_pandas()
            lines = np.arange(start + 1, start + 1 + len(frame), dtype=np.int64)
            start += len(frame)
            kinds = types if types is not None else dict.fromkeys(columns, "text")
            good, good_lines, bad = coerce_frame(frame, kinds, lines, path)
            yield Chunk(good, path, good_lines, bad)
    except pa.ArrowException as exc:
        raise DataError(f"cannot read the Parquet file ({exc})", file=path) from None
    if start == 0:
        raise DataError("the file has no rows", file=path)


# --------------------------------------------------------------------------- images


def read_images(path: str) -> np.ndarray:
    """All images of an ``.npz`` file (key ``X`` or ``data``) or an image folder."""
    if input_format(path) == "images":
        return load_image_folder(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            key = "X" if "X" in f.files else "data" if "data" in f.files else None
            if key is None:
                raise DataError(f"no array named 'X' or 'data' (found {f.files})", file=path)
            images = f[key]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"not a readable .npz array file ({exc})", file=path) from None
    if images.ndim not in (3, 4) or images.shape[0] == 0:
        raise DataError(f"expected images shaped (N, H, W[, C]), got {images.shape}", file=path)
    return images


def iter_images(path: str, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Images of an ``.npz`` file or a folder, in chunks (the whole set is loaded once)."""
    images = read_images(path)
    for start in range(0, len(images), chunk_rows):
        block = images[start:start + chunk_rows]
        yield Chunk(block, path, np.arange(start + 1, start + 1 + len(block), dtype=np.int64))


# --------------------------------------------------------------------------- dispatch


def iter_table(path: str, types: Mapping[str, str], *, block_bytes: int = DEFAULT_BLOCK_BYTES,
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Chunks of a CSV or Parquet file, reading the columns of ``types``."""
    if not os.path.exists(path):
        raise DataError("file not found", file=path)
    if input_format(path) == "parquet":
        return iter_parquet(path, types, chunk_rows=chunk_rows)
    if input_format(path) in ("npz", "images"):
        raise DataError("expected a table (CSV or Parquet), got images", file=path)
    return iter_csv(path, types, block_bytes=block_bytes)


def table_columns(path: str) -> list[str]:
    """Column names of a CSV or Parquet file."""
    if input_format(path) == "parquet":
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable Parquet file ({exc})", file=path) from None
    return csv_header(path)


def load_image_folder(folder: str | os.PathLike, mode: str | None = None) -> np.ndarray:
    """Read every PNG/JPEG file of a folder (sorted by name) into one uint8 array.

    Parameters
    ----------
    folder : path
        Folder of images, all the same size.
    mode : {"L", "RGB"}, optional
        Pillow mode to convert to; by default the first image's mode decides
        (grayscale stays grayscale, everything else becomes RGB).

    Returns
    -------
    ndarray of uint8, shape (N, H, W) for grayscale or (N, H, W, 3)
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no PNG or JPEG files in {folder}")
    images = []
    for path in files:
        try:
            with Image.open(path) as im:
                if mode is None:
                    mode = "L" if im.mode in ("L", "1", "I;16", "I") else "RGB"
                arr = np.asarray(im.convert(mode))
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"cannot read image: {exc}", file=str(path)) from None
        if images and arr.shape != images[0].shape:
            raise DataError(
                f"image is {arr.shape}, but {files[0].name} is {images[0].shape}; all images "
                "in a folder must have the same size",
                file=str(path),
            )
        images.append(arr)
    return np.stack(images)
