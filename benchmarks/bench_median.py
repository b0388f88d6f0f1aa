"""Median filter: electromicro_dask (chunked, LocalCluster) vs one scipy.ndimage.median_filter call.

    python benchmarks/bench_median.py [--size 512] [--workers 2]

Both run on the same volume in the same run; the ratio is scipy time / ours (> 1: ours
faster). Writes benchmarks/results/median.md.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--filter-size", type=int, default=3)
    a = ap.parse_args()

    from distributed import Client, LocalCluster

    import electromicro_dask as emd

    rng = np.random.default_rng(0)
    vol = rng.random((a.size,) * 3, dtype=np.float32)
    t = time.perf_counter()
    ref = ndi.median_filter(vol, size=a.filter_size, mode="reflect")
    t_scipy = time.perf_counter() - t

    with LocalCluster(n_workers=a.workers, threads_per_worker=1, dashboard_address=":0") as lc, \
            Client(lc) as client:
        img = emd.as_volume(vol, voxel_size=1.0)
        img = img.copy(data=client.persist(img.data))  # data on the workers before timing
        from distributed import wait

        wait(img.data)
        t = time.perf_counter()
        out = emd.filters.median(img, size_voxels=a.filter_size).data.persist()
        wait(out)
        t_ours = time.perf_counter() - t
        ok = np.array_equal(out.compute(), ref)
    row = (f"| {a.size}^3 float32 | {a.filter_size} | {t_scipy:.2f} | {t_ours:.2f} | "
           f"{t_scipy / t_ours:.2f} | {a.workers} | {ok} |")
    text = ("# Median filter vs scipy.ndimage.median_filter\n\n"
            f"Command: `python benchmarks/bench_median.py --size {a.size} --workers {a.workers}`  \n"
            f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {sys.version.split()[0]}\n\n"
            "| volume | size | scipy s (1 call) | ours s | ratio scipy/ours | workers | identical |\n"
            "|---|---|---|---|---|---|---|\n" + row + "\n")
    out_path = Path(__file__).parent / "results" / "median.md"
    out_path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
