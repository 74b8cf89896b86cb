"""The ``vaekit`` command line: fit, score, compress, decompress, info.

The CLI owns the terminal: data goes to standard output only where a command
writes data there (``-o -``); progress, warnings, summaries and errors go to
standard error.  User errors never print a traceback; they exit with a code
that says what kind of problem it was (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import pyarrow as pa

from ._version import __version__
from .errors import DataError, FileFormatError, TrainingError
from .files.readers import BadRow, estimate_rows, expand_inputs
from .files.writers import (
    BAD_ROWS_SCHEMA,
    STDOUT,
    TableWriter,
    bad_rows_table,
    default_bad_rows_path,
)

EXIT_OK = 0
EXIT_FAILURE = 1  # an unexpected failure (I/O error, a bug)
EXIT_USAGE = 2  # wrong options or arguments, an input file that does not exist
EXIT_DATA = 3  # the input data cannot be used as given
EXIT_FILE = 4  # a model or .vkc file that is corrupt, foreign or the wrong one
EXIT_TRAINING = 5  # training diverged
EXIT_INTERRUPTED = 130
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILURE: "unexpected failure (I/O error)",
    EXIT_USAGE: "usage error (bad option, missing input file)",
    EXIT_DATA: "bad input data (message names file, line and column)",
    EXIT_FILE: "bad model or .vkc file",
    EXIT_TRAINING: "training failed",
    EXIT_INTERRUPTED: "interrupted",
}

_EPILOG_CODES = "\nExit codes: " + ", ".join(f"{k} {v}" for k, v in EXIT_CODES.items()) + "."


# --------------------------------------------------------------------------- plumbing


def _fail(message: str, code: int) -> None:
    click.echo(f"vaekit: error: {message}", err=True)
    raise click.exceptions.Exit(code)


def _show_warning(message: Any, category: Any, filename: str, lineno: int,
                  file: Any = None, line: Any = None) -> None:
    click.echo(f"vaekit: warning: {message}", err=True)


class _Group(click.Group):
    """Maps vaekit's exceptions to exit codes and one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():
            # Show vaekit's own warnings (extra columns, ...) but not the interpreter's
            # resource or deprecation notices from third-party libraries.
            warnings.simplefilter("ignore")
            warnings.simplefilter("default", UserWarning)
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except DataError as exc:
                _fail(str(exc), EXIT_DATA)
            except FileFormatError as exc:
                _fail(str(exc), EXIT_FILE)
            except TrainingError as exc:
                _fail(str(exc), EXIT_TRAINING)
            except FileNotFoundError as exc:
                _fail(f"no such file: {exc.filename or exc}", EXIT_USAGE)
            except BrokenPipeError:
                # The reader of our stdout went away (e.g. `| head`): not an error of
                # ours.  Point stdout at /dev/null so the final flush stays quiet.
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                except (OSError, ValueError, AttributeError):
                    pass
                raise click.exceptions.Exit(EXIT_FAILURE) from None
            except KeyboardInterrupt:
                _fail("interrupted; no output was written", EXIT_INTERRUPTED)
            except OSError as exc:
                _fail(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}",
                      EXIT_FAILURE)


def _split(values: Sequence[str]) -> list[str]:
    """Options that take several names accept repeats and comma-separated lists."""
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _inputs(patterns: Sequence[str]) -> list[str]:
    try:
        return expand_inputs(patterns)
    except FileNotFoundError as exc:
        raise click.UsageError(f"input {exc.args[0]!r} does not exist") from None


def _check_output(path: str, *, allow_stdout: bool = True) -> None:
    if path == STDOUT:
        if not allow_stdout:
            raise click.UsageError("this output cannot go to standard output")
        return
    parent = Path(path).parent
    if not parent.is_dir():
        raise click.UsageError(f"output folder {str(parent)!r} does not exist")


def _load_model(path: str) -> Any:
    from .estimators import load

    if not os.path.exists(path):
        raise click.UsageError(f"model file {path!r} does not exist")
    return load(path)


