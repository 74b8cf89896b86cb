"""Exception types that carry where a problem is, so a user can act on it.

Every error raised for bad *input data* is a :class:`DataError` (a ``ValueError``);
bad *files* (models, containers) raise :class:`FileFormatError`.  The CLI maps
them to distinct exit codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any


class VaekitError(Exception):
    """Base class for all vaekit errors."""


class DataError(VaekitError, ValueError):
    """Input data that cannot be used as given.

    Parameters
    ----------
    message : str
        What was expected and what was found.
    file : str, optional
        The input file, when the data came from one.
    row : int, optional
        1-based data row (for files: the line number, header = line 1).
    column : str, optional
        The column name.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file!r}")
        if self.row is not None:
            where.append(f"line {self.row}" if self.file is not None else f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return (", ".join(where) + ": " + self.reason) if where else self.reason

    def located(
        self, *, file: str | None = None, row_offset: int = 0
    ) -> DataError:
        """Return a copy that names ``file`` and shifts the row by ``row_offset``."""
        row = None if self.row is None else self.row + row_offset
        return DataError(
            self.reason, file=file if file is not None else self.file, row=row, column=self.column
        )


class FileFormatError(VaekitError, ValueError):
    """A model or container file that is not what it claims to be.

    Raised for wrong magic bytes, truncation, checksum mismatch, tampering,
    a format version newer than this vaekit understands, or a model that does
    not match the container it is asked to read.
    """


class TrainingError(VaekitError, RuntimeError):
    """Training diverged (NaN or inf loss) or could not start."""


# ------------------------------------------------------------- messages about names

def did_you_mean(name: str, choices: Iterable[Any]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to a misspelled ``name``, else ``""``.

    Appended to every message about a column name that is not there (``--id-column``,
    ``--exclude``, ``--columns``, ``--labels``, a model column missing from an input).
    """
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def missing_columns_message(missing: Sequence[str], model_columns: Sequence[str],
                            available: Iterable[Any]) -> str:
    """Why an input lacking model columns is refused, with the input's near misses.

    ``available`` columns that are not model columns and look like a missing one
    (:mod:`difflib`) are named: ``missing column(s) ['row_id'] ...; 'rowid' looks
    like a misspelling of 'row_id'``.
    """
    model = set(model_columns)
    spare = [str(c) for c in available if c not in model]
    hints = []
    for name in missing:
        match = difflib.get_close_matches(str(name), spare, n=1)
        if match:
            hints.append(f"{match[0]!r} looks like a misspelling of {name!r}")
    return (f"missing column(s) {list(missing)}; the model was fitted on columns "
            f"{list(model_columns)}" + ("; " + ", ".join(hints) if hints else ""))
