"""Reading the DATA of a report: a table or images, plus optional label and id columns.

The command line (``vaekit report``, :mod:`vaekit.cli.report`) calls :func:`read_data`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, did_you_mean, missing_columns_message
from ..files.readers import input_format, read_images

__all__ = ["anomaly_labels", "read_data"]

# The label spellings a detector's report accepts, as text (lowercased, stripped).
_LABEL_WORDS = {"0": False, "1": True, "false": False, "true": True}


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
        For a detector the labels are anomaly labels (see :func:`anomaly_labels`).

    Returns
    -------
    (X, labels, ids)
        The model's columns (a DataFrame) or the images, and the label and id
        arrays (None when not asked for).  A detector's labels come back as a
        bool array (True = anomaly); a compressor's as read.

    Raises
    ------
    DataError
        Unreadable file, a table for an image model or the reverse, a missing
        column or array, a detector's label that is not 0/1/true/false (naming
        the file, line and column).
    """
    from ..fitted import as_fitted  # torch: imported on use, not with the report package

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
        labels = extra.get(label_column)
        if labels is not None and labels.shape != (len(images),):
            raise DataError(f"--labels array {label_column!r} has shape {labels.shape}; "
                            f"expected one label per image, ({len(images)},)", file=path)
        if labels is not None and is_detector(fitted):
            # .npz rows have no lines: the 1-based position stands in for one.
            labels = anomaly_labels(labels, column=label_column, file=path,
                                    lines=np.arange(1, len(labels) + 1))
        return images, labels, extra.get(id_column)
    if fmt in ("npz", "images"):
        raise DataError("the model reads tables, so DATA must be a CSV or Parquet file", file=path)
    frame, lines = _read_table(path, fitted, label_column, id_column)
    labels = None
    if label_column is not None:
        labels = frame[label_column].to_numpy(dtype=object)
        if is_detector(fitted):
            labels = anomaly_labels(labels, column=label_column, file=path, lines=lines)
    return (frame[fitted.column_names], labels,
            None if id_column is None else frame[id_column].to_numpy(dtype=object))


def is_detector(fitted: Any) -> bool:
    """True for a model that ranks rows (it kept its training scores: a detector)."""
    return fitted.decision_scores is not None


def anomaly_labels(values: Any, *, column: str | None = None, file: str | None = None,
                   lines: np.ndarray | None = None) -> np.ndarray:
    """Known anomaly labels as a bool array: True = anomaly.

    Accepted per value: booleans, the numbers 0 and 1 (ints or floats), and the
    text ``"0"``, ``"1"``, ``"true"``, ``"false"`` (any case, surrounding spaces
    ignored).  Anything else -- a missing label, ``2``, ``"anomaly"`` -- is refused:
    a metric computed over a silently guessed label would be a wrong number.

    Parameters
    ----------
    values : sequence
        One label per row.
    column : str, optional
        The label column's name (``--labels``), named in the error.
    file : str, optional
        The file the labels came from, named in the error.
    lines : array of int, optional
        Line (CSV) or 1-based row of each value, for the error; default: the
        1-based position.

    Returns
    -------
    ndarray of bool

    Raises
    ------
    DataError
        At the first value that is not a 0/1 label, naming file, line and column.
    """
    raw = np.asarray(values)
    if raw.dtype == bool:
        return raw.ravel().copy()
    if raw.dtype.kind in "iuf" and np.isin(raw, (0, 1)).all():
        return raw.ravel() == 1  # the common case, without a Python loop
    arr = raw.astype(object).ravel()
    out = np.zeros(len(arr), dtype=bool)
    for pos, value in enumerate(arr):
        label = _one_label(value)
        if label is None:
            where = int(lines[pos]) if lines is not None else pos + 1
            what = (f"--labels column {column!r}" if file is not None and column
                    else f"label column {column!r}" if column else "labels")
            raise DataError(f"{what} must hold anomaly labels 1/true (anomaly) or 0/false "
                            f"(normal); found {value!r}", file=file, row=where, column=column)
        out[pos] = label
    return out


def _one_label(value: Any) -> bool | None:
    """One anomaly label, or None when ``value`` is not one."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value) if value in (0, 1) else None  # NaN compares unequal: refused
    if isinstance(value, (str, bytes)):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return _LABEL_WORDS.get(text.strip().lower())
    return None


def _read_table(path: str, fitted: Any, label_column: str | None,
                id_column: str | None) -> tuple[Any, np.ndarray]:
    """The model's columns and the label and id columns of a CSV or Parquet file,
    read by the readers that ``vaekit score`` uses (the same types, null spellings
    and bad-row messages: an id ``NA`` stays ``"NA"``), and each row's line."""
    import pandas as pd

    from ..files.readers import iter_table, table_columns
    from ..jobs.read import reading_types

    available = table_columns(path)
    for option, name in (("--labels", label_column), ("--id-column", id_column)):
        if name is not None and name not in available:
            raise DataError(f"{option} column {name!r} is not in the file "
                            f"(columns: {available}){did_you_mean(name, available)}",
                            file=path)
    wanted = fitted.column_names
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataError(missing_columns_message(missing, wanted, available), file=path)
    if label_column in wanted or id_column in wanted:
        raise DataError("a --labels or --id-column column is one the model was fitted on; "
                        "it cannot be both scored and excluded", file=path)
    # labels: numbers where they are numbers (0/1), text otherwise; ids: always text
    types = {**({label_column: "level"} if label_column else {}),
             **({id_column: "id"} if id_column else {}),
             **reading_types(fitted.schema)}
    frames, lines = [], []
    for chunk in iter_table(path, types):
        if chunk.bad:
            raise chunk.bad[0].error()
        frames.append(chunk.data)
        lines.append(chunk.lines)
    if not frames:
        raise DataError("the table has no rows", file=path)
    return pd.concat(frames, ignore_index=True), np.concatenate(lines)


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
