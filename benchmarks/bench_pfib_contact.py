"""How much of a known NMC-CBD contact loss the four-phase PFIB segmentation recovers
(issue 13, seed 001 Fig. 2D: -10 % and -20 % after cycling).

    python benchmarks/bench_pfib_contact.py [--gap 3] [--losses 0.1 0.2]

A synthetic PFIB electrode (48 x 128 x 128 voxels of 0.1 x 0.05 x 0.05 um) is cut with
``synth.detach_cbd`` at each loss, rendered with ``synth.pfib_stack`` (pore back, curtaining,
noise) and segmented with ``segment.pfib_phases``, with and without its wall-copy test;
the relative change of ``measure.contact_area(seg, "am", "cbd")`` against the uncut
electrode is reported for the truth and for both segmentations, with what the segmentation
calls the gap voxels, and the largest phase-fraction error of the uncut electrode's.

It also reports ceilings of the temporal test alone (without the wall copy): the change
the segmentation would show if every gap voxel it calls CBD were called pore, over all of
them and over those in runs of at least 2, 3 and 4 slices along the milling axis (runs of
grey values that stay within the pore-back test's tolerance from slice to slice). A
single-slice gap in front of a particle looks like CBD in one image and gives a stability
test nothing to work with, so the "runs >= 2" column bounds what any per-column temporal
test can recover; the wall-copy test compares the gap with the particle behind it instead.
Writes benchmarks/results/pfib_contact.md.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _run_lengths(img, tol):
    """Length (slices, along z) of each voxel's run of grey values within ``tol``."""
    n = img.shape[0]
    link = np.abs(np.diff(img.astype(np.float64), axis=0)) < tol
    end = np.empty(img.shape, dtype=np.int32)
    start = np.empty_like(end)
    end[n - 1] = n - 1
    for k in range(n - 2, -1, -1):
        end[k] = np.where(link[k], end[k + 1], k)
    start[0] = 0
    for k in range(1, n):
        start[k] = np.where(link[k - 1], start[k - 1], k)
    return end - start + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gap", type=int, default=3)
    ap.add_argument("--cell", type=int, default=8)
    ap.add_argument("--losses", type=float, nargs="+", default=[0.1, 0.2])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "pfib_contact.md"))
    args = ap.parse_args()

    from electromicro_dask import measure, segment, synth

    ds = synth.pfib_electrode((48, 128, 128), (0.1, 0.05, 0.05), particle_radius_um=(0.8, 0.15),
                              crack_width_um=0.15, crack_margin_um=0.2, seed=args.seed,
                              chunks=(48, 64, 64))
    truth = ds["phases"].persist()
    base_t = measure.contact_area(truth, "am", "cbd")
    img0 = synth.pfib_stack(truth, seed=1)
    base = {w: segment.pfib_phases(img0, wall_copy=w).compute() for w in (False, True)}
    base_s = {w: measure.contact_area(s, "am", "cbd") for w, s in base.items()}
    names = {0: "pore", 1: "cbd", 2: "am", 3: "crack"}
    frac_err = {w: max(abs(float((s.values == c).mean() - (truth.values == c).mean()))
                       for c in names) for w, s in base.items()}
    rows = []
    for loss in args.losses:
        cut = synth.detach_cbd(truth, loss, gap_voxels=args.gap, cell_voxels=args.cell).compute()
        gap = cut.values != truth.values
        img = synth.pfib_stack(cut, seed=1)
        seg = segment.pfib_phases(img, wall_copy=False).compute()
        wall = segment.pfib_phases(img).compute()
        as_ = {n: float((wall.values[gap] == c).mean()) for c, n in names.items()}
        length = _run_lengths(img.values, segment.correct_pore_back(img).attrs["pore_back_tolerance"])
        wrong = gap & (seg.values == 1)
        ceilings = [measure.contact_area(seg.copy(data=np.where(wrong & (length >= m), 0, seg.values)
                                                  .astype(seg.dtype)), "am", "cbd")
                    / base_s[False] - 1 for m in (1, 2, 3, 4)]
        rows.append((loss, measure.contact_area(cut, "am", "cbd") / base_t - 1,
                     measure.contact_area(seg, "am", "cbd") / base_s[False] - 1,
                     measure.contact_area(wall, "am", "cbd") / base_s[True] - 1, as_, ceilings))
    cmd = "python benchmarks/bench_pfib_contact.py " + " ".join(sys.argv[1:])
    lines = ["# Known NMC-CBD contact loss through the PFIB segmentation", "",
             f"Command: `{cmd}`", "",
             f"Electrode seed {args.seed}, gap {args.gap} voxels, patches of {args.cell} "
             f"voxels. Contact area per particle surface of the uncut electrode: truth "
             f"{base_t:.4f}, segmented {base_s[True]:.4f} ({base_s[False]:.4f} without the "
             f"wall copy); largest phase-fraction error of the uncut electrode "
             f"{frac_err[True]:.4f} ({frac_err[False]:.4f} without).", "",
             "| loss asked | change, truth | change, temporal test only | change, with wall "
             "copy | gap voxels segmented (with wall copy) as pore / cbd / am / crack | "
             "ceiling of the temporal test: all gap / runs >= 2 / >= 3 / >= 4 |",
             "|---|---|---|---|---|---|"]
    for loss, t, s, w, as_, ceil in rows:
        lines.append(f"| {loss:.2f} | {100 * t:+.1f} % | {100 * s:+.1f} % | {100 * w:+.1f} % | "
                     + " / ".join(f"{as_[n]:.2f}" for n in ("pore", "cbd", "am", "crack")) + " | "
                     + " / ".join(f"{100 * c:+.1f} %" for c in ceil) + " |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
