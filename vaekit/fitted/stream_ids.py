"""Checks on the id columns given to :class:`~vaekit.fitted.streams.CompressedWriter`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..codec.packing import MAX_ID_BYTES
from ..errors import DataError


def check_id_lengths(frame: pd.DataFrame, id_columns: Sequence[str], rows_before: int, *,
                     file: str | None = None, lines: np.ndarray | None = None) -> None:
    """Refuse an id longer than :data:`~vaekit.codec.packing.MAX_ID_BYTES` as it arrives.

    Checked on each :meth:`~vaekit.fitted.streams.CompressedWriter.write`, before
    the rows are cut into chunks, so the error names the 1-based row among all rows
    written (``rows_before`` + position in ``frame``) rather than a row of a chunk.

    Raises
    ------
    DataError
        Naming the column and the row: with ``file`` and ``lines`` (the rows' physical
        lines, :class:`vaekit.files.readers.Chunk`), the file and line of the row.
    """
    for name in id_columns:
        if name not in frame.columns:
            continue
        values = frame[name]
        if values.dtype.kind in "biufcmM":
            continue
        # A character is at most 4 UTF-8 bytes: only longer values need encoding.
        chars = values.map(lambda v: len(v) if isinstance(v, (str, bytes)) else 0)
        for pos in np.flatnonzero(chars.to_numpy(dtype=np.int64) > MAX_ID_BYTES // 4):
            value = values.iloc[pos]
            size = len(value.encode("utf-8", "surrogatepass") if isinstance(value, str)
                       else value)
            if size > MAX_ID_BYTES and lines is not None:  # rows read from a file
                raise DataError(f"an id of {size} bytes; ids may hold at most "
                                f"{MAX_ID_BYTES} bytes", file=file, row=int(lines[pos]),
                                column=str(name))
            if size > MAX_ID_BYTES:
                raise DataError(f"an id of {size} bytes at row {rows_before + pos + 1} of the "
                                f"rows compressed; ids may hold at most {MAX_ID_BYTES} bytes",
                                column=str(name))
