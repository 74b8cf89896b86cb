"""Compression at equal RMSE: vaekit's codes (``bytes_per_row``) and its error-bounded
mode against the codecs people use for numeric tables, each at the error vaekit reaches.

Protocol (issue 17, "equal RMSE"): the tables of ``bounded_codec.py`` (every ADBench
table in ``--data`` with at least 1,000 rows, at most 50,000 used), the same seeded
70/30 split, errors in standardized units (each column divided by its training SD).
For every budget B in ``--budgets`` (bytes per row):

* ``vaekit budget``: ``VAECompressor(bytes_per_row=B, random_state=0)`` fitted on the
  70 %, the 30 % compressed and restored (the code alone, or the code plus the value
  grid the budget chose: ``grid_bound_``); its RMSE over all test cells is the target
  ``r`` of that row, its bytes the whole ``.vkc`` file;
* ``vaekit bounded``: the default compressor (fitted once per table) with
  ``max_abs_error=eps``;
* the baselines of ``bounded_codec.py`` (SQ + zstd, SQ + pcodec, SZ3, ZFP), each with
  its error bound ``eps``;

where, for ``vaekit bounded`` and each baseline, ``eps`` is the largest bound found by
bisection (``--steps`` halvings on log eps) whose RMSE is at most ``r``: the bytes that
codec needs for vaekit's error.  Lossless zstd / pcodec of the float64 values are
reported too (a lossy file larger than them loses).  ``ratio`` = the smaller vaekit
file / the best baseline (below 1: vaekit smaller).

Writes ``<out>/equal_rmse.md`` and ``.csv``; ``--quick``: two tables, two budgets.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_env  # noqa: E402, F401  (one thread per process, before numpy loads)

# isort: split

import math  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bounded_codec import (  # noqa: E402
    BASELINES,
    PEERS,
    bytes_cells,
    lossless_pcodec,
    lossless_zstd,
    summary,
    table_arguments,
    tables,
    with_ratios,
    write_results,
)
from sklearn.model_selection import train_test_split  # noqa: E402


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def bytes_at(target: float, codec: Callable[[float], tuple[int, float]], steps: int
             ) -> tuple[float, float]:
    """``(bytes, eps)`` of the largest bound tried whose RMSE is at most ``target``
    (bisection on log eps between target / 100 and 4 target); NaN if none is, and for
    a lossless target (RMSE 0: only the lossless baselines compete there)."""
    best = (math.nan, math.nan)
    if not target > 0:
        return best
    lo, hi = math.log(target / 100), math.log(4 * target)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        size, err = codec(math.exp(mid))
        if err <= target:
            if math.isnan(best[0]) or size < best[0]:
                best = (size, math.exp(mid))
            lo = mid
        else:
            hi = mid
    return best


def run_table(name: str, data_dir: Path, budgets: list[int], steps: int, quick: bool
              ) -> list[dict]:
    from benchmark_adbench import load_table

    from vaekit import VAECompressor

    X, _ = load_table(data_dir, name, verbose=False)
    train, test = train_test_split(X, test_size=0.3, random_state=0)
    cols = [f"x{j}" for j in range(X.shape[1])]
    mean, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (test - mean) / sd
    frame = pd.DataFrame(test, columns=cols)
    params = {"epochs": 2} if quick else {}
    bounded = VAECompressor(random_state=0, **params).fit(pd.DataFrame(train, columns=cols))

    def vaekit_bounded(eps: float) -> tuple[int, float]:
        bounded.set_params(max_abs_error=eps)
        data = bounded.compress(frame)
        back = bounded.decompress(data).to_numpy(dtype=np.float64)
        return len(data), rmse((back - mean) / sd, z)

    def baseline(fn: Callable) -> Callable[[float], tuple[int, float]]:
        def run(eps: float) -> tuple[int, float]:
            size, rec = fn(z, eps)
            return size, rmse(rec, z)
        return run

    lossless = {"zstd": lossless_zstd(test), "pcodec": lossless_pcodec(test)}
    rows = []
    for budget in budgets:
        est = VAECompressor(bytes_per_row=budget, random_state=0, **params).fit(
            pd.DataFrame(train, columns=cols))
        data = est.compress(frame)
        back = est.decompress(data).to_numpy(dtype=np.float64)
        target = rmse((back - mean) / sd, z)
        bound = est.grid_bound_
        row = {"table": name, "rows": len(test), "cols": X.shape[1], "budget": budget,
               "rmse": target, "vaekit_budget": len(data),
               "grid_bound": math.nan if bound is None else bound, **lossless}
        row["vaekit_bounded"], row["vaekit_bounded_eps"] = bytes_at(target, vaekit_bounded,
                                                                    steps)
        for bname, fn in BASELINES.items():
            try:
                row[bname], row[f"{bname}_eps"] = bytes_at(target, baseline(fn), steps)
            except Exception as exc:  # a baseline that cannot run (not installed) is
                # reported, not fatal, as in bounded_codec.py
                print(f"{name}: {bname} failed: {exc}", file=sys.stderr)
                row[bname], row[f"{bname}_eps"] = math.nan, math.nan
        rows.append(row)
        n = len(test)
        spent = "codes" if bound is None else f"grid {bound:.3g}"
        print(f"{name} B={budget}: rmse {target:.4f}; vaekit {spent} {len(data) / n:.2f} B/row, "
              f"bounded {row['vaekit_bounded'] / n:.2f}, "
              + ", ".join(f"{b} {row[b] / n:.2f}" for b in BASELINES), file=sys.stderr)
    return rows


def report(df: pd.DataFrame) -> str:
    df = df.copy()
    df["vaekit"] = df[["vaekit_budget", "vaekit_bounded"]].min(axis=1)
    df = with_ratios(df)
    lines = ["# Compression at equal RMSE (`recipes/equal_rmse.py`)", "",
             "Bytes per test row (whole files) at vaekit's RMSE for each budget (the RMSE of "
             "`VAECompressor(bytes_per_row=B)`, standardized units). `vaekit budget` = that "
             "file: the latent code alone, or the code plus every value on the grid the "
             "budget chose (`spent`: `codes`, or the chosen bound in SDs; 0 = lossless). "
             "`bounded` = vaekit's error-bounded mode at the largest bound that reaches that "
             "RMSE; each baseline likewise (none at RMSE 0, where only the lossless ones "
             "compete). `ratio` = the smaller vaekit file / the best other (below 1: vaekit "
             "smaller). Lossless zstd / pcodec count as baselines.", ""]
    for budget, part in df.groupby("budget", sort=True):
        lines += [f"## budget {budget} B/row", "",
                  "| table | rows | RMSE | spent | vaekit budget | vaekit bounded | sq+zstd "
                  "| sq+pcodec | sz3 | zfp | zstd (lossless) | pcodec (lossless) | best other "
                  "| ratio |",
                  "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
        for _, r in part.iterrows():
            n = r["rows"]
            cells = bytes_cells(r, ("vaekit_budget", "vaekit_bounded", *PEERS), "n/a")
            bound = r.get("grid_bound", math.nan)
            spent = "codes" if pd.isna(bound) else f"{bound:.3g}"
            lines.append(f"| {r['table']} | {n} | {r['rmse']:.4f} | {spent} | "
                         + " | ".join(cells)
                         + f" | {r['best_name']} | {r['ratio']:.2f} |")
        lines += ["", summary(part), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = table_arguments(__doc__)
    parser.add_argument("--budgets", default="2,4,8,16,32")
    parser.add_argument("--steps", type=int, default=12, help="bisection steps per codec")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no ADBench tables at {args.data}: nothing to do", file=sys.stderr)
        return 0
    budgets = [2, 8] if args.quick else [int(b) for b in args.budgets.split(",")]
    steps = 6 if args.quick else args.steps
    names = args.tables.split(",") if args.tables else tables(args.data, args.quick)
    rows = [r for name in names for r in run_table(name, args.data, budgets, steps,
                                                   args.quick)]
    write_results(rows, args.out, "equal_rmse", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
