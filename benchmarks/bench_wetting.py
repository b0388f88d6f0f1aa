"""Electrolyte wetting model (issue 13): contact angles, Jurin's height, Lucas-Washburn rise,
and a synthetic electrode filled from its separator face.

    python benchmarks/bench_wetting.py [--skip-angles] [--electrode 32 64 64]

1. Sessile 2D drops on walls of each virtual density of ``_shan_chen.ANGLE_TABLE`` and at
   requested angles between them: the measured contact angle.
2. Capillary rise between two plates in a wide reservoir under gravity (``capillary_rise``):
   the equilibrium height against Jurin's law ``h = 2 sigma cos(theta) / (w drho g)``, with
   sigma from the Laplace law, theta the requested angle and drho the measured densities,
   measured from the reservoir's level (several capillary lengths wide, so nearly flat).
3. The same without gravity: Washburn's law for the column length.
4. ``transport.wetting`` on a synthetic PFIB electrode (cubic 0.1 um voxels): wetted
   fraction against time, written as a figure.

Writes benchmarks/results/wetting.md and wetting_electrode.png.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def angles(sc):
    rows = []
    for rw, th in sc.ANGLE_TABLE:
        rows.append(("table", rw, th, sc.sessile_angle(rw)))
    for th in (30.0, 50.0, 75.0, 110.0):
        rw = sc.wall_density(th)
        rows.append(("interpolated", rw, th, sc.sessile_angle(rw)))
    return rows


def jurin(sc, width, reservoir, gravity, theta, steps, height):
    rho_l, rho_v = sc.coexistence()
    t, hs, hr, rho = sc.capillary_rise(width, reservoir, sc.wall_density(theta), gravity, steps,
                                       height=height, every=500)
    rise = hs[-1] - hr[-1]
    c = reservoir // 2 + 2 + width // 2
    lo, hi = int(hr[-1]) + 3, int(hs[-1]) - 3
    liquid = rho[lo:hi, c].mean()
    gas = rho[lo:hi, 0].mean()
    expected = 2 * sc.SIGMA * np.cos(np.radians(theta)) / width / ((liquid - gas) * gravity)
    settled = abs(hs[-1] - hs[-3]) < 0.05
    capillary_length = np.sqrt(sc.SIGMA / ((rho_l - rho_v) * gravity))
    return dict(width=width, reservoir=reservoir, gravity=gravity, theta=theta, rise=rise,
                jurin=expected, error=rise / expected - 1, settled=settled,
                capillary_length=capillary_length)


def washburn(sc, width, theta, height):
    rho_l, rho_v = sc.coexistence()
    nu = (sc.TAU - 0.5) / 3.0
    mu_l, mu_g = rho_l * nu, rho_v * nu
    length = height - 25
    t, hs, _, _ = sc.capillary_rise(width, 40, sc.wall_density(theta), 0.0, 40000,
                                    height=height, every=50, stop_below_top=15)
    col = hs - 14.5

    def phi(L):
        return (mu_l - mu_g) * L ** 2 / 2 + mu_g * length * L

    out = []
    for a, b, c in ((20, 40, 60), (40, 60, 80)):
        ta, tb, tc = (np.interp(L, col, t) for L in (a, b, c))
        expected = (phi(c) - phi(a)) / (phi(b) - phi(a))
        slope = (phi(c) - phi(a)) / (tc - ta)
        analytic = width * sc.SIGMA * np.cos(np.radians(theta)) / 6
        out.append(dict(window=(a, b, c), ratio=(tc - ta) / (tb - ta), washburn=expected,
                        constant_speed=(c - a) / (b - a), slope=slope, analytic=analytic))
    return out


def electrode(shape, out_png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from electromicro_dask import synth
    from electromicro_dask.transport import wetting

    seg = synth.pfib_electrode(tuple(shape), (0.1, 0.1, 0.1), particle_radius_um=(0.8, 0.15),
                               seed=1, chunks=tuple(shape))["phases"]
    t0 = time.perf_counter()
    r = wetting(seg, phase=["pore", "crack"], contact_angle=45.0, device="auto",
                max_steps=20000, record_every=50)
    wall = time.perf_counter() - t0
    h = r.history
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(h["time"] * 1e6, h["wetted_fraction"])
    a.set_xlabel("time (us)")
    a.set_ylabel("wetted pore fraction")
    a.axhline(0.97, ls=":", c="k")
    zc = h[r.axis].values
    for k in np.linspace(1, h.sizes["time"] - 1, 6).astype(int):
        b.plot(zc, h["profile"].values[k], label=f"{h['time'].values[k] * 1e6:.2f} us")
    b.set_xlabel("z (um), separator at the right")
    b.set_ylabel("wetted share of the slice's pores")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
    return r, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-angles", action="store_true")
    ap.add_argument("--electrode", type=int, nargs=3, default=[32, 64, 64])
    ap.add_argument("--out", default=str(HERE / "results" / "wetting.md"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from electromicro_dask.transport import _shan_chen as sc

    rho_l, rho_v = sc.coexistence()
    cmd = "python benchmarks/bench_wetting.py " + " ".join(sys.argv[1:])
    lines = ["# Electrolyte wetting model (single-component Shan-Chen, D3Q19)", "",
             f"Command: `{cmd}`", "",
             f"G = {sc.G}, tau = {sc.TAU}: liquid {rho_l:.4f}, vapour {rho_v:.4f} "
             f"(ratio {rho_l / rho_v:.1f}), surface tension {sc.SIGMA} (lattice units).", ""]
    if not args.skip_angles:
        lines += ["## Contact angle of sessile drops", "",
                  "| wall density | asked (deg) | measured (deg) | |", "|---|---|---|---|"]
        for kind, rw, th, meas in angles(sc):
            lines.append(f"| {rw:.3f} | {th:.1f} | {meas:.1f} | {kind} |")
        lines.append("")
    lines += ["## Jurin's height (capillary rise, 2D slit in a wide reservoir)", "",
              "| slit (voxels) | reservoir | capillary length | theta | rise | Jurin | "
              "error | settled |", "|---|---|---|---|---|---|---|---|"]
    for w, res, g, steps, height in ((20, 120, 1.6e-4, 16000, 80), (30, 180, 0.8e-4, 30000, 100)):
        j = jurin(sc, w, res, g, 45.0, steps, height)
        lines.append(f"| {w} | {res} | {j['capillary_length']:.1f} | {j['theta']:.0f} | "
                     f"{j['rise']:.2f} | {j['jurin']:.2f} | {100 * j['error']:+.1f} % | "
                     f"{j['settled']} |")
    lines += ["", "## Washburn's law (no gravity, slit of 10 voxels, 45 deg)", "",
              "Time from L_a to L_c over time from L_a to L_b against Washburn's law "
              "(both viscosities) and a constant speed; prefactor of "
              "`(mu_l - mu_g) L^2/2 + mu_g H L` per step against `w sigma cos(theta) / 6`.", "",
              "| window (voxels) | ratio | Washburn | constant speed | prefactor | analytic |",
              "|---|---|---|---|---|---|"]
    for row in washburn(sc, 10, 45.0, 130):
        lines.append(f"| {row['window']} | {row['ratio']:.3f} | {row['washburn']:.3f} | "
                     f"{row['constant_speed']:.2f} | {row['slope']:.4f} | {row['analytic']:.4f} |")
    png = Path(args.out).with_name("wetting_electrode.png")
    r, wall = electrode(args.electrode, png)
    lines += ["", "## Synthetic PFIB electrode", "",
              f"{tuple(args.electrode)} voxels of 0.1 um, pore + crack, 45 deg, gas outlet at the "
              f"current collector; {r.device}, {wall:.0f} s wall time, {r.steps} steps.", "",
              f"- wetted fraction {r.wetted_fraction:.4f}; 97 % reached at "
              f"{r.t97_s * 1e6:.3g} us" if np.isfinite(r.t97_s) else
              f"- wetted fraction {r.wetted_fraction:.4f}; 97 % not reached",
              f"- trapped gas: {r.n_trapped} pockets, {r.trapped_fraction:.4f} of the pores",
              f"- one step = {r.step_s:.3g} s (viscous-capillary scaling, 2.5 mPa s, "
              "0.035 N/m)", "", f"![wetting]({png.name})"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
