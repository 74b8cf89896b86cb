"""What every report figure shares: the install hint, sizes, colors, a bare Figure.

Kept apart from :mod:`vaekit.report.figures` so the figure modules
(:mod:`~vaekit.report.figures`, :mod:`~vaekit.report.curves`,
:mod:`~vaekit.report.metrics`) build on it without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

    from ..fitted import FittedVAE

INSTALL_HINT = "matplotlib is needed for reports: pip install 'vaekit[report]'"


def install_hint() -> str:
    """How to get matplotlib, said the way this vaekit was installed.

    A checkout installed with ``pip install -e`` (PEP 610's ``direct_url.json`` says
    editable) gets the extra from that folder, with the constraints file that keeps
    the pinned CPU torch; an installed wheel gets ``pip install 'vaekit[report]'``.
    The pip is this interpreter's, so the line works in the venv vaekit runs in.
    """
    import json
    import sys
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    pip = f"{sys.executable} -m pip install"
    try:
        direct = json.loads(metadata.distribution("vaekit").read_text("direct_url.json")
                            or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        direct = {}
    url = direct.get("url", "") if isinstance(direct, dict) else ""
    if (isinstance(direct, dict) and (direct.get("dir_info") or {}).get("editable")
            and url.startswith("file://")):
        folder = unquote(urlparse(url).path)
        return (f"matplotlib is needed for reports: {pip} -c {folder}/constraints.txt "
                f"-e '{folder}[report]'")
    return f"matplotlib is needed for reports: {pip} 'vaekit[report]'"

# One width for every figure so the report reads as one column; the dpi is set in
# :mod:`vaekit.report.html` when the figures are rendered.
WIDTH_IN = 10.0
# Train and validation colors (colorblind-safe pair), reused across figures.
TRAIN_COLOR = "#0072B2"
VAL_COLOR = "#D55E00"
THRESHOLD_COLOR = "#CC0000"
# Colors for label groups (matplotlib's tab10, which separates up to 10 classes).
_CATEGORY_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _plain(value: Any) -> str:
    """Data (ids, labels, column names) as literal matplotlib text.

    Matplotlib reads text between two ``$`` as math (mathtext): an id ``$x^2$`` was
    drawn as a formula and ``a$b^$c`` crashed the report.  An escaped ``\\$`` is
    drawn as a plain dollar sign.
    """
    return str(value).replace("$", r"\$")


def _figure(height: float, width: float = WIDTH_IN) -> Figure:
    """A new, unattached Figure (see the module docstring for why not pyplot)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(install_hint()) from None
    return Figure(figsize=(width, height), layout="constrained")


def fitted_model(model: Any) -> FittedVAE:
    """The :class:`~vaekit.fitted.FittedVAE` behind ``model`` (:func:`vaekit.fitted.as_fitted`).

    Imported on first use: :mod:`vaekit.fitted` pulls in torch, and importing the
    report package (as the CLI does at start-up) stays fast without it.
    """
    from ..fitted import as_fitted

    return as_fitted(model)


def require_matplotlib() -> None:
    """Raise :class:`ImportError` with the install hint if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(install_hint()) from None
