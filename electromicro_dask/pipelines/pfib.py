"""Seed 001's PFIB-SEM study: several samples segmented the same way and compared.

For each sample (seed 001: pristine, cycled to 4.4 V and to 4.7 V):

1. ``truth``: a synthetic PFIB electrode with cracked secondary particles
   (:func:`synth.pfib_electrode`, crack growth ``cycling``) whose CBD is detached from the
   particles in patches (:func:`synth.detach_cbd`, contact loss ``contact_loss``);
2. ``stack``: its serial sections with pore back, curtaining and noise
   (:func:`synth.pfib_stack`), optionally median-denoised in-plane;
3. ``phases``: pore-back correction and the four-phase segmentation
   (:func:`segment.pfib_phases`: am, crack, cbd, pore);
4. ``measures``: phase fractions, crack volume per particle volume (Fig. 2C) and NMC-CBD
   contact area per particle surface (Fig. 2D), of the segmentation and of the truth;
   ``profile``: the phase fractions through the thickness (Fig. 1D); ``cbd_network``: the
   CBD's connectivity (largest aggregate's share, Fig. 6);
5. ``wetting`` (for the samples named in ``wetting_samples``): the segmentation resampled
   to cubic ``wetting_voxel_um`` voxels and filled with electrolyte from the separator face
   (:func:`transport.wetting`, seed 001 Fig. S7); the saturation is stored on the sample's
   grid with the wetted fraction against time in its attrs;
6. ``flow`` (for ``flow_samples``): permeability and flow tortuosity of pore + crack along z
   on the same cubic voxels (seed 001 Table S1).

The ``study`` table puts the samples side by side with every quantity's relative change
against the ``reference`` sample, for the segmentation and for the truth, so the report
shows how much of a known change the chain recovers.

A measured sample names its stack instead (``stack``: a TIFF stack or folder, HDF5, NPY or
raw file read by :func:`electromicro_dask.io.read`, slices in milling order along z;
``stack_voxel_um`` unless the file records it; the stacks of one study share their shape
and voxel size, as same-size cut-outs do): steps 2-6 run on it unchanged and the study has
no truth rows for it.
"""

from __future__ import annotations

import numpy as np

from .. import measure, segment
from ..core.errors import InputError
from ..core.store import open_store, open_table
from ..synth.pfib import detach_cbd, pfib_electrode, pfib_stack
from .stage import Stage, check_groups

PARAMETERS = {
    # sample name -> its settings; cycling: relative crack growth; contact_loss: share of
    # the NMC-CBD contact cut (seed 001 Fig. 2: cracks +9 % / +24 %, contact -10 % / -20 %)
    "samples": {
        "pristine": {"cycling": 0.0, "contact_loss": 0.0},
        "v4_4": {"cycling": 0.09, "contact_loss": 0.10},
        "v4_7": {"cycling": 0.24, "contact_loss": 0.20},
    },
    "reference": "pristine",
    "shape": [48, 128, 128],          # voxels (z = milling axis)
    "voxel_size_um": [0.1, 0.05, 0.05],
    "particle_radius_um": [0.8, 0.15],
    "crack_fraction": 0.04,           # crack volume per particle volume, pristine
    "crack_width_um": 0.15,
    "crack_margin_um": 0.2,
    "gap_voxels": 3,                  # thickness of a CBD detachment gap
    "cell_voxels": 8,                 # edge of a detachment patch
    "denoise_voxels": 0,              # in-plane median size before segmenting (0: none)
    "pore_back": True,
    "seed": 1,                        # one electrode, seen before and after cycling
    "chunk": [48, 64, 64],
    # electrolyte wetting (lattice Boltzmann, a GPU job at full size): samples, cubic voxel
    # size of the lattice, contact angle [deg], step limit
    "wetting_samples": [],
    "wetting_voxel_um": 0.1,
    "contact_angle": 45.0,
    "wetting_max_steps": 20000,
    # Stokes flow through pore + crack along z (seed 001 Table S1: flow tortuosity about
    # 1.5), on cubic ``wetting_voxel_um`` voxels too; samples, step limit
    "flow_samples": [],
    "flow_max_steps": 50000,
}

_SAMPLE_KEYS = ("cycling", "contact_loss", "seed", "stack", "stack_voxel_um")


