"""Plumbing shared by the commands: inputs and outputs, model loading, progress bars,
the bad-row side file, and the options several commands take."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..files.readers import BadRow, estimate_rows, expand_inputs
from ..files.writers import (
    BAD_ROWS_SCHEMA,
    STDOUT,
    TableWriter,
    bad_rows_table,
    default_bad_rows_path,
)


def _split(values: Sequence[str]) -> list[str]:
    """Options that take several names accept repeats and comma-separated lists."""
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _inputs(patterns: Sequence[str]) -> list[str]:
    """The input files that ``patterns`` (paths, globs, folders) name, in order.

    Raises
    ------
    click.UsageError
        A pattern that matches nothing.
    """
    try:
        return expand_inputs(patterns)
    except FileNotFoundError as exc:
        raise click.UsageError(f"input {exc.args[0]!r} does not exist") from None


def _check_output(path: str, *, allow_stdout: bool = True) -> None:
    """Refuse an output whose folder does not exist (or ``-`` where stdout cannot be).

    Raises
    ------
    click.UsageError
    """
    if path == STDOUT:
        if not allow_stdout:
            raise click.UsageError("this output cannot go to standard output")
        return
    parent = Path(path).parent
    if not parent.is_dir():
        raise click.UsageError(f"output folder {str(parent)!r} does not exist")


def _load_model(path: str) -> Any:
    """Load a ``.vaekit`` model file (imports the estimators, so torch, only now).

    Raises
    ------
    click.UsageError
        The file does not exist.
    """
    from ..estimators import load

    if not os.path.exists(path):
        raise click.UsageError(f"model file {path!r} does not exist")
    return load(path)


def _progress_enabled(progress: bool, quiet: bool) -> bool:
    """A bar with ``--progress``, or by default when stderr is a terminal; never with -q."""
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
    """Rows of all inputs (estimated for CSV), or None when one is unknown."""
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
    """The sink for ``--on-bad-rows``: its file appears only if the run succeeds."""
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
    """``--on-bad-rows``, ``--bad-rows``, ``--progress``, ``--quiet``."""
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
    """``--engine``, ``--scheduler``, ``--workers``."""
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
    """Refuse engine options that do not go together, or Dask when it is not installed."""
    if engine == "local" and (scheduler is not None or workers is not None):
        raise click.UsageError("--scheduler and --workers go with --engine dask")
    if engine == "dask":
        from ..engines import dask_available

        if not dask_available():
            raise click.UsageError("--engine dask needs Dask: pip install 'vaekit[dask]'")
