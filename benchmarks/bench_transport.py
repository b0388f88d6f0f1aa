"""Tortuosity factor: electromicro_dask.transport vs TauFactor on CPU, time and peak memory.

Random overlapping-sphere packs (solid spheres, pore = the rest) at one porosity; both
solvers run on the same array in fresh subprocesses (peak RSS above the loaded input is
the solver's memory). Accuracy: each tau is compared with a reference solve (ours, float64,
multigrid-PCG to a relative residual of 1e-10, not timed). TauFactor runs with
its defaults (float32, conv_crit 1e-2); ours with its defaults (float32, multigrid-PCG,
tol 1e-6).

Run:  python benchmarks/bench_transport.py [--size 128 256] [--porosity 0.4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def spheres(n, porosity, radius, seed=0):
    """Overlapping solid spheres (radius in voxels) until the pore fraction is reached."""
    rng = np.random.default_rng(seed)
    solid = np.zeros((n, n, n), bool)
    r = int(np.ceil(radius))
    ball = np.add.outer(np.add.outer(np.arange(-r, r + 1) ** 2, np.arange(-r, r + 1) ** 2),
                        np.arange(-r, r + 1) ** 2) <= radius**2
    pad = np.zeros((n + 2 * r,) * 3, bool)
    target = (1 - porosity) * n**3
    while pad[r:-r, r:-r, r:-r].sum() < target:
        for _ in range(50):
            c = rng.integers(0, n, 3) + r
            pad[c[0] - r:c[0] + r + 1, c[1] - r:c[1] + r + 1, c[2] - r:c[2] + r + 1] |= ball
    solid = pad[r:-r, r:-r, r:-r]
    return (~solid).astype(np.uint8)


def _rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def worker(kind, path):
    """Run one solve in this process; print a JSON line."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    img = np.load(path)
    if kind in ("ours", "ours_loose", "ours_jacobi", "ref"):
        from electromicro_dask.core import as_segmentation
        from electromicro_dask.transport import tortuosity_factor

        seg = as_segmentation(img, phases={0: "am", 1: "pore"}, voxel_size=1.0)
        kw = {"ref": dict(dtype="float64", tol=1e-10), "ours": {},
              "ours_loose": dict(tol=1e-4), "ours_jacobi": dict(preconditioner="jacobi")}[kind]
        tortuosity_factor(seg[:8, :8, :8], axis="z", device="cpu")       # warm up imports
        base = _rss()
        t = time.perf_counter()
        r = tortuosity_factor(seg, axis="z", device="cpu", **kw)
        dt = time.perf_counter() - t
        out = {"tau": r.tau, "iterations": r.iterations, "spread": r.flux_spread}
    else:
        import contextlib
        import io

        import taufactor as tf

        base = _rss()
        t = time.perf_counter()
        s = tf.Solver(img, device="cpu")
        with contextlib.redirect_stdout(io.StringIO()):
            s.solve(verbose=False, iter_limit=100000)
        dt = time.perf_counter() - t
        out = {"tau": float(np.ravel(s.tau)[0]), "iterations": int(s.iter), "spread": None}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.update(kind=kind, time_s=dt, peak_bytes=max(peak - base, 0), threads=torch.get_num_threads())
    print(json.dumps(out))


