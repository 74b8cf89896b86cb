"""``vaekit decompress``: restore rows (or images) from a ``.vkc`` container."""

from __future__ import annotations

import os

import click
import numpy as np
import pandas as pd
import pyarrow as pa

from ..files.writers import STDOUT, TableWriter
from .app import _EPILOG_CODES, app
from .options import _check_output, _load_model, _progress_bar, _progress_enabled

_DECOMPRESS_EPILOG = """\b
Example:
  vaekit decompress demo.vkc -m demo.vaekit -o restored.csv

Rows come back in the original order with the original columns; id columns are
exact, model columns are reconstructions. Output: CSV or Parquet by suffix, '-'
for stdout; images go to an .npz file (key X). Without -m the model embedded in
the file is used (compress --embed-model).
""" + _EPILOG_CODES


@app.command(epilog=_DECOMPRESS_EPILOG)
@click.argument("source")
@click.option("-m", "--model", default=None, help="The model the file was written with.")
@click.option("-o", "--output", default=STDOUT, show_default=True,
              help="Output file (.csv, .parquet, .npz for images) or '-' for stdout.")
@click.option("--progress", is_flag=True, help="Show a progress bar even when stderr is not "
              "a terminal.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def decompress(source: str, model: str | None, output: str, progress: bool,
               quiet: bool) -> None:
    """Restore rows (or images) from a .vkc container."""
    from ..codec.manifest import count_rows
    from ..fitted.manifests import iter_decompressed_any as iter_decompressed

    if not os.path.exists(source):
        raise click.UsageError(f"input {source!r} does not exist")
    _check_output(output)
    est = _load_model(model) if model is not None else None
    total = count_rows(source)  # also checks that the file is a container or manifest
    show = _progress_enabled(progress, quiet)
    n = 0
    with _progress_bar(show, "decompressing", total) as update:
        if output.lower().endswith(".npz"):
            pieces = []
            for part in iter_decompressed(source, est):
                pieces.append(np.asarray(part))
                update(len(part))
            images = np.concatenate(pieces) if pieces else np.zeros((0,))
            n = len(images)
            from ..files.atomic import atomic_write

            atomic_write(output, lambda fh: np.savez_compressed(fh, X=images))
        else:
            with TableWriter(output) as writer:
                for part in iter_decompressed(source, est):
                    if not isinstance(part, pd.DataFrame):
                        raise click.UsageError("this file holds images: write them to an "
                                               ".npz file (-o restored.npz)")
                    writer.write(pa.Table.from_pandas(part, preserve_index=False))
                    n += len(part)
                    update(len(part))
    if not quiet:
        click.echo(f"vaekit: restored {n} rows to {output}", err=True)
