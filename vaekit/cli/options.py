"""Plumbing shared by the commands: inputs and outputs, model loading, progress bars,
the bad-row side file, and the options several commands take."""

from __future__ import annotations

import math
import os
import stat
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..files.atomic import STDOUT

# The readers and writers load pandas and pyarrow: imported where they are used, so
# that `vaekit --help` starts without them.
if TYPE_CHECKING:
    from ..files.readers import BadRow
    from ..files.writers import TableWriter


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
        from ..files.readers import expand_inputs

        return expand_inputs(patterns)
    except FileNotFoundError as exc:
        raise click.UsageError(f"input {exc.args[0]!r} does not exist") from None


def _check_output(path: str, *, allow_stdout: bool = True) -> None:
    """Refuse an output whose folder does not exist, a folder as output, or ``-``
    where stdout cannot be.

    Raises
    ------
    click.UsageError
    """
    if path == STDOUT:
        if not allow_stdout:
            raise click.UsageError("this output cannot go to standard output")
        return
    if os.path.isdir(path):
        raise click.UsageError(f"output {path!r} is a folder; name a file in it")
    parent = Path(path).parent
    if not parent.is_dir():
        raise click.UsageError(f"output folder {str(parent)!r} does not exist")


def _is_char_device(path: str) -> bool:
    """``/dev/null``, a terminal: reading and writing it twice destroys nothing."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _same_file(a: str, b: str) -> bool:
    """Whether two names reach the same file: by inode when both exist, else by the
    resolved real path (so symlinks, ``./x`` and ``x``, and ``..`` are caught)."""
    if os.path.exists(a) and os.path.exists(b):
        try:
            return os.path.samefile(a, b)
        except OSError:
            pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _check_distinct(inputs: Iterable[tuple[str, str | None]],
                    outputs: Iterable[tuple[str, str | None]]) -> None:
    """Refuse an output that is one of the inputs or another output.

    Outputs are written atomically (read everything, then rename onto the name), so
    ``-o INPUT`` would replace the input with exit 0.  Every output is compared with
    every input (already expanded from globs and folders), the model file and the
    outputs before it.  Standard output and character devices (``/dev/null``) are
    exempt: writing them destroys no file.

    Parameters
    ----------
    inputs, outputs : iterable of (label, path)
        ``label`` names the option in the message (``"input"``, ``"-m"``,
        ``"--bad-rows"``); a ``None`` path is skipped.

    Raises
    ------
    click.UsageError
        Naming both options and both paths.
    """
    ins = [(label, p) for label, p in inputs if p is not None and p != STDOUT]
    seen: list[tuple[str, str]] = []
    for label, out in outputs:
        if out is None or out == STDOUT or _is_char_device(out):
            continue
        for other_label, other in ins + seen:
            if _same_file(out, other):
                verb = "would replace" if (other_label, other) in ins else "is the same file as"
                raise click.UsageError(f"{label} {out!r} {verb} {other_label} {other!r}; "
                                       "choose another output name")
        seen.append((label, out))


def _check_not_under(folder: str, paths: Iterable[tuple[str, str | None]]) -> None:
    """Refuse inputs inside ``folder`` (the parts folder an output run rewrites)."""
    root = os.path.realpath(folder)
    for label, p in paths:
        if p is None or p == STDOUT:
            continue
        if (os.path.realpath(p) + os.sep).startswith(root + os.sep):
            raise click.UsageError(f"{label} {p!r} is inside {folder!r}, which this run "
                                   "writes; move it or choose another output name")


class FiniteFloat(click.FloatRange):
    """A float option that refuses ``nan`` and ``inf`` (click's float accepts both).

    ``--threshold nan`` flagged nothing, and NaN passes every range check (all its
    comparisons are false), so a range alone does not keep it out.
    """

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


# Upper bounds of integer options, so a typo cannot ask for terabytes: a network
# wider or a sample count larger than these is never useful on one machine.
MAX_LATENT_DIM = 4096
MAX_SAMPLES = 10_000
MAX_EPOCHS = 1_000_000
MAX_THREADS = 4096
MAX_SEED = 2**32 - 1  # numpy / scikit-learn random_state range
SEED = click.IntRange(0, MAX_SEED)


def _load_model(path: str, estimator: bool = False) -> Any:
    """Load a ``.vaekit`` model file as a :class:`~vaekit.fitted.FittedVAE`.

    The fitted model is all that scoring, compressing and decoding need, and loading
    it imports neither torch nor scikit-learn (the numpy runtime runs it; see
    :mod:`vaekit.fitted.backends`).  ``estimator=True`` wraps it in its scikit-learn
    estimator (which imports both).

    Raises
    ------
    click.UsageError
        The file does not exist.
    """
    if not os.path.exists(path):
        raise click.UsageError(f"model file {path!r} does not exist")
    if estimator:
        from ..estimators import load

        return load(path)
    from ..fitted.model import FittedVAE

    return FittedVAE.load(path)


def _id_columns(given: Sequence[str], est: Any, paths: Sequence[str]) -> list[str]:
    """The id columns of ``score`` / ``compress``: ``--id-column`` when given, else the
    ones the model remembers from ``vaekit fit`` when every input has them.

    An input without them (or an image input) makes every row named by file and line
    instead, with a one-line warning (the output has one layout for all inputs).
    """
    ids = _split(given)
    from ..fitted.model import as_fitted

    remembered = as_fitted(est).id_columns
    if ids or not remembered:
        return ids
    from ..files.readers import input_format, table_columns

    for path in paths:
        if input_format(path) in ("npz", "images"):
            return []
        missing = [c for c in remembered if c not in table_columns(path)]
        if missing:
            warnings.warn(f"{path} has no column {missing[0]!r}: rows are named by file and "
                          f"line, not by the model's id column(s) {remembered}", UserWarning,
                          stacklevel=2)
            return []
    return list(remembered)


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
    from ..files.readers import estimate_rows

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
            from ..files.writers import BAD_ROWS_SCHEMA, TableWriter

            self._writer = TableWriter(self.path, BAD_ROWS_SCHEMA).__enter__()
        from ..files.writers import bad_rows_table

        self._writer.write(bad_rows_table(rows))
        self.count += len(rows)

    def finish(self, ok: bool) -> None:
        if self._writer is not None:
            self._writer.__exit__(None if ok else RuntimeError, None, None)

    def report(self) -> None:
        if self.count:
            click.echo(f"vaekit: skipped {self.count} bad row(s); see {self.path}", err=True)


def _bad_rows_target(on_bad_rows: str, bad_rows_path: str | None, output: str) -> str | None:
    """The side file ``--on-bad-rows skip`` may write (None: no side file)."""
    if on_bad_rows != "skip":
        return None
    from ..files.writers import default_bad_rows_path

    return bad_rows_path or default_bad_rows_path(output)


def _bad_rows_output(on_bad_rows: str, bad_rows_path: str | None,
                     output: str) -> tuple[str, str | None]:
    """``(label, path)`` of the bad-rows side file for :func:`_check_distinct`."""
    label = "--bad-rows" if bad_rows_path else "the bad-rows file (set it with --bad-rows)"
    return label, _bad_rows_target(on_bad_rows, bad_rows_path, output)


def _named_inputs(paths: Sequence[str], model: str | None = None) -> list[tuple[str, str | None]]:
    """Inputs (and the model) as ``(label, path)`` for :func:`_check_distinct`."""
    return [("input", p) for p in paths] + [("model", model)]


@contextmanager
def _bad_rows(on_bad_rows: str, bad_rows_path: str | None, output: str) -> Iterator[_BadRowSink]:
    """The sink for ``--on-bad-rows``: its file appears only if the run succeeds."""
    path = _bad_rows_target(on_bad_rows, bad_rows_path, output)
    if path is not None:
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
        click.option("--workers", type=click.IntRange(1, MAX_THREADS), default=None,
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
