"""How wide a Table 3 column must be: the share of each segmentation's electrolyte (pore
and CBD) that no path connects to the separator, per column width, on the store of
``bench_cbd_correlative.py``.

A column narrower than a few particles can be walled off by a single particle: its
electrolyte below the wall carries no current, so its discharge hardly moves with the CBD's
gamma (seed 002 avoids this with 200-voxel, ~128 um wide cut-outs). The share is the one
each Table 3 row reports (there from ``echem.discharge``'s cell; here by labelling, without
the solver's set-up, which alone takes a minute for a 16 um column).

    python benchmarks/bench_cbd_correlative.py --store /tmp/corr.zarr   # once
    python benchmarks/bench_cbd_columns.py --store /tmp/corr.zarr [--widths 4 8 16]

Writes benchmarks/results/cbd_columns.md.
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--widths", type=float, nargs="*", default=[4.0, 6.0, 8.0, 12.0, 16.0])
    ap.add_argument("--columns", type=int, default=1)
    ap.add_argument("--measured", action="store_true",
                    help="the layout of a measured electrode (no held-out places)")
    ap.add_argument("--out", default=str(HERE / "results" / "cbd_columns.md"))
    args = ap.parse_args()

    import dask

    from electromicro_dask.core.store import open_store
    from electromicro_dask.pipelines import cbd_correlative as cc
    from electromicro_dask.pipelines import cbd_trinarization as trin

    dask.config.set(scheduler="threads")
    ds = open_store(args.store)
    electrodes = sorted({v[: -len("_truth")] for v in ds.data_vars if v.endswith("_truth")})
    names = ["truth"] + list(trin.METHODS)
    cmd = "python benchmarks/bench_cbd_columns.py " + " ".join(sys.argv[1:])
    lines = ["# Table 3 columns: electrolyte walled off from the separator", "",
             f"Command: `{cmd}`", "",
             f"Largest share over {args.columns} column(s) per width "
             + ("(a measured electrode's layout: the methods' columns only); " if args.measured
                else "(methods' places, and in brackets the held-out places the synthetic "
                     "'measured' curve comes from); ")
             + "above 0.25 the Table 3 row warns.", ""]
    for e in electrodes:
        lines += [f"## {e}", "", "| method | " + " | ".join(f"{w:g} um" for w in args.widths)
                  + " |", "|---|" + "---|" * len(args.widths)]
        for name in names:
            seg = ds[f"{e}_{name}"]
            cells = []
            for w in args.widths:
                try:
                    share = [max(_cut_off(c) for c in cc._columns(seg, args.columns, w, h))
                             for h in ((None,) if args.measured else (False, True))]
                    cells.append(f"{share[0]:.2f}" if args.measured
                                 else f"{share[0]:.2f} ({share[1]:.2f})")
                except Exception as err:      # a width that does not fit the volume
                    cells.append(type(err).__name__)
            lines.append(f"| {trin.METHODS.get(name, name)} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
        lines.append("")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _cut_off(col):
    """The electrolyte no face-connected path joins to the separator (on top of the last
    layer), by scipy's labelling: the count ``echem.discharge`` drops as
    ``excluded["electrolyte not connected to the separator"]``."""
    import numpy as np
    from scipy import ndimage

    codes = [c for c, n in col.attrs["phases"].items() if n in ("pore", "crack", "cbd")]
    elec = np.isin(col.values, codes)
    with_sep = np.concatenate([elec, np.ones((1,) + elec.shape[1:], bool)])
    labels, _ = ndimage.label(with_sep)
    reached = np.isin(labels[:-1], np.unique(labels[-1]))
    return float((elec & ~reached).sum() / max(elec.sum(), 1))


if __name__ == "__main__":
    main()
