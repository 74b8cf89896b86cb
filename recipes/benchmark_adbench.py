"""Benchmark unsupervised anomaly detectors on ADBench-style ``.npz`` tables.

Protocol (the same for every detector, table and seed):

* each ``.npz`` file in ``--data-dir`` holds ``X`` (rows x columns) and ``y`` (1 = anomaly);
* tables over 50,000 rows are subsampled to 50,000 (stratified, seeded) -- printed;
* for each seed a stratified 60/40 train/test split
  (``train_test_split(X, y, test_size=0.4, stratify=y, random_state=seed)``);
* each detector is fitted **unsupervised** on the training features (they contain
  anomalies; labels are never shown to it) and scores the test split;
* ROC-AUC and average precision of the test scores, plus fit and score seconds;
* everything on one thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``).

Finished (detector, table, seed) results are appended to ``<out>/adbench.csv`` as they
complete, so an interrupted run resumes where it stopped.  The report
(``adbench.md``, ``adbench.png``) is regenerated from that CSV for the requested
detectors, tables and seeds.

vaekit's detector is configurable without code changes: ``--vaekit-param key=value``
(repeatable) sets constructor parameters; the detector is then recorded as e.g.
``vaekit[n_samples=1]`` so ablations sit next to the defaults in one CSV.

Examples::

    python recipes/benchmark_adbench.py                      # everything (hours on 1 core)
    python recipes/benchmark_adbench.py --quick --out /tmp/bench
    python recipes/benchmark_adbench.py --detectors vaekit --vaekit-param trim_fraction=0

Peers: PyOD's VAE, AutoEncoder, IForest, ECOD, KNN, LUNAR, COPOD, CBLOF, HBOS and OCSVM
and scikit-learn's IsolationForest, each with its default parameters; KNN, LUNAR, CBLOF
and OCSVM see columns standardized on the training split.

PyOD and matplotlib are benchmark-only extras: ``pip install -c constraints.txt pyod matplotlib``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_env  # noqa: E402  (one thread per process, before numpy loads)

# isort: split

import argparse  # noqa: E402
import ast  # noqa: E402
import csv  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = recipe_env.ROOT
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "adbench"
DEFAULT_OUT = recipe_env.RESULTS
MAX_ROWS = 50_000
QUICK_TABLES = ("14_glass", "42_WBC")
ALL_DETECTORS = ("vaekit", "pyod_vae", "pyod_ae", "pyod_iforest", "ecod", "sk_iforest",
                 "knn", "lunar", "copod", "cblof", "hbos", "ocsvm")
# Distance- and kernel-based peers see standardized columns (scaler fitted on the training
# split), as their documentation advises; the others are scale-free or scale themselves.
SCALED = ("knn", "lunar", "cblof", "ocsvm")
FIELDS = ("detector", "table", "seed", "n_train", "n_test", "n_features", "roc_auc", "ap",
          "fit_s", "score_s", "fit_cpu_s", "score_cpu_s", "error")


# ----------------------------------------------------------------------------- detectors
class Scorer:
    """Uniform interface: ``fit(X)`` then ``score(X)`` -> anomaly scores (higher = worse)."""

    def __init__(self, fit: Callable[[np.ndarray], Any], score: Callable[[np.ndarray], Any]):
        self._fit, self._score = fit, score

    def fit(self, X: np.ndarray) -> None:
        self._fit(X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._score(X), dtype=np.float64)


def _pyod_peer(name: str, seed: int) -> Scorer:
    """PyOD's KNN, LUNAR, COPOD, CBLOF, HBOS or OCSVM with their default parameters."""
    from sklearn.preprocessing import StandardScaler

    if name == "knn":
        from pyod.models.knn import KNN

        det: Any = KNN(n_jobs=1)
    elif name == "lunar":
        import torch
        from pyod.models.lunar import LUNAR

        torch.manual_seed(seed)  # LUNAR's network initialisation draws from torch
        det = LUNAR(random_state=seed)
    elif name == "copod":
        from pyod.models.copod import COPOD

        det = COPOD(n_jobs=1)
    elif name == "cblof":
        from pyod.models.cblof import CBLOF

        det = CBLOF(random_state=seed, n_jobs=1)
    elif name == "hbos":
        from pyod.models.hbos import HBOS

        det = HBOS()
    else:
        from pyod.models.ocsvm import OCSVM

        det = OCSVM()
    if name not in SCALED:
        return Scorer(det.fit, det.decision_function)
    scaler = StandardScaler()

    def fit(X: np.ndarray) -> None:
        det.fit(scaler.fit_transform(X))

    return Scorer(fit, lambda X: det.decision_function(scaler.transform(X)))


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=[64, 64]", "c=auto"]`` -> ``{"a": 1, "b": [64, 64], "c": "auto"}``."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--vaekit-param needs key=value, got {item!r}")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        params[key.strip()] = value
    return params


