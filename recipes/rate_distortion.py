"""Rate-distortion of vaekit's compressor against PCA, JPEG and WebP at equal bytes per row.

What it measures
----------------
* Tables (ADBench ``../shared/datasets/adbench/*.npz``, arrays ``X``): each table is
  split 70/30 (seed 0) and z-scored with the training rows' mean and SD (the
  "standardized units" of the RMSE).  For every budget ``B`` (bytes per row) a
  ``VAECompressor(bytes_per_row=B)`` is fitted on the training rows, the test rows
  are compressed to a container and decompressed, and the RMSE over all test
  entries is reported, with the bytes per row the codes actually took.  Baselines:
  PCA (all components) whose scores go through the *same* quantizer, bit
  allocation and entropy coder at the same budget (precision 1 per component =
  plain squared error), and "PCA 8-bit": the first ``B`` components at 8 bits each.
* MNIST (``../shared/datasets/mnist/mnist_test_images.npz``): first 8,000 images
  train, last 2,000 test; PSNR (dB) = 10 log10(255^2 / MSE over all test pixels).
  Baselines: PCA as above; JPEG and WebP (Pillow) per image at every quality
  setting, counting only JPEG scan data (SOS payload, no tables/headers) and the
  WebP VP8 bitstream (file minus the 20-byte RIFF and chunk headers); at each
  budget the best setting whose mean payload fits is reported.
* Payload = entropy-coded codes only.  The fixed per-file overhead (container
  header with schema and quantizer, trailer, chunk framing) is reported
  separately, in bytes per file.
* Throughput: rows (images) per second of ``compress`` and ``decompress`` of the
  test split on one CPU thread, for the largest budget.

Run
---
    python recipes/rate_distortion.py            # full run, about 20 min on one core
    python recipes/rate_distortion.py --quick    # smoke test (small data), < 1 min

Writes ``rate_distortion.md`` (tables) and ``rate_distortion.png`` (curves) to
``--out`` (default ``recipes/results``).  Needs matplotlib
(``pip install -c constraints.txt matplotlib``).  Data missing: that part is
skipped with a note.  Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vaekit import VAECompressor  # noqa: E402
from vaekit.codec import ContainerReader  # noqa: E402
from vaekit.codec.quantize import LatentQuantizer, fit_quantizer, payload_bytes_per_row  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
TABLES = ("6_cardio", "19_landsat", "28_pendigits")
TAB_BUDGETS = (2, 4, 8, 16)
IMG_BUDGETS = (16, 32, 64)
JPEG_QUALITIES = (1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 75, 90)
WEBP_QUALITIES = (0, 1, 2, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90)


@dataclass
class Row:
    """One budget of one dataset: distortion and actual payload per codec."""

    budget: float
    results: dict[str, tuple[float, float]] = field(default_factory=dict)  # codec -> (bytes, metric)


# --------------------------------------------------------------------------- helpers


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def code_bytes(container: bytes) -> tuple[int, int]:
    """(bytes of packed codes, rows) summed over a container's chunks."""
    total = rows = 0
    with ContainerReader(io.BytesIO(container)) as r:
        for _, n, payload in r.iter_chunks():
            total += struct.unpack_from("<BBI", payload)[2]
            rows += n
    return total, rows


def pca_codec(train: np.ndarray, test: np.ndarray, budget: float) -> tuple[float, np.ndarray]:
    """PCA scores through the same quantizer and coder; (bytes/row, reconstruction)."""
    pca = PCA(n_components=min(train.shape), random_state=0).fit(train)
    s_tr, s_te = pca.transform(train), pca.transform(test)
    # Same 3 % safety margin below the budget as VAECompressor uses.
    q = fit_quantizer(center=s_tr.mean(0), scale=s_tr.std(0), precision=np.ones(s_tr.shape[1]),
                      bytes_per_row=0.97 * budget, sample=s_tr)
    rec = pca.inverse_transform(q.decode(q.encode(s_te)))
    return payload_bytes_per_row(q, s_te), rec


