"""Hash the outputs of a fixed set of fits: model files, scores, explanations, .vkc bytes.

For refactors that must not change outputs: run it before and after, compare the JSON.

    python recipes/output_hashes.py REPO SHARED OUT.json   # e.g. . ../shared before.json

Fits a detector, a plain compressor and a bytes_per_row=4 compressor (random_state=0,
one torch thread) on the demo table and two ADBench tables (6_cardio, 40_vowels from
SHARED/datasets/adbench), and runs `vaekit fit / score / compress` on the demo.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import torch

from vaekit import VAEAnomalyDetector, VAECompressor

torch.set_num_threads(1)

root, shared, out = sys.argv[1:4]


def h(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:16]


tables = {"demo": pd.read_csv(os.path.join(root, "datasets/demo.csv")).drop(columns=["row_id"])}
for name in ("6_cardio", "40_vowels"):
    d = np.load(os.path.join(shared, f"datasets/adbench/{name}.npz"), allow_pickle=False)
    tables[name] = d["X"].astype(np.float64)
rows = {}
for tname, X in tables.items():
    for ename, est in (("detector", VAEAnomalyDetector(random_state=0)),
                       ("compressor", VAECompressor(random_state=0)),
                       ("compressor_b4", VAECompressor(random_state=0, bytes_per_row=4))):
        est.fit(X)
        r = {"model": h(est.to_bytes())}
        if ename == "detector":
            r["scores"] = h(np.ascontiguousarray(est.anomaly_score(X)).tobytes())
            r["explain"] = h(est.explain(X.iloc[:200] if hasattr(X, "iloc") else X[:200]).to_numpy().tobytes())
        r["vkc"] = h(est.compress(X)) if hasattr(est, "compress") else None
        if ename != "detector":
            r["transform"] = h(np.ascontiguousarray(est.transform(X)).tobytes())
        rows[f"{tname}/{ename}"] = r
        print(tname, ename, r, flush=True)
# CLI on the demo: fit, score, compress
with tempfile.TemporaryDirectory() as tmp:
    demo = os.path.join(root, "datasets/demo.csv")
    m, s, c = (os.path.join(tmp, n) for n in ("d.vaekit", "s.csv", "c.vkc"))
    vk = [sys.executable, "-m", "vaekit"]
    subprocess.run(vk + ["fit", demo, "--id-column", "row_id", "-o", m, "--quiet"], check=True)
    subprocess.run(vk + ["score", demo, "-m", m, "--id-column", "row_id", "--explain", "2", "-o", s, "--quiet"], check=True)
    subprocess.run(vk + ["compress", demo, "-m", m, "--id-column", "row_id", "-o", c, "--quiet"], check=True)
    rows["cli/demo"] = {"model": h(open(m, "rb").read()), "scores": h(open(s, "rb").read()), "vkc": h(open(c, "rb").read())}
    print(rows["cli/demo"])
json.dump(rows, open(out, "w"), indent=1, sort_keys=True)
