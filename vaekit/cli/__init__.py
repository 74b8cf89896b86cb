"""The ``vaekit`` command line: fit, score, compress, decompress, info, report.

The only package that imports click.  :mod:`.app` holds the click group, the exit
codes (:data:`EXIT_CODES`) and the error mapping; :mod:`.options` the plumbing the
commands share; each command is a module of its own and registers itself on the
group when imported here.  Importing this package imports neither torch nor
scikit-learn (``vaekit --help`` stays fast): the commands import them when they run.
"""

from . import compress, decompress, fit, info, report, score  # noqa: F401  (registers)
from .app import (
    EXIT_CODES,
    EXIT_DATA,
    EXIT_FAILURE,
    EXIT_FILE,
    EXIT_HANGUP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_TRAINING,
    EXIT_USAGE,
    app,
    main,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_DATA",
    "EXIT_FAILURE",
    "EXIT_FILE",
    "EXIT_HANGUP",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_TRAINING",
    "EXIT_USAGE",
    "app",
    "main",
]
