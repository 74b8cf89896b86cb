"""``vaekit fit``: train a model on files and write it to a ``.vaekit`` file.

:func:`_fit_estimator` is shared with ``vaekit compress --fit``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..codec.limits import MAX_BYTES_PER_ROW
from ..errors import DataError
from .app import _EPILOG_CODES, app
from .options import (
    MAX_EPOCHS,
    MAX_LATENT_DIM,
    MAX_SAMPLES,
    SEED,
    FiniteFloat,
    _bad_rows,
    _bad_rows_output,
    _check_distinct,
    _check_output,
    _common_batch_options,
    _inputs,
    _named_inputs,
    _progress_bar,
    _progress_enabled,
    _split,
    _total_rows,
)

_FIT_EPILOG = """\b
Example:
  vaekit fit datasets/demo.csv --id-column row_id --epochs 20 --seed 0 -o demo.vaekit

Inputs: CSV (.csv, .csv.gz), Parquet, .npz image arrays or folders of PNG/JPEG
images; several files are concatenated in the order given (globs allowed).
Inputs larger than memory: one pass over all rows keeps a uniform sample, seeded
by --seed (by default at most 1,000,000 rows and 128 MiB while reading, so a 10 GB
CSV fits in well under 2 GB); --max-rows N samples N rows, --max-rows 0 keeps all.
""" + _EPILOG_CODES


@app.command(epilog=_FIT_EPILOG)
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="Model file to write (.vaekit).")
@click.option("--kind", type=click.Choice(["auto", "tabular", "image"]), default="auto",
              show_default=True, help="Tables or images (auto: from the input files).")
@click.option("--columns", multiple=True, help="Use only these columns (comma-separated or "
              "repeated).")
@click.option("--exclude", multiple=True, help="Leave these columns out.")
@click.option("--id-column", "id_columns", multiple=True,
              help="Identifier column(s): not modelled; the model remembers them, so "
                   "score and compress copy them by default.")
@click.option("--categorical", multiple=True,
              help="Treat these columns as categories even if they hold numbers.")
@click.option("--latent-dim", type=click.IntRange(1, MAX_LATENT_DIM), default=None,
              help="Latent dimensions (default: auto).")
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=None,
              help="Training epochs "
              "(default: auto, from the number of rows).")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Random seed: same data + same seed = same model file.")
@click.option("--contamination", type=FiniteFloat(0, 0.5, min_open=True), default=None,
              help="Expected share of anomalies in the training data; sets the model's "
                   "threshold (default: Tukey fence of the training scores).")
@click.option("--samples", type=click.IntRange(1, MAX_SAMPLES), default=16, show_default=True,
              help="Importance samples per row when scoring (accuracy vs. speed).")
@click.option("--bytes-per-row", type=FiniteFloat(0, MAX_BYTES_PER_ROW, min_open=True),
              default=None,
              help="Train a compressor tuned for this budget (bytes per row: codes, or "
                   "codes plus gridded values where that measures the smaller error) "
                   "instead of a detector; scoring with it needs --threshold. A "
                   "progress bar (terminal or --progress) shows the training stage and "
                   "the held-out error (the coded loss per held-out row).")
@click.option("--bits", type=click.IntRange(0, 16), default=None,
              help="Expert alternative to --bytes-per-row: bits per informative latent "
                   "dimension.")
@click.option("--max-rows", type=click.IntRange(0), default=None,
              help="Train on a uniform sample of N rows of all inputs, seeded by --seed "
                   "(0: every row; default: at most 1,000,000 rows and 128 MiB of memory "
                   "while reading).")
@_common_batch_options
def fit(inputs: tuple[str, ...], output: str, kind: str, columns: tuple[str, ...],
        exclude: tuple[str, ...], id_columns: tuple[str, ...], categorical: tuple[str, ...],
        latent_dim: int | None, epochs: int | None, seed: int, contamination: float | None,
        samples: int, bytes_per_row: float | None, bits: int | None, max_rows: int | None,
        on_bad_rows: str, bad_rows_path: str | None, progress: bool, quiet: bool) -> None:
    """Train a model on one or more files and write it to a .vaekit file.

    The model works with both `vaekit score` and `vaekit compress`.
    """
    paths = _inputs(inputs)
    _check_output(output, allow_stdout=False)
    _check_distinct(_named_inputs(paths),
                    [("-o", output), _bad_rows_output(on_bad_rows, bad_rows_path, output)])
    est = _fit_estimator(paths, kind=kind, columns=_split(columns), exclude=_split(exclude),
                         id_columns=_split(id_columns), categorical=_split(categorical),
                         latent_dim=latent_dim, epochs=epochs, seed=seed,
                         contamination=contamination, samples=samples,
                         bytes_per_row=bytes_per_row, bits=bits, max_rows=max_rows,
                         on_bad_rows=on_bad_rows, bad_rows_path=bad_rows_path, output=output,
                         progress=progress, quiet=quiet)
    est.save(output)
    if not quiet:
        size = f" ({os.path.getsize(output)} bytes)" if os.path.isfile(output) else ""
        click.echo(f"vaekit: wrote {output}{size}", err=True)


def _fit_estimator(paths: list[str], *, kind: str, columns: list[str], exclude: list[str],
                   id_columns: list[str], categorical: list[str], latent_dim: int | None,
                   epochs: int | None, seed: int, contamination: float | None, samples: int,
                   bytes_per_row: float | None, bits: int | None, max_rows: int | None,
                   on_bad_rows: str, bad_rows_path: str | None, output: str, progress: bool,
                   quiet: bool, record_bad_rows: bool = True,
                   default_budget: bool = False) -> Any:
    """Read the training rows and fit a detector, or a compressor with a budget.

    ``default_budget`` (``compress --fit``): without ``bytes_per_row`` and ``bits``,
    fit a compressor with :func:`vaekit.estimators.compressor.default_bytes_per_row`
    instead of a detector.
    """
    from ..jobs.read import load_training_data

    if bytes_per_row is not None and bits is not None:
        raise click.UsageError("give --bytes-per-row or --bits, not both")
    show = _progress_enabled(progress, quiet)
    # compress --fit reads the same rows again and records the bad ones then.
    policy = on_bad_rows if record_bad_rows else "fail"
    with _bad_rows(policy, bad_rows_path, output) as sink:
        with _progress_bar(show, "reading", _total_rows(paths)) as update:
            # --max-rows: unset = the default caps, 0 = every row, N = a sample of N.
            data = load_training_data(paths, kind=kind, columns=columns or None,
                                      exclude=exclude, id_columns=id_columns,
                                      categorical=categorical,
                                      max_rows="auto" if max_rows is None else (max_rows or None),
                                      seed=seed, skip_bad_rows=on_bad_rows == "skip",
                                      progress=update)
        if not quiet and data.sampled:
            click.echo(f"vaekit: training on a uniform sample of {data.data.shape[0]:,} of "
                       f"{data.rows_read:,} rows (--seed {seed}; --max-rows sets the size)",
                       err=True)
        if record_bad_rows:
            sink.add(data.bad)
    params: dict[str, Any] = {
        "kind": data.kind,
        "random_state": seed,
        "verbose": show,
        "categorical_features": categorical or None,
    }
    if latent_dim is not None:
        params["latent_dim"] = latent_dim
    if epochs is not None:
        params["epochs"] = epochs
    if default_budget and bytes_per_row is None and bits is None:
        from ..estimators.compressor import default_bytes_per_row

        shape = data.data.shape
        n_values = math.prod(shape[1:]) if data.kind == "image" else shape[1]
        bytes_per_row = default_bytes_per_row(data.kind, n_values)
        if not quiet:
            unit = "pixel value" if data.kind == "image" else "model column"
            click.echo(f"vaekit: no --bytes-per-row given: budget {bytes_per_row:g} bytes/row "
                       f"({'1 bit' if data.kind == 'image' else '1 byte'} per {unit}, "
                       f"{n_values} {unit}s)", err=True)
    codec_progress = None
    if bytes_per_row is not None or bits is not None:
        from ..estimators import VAECompressor

        est = VAECompressor(bytes_per_row=bytes_per_row, bits=bits, **params)
        codec_progress = _codec_bar(show)
    else:
        from ..estimators import VAEAnomalyDetector

        est = VAEAnomalyDetector(n_samples=samples, contamination=contamination or "auto",
                                 **params)
    if categorical and data.kind == "tabular":
        unknown = [c for c in categorical if c not in data.data.columns]
        if unknown:
            from ..errors import did_you_mean

            raise DataError(f"--categorical names column(s) {unknown} that are not in the "
                            "training columns" + did_you_mean(unknown[0], data.data.columns))
    start = time.perf_counter()
    try:
        if codec_progress is None:
            est.fit(data.data)
        else:
            with codec_progress as update:
                est.fit(data.data, progress=update)
    except DataError as exc:
        if exc.file is not None:
            raise
        # The estimator sees one concatenated table; name the files it came from.
        raise DataError(exc.reason, file=", ".join(paths), column=exc.column) from None
    if data.kind == "tabular":
        est.fitted_.id_columns = id_columns  # remembered: score/compress use them by default
    if not quiet:
        rows = data.data.shape[0]
        last = est.history_[-1] if est.history_ else {}
        loss = last.get("val_elbo", last.get("train_elbo"))
        held = [h["val_distortion"] for h in est.history_ if "val_distortion" in h]
        # A budgeted compressor's history is stages and passes, judged on held-out rows.
        trained = (f"held-out error {min(held):.4g} (kept: {last['kept']})"
                   if held and "kept" in last else f"{len(est.history_)} epochs")
        summary = (f"vaekit: fitted {type(est).__name__} on {rows} rows in "
                   f"{time.perf_counter() - start:.1f} s, {trained}")
        if loss is not None:  # the sign of the progress bar and the report: lower = better
            summary += f", final negative ELBO {-loss:.3f} nats/row"
        if hasattr(est, "threshold_"):
            summary += f", threshold {est.threshold_:.3f} nats"
        click.echo(summary, err=True)
    return est


@contextmanager
def _codec_bar(enabled: bool) -> Iterator[Callable[[str, int, int, float | None], None]]:
    """The progress bar of a compressor's codec training (stderr; nothing if disabled).

    Shows the stage ("training codec, pass 2/4"), gradient steps done of those
    planned, and the held-out distortion: the mean coded loss per held-out row
    (squared error in standard deviations, summed over numeric columns, plus nats
    for binary and categorical ones), the number the fit keeps the best state by.
    """
    if not enabled:
        yield lambda phase, done, total, held_out: None
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc="codec", unit=" steps", file=sys.stderr, dynamic_ncols=True,
               mininterval=0.5)

    def update(phase: str, done: int, total: int, held_out: float | None) -> None:
        if total and bar.total != total:
            bar.total = total
        new_stage = phase != bar.desc
        bar.set_description_str(phase, refresh=False)
        if held_out is not None:
            bar.set_postfix_str(f"held-out error {held_out:.4g}", refresh=False)
        bar.update(done - bar.n)  # redraws at most every mininterval ...
        if new_stage:
            bar.refresh()  # ... but a new stage (a pass, say) is drawn at once

    try:
        yield update
    finally:
        bar.close()
