"""One-class image anomaly detection: vaekit's default image detector against peers.

Data: ``mnist_oneclass_<d>.npz`` files (``x`` uint8 N x 784 = 28 x 28 images, ``y``
(N, 1) with 1 = anomaly: one digit is normal, about 12 % other digits are mixed in)
in ``--data`` (default ``../shared/datasets/images`` next to the checkout).  Any other
``*.npz`` with the same keys works too (``x`` N x H*W square images, or N x H x W).

Protocol, the same for every detector, set and seed:

* stratified 60/40 train/test split (``train_test_split(..., test_size=0.4,
  stratify=y, random_state=seed)``);
* the training part is subsampled to at most ``--max-train`` images (5,000,
  seeded) -- it still holds its anomalies: every detector fits **unsupervised**
  on contaminated data;
* ROC-AUC and average precision of the test scores (higher score = more anomalous);
* fit CPU-seconds measured in-process with ``time.process_time()`` on one thread
  (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``).

Detectors:

* ``vaekit``: ``VAEAnomalyDetector()`` with default parameters on the (N, 28, 28)
  uint8 array, scored with ``anomaly_score``;
* ``pca``: squared reconstruction error (pixels in [0, 1]) of a PCA keeping 90 % of
  the training variance;
* ``iforest``: scikit-learn's ``IsolationForest`` (defaults) on the pixels in [0, 1];
* ``pyod_ae``: PyOD 3.x ``AutoEncoder`` with its defaults ([64, 32] hidden, batch
  norm, dropout, PyOD's standardisation) except ``epoch_num=10`` (its default);
* ``pyod_vae``: PyOD 3.x ``VAE`` with its defaults (latent 2, [128, 64, 32]) except
  ``epoch_num=10`` instead of 30, to keep the run modest (said in the report).

Writes ``<out>/images.md`` and ``images.csv``.  ``--quick``: 2 sets, seed 0, 1,000
training and 1,000 test images -- a smoke run, not a result.  Skips cleanly (exit 0,
a message) when the data directory is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_env  # noqa: E402  (one thread per process, before numpy loads)

# isort: split

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = recipe_env.ROOT
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "images"
DEFAULT_OUT = recipe_env.RESULTS
DETECTORS = ("vaekit", "pca", "iforest", "pyod_ae", "pyod_vae")
PYOD_EPOCHS = {"pyod_ae": 10, "pyod_vae": 10}


def load_set(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) uint8 images and (N,) labels (1 = anomaly) of one ``.npz`` set."""
    with np.load(path) as z:
        x, y = np.asarray(z["x"]), np.asarray(z["y"]).ravel().astype(int)
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise SystemExit(f"{path.name}: {x.shape[1]} pixels per row is not a square image")
        x = x.reshape(len(x), side, side)
    return x.astype(np.uint8), y


def split(x: np.ndarray, y: np.ndarray, seed: int, max_train: int,
          max_test: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 60/40 split; the train part subsampled to ``max_train`` (seeded)."""
    tr, te = train_test_split(np.arange(len(y)), test_size=0.4, stratify=y, random_state=seed)
    rng = np.random.RandomState(seed)
    if len(tr) > max_train:
        tr = np.sort(rng.choice(tr, max_train, replace=False))
    if max_test is not None and len(te) > max_test:
        te, _ = train_test_split(te, train_size=max_test, stratify=y[te], random_state=seed)
    return x[tr], x[te], y[te]


def fit_score(name: str, train: np.ndarray, test: np.ndarray, seed: int,
              vaekit_params: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Fit ``name`` on ``train`` images; (anomaly scores of ``test``, fit CPU-seconds)."""
    flat_tr = train.reshape(len(train), -1).astype(np.float64) / 255.0
    flat_te = test.reshape(len(test), -1).astype(np.float64) / 255.0
    t0 = time.process_time()
    if name == "vaekit":
        from vaekit import VAEAnomalyDetector

        det = VAEAnomalyDetector(random_state=seed, n_jobs=1, **vaekit_params).fit(train)
        fit_s = time.process_time() - t0
        return det.anomaly_score(test), fit_s
    if name == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=0.9, random_state=seed).fit(flat_tr)
        fit_s = time.process_time() - t0
        recon = pca.inverse_transform(pca.transform(flat_te))
        return ((flat_te - recon) ** 2).sum(axis=1), fit_s
    if name == "iforest":
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(random_state=seed, n_jobs=1).fit(flat_tr)
        fit_s = time.process_time() - t0
        return -forest.score_samples(flat_te), fit_s
    if name in PYOD_EPOCHS:
        if name == "pyod_vae":
            from pyod.models.vae import VAE as Model
        else:
            from pyod.models.auto_encoder import AutoEncoder as Model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Model(epoch_num=PYOD_EPOCHS[name], random_state=seed, verbose=0,
                          device="cpu")
            model.fit(flat_tr.astype(np.float32))
            fit_s = time.process_time() - t0
            return np.asarray(model.decision_function(flat_te.astype(np.float32))), fit_s
    raise SystemExit(f"unknown detector {name!r}")