def run(kind, path, cap=None):
    """One solve in a fresh process; a run past ``cap`` seconds is stopped and reported."""
    cmd = [sys.executable, __file__, "--worker", kind, "--input", str(path)]
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=cap)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "timed_out": True, "time_s": time.perf_counter() - t}
    if p.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--porosity", type=float, default=0.4)
    ap.add_argument("--radius", type=float, default=6.0, help="sphere radius in voxels")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the float64 reference solve (no accuracy column)")
    ap.add_argument("--jacobi-max", type=int, default=128,
                    help="also time Jacobi-PCG up to this size (it is slow beyond)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for every solver (same for both)")
    ap.add_argument("--ref-max", type=int, default=256,
                    help="largest size with the float64 reference solve (it needs ~2x memory)")
    ap.add_argument("--cap", type=float, default=None,
                    help="time cap per solve, s (a capped run is reported as not finished)")
    ap.add_argument("--out", default=str(HERE / "results" / "transport.md"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.input)
        return
    os.environ["BENCH_THREADS"] = str(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.size:
            img = spheres(n, args.porosity, args.radius, seed=n)
            path = Path(tmp) / f"pack{n}.npy"
            np.save(path, img)
            kinds = ["ours", "ours_loose", "taufactor"]
            if n <= args.jacobi_max:
                kinds.insert(2, "ours_jacobi")
            res = {k: run(k, path, args.cap) for k in kinds}
            ref = None
            if not args.no_reference and n <= args.ref_max:
                r = run("ref", path, args.cap)
                ref = None if r.get("timed_out") else r["tau"]
            rows.append((n, float(img.mean()), res, ref))
            print(n, json.dumps(res), ref, flush=True)
    lines = [
        "# Tortuosity factor: electromicro_dask.transport vs TauFactor (CPU)",
        "",
        "Command: `" + " ".join(["python", "benchmarks/bench_transport.py"] + sys.argv[1:]) + "`",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {args.threads} torch thread(s) per solver (shared with other jobs while measured: "
        "absolute times are noisy, ratios come from one run on the same data), torch "
        f"{_torch_version()}, TauFactor {_tf_version()}. Random overlapping solid spheres of "
        f"radius {args.radius:g} voxels, pore fraction ~{args.porosity:g}, flow along axis 0. "
        "Each solve runs in a fresh subprocess; peak memory is the peak RSS above the "
        "loaded input. Error: |tau - tau_ref| / tau_ref with tau_ref from our float64 "
        "multigrid-PCG solve to a relative residual of 1e-10 (checked against Jacobi-PCG "
        "and TauFactor in tests/transport). TauFactor runs with its defaults (float32, "
        "conv_crit 1e-2).",
        "",
        "| size | porosity | solver | tau | error vs ref | iterations | time (s) | peak mem (MiB) "
        "| time ratio TauFactor/ours | memory ratio TauFactor/ours |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, por, res, ref in rows:
        tf_ = res["taufactor"]
        if ref is None and not args.no_reference:
            lines.append(f"| {n}^3 | {por:.3f} | (no float64 reference above --ref-max "
                         f"{args.ref_max}) | | | | | | | |")
        for k, label in (("ours", "ours (multigrid-PCG, float32, tol 1e-6: default)"),
                         ("ours_loose", "ours (multigrid-PCG, float32, tol 1e-4)"),
                         ("ours_jacobi", "ours (Jacobi-PCG, float32)"),
                         ("taufactor", "TauFactor Solver (SOR, float32)")):
            if k not in res:
                continue
            r = res[k]
            if r.get("timed_out"):
                lines.append(f"| {n}^3 | {por:.3f} | {label} | not finished within "
                             f"{args.cap:.0f} s | | | > {args.cap:.0f} | | | |")
                continue
            err = "" if ref is None else f"{abs(r['tau'] - ref) / ref:.1e}"
            if k == "taufactor":
                tr = mr = ""
            elif tf_.get("timed_out"):
                tr, mr = f"> {tf_['time_s'] / r['time_s']:.1f}", ""
            else:
                tr = f"{tf_['time_s'] / r['time_s']:.2f}"
                mr = f"{tf_['peak_bytes'] / max(r['peak_bytes'], 1):.2f}"
            lines.append(f"| {n}^3 | {por:.3f} | {label} | {r['tau']:.5f} | {err} | "
                         f"{r['iterations']} | {r['time_s']:.2f} | {r['peak_bytes'] / 2**20:.0f} "
                         f"| {tr} | {mr} |")
    lines += [
        "",
        "Reading the table: TauFactor stops at its default criterion (flux spread < 1 % and "
        "tau change < 2e-3), which leaves an error of a few 1e-4 in tau; our default "
        "(tol 1e-6) is 2-3 orders of magnitude more accurate, and the tol 1e-4 row is the "
        "equal-or-better-accuracy comparison. Peak memory of ours includes the float64 "
        "set-up arrays (conductivity, face conductances, percolation labels), which TauFactor "
        "does not build; the solve itself keeps ~13 float32 values per voxel against "
        "TauFactor's ~5.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _torch_version():
    import torch

    return torch.__version__


def _tf_version():
    from importlib.metadata import version

    return version("taufactor")


if __name__ == "__main__":
    main()