_LABEL = ""


def vaekit_name(params: dict[str, Any]) -> str:
    if _LABEL:
        return _LABEL
    if not params:
        return "vaekit"
    inner = ",".join(f"{k}={params[k]!r}".replace("'", "").replace(" ", "")
                     for k in sorted(params))
    return f"vaekit[{inner}]"


def make_detector(name: str, seed: int, vaekit_params: dict[str, Any]) -> Scorer:
    """Build detector ``name`` with its default parameters (seeded, one thread)."""
    if name == "vaekit":
        from vaekit import VAEAnomalyDetector

        det = VAEAnomalyDetector(random_state=seed, n_jobs=1, **vaekit_params)
        return Scorer(det.fit, det.anomaly_score)
    if name in ("pyod_vae", "pyod_ae"):
        if name == "pyod_vae":
            from pyod.models.vae import VAE as Model
        else:
            from pyod.models.auto_encoder import AutoEncoder as Model
        # Defaults (incl. PyOD's own standardisation, preprocessing=True); quiet, seeded, CPU.
        det = Model(random_state=seed, verbose=0, device="cpu")
        return Scorer(det.fit, det.decision_function)
    if name == "pyod_iforest":
        from pyod.models.iforest import IForest

        det = IForest(random_state=seed, n_jobs=1)
        return Scorer(det.fit, det.decision_function)
    if name == "ecod":
        from pyod.models.ecod import ECOD

        det = ECOD(n_jobs=1)
        return Scorer(det.fit, det.decision_function)
    if name == "sk_iforest":
        from sklearn.ensemble import IsolationForest

        det = IsolationForest(random_state=seed, n_jobs=1)
        return Scorer(det.fit, lambda X: -det.score_samples(X))
    if name in ("knn", "lunar", "copod", "cblof", "hbos", "ocsvm"):
        return _pyod_peer(name, seed)
    raise SystemExit(f"unknown detector {name!r}; choose from {', '.join(ALL_DETECTORS)}")


# ----------------------------------------------------------------------------- data
def list_tables(data_dir: Path) -> list[str]:
    return sorted((p.stem for p in data_dir.glob("*.npz")), key=_table_key)


def _table_key(name: str) -> tuple[int, str]:
    head = name.split("_", 1)[0]
    return (int(head), name) if head.isdigit() else (10**9, name)


def load_table(data_dir: Path, name: str, *, verbose: bool = True) -> tuple[np.ndarray, np.ndarray]:
    with np.load(data_dir / f"{name}.npz", allow_pickle=False) as f:
        X = np.asarray(f["X"], dtype=np.float64)
        y = np.asarray(f["y"]).astype(int).ravel()
    if len(y) > MAX_ROWS:
        keep, _ = train_test_split(np.arange(len(y)), train_size=MAX_ROWS, stratify=y,
                                   random_state=0)
        keep = np.sort(keep)
        if verbose:
            print(f"{name}: {len(y):,} rows subsampled to {MAX_ROWS:,} (stratified, seed 0)",
                  flush=True)
        X, y = X[keep], y[keep]
    return X, y


