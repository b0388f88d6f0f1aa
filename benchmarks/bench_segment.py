"""Throughput of the seed 002 trinarizations (voxels per second), ours vs simple peers.

    python benchmarks/bench_segment.py [--size N] [--factor F]

A synthetic correlative sample (coarse N**3 grey volume, truth from an F times finer
electrode) is segmented by every method; each is timed from lazy graph to computed
labels (threaded scheduler, all cores). Peers on the same data in the same run:
scikit-learn's plain KMeans (k = 3 on the 27 features, no weights, no fraction fit) for
k-means, a numpy global argsort for the ranking conversions, scipy.ndimage's closing
with one ball for EDX-Closing. Peak RSS of the process is reported. Writes
benchmarks/results/segment.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import dask
import numpy as np


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--factor", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--kmeans-sample", type=int, default=30000)
    args = ap.parse_args(argv)
    dask.config.set(scheduler="threads")

    from scipy import ndimage

    from electromicro_dask import measure, segment
    from electromicro_dask.synth.correlative import correlative

    n, rows = args.size, []
    t = time.perf_counter()
    ds = correlative((n,) * 3, factor=args.factor, seed=0, chunks=(args.chunk,) * 3)
    ds = ds.persist()
    t_gen = time.perf_counter() - t
    f = dict(zip(["pore", "cbd", "am"], ds["composition"].mean(("z", "y", "x")).values.tolist()))
    grey = ds["grey"]
    nvox = grey.size

    def timed(name, fn, peer=None, peer_name=""):
        t0 = time.perf_counter()
        seg = fn()
        seg = seg.compute() if hasattr(seg, "compute") else seg
        dt = time.perf_counter() - t0
        row = {"method": name, "seconds": dt, "voxels_per_s": nvox / dt}
        if hasattr(seg, "attrs") and "phases" in getattr(seg, "attrs", {}):
            vf = measure.volume_fractions(seg)
            row["max_fraction_error"] = max(abs(vf[p] - f[p]) for p in f)
            row["cbd_jaccard_vs_truth"] = measure.compare(seg, ds["truth"])["jaccard"]["cbd"]
        if peer is not None:
            t1 = time.perf_counter()
            peer()
            pt = time.perf_counter() - t1
            row.update(peer=peer_name, peer_seconds=pt, ratio_ours_over_peer=dt / pt)
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
        return seg

    g = grey.values

    def peer_quantile():
        q = np.quantile(g, [f["pore"], f["pore"] + f["cbd"]])
        return np.searchsorted(q, g)

    timed("Thresholding", lambda: segment.threshold(grey, fractions=f), peer_quantile,
          "numpy quantiles")

    def peer_kmeans():
        from sklearn.cluster import KMeans

        F = segment.kmeans_features(grey).values.reshape(27, -1).T
        return KMeans(3, n_init=1, random_state=0).fit_predict(F)

    try:
        import sklearn  # noqa: F401
        kpeer = peer_kmeans
    except ImportError:
        kpeer = None
    t0 = time.perf_counter()
    km_lazy = segment.kmeans(grey, f, sample_voxels=args.kmeans_sample, seed=0)
    t_fit = time.perf_counter() - t0
    km = timed("k-means (apply; fit excluded)", lambda: km_lazy, kpeer,
               "sklearn KMeans, unweighted")

    train = correlative((24,) * 3, factor=args.factor, seed=1).compute()
    t0 = time.perf_counter()
    model = segment.train_mlp(train["grey"], train["composition"], max_epochs=60,
                              max_samples=8000)
    t_train = time.perf_counter() - t0
    prob = timed("MLP inference", lambda: segment.mlp(grey, model))
    import xarray as xr

    prob = xr.DataArray(prob.values, dims=prob.dims, coords=prob.coords).chunk(
        {"z": args.chunk, "y": args.chunk, "x": args.chunk})

    def peer_rank():
        k = prob.sel(phase="am").values.ravel()
        return np.argsort(-k, kind="stable")

    for m in segment.CONVERSIONS:
        timed(m, lambda m=m: segment.convert(prob, f, method=m),
              peer_rank if m == "NN-AM-Cond" else None, "numpy global argsort (1 step)")

    ball = (np.mgrid[-3:4, -3:4, -3:4] ** 2).sum(0) <= 9
    am = km.values == 2

    def peer_closing():
        return ndimage.binary_closing(am, ball)

    profile = ds["composition"].sel(phase="cbd").mean(("y", "x")).values
    timed("EDX-Closing (AM given)", lambda: segment.edx_closing(
        km.chunk({"z": args.chunk, "y": args.chunk, "x": args.chunk}), f, profile),
        peer_closing, "scipy binary_closing, one ball r=3")

    cmd = "python benchmarks/bench_segment.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:])
    lines = [
        "# Segmentation throughput (seed 002 trinarizations)", "",
        f"Command: `{cmd.strip()}`  ", f"Machine: {platform.machine()}, "
        f"{__import__('os').cpu_count()} CPUs (shared; other jobs were running), "
        f"threaded dask scheduler.  ",
        f"Sample: {n}^3 coarse voxels ({nvox} voxels, chunks {args.chunk}^3), truth "
        f"{args.factor}x finer; generation {t_gen:.1f} s; MLP training (not in the "
        f"table) {t_train:.1f} s, {model.history['epochs']} epochs; k-means fit (not in "
        f"the table: {km_lazy.attrs['cost_evaluations']} k-means runs on a "
        f"{km_lazy.attrs['sample_voxels']}-voxel sample + one full-volume calibration "
        f"pass) {t_fit:.1f} s.  ",
        f"Peak RSS of the process: {_rss_mib():.0f} MiB.", "",
        "| method | s | voxels/s | max fraction error | CBD Jaccard vs truth | peer | "
        "peer s | ours/peer |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| {} | {:.2f} | {:.3g} | {} | {} | {} | {} | {} |".format(
            r["method"], r["seconds"], r["voxels_per_s"],
            f"{r['max_fraction_error']:.5f}" if "max_fraction_error" in r else "",
            f"{r['cbd_jaccard_vs_truth']:.3f}" if "cbd_jaccard_vs_truth" in r else "",
            r.get("peer", ""), f"{r['peer_seconds']:.2f}" if "peer_seconds" in r else "",
            f"{r['ratio_ours_over_peer']:.2f}" if "ratio_ours_over_peer" in r else ""))
    lines += ["", "Notes: the k-means fit (Nelder-Mead over the five weights, each evaluation "
              "a full k-means run on the sample) is a one-off cost reported above; the "
              "table times the lazy block-by-block application. The sklearn peer (if "
              "installed) is plain k = 3 with no weights and no fraction match, not the "
              "same algorithm. The conversions' peer is "
              "one in-memory argsort (step 1 only); ours make a few global histogram passes "
              "per step. The EDX-Closing peer is a single closing; ours computes 12 radius "
              "levels and the per-slice table."]
    out = Path(__file__).parent / "results" / "segment.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
