"""`vaekit report`: figures present, self-contained HTML, the click command, a real browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from click.testing import CliRunner  # noqa: E402

from vaekit import VAEAnomalyDetector, VAECompressor  # noqa: E402
from vaekit.report import figures, render_report, write_report  # noqa: E402
from vaekit.report.command import report  # noqa: E402

TABULAR_DETECTOR_FIGURES = {"fig-training-curves", "fig-score-distribution", "fig-top-anomalies",
                            "fig-latent-space"}
IMAGE_DETECTOR_FIGURES = TABULAR_DETECTOR_FIGURES | {"fig-reconstructions", "fig-prior-samples"}
TABULAR_COMPRESSOR_FIGURES = {"fig-training-curves", "fig-reconstruction-error",
                              "fig-latent-space"}
IMAGE_COMPRESSOR_FIGURES = TABULAR_COMPRESSOR_FIGURES | {"fig-reconstructions",
                                                         "fig-prior-samples"}
FAST = {"epochs": 2, "random_state": 0}


def figure_ids(page: str) -> list[str]:
    return re.findall(r"<figure id='([^']+)'>", page)


def assert_self_contained(page: str) -> None:
    """No URL a browser could fetch: only data: URIs, inline CSS, no scripts."""
    # Base64 may contain "//", so the URL checks look at the page without the images.
    lowered = re.sub(r"data:image/png;base64,[a-z0-9+/=]+", "data:", page.lower())
    for needle in ("http:", "https:", "file:", "//", "<script", "<link", "url(", "@import"):
        assert needle not in lowered, needle
    sources = re.findall(r"src='([^']*)'", page) + re.findall(r'src="([^"]*)"', page)
    assert sources, "no images"
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:60]
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert lowered.count("<img") == len(figure_ids(page))


@pytest.fixture(scope="module")
def tabular_detector(demo_features: pd.DataFrame) -> VAEAnomalyDetector:
    return VAEAnomalyDetector(n_samples=2, **FAST).fit(demo_features)


@pytest.fixture(scope="module")
def image_detector(digits_images: np.ndarray) -> VAEAnomalyDetector:
    return VAEAnomalyDetector(n_samples=2, **FAST).fit(digits_images)


@pytest.fixture(scope="module")
def tabular_compressor(demo_features: pd.DataFrame) -> VAECompressor:
    return VAECompressor(**FAST).fit(demo_features)


# ----------------------------------------------------------------------------- Python API


def test_tabular_detector_report(tabular_detector, demo, demo_features) -> None:
    features, labels = demo
    page = render_report(tabular_detector, demo_features, labels=labels["anomaly_kind"].fillna(
        "normal"), ids=features["row_id"], top_k=5, data_name="demo.csv")
    assert set(figure_ids(page)) == TABULAR_DETECTOR_FIGURES
    assert_self_contained(page)
    # Header: kind, columns, latent size, final ELBO in nats, threshold.
    assert "VAEAnomalyDetector (tabular input)" in page
    assert "Columns (11)" in page and "<code>delivery_days</code>" in page
    assert f"<th>Latent dimensions</th><td>{tabular_detector.model_.latent_dim} (" in page
    assert re.search(r"final ELBO -?\d+\.\d+ nats/row \(training\)", page)
    # The top-5 table names rows by their id and lists the largest score first.
    table = page.split("<table><tr><th>rank")[1].split("</table>")[0]
    assert table.count("<tr>") == 5 and re.search(r"<td>R\d{6}</td>", table)
    scores = tabular_detector.anomaly_score(demo_features)
    assert f"{scores.max():.2f}" in table


def test_image_detector_report(image_detector, digits_images) -> None:
    labels = np.arange(len(digits_images)) % 10
    page = render_report(image_detector, digits_images, labels=labels, top_k=4)
    assert set(figure_ids(page)) == IMAGE_DETECTOR_FIGURES
    assert_self_contained(page)
    assert "images 1 x 8 x 8 (C x H x W)" in page


def test_compressor_reports(tabular_compressor, demo_features, digits_images) -> None:
    page = render_report(tabular_compressor, demo_features)
    assert set(figure_ids(page)) == TABULAR_COMPRESSOR_FIGURES
    assert_self_contained(page)
    # Bytes per row is the measured container size per row, and the page says so.
    expected = len(tabular_compressor.compress(demo_features)) / len(demo_features)
    assert f"<b>{expected:.2f}</b>" in page and ".vkc container" in page

    images = digits_images[:300]
    page = render_report(VAECompressor(**FAST).fit(images), images)
    assert set(figure_ids(page)) == IMAGE_COMPRESSOR_FIGURES
    assert_self_contained(page)


def test_report_without_data_and_sampling(tabular_detector, image_detector, demo_features,
                                          tmp_path) -> None:
    page = render_report(tabular_detector)
    assert figure_ids(page) == ["fig-training-curves", "fig-score-distribution"]
    assert figure_ids(render_report(image_detector)) == [
        "fig-training-curves", "fig-score-distribution", "fig-prior-samples"]
    # --max-rows: a fixed-seed sample, so two reports are byte-identical.
    out_a, out_b = tmp_path / "a.html", tmp_path / "b.html"
    for out in (out_a, out_b):
        write_report(out, tabular_detector, demo_features, max_rows=200, top_k=2)
    assert "200 of 3,000 rows" in out_a.read_text(encoding="utf-8")
    assert out_a.read_bytes() == out_b.read_bytes()


def test_figure_functions_return_figures(tabular_detector, image_detector, demo_features,
                                         digits_images) -> None:
    from matplotlib.figure import Figure

    X = demo_features.iloc[:300]
    contrib = tabular_detector.explain(X)
    means = tabular_detector._encode_means(X)[0]
    made = [
        figures.training_curves(tabular_detector),
        figures.training_curves(tabular_detector.history_),
        figures.score_distribution(contrib.sum(axis=1), tabular_detector.threshold_),
        figures.top_anomalies(contrib, k=3),
        figures.latent_space(tabular_detector, means, scores=contrib.sum(axis=1)),
        figures.latent_space(tabular_detector, means, method="kl"),
        figures.reconstruction_error(X, tabular_detector._decode_means(means),
                                     tabular_detector.schema_),
        figures.prior_samples(image_detector, n=6),
    ]
    unit = figures.to_unit_nchw(image_detector, digits_images[:5])
    made.append(figures.image_reconstructions(unit, unit, n=5))
    made.append(figures.pixel_error_map(unit, unit))
    assert all(isinstance(f, Figure) for f in made)
    # Axis labels carry units.
    assert "nats" in made[0].axes[0].get_ylabel()
    assert "nats" in made[2].axes[0].get_xlabel()


def test_missing_matplotlib_says_how_to_install(monkeypatch, tabular_detector, tmp_path) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'vaekit\[report\]'"):
        render_report(tabular_detector)
    model = tmp_path / "m.vaekit"
    tabular_detector.save(model)
    result = CliRunner().invoke(report, [str(model), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "pip install 'vaekit[report]'" in result.output
    assert not (tmp_path / "r.html").exists()


# ----------------------------------------------------------------------------- command


@pytest.fixture(scope="module")
def demo_with_labels(demo, tmp_path_factory) -> Path:
    """demo.csv with the label column joined in (as a user would score it)."""
    features, labels = demo
    path = tmp_path_factory.mktemp("data") / "demo_labelled.csv"
    features.assign(is_anomaly=labels["is_anomaly"]).to_csv(path, index=False)
    return path


def test_command_writes_report(tabular_detector, demo_with_labels, tmp_path) -> None:
    model = tmp_path / "det.vaekit"
    tabular_detector.save(model)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(report, [str(model), str(demo_with_labels), "-o", str(out),
                                         "--labels", "is_anomaly", "--id-column", "row_id",
                                         "--top", "3", "--max-rows", "1000"])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert set(figure_ids(page)) == TABULAR_DETECTOR_FIGURES
    assert_self_contained(page)
    assert "1,000 of 3,000 rows" in page and "Colored by label." in page
    # The loaded model's fingerprint (SHA-256 of the file's content) is in the header.
    assert re.search(r"<code class=hash>[0-9a-f]{64}</code>", page)


def test_command_image_npz(image_detector, digits_images, tmp_path) -> None:
    model, data = tmp_path / "img.vaekit", tmp_path / "digits.npz"
    image_detector.save(model)
    np.savez(data, X=digits_images[:200], y=np.arange(200) % 10)
    out = tmp_path / "img.html"
    result = CliRunner().invoke(report, [str(model), str(data), "-o", str(out), "--labels", "y"])
    assert result.exit_code == 0, result.output
    assert set(figure_ids(out.read_text(encoding="utf-8"))) == IMAGE_DETECTOR_FIGURES


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


# ----------------------------------------------------------------------------- browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
# Marks the page with how many images the browser decoded; added to a copy of the
# report only (the report itself has no script).
IMAGE_CHECK = ("<script>window.addEventListener('load', () => { const i = [...document.images];"
               " document.body.setAttribute('data-decoded', i.length + ':' + i.filter("
               "x => x.complete && x.naturalWidth > 0).length); });</script>")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tabular_detector, image_detector, demo_features,
                                             digits_images, tmp_path) -> None:
    pages = {"tabular": render_report(tabular_detector, demo_features, max_rows=500),
             "image": render_report(image_detector, digits_images[:300])}
    for name, page in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_text(page.replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
        dom = _dump_dom(path, tmp_path / f"profile-{name}")
        n = len(figure_ids(page))
        assert f'data-decoded="{n}:{n}"' in dom, dom[:500]
        assert set(figure_ids(dom.replace('"', "'"))) == set(figure_ids(page))


def _dump_dom(path: Path, profile: Path) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
           "--dump-dom", path.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
