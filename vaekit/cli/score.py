"""``vaekit score``: anomaly scores (negative ELBO, nats) of rows or images."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..errors import DataError
from ..files.atomic import STDOUT, writes_in_place
from .app import _EPILOG_CODES, app
from .options import (
    MAX_SAMPLES,
    MAX_THREADS,
    FiniteFloat,
    _bad_rows,
    _bad_rows_output,
    _check_distinct,
    _check_engine,
    _check_output,
    _common_batch_options,
    _engine_options,
    _id_columns,
    _inputs,
    _load_model,
    _named_inputs,
    _progress_bar,
    _progress_enabled,
    _total_rows,
)

_SCORE_EPILOG = """\b
Example:
  vaekit score datasets/demo.csv -m demo.vaekit --id-column row_id \\
      --top 20 --explain 3 -o top20.csv

Output (CSV, or Parquet for .parquet names; '-' = stdout): one row per input row
with the id column(s) (or file and line), anomaly_score (negative ELBO, nats),
rank (1 = most anomalous; equal scores share a rank), is_anomaly (0/1), unseen
(columns holding a category the model has no level for: never seen in training,
or seen there only once; ';'-separated) and with
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
              help="Column(s) copied to the output to identify rows (default: the model's "
                   "id columns from `vaekit fit` when the input has them, else file, line).")
@click.option("--contamination", type=FiniteFloat(0, 0.5, min_open=True), default=None,
              help="Flag as anomalies the scores above this upper share of the TRAINING "
                   "scores (overrides the model's threshold).")
@click.option("--threshold", type=FiniteFloat(), default=None,
              help="Flag rows whose anomaly score exceeds T nats.")
@click.option("--top", type=click.IntRange(1), default=None,
              help="Write only the K highest-scoring rows, sorted by rank.")
@click.option("--explain", type=click.IntRange(0), default=0, show_default=True,
              help="Add the K columns that contribute most to each row's score.")
@click.option("--samples", type=click.IntRange(1, MAX_SAMPLES), default=None,
              help="Importance samples per row (default: the model's, 16). Fewer is faster; "
                   "1 = plain ELBO, a slightly higher score than the model's threshold "
                   "was set for.")
@click.option("--no-rank", is_flag=True,
              help="Leave out the rank column: one pass, constant memory.")
@click.option("--threads", type=click.IntRange(0, MAX_THREADS), default=None,
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
    from ..engines.local import iter_scored
    from ..files.writers import TableWriter
    from ..jobs.rank import RankedOutput
    from ..jobs.score import ScoreOptions, resolve_threshold, score_schema

    if contamination is not None and threshold is not None:
        raise click.UsageError("give --contamination or --threshold, not both")
    if top is not None and no_rank:
        raise click.UsageError("--top needs ranking; drop --no-rank")
    _check_engine(engine, scheduler, workers)
    if engine == "dask" and threads is not None:
        raise click.UsageError("--threads goes with --engine local (Dask: --workers)")
    paths = _inputs(inputs)
    _check_output(output)
    _check_distinct(_named_inputs(paths, model),
                    [("-o", output), _bad_rows_output(on_bad_rows, bad_rows_path, output)])
    est = _load_model(model)
    model_samples = int(est.params.get("n_samples", 16))
    if samples is not None and samples != model_samples and threshold is None:
        warnings.warn(f"--samples {samples} differs from the model's {model_samples}: scores "
                      "shift slightly against the model's threshold (pass --threshold to fix "
                      "it)", UserWarning, stacklevel=1)
    try:
        cutoff = resolve_threshold(est, threshold=threshold, contamination=contamination)
    except DataError as exc:  # a missing option, not bad data
        raise click.UsageError(exc.reason) from None
    options = ScoreOptions(
        id_columns=tuple(_id_columns(id_columns, est, paths)),
        threshold=cutoff,
        explain=explain,
        n_samples=samples or model_samples,
    )
    rank = not no_rank
    schema = score_schema(est, options, rank=rank)
    show = _progress_enabled(progress, quiet)
    n_rows = n_flagged = 0
    # The rank spool goes beside the output (same disk), but never into /dev or next
    # to a FIFO: there, and for stdout, it goes to the temp folder ($TMPDIR).
    spool_dir = None if output == STDOUT or writes_in_place(output) else str(Path(output).parent)
    with _bad_rows(on_bad_rows, bad_rows_path, output) as sink, \
            _progress_bar(show, "scoring", _total_rows(paths)) as update, \
            TableWriter(output, schema, background=True) as writer, \
            RankedOutput(schema, top=top,
                         tmp_dir=spool_dir) as ranked:
        if engine == "dask":
            from ..engines.dask import score_files_dask

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
