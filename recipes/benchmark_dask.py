"""Throughput of the Dask engine with 1 and 2 workers against the local engine.

Recipe: build ``--rows`` rows by repeating the demo table (``datasets/demo.csv``,
fresh row ids) and split them into ``--shards`` CSV files; fit a small detector
on the demo table; then time, on the same files:

* ``local``: :func:`vaekit.engines.local.iter_scored` and the local compression loop in
  this process (one thread, as ``vaekit score`` runs);
* ``dask, N workers``: :func:`vaekit.engines.dask.score_files_dask` and
  :func:`~vaekit.engines.dask.compress_files_dask` on the local cluster of
  :func:`~vaekit.engines.dask.dask_client`: N worker processes x 1 thread (loopback).
  The cluster is started once per N (its start-up time is reported on its own);
  each timed run includes shipping the model and collecting results in order.

Every run's scores are checked to be identical to the local engine's.  Each
timing is the best of ``--repeats`` runs (the machine may be shared).  Writes a
Markdown table and what it implies for a larger cluster to
``OUT/dask_benchmark.md``.

Run::

    python recipes/benchmark_dask.py                  # 120,000 rows, about a minute
    python recipes/benchmark_dask.py --rows 600000 --shards 24
    python recipes/benchmark_dask.py --quick --out /tmp/bench   # seconds: a smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import torch

from vaekit import VAEAnomalyDetector
from vaekit.engines.local import iter_scored
from vaekit.fitted.streams import CompressedWriter
from vaekit.jobs.compress_input import iter_compress_chunks
from vaekit.jobs.score import ScoreOptions

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "datasets" / "demo.csv"


def make_shards(folder: Path, rows: int, shards: int) -> list[str]:
    """``rows`` demo rows (repeated, new ids) in ``shards`` CSV files of equal size."""
    demo = pd.read_csv(DEMO, dtype={"row_id": str})
    reps = -(-rows // len(demo))
    frame = pd.concat([demo] * reps, ignore_index=True).iloc[:rows]
    frame["row_id"] = [f"R{i:09d}" for i in range(rows)]
    size = -(-rows // shards)
    paths = []
    for i in range(shards):
        path = folder / f"shard-{i:04d}.csv"
        frame.iloc[i * size:(i + 1) * size].to_csv(path, index=False)
        paths.append(str(path))
    return paths


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, object]:
    """Shortest wall time (s) of ``repeats`` runs, and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def engine_overhead(client: object, run: Callable[[], object]) -> float:
    """Seconds of one run not spent computing tasks: wall time minus task time / workers.

    Measured from Dask's own task stream, so unlike a comparison with the local
    run it does not depend on how busy the (shared) machine was in each run.
    """
    from distributed import get_task_stream

    n_workers = max(1, len(client.nthreads()))  # type: ignore[attr-defined]
    start = time.perf_counter()
    with get_task_stream(client) as stream:
        run()
    wall = time.perf_counter() - start
    busy = sum(s["stop"] - s["start"] for task in stream.data for s in task["startstops"]
               if s["action"] == "compute")
    return max(0.0, wall - busy / n_workers)


def local_compress(paths: list[str], model: VAEAnomalyDetector, target: Path) -> int:
    with CompressedWriter(target, model, id_columns=["row_id"]) as writer:
        for frame, _ in iter_compress_chunks(paths, model, ["row_id"]):
            writer.write(frame)
        return writer.n_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=120_000)
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--samples", type=int, default=16, help="importance samples per row")
    parser.add_argument("--out", default=str(ROOT / "recipes" / "results"))
    parser.add_argument("--quick", action="store_true", help="6,000 rows, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.shards, args.repeats = 6_000, 4, 1
    workers = [int(w) for w in args.workers.split(",")]

    from vaekit.engines.dask import compress_files_dask, dask_client, score_files_dask

    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    train = pd.read_csv(DEMO).drop(columns=["row_id"])
    model = VAEAnomalyDetector(random_state=0, epochs=3 if args.quick else 10,
                               n_samples=args.samples).fit(train)
    options = ScoreOptions(id_columns=("row_id",), threshold=model.threshold_,
                           n_samples=args.samples)
    rows_out: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="vaekit-dask-bench-") as tmp:
        folder = Path(tmp)
        paths = make_shards(folder, args.rows, args.shards)

        t_score, pieces = best_of(args.repeats,
                                  lambda: [t for t, _ in iter_scored(paths, model, options,
                                                                     threads=1, pipeline=False)])
        reference = pa.concat_tables(pieces)
        t_comp, _ = best_of(args.repeats,
                            lambda: local_compress(paths, model, folder / "local.vkc"))
        local_bytes = (folder / "local.vkc").stat().st_size
        rows_out.append({"engine": "local (1 process)", "workers": 1, "start_s": 0.0,
                         "score_s": t_score, "compress_s": t_comp, "identical": "reference"})

        for n in workers:
            start = time.perf_counter()
            # The local cluster `vaekit score --engine dask` starts without --scheduler.
            with dask_client(n_workers=n) as client:
                client.wait_for_workers(n)
                started = time.perf_counter() - start
                # Warm-up: workers import torch and vaekit on their first task.
                list(score_files_dask(paths[:1], model, options, scheduler=client))
                t_score, pieces = best_of(args.repeats, lambda c=client: [
                    t for t, _ in score_files_dask(paths, model, options, scheduler=c)])
                same = pa.concat_tables(pieces).equals(reference)
                overhead = engine_overhead(client, lambda c=client: list(
                    score_files_dask(paths, model, options, scheduler=c)))
                t_comp, manifest = best_of(args.repeats, lambda c=client: compress_files_dask(
                    paths, model, folder / "dask.vkc", id_columns=["row_id"], scheduler=c))
            rows_out.append({"engine": "dask", "workers": n, "start_s": started,
                             "score_s": t_score, "compress_s": t_comp,
                             "identical": "yes" if same else "NO", "overhead_s": overhead})
            if not same:
                raise SystemExit("dask scores differ from the local engine's")
    table = pd.DataFrame(rows_out)
    table["score_rows_per_s"] = args.rows / table["score_s"]
    table["compress_rows_per_s"] = args.rows / table["compress_s"]
    base = table.loc[0, "score_rows_per_s"]
    table["score_speedup"] = table["score_rows_per_s"] / base
    text = render(table, args, load, local_bytes, manifest.parts_bytes)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dask_benchmark.md").write_text(text)
    print(f"wrote {out / 'dask_benchmark.md'}")
    return 0


