"""Every command-line recipe in recipes/ runs end to end on small data, so none can rot."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from vaekit.cli import app

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
DEMO = REPO / "datasets" / "demo.csv"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _env() -> dict[str, str]:
    # The recipes call $VAEKIT; point it at this interpreter so no install is needed.
    return {**os.environ, "VAEKIT": f"{sys.executable} -m vaekit", "PYTHON": sys.executable,
            "OMP_NUM_THREADS": "1", "EPOCHS": "2"}


def _bash(script: str, *args: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", str(RECIPES / script), *map(str, args)], env=_env(),
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_nightly_scoring_keeps_top_anomalies(tmp_path: Path) -> None:
    demo = pd.read_csv(DEMO).head(600)
    model = tmp_path / "model.vaekit"
    fitted = CliRunner().invoke(app, ["fit", str(DEMO), "--id-column", "row_id", "--epochs", "2",
                                      "--max-rows", "600", "-o", str(model), "-q"])
    assert fitted.exit_code == 0, fitted.output
    exports = tmp_path / "exports"
    exports.mkdir()
    demo.iloc[:300].to_csv(exports / "monday.csv", index=False)
    lines = demo.iloc[300:].to_csv(index=False).splitlines()
    lines[5] += ",stray"  # one broken line in the second export
    (exports / "tuesday.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    done = _bash("nightly_scoring.sh", exports, model, out, 5)
    assert "skipped 1 bad row(s)" in done.stderr
    (top,) = out.glob("top-anomalies-*.csv")
    scores = pd.read_csv(top)
    assert scores["rank"].tolist() == [1, 2, 3, 4, 5]
    assert scores["anomaly_score"].is_monotonic_decreasing
    (bad,) = out.glob("bad-rows-*.csv")
    assert pd.read_csv(bad)["line"].tolist() == [6]


def test_compress_table_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "orders.csv"
    pd.read_csv(DEMO).head(400).to_csv(src, index=False)
    done = _bash("compress_table.sh", src, tmp_path / "out", 4)
    assert "ids exact" in done.stderr
    assert (tmp_path / "out" / "orders.vkc").exists()


def test_compress_images_folder(tmp_path: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = tmp_path / "digits"
    folder.mkdir()
    images = np.rint(load_digits().images[:60] * (255 / 16)).astype(np.uint8)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"img{i:03d}.png")
    done = _bash("compress_images.sh", folder, tmp_path / "out", 8)
    assert "60 images (8, 8) uint8" in done.stderr


def test_pipeline_gridsearch_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("pipeline_gridsearch",
                                                  RECIPES / "pipeline_gridsearch.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.main(["--quick", "--save", str(tmp_path / "best.vaekit")])
    assert "best:" in capsys.readouterr().out
    # The tuned model works on the command line as is.
    result = CliRunner().invoke(app, ["score", str(DEMO), "-m", str(tmp_path / "best.vaekit"),
                                      "--id-column", "row_id", "--top", "3", "-o", "-", "-q"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4


@pytest.mark.slow
def test_benchmark_cli_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    done = subprocess.run([sys.executable, str(RECIPES / "benchmark_cli.py"), "--quick",
                           "--write", str(out), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert "| parse (pyarrow, streaming) | 4,000 |" in text
    assert "Peak memory of `score --samples 1`" in text
