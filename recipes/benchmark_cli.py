"""End-to-end speed and memory of ``vaekit score`` against bare CSV parsing.

Recipe: generate a seeded numeric CSV (``--rows`` rows x 20 columns, default
1,000,000), train a small model on its first rows, then time, each in a fresh
child process:

* ``parse``: reading the whole file with pyarrow's streaming CSV reader and
  nothing else (the floor any CSV tool pays);
* ``score``: ``python -m vaekit score FILE -m MODEL -o scores.csv``, end to end
  (interpreter and torch start-up, parsing, scoring, ranking, writing), at the
  model's 16 importance samples per row and at ``--samples 1``, each on one
  scoring thread (the default) and with ``--threads 2``;
* ``score --no-rank``: the one-pass variant (no rank column).

Each score run comes right after a parse run of the same file, and every such pair
is repeated (``--repeats``, default 3): the table gives medians and the median
ratio of the score run's speed to its parse run's, with the 1-minute load average
seen at the start of the runs (on a shared machine the load moves the numbers).

Peak memory is the child's maximum resident set size (``/usr/bin/time -v``, or
``resource.getrusage`` when GNU time is missing).  To show that memory does not
grow with the file, the ``--samples 1`` run is repeated on a file 4 times larger.

Prints a Markdown table (rows/s, seconds, ratio to parsing, peak MB, load) and,
with ``--write PATH``, saves it.  ``--quick`` uses 4,000 / 16,000 rows: a smoke test for the test suite.

Run::

    python recipes/benchmark_cli.py                      # 1M and 4M rows, several minutes
    python recipes/benchmark_cli.py --rows 200000        # smaller
    python recipes/benchmark_cli.py --quick              # seconds
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

N_COLUMNS = 20
GNU_TIME = "/usr/bin/time"

PARSE_SCRIPT = """
import sys, pyarrow.csv as c
n = 0
for batch in c.open_csv(sys.argv[1]):
    n += batch.num_rows
print(n)
"""


def make_csv(path: Path, rows: int, seed: int = 0, block: int = 250_000) -> None:
    """Seeded 20-column numeric CSV: correlated Gaussians, 4 decimals, written in blocks."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(N_COLUMNS, N_COLUMNS)) / np.sqrt(N_COLUMNS)
    names = [f"x{i:02d}" for i in range(N_COLUMNS)]
    with open(path, "wb") as fh:
        writer = None
        for start in range(0, rows, block):
            n = min(block, rows - start)
            values = np.round(rng.normal(size=(n, N_COLUMNS)) @ mixing, 4)
            table = pa.table({name: values[:, j] for j, name in enumerate(names)})
            if writer is None:
                writer = pacsv.CSVWriter(fh, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall seconds, peak resident memory in MB, CPU seconds).

    CPU seconds (user + system, all threads) say how much work a run did, which
    the machine's load changes much less than the wall time.
    """
    if shutil.which(GNU_TIME) or os.path.exists(GNU_TIME):
        start = time.perf_counter()
        done = subprocess.run([GNU_TIME, "-v", *cmd], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)",
                                               done.stderr))
        return wall, (int(match.group(1)) / 1024 if match else float("nan")), cpu
    # Without GNU time: a one-shot helper process so ru_maxrss covers this child only.
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:]); w = time.perf_counter() - t; "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(w, u.ru_maxrss / 1024, u.ru_utime + u.ru_stime); "
             "sys.exit(r.returncode)")
    done = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    wall, peak, cpu = done.stdout.split()[-3:]
    return float(wall), float(peak), float(cpu)


def score_jobs(vaekit: list[str], path: Path, model: Path, out: Path,
               quick: bool) -> list[tuple[str, list[str]]]:
    """The ``vaekit score`` settings measured on one file."""
    base = [*vaekit, "score", str(path), "-m", str(model), "-o", str(out), "-q"]
    if quick:  # the memory comparison only: every vaekit start-up costs seconds
        return [("vaekit score --samples 1", [*base, "--samples", "1"])]
    return [
        ("vaekit score (16 samples/row)", base),
        ("vaekit score (16 samples/row) --threads 2", [*base, "--threads", "2"]),
        ("vaekit score --samples 1", [*base, "--samples", "1"]),
        ("vaekit score --samples 1 --threads 2", [*base, "--samples", "1", "--threads", "2"]),
        ("vaekit score --samples 1 --no-rank", [*base, "--samples", "1", "--no-rank"]),
    ]


def run(rows: int, big_rows: int, workdir: Path, epochs: int, quick: bool = False,
        repeats: int = 1) -> list[dict[str, object]]:
    """Each score step right after a bare parse of the same file, ``repeats`` times.

    Timing them back to back keeps the ratio meaningful on a shared machine whose
    load changes from minute to minute.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    vaekit = [sys.executable, "-m", "vaekit"]
    small, big = workdir / "bench.csv", workdir / "bench_big.csv"
    model, out = workdir / "bench.vaekit", workdir / "scores.csv"
    print(f"generating {rows} and {big_rows} rows ...", file=sys.stderr)
    make_csv(small, rows, seed=0)
    make_csv(big, big_rows, seed=1)
    # Training is set-up, not measured: run `vaekit fit` in this process (one start-up less).
    from vaekit.cli import app

    app.main(["fit", str(small), "--max-rows", str(min(rows, 20_000)), "--epochs", str(epochs),
              "--seed", "0", "-o", str(model), "-q"], standalone_mode=False)
    plan = [(small, rows, name, cmd)
            for name, cmd in score_jobs(vaekit, small, model, out, quick)]
    plan.append((big, big_rows, "vaekit score --samples 1",
                 [*vaekit, "score", str(big), "-m", str(model), "--samples", "1", "-o",
                  str(out), "-q"]))
    results = []
    for rep in range(repeats):
        for path, n, name, cmd in plan:
            for step, argv in (("parse (pyarrow, streaming)",
                                [sys.executable, "-c", PARSE_SCRIPT, str(path)]),
                               (name, cmd)):
                print(f"[{rep + 1}/{repeats}] {step} on {n} rows ...", file=sys.stderr)
                load = os.getloadavg()[0]
                wall, peak, cpu = measure(argv, env)
                results.append({"step": step, "rows": n, "file_mb": path.stat().st_size / 2**20,
                                "seconds": wall, "rows_per_s": n / wall, "peak_mb": peak,
                                "cpu_s": cpu,
                                "load": load, "repeat": rep, "pair": name})
    return results


