"""SWAXS-CT of wound cells (seed 004), fresh and aged side by side: synthetic pencil-beam
sinograms -> assembled sinograms -> WAXS window maps and labels, SAXS intensity map, d* map
-> casing and winding pitch, polar and arc-length unrolling -> agglomerates against the
50 um threshold -> registration of the cell's X-ray and neutron CT and the height of the
scattering slice in them (red = X-ray / cyan = neutron composite).

Every cell of ``parameters.cells`` (default: "fresh", charged and mostly LiC6, and "aged",
LiC12 almost everywhere with a larger d*, seed 004 Figs 2 and 4) runs the same stages; its
variables carry the cell's name as a prefix (``fresh_map_lic6``, ``aged_d_star_nm``, ...).
The store holds ``("y", "x")`` maps and the ``("y", "x", "q")`` SAXS reconstruction; the
raw ``("angle", "t", "q")`` sinogram (acquisition-ordered angles, a q axis joining SAXS
and WAXS ranges) is regenerated inside each stage from the same parameters (deterministic).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import scattering as sc
from ..core.errors import InputError
from ..core.store import open_store, open_table
from .stage import Stage, check_groups

PARAMETERS = {
    "size": 96,
    "pixel_um": 26.0,
    "radius_um": 1000.0,              # casing outer radius: the scan covers it with a margin
    "mandrel_um": 200.0,
    "n_angles": 90,
    "subsets": 3,
    "n_saxs": 300,
    "n_waxs": 400,
    "center_offset_px": 2.5,
    "i0_drift": 0.03,
    "noise": 0.0,
    "n_lognormal": 0,
    "sart_iterations": 5,
    "size_threshold_um": 50.0,
    "seed": 0,
    # Per-cell overrides of the synthetic cell (seed 004 notes, section 3: charged fresh cell
    # mostly LiC6 with d* about 12 nm, charged aged cell LiC12 almost everywhere, d* about
    # 14 nm, agglomerate radii shifted up by about 1 um).
    "cells": {"fresh": {"lic6_fraction": 0.8, "d_star_nm": [12.0, 11.0],
                        "lognormal_median_radius_um": 20.0, "seed": 0},
              "aged": {"lic6_fraction": 0.1, "d_star_nm": [14.0, 11.0],
                       "lognormal_median_radius_um": 21.0, "seed": 1}},
    # The multimodal registration: X-ray CT on the scattering grid, neutron CT on a coarser
    # grid, rotated and shifted by a known transform (synth.wound_cell_ct).
    "ct_slices": 25,
    "neutron_voxel_factor": 1.25,
    "neutron_rotation_deg": [0.0, 3.0, -2.0],
    "neutron_shift_um": [20.0, 40.0, -30.0],
    "register_iterations": 1000,
    # The FFT pre-alignment is for volumes far apart; the roll is nearly symmetric under
    # rotation about its axis, which misleads it, and scanner frames start close.
    "register_prealign": False,
}

_CELL_KEYS = ("lic6_fraction", "d_star_nm", "lognormal_median_radius_um", "seed", "noise",
              "n_lognormal", "saxs_amplitude")

_WAXS = ("nmc_lithiated", "nmc_delithiated", "lic6", "lic12", "graphite")


def validate(params):
    check_groups(params["cells"], "parameters.cells", _CELL_KEYS, what="cells")
    if params["size"] < 32:
        raise InputError("parameters.size", f"at least 32 pixels, got {params['size']}")
    if params["n_angles"] % params["subsets"]:
        raise InputError("parameters.n_angles", "a multiple of parameters.subsets")


@lru_cache(maxsize=4)
def _cell(size, pixel_um, radius_um, mandrel_um, n_angles, subsets, n_saxs, n_waxs,
          center_offset_px, i0_drift, noise, n_lognormal, seed, lic6_fraction=0.5,
          d_star_nm=(14.0, 11.0), lognormal_median_radius_um=20.0, saxs_amplitude=1.0):
    from ..synth.wound_cell import wound_cell

    c = wound_cell(size=size, pixel_um=pixel_um, radius_um=radius_um, mandrel_um=mandrel_um,
                   n_angles=n_angles, subsets=subsets,
                   n_saxs=n_saxs, n_waxs=n_waxs, center_offset_px=center_offset_px,
                   i0_drift=i0_drift, noise=noise, n_lognormal=n_lognormal, seed=seed,
                   lic6_fraction=lic6_fraction, d_star_nm=tuple(d_star_nm),
                   lognormal_median_radius_um=lognormal_median_radius_um,
                   saxs_amplitude=saxs_amplitude)
    return c, sc.assemble(c["sinogram"], c["monitor"])


def truth(**cell):
    """Truth labels of the synthetic cell (``attrs["phases"]``)."""
    c, _ = _cell(**cell)
    lab = c["labels"].copy()
    lab.attrs = {"phases": {int(k): v for k, v in c["labels"].attrs["phases"].items()}}
    return lab.rename("truth_labels")


def waxs_maps(iterations, prefix="", **cell):
    """Table 1 window maps, reconstructed by SART (window, then reconstruct)."""
    _, s = _cell(**cell)
    windows = dict(sc.TABLE1_WINDOWS, casing=(3.07, 3.13), cu=(2.98, 3.04))
    rec = sc.reconstruct(sc.window_sums(s, windows), method="sart", iterations=iterations)
    return rec.rename({k: f"{prefix}map_{k}" for k in rec.data_vars})


def saxs_map(iterations, **cell):
    _, s = _cell(**cell)
    return sc.reconstruct(sc.saxs_intensity(s), method="sart", iterations=iterations)


def saxs_profiles(**cell):
    """Per-q FBP reconstruction of the SAXS range (linear bins) for d*."""
    _, s = _cell(**cell)
    return sc.reconstruct(s.sel(q=slice(0, 0.7)), method="fbp", q_chunk=50).rename("saxs")


def d_star_map(saxs_profiles):
    return sc.d_star(saxs_profiles)["d_star_nm"].rename("d_star_nm")


def labels(map_nmc_lithiated, map_nmc_delithiated, map_lic6, map_lic12, map_graphite):
    import xarray as xr

    ds = xr.Dataset({"nmc_lithiated": map_nmc_lithiated, "nmc_delithiated": map_nmc_delithiated,
                     "lic6": map_lic6, "lic12": map_lic12, "graphite": map_graphite})
    a = sc.dominant_window(ds, ("lic6", "lic12", "graphite"))
    return a.rename("anode_labels")


def unrolling(map_casing, map_cu, radius_range_um):
    cas = sc.find_casing(map_casing.compute(), tuple(radius_range_um))
    u = sc.polar_unroll(map_cu.compute(), (cas["center_y_um"], cas["center_x_um"]),
                        r_max_um=cas["radius_um"] - 40.0, r_min_um=0.2 * cas["radius_um"],
                        n_angles=360, dr_um=2.0)
    return {"center_y_um": cas["center_y_um"], "center_x_um": cas["center_x_um"],
            "radius_um": cas["radius_um"], "pitch_um": sc.winding_pitch(u)}


def unwound(unrolling, map_cu, map_lic6, map_lic12, map_graphite):
    """Arc-length unwinding (an extension of the seed's polar unrolling) of the Cu and
    anode maps: every layer a straight band along the electrode. A table (the store's
    data model has no (u, s) dims): the strips as nested lists with their axes in um."""
    un = unrolling if isinstance(unrolling, dict) else unrolling.to_dict()
    center = (un["center_y_um"], un["center_x_um"])
    r_range = (0.2 * un["radius_um"], un["radius_um"] - 40.0)
    first = sc.unwind_spiral(map_cu.compute(), center, un["pitch_um"], r_range)
    out = {"u_um": first["u"].values.tolist(), "s_um": first["s"].values.tolist(),
           "sense": int(first.attrs["sense"]), "length_um": float(first.attrs["length_um"]),
           "r_start_um": float(first.attrs["r_start_um"]),
           "cu": np.round(first.values, 6).tolist()}
    for k, m in (("lic6", map_lic6), ("lic12", map_lic12), ("graphite", map_graphite)):
        strip = sc.unwind_spiral(m.compute(), center, un["pitch_um"], r_range,
                                 sense=first.attrs["sense"])
        out[k] = np.round(strip.values, 6).tolist()
    return out


def ct_registration(map_cu, prefix="", ct_slices=24, neutron_voxel_factor=1.25,
                    neutron_rotation_deg=(0.0, 3.0, -2.0), neutron_shift_um=(0.0, 0.0, 0.0),
                    register_iterations=1000, register_prealign=False, **cell):
    """Seed 004's multimodal alignment on the synthetic cell: its X-ray CT (fixed, on the
    scattering grid) and neutron CT (coarser, rotated and shifted) registered by mutual
    information, the neutron volume resampled onto the X-ray grid, and the height whose
    X-ray slice best matches the scattering slice's Cu map. Returns that X-ray slice and
    the registered neutron slice; the numbers, with their truth, in the attrs."""
    import xarray as xr

    from .. import register as reg
    from ..synth.wound_cell import wound_cell_ct

    c, _ = _cell(**cell)
    pixel = float(cell["pixel_um"])
    xray = wound_cell_ct(c, "xray", n_slices=ct_slices, seed=cell["seed"])
    neutron = wound_cell_ct(c, "neutron", n_slices=int(round(ct_slices / neutron_voxel_factor)),
                            voxel_um=pixel * neutron_voxel_factor,
                            rotation_deg=tuple(neutron_rotation_deg),
                            shift_um=tuple(neutron_shift_um), seed=cell["seed"] + 1)
    r = reg.register(xray, neutron, prealign=bool(register_prealign), max_angle_deg=10.0,
                     angle_step_deg=5.0, max_iterations=int(register_iterations))
    aligned = reg.resample(neutron, r, like=xray).compute()
    index, scores = reg.find_slice(xray, map_cu.compute().values)
    # truth: fixed (cell frame) -> moving grid is the inverse of the neutron's grid_to_cell
    truth = np.linalg.inv(np.asarray(neutron.attrs["grid_to_cell"]))
    corners = np.array([[z, y, x, 1.0] for z in xray["z"].values[[0, -1]]
                        for y in xray["y"].values[[0, -1]] for x in xray["x"].values[[0, -1]]])
    err = np.linalg.norm((corners @ r.matrix.T - corners @ truth.T)[:, :3], axis=1)
    attrs = {"converged": bool(r.converged), "reason": str(r.reason),
             "angle_deg": float(r.angle_deg),
             "true_angle_deg": float(np.degrees(np.arccos(np.clip(
                 (np.trace(truth[:3, :3]) - 1) / 2, -1, 1)))),
             "max_error_um": float(err.max()), "slice_index": int(index),
             "true_slice_index": (xray.sizes["z"] - 1) / 2,
             "slice_scores": [float(v) for v in scores.values]}
    xs = xray.isel(z=index, drop=True)
    ns = aligned.isel(z=index, drop=True)
    xs.attrs = dict(attrs, long_name="X-ray CT slice at the scattering height")
    ns.attrs = dict(attrs, long_name="registered neutron CT slice at the scattering height")
    return xr.Dataset({f"{prefix}ct_xray": xs.assign_coords(y=map_cu["y"], x=map_cu["x"]),
                       f"{prefix}ct_neutron": ns.assign_coords(y=map_cu["y"], x=map_cu["x"])})


def agglomerate_table(saxs_intensity, size_threshold_um):
    _, table = sc.agglomerates(saxs_intensity.compute(), size_threshold_um=size_threshold_um)
    return table


def _cell_params(p, name):
    keys = ("size", "pixel_um", "radius_um", "mandrel_um", "n_angles", "subsets", "n_saxs",
            "n_waxs", "center_offset_px", "i0_drift", "noise", "n_lognormal", "seed")
    cell = {k: p[k] for k in keys}
    for k, v in (p["cells"][name] or {}).items():
        cell[k] = tuple(v) if isinstance(v, list) else v
    return cell


def stages(p):
    it = p["sart_iterations"]
    half = p["size"] * p["pixel_um"] / 2
    out = []
    for name in p["cells"]:
        cell = _cell_params(p, name)
        pre = f"{name}_"
        maps = tuple(f"{pre}map_{k}" for k in _WAXS)
        out += [
            Stage(f"{pre}truth_labels", truth, params=cell),
            Stage(f"{pre}waxs", waxs_maps, params=dict(cell, iterations=it, prefix=pre),
                  outputs=maps + (f"{pre}map_casing", f"{pre}map_cu")),
            Stage(f"{pre}anode_labels", labels, inputs=maps),
            Stage(f"{pre}saxs_intensity", saxs_map, params=dict(cell, iterations=it)),
            Stage(f"{pre}saxs_profiles", saxs_profiles, params=cell),
            Stage(f"{pre}d_star_nm", d_star_map, inputs=(f"{pre}saxs_profiles",)),
            Stage(f"{pre}unrolling", unrolling, inputs=(f"{pre}map_casing", f"{pre}map_cu"),
                  params=dict(radius_range_um=[0.8 * p["radius_um"],
                                               min(half, 1.2 * p["radius_um"])])),
            Stage(f"{pre}unwound", unwound,
                  inputs=(f"{pre}unrolling", f"{pre}map_cu", f"{pre}map_lic6",
                          f"{pre}map_lic12", f"{pre}map_graphite")),
            Stage(f"{pre}agglomerates", agglomerate_table, inputs=(f"{pre}saxs_intensity",),
                  params=dict(size_threshold_um=p["size_threshold_um"])),
            Stage(f"{pre}ct", ct_registration, inputs=(f"{pre}map_cu",),
                  params=dict(cell, prefix=pre, ct_slices=p["ct_slices"],
                              neutron_voxel_factor=p["neutron_voxel_factor"],
                              neutron_rotation_deg=list(p["neutron_rotation_deg"]),
                              neutron_shift_um=list(p["neutron_shift_um"]),
                              register_iterations=p["register_iterations"],
                              register_prealign=p["register_prealign"]),
                  outputs=(f"{pre}ct_xray", f"{pre}ct_neutron")),
        ]
    return out


def _anode_pixels(lab):
    codes = {v: int(k) for k, v in lab.attrs.get("phases", {}).items()}
    keys = [k for k in ("lic6", "lic12", "graphite") if k in codes]
    return codes, keys, np.isin(lab.values, [codes[k] for k in keys])


def _anode_share(lab, where=None):
    """Share of LiC6, LiC12 and graphite among the anode pixels of a label map (or among
    the pixels ``where``)."""
    codes, keys, anode = _anode_pixels(lab)
    where = anode if where is None else where
    return {k: float((lab.values == codes[k])[where].mean()) if where.any() else None
            for k in keys}


def _cell_summary(ds, store, name, params):
    pre = f"{name}_"
    ag = open_table(store, f"{pre}agglomerates")
    un = open_table(store, f"{pre}unrolling")
    d = ds[f"{pre}d_star_nm"].values
    # both on the truth's anode pixels (the measured labels name a lithiation state
    # wherever the anode windows dominate, partial-volume rims included)
    truth_anode = _anode_pixels(ds[f"{pre}truth_labels"])[2]
    share = _anode_share(ds[f"{pre}anode_labels"], truth_anode)
    truth_share = _anode_share(ds[f"{pre}truth_labels"])
    ct = {k: v for k, v in ds[f"{pre}ct_xray"].attrs.items()
          if k not in ("provenance", "long_name", "units", "slice_scores")}
    strip = open_table(store, f"{pre}unwound")
    return {"unrolling": dict(un) if isinstance(un, dict) else un.to_dict(),
            "unwound_length_um": float(strip["length_um"]),
            "unwound_sense": int(strip["sense"]),
            "n_agglomerates": int(len(ag)),
            "n_above_threshold": int(ag["above_threshold"].sum()) if len(ag) else 0,
            "d_star_median_nm": float(np.nanmedian(d)) if np.isfinite(d).any() else None,
            "anode_phase_share": share, "anode_phase_share_truth": truth_share,
            "registration": ct}, ag


def summarize(store, params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    from ..register import composite

    ds = open_store(store)
    names = list(params["cells"])
    summary, tables = {}, {}
    fig, axes = plt.subplots(len(names), 5, figsize=(22, 4.4 * len(names)), squeeze=False)
    freg, areg = plt.subplots(len(names), 2, figsize=(10, 4.4 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        pre = f"{name}_"
        summary[name], tables[f"{name}_agglomerates"] = _cell_summary(ds, store, name, params)
        ag = tables[f"{name}_agglomerates"]
        keys = ("graphite", "lic6", "lic12")
        rgb = sc.composite(xr.Dataset({k: ds[f"{pre}map_{k}"] for k in keys}), kind="anode")
        ax = axes[row]
        ax[0].imshow(rgb.values)
        ax[0].set_title(f"{name}: anode LiC6 green, LiC12 blue, graphite red")
        ax[1].imshow(ds[f"{pre}saxs_intensity"].values, cmap="magma")
        ax[1].set_title(f"{name}: SAXS 0.025-0.1 1/A")
        im = ax[2].imshow(ds[f"{pre}d_star_nm"].values, cmap="viridis", vmin=9, vmax=16)
        ax[2].set_title(f"{name}: d* (nm)")
        fig.colorbar(im, ax=ax[2])
        st = open_table(store, f"{pre}unwound")
        s_ax, u_ax = np.asarray(st["s_um"]), np.asarray(st["u_um"])
        srgb = sc.composite(xr.Dataset({k: (("y", "x"), np.asarray(st[k], dtype=float))
                                        for k in keys}), kind="anode")
        ax[3].imshow(srgb.values, aspect="auto", extent=(s_ax[0] / 1000, s_ax[-1] / 1000,
                                                         u_ax[-1], u_ax[0]))
        ax[3].set_xlabel("arc length along the electrode (mm)")
        ax[3].set_ylabel("across one turn (um)")
        ax[3].set_title(f"{name}: unwound anode (arc length, extension)")
        ax[4].hist(ag["d_eq_um"] if len(ag) else [], bins=20)
        ax[4].axvline(params["size_threshold_um"], color="r")
        ax[4].set_xlabel("equivalent diameter (um)")
        ax[4].set_title(f"{name}: agglomerates")
        ct = summary[name]["registration"]
        areg[row][0].imshow(composite(ds[f"{pre}ct_xray"], ds[f"{pre}ct_neutron"]))
        areg[row][0].set_title(f"{name}: X-ray red / neutron cyan at slice "
                               f"{ct['slice_index']} ({'converged' if ct['converged'] else 'NOT converged'})",
                               fontsize=9)
        scores = ds[f"{pre}ct_xray"].attrs.get("slice_scores", [])
        areg[row][1].plot(scores, "o-")
        areg[row][1].axvline(ct["true_slice_index"], color="r", ls="--")
        areg[row][1].set_xlabel("CT slice")
        areg[row][1].set_ylabel("NMI with the scattering Cu map")
    fig.tight_layout()
    freg.tight_layout()
    return summary, {"cells": fig, "registration": freg}, tables