def run(files: list[Path], seeds: list[int], detectors: list[str], params: dict[str, Any],
        max_train: int, max_test: int | None) -> pd.DataFrame:
    import torch

    torch.set_num_threads(1)
    rows = []
    for path in files:
        x, y = load_set(path)
        for seed in seeds:
            train, test, y_te = split(x, y, seed, max_train, max_test)
            for name in detectors:
                s, fit_s = fit_score(name, train, test, seed, params)
                rows.append({"detector": name, "set": path.stem, "seed": seed,
                             "n_train": len(train), "n_test": len(test),
                             "roc_auc": roc_auc_score(y_te, s),
                             "ap": average_precision_score(y_te, s), "fit_cpu_s": fit_s})
                print(f"{name:>9} {path.stem} seed {seed}: AUC {rows[-1]['roc_auc']:.3f} "
                      f"AP {rows[-1]['ap']:.3f} fit {fit_s:.1f} CPU-s", flush=True)
    return pd.DataFrame(rows)


def report(df: pd.DataFrame, seeds: list[int], quick: bool, params: dict[str, Any]) -> str:
    order = [d for d in DETECTORS if d in set(df["detector"])]
    summary = pd.DataFrame({
        "mean ROC-AUC": df.groupby("detector")["roc_auc"].mean(),
        "mean AP": df.groupby("detector")["ap"].mean(),
        "worst set ROC-AUC": df.groupby(["detector", "set"])["roc_auc"].mean()
                               .groupby("detector").min(),
        "median fit CPU-s": df.groupby("detector")["fit_cpu_s"].median(),
    }).loc[order]
    n_train = int(df["n_train"].max())
    lines = [
        "# One-class image benchmark (generated by `recipes/benchmark_images.py`)",
        "",
        "Each set: one digit normal, ~12 % other digits mixed into the data; stratified "
        f"60/40 split (seeds {', '.join(map(str, seeds))}), training part subsampled to at "
        f"most {n_train} images, every detector fitted unsupervised on it (anomalies "
        "included); test ROC-AUC and AP; fit CPU-seconds on one thread "
        f"(`time.process_time()`). PyOD AutoEncoder and VAE: `epoch_num=10` (AutoEncoder's "
        "default, VAE's default is 30), otherwise defaults."
        + (f" vaekit parameters: `{params}`." if params else " vaekit: default parameters.")
        + (" **Quick smoke run, not a result.**" if quick else ""),
        "",
        "| detector | mean ROC-AUC | mean AP | worst set ROC-AUC | median fit CPU-s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in summary.iterrows():
        lines.append(f"| {name} | {r['mean ROC-AUC']:.3f} | {r['mean AP']:.3f} | "
                     f"{r['worst set ROC-AUC']:.3f} | {r['median fit CPU-s']:.1f} |")
    for metric, title in (("roc_auc", "ROC-AUC"), ("ap", "average precision")):
        per_set = df.groupby(["set", "detector"])[metric].mean().unstack("detector")[order]
        lines += ["", f"{title} per set (mean over seeds):", "",
                  "| set | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
        for s, r in per_set.iterrows():
            lines.append(f"| {s} | " + " | ".join(f"{r[d]:.3f}" for d in order) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sets", default="1,2,4,5,6,8,9",
                    help="digits d of mnist_oneclass_<d>.npz, or file stems, comma-separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--max-train", type=int, default=5000)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 sets, seed 0, 1,000 train and 1,000 test images")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--vaekit-param", action="append", default=[], metavar="KEY=VALUE",
                    help="vaekit constructor parameter (repeatable), e.g. epochs=5")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no image sets at {args.data}: skipped (give --data DIR)")
        return 0
    from benchmark_adbench import parse_params

    params: dict[str, Any] = parse_params(args.vaekit_param)
    names = [s.strip() for s in args.sets.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    max_train, max_test = args.max_train, None
    if args.quick:
        names, seeds, max_train, max_test = names[:2], [0], min(max_train, 1000), 1000
    files = [args.data / (f"mnist_oneclass_{n}.npz" if n.isdigit() else f"{n}.npz")
             for n in names]
    files = [f for f in files if f.is_file()]
    if not files:
        print(f"none of the sets {names} is in {args.data}: skipped")
        return 0
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    df = run(files, seeds, detectors, params, max_train, max_test)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "images.csv", index=False, float_format="%.6f")
    md = report(df, seeds, args.quick, params)
    (args.out / "images.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