def pca8_codec(train: np.ndarray, test: np.ndarray, budget: float) -> tuple[float, np.ndarray]:
    """First ``budget`` PCA components at 8 bits each (the issue's reference)."""
    k = int(min(budget, min(train.shape)))
    pca = PCA(n_components=k, random_state=0).fit(train)
    s_tr, s_te = pca.transform(train), pca.transform(test)
    q = LatentQuantizer.from_bits([8] * k, s_tr.mean(0), s_tr.std(0))
    rec = pca.inverse_transform(q.decode(q.encode(s_te)))
    return payload_bytes_per_row(q, s_te), rec


def vae_codec(train, test, budget, epochs, arch) -> tuple[float, object, dict]:
    """Fit a budgeted VAECompressor; (bytes/row, reconstruction, info)."""
    t0 = time.perf_counter()
    kw = {} if arch is None else {"architecture": arch}
    model = VAECompressor(bytes_per_row=budget, epochs=epochs, random_state=0, device="cpu",
                          **kw).fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = model.compress(test)
    comp_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rec = model.decompress(data)
    decomp_s = time.perf_counter() - t0
    codes, rows = code_bytes(data)
    info = {"fit_s": fit_s, "compress_rows_s": rows / comp_s, "decompress_rows_s": rows / decomp_s,
            "overhead_bytes": len(data) - codes, "latent": model.model_.latent_dim,
            "active": sum(b > 0 for b in model.quantizer_.bits),
            "bits": model.quantizer_.total_bits, "kept": _kept_phase(model)}
    return codes / rows, rec, info


def _kept_phase(model) -> str:
    """Which state of the codec training the held-out rows picked (see VAECompressor)."""
    last = model.history_[-1] if model.history_ else {}
    return str(last.get("kept", f"VAE, beta {model.beta_:.3g}"))


# --------------------------------------------------------------------------- tables


def run_tables(names, budgets, epochs, max_rows, log) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for name in names:
        path = SHARED / "adbench" / f"{name}.npz"
        if not path.exists():
            log(f"skipped {name}: {path} not found")
            continue
        with np.load(path, allow_pickle=False) as f:
            X = np.asarray(f["X"], dtype=np.float64)
        rng = np.random.default_rng(0)
        order = rng.permutation(len(X))[:max_rows]
        n_tr = int(0.7 * len(order))
        tr, te = X[order[:n_tr]], X[order[n_tr:]]
        mean, sd = tr.mean(0), tr.std(0)
        sd[sd == 0] = 1.0
        tr, te = (tr - mean) / sd, (te - mean) / sd
        rows = []
        for b in budgets:
            row = Row(b)
            nb, rec = pca_codec(tr, te, b)
            row.results["PCA"] = (nb, rmse(rec, te))
            nb, rec = pca8_codec(tr, te, b)
            row.results["PCA 8-bit"] = (nb, rmse(rec, te))
            nb, rec, info = vae_codec(tr, te, b, epochs, None)
            row.results["VAE"] = (nb, rmse(rec, te))
            row.results["_info"] = info  # type: ignore[assignment]
            log(f"{name} ({X.shape[1]} cols, {len(tr)}/{len(te)} rows) B={b}: "
                + ", ".join(f"{k} {v[1]:.4f} @ {v[0]:.2f} B" for k, v in row.results.items()
                            if not k.startswith("_"))
                + f"; latent {info['latent']}, active {info['active']}, {info['bits']} bits, "
                  f"kept {info['kept']}, fit {info['fit_s']:.0f} s")
            rows.append(row)
        out[f"{name} ({X.shape[1]} columns)"] = rows
    return out


# --------------------------------------------------------------------------- images


