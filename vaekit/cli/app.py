"""The ``vaekit`` click group: exit codes, error mapping, warnings, :func:`main`.

The CLI owns the terminal: data goes to standard output only where a command
writes data there (``-o -``); progress, warnings, summaries and errors go to
standard error.  User errors never print a traceback; they exit with a code
that says what kind of problem it was (see :data:`EXIT_CODES`).

This module defines the group only; the command modules of :mod:`vaekit.cli`
register themselves on :data:`app` when the package is imported.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from .._version import __version__
from ..errors import DataError, FileFormatError, TrainingError

EXIT_OK = 0
EXIT_FAILURE = 1  # an unexpected failure (I/O error, a bug)
EXIT_USAGE = 2  # wrong options or arguments, an input file that does not exist
EXIT_DATA = 3  # the input data cannot be used as given
EXIT_FILE = 4  # a model or .vkc file that is corrupt, foreign or the wrong one
EXIT_TRAINING = 5  # training diverged
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): 128 + 2, as shells report it
EXIT_TERMINATED = 143  # SIGTERM (kill, a scheduler's timeout): 128 + 15
EXIT_HANGUP = 129  # SIGHUP (the terminal or ssh session closed): 128 + 1
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILURE: "unexpected failure (I/O error)",
    EXIT_USAGE: "usage error (bad option, missing input file)",
    EXIT_DATA: "bad input data (message names file, line and column)",
    EXIT_FILE: "bad model or .vkc file",
    EXIT_TRAINING: "training failed",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); temporary files removed",
    EXIT_TERMINATED: "terminated (SIGTERM); temporary files removed",
    EXIT_HANGUP: "hung up (SIGHUP: the terminal closed); temporary files removed",
}

_EPILOG_CODES = "\nExit codes: " + ", ".join(f"{k} {v}" for k, v in EXIT_CODES.items()) + "."


def _fail(message: str, code: int) -> None:
    """Print ``vaekit: error: MESSAGE`` on stderr and exit with ``code``."""
    click.echo(f"vaekit: error: {message}", err=True)
    raise click.exceptions.Exit(code)


def _show_warning(message: Any, category: Any, filename: str, lineno: int,
                  file: Any = None, line: Any = None) -> None:
    click.echo(f"vaekit: warning: {message}", err=True)


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so the same ``finally`` blocks remove temp
    files; ``signum`` gives the exit code (128 + signum, as a shell reports it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# Signals that end a run the way Ctrl-C does: a scheduler's or kill's SIGTERM, and
# SIGHUP from a closed terminal or a dropped ssh session.
_CLEAN_EXIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))


def _on_signal(signum: int, frame: Any) -> None:
    # A second signal must not cut the cleanup short (SIGKILL still works).
    for other in _CLEAN_EXIT_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise _Terminated(signum)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM and SIGHUP raise :class:`_Terminated` in the main
    thread.

    Python's default for these signals is to die at once, skipping every ``finally``:
    temporary outputs and the rank spool were left behind.  Only the main thread can
    install handlers (the CLI may be invoked from another thread, e.g. in tests);
    the previous handlers are restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in _CLEAN_EXIT_SIGNALS:
            previous[signum] = signal.signal(signum, _on_signal)
    except (ValueError, OSError):  # not allowed here: restore what was set, go on
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """vaekit's exceptions -> one-line messages and exit codes; warnings -> one line each."""
    with warnings.catch_warnings(), _sigterm_as_interrupt():
        # Show vaekit's own warnings (extra columns, ...) but not the interpreter's
        # resource or deprecation notices from third-party libraries.
        warnings.simplefilter("ignore")
        warnings.simplefilter("default", UserWarning)
        warnings.showwarning = _show_warning
        try:
            yield
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
        except _Terminated as exc:
            name = signal.Signals(exc.signum).name
            _fail(f"terminated ({name}); no output was written", 128 + exc.signum)
        except KeyboardInterrupt:
            _fail("interrupted; no output was written", EXIT_INTERRUPTED)
        except OSError as exc:
            _fail(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}",
                  EXIT_FAILURE)


class _Command(click.Command):
    """A vaekit command: the group's error mapping also when invoked on its own."""

    def invoke(self, ctx: click.Context) -> Any:
        with _mapped_errors():
            return super().invoke(ctx)


class _Group(click.Group):
    """Maps vaekit's exceptions to exit codes and one-line messages."""

    command_class = _Command

    def invoke(self, ctx: click.Context) -> Any:
        with _mapped_errors():
            return super().invoke(ctx)


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


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``vaekit``)."""
    app.main(args=list(argv) if argv is not None else None, prog_name="vaekit")


__all__ = ["EXIT_CODES", "EXIT_HANGUP", "EXIT_TERMINATED", "app", "main"]
