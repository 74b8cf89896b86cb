"""Error-bounded compression of tables: vaekit ``max_abs_error`` against the codecs
people use for numeric tables, at the same maximum error.

Protocol (issue 17): every ADBench table in ``--data`` with at least 1,000 rows
(tables above 50,000 rows subsampled to 50,000, stratified, as in
``benchmark_adbench.py``), a seeded 70/30 split; the compressor is fitted on the 70 %
(``VAECompressor(random_state=0)``, the plain VAE) and the 30 % is compressed with
``max_abs_error = eps`` for eps in ``--eps`` (standardized units: multiples of each
column's training SD).  Bytes are the whole ``.vkc`` file for the test part (header,
chunks, trailer; the model is not included, its size is reported separately), and,
in a second column, the file without its header block (what each row costs).

Baselines, each on the same test part with the same bound per value (columns divided
by their training SD, bound eps):

* ``sq+zstd``: per-column uniform scalar quantization (step 2 eps), each column minus
  its minimum in the smallest unsigned type, column-major, one zstd -19 frame (plus
  9 bytes per column for the minimum and width);
* ``sq+pcodec``: the same integers, each column coded by pcodec;
* ``sz3``: SZ3 in ABS mode, the best of 3 predictors x 2 layouts (rows x columns and
  its transpose);
* ``zfp``: ZFP fixed-accuracy mode with tolerance eps, the better of the 2 layouts;
* ``zstd`` / ``pcodec`` (lossless): the float64 values, column-major.

Every value of every codec is checked against its bound (a codec that misses it is
reported, not counted).  Writes ``<out>/bounded_codec.md`` and ``.csv``.
``--quick``: two tables, two bounds, a small fit (a smoke test).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_env  # noqa: E402  (one thread per process, before numpy loads)

# isort: split

import argparse  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import zstandard as zstd  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = recipe_env.ROOT
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "adbench"
DEFAULT_OUT = recipe_env.RESULTS
MIN_ROWS = 1000


def sq_ints(z: np.ndarray, eps: float) -> np.ndarray:
    """Scalar quantization of standardized values: integer cells of width 2 eps."""
    return np.rint(z / (2 * eps)).astype(np.int64)


def sq_zstd(z: np.ndarray, eps: float) -> tuple[int, np.ndarray]:
    q = sq_ints(z, eps)
    parts = []
    for col in q.T:
        span = col - col.min()
        width = next(w for w in (1, 2, 4, 8) if span.max() < 1 << (8 * w))
        parts.append(span.astype(f"<u{width}").tobytes())
    size = len(zstd.ZstdCompressor(level=19).compress(b"".join(parts))) + 9 * q.shape[1]
    return size, q * (2 * eps)


def sq_pcodec(z: np.ndarray, eps: float) -> tuple[int, np.ndarray]:
    from pcodec import ChunkConfig, standalone

    q = sq_ints(z, eps)
    size = sum(len(standalone.simple_compress(np.ascontiguousarray(col), ChunkConfig()))
               for col in q.T)
    return size, q * (2 * eps)


def sz3(z: np.ndarray, eps: float) -> tuple[int, np.ndarray]:
    import pysz

    best: tuple[int, np.ndarray] | None = None
    for algo in (pysz.szAlgorithm.INTERP_LORENZO, pysz.szAlgorithm.LORENZO_REG,
                 pysz.szAlgorithm.NOPRED):
        for layout in (z, z.T):
            data = np.ascontiguousarray(layout, dtype=np.float64)
            config = pysz.szConfig()
            config.errorBoundMode = pysz.szErrorBoundMode.ABS
            config.absErrorBound = eps
            config.cmprAlgo = algo
            packed, _ = pysz.sz.compress(data, config)
            back, _ = pysz.sz.decompress(packed, np.float64, data.shape)
            back = back.T if layout is not z else back
            if best is None or len(packed) < best[0]:
                best = (len(packed), np.asarray(back))
    assert best is not None
    return best


def zfp(z: np.ndarray, eps: float) -> tuple[int, np.ndarray]:
    import zfpy

    best: tuple[int, np.ndarray] | None = None
    for layout in (z, z.T):
        packed = zfpy.compress_numpy(np.ascontiguousarray(layout, dtype=np.float64),
                                     tolerance=eps)
        back = zfpy.decompress_numpy(packed)
        back = back.T if layout is not z else back
        if best is None or len(packed) < best[0]:
            best = (len(packed), back)
    assert best is not None
    return best


def lossless_zstd(x: np.ndarray) -> int:
    return len(zstd.ZstdCompressor(level=19).compress(np.asfortranarray(x).tobytes("F")))


def lossless_pcodec(x: np.ndarray) -> int:
    from pcodec import ChunkConfig, standalone

    return sum(len(standalone.simple_compress(np.ascontiguousarray(c), ChunkConfig()))
               for c in x.T)


BASELINES: dict[str, Callable[[np.ndarray, float], tuple[int, np.ndarray]]] = {
    "sq+zstd": sq_zstd, "sq+pcodec": sq_pcodec, "sz3": sz3, "zfp": zfp,
}


def tables(data_dir: Path, quick: bool) -> list[str]:
    from benchmark_adbench import list_tables, load_table

    names = []
    for name in list_tables(data_dir):
        X, _ = load_table(data_dir, name, verbose=False)
        if len(X) >= MIN_ROWS:
            names.append(name)
    return names[:2] if quick else names


def run_table(name: str, data_dir: Path, eps_list: list[float], quick: bool) -> list[dict]:
    from benchmark_adbench import load_table

    from vaekit import VAECompressor

    X, _ = load_table(data_dir, name, verbose=False)
    train, test = train_test_split(X, test_size=0.3, random_state=0)
    cols = [f"x{j}" for j in range(X.shape[1])]
    sd = train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    params = {"epochs": 2} if quick else {}
    start = time.process_time()
    est = VAECompressor(random_state=0, **params).fit(pd.DataFrame(train, columns=cols))
    fit_s = time.process_time() - start
    frame = pd.DataFrame(test, columns=cols)
    z = (test - train.mean(axis=0)) / sd
    rows = []
    n = len(test)
    lossless = {"zstd": lossless_zstd(test), "pcodec": lossless_pcodec(test)}
    for eps in eps_list:
        est.set_params(max_abs_error=eps)
        start = time.process_time()
        data = est.compress(frame)
        comp_s = time.process_time() - start
        start = time.process_time()
        back = est.decompress(data).to_numpy(dtype=np.float64)
        decomp_s = time.process_time() - start
        worst = 0.0  # largest error in SDs over the numeric columns; levels must be exact
        for j, spec in enumerate(est.fitted_.schema.columns):
            err = np.abs(back[:, j] - test[:, j])
            if spec.kind != "numeric":
                worst = worst if np.all(err == 0) else np.inf
            else:
                worst = max(worst, float(err.max()) / (spec.sd or 1.0))
        # the header block (FORMAT.md, "Header block"): prefix, stored JSON, CRC
        json_len, model_len = struct.unpack_from("<IQ", data, 12)
        header = 28 + json_len + model_len + 4
        row = {"table": name, "rows": n, "cols": X.shape[1], "eps": eps,
               "vaekit": len(data), "vaekit_no_header": len(data) - header,
               "vaekit_max_err": worst, "fit_cpu_s": fit_s,
               "compress_rows_per_cpu_s": n / max(comp_s, 1e-9),
               "decompress_rows_per_cpu_s": n / max(decomp_s, 1e-9),
               "model_bytes": len(est.to_bytes()), **lossless}
        for bname, codec in BASELINES.items():
            try:
                size, rec = codec(z, eps)
                err = float(np.max(np.abs(rec - z)))
                row[bname] = size if err <= eps * (1 + 1e-9) else np.nan
                row[f"{bname}_max_err"] = err
            except Exception as exc:  # a baseline that cannot run is reported, not fatal
                print(f"{name}: {bname} failed at eps {eps}: {exc}", file=sys.stderr)
                row[bname] = np.nan
        rows.append(row)
        print(f"{name} eps={eps}: vaekit {len(data) / n:.2f} B/row, "
              + ", ".join(f"{b} {row[b] / n:.2f}" for b in BASELINES), file=sys.stderr)
    return rows


PEERS = [*BASELINES, "zstd", "pcodec"]


def with_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``best`` (the smallest of :data:`PEERS`), ``best_name`` and
    ``ratio`` = ``vaekit`` / ``best``."""
    df = df.copy()
    df["best"] = df[PEERS].min(axis=1)
    df["best_name"] = df[PEERS].idxmin(axis=1)
    df["ratio"] = df["vaekit"] / df["best"]
    return df


