"""`vaekit fit --id-column` is remembered; misspelled columns get "did you mean";
one sign for the ELBO in the fit summary; fitting on one row warns, on none fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from vaekit.cli import EXIT_DATA

from ..conftest import DEMO, REPO, run_cli


@pytest.fixture(scope="module")
def train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ids") / "train.csv"
    pd.read_csv(DEMO, dtype={"row_id": str}).iloc[:400].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model(train: Path) -> Path:
    path = train.parent / "ids.vaekit"
    result = run_cli("fit", train, "--id-column", "row_id", "--epochs", "2", "-o", path)
    assert result.exit_code == 0, result.output
    # One sign everywhere: the summary shows the negative ELBO, a positive number here.
    summary = [ln for ln in result.output.splitlines() if "fitted VAEAnomalyDetector" in ln][0]
    assert "final negative ELBO " in summary and "final ELBO" not in summary
    value = float(summary.split("final negative ELBO ")[1].split()[0])
    assert value > 0
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_info_shows_the_remembered_ids(model: Path) -> None:
    text = run_cli("info", model)
    assert text.exit_code == 0 and "id columns    row_id" in text.output
    assert "negative ELBO" in text.output
    facts = json.loads(run_cli("info", model, "--json").output)
    assert facts["id_columns"] == ["row_id"]


def test_score_uses_the_remembered_ids(model: Path, train: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    result = run_cli("score", train, "-m", model, "-o", out, "--no-rank", "-q")
    assert result.exit_code == 0, result.output
    scored = _read(out)
    assert list(scored.columns[:2]) == ["row_id", "anomaly_score"]
    assert scored["row_id"].tolist() == _read(train)["row_id"].tolist()


def test_an_explicit_id_column_overrides(model: Path, train: Path, tmp_path: Path) -> None:
    data = tmp_path / "with_ref.csv"
    frame = _read(train)
    frame.insert(0, "order_ref", "R" + frame["row_id"])
    frame.to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    result = run_cli("score", data, "-m", model, "--id-column", "order_ref", "-o", out,
                     "--no-rank", "-q")
    assert result.exit_code == 0, result.output
    scored = _read(out)
    assert "row_id" not in scored.columns and scored.columns[0] == "order_ref"
    assert scored["order_ref"].tolist() == frame["order_ref"].tolist()


def test_an_input_without_them_falls_back_to_file_and_line(model: Path, train: Path,
                                                           tmp_path: Path) -> None:
    data = tmp_path / "no_ids.csv"
    _read(train).drop(columns=["row_id"]).to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    result = run_cli("score", train, data, "-m", model, "-o", out, "--no-rank", "-q")
    assert result.exit_code == 0, result.output
    notices = [ln for ln in result.output.splitlines() if "row_id" in ln]
    assert len(notices) == 1 and "no_ids.csv has no column 'row_id'" in notices[0]
    assert "file and line" in notices[0]
    scored = _read(out)
    assert list(scored.columns[:2]) == ["file", "line"] and len(scored) == 800


def test_compress_stores_the_remembered_ids(model: Path, train: Path, tmp_path: Path) -> None:
    vkc, restored = tmp_path / "t.vkc", tmp_path / "restored.csv"
    result = run_cli("compress", train, "-m", model, "-o", vkc, "-q")
    assert result.exit_code == 0, result.output
    result = run_cli("decompress", vkc, "-m", model, "-o", restored, "-q")
    assert result.exit_code == 0, result.output
    assert _read(restored)["row_id"].tolist() == _read(train)["row_id"].tolist()


@pytest.mark.parametrize("option, wrong, right", [
    ("--id-column", "rowid", "row_id"),
    ("--exclude", "discount_rte", "discount_rate"),
    ("--columns", "amout", "amount"),
    ("--categorical", "chanel", "channel"),
])
def test_fit_suggests_the_column_meant(train: Path, tmp_path: Path, option: str, wrong: str,
                                       right: str) -> None:
    out = tmp_path / "m.vaekit"
    before = train.read_bytes()
    extra = ["--columns", "amount,channel"] if option == "--categorical" else []
    result = run_cli("fit", train, option, wrong, *extra, "--epochs", "1", "-o", out, "-q")
    assert result.exit_code == EXIT_DATA, result.output
    assert f"did you mean {right!r}?" in result.output and wrong in result.output
    assert not out.exists() and train.read_bytes() == before


def test_score_suggests_the_column_meant(model: Path, train: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    result = run_cli("score", train, "-m", model, "--id-column", "rowid", "-o", out, "-q")
    assert result.exit_code == EXIT_DATA, result.output
    assert "did you mean 'row_id'?" in result.output and str(train) in result.output
    assert not out.exists()
    # A model column renamed in the input: the near miss is named.
    renamed = tmp_path / "renamed.csv"
    _read(train).rename(columns={"unit_price": "unitprice"}).to_csv(renamed, index=False)
    result = run_cli("score", renamed, "-m", model, "-o", out, "-q")
    assert result.exit_code == EXIT_DATA, result.output
    assert "missing column(s) ['unit_price']" in result.output
    assert "'unitprice' looks like a misspelling of 'unit_price'" in result.output
    assert "renamed.csv" in result.output and "line 1" in result.output
    assert not out.exists()


def test_fit_on_one_row_warns_and_on_none_fails(train: Path, tmp_path: Path) -> None:
    frame = _read(train).drop(columns=["row_id"])
    one, none = tmp_path / "one.csv", tmp_path / "none.csv"
    complete = pd.read_csv(train).drop(columns=["row_id"]).dropna()
    complete.iloc[:1].to_csv(one, index=False)
    frame.iloc[:0].to_csv(none, index=False)
    out = tmp_path / "m.vaekit"
    result = run_cli("fit", one, "--epochs", "1", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert "warning: fitting on one row: the model can't learn a distribution" in result.output
    out.unlink()
    result = run_cli("fit", none, "--epochs", "1", "-o", out, "-q")
    assert result.exit_code == EXIT_DATA, result.output
    assert "header but no data rows" in result.output and not out.exists()


def test_remembered_ids_in_a_subprocess(model: Path, train: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "vaekit", "score", str(train), "-m",
                           str(model), "--top", "3", "-o", "-", "-q"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].replace('"', '').startswith("row_id,anomaly_score,rank") and len(lines) == 4
    assert proc.stderr == ""
