"""Smoke test of recipes/rate_distortion.py --quick (skips without the shared data)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "datasets"


def test_rate_distortion_recipe_quick(tmp_path, monkeypatch):
    if not (DATA / "adbench" / "6_cardio.npz").exists() or not (
            DATA / "mnist" / "mnist_test_images.npz").exists():
        pytest.skip("../shared/datasets not available")
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("rate_distortion",
                                                  REPO / "recipes" / "rate_distortion.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "rate_distortion", module)  # for its dataclasses
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "rate_distortion.md").read_text()
    assert "6_cardio" in text and "MNIST" in text and "rows/s" in text
    assert (tmp_path / "rate_distortion.png").stat().st_size > 1000
