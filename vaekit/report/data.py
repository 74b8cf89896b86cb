"""Reading the DATA of a report: a table or images, plus optional label and id columns.

The command line (``vaekit report``, :mod:`vaekit.cli.report`) calls :func:`read_data`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..files.readers import input_format, read_images
from ..fitted import as_fitted

__all__ = ["read_data"]


def read_data(path: str, model: Any, label_column: str | None, id_column: str | None
              ) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """Read DATA for ``model``: ``(X, labels, ids)``.

    Tables are read whole with pandas and restricted to the model's columns (the
    label and id columns are split off first; other extra columns are ignored).
    Image files go through :func:`vaekit.files.readers.read_images`.

    Parameters
    ----------
    path : str
        A CSV (``.csv``, ``.csv.gz``) or Parquet table, an ``.npz`` file or a
        folder of PNG/JPEG images.
    model : FittedVAE or fitted estimator
        Its input kind and (tables) column names decide what is read.
    label_column, id_column : str or None
        A column (tables) or array (``.npz``) holding labels or row ids; not scored.

    Returns
    -------
    (X, labels, ids)
        The model's columns (a DataFrame) or the images, and the label and id
        arrays (None when not asked for).

    Raises
    ------
    DataError
        Unreadable file, a table for an image model or the reverse, a missing
        column or array.
    """
    fmt = input_format(path)
    fitted = as_fitted(model)
    if fitted.input_kind == "image":
        if fmt not in ("npz", "images"):
            raise DataError("the model reads images, so DATA must be an .npz file or a folder "
                            "of images", file=path)
        images = read_images(path)
        extra = _npz_arrays(path, (label_column, id_column)) if fmt == "npz" else {}
        if fmt == "images" and (label_column or id_column):
            raise DataError("--labels and --id-column need an .npz file, not a folder", file=path)
        return images, extra.get(label_column), extra.get(id_column)
    if fmt in ("npz", "images"):
        raise DataError("the model reads tables, so DATA must be a CSV or Parquet file", file=path)
    frame = _read_table(path, fmt)
    take: dict[str, np.ndarray | None] = {}
    for option, name in (("--labels", label_column), ("--id-column", id_column)):
        if name is None:
            take[option] = None
        elif name not in frame.columns:
            raise DataError(f"{option} column {name!r} is not in the file "
                            f"(columns: {list(map(str, frame.columns))})", file=path)
        else:
            take[option] = frame[name].to_numpy(dtype=object)
    wanted = fitted.column_names
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the model was fitted on {wanted}",
                        file=path)
    if label_column in wanted or id_column in wanted:
        raise DataError("a --labels or --id-column column is one the model was fitted on; "
                        "it cannot be both scored and excluded", file=path)
    return frame[wanted], take["--labels"], take["--id-column"]


def _read_table(path: str, fmt: str) -> Any:
    """A whole CSV or Parquet file as a DataFrame (a DataError if it cannot be read)."""
    import pandas as pd
    import pyarrow as pa

    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            pa.ArrowException, ValueError) as exc:
        raise DataError(f"cannot read the table ({str(exc).splitlines()[0]})",
                        file=path) from None


def _npz_arrays(path: str, names: tuple[str | None, ...]) -> dict[str, np.ndarray]:
    """The arrays ``names`` (None entries skipped) of an ``.npz`` file."""
    wanted = [n for n in names if n]
    if not wanted:
        return {}
    with np.load(path, allow_pickle=False) as f:
        missing = [n for n in wanted if n not in f.files]
        if missing:
            raise DataError(f"no array named {missing[0]!r} in the file (found {f.files})",
                            file=path)
        return {n: np.asarray(f[n]) for n in wanted}
