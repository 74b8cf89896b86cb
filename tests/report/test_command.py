"""The ``vaekit report`` click command (vaekit/cli/report.py; this file may move to
tests/cli/test_report.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from click.testing import CliRunner  # noqa: E402

from vaekit.cli.report import report  # noqa: E402

from .conftest import (  # noqa: E402
    IMAGE_DETECTOR_FIGURES,
    LABELLED_FIGURES,
    TABULAR_DETECTOR_FIGURES,
    assert_self_contained,
    figure_ids,
)


@pytest.fixture(scope="module")
def demo_with_labels(demo, tmp_path_factory) -> Path:
    """demo.csv with the label column joined in (as a user would score it)."""
    features, labels = demo
    path = tmp_path_factory.mktemp("data") / "demo_labelled.csv"
    features.assign(is_anomaly=labels["is_anomaly"]).to_csv(path, index=False)
    return path


def test_missing_matplotlib_says_how_to_install(monkeypatch, tabular_detector, tmp_path) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, name, None)
    model = tmp_path / "m.vaekit"
    tabular_detector.save(model)
    result = CliRunner().invoke(report, [str(model), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    from vaekit.report.style import install_hint

    assert install_hint() in " ".join(result.output.split())
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("direct_url", "expected"), [
    ('{"dir_info": {"editable": true}, "url": "file:///src/vaekit%20co"}',
     "-m pip install -c /src/vaekit co/constraints.txt -e '/src/vaekit co[report]'"),
    ('{"archive_info": {}, "url": "https://example.org/vaekit.whl"}',
     "-m pip install 'vaekit[report]'"),
    (None, "-m pip install 'vaekit[report]'"),
])
def test_install_hint_follows_how_vaekit_was_installed(monkeypatch, direct_url, expected):
    from importlib import metadata

    from vaekit.report.style import install_hint

    class Dist:
        def read_text(self, name):
            return direct_url if name == "direct_url.json" else None

    monkeypatch.setattr(metadata, "distribution", lambda name: Dist())
    hint = install_hint()
    assert hint.startswith("matplotlib is needed for reports: " + sys.executable)
    assert hint.endswith(expected)


def test_command_writes_report(tabular_detector, demo_with_labels, tmp_path) -> None:
    model = tmp_path / "det.vaekit"
    tabular_detector.save(model)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(report, [str(model), str(demo_with_labels), "-o", str(out),
                                         "--labels", "is_anomaly", "--id-column", "row_id",
                                         "--top", "3", "--max-rows", "1000"])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert set(figure_ids(page)) == TABULAR_DETECTOR_FIGURES | LABELLED_FIGURES
    assert_self_contained(page)
    assert "1,000 of 3,000 rows" in page and "Colored by label." in page
    # The loaded model's fingerprint (SHA-256 of the file's content) is in the header.
    assert re.search(r"<code class=hash>[0-9a-f]{64}</code>", page)


def test_command_image_npz(image_detector, digits_images, tmp_path) -> None:
    model, data = tmp_path / "img.vaekit", tmp_path / "digits.npz"
    image_detector.save(model)
    np.savez(data, X=digits_images[:200], is_outlier=np.arange(200) % 10 == 0)
    out = tmp_path / "img.html"
    result = CliRunner().invoke(report, [str(model), str(data), "-o", str(out),
                                         "--labels", "is_outlier"])
    assert result.exit_code == 0, result.output
    assert set(figure_ids(out.read_text(encoding="utf-8"))) == (IMAGE_DETECTOR_FIGURES
                                                                | LABELLED_FIGURES)


@pytest.mark.parametrize(("case", "code", "message"), [
    ("garbage model", 4, "not a vaekit model"),
    ("missing model", 2, "does not exist"),
    ("missing label column", 3, "--labels column 'nope' is not in the file"),
    ("images for a table model", 3, "DATA must be a CSV or Parquet file"),
    ("missing output folder", 2, "output folder"),
])
def test_command_fails_cleanly(case, code, message, tabular_detector, demo_with_labels,
                               tmp_path) -> None:
    model = tmp_path / "det.vaekit"
    tabular_detector.save(model)
    out = tmp_path / "r.html"
    data = str(demo_with_labels)
    extra: list[str] = []
    if case == "garbage model":
        model.write_bytes(b"this is not a model file at all")
    elif case == "missing model":
        model = tmp_path / "absent.vaekit"
    elif case == "missing label column":
        extra = ["--labels", "nope"]
    elif case == "images for a table model":
        data = str(tmp_path / "x.npz")
        np.savez(data, X=np.zeros((3, 8, 8), dtype=np.uint8))
    elif case == "missing output folder":
        out = tmp_path / "no" / "such" / "r.html"
    result = CliRunner().invoke(report, [str(model), data, "-o", str(out), *extra])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (
        ValueError, RuntimeError, KeyError))
    assert not out.exists()


def test_report_reads_ids_that_look_like_nulls_as_written(tabular_detector, demo, tmp_path):
    from vaekit.report.data import read_data

    features, labels = demo
    spellings = ["NA", "N/A", "nan", "null", "#N/A", "None"]
    ids = [spellings[i % len(spellings)] for i in range(len(features))]
    path = tmp_path / "ids.csv"
    features.assign(row_id=ids, is_anomaly=labels["is_anomaly"]).to_csv(path, index=False)
    X, got_labels, got_ids = read_data(str(path), tabular_detector, "is_anomaly", "row_id")
    assert list(got_ids) == ids
    # A detector's labels come back as anomaly flags (True = anomaly).
    assert list(got_labels) == list(labels["is_anomaly"] == 1)
    assert list(X.columns) == tabular_detector.feature_names_in_.tolist()


def test_help_examples_run_as_written(tabular_detector, demo, tmp_path, monkeypatch) -> None:
    """``report --help`` shows examples like the other commands, and the table ones run."""
    import shlex
    import subprocess

    from tests.conftest import run_cli

    proc = subprocess.run([sys.executable, "-m", "vaekit", "report", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Examples:" in text and "Exit codes" in text and "--labels is_anomaly" in text
    commands = re.findall(r"^\s+(vaekit report .*?[^\\])$", text.replace("\\\n", " "), re.M)
    table_examples = [c for c in commands if "demo.vaekit" in c]
    assert len(table_examples) == 2, commands
    # The files the examples name: the README's demo model and the labelled demo table.
    features, labels = demo
    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets").mkdir()
    features.to_csv(tmp_path / "datasets" / "demo.csv", index=False)
    features.assign(is_anomaly=labels["is_anomaly"]).to_csv(tmp_path / "labelled.csv",
                                                           index=False)
    tabular_detector.save(tmp_path / "demo.vaekit")
    for command in table_examples:
        args = shlex.split(command)[1:]
        result = run_cli(*args)
        assert result.exit_code == 0, (command, result.output)
        page = (tmp_path / "demo.html").read_text(encoding="utf-8")
        assert ("ROC-AUC" in page) == ("--labels" in args)
        (tmp_path / "demo.html").unlink()


def test_report_suggests_the_column_a_misspelled_name_meant(tabular_detector, demo, tmp_path):
    from vaekit.errors import DataError
    from vaekit.report.data import read_data

    features, labels = demo
    path = tmp_path / "d.csv"
    features.assign(is_anomaly=labels["is_anomaly"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="did you mean 'is_anomaly'"):
        read_data(str(path), tabular_detector, "is_anomly", None)
    features.rename(columns={"amount": "amout"}).to_csv(path, index=False)
    with pytest.raises(DataError, match="'amout' looks like a misspelling of 'amount'"):
        read_data(str(path), tabular_detector, None, None)
