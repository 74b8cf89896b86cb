"""End-to-end speed and memory of ``vaekit score`` against bare CSV parsing.

Recipe: generate a seeded numeric CSV (``--rows`` rows x 20 columns, default
1,000,000), train a small model on its first rows, then time, each in a fresh
child process:

* ``parse``: reading the whole file with pyarrow's streaming CSV reader and
  nothing else (the floor any CSV tool pays);
* ``score``: ``python -m vaekit score FILE -m MODEL -o scores.csv``, end to end
  (interpreter and torch start-up, parsing, scoring, ranking, writing), at the
  model's 16 importance samples per row and at ``--samples 1``;
* ``score --no-rank``: the one-pass variant (no rank column).

Peak memory is the child's maximum resident set size (``/usr/bin/time -v``, or
``resource.getrusage`` when GNU time is missing).  To show that memory does not
grow with the file, the ``--samples 1`` run is repeated on a file 4 times larger.

Prints a Markdown table (rows/s, seconds, peak MB) and, with ``--write PATH``,
saves it.  ``--quick`` uses 4,000 / 16,000 rows: a smoke test for the test suite.

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


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak resident memory in MB)."""
    if shutil.which(GNU_TIME) or os.path.exists(GNU_TIME):
        start = time.perf_counter()
        done = subprocess.run([GNU_TIME, "-v", *cmd], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        return wall, (int(match.group(1)) / 1024 if match else float("nan"))
    # Without GNU time: a one-shot helper process so ru_maxrss covers this child only.
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:]); w = time.perf_counter() - t; "
             "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); "
             "sys.exit(r.returncode)")
    done = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    wall, peak = done.stdout.split()[-2:]
    return float(wall), float(peak)


def run(rows: int, big_rows: int, workdir: Path, epochs: int,
        quick: bool = False) -> list[dict[str, object]]:
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
    jobs = [
        ("parse (pyarrow, streaming)", small, rows,
         [sys.executable, "-c", PARSE_SCRIPT, str(small)]),
        ("vaekit score (16 samples/row)", small, rows,
         [*vaekit, "score", str(small), "-m", str(model), "-o", str(out), "-q"]),
        ("vaekit score --samples 1", small, rows,
         [*vaekit, "score", str(small), "-m", str(model), "--samples", "1", "-o", str(out),
          "-q"]),
        ("vaekit score --samples 1 --no-rank", small, rows,
         [*vaekit, "score", str(small), "-m", str(model), "--samples", "1", "--no-rank",
          "-o", str(out), "-q"]),
        ("parse (pyarrow, streaming)", big, big_rows,
         [sys.executable, "-c", PARSE_SCRIPT, str(big)]),
        ("vaekit score --samples 1", big, big_rows,
         [*vaekit, "score", str(big), "-m", str(model), "--samples", "1", "-o", str(out),
          "-q"]),
    ]
    if quick:  # the memory comparison only: every vaekit start-up costs seconds
        jobs = [jobs[0], jobs[2], jobs[4], jobs[5]]
    results = []
    for name, path, n, cmd in jobs:
        print(f"{name} on {n} rows ...", file=sys.stderr)
        wall, peak = measure(cmd, env)
        results.append({"step": name, "rows": n, "file_mb": path.stat().st_size / 2**20,
                        "seconds": wall, "rows_per_s": n / wall, "peak_mb": peak})
    return results


def table(results: list[dict[str, object]]) -> str:
    lines = ["| step | rows | file (MB) | seconds | rows/s | peak memory (MB) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r['step']} | {r['rows']:,} | {r['file_mb']:.0f} | "
                     f"{r['seconds']:.1f} | {r['rows_per_s']:,.0f} | {r['peak_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the main file")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the model")
    parser.add_argument("--quick", action="store_true", help="4,000 / 16,000 rows, 1 epoch")
    parser.add_argument("--write", type=Path, default=None, help="also save the table here")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the generated files (default: a temporary one)")
    args = parser.parse_args(argv)
    rows = 4_000 if args.quick else args.rows
    epochs = 1 if args.quick else args.epochs
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = run(rows, 4 * rows, Path(tmp), epochs, quick=args.quick)
    text = table(results)
    speed = {(r["step"], r["rows"]): float(r["rows_per_s"]) for r in results}  # type: ignore[arg-type]
    parse = speed[("parse (pyarrow, streaming)", rows)]
    for step in ("vaekit score (16 samples/row)", "vaekit score --samples 1"):
        if (step, rows) in speed:
            text += (f"\n\n{step}: {speed[(step, rows)] / parse:.1%} of bare parsing speed "
                     f"at {rows:,} rows.")
    peaks = [float(r["peak_mb"]) for r in results  # type: ignore[arg-type]
             if r["step"] == "vaekit score --samples 1"]
    text += (f"\n\nPeak memory of `score --samples 1`: {peaks[0]:.0f} MB at {rows:,} rows, "
             f"{peaks[-1]:.0f} MB at {4 * rows:,} rows.")
    print(text)
    if args.write is not None:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