# ----------------------------------------------------------------------------- cache
def read_results(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=list(FIELDS))
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def append_result(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    if not new:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if tuple(header) != FIELDS:  # written by an older version: add the new columns
            old = read_results(path)
            old.reindex(columns=list(FIELDS)).to_csv(path, index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


_WARM: set[str] = set()


def warm_up(name: str, params: dict[str, Any]) -> None:
    """One untimed fit on tiny random data per detector and process, so the first timed
    fit doesn't pay for imports, JIT compilation or torch's first-call set-up."""
    if name in _WARM:
        return
    _WARM.add(name)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            det = make_detector(name, 0, params)
            det.fit(X)
            det.score(X)
    except Exception:  # the timed run reports any real problem
        pass


def run_one(name: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, seed: int,
            table: str) -> dict[str, Any]:
    X_tr, X_te, _, y_te = train_test_split(X, y, test_size=0.4, stratify=y, random_state=seed)
    row: dict[str, Any] = {"detector": vaekit_name(params) if name == "vaekit" else name,
                           "table": table, "seed": seed, "n_train": len(X_tr),
                           "n_test": len(X_te), "n_features": X.shape[1], "roc_auc": "",
                           "ap": "", "fit_s": "", "score_s": "", "fit_cpu_s": "",
                           "score_cpu_s": "", "error": ""}
    try:
        warm_up(name, params)
        det = make_detector(name, seed, params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c0, t0 = time.process_time(), time.perf_counter()
            det.fit(X_tr)
            c1, t1 = time.process_time(), time.perf_counter()
            s = det.score(X_te)
            c2, t2 = time.process_time(), time.perf_counter()
        if not np.all(np.isfinite(s)):
            raise FloatingPointError(f"{int((~np.isfinite(s)).sum())} non-finite scores")
        row.update(roc_auc=round(float(roc_auc_score(y_te, s)), 6),
                   ap=round(float(average_precision_score(y_te, s)), 6),
                   fit_s=round(t1 - t0, 4), score_s=round(t2 - t1, 4),
                   fit_cpu_s=round(c1 - c0, 4), score_cpu_s=round(c2 - c1, 4))
    except Exception as exc:  # a failure is a result too; record it and go on
        row["error"] = f"{type(exc).__name__}: {exc}"[:300].replace("\n", " ")
    return row


# ----------------------------------------------------------------------------- report
def summarise(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per detector, per-table mean ROC-AUC table) over tables x seeds."""
    ok = df[df["error"].isna() | (df["error"] == "")].copy()
    for col in ("roc_auc", "ap", "fit_s", "score_s", "fit_cpu_s"):
        ok[col] = pd.to_numeric(ok.get(col, np.nan))
    per_table = ok.groupby(["detector", "table"])[["roc_auc", "ap", "fit_s"]].mean()
    auc = per_table["roc_auc"].unstack("detector")
    ap = per_table["ap"].unstack("detector")
    best = auc.max(axis=1)
    wins = (auc.ge(best - 1e-12, axis=0) & auc.notna()).sum()
    summary = pd.DataFrame({
        "mean ROC-AUC": auc.mean(),
        "mean AP": ap.mean(),
        "wins (AUC)": wins,
        "tables": auc.notna().sum(),
        "median fit s": ok.groupby("detector")["fit_s"].median(),
        "median fit CPU s": ok.groupby("detector")["fit_cpu_s"].median(),
        "median score s": ok.groupby("detector")["score_s"].median(),
        "total fit s": ok.groupby("detector")["fit_s"].sum(),
    })
    summary = summary.sort_values("mean ROC-AUC", ascending=False)
    auc = auc[summary.index]
    auc = auc.loc[sorted(auc.index, key=_table_key)]
    return summary, auc


def markdown_table(frame: pd.DataFrame, fmt: dict[str, str], index_name: str) -> str:
    cols = [index_name, *map(str, frame.columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * len(frame.columns)) + "|"]
    for idx, r in frame.iterrows():
        cells = [str(idx)]
        for c in frame.columns:
            v = r[c]
            f = fmt.get(str(c), ".3f")
            cells.append("" if pd.isna(v) else format(int(v) if f == "d" else float(v), f))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(df: pd.DataFrame, out: Path, seeds: list[int], data_dir: Path) -> str:
    summary, auc = summarise(df)
    n_err = int((df["error"].notna() & (df["error"] != "")).sum())
    fmt = {"wins (AUC)": "d", "tables": "d", "median fit s": ".2f", "median fit CPU s": ".2f",
           "median score s": ".3f",
           "total fit s": ".0f"}
    text = [
        "# ADBench benchmark (generated by `recipes/benchmark_adbench.py`)",
        "",
        f"Tables: {auc.shape[0]} from `{data_dir.name}`; seeds: {', '.join(map(str, seeds))}; "
        "stratified 60/40 split, unsupervised fit on the (contaminated) training split, "
        "scores on the test split, one thread. Means are over tables of the per-table mean "
        "over seeds. Wins: tables where the detector has the best mean ROC-AUC (ties count "
        "for each). Times are per fit (median over tables x seeds): wall-clock seconds and "
        "the process's CPU seconds (robust to other load on a shared machine; blank for "
        "results recorded before CPU time was logged).",
        "",
        "## Summary",
        "",
        markdown_table(summary, fmt, "detector"),
        "",
        "## ROC-AUC per table (mean over seeds)",
        "",
        markdown_table(auc, {}, "table"),
        "",
    ]
    if "vaekit" in auc.columns and "sk_iforest" in auc.columns:
        gap = (auc["vaekit"] - auc["sk_iforest"]).dropna()
        below = gap[gap < -0.05].sort_values()
        text += ["## vaekit against IsolationForest, table by table", "",
                 f"Tables where vaekit's mean ROC-AUC is more than 0.05 below scikit-learn's "
                 f"IsolationForest: {len(below)} of {len(gap)}"
                 + (": " + ", ".join(f"{t} ({g:+.3f})" for t, g in below.items())
                    if len(below) else "."), ""]
    if n_err:
        errs = df[df["error"].notna() & (df["error"] != "")]
        text += ["## Failures", ""]
        text += [f"- {r.detector} / {r.table} / seed {r.seed}: {r.error}"
                 for r in errs.itertuples()]
        text.append("")
    md = "\n".join(text)
    (out / "adbench.md").write_text(md)
    plot(summary, auc, out / "adbench.png")
    return md


def plot(summary: pd.DataFrame, auc: pd.DataFrame, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no chart written", file=sys.stderr)
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.5), width_ratios=[1, 2.4])
    names = list(summary.index)
    y = np.arange(len(names))
    ax1.barh(y - 0.2, summary["mean ROC-AUC"], height=0.4, label="mean ROC-AUC")
    ax1.barh(y + 0.2, summary["mean AP"], height=0.4, label="mean AP")
    ax1.set_yticks(y, names, fontsize=8)
    ax1.invert_yaxis()
    ax1.set_xlim(0, 1)
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_title("Mean over tables")
    x = np.arange(auc.shape[0])
    for name in names:
        ax2.plot(x, auc[name].to_numpy(), marker="o", lw=1, ms=4, label=name)
    ax2.set_xticks(x, auc.index, rotation=70, fontsize=7)
    ax2.set_ylabel("ROC-AUC (mean over seeds)")
    ax2.set_title("Per table")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--detectors", default=",".join(ALL_DETECTORS),
                    help=f"comma-separated, from: {', '.join(ALL_DETECTORS)}")
    ap.add_argument("--tables", default="", help="comma-separated table names (default: all)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: tables {', '.join(QUICK_TABLES)}, seed 0")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--vaekit-param", action="append", default=[], metavar="KEY=VALUE",
                    help="vaekit constructor parameter (repeatable), e.g. n_samples=1")
    ap.add_argument("--vaekit-label", default="",
                    help="name vaekit's results under this label instead of vaekit[...]")
    ap.add_argument("--report-detectors", default="",
                    help="detector names (as in the CSV) to include in the report "
                         "(default: those run now plus the baselines found in the CSV)")
    ap.add_argument("--no-run", action="store_true", help="only regenerate the report")
    args = ap.parse_args(argv)

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    data_dir: Path = args.data_dir
    if not data_dir.is_dir() or not list_tables(data_dir):
        print(f"no .npz tables in {data_dir}; nothing to do (skipped)")
        return 0
    tables = list_tables(data_dir)
    if args.quick:
        tables = [t for t in QUICK_TABLES if t in tables] or tables[:2]
        seeds = [0]
    else:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.tables:
        wanted = [t.strip() for t in args.tables.split(",") if t.strip()]
        missing = [t for t in wanted if t not in tables and t not in list_tables(data_dir)]
        if missing:
            raise SystemExit(f"tables not found in {data_dir}: {', '.join(missing)}")
        tables = wanted
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    params = parse_params(args.vaekit_param)
    global _LABEL
    _LABEL = args.vaekit_label
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "adbench.csv"

    done = read_results(cache)
    done_keys = {(r.detector, r.table, int(r.seed)) for r in done.itertuples()}
    if not args.no_run:
        for table in tables:
            X = y = None
            for det in detectors:
                for seed in seeds:
                    label = vaekit_name(params) if det == "vaekit" else det
                    if (label, table, seed) in done_keys:
                        continue
                    if X is None:
                        X, y = load_table(data_dir, table)
                    row = run_one(det, params, X, y, seed, table)
                    append_result(cache, row)
                    done_keys.add((label, table, seed))
                    status = (row["error"] or f"AUC {row['roc_auc']:.3f}  AP {row['ap']:.3f}  "
                              f"fit {row['fit_s']:.2f}s")
                    print(f"{label:>24} {table:>18} seed {seed}: {status}", flush=True)

    df = read_results(cache)
    df = df[df["table"].isin(tables) & df["seed"].astype(int).isin(seeds)]
    if args.report_detectors:
        keep = [d.strip() for d in args.report_detectors.split(",") if d.strip()]
    else:
        keep = [vaekit_name(params) if d == "vaekit" else d for d in detectors]
        keep += [d for d in ALL_DETECTORS if d != "vaekit" and d not in keep]
        if "vaekit" not in keep:
            keep.append("vaekit")
    df = df[df["detector"].isin(keep)]
    if df.empty:
        print("no results to report")
        return 0
    print(write_report(df, out, seeds, data_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
