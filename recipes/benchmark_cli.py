"""End-to-end speed, CPU time and memory of the vaekit CLI against bare CSV parsing.

Recipe: generate two seeded numeric CSVs (``--rows`` rows x 20 columns, default
1,000,000, and one 4 times larger), fit two small models on the first rows of the
smaller one (a detector, and a compressor at 1 byte per column), then time, each in
a fresh child process, on both files:

* ``parse``: reading the whole file with pyarrow's streaming CSV reader and
  nothing else (the floor any CSV tool pays);
* ``vaekit score FILE -m MODEL -o scores.csv``, end to end (interpreter and torch
  start-up, parsing, scoring, ranking, writing), at ``--samples 1`` and at the
  model's 16 importance samples per row, each on one scoring thread (the default)
  and with ``--threads 0`` (one per CPU core);
* ``vaekit compress FILE -m COMPRESSOR`` and ``vaekit decompress`` of its output
  back to CSV;

and, once per repeat, the start-up alone: ``vaekit score`` on a one-row CSV and
``vaekit --help``.

Each vaekit run comes right after a parse run of the same CSV; every step is
repeated (``--repeats``, default 3; ``--big-repeats``, default 2, on the 4x file),
the steps interleaved.  The table gives medians: wall seconds, CPU seconds of the
child (user + system, all threads: the work done, which the machine's load moves
much less than the wall time), rows/s, rows per CPU second, the ratio of the run's
rows/s to its parse run's, and the peak resident memory (``/usr/bin/time -v``, or
``resource.getrusage`` when GNU time is missing), with the 1-minute load average
seen at the start of the runs.

``--compare-with OTHER`` runs every vaekit command a second time with another
vaekit, right after the current one's (A B A B ...): OTHER is a Python interpreter
or virtual environment that has vaekit installed, or a source tree holding
``vaekit/`` (run as ``PYTHONPATH=OTHER python -m vaekit``).  The table then has a
row per version and, on the new rows, the new/old speed ratio in CPU seconds (old
CPU s / new CPU s per back-to-back pair, median; above 1 = new is faster).  The
models are fitted by the current vaekit; where the other one cannot use them, it
fits its own with the same settings (the table note says so).

Prints a Markdown table and notes and, with ``--write PATH``, saves them.
``--quick`` uses 4,000 / 16,000 rows and one repeat, runs every step on the small
file and only ``score --samples 1`` on the large one: a smoke test for the tests.

Run::

    python recipes/benchmark_cli.py                      # 1M and 4M rows, 10-15 minutes
    python recipes/benchmark_cli.py --rows 200000        # smaller
    python recipes/benchmark_cli.py --quick              # about half a minute
    python recipes/benchmark_cli.py --compare-with /tmp/oldsrc   # old vs new, twice as long
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

N_COLUMNS = 20
GNU_TIME = "/usr/bin/time"
REPO = Path(__file__).resolve().parents[1]
PARSE = "parse (pyarrow, streaming)"
SAMPLES_1 = "vaekit score --samples 1"

PARSE_SCRIPT = """
import sys, pyarrow.csv as c
n = 0
for batch in c.open_csv(sys.argv[1]):
    n += batch.num_rows