def summarize(results: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per step and size: median over repeats; score steps get their median ratio to the
    parse run just before them."""
    groups: dict[tuple[str, int], list[dict[str, object]]] = {}
    for r in results:
        key = (str(r["step"]), int(r["rows"]))  # type: ignore[call-overload]
        groups.setdefault(key, []).append(r)
    by_pair = {(r["pair"], r["rows"], r["repeat"], r["step"]): r for r in results}
    rows = []
    for (step, n), rs in groups.items():
        ratios = []
        if not step.startswith("parse"):
            for r in rs:
                parse = by_pair[(step, n, r["repeat"], "parse (pyarrow, streaming)")]
                ratios.append(float(r["rows_per_s"]) / float(parse["rows_per_s"]))  # type: ignore[arg-type]
        loads = [float(r["load"]) for r in rs]  # type: ignore[arg-type]
        rows.append({
            "step": step, "rows": n, "runs": len(rs), "file_mb": rs[0]["file_mb"],
            "seconds": float(np.median([r["seconds"] for r in rs])),
            "cpu_s": float(np.median([r["cpu_s"] for r in rs])),
            "rows_per_s": float(np.median([r["rows_per_s"] for r in rs])),
            "ratio": float(np.median(ratios)) if ratios else None,
            "peak_mb": float(max(r["peak_mb"] for r in rs)),  # type: ignore[type-var]
            "load": f"{min(loads):.1f}-{max(loads):.1f}",
        })
    return rows


def table(summary: list[dict[str, object]]) -> str:
    lines = ["| step | rows | runs | file (MB) | seconds | CPU s | rows/s | vs. parse "
             "| peak memory (MB) | load avg |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in summary:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.0%}"
        lines.append(f"| {r['step']} | {r['rows']:,} | {r['runs']} | {r['file_mb']:.0f} | "
                     f"{r['seconds']:.1f} | {r['cpu_s']:.1f} | {r['rows_per_s']:,.0f} | {ratio} | "
                     f"{r['peak_mb']:.0f} | {r['load']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the main file")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the model")
    parser.add_argument("--repeats", type=int, default=3,
                        help="times each (parse, score) pair is run; medians are reported")
    parser.add_argument("--quick", action="store_true", help="4,000 / 16,000 rows, 1 epoch")
    parser.add_argument("--write", type=Path, default=None, help="also save the table here")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the generated files (default: a temporary one)")
    args = parser.parse_args(argv)
    rows = 4_000 if args.quick else args.rows
    epochs = 1 if args.quick else args.epochs
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = run(rows, 4 * rows, Path(tmp), epochs, quick=args.quick, repeats=repeats)
    summary = summarize(results)
    text = table(summary)
    text += (f"\n\nMachine: {os.cpu_count()} CPU cores; load average (1 min) during the "
             f"run: {min(float(r['load']) for r in results):.1f} to "  # type: ignore[arg-type]
             f"{max(float(r['load']) for r in results):.1f}.")  # type: ignore[arg-type]
    for r in summary:
        if r["ratio"] is not None and r["rows"] == rows:
            text += (f"\n\n{r['step']}: {r['ratio']:.1%} of bare parsing speed "
                     f"at {rows:,} rows (median of {r['runs']} back-to-back pairs).")
    peaks = {int(r["rows"]): float(r["peak_mb"]) for r in summary  # type: ignore[call-overload]
             if r["step"] == "vaekit score --samples 1"}
    text += (f"\n\nPeak memory of `score --samples 1`: {peaks[rows]:.0f} MB at {rows:,} rows, "
             f"{peaks[4 * rows]:.0f} MB at {4 * rows:,} rows.")
    print(text)
    if args.write is not None:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
