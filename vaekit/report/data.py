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

    Tables are read whole by :func:`vaekit.files.readers.iter_table` with the types
    ``vaekit score`` uses and restricted to the model's columns (the label and id
    columns are split off first; other extra columns are ignored).
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
    frame = _read_table(path, fitted, label_column, id_column)
    return (frame[fitted.column_names],
            None if label_column is None else frame[label_column].to_numpy(dtype=object),
            None if id_column is None else frame[id_column].to_numpy(dtype=object))


def _read_table(path: str, fitted: Any, label_column: str | None,
                id_column: str | None) -> Any:
    """The model's columns and the label and id columns of a CSV or Parquet file,
    read by the readers that ``vaekit score`` uses (the same types, null spellings
    and bad-row messages: an id ``NA`` stays ``"NA"``)."""
    import pandas as pd

    from ..files.readers import iter_table, table_columns
    from ..jobs.read import reading_types

    available = table_columns(path)
    for option, name in (("--labels", label_column), ("--id-column", id_column)):
        if name is not None and name not in available:
            raise DataError(f"{option} column {name!r} is not in the file "
                            f"(columns: {available})", file=path)
    wanted = fitted.column_names
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataError(f"missing column(s) {missing}; the model was fitted on {wanted}",
                        file=path)
    if label_column in wanted or id_column in wanted:
        raise DataError("a --labels or --id-column column is one the model was fitted on; "
                        "it cannot be both scored and excluded", file=path)
    # labels: numbers where they are numbers (0/1), text otherwise; ids: always text
    types = {**({label_column: "level"} if label_column else {}),
             **({id_column: "text"} if id_column else {}),
             **reading_types(fitted.schema)}
    frames = []
    for chunk in iter_table(path, types):
        if chunk.bad:
            raise chunk.bad[0].error()
        frames.append(chunk.data)
    if not frames:
        raise DataError("the table has no rows", file=path)
    return pd.concat(frames, ignore_index=True)


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
