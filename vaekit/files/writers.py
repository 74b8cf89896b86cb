"""Incremental, atomic table output: CSV, Parquet or standard output.

Rows are written as they are produced (memory bounded by one chunk) into a
temporary file next to the destination, which is renamed onto the final name
only when the whole run succeeded.  An interrupted or failed run therefore never
leaves a partial file under the final name (the same pattern as
:func:`vaekit.files.atomic.atomic_write`).  Standard output (``-``) cannot be made atomic;
rows go out as they are ready.

Formatting is deterministic: floats are written in their shortest round-trip form
by Arrow, text is quoted only where needed, and Parquet files carry no timestamps.
With ``background=True`` the formatting and writing run in a helper thread (Arrow
releases the GIL meanwhile), fed through a short queue; the bytes are the same.
"""

from __future__ import annotations

import sys
import threading
import zipfile
from collections.abc import Mapping
from queue import Queue
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import DataError
from .atomic import STDOUT, AtomicFile, atomic_write, writes_in_place
from .readers import BadRow


def output_format(path: str) -> str:
    """``"parquet"`` for ``.parquet`` / ``.pq`` names, else ``"csv"`` (also for ``-``)."""
    return "parquet" if path.lower().endswith((".parquet", ".pq")) else "csv"


class TableWriter:
    """Write Arrow tables to a CSV / Parquet file (atomically) or to standard output.

    Use as a context manager: leaving the block normally commits the file, an
    exception discards it.  The schema is fixed by the first table written (or
    given up front), so every chunk is written with the same column types.

    Parameters
    ----------
    path : str
        Destination; ``-`` for standard output (CSV).
    schema : pyarrow.Schema, optional
        Column names and types; required to write a header for zero rows.
    background : bool
        Format and write in a helper thread, overlapping with the caller's work (at
        most :data:`QUEUED_TABLES` tables wait).  An error there (disk full, closed
        pipe) is raised by the next :meth:`write` or by :meth:`close`.
    """

    QUEUED_TABLES = 2

    def __init__(self, path: str, schema: pa.Schema | None = None, *,
                 background: bool = False) -> None:
        self.path = path
        self.format = output_format(path)
        self.schema = schema
        self.n_rows = 0
        self._atomic: AtomicFile | None = None
        self._sink: IO[bytes] | None = None
        self._writer: Any = None
        self._background = background
        self._queue: Queue[pa.Table | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> TableWriter:
        if self.path == STDOUT:
            self._sink = sys.stdout.buffer
        else:
            self._atomic = AtomicFile(self.path)
            self._sink = self._atomic.fh
        return self

    def _open(self, schema: pa.Schema) -> None:
        self.schema = schema
        if self.format == "parquet":
            self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd")
        else:
            options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
            self._writer = pacsv.CSVWriter(self._sink, schema, write_options=options)

    def write(self, table: pa.Table) -> None:
        """Append rows (cast to the writer's schema).

        CSV holds text only: a binary column is written as the UTF-8 text it holds;
        bytes that are not UTF-8 are refused (:class:`DataError`), never written as a
        Python ``b'...'`` repr.
        """
        if self.format == "csv":
            table = _binary_as_text(table, self.path)
            if self.schema is not None and self._writer is None:
                self.schema = _binary_as_text(self.schema.empty_table(), self.path).schema
        if self._writer is None:
            self._open(self.schema or table.schema)
        if table.schema != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        if table.num_rows:
            if self._background:
                self._put(table)
            else:
                self._writer.write_table(table)
        self.n_rows += table.num_rows

    # ------------------------------------------------------------ helper thread
    def _put(self, table: pa.Table | None) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            if table is None:
                return
            self._queue = Queue(maxsize=self.QUEUED_TABLES)
            self._thread = threading.Thread(target=self._drain, name="vaekit-writer",
                                            daemon=True)
            self._thread.start()
        assert self._queue is not None
        self._queue.put(table)

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            table = self._queue.get()
            if table is None:
                return
            if self._error is None:  # after an error, only empty the queue
                try:
                    self._writer.write_table(table)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    self._error = exc

    def _finish_thread(self) -> None:
        """Wait until every queued table is written; raise what went wrong there."""
        if self._thread is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Finish the file (header only when no rows were written) and commit it."""
        # Any failure (the background writer, the footer, the fsync) removes the
        # temporary file; the target is never half-written.
        try:
            self._finish_thread()
            if self._writer is None:
                self._open(self.schema or pa.schema([]))
            self._writer.close()
            if self._atomic is not None:
                self._atomic.commit()
            elif self._sink is not None:
                self._sink.flush()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard everything written (standard output cannot be taken back)."""
        try:
            self._finish_thread()
        except BaseException:  # noqa: BLE001 - already failing; the file is discarded
            pass
        if self._atomic is not None:
            self._atomic.abort()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


BAD_ROWS_SCHEMA = pa.schema([pa.field("file", pa.string()), pa.field("line", pa.int64()),
                             pa.field("column", pa.string()), pa.field("reason", pa.string())])


def _binary_as_text(table: pa.Table, path: str) -> pa.Table:
    for i, field in enumerate(table.schema):
        t = field.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or \
                pa.types.is_fixed_size_binary(t):
            try:
                column = table.column(i).cast(pa.large_binary()).cast(pa.large_string())
            except pa.ArrowInvalid:
                raise DataError("holds bytes that are not UTF-8 text, which a CSV file "
                                "cannot hold; write Parquet (.parquet) instead", file=path,
                                column=str(field.name)) from None
            table = table.set_column(i, field.name, column)
    return table


def bad_rows_table(rows: list[BadRow]) -> pa.Table:
    """Bad rows as a table for the ``--bad-rows`` side file."""
    return pa.table({
        "file": pa.array([r.file for r in rows], type=pa.string()),
        "line": pa.array([r.line for r in rows], type=pa.int64()),
        "column": pa.array([r.column for r in rows], type=pa.string()),
        "reason": pa.array([r.reason for r in rows], type=pa.string()),
    }, schema=BAD_ROWS_SCHEMA)


def default_bad_rows_path(output: str) -> str:
    """Where skipped rows go when no ``--bad-rows`` file is named.

    Next to the output (``scores.csv`` -> ``scores.bad-rows.csv``); for standard
    output, a FIFO or a device (``/dev/null``), ``vaekit-bad-rows.csv`` in the
    current folder (never a new file in ``/dev``).
    """
    try:
        special = output == STDOUT or writes_in_place(output)
    except IsADirectoryError:
        special = False  # refused as an output elsewhere
    if special:
        return "vaekit-bad-rows.csv"
    name = output
    for suffix in (".csv.gz", ".parquet", ".csv", ".pq", ".vkc", ".vaekit"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name + ".bad-rows.csv"


# ---------------------------------------------------------------------------- .npz

# Largest fixed-width text array written to an .npz file: a ``<U`` array takes 4
# bytes per character of its *longest* value on every row, so one 1 MB id in a
# million rows would need 4 TB.  Checked before the array is made.
MAX_NPZ_TEXT_BYTES = 2 * 1024**3


def write_npz(path: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays to a pickle-free, byte-reproducible ``.npz`` file.

    Like :func:`numpy.savez_compressed` (DEFLATE, one ``KEY.npy`` member per array,
    in the given order) but with ``allow_pickle=False`` (an object array is an
    error, so ``np.load(path, allow_pickle=False)`` always reads the file) and
    fixed member timestamps, so the same arrays give the same bytes.  Written
    atomically (see :class:`vaekit.files.atomic.AtomicFile`).
    """

    def write(fh: IO[bytes]) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, array in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array),
                                              allow_pickle=False)

    atomic_write(path, write)


def table_npz_arrays(frame: pd.DataFrame, *, file: str | None = None) -> dict[str, np.ndarray]:
    """A table as ``.npz`` arrays: one array per column, keyed by the column name.

    Layout (in column order; ``np.load(path, allow_pickle=False).files`` lists it):

    - boolean columns: ``bool``;
    - integer columns without missing values: ``int64`` (ids stay exact);
    - other numeric columns (floats, integers with missing values): ``float64``,
      missing = NaN;
    - every other column (text, categories, dates): fixed-width unicode ``<U``,
      missing = ``""``.

    Never an object array.

    Raises
    ------
    DataError
        A text column whose fixed-width array would exceed
        :data:`MAX_NPZ_TEXT_BYTES` (checked before it is allocated).
    """
    out: dict[str, np.ndarray] = {}
    for name in frame.columns:
        col = frame[name]
        key = str(name)
        if pd.api.types.is_bool_dtype(col.dtype) and not col.isna().any():
            out[key] = col.to_numpy(dtype=bool)
        elif pd.api.types.is_integer_dtype(col.dtype) and not col.isna().any():
            out[key] = col.to_numpy(dtype=np.int64)
        elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(
                col.dtype):
            out[key] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            text = col.astype("string").fillna("")
            width = max(1, int(text.str.len().max()) if len(text) else 1)
            size = 4 * width * len(text)
            if size > MAX_NPZ_TEXT_BYTES:
                raise DataError(f"column {key!r} would take {size / 1024**3:.1f} GiB as a "
                                f"fixed-width .npz text array (longest value {width} "
                                "characters); write CSV or Parquet instead", file=file,
                                column=key)
            out[key] = text.to_numpy(dtype=f"<U{width}")
    return out


__all__ = [
    "BAD_ROWS_SCHEMA",
    "MAX_NPZ_TEXT_BYTES",
    "STDOUT",
    "TableWriter",
    "bad_rows_table",
    "default_bad_rows_path",
    "output_format",
    "table_npz_arrays",
    "write_npz",
]