def _progress_enabled(progress: bool, quiet: bool) -> bool:
    if quiet:
        return False
    return progress or sys.stderr.isatty()


@contextmanager
def _progress_bar(enabled: bool, desc: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on stderr counting rows (rows done, rows/s, ETA when a total is known)."""
    if not enabled:
        yield lambda n: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr,
               dynamic_ncols=True, mininterval=0.5)

    def update(n: int) -> None:
        # Totals of CSV files are estimated from their first bytes; grow if exceeded.
        if bar.total is not None and bar.n + n > bar.total:
            bar.total = bar.n + n
        bar.update(n)

    try:
        yield update
    finally:
        bar.close()


def _total_rows(inputs: Sequence[str]) -> int | None:
    totals = [estimate_rows(p) for p in inputs]
    return None if any(t is None for t in totals) else sum(t for t in totals if t is not None)


class _BadRowSink:
    """Collects skipped rows into an atomic CSV side file, opened on the first one."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.count = 0
        self._writer: TableWriter | None = None

    def add(self, rows: list[BadRow]) -> None:
        if not rows:
            return
        if self.path is None:
            raise rows[0].error()
        if self._writer is None:
            self._writer = TableWriter(self.path, BAD_ROWS_SCHEMA).__enter__()
        self._writer.write(bad_rows_table(rows))
        self.count += len(rows)

    def finish(self, ok: bool) -> None:
        if self._writer is not None:
            self._writer.__exit__(None if ok else RuntimeError, None, None)

    def report(self) -> None:
        if self.count:
            click.echo(f"vaekit: skipped {self.count} bad row(s); see {self.path}", err=True)


@contextmanager
def _bad_rows(on_bad_rows: str, bad_rows_path: str | None, output: str) -> Iterator[_BadRowSink]:
    path = None
    if on_bad_rows == "skip":
        path = bad_rows_path or default_bad_rows_path(output)
        _check_output(path, allow_stdout=False)
    sink = _BadRowSink(path)
    try:
        yield sink
    except BaseException:
        sink.finish(ok=False)
        raise
    sink.finish(ok=True)
    sink.report()


def _common_batch_options(f: Callable) -> Callable:
    options = [
        click.option("--on-bad-rows", type=click.Choice(["fail", "skip"]), default="fail",
                     show_default=True,
                     help="fail: stop at the first unusable row (non-numeric text in a numeric "
                          "column, inf, wrong number of fields). skip: leave such rows out and "
                          "list them, with the reason, in the --bad-rows file."),
        click.option("--bad-rows", "bad_rows_path", type=str, default=None,
                     help="Side file (CSV) for skipped rows. Default: next to the output, "
                          "OUT.bad-rows.csv."),
        click.option("--progress", is_flag=True,
                     help="Show a progress bar on stderr even when it is not a terminal."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _engine_options(f: Callable) -> Callable:
    options = [
        click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
                     show_default=True,
                     help="local: stream in this process. dask: one task per input file on "
                          "a Dask cluster (needs vaekit[dask]); same results, bit for bit."),
        click.option("--scheduler", default=None,
                     help="With --engine dask: scheduler address (tcp://HOST:PORT); default: "
                          "start a local cluster for this run."),
        click.option("--workers", type=click.IntRange(1), default=None,
                     help="With --engine dask and no --scheduler: worker processes "
                          "(default: one per CPU core)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _check_engine(engine: str, scheduler: str | None, workers: int | None) -> None:
    if engine == "local" and (scheduler is not None or workers is not None):
        raise click.UsageError("--scheduler and --workers go with --engine dask")
    if engine == "dask":
        from .engines import dask_available

        if not dask_available():
            raise click.UsageError("--engine dask needs Dask: pip install 'vaekit[dask]'")


# --------------------------------------------------------------------------- app


@click.group(cls=_Group, epilog=_EPILOG_CODES, context_settings={"help_option_names":
                                                                   ["-h", "--help"]})
@click.version_option(__version__, prog_name="vaekit")
def app() -> None:
    """VAEs for anomaly detection (negative ELBO, nats) and lossy compression of tables
    and images.

    \b
    Typical use:
      vaekit fit train.csv --id-column row_id -o model.vaekit
      vaekit score 'exports/*.csv' -m model.vaekit --id-column row_id -o scores.csv
      vaekit compress big.csv -m model.vaekit --id-column row_id -o big.vkc
      vaekit decompress big.vkc -m model.vaekit -o restored.csv
      vaekit info model.vaekit
    """


# --------------------------------------------------------------------------- fit


_FIT_EPILOG = """\b
Example:
  vaekit fit datasets/demo.csv --id-column row_id --epochs 20 --seed 0 -o demo.vaekit

Inputs: CSV (.csv, .csv.gz), Parquet, .npz image arrays or folders of PNG/JPEG
images; several files are concatenated in the order given (globs allowed).
Fitting holds the training rows in memory; use --max-rows to train on the first
N rows only.
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
              help="Identifier column(s): not modelled (pass them again to score/compress).")
@click.option("--categorical", multiple=True,
              help="Treat these columns as categories even if they hold numbers.")
@click.option("--latent-dim", type=click.IntRange(1), default=None,
              help="Latent dimensions (default: auto).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Training epochs "
              "(default: auto, from the number of rows).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: same data + same seed = same model file.")
@click.option("--contamination", type=click.FloatRange(0, 0.5, min_open=True), default=None,
              help="Expected share of anomalies in the training data; sets the model's "
                   "threshold (default: Tukey fence of the training scores).")
@click.option("--samples", type=click.IntRange(1), default=16, show_default=True,
              help="Importance samples per row when scoring (accuracy vs. speed).")
@click.option("--bytes-per-row", type=click.FloatRange(0, min_open=True), default=None,
              help="Train a compressor tuned for this budget (bytes per row of stored "
                   "codes) instead of a detector; scoring with it needs --threshold.")
@click.option("--bits", type=click.IntRange(0, 16), default=None,
              help="Expert alternative to --bytes-per-row: bits per informative latent "
                   "dimension.")
@click.option("--max-rows", type=click.IntRange(1), default=None,
              help="Train on the first N rows only (bounds memory for huge inputs).")
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
    est = _fit_estimator(paths, kind=kind, columns=_split(columns), exclude=_split(exclude),
                         id_columns=_split(id_columns), categorical=_split(categorical),
                         latent_dim=latent_dim, epochs=epochs, seed=seed,
                         contamination=contamination, samples=samples,
                         bytes_per_row=bytes_per_row, bits=bits, max_rows=max_rows,
                         on_bad_rows=on_bad_rows, bad_rows_path=bad_rows_path, output=output,
                         progress=progress, quiet=quiet)
    est.save(output)
    if not quiet:
        click.echo(f"vaekit: wrote {output} ({os.path.getsize(output)} bytes)", err=True)


def _fit_estimator(paths: list[str], *, kind: str, columns: list[str], exclude: list[str],
                   id_columns: list[str], categorical: list[str], latent_dim: int | None,
                   epochs: int | None, seed: int, contamination: float | None, samples: int,
                   bytes_per_row: float | None, bits: int | None, max_rows: int | None,
                   on_bad_rows: str, bad_rows_path: str | None, output: str, progress: bool,
                   quiet: bool, record_bad_rows: bool = True) -> Any:
    from .batch import load_training_data

    if bytes_per_row is not None and bits is not None:
        raise click.UsageError("give --bytes-per-row or --bits, not both")
    show = _progress_enabled(progress, quiet)
    # compress --fit reads the same rows again and records the bad ones then.
    policy = on_bad_rows if record_bad_rows else "fail"
    with _bad_rows(policy, bad_rows_path, output) as sink:
        with _progress_bar(show, "reading", _total_rows(paths)) as update:
            data = load_training_data(paths, kind=kind, columns=columns or None,
                                      exclude=exclude, id_columns=id_columns,
                                      categorical=categorical, max_rows=max_rows, skip_bad_rows=on_bad_rows == "skip",
                                      progress=update)
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
    if bytes_per_row is not None or bits is not None:
        from .estimators import VAECompressor

        est = VAECompressor(bytes_per_row=bytes_per_row, bits=bits, **params)
    else:
        from .estimators import VAEAnomalyDetector

        est = VAEAnomalyDetector(n_samples=samples, contamination=contamination or "auto",
                                 **params)
    if categorical and data.kind == "tabular":
        unknown = [c for c in categorical if c not in data.data.columns]
        if unknown:
            raise DataError(f"--categorical names column(s) {unknown} that are not in the "
                            "training columns")
    start = time.perf_counter()
    try:
        est.fit(data.data)
    except DataError as exc:
        if exc.file is not None:
            raise
        # The estimator sees one concatenated table; name the files it came from.
        raise DataError(exc.reason, file=", ".join(paths), column=exc.column) from None
    if not quiet:
        rows = data.data.shape[0]
        last = est.history_[-1] if est.history_ else {}
        loss = last.get("val_elbo", last.get("train_elbo"))
        summary = (f"vaekit: fitted {type(est).__name__} on {rows} rows in "
                   f"{time.perf_counter() - start:.1f} s, {len(est.history_)} epochs")
        if loss is not None:
            summary += f", final ELBO {loss:.3f} nats/row"
        if hasattr(est, "threshold_"):
            summary += f", threshold {est.threshold_:.3f} nats"
        click.echo(summary, err=True)
    return est


# --------------------------------------------------------------------------- score


_SCORE_EPILOG = """\b
Example:
  vaekit score datasets/demo.csv -m demo.vaekit --id-column row_id \\
      --top 20 --explain 3 -o top20.csv

Output (CSV, or Parquet for .parquet names; '-' = stdout): one row per input row
with the id column(s) (or file and line), anomaly_score (negative ELBO, nats),
rank (1 = most anomalous; equal scores share a rank), is_anomaly (0/1), unseen
(columns holding a category not seen in training, ';'-separated) and with
--explain K the K columns contributing most (topN_column, topN_nats). Rows keep
the input order; with --top K only the K highest-scoring rows are written, by
rank. Ranking holds 8 bytes per row in memory (--no-rank: none). The output file
appears only when the whole run succeeded.
""" + _EPILOG_CODES


@app.command(epilog=_SCORE_EPILOG)
@click.argument("inputs", nargs=-1, required=True)
@click.option("-m", "--model", required=True, help="Model file from `vaekit fit`.")
@click.option("-o", "--output", default=STDOUT, show_default=True,
              help="Output file (.csv or .parquet) or '-' for stdout.")
@click.option("--id-column", "id_columns", multiple=True,
              help="Column(s) copied to the output to identify rows (default: file, line).")
@click.option("--contamination", type=click.FloatRange(0, 0.5, min_open=True), default=None,
              help="Flag as anomalies the scores above this upper share of the TRAINING "
                   "scores (overrides the model's threshold).")
@click.option("--threshold", type=float, default=None,
              help="Flag rows whose anomaly score exceeds T nats.")
@click.option("--top", type=click.IntRange(1), default=None,
              help="Write only the K highest-scoring rows, sorted by rank.")
@click.option("--explain", type=click.IntRange(0), default=0, show_default=True,
              help="Add the K columns that contribute most to each row's score.")
@click.option("--samples", type=click.IntRange(1), default=None,
              help="Importance samples per row (default: the model's, 16). Fewer is faster; "
                   "1 = plain ELBO, a slightly higher score than the model's threshold "
                   "was set for.")
@click.option("--no-rank", is_flag=True,
              help="Leave out the rank column: one pass, constant memory.")
@click.option("--threads", type=click.IntRange(0), default=None,
              help="CPU threads scoring chunks at once (0 = one per core; default: the "
                   "model's n_jobs, else 1). Reading always overlaps scoring in one more "
                   "thread. Scores are bit-identical for any value.")
@_engine_options
@_common_batch_options
def score(inputs: tuple[str, ...], model: str, output: str, id_columns: tuple[str, ...],
          contamination: float | None, threshold: float | None, top: int | None, explain: int,
          samples: int | None, no_rank: bool, threads: int | None, engine: str,
          scheduler: str | None,
          workers: int | None, on_bad_rows: str, bad_rows_path: str | None,
          progress: bool, quiet: bool) -> None:
    """Score rows (or images) by how anomalous they are: negative ELBO in nats."""
    from .batch import RankedOutput, ScoreOptions, iter_scored, resolve_threshold, score_schema

    if contamination is not None and threshold is not None:
        raise click.UsageError("give --contamination or --threshold, not both")
    if top is not None and no_rank:
        raise click.UsageError("--top needs ranking; drop --no-rank")
    _check_engine(engine, scheduler, workers)
    if engine == "dask" and threads is not None:
        raise click.UsageError("--threads goes with --engine local (Dask: --workers)")
    paths = _inputs(inputs)
    _check_output(output)
    est = _load_model(model)
    model_samples = int(getattr(est, "n_samples", 16))
    if samples is not None and samples != model_samples and threshold is None:
        warnings.warn(f"--samples {samples} differs from the model's {model_samples}: scores "
                      "shift slightly against the model's threshold (pass --threshold to fix "
                      "it)", UserWarning, stacklevel=1)
    try:
        cutoff = resolve_threshold(est, threshold=threshold, contamination=contamination)
    except DataError as exc:  # a missing option, not bad data
        raise click.UsageError(exc.reason) from None
    options = ScoreOptions(
        id_columns=tuple(_split(id_columns)),
        threshold=cutoff,
        explain=explain,
        n_samples=samples or model_samples,
    )
    rank = not no_rank
    schema = score_schema(est, options, rank=rank)
    show = _progress_enabled(progress, quiet)
    n_rows = n_flagged = 0
    with _bad_rows(on_bad_rows, bad_rows_path, output) as sink, \
            _progress_bar(show, "scoring", _total_rows(paths)) as update, \
            TableWriter(output, schema, background=True) as writer, \
            RankedOutput(schema, top=top,
                         tmp_dir=None if output == STDOUT else str(Path(output).parent)) as ranked:
        if engine == "dask":
            from .engines.dask import score_files_dask

            scored = score_files_dask(paths, est, options, scheduler=scheduler,
                                      skip_bad_rows=on_bad_rows == "skip", progress=update,
                                      n_workers=workers)
        else:
            scored = iter_scored(paths, est, options, skip_bad_rows=on_bad_rows == "skip",
                                 progress=update, threads=threads)
        for table, bad in scored:
            sink.add(bad)
            n_rows += table.num_rows
            n_flagged += int(table.column("is_anomaly").to_numpy().sum())
            if rank:
                ranked.add(table)
            else:
                writer.write(table)
        if rank:
            for table in ranked.tables():
                writer.write(table)
    if not quiet:
        click.echo(f"vaekit: scored {n_rows} rows, {n_flagged} flagged as anomalies "
                   f"(threshold {options.threshold:.3f} nats)", err=True)


# --------------------------------------------------------------------------- compress


_COMPRESS_EPILOG = """\b
Examples:
  vaekit compress datasets/demo.csv -m demo.vaekit --id-column row_id -o demo.vkc
  vaekit compress datasets/demo.csv --fit --bytes-per-row 4 --id-column row_id \\
      --embed-model -o demo.vkc

Rows are stored as quantized latent codes (lossy); id columns are stored exactly.
Columns that are neither model nor id columns are dropped with a warning. The
.vkc file appears only when the whole run succeeded. With --fit, a model is
trained on the inputs first (held in memory; see --max-rows) and written to
--save-model if given.
""" + _EPILOG_CODES


@app.command(epilog=_COMPRESS_EPILOG)
@click.argument("inputs", nargs=-1, required=True)
@click.option("-m", "--model", default=None, help="Model file from `vaekit fit`.")
@click.option("-o", "--output", required=True, help="Container file to write (.vkc).")
@click.option("--id-column", "id_columns", multiple=True,
              help="Column(s) stored losslessly beside the codes.")
@click.option("--embed-model", is_flag=True,
              help="Store the model in the .vkc file, so decompress needs no -m.")
@click.option("--fit", "fit_first", is_flag=True,
              help="Train a model on the inputs first, then compress them.")
@click.option("--bytes-per-row", type=click.FloatRange(0, min_open=True), default=None,
              help="With --fit: the compression budget (bytes per row) the model is tuned for.")
@click.option("--bits", type=click.IntRange(0, 16), default=None,
              help="With --fit: expert alternative to --bytes-per-row: bits per "
                   "informative latent dimension.")
@click.option("--save-model", default=None, help="With --fit: also write the model here.")
@click.option("--kind", type=click.Choice(["auto", "tabular", "image"]), default="auto",
              show_default=True, help="With --fit: tables or images.")
@click.option("--categorical", multiple=True, help="With --fit: columns to treat as "
              "categories.")
@click.option("--latent-dim", type=click.IntRange(1), default=None, help="With --fit.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="With --fit.")
@click.option("--seed", type=int, default=0, show_default=True, help="With --fit.")
@click.option("--max-rows", type=click.IntRange(1), default=None,
              help="With --fit: train on the first N rows (all rows are compressed).")
@_engine_options
@_common_batch_options
def compress(inputs: tuple[str, ...], model: str | None, output: str,
             id_columns: tuple[str, ...], embed_model: bool, fit_first: bool,
             bytes_per_row: float | None, bits: int | None, save_model: str | None, kind: str,
             categorical: tuple[str, ...], latent_dim: int | None, epochs: int | None,
             seed: int, max_rows: int | None, engine: str, scheduler: str | None,
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
    paths = _inputs(inputs)
    _check_output(output, allow_stdout=False)
    ids = _split(id_columns)
    if fit_first:
        if save_model is not None:
            _check_output(save_model, allow_stdout=False)
        est = _fit_estimator(paths, kind=kind, columns=[], exclude=[], id_columns=ids,
                             categorical=_split(categorical), latent_dim=latent_dim,
                             epochs=epochs, seed=seed, contamination=None, samples=1,
                             bytes_per_row=bytes_per_row, bits=bits, max_rows=max_rows,
                             on_bad_rows=on_bad_rows, bad_rows_path=bad_rows_path,
                             output=output, progress=progress, quiet=quiet,
                             record_bad_rows=False)
    else:
        est = _load_model(model)  # type: ignore[arg-type]
    show = _progress_enabled(progress, quiet)
    with _bad_rows(on_bad_rows, bad_rows_path, output) as sink, \
            _progress_bar(show, "compressing", _total_rows(paths)) as update:
        if engine == "dask":
            from .engines.dask import compress_files_dask

            manifest = compress_files_dask(paths, est, output, id_columns=ids,
                                           embed_model=embed_model, scheduler=scheduler,
                                           skip_bad_rows=on_bad_rows == "skip",
                                           on_bad_rows=sink.add, progress=update,
                                           n_workers=workers)
            n_rows, size = manifest.n_rows, manifest.parts_bytes
        else:
            n_rows, size = _compress_local(paths, est, output, ids, embed_model,
                                           on_bad_rows == "skip", sink, update)
    if save_model is not None:
        est.save(save_model)
    if not quiet:
        click.echo(f"vaekit: compressed {n_rows} rows into {output}: {size} bytes "
                   f"({size / max(1, n_rows):.2f} bytes/row)", err=True)


def _compress_local(paths: list[str], est: Any, output: str, ids: list[str], embed_model: bool,
                    skip_bad_rows: bool, sink: _BadRowSink,
                    update: Callable[[int], None]) -> tuple[int, int]:
    """The local engine for compress; returns (rows, bytes written)."""
    from .batch import iter_compress_chunks
    from .codec.compressor import CompressedWriter

    writer = CompressedWriter(output, est, id_columns=ids, embed_model=embed_model)
    try:
        for frame, bad in iter_compress_chunks(paths, est, ids, skip_bad_rows=skip_bad_rows):
            sink.add(bad)
            if len(frame):
                writer.write(frame)
            update(len(frame) + len(bad))
        if writer.n_rows == 0:
            raise DataError("no rows to compress")
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return writer.n_rows, os.path.getsize(output)


# --------------------------------------------------------------------------- decompress


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
    from .codec.manifest import count_rows
    from .codec.manifest import iter_decompressed_any as iter_decompressed

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
            from .files.atomic import atomic_write

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


# --------------------------------------------------------------------------- info


@app.command(epilog="""\b
Examples:
  vaekit info demo.vaekit
  vaekit info demo.vkc --json
""" + _EPILOG_CODES)
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--verify", is_flag=True,
              help="For a .vkc file: also read every chunk and check its checksum.")
def info(path: str, as_json: bool, verify: bool) -> None:
    """Show what a model (.vaekit) or container (.vkc) file holds.

    Models: estimator, columns and their kinds, network, training summary,
    threshold, fingerprint. Containers: rows, chunks, sizes (bytes/row), the
    model fingerprint they need and their header. Also reads the manifest of a
    multi-part .vkc written by the Dask engine.
    """
    if not os.path.exists(path):
        raise click.UsageError(f"{path!r} does not exist")
    facts = describe(path, verify=verify)
    if as_json:
        click.echo(json.dumps(facts, indent=2, sort_keys=True, allow_nan=False))
    else:
        click.echo(render(facts))


def describe(path: str, *, verify: bool = False) -> dict[str, Any]:
    """What a model or container file holds, as a JSON-ready dict.

    ``verify`` reads every chunk of a container to check its CRC (a model file's
    checksum is always checked).
    """
    from .codec.container import MAGIC, ContainerReader
    from .codec.manifest import describe_manifest, is_manifest

    if is_manifest(path):
        return describe_manifest(path)
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC))
    if head == MAGIC:
        if verify:
            with ContainerReader(path) as reader:
                reader.verify()
        return _describe_container(path)
    return _describe_model(path)


def _describe_model(path: str) -> dict[str, Any]:
    from .fitted.model_file import read_model

    tensors, meta = read_model(path)
    fitted = meta.get("fitted", {})
    schema = fitted.get("schema", {})
    history = fitted.get("history") or []
    last = history[-1] if history else {}
    facts: dict[str, Any] = {
        "file": path,
        "type": "model",
        "file_bytes": os.path.getsize(path),
        "vaekit_version": meta.get("vaekit_version"),
        "estimator": meta.get("estimator"),
        "fingerprint": meta.get("fingerprint"),
        "input_kind": fitted.get("input_kind"),
        "architecture": {**{k: fitted.get("config", {}).get(k)
                            for k in ("architecture", "latent_dim", "hidden")},
                         "parameters": int(sum(t.numel() for t in tensors.values()))},
        "training": {
            "rows": schema.get("n_rows_fit"),
            "epochs": len(history),
            "final_train_elbo_nats": last.get("train_elbo"),
            "final_val_elbo_nats": last.get("val_elbo"),
            "seed": meta.get("params", {}).get("random_state"),  # as given to fit --seed
        },
    }
    if schema.get("type") == "tabular":
        facts["columns"] = [
            {"name": c["name"], "kind": c["kind"], "dtype": c["dtype"],
             **({"levels": len(c.get("levels", []))} if c["kind"] != "numeric" else {})}
            for c in schema.get("columns", [])
        ]
    else:
        facts["image"] = {k: schema.get(k) for k in ("shape", "layout", "dtype")}
    scores = fitted.get("decision_scores")
    if scores:
        from .fitted.scoring import threshold_from_scores

        params = meta.get("params", {})
        facts["anomaly"] = {
            "contamination": params.get("contamination"),
            "n_samples": params.get("n_samples"),
            "threshold_nats": threshold_from_scores(np.asarray(scores),
                                                    params.get("contamination", "auto")),
        }
    return facts


def _describe_container(path: str) -> dict[str, Any]:
    from .codec.container import read_info

    ci = read_info(path)
    header = dict(ci.header)
    facts: dict[str, Any] = {
        "file": path,
        "type": "container",
        "file_bytes": ci.file_bytes,
        "format_version": ci.format_version,
        "complete": ci.complete,
        "rows": ci.n_rows,
        "chunks": ci.n_chunks,
        "embedded_model_bytes": ci.embedded_model_bytes,
        "bytes_per_row": (round(ci.file_bytes / ci.n_rows, 3) if ci.n_rows else None),
        "header": header,
    }
    return facts


def render(facts: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe`'s dict."""
    lines = [f"{facts['file']}: vaekit {facts['type']}, {facts['file_bytes']} bytes"]
    if facts["type"] == "model":
        arch = facts["architecture"]
        tr = facts["training"]
        lines += [
            f"  estimator     {facts['estimator']} ({facts['input_kind']}), written by vaekit "
            f"{facts['vaekit_version']}",
            f"  fingerprint   {facts['fingerprint']}",
            f"  network       {arch['architecture']}, latent {arch['latent_dim']}, "
            f"hidden {arch['hidden']}, {arch['parameters']:,} parameters",
            f"  training      {tr['rows']} rows, {tr['epochs']} epochs, seed {tr['seed']}",
        ]
        for key, label in (("final_train_elbo_nats", "train ELBO"),
                           ("final_val_elbo_nats", "valid. ELBO")):
            if tr.get(key) is not None:
                lines.append(f"  {label:<13} {tr[key]:.4f} nats/row (last epoch)")
        if "anomaly" in facts:
            a = facts["anomaly"]
            lines.append(f"  threshold     {a['threshold_nats']:.4f} nats (contamination "
                         f"{a['contamination']}, {a['n_samples']} samples/row)")
        if "columns" in facts:
            lines.append(f"  columns       {len(facts['columns'])}")
            for c in facts["columns"]:
                extra = f", {c['levels']} levels" if "levels" in c else ""
                lines.append(f"    {c['name']:<24} {c['kind']:<12} {c['dtype']}{extra}")
        else:
            img = facts["image"]
            lines.append(f"  images        (C, H, W) = {tuple(img['shape'])}, layout "
                         f"{img['layout']}, {img['dtype']}")
    elif facts["type"] == "manifest":
        lines += [
            f"  rows          {facts['rows']} in {facts['parts']} part file(s), "
            f"{facts['parts_bytes']} bytes, {facts['bytes_per_row']} bytes/row",
            f"  model         {facts['model_fingerprint']} "
            f"({'stored beside the parts' if facts['model_stored'] else 'not stored'})",
        ]
    else:
        lines += [
            f"  format        version {facts['format_version']}, "
            f"{'complete' if facts['complete'] else 'INCOMPLETE (truncated or damaged)'}",
            f"  rows          {facts['rows']} in {facts['chunks']} chunk(s), "
            f"{facts['bytes_per_row']} bytes/row",
            f"  embedded model {facts['embedded_model_bytes']} bytes",
        ]
        for key, value in facts["header"].items():
            text = json.dumps(value, sort_keys=True)
            if len(text) > 100:
                text = text[:97] + "..."
            lines.append(f"  {key:<13} {text}")
    return "\n".join(lines)


def _register_report() -> None:
    # `vaekit report` (HTML report with figures) lives in vaekit.report; its module
    # imports only click and numpy, so registering it keeps start-up light.
    try:
        from .report.command import report
    except ImportError:  # a trimmed install without the report package
        return
    app.add_command(report)


_register_report()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``vaekit``)."""
    app.main(args=list(argv) if argv is not None else None, prog_name="vaekit")


__all__ = ["EXIT_CODES", "app", "main"]
