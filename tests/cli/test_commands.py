"""The `vaekit` command line: round trip on the demo CSV, output contract, determinism.

One small model is fitted once per session (2 epochs) and shared; every other test
scores, compresses or inspects with it, in-process through click's CliRunner.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from vaekit.cli import EXIT_FILE, EXIT_USAGE, app

from ..conftest import DEMO, REPO, run_cli

LABELS = REPO / "datasets" / "demo_labels.csv"


run = run_cli


@pytest.fixture(scope="session")
def model(demo_model_file: Path) -> Path:
    return demo_model_file


@pytest.fixture(scope="session")
def scores(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scores") / "scores.csv"
    result = run("score", DEMO, "-m", model, "--id-column", "row_id", "--explain", "2",
                 "-o", out, "-q")
    assert result.exit_code == 0, result.output
    return out


def test_score_output_contract(scores: Path) -> None:
    out = pd.read_csv(scores, keep_default_na=False)
    demo = pd.read_csv(DEMO)
    assert list(out.columns) == ["row_id", "anomaly_score", "rank", "is_anomaly", "unseen",
                                 "top1_column", "top1_nats", "top2_column", "top2_nats"]
    assert out["row_id"].tolist() == demo["row_id"].tolist()  # input order kept
    # Rank 1 is the highest score; equal scores share the smallest rank.
    expected = out["anomaly_score"].rank(ascending=False, method="min").astype(int)
    assert (out["rank"] == expected).all()
    assert set(out["is_anomaly"]) <= {0, 1}
    assert (out["top1_nats"] >= out["top2_nats"]).all()
    # a column, or its missingness term ("col (missing)")
    assert {c.removesuffix(" (missing)") for c in out["top1_column"]} <= set(demo.columns)
    labels = pd.read_csv(LABELS)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(labels["is_anomaly"], out["anomaly_score"]) > 0.6


def test_scores_match_the_library(model: Path, scores: Path) -> None:
    import vaekit

    det = vaekit.load(model)
    demo = pd.read_csv(DEMO).drop(columns=["row_id"])
    expected = np.round(det.anomaly_score(demo), 6)
    got = pd.read_csv(scores)["anomaly_score"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)
    np.testing.assert_array_equal(pd.read_csv(scores)["is_anomaly"].to_numpy(),
                                  (det.predict(demo) == -1).astype(int))


def test_score_is_byte_identical_and_consistent(model: Path, scores: Path,
                                                tmp_path: Path) -> None:
    again = tmp_path / "again.csv"
    assert run("score", DEMO, "-m", model, "--id-column", "row_id", "--explain", "2",
               "-o", again, "-q").exit_code == 0
    assert again.read_bytes() == scores.read_bytes()
    top = tmp_path / "top.csv"
    assert run("score", DEMO, "-m", model, "--id-column", "row_id", "--explain", "2",
               "--top", "7", "-o", top, "-q").exit_code == 0
    full = pd.read_csv(scores, keep_default_na=False)
    best = full.sort_values(["anomaly_score"], ascending=False, kind="stable").head(7)
    pd.testing.assert_frame_equal(pd.read_csv(top, keep_default_na=False),
                                  best.reset_index(drop=True))
    norank = tmp_path / "norank.parquet"
    assert run("score", DEMO, "-m", model, "--id-column", "row_id", "--explain", "2",
               "--no-rank", "-o", norank, "-q").exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(norank).drop(columns=[]),
                                  full.drop(columns=["rank"]), check_dtype=False)


def test_stdout_holds_only_data(model: Path) -> None:
    result = CliRunner().invoke(app, ["score", str(DEMO), "-m", str(model), "--id-column",
                                      "row_id", "--top", "3", "-o", "-", "--threshold", "1e9",
                                      "--progress"])
    assert result.exit_code == 0
    out = pd.read_csv(io.StringIO(result.stdout))
    assert len(out) == 3 and out["rank"].tolist() == [1, 2, 3]
    assert out["is_anomaly"].sum() == 0  # --threshold overrides the model's
    assert "scored 3000 rows" in result.stderr
    assert "rows/s" in result.stderr  # the progress bar, on stderr only


def test_contamination_sets_share_of_training_rows(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert run("score", DEMO, "-m", model, "--contamination", "0.1", "--no-rank", "-o", out,
               "-q").exit_code == 0
    share = pd.read_csv(out)["is_anomaly"].mean()
    assert 0.08 <= share <= 0.12
    both = run("score", DEMO, "-m", model, "--contamination", "0.1", "--threshold", "3",
               "-o", out)
    assert both.exit_code == EXIT_USAGE


def test_round_trip_compress_decompress(model: Path, tmp_path: Path) -> None:
    vkc = tmp_path / "demo.vkc"
    result = run("compress", DEMO, "-m", model, "--id-column", "row_id", "-o", vkc)
    assert result.exit_code == 0, result.output
    assert "bytes/row" in result.stderr
    restored = tmp_path / "restored.csv"
    result = run("decompress", vkc, "-m", model, "-o", restored, "-q")
    assert result.exit_code == 0, result.output
    demo, back = pd.read_csv(DEMO), pd.read_csv(restored)
    assert list(back.columns) == list(demo.columns)
    assert back["row_id"].tolist() == demo["row_id"].tolist()
    assert back["region"].isin(demo["region"].unique()).all()
    info = json.loads(run("info", vkc, "--json", "--verify").stdout)
    assert info["type"] == "container" and info["rows"] == 3000


def test_compress_fit_embeds_model(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    pd.read_csv(DEMO).head(400).to_csv(small, index=False)
    vkc = tmp_path / "small.vkc"
    result = run("compress", small, "--fit", "--epochs", "2", "--id-column", "row_id",
                 "--embed-model", "--save-model", tmp_path / "m.vaekit", "-o", vkc, "-q")
    assert result.exit_code == 0, result.output
    out = run("decompress", vkc, "-o", "-", "-q")  # the embedded model decodes it
    assert out.exit_code == 0, out.output
    back = pd.read_csv(io.StringIO(out.stdout))
    assert back["row_id"].tolist() == pd.read_csv(small)["row_id"].tolist()
    assert (tmp_path / "m.vaekit").exists()


def test_info_model_human_and_json(model: Path) -> None:
    text = run("info", model)
    assert text.exit_code == 0
    assert "VAEAnomalyDetector" in text.stdout and "threshold" in text.stdout
    facts = json.loads(run("info", model, "--json").stdout)
    assert facts["training"]["rows"] == 3000 and facts["training"]["epochs"] == 2
    assert len(facts["fingerprint"]) == 64
    assert [c["name"] for c in facts["columns"]][0] == "region"


@pytest.mark.parametrize("command", ["fit", "score", "compress", "decompress", "info"])
def test_help_has_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output and "Exit codes" in result.output


def test_unknown_option_is_a_usage_error(model: Path) -> None:
    assert run("score", DEMO, "-m", model, "--frobnicate").exit_code == EXIT_USAGE
    assert run("compress", DEMO, "-o", "x.vkc").exit_code == EXIT_USAGE  # no -m, no --fit
    assert run("score", DEMO, "-m", model, "--scheduler", "tcp://h:1").exit_code == EXIT_USAGE


def test_wrong_model_file_exit_codes(tmp_path: Path) -> None:
    fake = tmp_path / "fake.vaekit"
    fake.write_bytes(b"this is not a model" * 10)
    out = tmp_path / "out.csv"
    result = run("score", DEMO, "-m", fake, "-o", out)
    assert result.exit_code == EXIT_FILE
    assert "not a vaekit model" in result.stderr and not out.exists()
    result = run("score", DEMO, "-m", tmp_path / "missing.vaekit", "-o", out)
    assert result.exit_code == EXIT_USAGE and not out.exists()


def test_skip_bad_rows_goes_to_side_file(model: Path, tmp_path: Path) -> None:
    lines = DEMO.read_text().splitlines()[:21]
    lines[4] = lines[4].replace(",web,", ",web,oops,")  # one field too many, line 5
    cells = lines[9].split(",")
    cells[5] = "lots"  # quantity, line 10
    lines[9] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    result = run("score", bad, "-m", model, "--id-column", "row_id", "--on-bad-rows", "skip",
                 "-o", out)
    assert result.exit_code == 0, result.output
    assert "skipped 2 bad row(s)" in result.stderr
    side = pd.read_csv(tmp_path / "out.bad-rows.csv")
    assert side["line"].tolist() == [5, 10]
    assert side["column"].fillna("").tolist() == ["", "quantity"]
    assert len(pd.read_csv(out)) == 18


def test_column_selection_and_compressor_models(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    pd.read_csv(DEMO).head(300).to_csv(small, index=False)
    model = tmp_path / "c.vaekit"
    result = run("fit", small, "--columns", "region,quantity,amount", "--exclude", "amount",
                 "--bytes-per-row", "2", "--epochs", "1", "--max-rows", "250", "-o", model, "-q")
    assert result.exit_code == 0, result.output
    facts = json.loads(run("info", model, "--json").stdout)
    assert facts["estimator"] == "VAECompressor" and facts["training"]["rows"] == 250
    assert [c["name"] for c in facts["columns"]] == ["region", "quantity"]
    # A compressor has no anomaly threshold: scoring asks for one.
    out = tmp_path / "s.csv"
    assert run("score", small, "-m", model, "-o", out).exit_code == EXIT_USAGE
    result = run("score", small, "-m", model, "--threshold", "10", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 300
    assert run("compress", small, "-m", model, "-o", tmp_path / "c.vkc", "-q").exit_code == 0


def test_images_fit_score_compress(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    images = np.rint(load_digits().images[:200] * (255 / 16)).astype(np.uint8)
    src = tmp_path / "digits.npz"
    np.savez(src, X=images)
    model = tmp_path / "d.vaekit"
    assert run("fit", src, "--epochs", "1", "-o", model, "-q").exit_code == 0
    out = tmp_path / "s.csv"
    assert run("score", src, "-m", model, "--top", "3", "-o", out, "-q").exit_code == 0
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["file", "line", "anomaly_score", "rank", "is_anomaly"]
    assert scored["line"].between(1, 200).all()
    vkc = tmp_path / "d.vkc"
    assert run("compress", src, "-m", model, "-o", vkc, "-q").exit_code == 0
    back = tmp_path / "back.npz"
    assert run("decompress", vkc, "-m", model, "-o", back, "-q").exit_code == 0
    with np.load(back) as f:
        assert f["X"].shape == images.shape and f["X"].dtype == np.uint8
    assert run("decompress", vkc, "-m", model, "-o", tmp_path / "x.csv").exit_code == EXIT_USAGE
    assert not (tmp_path / "x.csv").exists()


def test_split_inputs_in_mixed_formats_give_the_same_bytes(model: Path, scores: Path,
                                                            tmp_path: Path) -> None:
    demo = pd.read_csv(DEMO)
    demo.iloc[:1000].to_csv(tmp_path / "a.csv.gz", index=False)
    demo.iloc[1000:2000].to_parquet(tmp_path / "b.parquet")  # keeps a pandas index
    demo.iloc[2000:2500].to_csv(tmp_path / "c1.csv", index=False)
    demo.iloc[2500:].to_csv(tmp_path / "c2.csv", index=False)
    out = tmp_path / "out.csv"
    result = run("score", tmp_path / "a.csv.gz", tmp_path / "b.parquet", tmp_path / "c*.csv",
                 "-m", model, "--id-column", "row_id", "--explain", "2", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == scores.read_bytes()


def test_cli_module_does_not_import_torch_sklearn_numpy_or_pandas() -> None:
    # `vaekit --help` and usage errors should not pay for torch + scikit-learn (~2 s),
    # nor for numpy, pandas and pyarrow (~0.3 s): the commands import them when they run.
    heavy = ('torch', 'sklearn', 'numpy', 'pandas', 'pyarrow', 'zstandard')
    code = ("import sys, vaekit, vaekit.cli; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    helped = subprocess.run([sys.executable, "-c", "from vaekit.cli import main; main(['--help'])"],
                            capture_output=True, text=True)
    assert helped.returncode == 0 and "compress" in helped.stdout
