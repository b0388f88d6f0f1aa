"""Throughput of PFIB-SEM pore-back correction and four-phase segmentation (issue 13).

    python benchmarks/bench_pfib.py [--nz NZ] [--size N] [--chunk C]

A synthetic PFIB-SEM stack (NZ x N x N voxels of 0.1 x 0.05 x 0.05 um, cracked NMC
particles, CBD, pores, the pore-back artefact, curtaining, noise) is generated and
persisted, then ``segment.correct_pore_back`` and ``segment.pfib_phases`` are timed from
lazy graph to computed result (threaded scheduler, all cores), chunked (C voxels in-plane,
the whole stack along z). Peers on the same data in the same run: the same block
functions applied once to the whole in-memory array (numpy/scipy, no dask: the cost of
chunking and overlap), and for the segmentation also a plain in-memory three-class Otsu
threshold (scikit-image, no pore-back correction, no cracks: the floor of any intensity
segmentation). Accuracy against the truth is reported alongside. There is no open peer
for the seed's pore-back correction (Avizo is closed). Peak RSS of the process is
reported. Writes benchmarks/results/pfib.md.
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
    ap.add_argument("--nz", type=int, default=64)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--chunk", type=int, default=96)
    args = ap.parse_args(argv)
    dask.config.set(scheduler="threads")

    from skimage.filters import threshold_multiotsu

    from electromicro_dask.segment import pfib as seg_pfib
    from electromicro_dask.synth.pfib import pfib_electrode, pfib_stack

    shape = (args.nz, args.size, args.size)
    chunks = (args.nz, args.chunk, args.chunk)
    t = time.perf_counter()
    ds = pfib_electrode(shape, (0.1, 0.05, 0.05), particle_radius_um=(0.8, 0.15),
                        crack_width_um=0.15, crack_margin_um=0.2, seed=1, chunks=chunks)
    truth = ds["phases"].persist()
    img = pfib_stack(truth, seed=1).persist()
    t_gen = time.perf_counter() - t
    tv, g = truth.values, img.values
    nvox = g.size
    rows = []

    def acc(s):
        fr = max(abs((s == c).mean() - (tv == c).mean()) for c in range(4))
        jac = {n: ((s == c) & (tv == c)).sum() / max(((s == c) | (tv == c)).sum(), 1)
               for c, n in {0: "pore", 1: "cbd", 2: "am", 3: "crack"}.items()}
        return fr, jac

    def timed(name, fn, peer=None, peer_name=""):
        t0 = time.perf_counter()
        out = fn()
        out = out.values if hasattr(out, "values") else out
        dt = time.perf_counter() - t0
        row = {"method": name, "seconds": dt, "voxels_per_s": nvox / dt, "out": out}
        if peer is not None:
            t1 = time.perf_counter()
            peer()
            pt = time.perf_counter() - t1
            row.update(peer=peer_name, peer_seconds=pt, ratio=dt / pt)
        rows.append(row)
        print({k: v for k, v in row.items() if k != "out"}, file=sys.stderr, flush=True)
        return out

    mask_attrs = seg_pfib.correct_pore_back(img, return_mask=True).attrs

    def peer_pore_back():
        # The same per-column test on the whole array in memory (thresholds as found).
        counts, centers = seg_pfib._histogram(img.data)
        _, t_am = seg_pfib._multiotsu(counts, centers)
        return seg_pfib._pore_back_block(g, 0, 1, mask_attrs["pore_back_tolerance"], 4, t_am,
                                         mask_attrs["pore_value"], 5, True)

    timed("correct_pore_back (mask)",
          lambda: seg_pfib.correct_pore_back(img, return_mask=True), peer_pore_back,
          "same test, whole array in memory (numpy/scipy)")
    seg = timed("pfib_phases (with pore-back correction)", lambda: seg_pfib.pfib_phases(img))

    def peer_otsu():
        t1, t2 = threshold_multiotsu(g, classes=3)
        return np.digitize(g, [t1, t2])

    rows[-1].update(peer="skimage multi-Otsu in memory (no correction, no cracks)")
    t1 = time.perf_counter()
    otsu = peer_otsu()
    pt = time.perf_counter() - t1
    rows[-1].update(peer_seconds=pt, ratio=rows[-1]["seconds"] / pt)
    fr, jac = acc(seg)
    otsu_phase = np.choose(otsu, [0, 1, 2]).astype(np.uint8)
    fr0, jac0 = acc(otsu_phase)
    peak = _rss_mib()

    cmd = "python benchmarks/bench_pfib.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# PFIB-SEM pore-back correction and four-phase segmentation (issue 13)", "",
        f"Command: `{cmd.strip()}`", "",
        f"Machine: {platform.processor() or platform.machine()}, {dask.system.CPU_COUNT} cores "
        f"(threaded scheduler); stack {shape} voxels of 0.1 x 0.05 x 0.05 um "
        f"({nvox / 1e6:.2f} Mvoxel), chunks {chunks}; generation + render {t_gen:.1f} s.", "",
        "| method | seconds | voxels/s | peer | peer seconds | ours / peer |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['seconds']:.2f} | {r['voxels_per_s']:.3g} | "
                     f"{r.get('peer', '')} | {r.get('peer_seconds', float('nan')):.2f} | "
                     f"{r.get('ratio', float('nan')):.2f} |")
    lines += ["", "Accuracy against the truth (same run):", "",
              "| segmentation | max fraction error | J pore | J cbd | J am | J crack |",
              "|---|---|---|---|---|---|",
              f"| pfib_phases | {fr:.4f} | {jac['pore']:.3f} | {jac['cbd']:.3f} | "
              f"{jac['am']:.3f} | {jac['crack']:.3f} |",
              f"| multi-Otsu, no correction | {fr0:.4f} | {jac0['pore']:.3f} | {jac0['cbd']:.3f} "
              f"| {jac0['am']:.3f} | {jac0['crack']:.3f} |",
              "", f"Peak RSS of the process: {peak:.0f} MiB.", ""]
    out = Path(__file__).parent / "results" / "pfib.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
