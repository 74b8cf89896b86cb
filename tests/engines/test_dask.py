"""The Dask engine against the local engine, on a real LocalCluster (loopback only).

One cluster of 2 worker processes x 1 thread serves the module (starting one
costs seconds); one test starts its own 1-worker cluster to check that
``scheduler=None`` starts and stops a cluster cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

from vaekit import DataError, FileFormatError, VAEAnomalyDetector  # noqa: E402
from vaekit.codec.manifest import count_rows, is_manifest, read_manifest  # noqa: E402
from vaekit.engines.local import iter_scored  # noqa: E402
from vaekit.fitted.manifests import iter_decompressed_any  # noqa: E402
from vaekit.fitted.streams import CompressedWriter, iter_decompressed  # noqa: E402
from vaekit.jobs.compress_input import iter_compress_chunks  # noqa: E402
from vaekit.jobs.score import ScoreOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "datasets" / "demo.csv"
N_SHARDS = 6


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c, \
            distributed.Client(c, set_as_default=False) as client:
        yield c, client


@pytest.fixture(scope="module")
def model() -> VAEAnomalyDetector:
    frame = pd.read_csv(DEMO).drop(columns=["row_id"]).iloc[:1000]
    return VAEAnomalyDetector(random_state=0, epochs=2, hidden_dims=[16], n_samples=4).fit(frame)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[str]:
    """The demo CSV split into N_SHARDS files (header repeated in each)."""
    folder = tmp_path_factory.mktemp("shards")
    lines = DEMO.read_text().splitlines()
    head, body = lines[0], lines[1:]
    size = -(-len(body) // N_SHARDS)
    paths = []
    for i in range(N_SHARDS):
        path = folder / f"shard-{i}.csv"
        path.write_text("\n".join([head, *body[i * size:(i + 1) * size]]) + "\n")
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def options(model) -> ScoreOptions:
    return ScoreOptions(id_columns=("row_id",), threshold=model.threshold_, explain=2,
                        n_samples=4)


def _local(paths, model, options, **kw):
    return list(iter_scored(paths, model, options, **kw))


def _tables(pieces) -> pa.Table:
    return pa.concat_tables([t for t, _ in pieces])


# --------------------------------------------------------------------------- packaging


def test_core_never_imports_dask():
    code = """
import sys, vaekit, vaekit.jobs.read, vaekit.jobs.score, vaekit.jobs.rank, vaekit.cli
import vaekit.engines, vaekit.engines.local, vaekit.engines.ordered, vaekit.codec.manifest
import vaekit.fitted.manifests
bad = [m for m in ('dask', 'distributed') if m in sys.modules]
assert not bad, bad
assert vaekit.engines.dask_available()
sys.modules['distributed'] = None  # as if the extra were not installed
try:
    import vaekit.engines.dask
except ImportError as exc:
    assert "vaekit[dask]" in str(exc), exc
else:
    raise AssertionError("no ImportError")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- scoring


def test_score_files_identical_and_model_parsed_once_per_worker(cluster, model, shards,
                                                                options):
    from vaekit.engines.dask import parse_count, score_files_dask

    c, client = cluster
    before = client.run(parse_count)
    seen: list[int] = []
    # The scheduler given as an address, as the CLI's --scheduler passes it.
    pieces = list(score_files_dask(shards, model, options, scheduler=c.scheduler_address,
                                   progress=seen.append))
    local = _local(shards, model, options)
    assert len(pieces) == len(local)
    for (t1, b1), (t2, b2) in zip(pieces, local, strict=True):
        assert t1.equals(t2)  # bit for bit, schema included
        assert b1 == b2
    assert sum(seen) == 3000
    after = client.run(parse_count)
    # 6 files on 2 workers: each worker parsed the model at most once.
    assert all(after[w] - before.get(w, 0) <= 1 for w in after)


def _with_bad_rows(folder: Path, shards: list[str]) -> list[str]:
    """Copies of the shards where shard 2 has a non-number and a short line."""
    out = []
    for i, path in enumerate(shards):
        lines = Path(path).read_text().splitlines()
        if i == 2:
            fields = lines[5].split(",")
            fields[5] = "lots"  # quantity
            lines[5] = ",".join(fields)
            lines[9] = "R9,west"
        target = folder / Path(path).name
        target.write_text("\n".join(lines) + "\n")
        out.append(str(target))
    return out


