"""Error-bounded compress / decompress throughput on a 20-column table, one thread.

The issue-17 target: at least 100k rows per CPU second per core, compressing and
decompressing a 20-column table.  The table is synthetic and seeded (``--rows``
rows, 20 float columns driven by 4 hidden factors plus noise, rounded to 4
decimals, like measurements), so every run and every tree sees the same rows; the
model is ``VAECompressor(bytes_per_row=8, random_state=0)`` fitted once on the
first half and saved.  Each measurement is a fresh child process that loads the
model and times ``compress`` (``max_abs_error = eps``, standardized units) and
``decompress`` of all rows with ``time.process_time`` (CPU seconds of the process,
BLAS on one thread), after one warm-up call.

``--compare-with TREE`` runs the same children with ``PYTHONPATH=TREE`` (a source
tree holding ``vaekit/``, e.g. a ``git worktree`` of an older commit), alternating
with this tree's children repeat by repeat, so both see the same machine load; the
report gives medians and the median ratio of the pairs.  Writes
``<out>/codec_throughput.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_env  # noqa: E402  (one thread per process, before numpy loads)

# isort: split

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = recipe_env.ROOT
N_COLUMNS = 20

# What a child runs: load the model, time compress and decompress per bound, print JSON.
_CHILD = """
import json, sys, time
import numpy as np, pandas as pd
from vaekit.estimators.persistence import load
model = load(sys.argv[1])
X = pd.read_parquet(sys.argv[2])
out = {"vaekit": __import__("vaekit").__file__}
for eps in json.loads(sys.argv[3]):
    model.set_params(max_abs_error=eps)
    model.decompress(model.compress(X.iloc[:500]))  # warm-up: imports, first calls
    t = time.process_time(); data = model.compress(X); c = time.process_time() - t
    t = time.process_time(); back = model.decompress(data); d = time.process_time() - t
    sd = np.array([spec.sd for spec in model.fitted_.schema.columns])  # training SDs
    worst = float(np.max(np.abs(back.to_numpy() - X.to_numpy()) / sd))
    out[str(eps)] = {"bytes": len(data), "compress_s": c, "decompress_s": d, "worst": worst}
print(json.dumps(out))
"""


def make_table(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Seeded rows: 20 columns, each a mix of 4 hidden factors plus noise, 4 decimals."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_rows, 4))
    mixing = rng.normal(size=(4, N_COLUMNS))
    values = factors @ mixing + 0.3 * rng.normal(size=(n_rows, N_COLUMNS))
    return pd.DataFrame(np.round(values, 4), columns=[f"c{j}" for j in range(N_COLUMNS)])


def run_child(tree: Path | None, model: Path, table: Path, eps: list[float]) -> dict:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    # cwd: the model's folder, since ``python -c`` puts the working directory first on
    # sys.path (a checkout there would shadow PYTHONPATH)
    done = subprocess.run([sys.executable, "-c", _CHILD, str(model), str(table),
                           json.dumps(eps)], capture_output=True, text=True, env=env,
                          check=False, cwd=model.parent)
    if done.returncode:
        raise SystemExit(f"child failed ({tree or 'this tree'}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--eps", default="1,0.01")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-with", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=recipe_env.RESULTS)
    args = parser.parse_args(argv)
    eps = [float(e) for e in args.eps.split(",")]
    from vaekit import VAECompressor

    X = make_table(args.rows)
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.compare_with is not None:
        trees.append((f"{args.compare_with}", args.compare_with))
    runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
    with tempfile.TemporaryDirectory() as tmp:
        model, table = Path(tmp) / "model.vaekit", Path(tmp) / "rows.parquet"
        VAECompressor(bytes_per_row=8, random_state=0).fit(X.iloc[: args.rows // 2]).save(model)
        X.to_parquet(table)
        for rep in range(args.repeats):
            for name, tree in trees if rep % 2 == 0 else trees[::-1]:
                runs[name].append(run_child(tree, model, table, eps))
                print(f"repeat {rep + 1} {name}: " + ", ".join(
                    f"eps {e}: {args.rows / runs[name][-1][str(e)]['compress_s']:,.0f} / "
                    f"{args.rows / runs[name][-1][str(e)]['decompress_s']:,.0f} rows/CPU-s"
                    for e in eps), flush=True)
    lines = [
        "# Error-bounded compress / decompress throughput (`recipes/codec_throughput.py`)",
        "",
        f"{args.rows:,} rows x {N_COLUMNS} float columns (synthetic, seeded), the model "
        "`VAECompressor(bytes_per_row=8, random_state=0)` fitted on the first half; "
        f"CPU seconds of one thread, median of {args.repeats} fresh processes per tree, "
        "trees alternating.  Target (issue 17): 100,000 rows per CPU second both ways.",
        "",
        "| tree | eps (SDs) | B/row | worst error (SDs) | compress rows/CPU-s | "
        "decompress rows/CPU-s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, _ in trees:
        for e in eps:
            cells = [r[str(e)] for r in runs[name]]
            comp = statistics.median(args.rows / c["compress_s"] for c in cells)
            decomp = statistics.median(args.rows / c["decompress_s"] for c in cells)
            lines.append(f"| {name} | {e:g} | {cells[0]['bytes'] / args.rows:.2f} | "
                         f"{max(c['worst'] for c in cells):.3g} | {comp:,.0f} | {decomp:,.0f} |")
    if len(trees) == 2:
        lines += ["", "Median ratio of the pairs (this tree / the other; above 1 = faster):", ""]
        for e in eps:
            pairs = list(zip(runs[trees[0][0]], runs[trees[1][0]], strict=True))
            for what in ("compress_s", "decompress_s"):
                ratio = statistics.median(o[str(e)][what] / t[str(e)][what] for t, o in pairs)
                lines.append(f"- eps {e:g}, {what.split('_')[0]}: {ratio:.2f}x")
    lines += ["", "vaekit imported: " + "; ".join(
        f"{name}: {runs[name][0]['vaekit']}" for name, _ in trees)]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "codec_throughput.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