def render(table: pd.DataFrame, args: argparse.Namespace, load: float, local_bytes: int,
           parts_bytes: int) -> str:
    """The Markdown report: table, setup and what it implies for a larger cluster."""
    lines = [
        "# Dask engine throughput",
        "",
        f"{args.rows:,} rows (demo table repeated) in {args.shards} CSV shards; detector with "
        f"{args.samples} importance samples per row; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, 1-minute load average {load:.1f} at start; best of "
        f"{args.repeats} run(s). Generated by `python recipes/benchmark_dask.py"
        f"{' --quick' if args.quick else ''}`.",
        "",
        "| engine | workers | cluster start (s) | score (rows/s) | speed-up | "
        "compress (rows/s) | scores identical |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in table.itertuples():
        lines.append(f"| {r.engine} | {r.workers} | {r.start_s:.1f} | "
                     f"{r.score_rows_per_s:,.0f} | {r.score_speedup:.2f}x | "
                     f"{r.compress_rows_per_s:,.0f} | {r.identical} |")
    local = table.iloc[0]
    one = table[(table.engine == "dask") & (table.workers == 1)]
    two = table[(table.engine == "dask") & (table.workers == 2)]
    lines += ["", "## What it implies", ""]
    if len(one):
        ratio = float(one.score_rows_per_s.iloc[0]) / float(local.score_rows_per_s)
        per_task_ms = float(one.overhead_s.iloc[0]) / args.shards * 1000
        shard_rows = max(1, int(100 * per_task_ms / 1000 * float(local.score_rows_per_s)))
        lines.append(f"* Overhead of the engine: with 1 worker, {per_task_ms:.0f} ms per file "
                     "(task) were not spent scoring (Dask's task stream: wall time minus task "
                     "time; scheduling, moving results, ordering), so shards of at least "
                     f"{shard_rows:,} rows keep it under 1 %. Beyond that, the 1-worker rate "
                     f"({ratio:.2f}x the local loop's) differs only by the CPU share each "
                     "process got on the shared machine, which changes from run to run.")
    if len(two):
        eff = float(two.score_rows_per_s.iloc[0]) / (2 * float(one.score_rows_per_s.iloc[0])) \
            if len(one) else float("nan")
        lines.append(f"* 2 workers on this {os.cpu_count()}-core machine: "
                     f"{float(two.score_speedup.iloc[0]):.2f}x the local rate, a scaling "
                     f"efficiency of {eff:.0%} against 1 worker. Scoring is CPU-bound "
                     "(one thread per worker, small matrices), so with dedicated cores it "
                     "should scale with the number of worker processes until the client, which "
                     "receives and writes every score in order, becomes the limit (not "
                     "measured here). A machine shared with other jobs (1-minute load "
                     f"average {load:.1f} on {os.cpu_count()} cores when this table was made) "
                     "shows less.")
    per_worker = float(one.score_rows_per_s.iloc[0]) if len(one) else float(local.score_rows_per_s)
    for n_workers in (16, 64):
        rate = per_worker * n_workers
        lines.append(f"* Projected: {n_workers} such workers score about {rate:,.0f} rows/s, "
                     f"1 billion rows in {1e9 / rate / 3600:.1f} h, if each has a dedicated "
                     "core and the inputs are spread over at least as many shards.")
    lines.append(f"* Compressed size: the manifest's parts hold {parts_bytes:,} bytes vs "
                 f"{local_bytes:,} for one local container ({args.shards} part headers "
                 "extra); each part is byte for byte the local container of its shard.")
    lines.append("* Each worker parses the model once per job (scattered with "
                 "`broadcast=True`); cluster start-up (worker processes importing torch) "
                 "is paid once per `--engine dask` run without `--scheduler`, so small "
                 "jobs are faster on the local engine.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
