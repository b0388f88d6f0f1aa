"""Bounded memory of the descriptors (issue 4), the global ones included: a lazily generated
segmentation larger than the workers' total memory limit, on a real LocalCluster.

    python benchmarks/bench_measure_memory.py [--shape 640 1024 1024] [--workers 2]
                                              [--memory-limit 300MiB]

The volume is the pore space around balls on a 16-voxel lattice whose radius varies slowly
with depth (4.5 to 6.5 voxels), a function of the global voxel index, so every block is
generated on its own and no task ever holds the volume. Each descriptor runs in turn while
the scheduler's per-worker process memory is sampled; a worker that dies (memory limit
exceeded) would show as a changed worker set. Writes benchmarks/results/measure_memory.md.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _memory import WorkerPeak  # noqa: E402

HERE = Path(__file__).resolve().parent
PERIOD = 16


def _balls(block, block_info=None):
    """1 (am) inside the ball of the nearest lattice point, 0 (pore) elsewhere."""
    loc = block_info[None]["array-location"]
    z, y, x = (np.arange(a, b).reshape([-1 if i == j else 1 for j in range(3)])
               for i, (a, b) in enumerate(loc))
    zc = z // PERIOD * PERIOD + PERIOD // 2
    r = 5.5 + np.sin(2 * np.pi * zc / 160.0)
    d2 = (z - zc) ** 2 + (y % PERIOD - PERIOD // 2) ** 2 + (x % PERIOD - PERIOD // 2) ** 2
    return (d2 < r * r).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=3, default=[640, 1024, 1024])
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="300MiB")
    ap.add_argument("--ops", nargs="+", default=["fractions", "surface_area", "correlation",
                                                  "connectivity", "porosimetry",
                                                  "local_thickness", "geodesic"])
    ap.add_argument("--out", default=str(HERE / "results" / "measure_memory.md"))
    args = ap.parse_args()

    import dask.array as da
    from dask.utils import parse_bytes
    from distributed import Client, LocalCluster

    import electromicro_dask as emd
    from electromicro_dask import measure

    limit = parse_bytes(args.memory_limit)
    shape = tuple(args.shape)
    arr = da.zeros(shape, np.uint8, chunks=(args.chunk,) * 3).map_blocks(_balls,
                                                                          dtype=np.uint8)
    seg = emd.as_volume(arr, voxel_size=1.0)
    seg.attrs["phases"] = {0: "pore", 1: "am"}
    ops = {
        "fractions": lambda: measure.volume_fractions(seg).round(4).to_dict(),
        "surface_area": lambda: measure.surface_area(seg).round(4).to_dict(),
        "correlation": lambda: round(float(measure.two_point_correlation(
            seg, "pore", r_max_um=16.0).radial.iloc[-1].s2), 4),
        "connectivity": lambda: _conn(measure.connectivity(seg, "pore", axis="z")),
        "porosimetry": lambda: round(measure.porosimetry(seg, "pore", inlet="z0").r_min, 3),
        "local_thickness": lambda: round(measure.phase_size_distribution(seg, "pore").r_max,
                                         3),
        "geodesic": lambda: round(measure.geodesic_tortuosity(seg, "pore", axis="z").mean, 4),
    }
    rows = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit=limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        workers = set(client.scheduler_info()["workers"])
        for name in args.ops:
            t = time.perf_counter()
            with WorkerPeak(client) as wp:
                value = ops[name]()
            wall = time.perf_counter() - t
            now = set(client.scheduler_info()["workers"])
            rows.append((name, wall, wp.max_peak, value, now == workers))
            print(name, f"{wall:.0f} s", f"{wp.max_peak / 2**20:.0f} MiB", value,
                  "same workers" if now == workers else "WORKERS CHANGED", flush=True)
    nbytes = int(np.prod(shape))
    cmd = "python benchmarks/bench_measure_memory.py " + " ".join(sys.argv[1:])
    lines = [
        "# Descriptors on a segmentation larger than the workers' memory",
        "",
        f"Command: `{cmd}`",
        "",
        f"Volume {' x '.join(map(str, shape))} uint8 ({nbytes / 2**20:.0f} MiB, chunks "
        f"{args.chunk}^3), generated lazily: pore space around balls on a {PERIOD}-voxel "
        f"lattice, radius 4.5-6.5 voxels varying with depth. LocalCluster of "
        f"{args.workers} worker process(es) x 1 thread, memory limit {args.memory_limit} "
        f"each ({args.workers * limit / 2**20:.0f} MiB in all: the volume is "
        f"{nbytes / (args.workers * limit):.1f}x that). Peak: the largest process memory of "
        f"any worker, sampled from the scheduler every 0.25 s. Machine: {os.cpu_count()} "
        "CPUs.",
        "",
        "| descriptor | wall s | peak worker MiB | limit MiB | workers unchanged | result |",
        "|---|---|---|---|---|---|",
    ]
    for name, wall, peak, value, same in rows:
        lines.append(f"| {name} | {wall:.0f} | {peak / 2**20:.0f} | {limit / 2**20:.0f} | "
                     f"{'yes' if same else 'NO'} | {value} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _conn(c):
    return {"n_clusters": c.n_clusters, "largest": round(c.largest_cluster_fraction, 4),
            "percolating": round(c.percolating_fraction, 4)}


if __name__ == "__main__":
    main()
