"""``vaekit compress``: rows (or images) into a ``.vkc`` container, streaming."""

from __future__ import annotations

import click

from ..codec.limits import MAX_BYTES_PER_ROW
from .app import _EPILOG_CODES, app
from .fit import _fit_estimator
from .options import (
    MAX_EPOCHS,
    MAX_LATENT_DIM,
    MAX_THREADS,
    SEED,
    FiniteFloat,
    _bad_rows,
    _bad_rows_output,
    _check_distinct,
    _check_engine,
    _check_not_under,
    _check_output,
    _common_batch_options,
    _engine_options,
    _id_columns,
    _inputs,
    _load_model,
    _named_inputs,
    _progress_bar,
    _progress_enabled,
    _split,
    _total_rows,
)

_COMPRESS_EPILOG = """\b
Examples:
  vaekit compress datasets/demo.csv -m demo.vaekit --id-column row_id -o demo.vkc
  vaekit compress datasets/demo.csv --fit --bytes-per-row 4 --id-column row_id \\
      --embed-model -o demo.vkc

Rows are stored as quantized latent codes (lossy); id columns are stored exactly.
Columns that are neither model nor id columns are dropped with a warning. The
.vkc file appears only when the whole run succeeded. With --fit, a compressor
is trained on the inputs first (see --max-rows) and written to --save-model if
given. Its budget is --bytes-per-row, or by default 1 byte per model column for
tables (1 bit per pixel value for images): on the demo table that restores every
numeric column with R^2 >= 0.98; halve it for smaller files, double it for
closer values. `vaekit info OUT.vkc` shows where the bytes went.
""" + _EPILOG_CODES


@app.command(epilog=_COMPRESS_EPILOG)
@click.argument("inputs", nargs=-1, required=True)
@click.option("-m", "--model", default=None, help="Model file from `vaekit fit`.")
@click.option("-o", "--output", required=True, help="Container file to write (.vkc).")
@click.option("--id-column", "id_columns", multiple=True,
              help="Column(s) stored losslessly beside the codes (default: the model's id "
                   "columns from `vaekit fit` when the input has them).")
@click.option("--embed-model", is_flag=True,
              help="Store the model in the .vkc file, so decompress needs no -m.")
@click.option("--fit", "fit_first", is_flag=True,
              help="Train a model on the inputs first, then compress them.")
@click.option("--bytes-per-row", type=FiniteFloat(0, MAX_BYTES_PER_ROW, min_open=True),
              default=None,
              help="With --fit: the compression budget (bytes per row) the model is tuned "
                   "for; tables spend it on the codes alone or on codes plus every numeric "
                   "value on a grid, whichever measures the smaller error (lossless where "
                   "that fits) [default: 1 per model column; images: 1 bit per pixel "
                   "value].")
@click.option("--bits", type=click.IntRange(0, 16), default=None,
              help="With --fit: expert alternative to --bytes-per-row: bits per "
                   "informative latent dimension.")
@click.option("--save-model", default=None, help="With --fit: also write the model here.")
@click.option("--kind", type=click.Choice(["auto", "tabular", "image"]), default="auto",
              show_default=True, help="With --fit: tables or images.")
@click.option("--categorical", multiple=True, help="With --fit: columns to treat as "
              "categories.")
@click.option("--latent-dim", type=click.IntRange(1, MAX_LATENT_DIM), default=None,
              help="With --fit.")
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=None, help="With --fit.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="With --fit.")
@click.option("--max-rows", type=click.IntRange(0), default=None,
              help="With --fit: train on a uniform sample of N rows, seeded by --seed (0: "
                   "every row; default as `vaekit fit`); all rows are compressed.")
@click.option("--max-error", "max_error", type=FiniteFloat(0, 1e12), default=None,
              help="Also store every value within this error of its original, in "
                   "standard deviations of its column (0.01 = 1 % of an SD; 0 = "
                   "lossless); categories, blanks and integers whose bound is below 1 "
                   "come back exactly. Default: the model's choice -- the value grid its --bytes-per-row "
                   "budget chose (see `vaekit fit --bytes-per-row`), else the latent code "
                   "alone.")