print(n)
"""

# (step, vaekit arguments, paired with a parse run, on the large file too).  The
# arguments are templates: {csv}, {det} (detector), {comp} (compressor), {vkc},
# {out}, {restored}, {one} (one-row CSV) are filled in per version and file.
SCORE = ["score", "{csv}", "-m", "{det}", "-o", "{out}", "-q"]
STEPS: list[tuple[str, list[str], bool]] = [
    (SAMPLES_1, [*SCORE, "--samples", "1"], True),
    ("vaekit score (16 samples/row)", SCORE, True),
    ("vaekit score --samples 1 --threads 0", [*SCORE, "--samples", "1", "--threads", "0"], True),
    ("vaekit score (16 samples/row) --threads 0", [*SCORE, "--threads", "0"], True),
    ("vaekit compress", ["compress", "{csv}", "-m", "{comp}", "-o", "{vkc}", "-q"], True),
    ("vaekit compress --threads 0",
     ["compress", "{csv}", "-m", "{comp}", "-o", "{vkc}", "-q", "--threads", "0"], True),
    ("vaekit decompress", ["decompress", "{vkc}", "-m", "{comp}", "-o", "{restored}", "-q"],
     True),
]
STARTUP: list[tuple[str, list[str]]] = [
    ("start-up: vaekit score, 1-row CSV", ["score", "{one}", "-m", "{det}", "-o", "{out}", "-q"]),
    ("start-up: vaekit --help", ["--help"]),
]


class RunFailed(Exception):
    """A child process exited with an error."""


@dataclass
class Vaekit:
    """One vaekit to time: how to start it, and the model files it uses."""

    tag: str  # "new" (this tree) or "old" (--compare-with)
    argv: list[str]
    env: dict[str, str]
    models: dict[str, Path] = field(default_factory=dict)
    where: str = ""

    def fill(self, template: list[str], workdir: Path, csv: Path, rows: int) -> list[str]:
        names = {"csv": csv, "det": self.models["det"], "comp": self.models["comp"],
                 "vkc": workdir / f"{self.tag}_{rows}.vkc", "one": workdir / "one_row.csv",
                 "out": workdir / f"{self.tag}_scores.csv",
                 "restored": workdir / f"{self.tag}_restored.csv"}
        return [*self.argv, *(a.format(**names) for a in template)]


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


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall seconds, peak resident memory in MB, CPU seconds).

    CPU seconds (user + system, all threads) say how much work a run did, which
    the machine's load changes much less than the wall time.  Raises ``RunFailed``
    with the end of stderr when the command fails.
    """
    if shutil.which(GNU_TIME) or os.path.exists(GNU_TIME):
        start = time.perf_counter()
        done = subprocess.run([GNU_TIME, "-v", *cmd], capture_output=True, text=True, env=env,
                              cwd=cwd)
        wall = time.perf_counter() - start
        if done.returncode != 0:  # the command's own stderr: what comes before time's report
            own = re.sub(r"Command exited with non-zero status \d+\n", "",
                         done.stderr.split("\tCommand being timed:")[0])
            raise RunFailed(f"exit {done.returncode}: {' '.join(cmd)}\n{own[-2000:]}")
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
                          env=env, cwd=cwd)
    if done.returncode != 0:
        raise RunFailed(f"exit {done.returncode}: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    wall, peak, cpu = done.stdout.split()[-3:]
    return float(wall), float(peak), float(cpu)


def child_env(pythonpath: Path | None) -> dict[str, str]:
    """The children's environment: one BLAS/OpenMP thread; ``pythonpath`` first on the path
    (None: no PYTHONPATH at all, so another interpreter finds only its own vaekit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), os.environ.get("PYTHONPATH", "")) if p)
    return env


def current_vaekit() -> Vaekit:
    """This tree's vaekit (or the installed one when the recipe sits outside a checkout).

    Children run in the work folder, so ``python -m`` does not pick up the caller's
    current directory.
    """
    tree = REPO if (REPO / "vaekit" / "__init__.py").is_file() else None
    env = child_env(tree)
    if tree is None and "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return Vaekit("new", [sys.executable, "-m", "vaekit"], env)


def other_vaekit(spec: str) -> Vaekit:
    """``--compare-with``: a source tree (holding ``vaekit/``, or the ``vaekit`` folder
    itself), a virtual environment, or a Python interpreter (path or command name)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        for python in (path / "bin" / "python", path / "Scripts" / "python.exe"):
            if python.is_file():
                return Vaekit("old", [str(python), "-m", "vaekit"], child_env(None))
        tree = path.parent if (path / "__init__.py").is_file() and path.name == "vaekit" \
            else path
        if not (tree / "vaekit" / "__init__.py").is_file():
            raise SystemExit(f"--compare-with {spec}: no vaekit/ package and no bin/python")
        return Vaekit("old", [sys.executable, "-m", "vaekit"], child_env(tree.resolve()))
    python = str(path) if path.is_file() else shutil.which(spec)
    if python is None:
        raise SystemExit(f"--compare-with {spec}: neither a folder nor a Python interpreter")
    return Vaekit("old", [python, "-m", "vaekit"], child_env(None))


def locate(v: Vaekit, workdir: Path) -> str:
    """Which vaekit ``v`` runs: version and package folder."""
    done = subprocess.run(
        [*v.argv[:-2], "-c", "import os, vaekit; "
         "print(vaekit.__version__, os.path.dirname(vaekit.__file__))"],
        capture_output=True, text=True, env=v.env, cwd=workdir)
    if done.returncode != 0:
        raise SystemExit(f"{v.tag} vaekit does not import:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def fit_args(csv: Path, rows: int, epochs: int, out: Path, compressor: bool) -> list[str]:
    args = ["fit", str(csv), "--max-rows", str(min(rows, 20_000)), "--epochs", str(epochs),
            "--seed", "0", "-o", str(out), "-q"]
    return [*args, "--bytes-per-row", str(N_COLUMNS)] if compressor else args


def fit_models(versions: list[Vaekit], csv: Path, rows: int, epochs: int,
               workdir: Path) -> list[str]:
    """Fit the detector and the compressor once with the current vaekit; let the other
    version use them if it can, else fit its own.  Returns notes for the table."""
    # Training is set-up, not measured: run `vaekit fit` in this process (one start-up
    # less), from this tree when the recipe sits in a checkout.
    if (REPO / "vaekit" / "__init__.py").is_file():
        sys.path.insert(0, str(REPO))
    from vaekit.cli import app

    new = versions[0]
    for kind, compressor in (("det", False), ("comp", True)):
        new.models[kind] = workdir / f"new_{kind}.vaekit"
        app.main(fit_args(csv, rows, epochs, new.models[kind], compressor),
                 standalone_mode=False)
    notes = []
    one = workdir / "one_row.csv"
    for v in versions[1:]:
        v.models = dict(new.models)
        refused = []
        probes = {"det": ["score", str(one), "-m", "{m}", "-o", str(workdir / "probe.csv"),
                          "-q"],
                  "comp": ["compress", str(one), "-m", "{m}", "-o", str(workdir / "probe.vkc"),
                           "-q"]}
        for kind, template in probes.items():
            cmd = [*v.argv, *(a.replace("{m}", str(v.models[kind])) for a in template)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=v.env, cwd=workdir)
            if done.returncode == 0:
                continue
            reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            print(f"{v.tag} vaekit cannot use the {kind} model ({reason}); fitting its own",
                  file=sys.stderr)
            v.models[kind] = workdir / f"{v.tag}_{kind}.vaekit"
            try:
                measure([*v.argv, *fit_args(csv, rows, epochs, v.models[kind], kind == "comp")],
                        v.env, workdir)
            except RunFailed as exc:
                raise SystemExit(f"{v.tag} vaekit cannot fit a model either:\n{exc}") from None
            refused.append(f"{'detector' if kind == 'det' else 'compressor'} (`{reason}`)")
        if refused:
            notes.append(f"The {v.tag} vaekit could not use the model files fitted by the new "
                         f"one: {'; '.join(refused)}.  It ran with its own, fitted with the same "
                         "settings and seed: times compare, outputs need not match.")
        else:
            notes.append(f"The {v.tag} vaekit ran with the very model files fitted by the new "
                         "one.")
    return notes


def run(rows: int, big_rows: int, workdir: Path, epochs: int, quick: bool = False,
        repeats: int = 1, big_repeats: int = 1,
        compare_with: str | None = None) -> tuple[list[dict[str, object]], list[str]]:
    """Every vaekit step right after a bare parse of the same file, the versions one after
    the other (A B A B), the whole plan ``repeats`` times (``big_repeats`` on the large file).

    Timing them back to back keeps the ratios meaningful on a shared machine whose
    load changes from minute to minute.  Returns the runs and notes for the table.
    """
    versions = [current_vaekit()]
    if compare_with is not None:
        versions.append(other_vaekit(compare_with))
    small, big = workdir / "bench.csv", workdir / "bench_big.csv"
    print(f"generating {rows} and {big_rows} rows ...", file=sys.stderr)
    make_csv(small, rows, seed=0)
    make_csv(big, big_rows, seed=1)
    make_csv(workdir / "one_row.csv", 1, seed=2)
    notes = []
    if compare_with is not None:
        for v in versions:
            v.where = locate(v, workdir)
        if versions[0].where == versions[1].where:
            raise SystemExit(f"--compare-with {compare_with} runs the same vaekit: "
                             f"{versions[0].where}")
        notes += [f"{v.tag}: vaekit {v.where}" for v in versions]
    notes += fit_models(versions, small, rows, epochs, workdir)
    plan = [(small, rows, step, args, paired) for step, args, paired in STEPS]
    plan += [(big, big_rows, step, args, paired) for step, args, paired in STEPS
             if not quick or step == SAMPLES_1]
    plan += [(workdir / "one_row.csv", 1 if "1-row" in step else 0, step, args, False)
             for step, args in STARTUP]
    parse_env = child_env(None)
    failed: dict[tuple[str, int, str], str] = {}
    results: list[dict[str, object]] = []
    for rep in range(max(repeats, big_repeats)):
        for csv, n, step, template, paired in plan:
            if rep >= (big_repeats if csv == big else repeats):
                continue
            for v in versions:
                if (step, n, v.tag) in failed:
                    continue
                parse_rps = None
                if paired:
                    print(f"[{rep + 1}] {PARSE} on {n} rows ...", file=sys.stderr)
                    load = os.getloadavg()[0]
                    wall, peak, cpu = measure([sys.executable, "-c", PARSE_SCRIPT, str(csv)],
                                              parse_env, workdir)
                    parse_rps = n / wall
                    results.append({"step": PARSE, "rows": n, "version": "",
                                    "file_mb": csv.stat().st_size / 2**20, "seconds": wall,
                                    "cpu_s": cpu, "peak_mb": peak, "load": load, "repeat": rep,
                                    "parse_rps": None})
                cmd = v.fill(template, workdir, csv, n)
                source = Path(cmd[len(v.argv) + 1]) if len(cmd) > len(v.argv) + 1 else None
                size = source.stat().st_size / 2**20 if source and source.is_file() else None
                print(f"[{rep + 1}] {v.tag}: {step}" + (f" on {n} rows" if n > 1 else "")
                      + " ...", file=sys.stderr)
                load = os.getloadavg()[0]
                try:
                    wall, peak, cpu = measure(cmd, v.env, workdir)
                except RunFailed as exc:
                    if v.tag == "new":
                        raise SystemExit(f"failed: {exc}") from None
                    exit_line, *stderr = str(exc).strip().splitlines()
                    failed[(step, n, v.tag)] = (stderr or [exit_line.split(":")[0]])[-1]
                    print(f"  {v.tag} failed: {failed[(step, n, v.tag)]}", file=sys.stderr)
                    continue
                results.append({"step": step, "rows": n, "version": v.tag, "file_mb": size,
                                "seconds": wall, "cpu_s": cpu, "peak_mb": peak, "load": load,
                                "repeat": rep, "parse_rps": parse_rps})
    notes += [f"{tag} vaekit failed `{step}` on {n:,} rows: `{why}`"
              for (step, n, tag), why in failed.items()]
    return results, notes


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def summarize(results: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per step, size and version: medians over repeats.  vaekit steps get their median ratio
    to the parse run just before them, and (new rows, when both versions ran) the median
    old/new CPU-seconds ratio of the back-to-back pairs."""
    groups: dict[tuple[str, int, str], list[dict[str, object]]] = {}
    for r in results:
        key = (str(r["step"]), int(r["rows"]), str(r["version"]))  # type: ignore[call-overload]
        groups.setdefault(key, []).append(r)
    out = []
    for (step, n, version), rs in groups.items():
        wall = [float(r["seconds"]) for r in rs]  # type: ignore[arg-type]
        cpu = [float(r["cpu_s"]) for r in rs]  # type: ignore[arg-type]
        loads = [float(r["load"]) for r in rs]  # type: ignore[arg-type]
        ratios = [n / float(r["seconds"]) / float(r["parse_rps"])  # type: ignore[arg-type]
                  for r in rs if r["parse_rps"] is not None]
        speedup = None
        if version == "new" and (step, n, "old") in groups:
            old = {r["repeat"]: float(r["cpu_s"])  # type: ignore[arg-type]
                   for r in groups[(step, n, "old")]}
            pairs = [old[r["repeat"]] / float(r["cpu_s"])  # type: ignore[arg-type]
                     for r in rs if r["repeat"] in old and float(r["cpu_s"]) > 0]  # type: ignore[arg-type]
            speedup = _median(pairs) if pairs else None
        sizes = [float(r["file_mb"]) for r in rs if r["file_mb"] is not None]  # type: ignore[arg-type]
        out.append({
            "step": step, "rows": n, "version": version, "runs": len(rs),
            "file_mb": max(sizes) if sizes else None,
            "seconds": _median(wall), "cpu_s": _median(cpu),
            "rows_per_s": _median([n / w for w in wall]) if n > 1 else None,
            "rows_per_cpu_s": _median([n / c for c in cpu if c > 0]) if n > 1 else None,
            "ratio": _median(ratios) if ratios else None,
            "peak_mb": max(float(r["peak_mb"]) for r in rs),  # type: ignore[arg-type]
            "load": f"{min(loads):.1f}-{max(loads):.1f}", "speedup": speedup,
        })
    return out


def table(summary: list[dict[str, object]], compare: bool = False) -> str:
    """Markdown table; with ``compare`` a version column and the new/old CPU-speed ratio."""
    head = ["step", "rows", *(["vaekit"] if compare else []), "runs", "file (MB)", "wall s",
            "CPU s", "rows/s", "rows per CPU s", "vs. parse", "peak memory (MB)", "load avg",
            *(["new/old speed (CPU s)"] if compare else [])]
    lines = ["| " + " | ".join(head) + " |",
             "| --- |" + " ---: |" * (len(head) - 1)]

    def num(value: object, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    for r in summary:
        cells = [str(r["step"]), f"{r['rows']:,}" if r["rows"] else "",
                 *([str(r["version"])] if compare else []), str(r["runs"]),
                 num(r["file_mb"], ".1f"), f"{r['seconds']:.2f}", f"{r['cpu_s']:.2f}",
                 num(r["rows_per_s"], ",.0f"), num(r["rows_per_cpu_s"], ",.0f"),
                 num(r["ratio"], ".0%"), f"{r['peak_mb']:.0f}", str(r["load"]),
                 *([num(r["speedup"], ".2f") + ("x" if r["speedup"] is not None else "")]
                   if compare else [])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results: list[dict[str, object]], notes: list[str], rows: int,
           compare: bool) -> str:
    """The table and the notes under it."""
    summary = summarize(results)
    loads = [float(r["load"]) for r in results]  # type: ignore[arg-type]
    text = table(summary, compare)
    text += (f"\n\nMachine: {os.cpu_count()} CPU cores; load average (1 min) during the "
             f"run: {min(loads):.1f} to {max(loads):.1f}.  Children run with "
             "OMP_NUM_THREADS=MKL_NUM_THREADS=1; `--threads 0` = one scoring thread per core.")
    if compare:
        text += ("\n\nnew/old speed (CPU s): the old run's CPU seconds over the new one's, "
                 "median over back-to-back pairs; above 1 = the new vaekit does the same work "
                 "with less CPU.")
    for note in notes:
        text += f"\n\n{note}"
    new = [r for r in summary if r["version"] in ("new", "")]
    for r in new:
        if r["ratio"] is not None and r["rows"] == rows:
            text += (f"\n\n{r['step']}: {r['ratio']:.1%} of bare parsing speed at {rows:,} rows "
                     f"(median of {r['runs']} back-to-back pairs).")
    text += ("\n\n(`decompress` reads the .vkc file, not the CSV: its ratio compares it with "
             "parsing the CSV it restores.)")
    peaks = {int(r["rows"]): float(r["peak_mb"]) for r in new  # type: ignore[call-overload]
             if r["step"] == SAMPLES_1}
    big = max(peaks)
    text += (f"\n\nPeak memory of `score --samples 1`: {peaks[rows]:.0f} MB at {rows:,} rows, "
             f"{peaks[big]:.0f} MB at {big:,} rows.")
    start = {str(r["step"]): r for r in new if str(r["step"]).startswith("start-up")}
    one, helps = start[STARTUP[0][0]], start[STARTUP[1][0]]
    text += (f"\n\nStart-up: `vaekit score` on a one-row CSV takes {one['seconds']:.2f} s wall, "
             f"{one['cpu_s']:.2f} CPU s; `vaekit --help` {helps['seconds']:.2f} s wall, "
             f"{helps['cpu_s']:.2f} CPU s.")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows of the main file; the large file has 4 times as many")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the models")
    parser.add_argument("--repeats", type=int, default=3,
                        help="times each step runs on the main file and at start-up; medians "
                             "are reported")
    parser.add_argument("--big-repeats", type=int, default=2,
                        help="times each step runs on the 4x file")
    parser.add_argument("--compare-with", metavar="PYTHON_OR_DIR", default=None,
                        help="also time another vaekit, interleaved: a source tree holding "
                             "vaekit/ (run with PYTHONPATH), a virtual environment, or a "
                             "Python interpreter that has vaekit installed")
    parser.add_argument("--quick", action="store_true",
                        help="4,000 / 16,000 rows, 1 epoch, 1 repeat; only score --samples 1 "
                             "on the large file")
    parser.add_argument("--write", type=Path, default=None, help="also save the table here")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the generated files (default: a temporary one)")
    args = parser.parse_args(argv)
    rows = 4_000 if args.quick else args.rows
    epochs = 1 if args.quick else args.epochs
    repeats = 1 if args.quick else args.repeats
    big_repeats = 1 if args.quick else args.big_repeats
    if min(rows, repeats, big_repeats) < 1:
        parser.error("--rows, --repeats and --big-repeats must be at least 1")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results, notes = run(rows, 4 * rows, Path(tmp), epochs, quick=args.quick,
                             repeats=repeats, big_repeats=big_repeats,
                             compare_with=args.compare_with)
    text = report(results, notes, rows, args.compare_with is not None)
    print(text)
    if args.write is not None:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
