"""``vaekit decompress``: restore rows (or images) from a ``.vkc`` container."""

from __future__ import annotations

import os

import click

from ..files.atomic import STDOUT
from .app import _EPILOG_CODES, app
from .options import (
    _check_distinct,
    _check_output,
    _load_model,
    _progress_bar,
    _progress_enabled,
)

_DECOMPRESS_EPILOG = """\b
Example:
  vaekit decompress demo.vkc -m demo.vaekit -o restored.csv

Rows come back in the original order with the original columns; id columns are
exact, model columns are reconstructions. Output: CSV or Parquet by suffix, '-'
for stdout, or .npz: images under key X; a table as one array per column, keyed
by column name (numbers as int64/float64 with NaN for missing, text as
fixed-width unicode with '' for missing; loads with allow_pickle=False). Without
-m the model embedded in the file is used (compress --embed-model).
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
    # Loaded here, not at import: `vaekit --help` stays free of numpy and pandas.
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from ..codec.manifest import count_rows
    from ..files.writers import TableWriter, table_npz_arrays, write_npz
    from ..fitted.manifests import iter_decompressed_any as iter_decompressed

    if not os.path.exists(source):
        raise click.UsageError(f"input {source!r} does not exist")
    _check_output(output)
    _check_distinct(_container_files(source) + [("-m", model)], [("-o", output)])
    est = _load_model(model) if model is not None else None
    total = count_rows(source)  # also checks that the file is a container or manifest
    show = _progress_enabled(progress, quiet)
    n = 0
    with _progress_bar(show, "decompressing", total) as update:
        if output.lower().endswith(".npz"):
            pieces = []
            for part in iter_decompressed(source, est):
                pieces.append(part)
                update(len(part))
            if pieces and isinstance(pieces[0], pd.DataFrame):
                # Never np.asarray(frame): that is a pickled object array, names lost.
                table = pd.concat(pieces, ignore_index=True)
                n = len(table)
                write_npz(output, table_npz_arrays(table, file=output))
            else:
                images = (np.concatenate([np.asarray(p) for p in pieces]) if pieces
                          else np.zeros((0,)))
                n = len(images)
                write_npz(output, {"X": images})
        else:
            # Formatting the CSV (a fifth of the work) overlaps decoding the next chunk.
            with TableWriter(output, background=True) as writer:
                for part in iter_decompressed(source, est):
                    if not isinstance(part, pd.DataFrame):
                        raise click.UsageError("this file holds images: write them to an "
                                               ".npz file (-o restored.npz)")
                    writer.write(pa.Table.from_pandas(part, preserve_index=False))
                    n += len(part)
                    update(len(part))
    if not quiet:
        click.echo(f"vaekit: restored {n} rows to {output}", err=True)


def _container_files(source: str) -> list[tuple[str, str | None]]:
    """The files decompression reads: the ``.vkc`` file, or a manifest and its parts
    (so ``-o`` cannot replace a part either)."""
    from ..codec.manifest import is_manifest, read_manifest

    files: list[tuple[str, str | None]] = [("input", source)]
    if is_manifest(source):
        manifest = read_manifest(source, check_files=False)
        entries = list(manifest.parts) + ([manifest.model] if manifest.model else [])
        files += [("a part of the input", manifest.resolve(e)) for e in entries]
    return files
