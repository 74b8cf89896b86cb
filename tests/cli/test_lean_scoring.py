"""`vaekit score`, `compress` and `decompress` with a model file run without torch or
scikit-learn (the numpy runtime), checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO, run_cli

# Runs the CLI in a fresh interpreter where importing torch or scikit-learn fails.
GUARD = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "sklearn"):
            raise ImportError("the lean path imported " + name)
sys.meta_path.insert(0, Refuse())
from vaekit.cli.app import main
main(sys.argv[1:])
"""


def _lean(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", GUARD, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def compressor_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lean") / "comp.vaekit"
    result = run_cli("fit", DEMO, "--id-column", "row_id", "--epochs", "1",
                     "--seed", "0", "--bytes-per-row", "8", "-o", path, "-q")
    assert result.exit_code == 0, result.output
    return path


def test_score_imports_neither_torch_nor_sklearn(demo_model_file: Path, tmp_path: Path) -> None:
    lean = _lean("score", DEMO, "-m", demo_model_file, "--explain", "2", "-o", "lean.csv", "-q",
                 cwd=tmp_path)
    assert lean.returncode == 0, lean.stderr
    # The same bytes as the in-process run (which has torch loaded, numpy backend).
    result = run_cli("score", DEMO, "-m", demo_model_file, "--explain", "2",
                     "-o", tmp_path / "ref.csv", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lean.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


def test_compress_and_decompress_import_neither(compressor_file: Path, tmp_path: Path) -> None:
    lean = _lean("compress", DEMO, "-m", compressor_file, "-o", "out.vkc", "-q", cwd=tmp_path)
    assert lean.returncode == 0, lean.stderr
    lean = _lean("decompress", "out.vkc", "-m", compressor_file, "-o", "back.csv", "-q",
                 cwd=tmp_path)
    assert lean.returncode == 0, lean.stderr
    assert (tmp_path / "back.csv").stat().st_size > 0
    # Encoding chunks on several threads: the same bytes.
    lean = _lean("compress", DEMO, "-m", compressor_file, "-o", "out3.vkc", "--threads", "3",
                 "-q", cwd=tmp_path)
    assert lean.returncode == 0, lean.stderr
    assert (tmp_path / "out3.vkc").read_bytes() == (tmp_path / "out.vkc").read_bytes()


def test_a_model_saved_for_the_cpu_scores_without_torch(tmp_path: Path) -> None:
    """An explicit ``device="cpu"`` (or a CUDA device this machine lacks) in the model
    file must not pull torch in to check the device."""
    import pandas as pd

    from vaekit import VAEAnomalyDetector

    frame = pd.read_csv(DEMO).drop(columns=["row_id"]).head(400)
    for device in ("cpu", "cuda:3"):
        det = VAEAnomalyDetector(epochs=1, random_state=0, device="cpu").fit(frame)
        det.set_params(device=device)
        det.save(tmp_path / f"{device}.vaekit")
        lean = _lean("score", DEMO, "-m", f"{device}.vaekit", "-o", f"{device}.csv", "-q",
                     cwd=tmp_path)
        assert lean.returncode == 0, lean.stderr
