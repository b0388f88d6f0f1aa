"""The ToF-SIMS pipeline of seed 000: spectral cube -> SI images -> filtered ->
segmented (phases + interphases) -> agglomerates -> report.

cube (synthetic with ground truth, or an imzML file) -> SI images of the phase-specific
and reference species (m/z windows) -> median and non-local-means filtering, relative
intensities, argmax, pores from the total-ion image, interphases from reference ions
(section 2.1) -> a second segmentation with alternative reference ions (Fig. 4: PO3- vs
P18OO2- for the CEI) -> watershed of the agglomerate phase, equivalent diameters, aspect
ratios, interface coverage (Figs. 2B, 3B) -> fractions, interface lengths, agreement with
the truth. The segmentation is stored as ``phases``, the input of the SliceGAN pipeline.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import measure
from ..core.errors import InputError
from ..core.store import open_store, open_table
from ..sims import (ANODE, CATHODE, agglomerate_properties, interface_lengths,
                    label_agglomerates, rgb_overlay, segment_sims, si_images,
                    species_windows)
from ..synth.sims import sims_cube, sims_section
from .stage import Stage

PARAMETERS = {
    "kind": "anode",                  # "anode" (graphite/silicon/SEI) or "cathode" (NMC/CBD/CEI)
    "input": "",                      # an imzML file; empty: a synthetic cube with ground truth
    "input_voxel_size_um": 0.0,       # pixel size of the input file (0: from the file)
    "size": 512,                      # pixels per edge of the synthetic section
    "voxel_size_um": 0.125,
    "n_channels": 256,
    "mz_range": [15.0, 95.0],
    "fractions": {},                  # {"silicon"/"nmc": f, "pore": f}; empty: defaults of kind
    "agglomerate_radius_um": [1.5, 0.4],
    "interphase_thickness_um": 0.25,
    "counts_per_pixel": 60.0,
    "background_counts": 2.0,
    "blur_um": 0.1,
    "artefact_range_um": 1.0,
    "half_width": 0.2,                # m/z half width of every SI window
    "phases": {},                     # {phase: [species]}; empty: defaults of kind
    "interphases": {},                # {interphase: [reference species]}; empty: defaults
    "alternative_interphases": {},    # a second choice of reference ions (Fig. 4)
    "agglomerate_phase": "",          # empty: silicon (anode) / nmc (cathode)
    "dominance": 1.0,
    "median_size_voxels": 3,
    "nl_means": True,
    "watershed": "section",           # "section" (one task, h-maxima) or "label" (chunked)
    "h_voxels": 0.5,
    "chunk": 256,                     # pixels per chunk edge (y, x)
    "mz_chunk": 64,
    "seed": 0,
}


def _defaults(p):
    d = ANODE if p["kind"] == "anode" else CATHODE
    phases = p["phases"] or d["phases"]
    inter = p["interphases"] or d["interphases"]
    agg = p["agglomerate_phase"] or d["agglomerate_phase"]
    return phases, inter, agg


def validate(params):
    if params["kind"] not in ("anode", "cathode"):
        raise InputError("parameters.kind", f"'anode' or 'cathode', got {params['kind']!r}")
    if params["watershed"] not in ("section", "label"):
        raise InputError("parameters.watershed", f"'section' or 'label', got {params['watershed']!r}")
    if not params["input"] and params["size"] < 32:
        raise InputError("parameters.size", f"at least 32 pixels, got {params['size']}")
    phases, inter, agg = _defaults(params)
    if agg not in phases:
        raise InputError("parameters.agglomerate_phase", f"one of the phases {sorted(phases)}, got {agg!r}")
    if params["alternative_interphases"] and set(params["alternative_interphases"]) != set(inter):
        raise InputError("parameters.alternative_interphases",
                         f"references for the same interphases {sorted(inter)}")


def make_truth(kind, size, voxel_size_um, fractions, agglomerate_radius_um,
               interphase_thickness_um, chunk, seed):
    """Synthetic section: true phases and agglomerate ids."""
    ds = sims_section((size, size), voxel_size_um, kind=kind, fractions=fractions or None,
                      agglomerate_radius_um=tuple(agglomerate_radius_um),
                      interphase_thickness_um=interphase_thickness_um,
                      seed=seed, chunks=(chunk, chunk))
    return ds.rename({"phases": "truth_phases", "agglomerates": "truth_agglomerates"})


def make_cube(truth_phases, counts_per_pixel, background_counts, blur_um, artefact_range_um,
              mz_range, n_channels, chunk, mz_chunk, seed):
    """Poisson-counted spectral cube of the true section."""
    return sims_cube(truth_phases, counts_per_pixel=counts_per_pixel,
                     background_counts=background_counts, blur_um=blur_um,
                     artefact_range_um=artefact_range_um, mz_range=tuple(mz_range),
                     n_channels=n_channels, seed=seed + 1, chunks=(chunk, chunk, mz_chunk))


def read_cube(path, voxel_size_um):
    """A measured cube from an imzML file."""
    from ..io.spectral import read_imzml

    return read_imzml(path, voxel_size=voxel_size_um or None)


def make_si(cube, species, half_width, chunk):
    """SI images of the species (variables ``si_<species>``) and the total-ion image."""
    ds = si_images(cube, species_windows(species, half_width)).chunk({"y": chunk, "x": chunk})
    # One pass over the cube for all windows: the SI stack (4 bytes per pixel and
    # species, a 2D section) is held while its layers are saved one by one.
    ds = ds.persist()
    out = {f"si_{n}": ds.si.isel(mz=i).drop_vars(["mz", "species"]).assign_attrs(
        species=n, mz=float(ds.si.mz[i]), half_width=half_width)
        for i, n in enumerate(species)}
    out["total"] = ds.total
    return xr.Dataset(out)


def _si_dataset(arrays, species):
    *images, total = arrays
    return xr.Dataset({n: a for n, a in zip(species, images)}), total


def segment(*arrays, species, phases, interphases, dominance, median_size_voxels, nl_means):
    """Filtered relative intensities and the segmentation (inputs: the SI images of
    ``species`` in order, then the total-ion image)."""
    si, total = _si_dataset(arrays, species)
    return segment_sims(si, phases, interphases, total=total, dominance=dominance,
                        median_size_voxels=median_size_voxels, nl_means=nl_means,
                        return_filtered=True)


def segment_alt(*arrays, species, phases, interphases, dominance, median_size_voxels,
                nl_means):
    """The segmentation with the alternative reference ions."""
    si, total = _si_dataset(arrays, species)
    out = segment_sims(si, phases, interphases, total=total, dominance=dominance,
                       median_size_voxels=median_size_voxels, nl_means=nl_means)
    out.name = "phases_alt"
    return out


def agglomerate_labels(phases, phase, method, h_voxels):
    """Watershed of the agglomerate phase."""
    return label_agglomerates(phases, phase, method=method, h_voxels=h_voxels)


def agglomerate_table(labels, phases, phase):
    """Per-agglomerate size, shape and interface coverage."""
    return agglomerate_properties(labels, phases, phase)


def truth_agglomerate_table(truth_agglomerates, truth_phases, phase):
    """The same properties of the true agglomerates."""
    return agglomerate_properties(truth_agglomerates, truth_phases, phase)


def fractions(phases):
    """Area fraction of each phase."""
    return measure.volume_fractions(phases).rename("fraction").rename_axis("phase").to_frame()


def agreement(phases, truth_phases):
    """Pixel agreement and Jaccard per phase against the truth."""
    return measure.compare(phases, truth_phases)


def stages(p):
    phases, inter, agg = _defaults(p)
    alt = p["alternative_interphases"]
    species = sorted({s for v in (*phases.values(), *inter.values(), *alt.values()) for s in v})
    synthetic = not p["input"]
    si_vars = (*[f"si_{n}" for n in species], "total")
    seg_params = dict(species=species, phases=phases, dominance=p["dominance"],
                      median_size_voxels=p["median_size_voxels"], nl_means=p["nl_means"])
    out = []
    if synthetic:
        out += [
            Stage("truth", make_truth, params=dict(
                kind=p["kind"], size=p["size"], voxel_size_um=p["voxel_size_um"],
                fractions=p["fractions"], agglomerate_radius_um=p["agglomerate_radius_um"],
                interphase_thickness_um=p["interphase_thickness_um"], chunk=p["chunk"],
                seed=p["seed"]), outputs=("truth_phases", "truth_agglomerates")),
            Stage("cube", make_cube, inputs=("truth_phases",), params=dict(
                counts_per_pixel=p["counts_per_pixel"], background_counts=p["background_counts"],
                blur_um=p["blur_um"], artefact_range_um=p["artefact_range_um"],
                mz_range=p["mz_range"], n_channels=p["n_channels"], chunk=p["chunk"],
                mz_chunk=p["mz_chunk"], seed=p["seed"])),
        ]
    else:
        out.append(Stage("cube", read_cube, params=dict(path=p["input"],
                                                        voxel_size_um=p["input_voxel_size_um"])))
    out += [
        Stage("si", make_si, inputs=("cube",), params=dict(
            species=species, half_width=p["half_width"], chunk=p["chunk"]),
            outputs=si_vars),
        Stage("segmentation", segment, inputs=si_vars,
              params=dict(interphases=inter, **seg_params),
              outputs=("phases", *[f"rel_{n}" for n in (*phases, *inter)])),
    ]
    if alt:
        out.append(Stage("phases_alt", segment_alt, inputs=si_vars,
                         params=dict(interphases=alt, **seg_params)))
    out += [
        Stage("agglomerate_labels", agglomerate_labels, inputs=("phases",),
              params=dict(phase=agg, method=p["watershed"], h_voxels=p["h_voxels"])),
        Stage("agglomerates", agglomerate_table, inputs=("agglomerate_labels", "phases"),
              params=dict(phase=agg)),
        Stage("interfaces", interface_lengths, inputs=("phases",)),
        Stage("fractions", fractions, inputs=("phases",)),
    ]
    if synthetic:
        out += [
            Stage("fractions_truth", fractions, inputs=("truth_phases",)),
            Stage("agreement", agreement, inputs=("phases", "truth_phases")),
            Stage("agglomerates_truth", truth_agglomerate_table,
                  inputs=("truth_agglomerates", "truth_phases"), params=dict(phase=agg)),
        ]
        if alt:
            out.append(Stage("agreement_alt", agreement, inputs=("phases_alt", "truth_phases")))
    return out


# --------------------------------------------------------------------------- report


def _colours(names):
    palette = {"pore": "#111122", "graphite": "#d62728", "silicon": "#2ca02c",
               "sei": "#1f77b4", "cbd": "#7f7f7f", "nmc": "#ff7f0e", "cei": "#17becf"}
    return [palette.get(n, f"C{i}") for i, n in enumerate(names)]


def _show_seg(ax, seg, title, extent):
    from matplotlib.colors import ListedColormap

    table = seg.attrs["phases"]
    table = {int(k): v for k, v in table.items()}
    codes = sorted(table)
    cmap = ListedColormap(_colours([table[c] for c in codes]))
    ax.imshow(np.asarray(seg.values), cmap=cmap, vmin=-0.5, vmax=len(codes) - 0.5,
              interpolation="nearest", extent=extent)
    ax.set_title(title)
    ax.set_xlabel("x (um)")


def _as_dict(series):
    if hasattr(series, "columns"):
        series = series.iloc[:, 0]
    return {str(k): float(v) for k, v in series.items()}


def summarize(store, params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..core.store import tables

    ds = open_store(store)
    have = set(tables(store))
    phases_map, inter, agg = _defaults(params)
    seg = ds["phases"]
    table = {int(k): v for k, v in seg.attrs["phases"].items()}
    fr = open_table(store, "fractions")
    ag = open_table(store, "agglomerates")
    itf = open_table(store, "interfaces")
    summary = {
        "section": {"shape": list(ds["cube"].shape),
                    "pixel_size_um": float(ds.x[1] - ds.x[0]) if ds.sizes["x"] > 1 else None},
        "phases": table,
        "thresholds": seg.attrs.get("thresholds"),
        "fractions": _as_dict(fr),
        "agglomerates": {"phase": agg, "count": int(len(ag)),
                         "median_equivalent_diameter_um": float(ag.equivalent_diameter_um.median())
                         if len(ag) else None,
                         "median_aspect_ratio": float(ag.aspect_ratio.median()) if len(ag) else None},
        "interface_length_um": {f"{a}|{b}": float(v) for a, b, v in
                                zip(itf.phase_a, itf.phase_b, itf.length_um)},
    }
    tabs = {"fractions": fr, "interfaces": itf, "agglomerates (first 50)": ag.head(50)}
    if "agreement" in have:
        agr = open_table(store, "agreement")
        agt = open_table(store, "agglomerates_truth")
        ft = open_table(store, "fractions_truth")
        summary["truth"] = {
            "pixel_accuracy": agr["fraction_equal"], "jaccard": agr["jaccard"],
            "agglomerate_count": int(len(agt)),
            "median_equivalent_diameter_um": float(agt.equivalent_diameter_um.median())
            if len(agt) else None,
            "fractions": _as_dict(ft),
        }
        if "agreement_alt" in have:
            summary["truth"]["alternative"] = open_table(store, "agreement_alt")
    figs = {}
    extent = [float(ds.x[0]), float(ds.x[-1]), float(ds.y[-1]), float(ds.y[0])]

    # Fig. 1A/C: total-ion image and the RGB overlay of the filtered phase images.
    names = [*phases_map, *inter]
    rel = [ds[f"rel_{n}"] for n in names]
    rgb = rgb_overlay(*rel[:3]).values
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    axes[0].imshow(ds["total"].values, cmap="gray", extent=extent)
    axes[0].set_title("total-ion image")
    axes[1].imshow(rgb, extent=extent)
    axes[1].set_title("overlay: " + ", ".join(f"{c}={n}" for c, n in zip(("R", "G", "B"), names)))
    for ax in axes:
        ax.set_xlabel("x (um)")
    axes[0].set_ylabel("y (um)")
    fig.tight_layout()
    figs["overlay"] = fig

    # Segmentation (and truth).
    panels = [(seg, "segmented")]
    if "truth_phases" in ds:
        panels.append((ds["truth_phases"], "truth"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5.3), squeeze=False)
    for ax, (s, title) in zip(axes[0], panels):
        _show_seg(ax, s, title, extent)
    fig.legend(handles=[Patch(color=c, label=n) for n, c in
                        zip(table.values(), _colours(list(table.values())))],
               loc="lower center", ncol=len(table), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    figs["segmentation"] = fig

    # Histograms: total-ion with the pore threshold, relative intensities.
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    tot = np.asarray(ds["total"].values).ravel()
    axes[0].hist(tot, bins=100, color="0.4")
    thr = (seg.attrs.get("thresholds") or {}).get("pore")
    if thr is not None:
        axes[0].axvline(thr, color="r", ls="--", label="pore threshold (filtered)")
        axes[0].legend()
    axes[0].set_xlabel("total counts per pixel")
    axes[0].set_ylabel("pixels")
    for n, r in zip(names, rel):
        axes[1].hist(np.asarray(r.values).ravel(), bins=100, histtype="step", label=n)
    axes[1].set_xlabel("relative intensity (filtered)")
    axes[1].set_yscale("log")
    axes[1].legend()
    fig.tight_layout()
    figs["histograms"] = fig

    # Fig. 2B: equivalent diameters and aspect ratios; Fig. 3B: coverage scatter.
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    if len(ag):
        axes[0].hist(ag.equivalent_diameter_um, bins=20, color="C2", alpha=0.7, label="segmented")
        axes[1].hist(ag.aspect_ratio, bins=20, color="C2", alpha=0.7, label="segmented")
        if "agglomerates_truth" in have:
            agt = open_table(store, "agglomerates_truth")
            axes[0].hist(agt.equivalent_diameter_um, bins=20, histtype="step", color="k",
                         label="truth")
            axes[1].hist(agt.aspect_ratio, bins=20, histtype="step", color="k", label="truth")
        cov = [c for c in ag.columns if c.startswith("coverage_")]
        size = 20 + 200 * ag.equivalent_diameter_um / max(1e-9, ag.equivalent_diameter_um.max())
        x = np.arange(len(ag))
        for j, c in enumerate(cov):
            axes[2].scatter(x, ag[c], s=size, alpha=0.5, label=c[9:-4], color=f"C{j}")
    axes[0].set_xlabel(f"{agg} equivalent diameter (um)")
    axes[1].set_xlabel("aspect ratio (major / minor axis)")
    axes[2].set_xlabel(f"{agg} agglomerate")
    axes[2].set_ylabel("interface covered (%)")
    axes[2].set_title("coverage (dot size ~ equivalent diameter)")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    figs["agglomerates"] = fig

    # Fig. 4: interphase maps for two choices of reference ions.
    if "phases_alt" in ds:
        alt = ds["phases_alt"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 5.3))
        _show_seg(axes[0], seg, "references: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in inter.items()), extent)
        _show_seg(axes[1], alt, "references: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in params["alternative_interphases"].items()), extent)
        fig.tight_layout()
        figs["interphase_references"] = fig
        fa = measure.volume_fractions(alt)
        summary["alternative_fractions"] = {str(k): float(v) for k, v in fa.items()}
    return summary, figs, tabs