def validate(params):
    samples = params["samples"]
    check_groups(samples, "parameters.samples", _SAMPLE_KEYS, what="samples")
    if params["reference"] not in samples:
        raise InputError("parameters.reference", f"one of {sorted(samples)}, got "
                         f"{params['reference']!r}")
    for name, cfg in samples.items():
        path = (cfg or {}).get("stack")
        if path is not None and not _exists(path):
            raise InputError(f"parameters.samples.{name}.stack",
                             f"an existing file or folder of the measured stack, got {path!r}")
    for key in ("wetting_samples", "flow_samples"):
        unknown = set(params[key]) - set(samples)
        if unknown:
            raise InputError(f"parameters.{key}", f"names among {sorted(samples)}, got "
                             f"{sorted(unknown)}")


def _exists(path):
    import glob
    import os

    return os.path.exists(os.fspath(path)) or bool(glob.glob(os.fspath(path)))


def read_stack(path, voxel_um, chunk):
    """A measured PFIB-SEM stack (slices along z in milling order), float32."""
    from ..io import read

    img = read(path, voxel_size=voxel_um, chunks=tuple(chunk))
    if img.dims != ("z", "y", "x"):
        raise InputError("stack", f"a 3D stack (z, y, x), got dims {img.dims}")
    return img.astype(np.float32).assign_attrs(long_name="measured PFIB-SEM stack")


def make_truth(shape, voxel_size_um, particle_radius_um, crack_fraction, crack_width_um,
               crack_margin_um, cycling, contact_loss, gap_voxels, cell_voxels, seed, chunk):
    ds = pfib_electrode(tuple(shape), tuple(voxel_size_um),
                        particle_radius_um=tuple(particle_radius_um),
                        crack_fraction=crack_fraction, cycling=cycling,
                        crack_width_um=crack_width_um, crack_margin_um=crack_margin_um,
                        seed=seed, chunks=tuple(chunk))
    truth = ds["phases"]
    if contact_loss:
        truth = detach_cbd(truth, contact_loss, gap_voxels=gap_voxels, cell_voxels=cell_voxels,
                           seed=seed)
    return truth.assign_attrs(long_name="synthetic truth")


def make_stack(truth, seed):
    return pfib_stack(truth, seed=seed)


def segment_stack(stack, denoise_voxels, pore_back):
    from ..filters import median

    img = stack
    if denoise_voxels and int(denoise_voxels) > 1:
        img = median(stack, size_voxels=(1, int(denoise_voxels), int(denoise_voxels)))
    return segment.pfib_phases(img, pore_back=bool(pore_back))


def _quantities(seg):
    f = measure.volume_fractions(seg)
    out = {f"fraction_{p}": float(v) for p, v in f.items()}
    out["crack_per_particle"] = measure.crack_fraction(seg)
    out["nmc_cbd_contact_per_particle_surface"] = measure.contact_area(seg, "am", "cbd")
    out["cbd_largest_aggregate_share"] = measure.connectivity(seg, "cbd").largest_cluster_fraction
    return out


def measures(phases, truth=None):
    """Seed 001 Fig. 2 quantities of the segmentation and of the truth (synthetic samples)."""
    out = {"segmented": _quantities(phases)}
    if truth is not None:
        out["truth"] = _quantities(truth)
    return out


def wet(phases, voxel_um, contact_angle, max_steps):
    """Electrolyte saturation after filling from the separator face, on the sample's grid."""
    from ..filters import resample
    from ..transport import wetting

    cubic = resample(phases, float(voxel_um), method="nearest")
    r = wetting(cubic, phase=["pore", "crack"], contact_angle=float(contact_angle),
                max_steps=int(max_steps), record_every=50)
    sat = r.saturation.sel({d: phases[d].values for d in phases.dims}, method="nearest")
    sat = sat.assign_coords({d: phases[d].values for d in phases.dims})
    h = r.history
    return sat.chunk(dict(zip(phases.dims, phases.data.chunksize))).assign_attrs(
        wetted_fraction=r.wetted_fraction,
        t97_s=float(r.t97_s) if np.isfinite(r.t97_s) else None,   # JSON has no NaN
        trapped_fraction=r.trapped_fraction, n_trapped=r.n_trapped, step_s=r.step_s,
        steps=r.steps, converged=r.converged, contact_angle=r.contact_angle,
        voxel_um=float(voxel_um), history_time_s=[float(v) for v in h["time"].values],
        history_wetted_fraction=[float(v) for v in h["wetted_fraction"].values])


