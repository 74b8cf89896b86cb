"""Smoke tests of the benchmark recipes (quick modes, temporary output folders)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
ADBENCH = ROOT.parent / "shared" / "datasets" / "adbench"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(RECIPES / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_params_and_labels():
    bench = _load_module("benchmark_adbench")
    params = bench.parse_params(["n_samples=1", "hidden_dims=[64, 64]", "min_scale=auto",
                                 "learning_rate=0.002"])
    assert params == {"n_samples": 1, "hidden_dims": [64, 64], "min_scale": "auto",
                      "learning_rate": 0.002}
    assert bench.vaekit_name({}) == "vaekit"
    assert bench.vaekit_name({"trim_fraction": 0.0, "n_samples": 1}) == \
        "vaekit[n_samples=1,trim_fraction=0.0]"
    with pytest.raises(SystemExit):
        bench.parse_params(["oops"])


def test_adbench_skips_cleanly_without_data(tmp_path):
    proc = _run("benchmark_adbench.py", "--data-dir", str(tmp_path / "missing"), "--quick",
                "--out", str(tmp_path / "out"))
    assert "skipped" in proc.stdout
    assert not (tmp_path / "out" / "adbench.md").exists()


@pytest.mark.skipif(not any(ADBENCH.glob("*.npz")), reason="ADBench tables not available")
def test_adbench_quick(tmp_path):
    detectors = ["vaekit", "sk_iforest"]
    if importlib.util.find_spec("pyod") is not None:
        detectors += ["ecod", "hbos", "knn"]  # knn: one of the peers run on scaled columns
    out = tmp_path / "out"
    _run("benchmark_adbench.py", "--quick", "--out", str(out), "--detectors", ",".join(detectors))
    for name in ("adbench.md", "adbench.csv"):
        assert (out / name).is_file()
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "adbench.png").stat().st_size > 0
    df = pd.read_csv(out / "adbench.csv", keep_default_na=False)
    assert set(df["detector"]) == set(detectors)
    assert len(df) == 2 * len(detectors)  # 2 tables x 1 seed
    assert (df["error"] == "").all(), df["error"].tolist()
    assert df["roc_auc"].between(0, 1).all() and df["ap"].between(0, 1).all()
    md = (out / "adbench.md").read_text()
    assert "## Summary" in md and "## ROC-AUC per table" in md
    assert "## vaekit against IsolationForest, table by table" in md
    header = next(line for line in md.splitlines() if line.startswith("| detector"))
    for col in ("mean ROC-AUC", "mean AP", "wins (AUC)", "median fit s"):
        assert col in header
    for d in detectors:
        assert f"| {d} |" in md

    # Resuming: a second run finds every result in the cache and fits nothing.
    proc = _run("benchmark_adbench.py", "--quick", "--out", str(out), "--detectors",
                ",".join(detectors))
    assert "seed 0:" not in proc.stdout
    assert len(pd.read_csv(out / "adbench.csv")) == len(df)


def test_digits_quick(tmp_path):
    out = tmp_path / "out"
    _run("benchmark_digits.py", "--quick", "--out", str(out))
    md = (out / "digits.md").read_text()
    for name in ("vaekit", "pca", "iforest"):
        assert f"| {name} |" in md
    df = pd.read_csv(out / "digits.csv")
    assert set(df["normal_class"]) == {0, 1}
    assert df["roc_auc"].between(0, 1).all()


def test_demo_quick(tmp_path):
    out = tmp_path / "out"
    _run("benchmark_demo.py", "--quick", "--out", str(out))
    md = (out / "demo.md").read_text()
    assert "| unseen_category |" in md and "| vaekit | iforest |" in md
    df = pd.read_csv(out / "demo.csv")
    assert set(df["kind"]) == {"all", "extreme_value", "broken_correlation", "rare_combination",
                               "unusual_blanks", "unseen_category"}
    assert df["roc_auc"].between(0, 1).all()
    # Values seen once are priced as new ones: the mistyped rows rank on top even
    # after three epochs.
    mistyped = df[(df["detector"] == "vaekit") & (df["kind"] == "unseen_category")]
    assert mistyped["roc_auc"].min() > 0.95


IMAGES = ROOT.parent / "shared" / "datasets" / "images"


def test_images_skips_cleanly_without_data(tmp_path):
    proc = _run("benchmark_images.py", "--data", str(tmp_path / "missing"), "--quick",
                "--out", str(tmp_path / "out"))
    assert "skipped" in proc.stdout
    assert not (tmp_path / "out" / "images.md").exists()


@pytest.mark.skipif(not any(IMAGES.glob("mnist_oneclass_*.npz")),
                    reason="one-class image sets not available")
def test_images_quick(tmp_path):
    out = tmp_path / "out"
    _run("benchmark_images.py", "--quick", "--out", str(out), "--detectors",
         "vaekit,pca,iforest", "--vaekit-param", "epochs=2")
    df = pd.read_csv(out / "images.csv")
    assert set(df["detector"]) == {"vaekit", "pca", "iforest"}
    assert len(df) == 2 * 3 and (df["seed"] == 0).all()  # 2 sets x 1 seed
    assert df["roc_auc"].between(0, 1).all() and (df["fit_cpu_s"] >= 0).all()
    md = (out / "images.md").read_text()
    assert "Quick smoke run" in md and "| vaekit |" in md
