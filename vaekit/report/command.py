"""The ``vaekit report`` command (a click command; the CLI group registers it).

Register it with ``main.add_command(report)`` (``from vaekit.report.command import
report``).  The command maps its own errors to one-line messages and the CLI's exit
codes, so it behaves the same inside the group and when invoked on its own (tests).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import numpy as np

# The exit codes of vaekit.cli (EXIT_DATA, EXIT_FILE, EXIT_FAILURE); repeated here
# rather than imported so this module does not import the whole CLI.
EXIT_FAILURE = 1
EXIT_DATA = 3
EXIT_FILE = 4

_EPILOG = (
    "DATA is a CSV (.csv, .csv.gz) or Parquet table with the model's columns, or, for "
    "image models, an .npz file (images under key X or data) or a folder of PNG/JPEG "
    "images. For .npz files --labels and --id-column name arrays in the file. "
    "Needs matplotlib: pip install 'vaekit[report]'."
)


class ReportError(click.ClickException):
    """A user-facing failure with the CLI's exit code for its kind."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@click.command("report", epilog=_EPILOG)
@click.argument("model", metavar="MODEL")
@click.argument("data", required=False, metavar="[DATA]")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="HTML file to write (self-contained: opens offline in any browser).")
@click.option("--labels", "label_column", metavar="COLUMN", default=None,
              help="Column of DATA with known labels: colors the latent plot and splits the "
                   "score histogram; not scored.")
@click.option("--id-column", metavar="COLUMN", default=None,
              help="Column of DATA that identifies rows (shown for the top anomalies); not "
                   "scored.")
@click.option("--top", "top_k", type=click.IntRange(1), default=10, show_default=True,
              help="Number of top anomalies shown (detectors).")
@click.option("--max-rows", type=click.IntRange(1), default=5000, show_default=True,
              help="Use at most this many rows of DATA for the plots (a random sample with a "
                   "fixed seed, so the report is reproducible).")
@click.option("--title", default=None, help="Page title (default: 'vaekit report: <model class>').")
def report(model: str, data: str | None, output: str, label_column: str | None,
           id_column: str | None, top_k: int, max_rows: int, title: str | None) -> None:
    """Write an HTML report of MODEL, optionally scored on DATA.

    Training curves; for a detector the score distribution and the top anomalies with
    their per-column contributions; for a compressor bytes per row and the
    reconstruction error per column; for image models inputs next to
    reconstructions and samples from the prior; and a 2-D view of the latent space.
    """
    from ..errors import DataError, FileFormatError
    from .figures import require_matplotlib

    try:
        require_matplotlib()
    except ImportError as exc:
        raise ReportError(str(exc), EXIT_FAILURE) from None
    if not os.path.exists(model):
        raise click.UsageError(f"model file {model!r} does not exist")
    if data is not None and not os.path.exists(data):
        raise click.UsageError(f"data file {data!r} does not exist")
    if data is None and (label_column or id_column):
        raise click.UsageError("--labels and --id-column need DATA")
    parent = Path(output).parent
    if not parent.is_dir():
        raise click.UsageError(f"output folder {str(parent)!r} does not exist")

    try:
        _run(model, data, output, label_column, id_column, top_k, max_rows, title)
    except DataError as exc:
        raise ReportError(str(exc), EXIT_DATA) from None
    except FileFormatError as exc:
        raise ReportError(str(exc), EXIT_FILE) from None
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        raise ReportError(f"{where}{exc.strerror or exc}", EXIT_FAILURE) from None
    size = os.path.getsize(output)
    click.echo(f"vaekit: wrote {output} ({size / 1024:.0f} kB)", err=True)


def _run(model_path: str, data: str | None, output: str, label_column: str | None,
         id_column: str | None, top_k: int, max_rows: int, title: str | None) -> None:
    from ..estimators import load
    from .html import write_report

    model = load(model_path)
    X = labels = ids = None
    if data is not None:
        X, labels, ids = read_data(data, model, label_column, id_column)
    write_report(output, model, X, labels=labels, ids=ids, top_k=top_k, max_rows=max_rows,
                 title=title, data_name=os.path.basename(data) if data else None)


def read_data(path: str, model: Any, label_column: str | None, id_column: str | None
              ) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """Read DATA for ``model``: ``(X, labels, ids)``.

    Tables are read whole with pandas and restricted to the model's columns (the
    label and id columns are split off first; other extra columns are ignored).
    Image files go through :func:`vaekit.files.readers.read_images`.

    Raises
    ------
    DataError
        Unreadable file, a table for an image model or the reverse, a missing
        column or array.
    """
    from ..errors import DataError
    from ..files.readers import input_format, read_images

    fmt = input_format(path)
    if model.input_kind_ == "image":
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
    wanted = model.schema_.names()
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the model was fitted on {wanted}",
                        file=path)
    if label_column in wanted or id_column in wanted:
        raise DataError("a --labels or --id-column column is one the model was fitted on; "
                        "it cannot be both scored and excluded", file=path)
    return frame[wanted], take["--labels"], take["--id-column"]


def _read_table(path: str, fmt: str) -> Any:
    import pandas as pd
    import pyarrow as pa

    from ..errors import DataError

    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            pa.ArrowException, ValueError) as exc:
        raise DataError(f"cannot read the table ({str(exc).splitlines()[0]})",
                        file=path) from None


def _npz_arrays(path: str, names: tuple[str | None, ...]) -> dict[str, np.ndarray]:
    from ..errors import DataError

    wanted = [n for n in names if n]
    if not wanted:
        return {}
    with np.load(path, allow_pickle=False) as f:
        missing = [n for n in wanted if n not in f.files]
        if missing:
            raise DataError(f"no array named {missing[0]!r} in the file (found {f.files})",
                            file=path)
        return {n: np.asarray(f[n]) for n in wanted}


__all__ = ["ReportError", "read_data", "report"]