def flow(phases, voxel_um, max_steps):
    """Permeability and flow tortuosity through pore + crack along z (cubic voxels)."""
    from ..filters import resample
    from ..transport import flow_tortuosity

    r = flow_tortuosity(resample(phases, float(voxel_um), method="nearest"),
                        phase=["pore", "crack"], axis="z", max_steps=int(max_steps))
    return {"permeability_um2": r.permeability, "flow_tortuosity": r.tau,
            "porosity": r.porosity, "converged": r.converged, "steps": r.iterations,
            "voxel_um": float(voxel_um)}


def profile(phases):
    return measure.profile(phases, axis="z")


def study(*tables, names, reference):
    """Samples side by side, with the relative change against the reference sample."""
    import pandas as pd

    rows = []
    for name, t in zip(names, tables):
        for source in ("segmented", "truth"):
            if source in t:  # measured samples have no truth
                rows.append({"sample": name, "source": source, **t[source]})
    df = pd.DataFrame(rows)
    for q in ("crack_per_particle", "nmc_cbd_contact_per_particle_surface",
              "cbd_largest_aggregate_share"):
        ref = df[df["sample"] == reference].set_index("source")[q]
        df[f"{q}_change_pct"] = [100.0 * (v / ref[s] - 1.0) if s in ref.index else np.nan
                                 for v, s in zip(df[q], df["source"])]
    return df


def stages(p):
    names = list(p["samples"])
    out = []
    for s in names:
        cfg = dict(p["samples"][s] or {})
        seed = int(cfg.get("seed", p["seed"]))
        pre = f"{s}_"
        truth = ()
        if cfg.get("stack") is not None:
            voxel = cfg.get("stack_voxel_um")
            out.append(Stage(f"{pre}stack", read_stack, params=dict(
                path=str(cfg["stack"]), chunk=list(p["chunk"]),
                voxel_um=None if voxel is None else
                ([float(v) for v in voxel] if isinstance(voxel, (list, tuple)) else float(voxel)))))
        else:
            truth = (f"{pre}truth",)
            out += [
                Stage(f"{pre}truth", make_truth, params=dict(
                    shape=list(p["shape"]), voxel_size_um=list(p["voxel_size_um"]),
                    particle_radius_um=list(p["particle_radius_um"]),
                    crack_fraction=p["crack_fraction"], crack_width_um=p["crack_width_um"],
                    crack_margin_um=p["crack_margin_um"],
                    cycling=float(cfg.get("cycling", 0.0)),
                    contact_loss=float(cfg.get("contact_loss", 0.0)),
                    gap_voxels=p["gap_voxels"], cell_voxels=p["cell_voxels"], seed=seed,
                    chunk=list(p["chunk"]))),
                Stage(f"{pre}stack", make_stack, inputs=truth, params=dict(seed=seed)),
            ]
        out += [
            Stage(f"{pre}phases", segment_stack, inputs=(f"{pre}stack",),
                  params=dict(denoise_voxels=p["denoise_voxels"], pore_back=p["pore_back"])),
            Stage(f"{pre}measures", measures, inputs=(f"{pre}phases",) + truth),
            Stage(f"{pre}profile", profile, inputs=(f"{pre}phases",)),
        ]
        if s in p["flow_samples"]:
            out.append(Stage(f"{pre}flow", flow, inputs=(f"{pre}phases",), params=dict(
                voxel_um=p["wetting_voxel_um"], max_steps=p["flow_max_steps"])))
        if s in p["wetting_samples"]:
            out.append(Stage(f"{pre}wetting", wet, inputs=(f"{pre}phases",), params=dict(
                voxel_um=p["wetting_voxel_um"], contact_angle=p["contact_angle"],
                max_steps=p["wetting_max_steps"])))
    out.append(Stage("study", study, inputs=tuple(f"{s}_measures" for s in names),
                     params=dict(names=names, reference=p["reference"])))
    return out


