"""Outputs never destroy inputs: collisions refused, FIFOs and devices written in place,
SIGTERM and a full disk leave no temporary file, non-finite options refused, tables in
.npz files without pickle, report text taken literally (issue 15)."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaekit.cli import EXIT_FAILURE, EXIT_HANGUP, EXIT_TERMINATED, EXIT_USAGE

from ..conftest import DEMO, run_cli

run = run_cli


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.csv"
    pd.read_csv(DEMO).head(300).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def vkc(demo_model_file: Path, small_csv: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vkc") / "small.vkc"
    result = run("compress", small_csv, "-m", demo_model_file, "--id-column", "row_id",
                 "-o", out, "-q")
    assert result.exit_code == 0, result.output
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture()
def work(tmp_path: Path, small_csv: Path, demo_model_file: Path, vkc: Path) -> Path:
    """A folder with copies of the inputs: data.csv, model.vaekit, data.vkc."""
    (tmp_path / "data.csv").write_bytes(small_csv.read_bytes())
    (tmp_path / "model.vaekit").write_bytes(demo_model_file.read_bytes())
    (tmp_path / "data.vkc").write_bytes(vkc.read_bytes())
    return tmp_path


# --------------------------------------------------------------- 1. output = input

# (argv with names relative to the work folder, the two names the message must hold)
COLLISIONS = {
    "score -o input": (["score", "data.csv", "-m", "model.vaekit", "-o", "data.csv"],
                       ["-o", "input"]),
    "score -o ./input": (["score", "data.csv", "-m", "model.vaekit", "-o", "./data.csv"],
                         ["-o", "input"]),
    "score -o model": (["score", "data.csv", "-m", "model.vaekit", "-o", "model.vaekit"],
                       ["-o", "model"]),
    "score -o symlink to input": (["score", "data.csv", "-m", "model.vaekit", "-o",
                                   "link.csv"], ["-o", "data.csv"]),
    "score glob input": (["score", "csvs/*.csv", "-m", "model.vaekit", "-o",
                          "csvs/part.csv"], ["-o", "input"]),
    "score --bad-rows input": (["score", "data.csv", "-m", "model.vaekit", "-o", "s.csv",
                                "--on-bad-rows", "skip", "--bad-rows", "data.csv"],
                               ["--bad-rows", "input"]),
    "score --bad-rows = -o": (["score", "data.csv", "-m", "model.vaekit", "-o", "s.csv",
                               "--on-bad-rows", "skip", "--bad-rows", "s.csv"],
                              ["--bad-rows", "-o"]),
    "score default bad-rows file = input": (
        ["score", "s.bad-rows.csv", "-m", "model.vaekit", "-o", "s.csv", "--on-bad-rows",
         "skip"], ["bad-rows file", "input"]),
    "compress -o input": (["compress", "data.csv", "-m", "model.vaekit", "-o", "data.csv"],
                          ["-o", "input"]),
    "compress -o model": (["compress", "data.csv", "-m", "model.vaekit", "-o",
                           "model.vaekit"], ["-o", "model"]),
    "compress --save-model = -o": (["compress", "data.csv", "--fit", "-o", "x.vkc",
                                    "--save-model", "x.vkc"], ["--save-model", "-o"]),
    "compress --save-model input": (["compress", "data.csv", "--fit", "-o", "x.vkc",
                                     "--save-model", "data.csv"], ["--save-model", "input"]),
    "fit -o input": (["fit", "data.csv", "-o", "data.csv"], ["-o", "input"]),
    "fit --bad-rows = -o": (["fit", "data.csv", "-o", "m2.vaekit", "--on-bad-rows", "skip",
                             "--bad-rows", "m2.vaekit"], ["--bad-rows", "-o"]),
    "decompress -o same vkc": (["decompress", "data.vkc", "-m", "model.vaekit", "-o",
                                "data.vkc"], ["-o", "input"]),
    "decompress -o model": (["decompress", "data.vkc", "-m", "model.vaekit", "-o",
                             "model.vaekit"], ["-o", "-m"]),
    "report -o data": (["report", "model.vaekit", "data.csv", "-o", "data.csv"],
                       ["-o", "DATA"]),
    "report -o model": (["report", "model.vaekit", "-o", "model.vaekit"], ["-o", "model"]),
}


@pytest.mark.parametrize("case", list(COLLISIONS))
def test_an_output_naming_an_input_is_refused(work: Path, monkeypatch, case: str) -> None:
    argv, names = COLLISIONS[case]
    os.symlink(work / "data.csv", work / "link.csv")
    (work / "csvs").mkdir()
    (work / "csvs" / "part.csv").write_bytes((work / "data.csv").read_bytes())
    (work / "s.bad-rows.csv").write_bytes((work / "data.csv").read_bytes())
    before = _snapshot(work) | {"csvs/part.csv": (work / "csvs" / "part.csv").read_bytes()}
    monkeypatch.chdir(work)
    result = run(*argv)
    assert result.exit_code == EXIT_USAGE, result.output
    for name in names:
        assert name in result.output, result.output
    after = _snapshot(work) | {"csvs/part.csv": (work / "csvs" / "part.csv").read_bytes()}
    assert after == before  # nothing replaced, nothing new (no temp file either)
    assert sorted(os.listdir(work / "csvs")) == ["part.csv"]


def test_dask_compress_refuses_inputs_inside_its_parts_folder(work: Path, monkeypatch) -> None:
    pytest.importorskip("dask.distributed")
    parts = work / "out.vkc.parts"
    parts.mkdir()
    (parts / "data.csv").write_bytes((work / "data.csv").read_bytes())
    monkeypatch.chdir(work)
    result = run("compress", "out.vkc.parts/data.csv", "-m", "model.vaekit", "-o", "out.vkc",
                 "--engine", "dask")
    assert result.exit_code == EXIT_USAGE, result.output
    assert "inside 'out.vkc.parts'" in result.output


def test_distinct_outputs_still_work(work: Path, monkeypatch) -> None:
    monkeypatch.chdir(work)
    result = run("score", "data.csv", "-m", "model.vaekit", "-o", "scores.csv", "-q",
                 "--on-bad-rows", "skip", "--bad-rows", "bad.csv", "--id-column", "row_id")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(work / "scores.csv")) == 300


# ----------------------------------------------------- 2. FIFOs, devices, folders

def _fifo_reader(path: Path, got: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(path, "rb") as fh:
            got.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
@pytest.mark.parametrize("command", ["score-csv", "score-parquet", "compress", "fit"])
def test_a_fifo_output_is_written_in_place(work: Path, command: str) -> None:
    fifo = work / ("out.parquet" if command == "score-parquet" else "out")
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _fifo_reader(fifo, got)
    model, data = work / "model.vaekit", work / "data.csv"
    argv = {
        "score-csv": ["score", data, "-m", model, "--id-column", "row_id"],
        "score-parquet": ["score", data, "-m", model, "--id-column", "row_id"],
        "compress": ["compress", data, "-m", model, "--id-column", "row_id"],
        "fit": ["fit", data, "--id-column", "row_id", "--epochs", "1"],
    }[command]
    result = run(*argv, "-o", fifo, "-q")
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not a regular file
    assert got and got[0]  # the reader got the output
    if command == "score-csv":
        assert b"anomaly_score" in got[0].splitlines()[0] and got[0].count(b"\n") == 301
    elif command == "score-parquet":
        assert got[0][:4] == b"PAR1"
    # nothing left beside it
    assert sorted(os.listdir(work)) == ["data.csv", "data.vkc", "model.vaekit", fifo.name]


def test_dev_null_output_stays_a_device(work: Path, monkeypatch) -> None:
    if not os.path.exists(os.devnull) or not stat.S_ISCHR(os.stat(os.devnull).st_mode):
        pytest.skip("no /dev/null device")
    real_replace = os.replace

    def guarded(src: object, dst: object, *args: object, **kwargs: object) -> None:
        # Run as root the old code replaced /dev/null: never let this test do that.
        assert not os.fspath(dst).startswith("/dev/"), f"rename onto {dst}"
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", guarded)
    before = os.stat(os.devnull)
    result = run("score", work / "data.csv", "-m", work / "model.vaekit", "--id-column",
                 "row_id", "-o", os.devnull, "-q", "--on-bad-rows", "skip")
    assert result.exit_code == 0, result.output
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert not [n for n in os.listdir("/dev") if n.startswith((".null", ".vaekit-rank"))]


@pytest.mark.parametrize("command", ["score", "fit", "report"])
def test_a_folder_as_output_is_a_usage_error(work: Path, command: str) -> None:
    out = work / "folder"
    out.mkdir()
    argv = {"score": ["score", work / "data.csv", "-m", work / "model.vaekit"],
            "fit": ["fit", work / "data.csv"],
            "report": ["report", work / "model.vaekit"]}[command]
    result = run(*argv, "-o", out)
    assert result.exit_code == EXIT_USAGE, result.output
    assert "is a folder" in result.output
    assert os.listdir(out) == []


# --------------------------------------------------------- 3. SIGTERM, disk full

def _wait_for(predicate, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"vaekit ended before the temp files appeared: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("temp files never appeared")
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("to_stdout", "signame", "code"), [
    (False, "SIGTERM", EXIT_TERMINATED), (True, "SIGTERM", EXIT_TERMINATED),
    (False, "SIGHUP", EXIT_HANGUP),  # a closed terminal or dropped ssh session
])
def test_sigterm_removes_temp_and_spool_files(work: Path, tmp_path: Path, to_stdout: bool,
                                              signame: str, code: int) -> None:
    big = work / "big.csv"
    pd.concat([pd.read_csv(work / "data.csv")] * 300, ignore_index=True).to_csv(big,
                                                                                  index=False)
    out_dir, tmp_dir = tmp_path / "out", tmp_path / "tmpdir"
    out_dir.mkdir()
    tmp_dir.mkdir()
    out = "-" if to_stdout else str(out_dir / "scores.csv")
    env = dict(os.environ, TMPDIR=str(tmp_dir))
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "score", str(big), "-m",
                             str(work / "model.vaekit"), "--id-column", "row_id", "-o", out,
                             "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    spool_dir = tmp_dir if to_stdout else out_dir
    _wait_for(lambda: any(n.startswith(".vaekit-rank-") for n in os.listdir(spool_dir)),
              proc)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert f"terminated ({signame})" in err and "Traceback" not in err
    assert os.listdir(out_dir) == []
    assert os.listdir(tmp_dir) == []


def test_disk_full_while_spooling_removes_the_spool(work: Path, monkeypatch) -> None:
    import vaekit.jobs.rank as rank

    real_new_file = rank.ipc.new_file

    class Full:
        """An IPC writer on a full disk: every write and the final flush fail."""

        def __init__(self, sink: object, schema: object) -> None:
            self._inner = real_new_file(sink, schema)

        def write_table(self, table: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rank.ipc, "new_file", Full)
    before = sorted(os.listdir(work))
    result = run("score", work / "data.csv", "-m", work / "model.vaekit", "--id-column",
                 "row_id", "-o", work / "scores.csv", "-q")
    assert result.exit_code == EXIT_FAILURE, result.output
    assert "No space left on device" in result.output
    assert sorted(os.listdir(work)) == before  # no spool, no temp output


# ------------------------------------------------------------- 4. finite options

BAD_OPTIONS = {
    "score --threshold nan": ["score", "{data}", "-m", "{model}", "--threshold", "nan"],
    "score --threshold inf": ["score", "{data}", "-m", "{model}", "--threshold", "inf"],
    "score --threshold -inf": ["score", "{data}", "-m", "{model}", "--threshold", "-inf"],
    "score --contamination nan": ["score", "{data}", "-m", "{model}", "--contamination",
                                  "nan"],
    "score --samples 10**7": ["score", "{data}", "-m", "{model}", "--samples", "10000000"],
    "score --threads 10**9": ["score", "{data}", "-m", "{model}", "--threads", "1000000000"],
    "fit --contamination nan": ["fit", "{data}", "--contamination", "nan"],
    "fit --bytes-per-row nan": ["fit", "{data}", "--bytes-per-row", "nan"],
    "fit --bytes-per-row inf": ["fit", "{data}", "--bytes-per-row", "inf"],
    "fit --seed -1": ["fit", "{data}", "--seed", "-1"],
    "fit --seed 2**64": ["fit", "{data}", "--seed", str(2**64)],
    "fit --latent-dim 10**12": ["fit", "{data}", "--latent-dim", str(10**12)],
    "fit --samples 10**7": ["fit", "{data}", "--samples", "10000000"],
    "compress --bytes-per-row inf": ["compress", "{data}", "--fit", "--bytes-per-row", "inf"],
    "compress --seed -5": ["compress", "{data}", "--fit", "--seed", "-5"],
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_non_finite_or_absurd_option_values_are_usage_errors(work: Path, case: str) -> None:
    out = work / "out.bin"
    argv = [a.format(data=work / "data.csv", model=work / "model.vaekit")
            for a in BAD_OPTIONS[case]]
    result = run(*argv, "-o", out)
    assert result.exit_code == EXIT_USAGE, result.output
    assert "Invalid value for '--" + case.split("--")[1].split()[0] + "'" in result.output
    assert not out.exists()


# ------------------------------------------------------------------- 5. .npz tables

def test_decompress_table_to_npz_without_pickle(work: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(work / "data.csv")
    frame["note"] = ["text " * (i % 3) + "ü" if i % 5 else None for i in range(len(frame))]
    frame["row_num"] = np.arange(len(frame), dtype=np.int64) * 10**15 + 1  # > 2**53
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    vkc = tmp_path / "in.vkc"
    result = run("compress", src, "-m", work / "model.vaekit", "--id-column", "row_id",
                 "--id-column", "note", "--id-column", "row_num", "-o", vkc, "-q")
    assert result.exit_code == 0, result.output
    outs = []
    for name in ("a.npz", "b.npz"):
        result = run("decompress", vkc, "-m", work / "model.vaekit", "-o", tmp_path / name,
                     "-q")
        assert result.exit_code == 0, result.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]  # byte-identical reruns (no zip timestamps)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as npz:
        assert npz.files == list(frame.columns)
        arrays = {k: npz[k] for k in npz.files}
    assert all(a.dtype != object and len(a) == len(frame) for a in arrays.values())
    assert arrays["row_id"].dtype.kind == "U"
    assert list(arrays["row_id"]) == list(frame["row_id"])
    # id columns come back exactly (as the text they were stored as)
    assert list(arrays["row_num"]) == [str(v) for v in frame["row_num"]]
    assert arrays["is_weekend"].dtype == np.int64  # an integer model column (0/1)
    assert list(arrays["note"]) == [v if isinstance(v, str) else "" for v in frame["note"]]
    assert arrays["amount"].dtype == np.float64
    assert arrays["region"].dtype.kind == "U"


def test_decompress_images_to_npz_without_pickle(tmp_path: Path,
                                                 digits_images: np.ndarray) -> None:
    src = tmp_path / "digits.npz"
    np.savez(src, X=digits_images[:200])
    model, vkc, out = tmp_path / "d.vaekit", tmp_path / "d.vkc", tmp_path / "r.npz"
    assert run("fit", src, "--epochs", "1", "--bytes-per-row", "8", "-o", model,
               "-q").exit_code == 0
    assert run("compress", src, "-m", model, "-o", vkc, "-q").exit_code == 0
    result = run("decompress", vkc, "-m", model, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as npz:
        assert npz.files == ["X"]
        assert npz["X"].shape[0] == 200 and npz["X"].dtype != object


# ------------------------------------------------------------ 6. report text with $

def test_report_takes_ids_and_labels_literally(work: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    frame = pd.read_csv(work / "data.csv").head(200)
    odd = ["$x^2$", "a$b$c", "a$b^$c", "$", "\\$", "$\\frac$"]
    frame.loc[: len(odd) - 1, "row_id"] = odd
    frame.loc[: len(odd) - 1, "amount"] = 1e7  # the most anomalous rows: their ids are shown
    # a detector's labels are 0/1; the label column's name carries the $ instead
    frame["$lab^$"] = [1 if i < 6 else 0 for i in range(len(frame))]
    data = tmp_path / "dollar.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "report.html"
    result = run("report", work / "model.vaekit", data, "--id-column", "row_id", "--labels",
                 "$lab^$", "--top", "6", "-o", out)
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "a$b^$c" in html  # the top-anomaly table shows the id as it is


@pytest.mark.parametrize("command", ["fit", "compress"])
def test_a_byte_budget_beyond_the_bound_is_a_usage_error(work: Path, command: str) -> None:
    # 1e308 used to overflow deep in the quantizer (a traceback, exit 1)
    argv = (["fit", work / "data.csv"] if command == "fit" else
            ["compress", work / "data.csv", "--fit"])
    result = run(*argv, "--bytes-per-row", "1e308", "-o", work / "out.bin")
    assert result.exit_code == EXIT_USAGE, result.output
    assert "--bytes-per-row" in result.output and "Traceback" not in result.output
    assert not (work / "out.bin").exists()


def test_the_estimator_refuses_the_same_budget() -> None:
    from vaekit import VAECompressor

    with pytest.raises(ValueError, match="bytes_per_row"):
        VAECompressor(bytes_per_row=1e308).fit(np.zeros((20, 3)))