def test_bad_rows_skipped_and_errors_like_local(cluster, model, shards, options, tmp_path):
    from vaekit.engines.dask import score_files_dask

    _, client = cluster
    paths = _with_bad_rows(tmp_path, shards)
    got = list(score_files_dask(paths, model, options, scheduler=client, skip_bad_rows=True))
    want = _local(paths, model, options, skip_bad_rows=True)
    assert _tables(got).equals(_tables(want))
    assert [b for _, bad in got for b in bad] == [b for _, bad in want for b in bad]
    assert len([b for _, bad in got for b in bad]) == 2

    # Failing: the same first error, after the same chunks were handed out.
    with pytest.raises(DataError) as local_err:
        list(iter_scored(paths, model, options))
    handed: list[pa.Table] = []
    with pytest.raises(DataError) as dask_err:
        for table, _ in score_files_dask(paths, model, options, scheduler=client):
            handed.append(table)
    assert str(dask_err.value) == str(local_err.value)
    assert dask_err.value.file == paths[2] and dask_err.value.row == local_err.value.row
    assert sum(t.num_rows for t in handed) == 1000  # shards 0 and 1


def test_worker_warnings_reach_the_client(cluster, model, shards, options, tmp_path):
    from vaekit.engines.dask import score_files_dask

    _, client = cluster
    frame = pd.read_csv(shards[0]).assign(extra=1)
    path = tmp_path / "extra.csv"
    frame.to_csv(path, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(score_files_dask([str(path)], model, options, scheduler=client))
    assert any("ignoring column(s) ['extra']" in str(w.message) for w in caught)


# --------------------------------------------------------------------------- compression


def _local_container(paths, model, target) -> None:
    with CompressedWriter(target, model, id_columns=["row_id"]) as writer:
        for frame, _ in iter_compress_chunks(paths, model, ["row_id"]):
            writer.write(frame)


def test_compress_files_manifest_round_trip(cluster, model, shards, tmp_path):
    from vaekit.engines.dask import compress_files_dask

    _, client = cluster
    out = tmp_path / "out.vkc"
    seen: list[int] = []
    manifest = compress_files_dask(shards, model, out, id_columns=["row_id"], scheduler=client,
                                   progress=seen.append)
    assert manifest.n_rows == 3000 and len(manifest.parts) == N_SHARDS and sum(seen) == 3000
    assert is_manifest(out) and count_rows(out) == 3000
    assert out.read_bytes().startswith(b'{"format": "vaekit-manifest"')

    # Each part is byte for byte what the local engine writes for its file.
    for path, part in zip(shards, manifest.parts, strict=True):
        single = tmp_path / "one.vkc"
        _local_container([path], model, single)
        assert Path(manifest.resolve(part)).read_bytes() == single.read_bytes()
        assert part.source == path

    # Decompressing the manifest = decompressing one container of all rows.
    whole = tmp_path / "whole.vkc"
    _local_container(shards, model, whole)
    want = pd.concat(list(iter_decompressed(whole, model)))
    got = pd.concat(list(iter_decompressed_any(out, model)))
    pd.testing.assert_frame_equal(got, want)
    assert got["row_id"].tolist() == pd.read_csv(DEMO)["row_id"].tolist()

    # A re-run replaces the output atomically and removes the old parts.
    old = {p.name for p in (tmp_path / "out.vkc.parts").iterdir()}
    again = compress_files_dask(shards[:2], model, out, id_columns=["row_id"],
                                scheduler=client, embed_model=True)
    now = {p.name for p in (tmp_path / "out.vkc.parts").iterdir()}
    assert not old & now and len(now) == 3  # 2 parts + the model file
    assert again.model is not None
    restored = pd.concat(list(iter_decompressed_any(out)))  # model stored beside the parts
    pd.testing.assert_frame_equal(restored, want.iloc[:1000])


def _assert_within(want: pd.DataFrame, got: pd.DataFrame, model, eps: float) -> None:
    from vaekit.fitted.bounded import resolve_bounds

    want, got = want.reset_index(drop=True), got.reset_index(drop=True)
    names = model.fitted_.schema.names()
    for name, bound in zip(names, resolve_bounds(model.fitted_, eps), strict=True):
        a, b = want[name], got[name]
        assert (a.isna() == b.isna()).all(), name
        if bound is None:
            assert a.dropna().tolist() == b.dropna().tolist(), name  # 0.0 == 0: levels
        else:
            assert (a.astype(float) - b.astype(float)).abs().max() <= bound, name


def test_bounded_compression_on_dask_equals_the_local_engine(cluster, model, shards, tmp_path,
                                                              monkeypatch):
    """``max_abs_error`` reaches the workers: each part is, byte for byte, the local
    engine's container with the same bound, and every value keeps it; a bound the
    model cannot take is refused before anything is written."""
    from vaekit.engines.dask import compress_files_dask

    _, client = cluster
    out = tmp_path / "bounded.vkc"
    manifest = compress_files_dask(shards[:2], model, out, id_columns=["row_id"],
                                   scheduler=client, max_abs_error=0.05)
    for path, part in zip(shards[:2], manifest.parts, strict=True):
        single = tmp_path / "one.vkc"
        with CompressedWriter(single, model, id_columns=["row_id"], max_abs_error=0.05) as w:
            for frame, _ in iter_compress_chunks([path], model, ["row_id"]):
                w.write(frame)
        assert Path(manifest.resolve(part)).read_bytes() == single.read_bytes()
    want = pd.concat([pd.read_csv(p) for p in shards[:2]])
    _assert_within(want, pd.concat(list(iter_decompressed_any(out, model))), model, 0.05)
    import vaekit.engines.dask as engine

    def no_tasks(*args, **kwargs):
        raise AssertionError("a task started for a bound the client should refuse")

    monkeypatch.setattr(engine, "run_parts", no_tasks)
    with pytest.raises(DataError, match="max_abs_error"):
        compress_files_dask(shards[:1], model, tmp_path / "bad.vkc", scheduler=client,
                            max_abs_error=-1.0)
    with pytest.raises(ValueError, match="max_abs_error is 'bogus'"):
        compress_files_dask(shards[:1], model, tmp_path / "bad.vkc", scheduler=client,
                            max_abs_error="bogus")
    assert not (tmp_path / "bad.vkc").exists()


def test_manifest_damage_is_detected(cluster, model, shards, tmp_path):
    from vaekit.engines.dask import compress_files_dask

    _, client = cluster
    out = tmp_path / "out.vkc"
    manifest = compress_files_dask(shards[:3], model, out, id_columns=["row_id"],
                                   scheduler=client)
    part = Path(manifest.resolve(manifest.parts[1]))
    data = bytearray(part.read_bytes())
    data[-40] ^= 1
    part.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="SHA-256"):
        list(iter_decompressed_any(out, model))
    part.unlink()
    with pytest.raises(FileFormatError, match="missing"):
        list(iter_decompressed_any(out, model))
    obj = json.loads(out.read_text())
    obj["parts"][0]["path"] = "../../etc/passwd"
    out.write_text(json.dumps(obj))
    with pytest.raises(FileFormatError, match="unexpected path"):
        read_manifest(out)
    obj["version"] = 99
    out.write_text(json.dumps(obj))
    with pytest.raises(FileFormatError, match="Upgrade vaekit"):
        read_manifest(out)