def summary(part: pd.DataFrame, extra: str = "") -> str:
    """Geometric mean, count within 1.05x and worst of ``part``'s ratios, one line."""
    ratio = part["ratio"]
    return (f"Geometric mean ratio {float(np.exp(np.log(ratio).mean())):.2f}{extra}; within "
            f"1.05x on {int((ratio <= 1.05).sum())} of {len(part)}; worst {ratio.max():.2f} "
            f"({part.loc[ratio.idxmax(), 'table']}).")


def bytes_cells(r: pd.Series, columns: Sequence[str], missing: str) -> list[str]:
    """Bytes per row of ``r``'s ``columns`` as table cells (``missing`` where NaN)."""
    return [f"{r[c] / r['rows']:.2f}" if pd.notna(r[c]) else missing for c in columns]


def report(df: pd.DataFrame) -> str:
    df = with_ratios(df)
    df["ratio_no_header"] = df["vaekit_no_header"] / df["best"]
    lines = ["# Error-bounded compression (`recipes/bounded_codec.py`)", "",
             "Bytes per test row at the same maximum error (eps, in training SDs of each "
             "column). `ratio` = vaekit's whole file / the best baseline's bytes (below 1: "
             "vaekit smaller); `ratio w/o header` leaves out vaekit's header block. Lossless "
             "zstd / pcodec count as baselines (a lossy file larger than a lossless one "
             "loses).", ""]
    for eps, part in df.groupby("eps", sort=False):
        lines += [f"## eps = {eps:g}", "",
                  "| table | rows | cols | vaekit B/row | w/o header | sq+zstd | sq+pcodec | sz3 "
                  "| zfp | zstd (lossless) | pcodec (lossless) | best | ratio | ratio w/o "
                  "header | vaekit max error (SDs) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
        for _, r in part.iterrows():
            n = r["rows"]
            cells = bytes_cells(r, PEERS, "miss")
            lines.append(f"| {r['table']} | {n} | {r['cols']} | {r['vaekit'] / n:.2f} | "
                         f"{r['vaekit_no_header'] / n:.2f} | " + " | ".join(cells)
                         + f" | {r['best_name']} | {r['ratio']:.2f} | "
                           f"{r['ratio_no_header']:.2f} | {r['vaekit_max_err']:.3g} |")
        geo_nh = float(np.exp(np.log(part["ratio_no_header"]).mean()))
        lines += ["", summary(part, f" (without header {geo_nh:.2f})"), ""]
    speed = df.groupby("table")[["fit_cpu_s", "compress_rows_per_cpu_s",
                                 "decompress_rows_per_cpu_s", "model_bytes"]].median()
    lines += ["## Speed and model size (median over the bounds, one thread)", "",
              "| table | fit CPU s | compress rows/CPU s | decompress rows/CPU s | model bytes |",
              "|---|---:|---:|---:|---:|"]
    for name, r in speed.iterrows():
        lines.append(f"| {name} | {r['fit_cpu_s']:.1f} | {r['compress_rows_per_cpu_s']:,.0f} | "
                     f"{r['decompress_rows_per_cpu_s']:,.0f} | {r['model_bytes']:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = table_arguments(__doc__)
    parser.add_argument("--eps", default="1,0.1,0.01,0.001")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no ADBench tables at {args.data}: nothing to do", file=sys.stderr)
        return 0
    eps_list = [0.1, 0.01] if args.quick else [float(e) for e in args.eps.split(",")]
    names = args.tables.split(",") if args.tables else tables(args.data, args.quick)
    rows = [r for name in names for r in run_table(name, args.data, eps_list, args.quick)]
    write_results(rows, args.out, "bounded_codec", report)
    return 0


def table_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options every table recipe takes: --data, --out, --tables, --quick."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--tables", default=None, help="comma-separated table names")
    parser.add_argument("--quick", action="store_true")
    return parser


def write_results(rows: list[dict], out: Path, stem: str,
                  report: Callable[[pd.DataFrame], str]) -> None:
    """``<out>/<stem>.csv`` (the rows) and ``.md`` (their report), which is printed too."""
    df = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{stem}.csv", index=False)
    text = report(df)
    (out / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
