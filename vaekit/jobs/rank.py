"""Ranking scored rows: rank 1 is the most anomalous.

Memory: without ``top``, one float64 per row (8 bytes/row) plus a temporary Arrow
file on disk; with ``top`` K, K rows.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc


class RankedOutput:
    """Collects scored chunks and hands them back with a ``rank`` column.

    Rank 1 is the highest anomaly score; equal scores share a rank (1 + the number
    of rows scoring strictly higher), so the output does not depend on row order.

    Without ``top``, chunks are spooled to a temporary Arrow file (disk, not
    memory) and only the scores are kept in memory, 8 bytes per row.  With ``top``
    only the best ``top`` rows are kept and they come back sorted by rank (ties in
    input order).
    """

    def __init__(self, schema: pa.Schema, *, top: int | None = None,
                 tmp_dir: str | None = None) -> None:
        self.schema = schema  # final schema, with rank
        self.top = top
        self._spool_schema = pa.schema([f for f in schema if f.name != "rank"])
        self._scores: list[np.ndarray] = []
        self._best: pa.Table | None = None
        self._seq = 0
        self._tmp_dir = tmp_dir
        self._spool: Any = None
        self._spool_path: str | None = None
        self._spool_writer: Any = None

    def add(self, table: pa.Table) -> None:
        """Take the scored rows of one chunk."""
        if table.num_rows == 0:
            return
        if self.top is not None:
            seq = pa.array(np.arange(self._seq, self._seq + table.num_rows), type=pa.int64())
            self._seq += table.num_rows
            table = table.append_column("__seq", seq)
            both = table if self._best is None else pa.concat_tables([self._best, table])
            self._best = _top_rows(both, self.top)
            return
        if self._spool_writer is None:
            # The spool is removed by close() (the context manager's exit) whatever
            # happens, so a failed run (disk full, SIGTERM) leaves no hidden file.
            fd, self._spool_path = tempfile.mkstemp(prefix=".vaekit-rank-", suffix=".arrow",
                                                    dir=self._tmp_dir)
            self._spool = os.fdopen(fd, "wb")
            self._spool_writer = ipc.new_file(self._spool, self._spool_schema)
        self._spool_writer.write_table(table)
        self._scores.append(table.column("anomaly_score").to_numpy())

    def tables(self) -> Iterator[pa.Table]:
        """The collected rows with ranks, chunk by chunk."""
        if self.top is not None:
            if self._best is None:
                return
            best = self._best.drop_columns(["__seq"])
            scores = best.column("anomaly_score").to_numpy()
            ranks = 1 + np.searchsorted(-scores, -scores, side="left")
            yield self._with_rank(best, ranks)
            return
        if self._spool_writer is None:
            return
        self._spool_writer.close()
        self._spool.close()
        self._spool_writer = self._spool = None
        ordered = np.concatenate(self._scores)
        self._scores = []
        ordered.sort()
        n = len(ordered)
        # A plain file, not a memory map: mapped pages would count as this process's
        # memory and grow with the output.
        with pa.OSFile(self._spool_path, "rb") as source:
            reader = ipc.open_file(source)
            for i in range(reader.num_record_batches):
                batch = pa.Table.from_batches([reader.get_batch(i)])
                s = batch.column("anomaly_score").to_numpy()
                # Looked up in sorted order: numpy's binary search starts each key
                # where the previous one ended, so the lookups walk ``ordered`` once
                # instead of jumping around it (2-3x faster for a million rows).
                order = np.argsort(s, kind="stable")
                ranks = np.empty(len(s), dtype=np.int64)
                ranks[order] = 1 + n - np.searchsorted(ordered, s[order], side="right")
                yield self._with_rank(batch, ranks)

    def _with_rank(self, table: pa.Table, ranks: np.ndarray) -> pa.Table:
        pos = self.schema.get_field_index("rank")
        return table.add_column(pos, self.schema.field("rank"), pa.array(ranks, type=pa.int64()))

    def close(self) -> None:
        """Remove the temporary spool file, also when closing it fails (disk full)."""
        writer, spool, path = self._spool_writer, self._spool, self._spool_path
        self._spool_writer = self._spool = self._spool_path = None
        try:
            if writer is not None:
                writer.close()  # flushes: may fail again with the disk full
        except (OSError, pa.ArrowException):
            pass  # the file is deleted below; the caller already has the first error
        finally:
            try:
                if spool is not None:
                    spool.close()
            except OSError:
                pass
            finally:
                if path is not None:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass

    def __enter__(self) -> RankedOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _top_rows(table: pa.Table, k: int) -> pa.Table:
    """The ``k`` highest-scoring rows, sorted by score (descending) then input order."""
    order = table.sort_by([("anomaly_score", "descending"), ("__seq", "ascending")])
    return order.slice(0, k)