def test_compress_failure_publishes_nothing(cluster, model, shards, tmp_path):
    from vaekit.engines.dask import compress_files_dask

    _, client = cluster
    paths = _with_bad_rows(tmp_path, shards[:3])
    out = tmp_path / "bad.vkc"
    with pytest.raises(DataError, match="line"):
        compress_files_dask(paths, model, out, id_columns=["row_id"], scheduler=client)
    assert not out.exists() and not (tmp_path / "bad.vkc.parts").exists()
    skipped: list = []
    manifest = compress_files_dask(paths, model, out, id_columns=["row_id"], scheduler=client,
                                   skip_bad_rows=True, on_bad_rows=skipped.extend)
    assert manifest.n_rows == 1498 and len(skipped) == 2


# --------------------------------------------------------------------------- DataFrames


def test_dataframe_api(cluster, model, shards, options, tmp_path):
    from vaekit.engines.dask import compress_dataframe, score_dataframe

    _, client = cluster
    ddf = dd.read_csv(shards, assume_missing=True, dtype={"row_id": str})
    scores = client.compute(score_dataframe(ddf, model, options, client=client)).result()
    local = _tables(_local(shards, model, options)).to_pandas()
    np.testing.assert_array_equal(scores["anomaly_score"].to_numpy(),
                                  local["anomaly_score"].to_numpy())
    assert scores["row_id"].tolist() == local["row_id"].tolist()
    assert scores["top1_column"].tolist() == local["top1_column"].tolist()

    out = tmp_path / "frame.vkc"
    manifest = compress_dataframe(ddf, model, out, id_columns=["row_id"], client=client)
    assert manifest.n_rows == 3000 and len(manifest.parts) == ddf.npartitions
    frame = ddf.compute().reset_index(drop=True)
    whole = tmp_path / "whole.vkc"
    with CompressedWriter(whole, model, id_columns=["row_id"]) as writer:
        writer.write(frame)
    pd.testing.assert_frame_equal(pd.concat(list(iter_decompressed_any(out, model))),
                                  pd.concat(list(iter_decompressed(whole, model))))
    # with a bound: every value keeps it (chunk boundaries differ from one container's,
    # and a coarse grid's origin is chosen per chunk, so the values may differ from it)
    compress_dataframe(ddf, model, out, id_columns=["row_id"], client=client,
                       max_abs_error=0.05)
    _assert_within(frame, pd.concat(list(iter_decompressed_any(out, model))), model, 0.05)


