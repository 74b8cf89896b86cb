"""``vaekit report``: an HTML report of a model, optionally scored on DATA.

The report itself is :func:`vaekit.report.write_report`; DATA is read by
:func:`vaekit.report.data.read_data`.  Errors map to the exit codes of every other
command (:mod:`vaekit.cli.app`).
"""

from __future__ import annotations

import os

import click

from .app import _EPILOG_CODES, EXIT_FAILURE, _fail, app
from .options import _check_distinct, _check_output, _load_model

_REPORT_EPILOG = """\b
Examples:
  vaekit report demo.vaekit datasets/demo.csv --id-column row_id -o demo.html
  vaekit report demo.vaekit labelled.csv --id-column row_id --labels is_anomaly \\
      --top 20 -o demo.html
  vaekit report digits.vaekit digits.npz --labels is_outlier -o digits.html

(labelled.csv: datasets/demo.csv with the is_anomaly column of
datasets/demo_labels.csv added.) DATA is a CSV (.csv, .csv.gz) or Parquet table with
the model's columns, or, for image models, an .npz file (images under key X or
data) or a folder of PNG/JPEG images. For .npz files --labels and --id-column name
arrays in the file. A detector scores and ranks every row of DATA: the top
anomalies are the rows vaekit score --top ranks first; only the latent-space plot
uses the --max-rows sample. With --labels it adds ROC-AUC, average precision,
precision@k and a precision-recall curve, computed on all rows. Needs matplotlib:
pip install 'vaekit[report]'.
""" + _EPILOG_CODES


@app.command("report", epilog=_REPORT_EPILOG)
@click.argument("model", metavar="MODEL")
@click.argument("data", required=False, metavar="[DATA]")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="HTML file to write (self-contained: opens offline in any browser).")
@click.option("--labels", "label_column", metavar="COLUMN", default=None,
              help="Column of DATA with known labels; not scored. Detectors: anomaly labels, "
                   "1/true = anomaly, 0/false = normal (other values are refused); adds "
                   "ROC-AUC, average precision, precision@k and a precision-recall curve. "
                   "Compressors: any values; they color the latent plot.")
@click.option("--id-column", metavar="COLUMN", default=None,
              help="Column of DATA that identifies rows (shown for the top anomalies); not "
                   "scored.")
@click.option("--top", "top_k", type=click.IntRange(1), default=10, show_default=True,
              help="Number of top anomalies shown, out of all rows (detectors).")
@click.option("--max-rows", type=click.IntRange(1), default=5000, show_default=True,
              help="Rows of DATA drawn for the latent-space plot (compressors: also the size "
                   "and error figures); a random sample with a fixed seed, so the report is "
                   "reproducible. Detectors score and rank all rows regardless.")
@click.option("--title", default=None, help="Page title (default: 'vaekit report: <model class>').")
def report(model: str, data: str | None, output: str, label_column: str | None,
           id_column: str | None, top_k: int, max_rows: int, title: str | None) -> None:
    """Write an HTML report of MODEL, optionally scored on DATA.

    Training curves; for a detector the score distribution and the top anomalies with
    their per-column contributions; for a compressor bytes per row and the
    reconstruction error per column; for image models inputs next to
    reconstructions and samples from the prior; and a 2-D view of the latent space.
    """
    from ..report.figures import require_matplotlib

    try:
        require_matplotlib()
    except ImportError as exc:
        _fail(str(exc), EXIT_FAILURE)
    if not os.path.exists(model):
        raise click.UsageError(f"model file {model!r} does not exist")
    if data is not None and not os.path.exists(data):
        raise click.UsageError(f"data file {data!r} does not exist")
    if data is None and (label_column or id_column):
        raise click.UsageError("--labels and --id-column need DATA")
    _check_output(output, allow_stdout=False)
    _check_distinct([("model", model), ("DATA", data)], [("-o", output)])

    from ..report.data import read_data
    from ..report.html import write_report

    est = _load_model(model, estimator=True)
    X = labels = ids = None
    if data is not None:
        X, labels, ids = read_data(data, est, label_column, id_column)
    write_report(output, est, X, labels=labels, ids=ids, top_k=top_k, max_rows=max_rows,
                 title=title, data_name=os.path.basename(data) if data else None)
    if os.path.isfile(output):
        size = os.path.getsize(output)
        click.echo(f"vaekit: wrote {output} ({size / 1024:.0f} kB)", err=True)
    else:  # a FIFO or device, written in place
        click.echo(f"vaekit: wrote {output}", err=True)
