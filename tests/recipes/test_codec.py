"""Smoke tests of recipes/rate_distortion.py and bounded_codec.py --quick (skip without
the shared data)."""

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


def test_bounded_codec_recipe_quick(tmp_path):
    if not (DATA / "adbench" / "6_cardio.npz").exists():
        pytest.skip("../shared/datasets not available")
    spec = importlib.util.spec_from_file_location("bounded_codec",
                                                  REPO / "recipes" / "bounded_codec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "bounded_codec.md").read_text()
    assert "## eps = 0.1" in text and "sq+zstd" in text and "rows/CPU s" in text
    import pandas as pd

    df = pd.read_csv(tmp_path / "bounded_codec.csv")
    # every value of vaekit's files kept its bound (levels exact: a finite worst error)
    assert (df["vaekit_max_err"] <= df["eps"] * (1 + 1e-9)).all()
    assert (df["vaekit"] > 0).all() and len(df) == 4


def test_bounded_codec_recipe_skips_cleanly_without_data(tmp_path):
    spec = importlib.util.spec_from_file_location("bounded_codec",
                                                  REPO / "recipes" / "bounded_codec.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path)]) == 0
    assert not (tmp_path / "bounded_codec.md").exists()


def test_equal_rmse_recipe_quick(tmp_path):
    if not (DATA / "adbench" / "6_cardio.npz").exists():
        pytest.skip("../shared/datasets not available")
    sys.path.insert(0, str(REPO / "recipes"))
    spec = importlib.util.spec_from_file_location("equal_rmse", REPO / "recipes" / "equal_rmse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "equal_rmse.md").read_text()
    assert "## budget 2 B/row" in text and "vaekit bounded" in text
    import pandas as pd

    df = pd.read_csv(tmp_path / "equal_rmse.csv")
    assert len(df) == 4 and (df["rmse"] >= 0).all()
    # A budget above the lossless size stores losslessly (RMSE 0, bound 0): only the
    # lossless baselines compete there.
    lossless = df["rmse"] == 0
    assert (df.loc[lossless, "grid_bound"] == 0).all()
    assert df.loc[lossless, ["sq+zstd", "vaekit_bounded"]].isna().all().all()
    # every codec that found a bound reached vaekit's RMSE with it (bisection kept the
    # bytes of a bound at or under the target only)
    lossy = df[~lossless]
    assert len(lossy) and lossy["sq+zstd"].notna().all() and lossy["vaekit_bounded"].notna().all()
    assert (lossy["sq+zstd_eps"] > 0).all()