def test_partitions_read_text_levels_like_files(tmp_path):
    """score_dataframe and compress_dataframe convert a partition as the readers do:
    text "1" in a column with numeric levels is level 1, in both (no cluster needed)."""
    from vaekit.engines.dask import _compress_partition, _score_partition, model_blob

    rng = np.random.default_rng(0)
    code = rng.integers(0, 3, 200)
    train = pd.DataFrame({"x": code + 0.1 * rng.normal(size=200), "code": code})
    est = VAEAnomalyDetector(random_state=0, epochs=2, hidden_dims=[8], n_samples=2,
                             categorical_features=["code"]).fit(train)
    blob = model_blob(est)
    numbers = train.iloc[:30].assign(id=[f"r{i}" for i in range(30)])
    text = numbers.astype({"code": str})
    options = ScoreOptions(id_columns=("id",), threshold=1.0, n_samples=2)
    scores = [_score_partition(f, blob, options, {"number": 0}) for f in (numbers, text)]
    pd.testing.assert_frame_equal(scores[0], scores[1])
    assert set(scores[1]["unseen"]) == {""}
    parts = [_compress_partition(f, blob, ("id",), 1000) for f in (numbers, text)]
    assert parts[0] == parts[1] and parts[0][1] == 30
    with pytest.raises(DataError, match="not model columns"):
        _compress_partition(numbers.assign(note=1), blob, ("id",), 1000)


def test_fit_dataframe_on_a_uniform_sample_of_partitions(cluster, shards):
    """One partition per file: exactly the rows ``vaekit fit`` samples from the files;
    other partitions: the same size, the same rows on every run; the fit uses them."""
    from vaekit.engines.dask import fit_dataframe, sample_dataframe
    from vaekit.jobs.read import load_training_data

    _, client = cluster
    by_file = dd.read_csv(shards, blocksize=None, assume_missing=True, dtype={"row_id": str})
    assert by_file.npartitions == N_SHARDS
    sample = sample_dataframe(by_file, max_rows=300, random_state=5, client=client)
    files = load_training_data(shards, max_rows=300, seed=5).data
    assert sample["row_id"].tolist() == files["row_id"].astype(str).tolist()
    ids = sample["row_id"].str[1:].astype(int)
    assert ids.is_monotonic_increasing and ids.min() < 300 and ids.max() > 2700

    halves = by_file.repartition(npartitions=2)
    again = [sample_dataframe(halves, max_rows=300, random_state=5, client=client)
             for _ in range(2)]
    pd.testing.assert_frame_equal(again[0], again[1])
    assert len(again[0]) == 300 and again[0]["row_id"].is_unique
    assert again[0]["row_id"].tolist() != sample["row_id"].tolist()  # keys follow partitions
    everything = sample_dataframe(by_file, client=client)  # "auto": 3,000 rows fit
    pd.testing.assert_frame_equal(everything, by_file.compute().reset_index(drop=True))

    est = VAEAnomalyDetector(random_state=0, epochs=1, hidden_dims=[8], n_samples=2)
    fitted = fit_dataframe(by_file.drop(columns=["row_id"]), est, max_rows=300,
                           random_state=5, client=client)
    assert fitted is est and len(est.decision_scores_) == 300
    local = VAEAnomalyDetector(random_state=0, epochs=1, hidden_dims=[8], n_samples=2)
    local.fit(sample.drop(columns=["row_id"]))
    np.testing.assert_array_equal(est.decision_scores_, local.decision_scores_)


