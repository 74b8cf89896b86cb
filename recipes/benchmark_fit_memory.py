"""Peak memory of ``vaekit fit`` on a CSV larger than its training sample.

Recipe: generate a seeded CSV of ``--rows`` rows (default 10,000,000) x 20 numeric
columns, sorted by its first column like a time-ordered export, then run in fresh
child processes:

* ``import vaekit, torch``: the floor every vaekit command pays (interpreter, torch);
* ``vaekit fit FILE -o MODEL``: the defaults -- one pass over every row keeping a
  uniform seeded sample of at most 1,000,000 rows and 128 MiB while reading
  (:data:`vaekit.jobs.read.DEFAULT_SAMPLE_BYTES`), then training on the sample;
* with ``--all-rows``, also ``vaekit fit FILE --max-rows 0``: every row in memory
  (what ``vaekit fit`` did before sampling; slow and large on big files).

Peak memory is each child's maximum resident set size (``ru_maxrss`` of a helper
process's children).  Prints a Markdown table (file size, rows read, rows trained,
seconds, peak MB) and, with ``--write PATH``, saves it.

Run::

    python recipes/benchmark_fit_memory.py                   # 10M rows (~1.7 GB CSV), long
    python recipes/benchmark_fit_memory.py --rows 2000000    # smaller
    python recipes/benchmark_fit_memory.py --rows 5000 --epochs 1   # smoke test
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

N_COLUMNS = 20

# Runs argv[1:] as its only child, then prints the child's wall time and peak RSS.
PROBE = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
         "r = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True); "
         "w = time.perf_counter() - t; sys.stderr.write(r.stderr); "
         "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
         "print(w, u.ru_maxrss / 1024); sys.exit(r.returncode)")


def make_csv(path: Path, rows: int, seed: int = 0, block: int = 250_000) -> None:
    """Seeded numeric CSV: a sorted time column and 19 correlated Gaussians, 4 decimals."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(N_COLUMNS - 1, N_COLUMNS - 1)) / np.sqrt(N_COLUMNS - 1)
    names = ["t"] + [f"x{i:02d}" for i in range(1, N_COLUMNS)]
    with open(path, "wb") as fh:
        writer = None
        for start in range(0, rows, block):
            n = min(block, rows - start)
            values = np.round(rng.normal(size=(n, N_COLUMNS - 1)) @ mixing, 4)
            # A slow drift along the file: a first-N sample would miss the late regime.
            values[:, 0] += 3.0 * (start + np.arange(n)) / max(rows, 1)
            columns = {"t": np.arange(start, start + n, dtype=np.int64)}
            columns.update({name: values[:, j] for j, name in enumerate(names[1:])})
            table = pa.table(columns)
            if writer is None:
                writer = pacsv.CSVWriter(fh, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd`` in a fresh process; (wall seconds, peak resident MB, its stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    wall, peak = done.stdout.split()[-2:]
    return float(wall), float(peak), done.stderr


def trained_rows(stderr: str, rows: int) -> int:
    """Rows the fit trained on, from its summary line."""
    match = re.search(r"fitted \w+ on (\d+) rows", stderr)
    return int(match.group(1)) if match else rows


def run(rows: int, workdir: Path, epochs: int | None, all_rows: bool) -> list[dict[str, object]]:
    path, model = workdir / "big.csv", workdir / "big.vaekit"
    print(f"generating {rows:,} rows ...", file=sys.stderr)
    make_csv(path, rows)
    file_mb = path.stat().st_size / 2**20
    fit = [sys.executable, "-m", "vaekit", "fit", str(path), "-o", str(model), "--seed", "0"]
    if epochs is not None:
        fit += ["--epochs", str(epochs)]
    plan = [("import vaekit, torch (floor)", [sys.executable, "-c", "import vaekit, torch"]),
            ("vaekit fit (default sample)", fit)]
    if all_rows:
        plan.append(("vaekit fit --max-rows 0 (every row)", [*fit, "--max-rows", "0"]))
    results = []
    for name, cmd in plan:
        print(f"{name} ...", file=sys.stderr)
        wall, peak, stderr = measure(cmd)
        fitted = name.startswith("vaekit fit")
        results.append({"step": name, "file_mb": file_mb, "rows": rows if fitted else 0,
                        "trained": trained_rows(stderr, rows) if fitted else 0,
                        "seconds": wall, "peak_mb": peak})
    return results


def table(results: list[dict[str, object]]) -> str:
    lines = ["| step | file (MB) | rows read | rows trained | seconds | peak memory (MB) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        read = f"{r['rows']:,}" if r["rows"] else ""
        trained = f"{r['trained']:,}" if r["trained"] else ""
        lines.append(f"| {r['step']} | {r['file_mb']:.0f} | {read} | {trained} | "
                     f"{r['seconds']:.1f} | {r['peak_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the CSV")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: vaekit's automatic schedule)")
    parser.add_argument("--all-rows", action="store_true",
                        help="also fit with --max-rows 0 (every row in memory)")
    parser.add_argument("--write", type=Path, default=None, help="save the table here")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the CSV goes (default: a temporary folder)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run(args.rows, args.workdir, args.epochs, args.all_rows)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = run(args.rows, Path(tmp), args.epochs, args.all_rows)
    text = table(results)
    print(text)
    print(f"(total {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    if args.write is not None:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