def summarize(store, params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = open_store(store)
    names = list(params["samples"])
    df = open_table(store, "study")
    seg = df[df["source"] == "segmented"].set_index("sample")
    tru = df[df["source"] == "truth"].set_index("sample")
    changes = {}

    def pct(table, n, c):
        v = float(table.loc[n, c]) if n in table.index else float("nan")
        return v if np.isfinite(v) else None  # JSON has no NaN

    for q in ("crack_per_particle", "nmc_cbd_contact_per_particle_surface"):
        c = f"{q}_change_pct"
        changes[q] = {n: {"segmented_pct": pct(seg, n, c), "truth_pct": pct(tru, n, c)}
                      for n in names}
    summary = {"reference": params["reference"], "relative_changes": changes}
    tables = {"study (segmented)": seg.round(4)}
    if len(tru):
        tables["study (truth)"] = tru.round(4)
    figures = {}
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, phase in zip(axes, ("am", "crack", "cbd", "pore")):
        for n in names:
            prof = open_table(store, f"{n}_profile")
            if phase in prof:
                ax.plot(prof.index, prof[phase], label=n)
        ax.set_title(phase)
        ax.set_xlabel("z (um)")
    axes[0].set_ylabel("volume fraction")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    figures["profiles"] = fig
    fig2, ax2 = plt.subplots(2, len(names), figsize=(4 * len(names), 8), squeeze=False)
    for k, n in enumerate(names):
        mid = ds[f"{n}_stack"].sizes["z"] // 2
        ax2[0, k].imshow(ds[f"{n}_stack"].isel(z=mid).values, cmap="gray")
        ax2[0, k].set_title(f"{n}: PFIB slice")
        ax2[1, k].imshow(ds[f"{n}_phases"].isel(z=mid).values, cmap="viridis", vmin=0, vmax=3)
        ax2[1, k].set_title(f"{n}: am / crack / cbd / pore")
        for a in ax2[:, k]:
            a.set_axis_off()
    fig2.tight_layout()
    figures["slices"] = fig2
    fig3, ax3 = plt.subplots(figsize=(6, 4))
    for n in names:
        v = ds[f"{n}_stack"].data
        h, edges = np.histogram(np.asarray(v[::2, ::4, ::4]), bins=100)
        ax3.plot(0.5 * (edges[1:] + edges[:-1]), h, label=n)
    ax3.set_xlabel("grey value")
    ax3.legend(fontsize=7)
    fig3.tight_layout()
    figures["histograms"] = fig3
    figures["cbd_network"] = _cbd_network_figure(ds, names, seg, plt)
    flow_names = [n for n in names if n in params["flow_samples"]]
    if flow_names:
        import pandas as pd

        flows = pd.DataFrame({n: open_table(store, f"{n}_flow") for n in flow_names}).T
        tables["flow (Table S1)"] = flows
        summary["flow_tortuosity"] = {n: float(flows.loc[n, "flow_tortuosity"])
                                      for n in flow_names}
    wet_names = [n for n in names if n in params["wetting_samples"]]
    if wet_names:
        fig4, ax4 = plt.subplots(figsize=(6, 4))
        summary["wetting"] = {}
        for n in wet_names:
            a = ds[f"{n}_wetting"].attrs
            ax4.plot(np.asarray(a["history_time_s"]) * 1e6, a["history_wetted_fraction"], label=n)
            summary["wetting"][n] = {k: a[k] for k in ("wetted_fraction", "t97_s",
                                                       "trapped_fraction", "n_trapped")}
        ax4.axhline(0.97, ls=":", c="k")
        ax4.set_xlabel("time (us)")
        ax4.set_ylabel("wetted pore fraction")
        ax4.set_title(f"electrolyte wetting, {params['contact_angle']:g} deg")
        ax4.legend(fontsize=7)
        fig4.tight_layout()
        figures["wetting"] = fig4
    return summary, figures, tables


def _cbd_network_figure(ds, names, table, plt):
    """Seed 001 Fig. 6: each CBD aggregate its own colour on the middle slice (the largest
    one red), with the largest aggregate's share of the CBD volume."""
    import dask.array as da

    from ..core.progress import compute
    from ..label import connected_components

    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, n in zip(axes[0], names):
        labels = connected_components(ds[f"{n}_phases"], phase="cbd")
        sl, counts = compute(labels.isel(z=labels.sizes["z"] // 2).data,
                             da.bincount(labels.data.ravel()), label="CBD aggregates")
        counts[0] = 0
        largest = int(np.argmax(counts))
        colours = rng.uniform(0.25, 0.9, size=(int(sl.max()) + 1, 3))
        colours[0] = 1.0
        if largest:
            colours[largest] = (0.85, 0.1, 0.1)
        ax.imshow(colours[sl], interpolation="nearest")
        share = float(table.loc[n, "cbd_largest_aggregate_share"])
        ax.set_title(f"{n}: CBD aggregates, largest {100 * share:.1f} %")
        ax.set_axis_off()
    fig.tight_layout()
    return fig
