"""One-class anomaly detection on scikit-learn's 8x8 digits with vaekit's image detector.

Protocol: for each digit class ``c`` in turn, the images of ``c`` are "normal" and all
other digits are anomalies.  For each seed, a stratified 60/40 split of all 1,797
images; the detectors are fitted on the training images of class ``c`` only and score
the whole test split (class ``c`` = normal, every other class = anomaly).  ROC-AUC and
average precision per class, mean over classes and seeds.

Detectors:

* ``vaekit``: ``VAEAnomalyDetector`` with default parameters on ``X.reshape(-1, 8, 8)``
  scaled to uint8 0..255, so vaekit treats the input as images (its image default:
  an MLP VAE with a shared-scale pixel likelihood);
* ``pca``: reconstruction error (squared, summed over pixels) of a PCA keeping 90 % of
  the variance of the training images;
* ``iforest``: scikit-learn's IsolationForest on the 64 pixel values.

Writes ``<out>/digits.md`` (and ``digits.csv``).  ``--quick``: classes 0 and 1, seed 0,
few epochs -- a smoke test for the test suite.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "recipes"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
DEFAULT_OUT = ROOT / "recipes" / "results"
DETECTORS = ("vaekit", "pca", "iforest")


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) uint8 images 0..255 and their labels."""
    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    return images, d.target.astype(int)


def score_detector(name: str, train: np.ndarray, test: np.ndarray, seed: int,
                   vaekit_params: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Fit on ``train`` images, return (anomaly scores of ``test``, fit seconds)."""
    t0 = time.perf_counter()
    if name == "vaekit":
        from vaekit import VAEAnomalyDetector

        det = VAEAnomalyDetector(random_state=seed, n_jobs=1, **vaekit_params).fit(train)
        fit_s = time.perf_counter() - t0
        return det.anomaly_score(test), fit_s
    flat_tr = train.reshape(len(train), -1).astype(np.float64) / 255.0
    flat_te = test.reshape(len(test), -1).astype(np.float64) / 255.0
    if name == "pca":
        pca = PCA(n_components=0.9, random_state=seed).fit(flat_tr)
        fit_s = time.perf_counter() - t0
        recon = pca.inverse_transform(pca.transform(flat_te))
        return ((flat_te - recon) ** 2).sum(axis=1), fit_s
    if name == "iforest":
        forest = IsolationForest(random_state=seed, n_jobs=1).fit(flat_tr)
        fit_s = time.perf_counter() - t0
        return -forest.score_samples(flat_te), fit_s
    raise SystemExit(f"unknown detector {name!r}")


def run(classes: list[int], seeds: list[int], detectors: list[str],
        vaekit_params: dict[str, Any]) -> pd.DataFrame:
    images, labels = digit_images()
    rows = []
    for seed in seeds:
        tr_idx, te_idx = train_test_split(np.arange(len(labels)), test_size=0.4,
                                          stratify=labels, random_state=seed)
        for c in classes:
            train = images[tr_idx][labels[tr_idx] == c]
            test, y = images[te_idx], (labels[te_idx] != c).astype(int)
            for name in detectors:
                s, fit_s = score_detector(name, train, test, seed, vaekit_params)
                rows.append({"detector": name, "normal_class": c, "seed": seed,
                             "n_train": len(train), "roc_auc": roc_auc_score(y, s),
                             "ap": average_precision_score(y, s), "fit_s": fit_s})
                print(f"{name:>8} class {c} seed {seed}: AUC {rows[-1]['roc_auc']:.3f} "
                      f"fit {fit_s:.2f}s", flush=True)
    return pd.DataFrame(rows)


def report(df: pd.DataFrame, seeds: list[int], quick: bool) -> str:
    per_class = df.groupby(["normal_class", "detector"])["roc_auc"].mean().unstack("detector")
    order = [d for d in DETECTORS if d in per_class.columns]
    per_class = per_class[order]
    summary = pd.DataFrame({
        "mean ROC-AUC": df.groupby("detector")["roc_auc"].mean(),
        "mean AP": df.groupby("detector")["ap"].mean(),
        "median fit s": df.groupby("detector")["fit_s"].median(),
    }).loc[order]
    lines = [
        "# Digits one-class benchmark (generated by `recipes/benchmark_digits.py`)",
        "",
        "scikit-learn `load_digits` (8x8, uint8 0..255 for vaekit's image path). Each class "
        "in turn is normal, the other nine are anomalies; fit on the training images of the "
        f"normal class (stratified 60/40 split, seeds {', '.join(map(str, seeds))}), score the "
        "whole test split." + (" **Quick smoke-test run, not a result.**" if quick else ""),
        "",
        "| detector | mean ROC-AUC | mean AP | median fit s |",
        "|---|---:|---:|---:|",
    ]
    for name, r in summary.iterrows():
        lines.append(f"| {name} | {r['mean ROC-AUC']:.3f} | {r['mean AP']:.3f} | "
                     f"{r['median fit s']:.2f} |")
    lines += ["", "ROC-AUC per normal class (mean over seeds):", "",
              "| normal class | " + " | ".join(order) + " |",
              "|---|" + "---:|" * len(order)]
    for c, r in per_class.iterrows():
        lines.append(f"| {c} | " + " | ".join(f"{r[d]:.3f}" for d in order) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: classes 0 and 1, seed 0, 5 epochs for vaekit")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--vaekit-param", action="append", default=[], metavar="KEY=VALUE",
                    help="vaekit constructor parameter (repeatable), e.g. architecture=mlp")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    classes = [int(c) for c in args.classes.split(",") if c.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    from benchmark_adbench import parse_params

    params: dict[str, Any] = parse_params(args.vaekit_param)
    if args.quick:
        classes, seeds = [0, 1], [0]
        params.setdefault("epochs", 5)
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    df = run(classes, seeds, detectors, params)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "digits.csv", index=False, float_format="%.6f")
    md = report(df, seeds, args.quick)
    (args.out / "digits.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
