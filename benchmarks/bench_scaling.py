"""Strong scaling of the demo pipeline over 1 and 2 workers (parallel efficiency).

    python benchmarks/bench_scaling.py [--size 96] [--repeats 1]

The same recipe (workflows/demo.yaml with ``size`` overridden) runs through
``electromicro_dask.runner.run`` on a LocalCluster of 1, then 2 single-threaded worker
processes, each time into a fresh store (nothing skipped, no report). Times are the
runner's per-stage wall times; the cluster start is excluded. Efficiency = T1 / (2 T2).
The particle list of the synthetic truth is generated on the client and does not scale
with workers; it is reported separately. Writes benchmarks/results/scaling.md.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def one(n_workers, size, tmp):
    from distributed import Client, LocalCluster

    from electromicro_dask.runner import run

    recipe = {"pipeline": "demo", "parameters": {"size": size, "particle_radius_um": [2.0, 0.5]}}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, memory_limit="3GiB",
                      dashboard_address=":0") as lc, Client(lc) as client:
        store = Path(tmp) / f"w{n_workers}.zarr"
        shutil.rmtree(store, ignore_errors=True)
        t0 = time.perf_counter()
        res = run(recipe, store=store, client=client, report=False, quiet=True)
        total = time.perf_counter() - t0
    return total, {s["stage"]: s["seconds"] for s in res.stages}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="emd-scaling-")
    best = {}
    try:
        for _ in range(a.repeats):
            for w in (1, 2):
                total, stages = one(w, a.size, tmp)
                if w not in best or total < best[w][0]:
                    best[w] = (total, stages)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t1, s1 = best[1]
    t2, s2 = best[2]
    cmd = "python benchmarks/bench_scaling.py " + " ".join(sys.argv[1:])
    lines = ["# Strong scaling of the demo pipeline", "",
             f"Command: `{cmd.strip()}`; demo recipe, size {a.size}^3 voxels, LocalCluster of "
             "single-threaded worker processes on this 2-core machine (shared with other jobs "
             "while measured: treat the efficiency as a lower bound). Best of "
             f"{a.repeats} run(s).", "",
             "| stage | 1 worker s | 2 workers s | speed-up |", "| --- | --- | --- | --- |"]
    for k in s1:
        lines.append(f"| {k} | {s1[k]:.2f} | {s2[k]:.2f} | {s1[k] / max(s2[k], 1e-9):.2f} |")
    lines += [f"| **total** | **{t1:.2f}** | **{t2:.2f}** | **{t1 / t2:.2f}** |", "",
              f"Parallel efficiency on 2 workers: T1 / (2 T2) = {t1 / (2 * t2):.2f}."]
    out = Path(__file__).parent / "results" / "scaling.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
