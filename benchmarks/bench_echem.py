"""Electrochemistry on segmented cathodes (issue 11): the seed-001 scenario study, the
seed-002 gamma and current sweeps through the cluster, and the cost of one discharge.

Studies (each appends its own section to results/echem.md, with the command):

``seed001``
    A synthetic stand-in for seed 001's NMC811 sub-volume (33 x 33 x 71.5 um, fractions
    58 / 9 / 29 / 4 % NMC / CBD / pore / crack) at ``--voxel`` um. The CEI resistivity is
    calibrated to the seed's 43.8 mV mean penalty, then the five scenarios run at C/2 to
    3.5 V with the NMC811 set; the table sits beside the seed's numbers.
``seed002``
    A synthetic cut-out with CBD (seed 002's CBD homogenisation): capacity at 6 mA/cm^2
    over gamma and over the six currents at gamma 0.12, as independent tasks through
    :func:`electromicro_dask.transport.sweep` on a LocalCluster (``resources={"GPU": 1}``
    where workers offer GPUs).
``slab``
    Solid-diffusion-limited AM slabs at several voxel sizes against the analytic surface
    concentration of a plane sheet (the voxels' sub-voxel surface model).
``cost``
    Wall time, steps, iterations and peak memory of a C/2 discharge of a cube of
    ``--size`` voxels, beside PyBaMM's 1D DFN time and the published echemAMR figure.

Run:  python benchmarks/bench_echem.py seed001 [--voxel 2.0]
      python benchmarks/bench_echem.py seed002 [--workers 2]
      python benchmarks/bench_echem.py cost [--size 32 48] [--t-max 600]
      python benchmarks/bench_echem.py slab [--voxels 2 1 0.5 0.25 0.125]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "echem.md"

#: Seed 001 (section "Gradient of CEI thickness and ununiform SOD", Figs. 4-5).
SEED001 = {"pristine": (120.0, 0.0, 8.0), "cei": (100.0, 43.8, 8.0),
           "thick_cei": (92.7, 79.4, None), "cbd_clogging": (100.0, None, 15.0),
           "full_clogging": (100.0, None, 50.0)}


def seed001_electrode(voxel, seed=1):
    """Synthetic seed-001 sub-volume: NMC (cracked), CBD, pore at 58 / 9 / 29 / 4 %."""
    from electromicro_dask.synth import pfib_electrode

    shape = tuple(max(2, int(round(v / voxel))) for v in (71.5, 33.0, 33.0))
    ds = pfib_electrode(shape, voxel, fractions={"am": 0.62, "cbd": 0.09, "pore": 0.29},
                        crack_fraction=0.04 / 0.62, crack_width_um=voxel,
                        crack_margin_um=voxel, seed=seed)
    return ds.phases.compute()


def _gradient(r):
    """Top-to-bottom salt difference at the end, relative to the separator side [%]."""
    c = r.curve.isel(time=-1)
    return float(100 * (c.c_e_separator - c.c_e_collector) / c.c_e_separator)


def _append(title, command, lines):
    RESULTS.parent.mkdir(exist_ok=True)
    head = "" if RESULTS.exists() else (
        "# Electrochemistry benchmarks (issue 11)\n\nOne section per command, newest last.\n")
    stamp = datetime.date.today().isoformat()
    with open(RESULTS, "a") as f:
        f.write(head + f"\n## {title}: `{command}`\n\n" + "\n".join(lines) +
                f"\n\n- run on {stamp}, 2 CPU cores, no GPU\n")
    print("\n".join(lines))


def study_seed001(args, command):
    from electromicro_dask.echem import (calibrate_film_resistivity, discharge,
                                         mean_voltage_penalty, nmc811_seed001, scenario)
    from electromicro_dask.transport import tortuosity_factor

    seg = seed001_electrode(args.voxel)
    vals, counts = np.unique(seg.values, return_counts=True)
    names = seg.attrs["phases"]
    fr = {names[int(v)]: c / seg.size for v, c in zip(vals, counts)}
    tau_pore, tau_all = (tortuosity_factor(seg, phase=ph, device=args.device).tau
                         for ph in (["pore", "crack"], ["pore", "crack", "cbd"]))
    p = nmc811_seed001()
    kw = dict(c_rate=0.5, cutoff=3.5, parameters=p, separator=25.0, device=args.device,
              snapshots=())
    t0 = time.perf_counter()
    cal = calibrate_film_resistivity(seg, target=43.8e-3, **kw)
    rho = cal.resistivity
    runs = {"pristine": cal.pristine, "cei": cal.cei}
    for name in ("thick_cei", "cbd_clogging", "full_clogging"):
        runs[name] = discharge(seg, scenario=scenario(name, seg, film_resistivity=rho), **kw)
        print(name, runs[name].capacity, runs[name].status, flush=True)
    total = time.perf_counter() - t0
    rows = ["| scenario | capacity mAh/g (seed) | mAh/cm^2 | mean penalty mV (seed) | "
            "c_e top-bottom % (seed) | steps | wall s | Li error | plane-current error |",
            "|---|---|---|---|---|---|---|---|---|"]
    pen = {}
    for name, r in runs.items():
        pen[name] = 1e3 * mean_voltage_penalty(runs["pristine"], r)
        s_cap, s_pen, s_grad = SEED001[name]
        rows.append(f"| {name} | {r.capacity:.1f} ({s_cap:g}) | {r.areal_capacity:.3f} | "
                    f"{pen[name]:.1f} ({'' if s_pen is None else f'{s_pen:g}'}) | "
                    f"{_gradient(r):.1f} ({'' if s_grad is None else f'{s_grad:g}'}) | "
                    f"{r.steps} | {r.wall_time_s:.0f} | {r.max_lithium_error:.1e} | "
                    f"{r.max_plane_current_error:.1e} |")
    cap = {k: r.capacity for k, r in runs.items()}
    middle = [cap["cei"], cap["cbd_clogging"], cap["full_clogging"]]
    grad = {k: _gradient(r) for k, r in runs.items()}
    checks = {
        "pristine highest": cap["pristine"] == max(cap.values()),
        "thick CEI lowest": cap["thick_cei"] == min(cap.values()),
        "middle three within 5 %": max(middle) / min(middle) - 1 <= 0.05,
        "penalty ratio thick / CEI in [1.6, 2.0]": 1.6 <= pen["thick_cei"] / pen["cei"] <= 2.0,
        "c_e gradient pristine < CBD clogging < full clogging":
            grad["pristine"] < grad["cbd_clogging"] < grad["full_clogging"],
    }
    lines = [f"- electrode: synthetic seed-001 stand-in, {seg.shape} voxels of {args.voxel} um "
             f"({' / '.join(f'{k} {v:.3f}' for k, v in fr.items())}), separator 25 um, "
             f"1C = 280 mAh/g x AM mass = {runs['pristine'].one_c:.3f} mA/cm^2, C/2 = "
             f"{runs['pristine'].current:.3f} mA/cm^2, cutoff 3.5 V, parameters "
             "`nmc811_seed001()`",
             f"- clogged CBD (default: no Li+ transport through it, notes/echem.md 1.4): "
             f"{runs['cbd_clogging'].excluded['electrolyte not connected to the separator']}"
             f" pore and crack voxels cut off behind it (pristine: "
             f"{runs['pristine'].excluded['electrolyte not connected to the separator']})",
             f"- electrolyte tortuosity factor along z (`transport.tortuosity_factor`): "
             f"pores and cracks {tau_pore:.2f}, with the CBD {tau_all:.2f} (seed 001: flow "
             f"tortuosity ~1.5, and an 8 % salt gradient at C/2)",
             f"- CEI resistivity calibrated to the seed's 43.8 mV: rho = {rho:.3g} Ohm m "
             f"({len(cal.evaluations)} film runs; reached {1e3 * cal.penalty:.2f} mV)",
             f"- penalty ratio thick / CEI: {pen['thick_cei'] / pen['cei']:.2f} (seed 1.81)",
             f"- total wall time {total:.0f} s for {len(cal.evaluations) + 4} discharges", "",
             *rows, "", "Checks (issue 11):", ""]
    lines += [f"- {k}: {'yes' if v else 'NO'}" for k, v in checks.items()]
    lines += ["", "Absolute capacities depend on parameters seed 001 does not print (its Tables "
              "S2/S3); the ordering and the ratios are what the comparison can test."]
    _figure(runs, args)
    _append(f"Seed 001 scenarios at {args.voxel} um voxels", command, lines)


def _figure(runs, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in runs.items():
        ax[0].plot(r.curve.capacity, r.curve.voltage, label=name)
        ax[1].plot(r.profile.distance, r.profile, label=name)
    ax[0].set(xlabel="capacity [mAh/g]", ylabel="voltage [V]", title="C/2 lithiation")
    ax[1].set(xlabel="distance to the collector [um]", ylabel="state of discharge",
              title="lithiation profile at the cutoff")
    ax[0].legend()
    fig.tight_layout()
    out = RESULTS.parent / f"echem_seed001_{args.voxel:g}um.png"
    fig.savefig(out, dpi=110)
    print("figure", out)


def study_seed002(args, command):
    from distributed import Client, LocalCluster

    from electromicro_dask.echem import discharge, scenario
    from electromicro_dask.synth import electrode
    from electromicro_dask.transport import sweep

    h = args.voxel
    shape = (int(round(args.thickness / h)), int(round(args.width / h)),
             int(round(args.width / h)))
    seg = electrode(shape, h, fractions={"am": 0.5, "cbd": 0.2, "pore": 0.3},
                    particle_radius_um=(3.0, 0.6), seed=2).phases.compute()
    gammas = (0.02, 0.04, 0.06, 0.09, 0.12, 0.25, 0.5)
    currents = (1.0, 3.0, 6.0, 8.0, 10.0, 12.0)
    common = dict(phases=seg, cutoff=3.0, separator=25.0, device=args.device, t_max=20000.0)
    cases = [dict(common, current=6.0, scenario=scenario("homogenised_cbd", cbd_gamma=g))
             for g in gammas]
    cases += [dict(common, current=i, scenario=scenario("homogenised_cbd", cbd_gamma=0.12))
              for i in currents]
    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        table = sweep(discharge, cases, client=client)
    wall = time.perf_counter() - t0
    table["gamma"] = 0.5 / table["cbd_tortuosity"]
    g_rows = table.iloc[:len(gammas)]
    i_rows = table.iloc[len(gammas):]
    lines = [f"- cut-out: synthetic electrode {seg.shape} voxels of {h} um (AM / CBD / pore "
             "0.5 / 0.2 / 0.3), CBD homogenised with inner porosity 0.5 (seed 002 eqs. 2-4), "
             "cutoff 3.0 V, Chen2020 set, separator 25 um",
             f"- {len(cases)} discharges as independent tasks through `transport.sweep` on a "
             f"LocalCluster of {args.workers} workers: {wall:.0f} s wall", "",
             "| gamma | tau_CBD | 1/tau (Table 3) | capacity mAh/g at 6 mA/cm^2 | status |",
             "|---|---|---|---|---|"]
    for _, r in g_rows.iterrows():
        lines.append(f"| {r.gamma:.3g} | {0.5 / r.gamma:.3g} | {2 * r.gamma:.3g} | "
                     f"{r.capacity:.1f} | {r.status} |")
    lines += ["", "| current mA/cm^2 | C-rate | capacity mAh/g (gamma 0.12) | status |",
              "|---|---|---|---|"]
    for _, r in i_rows.iterrows():
        lines.append(f"| {r.current:g} | {r.c_rate:.2f} | {r.capacity:.1f} | {r.status} |")
    mono_g = bool(np.all(np.diff(g_rows.capacity.values) > 0))
    mono_i = bool(np.all(np.diff(i_rows.capacity.values) < 0))
    lines += ["", f"- capacity rises monotonically with gamma at 6 mA/cm^2: "
              f"{'yes' if mono_g else 'NO'}",
              f"- capacity falls monotonically with current at gamma 0.12: "
              f"{'yes' if mono_i else 'NO'}"]
    _append(f"Seed 002 gamma and current sweeps at {h} um voxels", command, lines)


def study_cost(args, command):
    import resource

    from electromicro_dask.echem import discharge
    from electromicro_dask.echem.reference import pybamm_discharge
    from electromicro_dask.synth import electrode

    lines = ["| voxels (electrode) | voxels with separator | simulated s | status | steps | "
             "Newton | CG/triangular solves | wall s | wall s per simulated min | "
             "peak RSS MiB | capacity mAh/g |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in args.size:
        seg = electrode((n, n, n), 1.0, seed=3).phases.compute()
        # --t-max: the first part of the discharge only (a full C/2 run is ~2 h simulated;
        # on 2 CPU cores at 64^3 it would take hours): the cost per simulated minute
        r = discharge(seg, c_rate=0.5, cutoff=3.5, separator=25.0, device=args.device,
                      t_max=args.t_max)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t_end = float(r.curve.time[-1])
        lines.append(f"| {n}^3 | {r.voxels} | {t_end:.0f} | {r.status} | {r.steps} | "
                     f"{r.newton_iterations} | {r.pcg_iterations} | {r.wall_time_s:.0f} | "
                     f"{60 * r.wall_time_s / t_end:.1f} | {rss:.0f} | {r.capacity:.1f} |")
        print(lines[-1], flush=True)
    t = time.perf_counter()
    pybamm_discharge(64.0, 0.55, 0.3, 0.5, 1.0, cutoff=3.5)
    pb = time.perf_counter() - t
    lines += ["", f"- PyBaMM 1D DFN half cell (64 um, same Chen2020 functions): {pb:.2f} s",
              "- NREL echemAMR reference run (published): 1.36 million unknowns, 170 steps, "
              "6007 s on 36 cores"]
    _append("Cost of one C/2 discharge (CPU)", command, lines)


def study_slab(args, command):
    """Solid-diffusion-limited slabs at several voxel sizes against the analytic sheet."""
    from scipy.optimize import brentq

    from electromicro_dask.core import as_segmentation
    from electromicro_dask.echem import chen2020, discharge, scenario
    from electromicro_dask.echem.parameters import FARADAY, _i0_chen2020
    from electromicro_dask.echem.reference import plane_sheet_surface

    d_s, thick, nz = 5e-16, 4e-6, 6
    # fast kinetics and electrolyte: the voltage is the OCP of the slabs' surface
    p = chen2020(d_s=d_s, sigma_am=5.0,
                 exchange_current=lambda ce, cs, cm, T: 1e3 * _i0_chen2020(ce, cs, cm, T),
                 lithium_exchange_current=lambda ce, T: ce * 0 + 100.0,
                 kappa_e=lambda c, T: c * 0 + 5.0, d_e=lambda c, T: c * 0 + 1e-8)
    lines = ["| voxel um | voxels across the slab | capacity mAh/g (analytic) | error % | "
             "voltage RMS error mV | max mV | steps | wall s |", "|---|---|---|---|---|---|---|---|"]
    for h in args.voxels:
        n_am = int(round(thick * 1e6 / h))
        a = np.zeros((nz, 1, n_am + 1), "uint8")
        a[:, :, :n_am] = 2
        a[-1, :, :n_am] = 3  # inert cap: each slab reacts through its side face only
        seg = as_segmentation(a, phases={0: "pore", 2: "am", 3: "crack"},
                              voxel_size=(2.0, h, h))
        layers = np.broadcast_to(np.arange(nz)[:, None, None], seg.shape).copy()
        r = discharge(seg, c_rate=0.5, cutoff=3.6, parameters=p, area_factor=1.0,
                      separator=2.0, particles=layers, device=args.device,
                      scenario=scenario("pristine", cracks="inert"))
        flux = r.current * 10.0 * (n_am + 1) * h * h / ((nz - 1) * 2.0 * h) / FARADAY

        def ocv(t):
            c = plane_sheet_surface(np.atleast_1d(t), flux, thick, d_s, p.sto_init * p.c_s_max)
            return p.ocv(np.minimum(c / p.c_s_max, 1 - 1e-9))

        t_cut = brentq(lambda t: float(ocv(t)[0]) - 3.6, 1.0, 1e5)
        q_ref = r.capacity * t_cut / float(r.curve.time[-1])
        t = r.curve.time.values
        sel = (t > 0) & (t < t_cut)
        err = r.curve.voltage.values[sel] - ocv(t[sel])
        lines.append(f"| {h:g} | {n_am} | {r.capacity:.2f} ({q_ref:.2f}) | "
                     f"{100 * (r.capacity / q_ref - 1):+.1f} | "
                     f"{1e3 * np.sqrt(np.mean(err ** 2)):.1f} | {1e3 * np.abs(err).max():.1f} | "
                     f"{r.steps} | {r.wall_time_s:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", "- AM slabs 4 um thick, D_s = 5e-16 m^2/s (seed 001's set), C/2 to 3.6 V, "
              "kinetics and electrolyte made fast so the voltage is the OCP of the surface; "
              "reference: the plane sheet filled at constant flux through one face "
              "(`echem.reference.plane_sheet_surface`, Carslaw & Jaeger 3.3)"]
    _append("Solid-diffusion-limited slabs against the analytic surface", command, lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", choices=("seed001", "seed002", "cost", "slab"))
    ap.add_argument("--voxel", type=float, default=2.0, help="voxel size [um]")
    ap.add_argument("--thickness", type=float, default=60.0, help="seed002 cut-out [um]")
    ap.add_argument("--width", type=float, default=20.0, help="seed002 cut-out [um]")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, nargs="+", default=[32])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--t-max", type=float, default=None,
                    help="cost: stop each discharge after this many simulated seconds")
    ap.add_argument("--voxels", type=float, nargs="+", default=[2.0, 1.0, 0.5, 0.25, 0.125],
                    help="slab: voxel sizes [um]")
    args = ap.parse_args(argv)
    command = "python benchmarks/bench_echem.py " + " ".join(argv or sys.argv[1:])
    {"seed001": study_seed001, "seed002": study_seed002, "cost": study_cost,
     "slab": study_slab}[args.study](args, command)


if __name__ == "__main__":
    main()
