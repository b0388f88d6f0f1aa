"""Benchmark: electromicro_dask.measure vs PoreSpy on the same volume, in one run.

Compares local thickness (phase size distribution), porosimetry (simulated intrusion from
one face) and the two-point correlation: wall time and peak memory (growth of the
process's max RSS over the loaded input) for each tool, as ratios ours / PoreSpy. Each
measurement runs in its own process under a time cap, so a run that does not finish is
reported as such. ``--largest`` tries growing cubes and reports the largest each tool
finishes within the caps.

Run: ``python benchmarks/bench_measure.py --size 256`` (writes benchmarks/results/measure.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OPS = ("local_thickness", "porosimetry", "two_point_correlation")
HERE = Path(__file__).resolve().parent


def make_volume(n, seed=0):
    """Pore space of a smoothed random field: pores a few to ~10 voxels wide."""
    from scipy import ndimage as ndi
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.random((n, n, n), dtype=np.float32), 4.0)
    return f > np.quantile(f[::4, ::4, ::4], 0.6)     # 40 % pore


def _worker(tool, op, path, chunk, r_max, mem_cap_gib):
    # An address-space cap turns "needs more memory than the machine has" into a
    # MemoryError reported as a failed run, instead of the kernel's OOM killer.
    cap = int(mem_cap_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    # imports first, so that the memory growth measured is the computation's alone
    if tool == "porespy":
        import porespy as ps
        from porespy.tools import get_edt
    else:
        import dask
        import electromicro_dask as emd
        from electromicro_dask.measure.correlation import two_point_correlation
        from electromicro_dask.measure.sizes import phase_size_distribution, porosimetry
    im = np.load(path)
    if tool == "porespy":
        ps.settings.tqdm["disable"] = True
        edt = get_edt()
        base = _reset_peak()
        t0 = time.perf_counter()
        if op == "local_thickness":
            dt = edt(im)
            ps.filters.local_thickness(im, dt=dt, sizes=None, method="dt")
        elif op == "porosimetry":
            inlets = np.zeros_like(im)
            inlets[0] = True
            ps.filters.porosimetry(im, inlets=inlets, method="dt",
                                   sizes=np.arange(1, int(edt(im).max()) + 1))
        else:
            ps.metrics.two_point_correlation(im, bins=np.arange(0, r_max + 1, 1))
    else:
        dask.config.set(scheduler="threads")
        seg = emd.as_volume(im.astype(np.uint8), voxel_size=1.0, chunks=(chunk,) * 3)
        seg.attrs["phases"] = {0: "am", 1: "pore"}
        base = _reset_peak()
        t0 = time.perf_counter()
        if op == "local_thickness":
            phase_size_distribution(seg, "pore")
        elif op == "porosimetry":
            porosimetry(seg, "pore", inlet="z0")
        else:
            two_point_correlation(seg, "pore", r_max_um=r_max)
    wall = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    print(json.dumps({"wall_s": wall, "peak_mib": (peak - base) / 1024}))


def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak():
    """Reset the kernel's peak-RSS mark to the present RSS (Linux >= 4.0) and return it
    (KiB): the peak read after the run is then the run's own, whatever loading the
    input cost before."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS")


def measure(tool, op, n, cap_s, chunk, r_max, tmp, mem_cap_gib):
    path = Path(tmp) / f"vol_{n}.npy"
    if not path.exists():
        np.save(path, make_volume(n))
    cmd = [sys.executable, __file__, "--worker", tool, op, str(path), str(chunk), str(r_max),
           str(mem_cap_gib)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap_s)
    except subprocess.TimeoutExpired:
        return {"wall_s": float("nan"), "peak_mib": float("nan"), "status": f"> {cap_s} s"}
    if out.returncode != 0:
        return {"wall_s": float("nan"), "peak_mib": float("nan"),
                "status": "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:80]}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["status"] = "ok"
    return res


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        tool, op, path, chunk, r_max, mem = sys.argv[2:8]
        _worker(tool, op, path, int(chunk), int(r_max), float(mem))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs="+", default=[256])
    ap.add_argument("--ops", nargs="+", default=list(OPS), choices=OPS)
    ap.add_argument("--chunk", type=int, default=128)
    ap.add_argument("--r-max", type=int, default=20, help="two-point correlation lag, voxels")
    ap.add_argument("--cap", type=float, default=120.0, help="time cap per run, s")
    ap.add_argument("--mem-cap", type=float, default=16.0,
                    help="address-space limit per run, GiB (beyond it the run fails)")
    ap.add_argument("--largest", type=int, nargs="*", default=None,
                    help="cube sizes to try for the largest finished volume")
    ap.add_argument("--tmp", default="/tmp/bench_measure")
    ap.add_argument("--out", default=str(HERE / "results" / "measure.md"))
    args = ap.parse_args()
    os.makedirs(args.tmp, exist_ok=True)
    load = os.getloadavg()
    rows = []
    for n in args.size:
        for op in args.ops:
            ours = measure("ours", op, n, args.cap, args.chunk, args.r_max, args.tmp,
                           args.mem_cap)
            theirs = measure("porespy", op, n, args.cap, args.chunk, args.r_max, args.tmp,
                             args.mem_cap)
            rows.append((n, op, ours, theirs))
            print(n, op, ours, theirs, flush=True)
    largest = []
    if args.largest:
        for op in args.ops:
            best = {"ours": None, "porespy": None}
            for tool in best:
                for n in sorted(args.largest):
                    r = measure(tool, op, n, args.cap, args.chunk, args.r_max, args.tmp,
                                args.mem_cap)
                    if r["status"] != "ok":
                        break
                    best[tool] = n
            largest.append((op, best))
            print(op, best, flush=True)
    cmd = "python benchmarks/bench_measure.py " + " ".join(sys.argv[1:])
    lines = [
        "# measure: electromicro_dask vs PoreSpy",
        "",
        f"Command: `{cmd}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, shared with other jobs (load average at start "
        f"{load[0]:.1f}, so absolute times are inflated; ratios come from the same run). "
        "Volume: smoothed random "
        "field, 40 % pore, cubes of the given edge. Ours: threaded dask scheduler, chunks "
        f"{args.chunk}^3. Peak memory: the process's peak RSS during the run above its RSS "
        "just before (input loaded, peak mark reset through /proc/self/clear_refs). "
        f"Time cap per run {args.cap:.0f} s, address-space cap {args.mem_cap:g} GiB. "
        "Ratio = ours / PoreSpy (below 1: ours is faster/smaller).",
        "",
        "| size | operation | ours s | PoreSpy s | time ratio | ours MiB | PoreSpy MiB | "
        "memory ratio | status ours / PoreSpy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, op, a, b in rows:
        tr = a["wall_s"] / b["wall_s"] if b["wall_s"] == b["wall_s"] else float("nan")
        mr = a["peak_mib"] / b["peak_mib"] if b["peak_mib"] and b["peak_mib"] == b["peak_mib"] \
            else float("nan")
        lines.append(f"| {n}^3 | {op} | {a['wall_s']:.1f} | {b['wall_s']:.1f} | {tr:.2f} | "
                     f"{a['peak_mib']:.0f} | {b['peak_mib']:.0f} | {mr:.2f} | "
                     f"{a['status']} / {b['status']} |")
    if largest:
        lines += ["", "Largest cube finished within the cap (tried: "
                  f"{sorted(args.largest)}):", "", "| operation | ours | PoreSpy |", "|---|---|---|"]
        for op, best in largest:
            lines.append(f"| {op} | {best['ours']} | {best['porespy']} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
