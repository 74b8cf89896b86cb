"""vaekit.report.html: figures present, self-contained HTML, a FittedVAE or an estimator, a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from vaekit import VAECompressor  # noqa: E402
from vaekit.fitted import FittedVAE, as_fitted  # noqa: E402
from vaekit.report import render_report, write_report  # noqa: E402
from vaekit.report.html import compress_rows, compressed_size, reconstruct  # noqa: E402

from .conftest import (  # noqa: E402
    FAST,
    IMAGE_COMPRESSOR_FIGURES,
    IMAGE_DETECTOR_FIGURES,
    LABELLED_FIGURES,
    TABULAR_COMPRESSOR_FIGURES,
    TABULAR_DETECTOR_FIGURES,
    assert_self_contained,
    figure_ids,
)


def test_tabular_detector_report(tabular_detector, demo, demo_features) -> None:
    features, labels = demo
    page = render_report(tabular_detector, demo_features, labels=labels["is_anomaly"],
                         ids=features["row_id"], top_k=5, data_name="demo.csv")
    assert set(figure_ids(page)) == TABULAR_DETECTOR_FIGURES | LABELLED_FIGURES
    assert_self_contained(page)
    # Header: kind, columns, latent size, final negative ELBO in nats (a cost: the sign
    # of the anomaly score), threshold.
    assert "VAEAnomalyDetector (tabular input)" in page
    assert "Columns (11)" in page and "<code>delivery_days</code>" in page
    assert f"<th>Latent dimensions</th><td>{tabular_detector.model_.latent_dim} (" in page
    last = tabular_detector.history_[-1]
    assert f"final negative ELBO {-last['train_elbo']:.3f} nats/row (training)" in page
    # The threshold is the model's own (its stored contamination), in nats.
    threshold = as_fitted(tabular_detector).threshold()
    assert f"<th>Threshold</th><td>{threshold:.3f} nats (anomaly score)</td>" in page
    # The top-5 table names rows by their id and lists the largest score first.
    table = page.split("<table><tr><th>rank")[1].split("</table>")[0]
    assert table.count("<tr>") == 5 and re.search(r"<td>R\d{6}</td>", table)
    scores = tabular_detector.anomaly_score(demo_features)
    assert f"{scores.max():.2f}" in table


def test_image_detector_report(image_detector, digits_images) -> None:
    labels = np.arange(len(digits_images)) % 10 == 0  # anomaly labels: True = anomaly
    page = render_report(image_detector, digits_images, labels=labels, top_k=4)
    assert set(figure_ids(page)) == IMAGE_DETECTOR_FIGURES | LABELLED_FIGURES
    assert_self_contained(page)
    assert "images 1 x 8 x 8 (C x H x W)" in page


def test_compressor_reports(tabular_compressor, demo, demo_features, digits_images) -> None:
    # A compressor's labels only color the latent plot: any values, no metrics.
    kind = demo[1]["anomaly_kind"].fillna("normal")
    page = render_report(tabular_compressor, demo_features, labels=kind)
    assert set(figure_ids(page)) == TABULAR_COMPRESSOR_FIGURES and "ROC-AUC" not in page
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


def test_fitted_model_and_estimator_give_the_same_page(tabular_detector, tabular_compressor,
                                                       demo_features, tmp_path) -> None:
    X = demo_features.iloc[:400]
    for estimator in (tabular_detector, tabular_compressor):
        assert render_report(as_fitted(estimator), X) == render_report(estimator, X)
    # A model file read as a FittedVAE (no estimator): its checksum is in the header.
    path = tmp_path / "det.vaekit"
    tabular_detector.save(path)
    loaded = FittedVAE.load(path)
    page = render_report(loaded, X, top_k=3)
    assert set(figure_ids(page)) == TABULAR_DETECTOR_FIGURES
    assert f"<code class=hash>{loaded.sha256}</code>" in page
    assert "<title>vaekit report: VAEAnomalyDetector</title>" in page


def test_compression_helpers_run_the_codec_streams(tabular_compressor, tabular_detector,
                                                   demo_features) -> None:
    X = demo_features.iloc[:200]
    blob = compress_rows(tabular_compressor, X)
    assert blob == tabular_compressor.compress(X)
    bpr, how = compressed_size(as_fitted(tabular_compressor), X, blob)
    assert bpr == len(blob) / len(X) and how.startswith("measured")
    back = reconstruct(tabular_compressor, X, blob)
    assert back.equals(tabular_compressor.decompress(blob))
    # No stored quantizer (a detector): raw float32 codes, and decoded means.
    fitted = as_fitted(tabular_detector)
    bpr, how = compressed_size(tabular_detector, X)
    assert bpr == 4.0 * fitted.latent_dim and how.startswith("not measured")
    means = reconstruct(fitted, X)
    assert means.equals(fitted.decode_means(fitted.encode_means(fitted.prepare(X))))


def test_missing_matplotlib_says_how_to_install(monkeypatch, tabular_detector) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, name, None)
    from vaekit.report.style import install_hint

    with pytest.raises(ImportError, match=re.escape(install_hint())):
        render_report(tabular_detector)


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
