"""Shared fixtures: the demo table, small fitted models, and paths to ../shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
DEMO = REPO / "datasets" / "demo.csv"
ADBENCH = SHARED / "adbench"
MNIST = SHARED / "mnist" / "mnist_test_images.npz"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # Small models are fastest on one thread, and CI has two cores.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The committed demo table (features, labels)."""
    return (pd.read_csv(REPO / "datasets" / "demo.csv"),
            pd.read_csv(REPO / "datasets" / "demo_labels.csv"))


@pytest.fixture(scope="session")
def demo_features(demo: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return demo[0].drop(columns=["row_id"])


@pytest.fixture(scope="session")
def fitted_demo_detector(demo_features: pd.DataFrame):
    from vaekit import VAEAnomalyDetector

    return VAEAnomalyDetector(random_state=0).fit(demo_features)


@pytest.fixture(scope="session")
def digits_images() -> np.ndarray:
    from sklearn.datasets import load_digits

    images = load_digits().images  # 0..16
    return np.rint(images * (255 / 16)).astype(np.uint8)


def run_cli(*args: object):
    """Invoke the ``vaekit`` click app in-process; a traceback in its output is a bug."""
    from click.testing import CliRunner

    from vaekit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def adbench_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = ADBENCH / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    with np.load(path, allow_pickle=False) as f:
        return f["X"], f["y"]


@pytest.fixture(scope="session")
def demo_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A detector model file fitted by ``vaekit fit`` on the demo table (2 epochs, seed 0)."""
    path = tmp_path_factory.mktemp("model") / "demo.vaekit"
    result = run_cli("fit", DEMO, "--id-column", "row_id", "--epochs", "2", "--seed", "0",
                     "-o", path, "-q")
    assert result.exit_code == 0, result.output
    return path
