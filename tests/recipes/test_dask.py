"""Smoke test of the Dask benchmark recipe (quick mode, temporary output folder)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_dask_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "recipes" / "benchmark_dask.py"),
                           "--quick", "--workers", "1,2", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = (tmp_path / "dask_benchmark.md").read_text()
    assert "| dask | 2 |" in report and "| local (1 process) |" in report
    assert "| NO |" not in report  # every engine's scores equal the local engine's
    assert "still alive" not in proc.stderr