@click.option("--threads", type=click.IntRange(0, MAX_THREADS), default=None,
              help="CPU threads encoding chunks at once (0 = one per core; default: the "
                   "model's n_jobs, else 1). Reading always overlaps in one more thread. "
                   "The bytes are the same for any value.")
@_engine_options
@_common_batch_options
def compress(inputs: tuple[str, ...], model: str | None, output: str,
             id_columns: tuple[str, ...], embed_model: bool, fit_first: bool,
             bytes_per_row: float | None, bits: int | None, save_model: str | None, kind: str,
             categorical: tuple[str, ...], latent_dim: int | None, epochs: int | None,
             seed: int, max_rows: int | None, max_error: float | None,
             threads: int | None, engine: str,
             scheduler: str | None,
             workers: int | None, on_bad_rows: str, bad_rows_path: str | None,
             progress: bool, quiet: bool) -> None:
    """Compress rows (or images) into a .vkc container, streaming.

    With --engine dask, OUT.vkc is a small manifest and each input file becomes one
    part in OUT.vkc.parts/; `vaekit decompress OUT.vkc` reads either form.
    """
    if fit_first == (model is not None):
        raise click.UsageError("give either -m MODEL or --fit")
    if not fit_first and (bytes_per_row is not None or bits is not None
                          or save_model is not None):
        raise click.UsageError("--bytes-per-row, --bits and --save-model go with --fit "
                               "(a saved model's codec is fixed)")
    _check_engine(engine, scheduler, workers)
    if engine == "dask" and threads is not None:
        raise click.UsageError("--threads goes with --engine local (Dask: --workers)")
    paths = _inputs(inputs)
    _check_output(output, allow_stdout=False)
    if save_model is not None:
        _check_output(save_model, allow_stdout=False)
    named = _named_inputs(paths, model)
    _check_distinct(named, [("-o", output), ("--save-model", save_model),
                            _bad_rows_output(on_bad_rows, bad_rows_path, output)])
    if engine == "dask":  # the parts of OUT.vkc go there; an earlier run's are replaced
        _check_not_under(output + ".parts", named)
    ids = _split(id_columns)
    if fit_first:
        est = _fit_estimator(paths, kind=kind, columns=[], exclude=[], id_columns=ids,
                             categorical=_split(categorical), latent_dim=latent_dim,
                             epochs=epochs, seed=seed, contamination=None, samples=1,
                             bytes_per_row=bytes_per_row, bits=bits, max_rows=max_rows,
                             on_bad_rows=on_bad_rows, bad_rows_path=bad_rows_path,
                             output=output, progress=progress, quiet=quiet,
                             record_bad_rows=False, default_budget=True)
    else:
        est = _load_model(model)  # type: ignore[arg-type]
        ids = _id_columns(ids, est, paths)
    show = _progress_enabled(progress, quiet)
    with _bad_rows(on_bad_rows, bad_rows_path, output) as sink, \
            _progress_bar(show, "compressing", _total_rows(paths)) as update:
        if engine == "dask":
            from ..engines.dask import compress_files_dask

            manifest = compress_files_dask(paths, est, output, id_columns=ids,
                                           embed_model=embed_model, scheduler=scheduler,
                                           skip_bad_rows=on_bad_rows == "skip",
                                           on_bad_rows=sink.add, progress=update,
                                           n_workers=workers,
                                           **({} if max_error is None
                                              else {"max_abs_error": max_error}))
            n_rows, size = manifest.n_rows, manifest.parts_bytes
        else:
            from ..jobs.compress import compress_files

            n_rows, size = compress_files(paths, est, output, id_columns=ids,
                                          embed_model=embed_model,
                                          skip_bad_rows=on_bad_rows == "skip",
                                          on_bad_rows=sink.add, progress=update,
                                          threads=threads,
                                          # no --max-error: the job's default, the
                                          # model's own choice
                                          **({} if max_error is None
                                             else {"max_abs_error": max_error}))
    if save_model is not None:
        est.save(save_model)
    if not quiet:
        click.echo(f"vaekit: compressed {n_rows} rows into {output}: {size} bytes "
                   f"({size / max(1, n_rows):.2f} bytes/row)", err=True)