def jpeg_scan_bytes(data: bytes) -> int:
    """Entropy-coded scan data of a baseline JPEG: after the SOS header, before EOI."""
    pos = data.index(b"\xff\xda")
    (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
    return len(data) - (pos + 2 + length) - 2


def image_codec_curve(images: np.ndarray, fmt: str, qualities) -> list[tuple[int, float, float]]:
    """(quality, mean payload bytes per image, PSNR dB) per setting."""
    from PIL import Image

    curve = []
    for q in qualities:
        total, recs = 0, []
        for img in images:
            buf = io.BytesIO()
            if fmt == "JPEG":
                Image.fromarray(img).save(buf, "JPEG", quality=q, optimize=True)
                total += jpeg_scan_bytes(buf.getvalue())
            else:
                Image.fromarray(img).save(buf, "WEBP", quality=q, method=6)
                total += len(buf.getvalue()) - 20  # RIFF header (12) + VP8 chunk header (8)
            buf.seek(0)
            recs.append(np.asarray(Image.open(buf).convert("L")))
        curve.append((q, total / len(images), psnr(np.stack(recs), images)))
    return curve


def best_within(curve, budget) -> tuple[float, float] | None:
    fits = [(b, p) for _, b, p in curve if b <= budget]
    return max(fits, key=lambda t: t[1]) if fits else None


def run_mnist(budgets, n_train, n_test, epochs, arch, log):
    path = SHARED / "mnist" / "mnist_test_images.npz"
    if not path.exists():
        log(f"skipped MNIST: {path} not found")
        return None
    with np.load(path, allow_pickle=False) as f:
        X = f["data"]
    tr, te = X[:n_train], X[-n_test:]
    trf, tef = tr.reshape(len(tr), -1) / 255.0, te.reshape(len(te), -1) / 255.0
    curves = {"JPEG": image_codec_curve(te, "JPEG", JPEG_QUALITIES),
              "WebP": image_codec_curve(te, "WEBP", WEBP_QUALITIES)}
    for k, c in curves.items():
        log(f"MNIST {k}: " + ", ".join(f"q{q} {b:.1f} B {p:.2f} dB" for q, b, p in c))
    rows = []
    for b in budgets:
        row = Row(b)
        nb, rec = pca_codec(trf, tef, b)
        row.results["PCA"] = (nb, psnr(np.rint(np.clip(rec, 0, 1) * 255), te.reshape(len(te), -1)))
        nb, rec = pca8_codec(trf, tef, b)
        row.results["PCA 8-bit"] = (nb, psnr(np.rint(np.clip(rec, 0, 1) * 255),
                                             te.reshape(len(te), -1)))
        for k, c in curves.items():
            hit = best_within(c, b)
            if hit is not None:
                row.results[k] = hit
        nb, rec, info = vae_codec(tr, te, b, epochs, arch)
        row.results["VAE"] = (nb, psnr(rec, te))
        row.results["_info"] = info  # type: ignore[assignment]
        log(f"MNIST B={b}: " + ", ".join(f"{k} {v[1]:.2f} dB @ {v[0]:.1f} B"
                                         for k, v in row.results.items() if not k.startswith("_"))
            + f"; latent {info['latent']}, active {info['active']}, {info['bits']} bits, "
              f"kept {info['kept']}, fit {info['fit_s']:.0f} s")
        rows.append(row)
    return rows, curves


# --------------------------------------------------------------------------- report


def markdown(tables, mnist, args) -> str:
    lines = ["# Rate-distortion: vaekit VAE codec vs PCA, JPEG, WebP", "",
             f"Generated by `python recipes/rate_distortion.py{' --quick' if args.quick else ''}` "
             f"(torch {torch.__version__}, one CPU thread). Bytes = entropy-coded payload per "
             "row (image) actually stored; each cell is `metric (bytes)`.", ""]
    info_lines = []
    for name, rows in tables.items():
        lines += [f"## {name}: test RMSE, standardized units (lower is better)", "",
                  "| budget B/row | VAE | PCA, same quantizer | PCA 8-bit | VAE - PCA |",
                  "|---|---|---|---|---|"]
        for r in rows:
            v, p, p8 = r.results["VAE"], r.results["PCA"], r.results["PCA 8-bit"]
            lines.append(f"| {r.budget:g} | {v[1]:.4f} ({v[0]:.2f}) | {p[1]:.4f} ({p[0]:.2f}) | "
                         f"{p8[1]:.4f} ({p8[0]:.2f}) | {v[1] - p[1]:+.4f} |")
            info_lines.append((name, r))
        lines.append("")
    if mnist is not None:
        rows, curves = mnist
        lines += ["## MNIST (8,000 train / 2,000 test): PSNR dB (higher is better)", "",
                  "| budget B/image | VAE | PCA, same quantizer | PCA 8-bit | JPEG | WebP |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            cells = []
            for k in ("VAE", "PCA", "PCA 8-bit", "JPEG", "WebP"):
                v = r.results.get(k)
                if v is None:
                    smallest = min(b for _, b, _ in curves[k])
                    cells.append(f"n/a (smallest {smallest:.0f} B)")
                else:
                    cells.append(f"{v[1]:.2f} ({v[0]:.1f})")
            lines.append(f"| {r.budget:g} | " + " | ".join(cells) + " |")
            info_lines.append(("MNIST", r))
        lines += ["", "JPEG / WebP settings (quality: payload B/image, PSNR dB): "]
        for k, c in curves.items():
            lines.append(f"- {k}: " + "; ".join(f"q{q}: {b:.1f} B, {p:.2f} dB" for q, b, p in c))
        lines.append("")
    lines += ["## Models, overhead and throughput (one CPU thread)", "",
              "| data | budget | latent / active dims | bits/row (raw) | state kept | fit s | "
              "overhead B/file | compress rows/s | decompress rows/s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, r in info_lines:
        i = r.results["_info"]
        lines.append(f"| {name} | {r.budget:g} | {i['latent']} / {i['active']} | {i['bits']} | "
                     f"{i['kept']} | {i['fit_s']:.0f} | {i['overhead_bytes']} | "
                     f"{i['compress_rows_s']:.0f} | {i['decompress_rows_s']:.0f} |")
    lines += ["", "Overhead = container bytes minus code bytes: header (schema, quantizer, "
              "fingerprint), chunk framing and trailer, once per file (no embedded model).  "
              "State kept = the stage of the codec training whose state and quantizer coded "
              "the compressor's held-out training rows best (`pca`: the PCA start; `codes`/"
              "`rescale`/`requantize`: after quantization-aware training of encoder and "
              "decoder; `decoder`: after the decoder-only pass).", ""]
    return "\n".join(lines)


def plot(tables, mnist, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(tables) + (mnist is not None)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(4.2 * max(n, 1), 3.6), squeeze=False)
    for ax, (name, rows) in zip(axes[0], tables.items(), strict=False):
        for k, style in (("VAE", "o-"), ("PCA", "s--"), ("PCA 8-bit", "^:")):
            ax.plot([r.results[k][0] for r in rows], [r.results[k][1] for r in rows], style, label=k)
        ax.set(title=name, xlabel="payload bytes / row", ylabel="test RMSE (std units)",
               xscale="log", yscale="log")
        ax.legend(fontsize=8)
    if mnist is not None:
        rows, curves = mnist
        ax = axes[0][len(tables)]
        for k, style in (("VAE", "o-"), ("PCA", "s--"), ("PCA 8-bit", "^:")):
            ax.plot([r.results[k][0] for r in rows], [r.results[k][1] for r in rows], style, label=k)
        for k, c in curves.items():
            ax.plot([b for _, b, _ in c], [p for _, _, p in c], ".-", alpha=0.6, label=k)
        ax.set(title="MNIST", xlabel="payload bytes / image", ylabel="test PSNR (dB)",
               xscale="log", xlim=(8, 400))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run (< 1 min)")
    ap.add_argument("--out", type=Path, default=REPO / "recipes" / "results")
    ap.add_argument("--tables", nargs="*", default=None, help=f"ADBench names (default {TABLES})")
    ap.add_argument("--arch", default="mlp", help="image architecture (mlp: conv is slow on CPU)")
    ap.add_argument("--parts", nargs="+", default=["tables", "mnist"], choices=["tables", "mnist"])
    ap.add_argument("--tab-budgets", nargs="+", type=float, default=list(TAB_BUDGETS))
    ap.add_argument("--img-budgets", nargs="+", type=float, default=list(IMG_BUDGETS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.quick:
        tables = run_tables(args.tables or ["6_cardio"], (4,), epochs=5, max_rows=800, log=log)
        mnist = run_mnist((16,), n_train=600, n_test=100, epochs=2, arch=args.arch, log=log)
    else:
        tables = (run_tables(args.tables or TABLES, args.tab_budgets, epochs="auto",
                             max_rows=10_000, log=log) if "tables" in args.parts else {})
        mnist = (run_mnist(args.img_budgets, n_train=8000, n_test=2000, epochs="auto",
                           arch=args.arch, log=log) if "mnist" in args.parts else None)
    (args.out / "rate_distortion.md").write_text(markdown(tables, mnist, args))
    plot(tables, mnist, args.out / "rate_distortion.png")
    log(f"wrote {args.out / 'rate_distortion.md'} and rate_distortion.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