# --------------------------------------------------------------------------- clusters


def test_local_cluster_started_and_stopped(model, shards, options):
    import psutil

    from vaekit.engines.dask import score_files_dask

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    got = _tables(score_files_dask(shards[:2], model, options, n_workers=1))
    assert got.equals(_tables(_local(shards[:2], model, options)))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = {p.pid for p in me.children(recursive=True) if p.is_running()} - before
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"worker processes left running: {left}"


def _slow_scoring(seconds: float) -> None:
    """Runs on a worker: make every chunk take ``seconds`` longer (test-only)."""
    import time as _time

    import vaekit.engines.local as local

    original = getattr(local, "_test_original_score_chunk", local.score_chunk)
    local._test_original_score_chunk = original

    def slow(*args, **kwargs):
        _time.sleep(seconds)
        return original(*args, **kwargs)

    local.score_chunk = slow if seconds else original


def test_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, model, shards, options):
    from vaekit.engines.dask import score_files_dask

    c, client = cluster
    client.run(_slow_scoring, 0.4)
    try:
        pids = client.run(os.getpid)
        killed = None
        pieces = []
        for i, piece in enumerate(score_files_dask(shards, model, options, scheduler=client)):
            pieces.append(piece)
            if i == 0:
                # Both workers are busy with later files now: kill one mid-task.
                busy = [w for w, keys in client.processing().items() if keys and w in pids]
                assert busy
                killed = busy[0]
                os.kill(pids[killed], signal.SIGKILL)
        assert killed is not None
        local = _local(shards, model, options)
        got = _tables(pieces)
        assert got.equals(_tables(local))
        assert got.column("row_id").to_pylist() == pd.read_csv(DEMO)["row_id"].tolist()
        # The nanny restarted the killed worker: a new process took its place.
        client.wait_for_workers(2, timeout=60)
        assert pids[killed] not in client.run(os.getpid).values()
    finally:
        client.run(_slow_scoring, 0.0)


# --------------------------------------------------------------------------- CLI


def test_cli_engine_dask_matches_local_byte_for_byte(cluster, model, shards, tmp_path):
    from ..conftest import run_cli

    c, _ = cluster
    model_path = tmp_path / "m.vaekit"
    model.save(model_path)
    outputs = {}
    for engine in ("local", "dask"):
        out = tmp_path / f"{engine}.csv"
        extra = ["--engine", "dask", "--scheduler", c.scheduler_address] if engine == "dask" else []
        result = run_cli("score", *shards, "-m", model_path, "--id-column", "row_id",
                         "--explain", "2", "-o", out, "--quiet", *extra)
        assert result.exit_code == 0, result.output
        outputs[engine] = out.read_bytes()
    assert outputs["dask"] == outputs["local"]
    assert outputs["local"].count(b"\n") == 3001


def test_cli_compress_max_error_on_dask(cluster, model, shards, tmp_path):
    """``vaekit compress --engine dask --max-error E``: every restored value keeps E."""
    from ..conftest import run_cli

    c, _ = cluster
    model_path = tmp_path / "m.vaekit"
    model.save(model_path)
    out = tmp_path / "out.vkc"
    result = run_cli("compress", *shards[:2], "-m", model_path, "--id-column", "row_id",
                     "--max-error", "0.05", "-o", out, "--quiet", "--engine", "dask",
                     "--scheduler", c.scheduler_address)
    assert result.exit_code == 0, result.output
    restored = tmp_path / "back.csv"
    result = run_cli("decompress", out, "-m", model_path, "-o", restored, "--quiet")
    assert result.exit_code == 0, result.output
    _assert_within(pd.concat([pd.read_csv(p) for p in shards[:2]]), pd.read_csv(restored),
                   model, 0.05)
