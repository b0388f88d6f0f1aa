"""SWAXS-CT of a wound cell (seed 004): synthetic pencil-beam sinograms -> assembled
sinograms -> WAXS window maps and labels, SAXS intensity map, d* map -> casing and winding
pitch -> agglomerates against the 50 um threshold.

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
from .stage import Stage

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
}

_WAXS = ("nmc_lithiated", "nmc_delithiated", "lic6", "lic12", "graphite")


def validate(params):
    if params["size"] < 32:
        raise InputError("parameters.size", f"at least 32 pixels, got {params['size']}")
    if params["n_angles"] % params["subsets"]:
        raise InputError("parameters.n_angles", "a multiple of parameters.subsets")


@lru_cache(maxsize=2)
def _cell(size, pixel_um, radius_um, mandrel_um, n_angles, subsets, n_saxs, n_waxs,
          center_offset_px, i0_drift,
          noise, n_lognormal, seed):
    from ..synth.wound_cell import wound_cell

    c = wound_cell(size=size, pixel_um=pixel_um, radius_um=radius_um, mandrel_um=mandrel_um,
                   n_angles=n_angles, subsets=subsets,
                   n_saxs=n_saxs, n_waxs=n_waxs, center_offset_px=center_offset_px,
                   i0_drift=i0_drift, noise=noise, n_lognormal=n_lognormal, seed=seed)
    return c, sc.assemble(c["sinogram"], c["monitor"])


def truth(**cell):
    """Truth labels of the synthetic cell (``attrs["phases"]``)."""
    c, _ = _cell(**cell)
    lab = c["labels"].copy()
    lab.attrs = {"phases": {int(k): v for k, v in c["labels"].attrs["phases"].items()}}
    return lab.rename("truth_labels")


def waxs_maps(iterations, **cell):
    """Table 1 window maps, reconstructed by SART (window, then reconstruct)."""
    _, s = _cell(**cell)
    windows = dict(sc.TABLE1_WINDOWS, casing=(3.07, 3.13), cu=(2.98, 3.04))
    rec = sc.reconstruct(sc.window_sums(s, windows), method="sart", iterations=iterations)
    return rec.rename({k: f"map_{k}" for k in rec.data_vars})


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


def agglomerate_table(saxs_intensity, size_threshold_um):
    _, table = sc.agglomerates(saxs_intensity.compute(), size_threshold_um=size_threshold_um)
    return table


def stages(p):
    cell = {k: p[k] for k in ("size", "pixel_um", "radius_um", "mandrel_um", "n_angles",
                              "subsets", "n_saxs", "n_waxs",
                              "center_offset_px", "i0_drift", "noise", "n_lognormal", "seed")}
    it = p["sart_iterations"]
    half = p["size"] * p["pixel_um"] / 2
    return [
        Stage("truth_labels", truth, params=cell),
        Stage("waxs", waxs_maps, params=dict(cell, iterations=it),
              outputs=tuple(f"map_{k}" for k in _WAXS + ("casing", "cu"))),
        Stage("anode_labels", labels, inputs=tuple(f"map_{k}" for k in _WAXS)),
        Stage("saxs_intensity", saxs_map, params=dict(cell, iterations=it)),
        Stage("saxs_profiles", saxs_profiles, params=cell),
        Stage("d_star_nm", d_star_map, inputs=("saxs_profiles",)),
        Stage("unrolling", unrolling, inputs=("map_casing", "map_cu"),
              params=dict(radius_range_um=[0.8 * p["radius_um"],
                                         min(half, 1.2 * p["radius_um"])])),
        Stage("agglomerates", agglomerate_table, inputs=("saxs_intensity",),
              params=dict(size_threshold_um=p["size_threshold_um"])),
    ]


def summarize(store, params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = open_store(store)
    ag = open_table(store, "agglomerates")
    un = open_table(store, "unrolling")
    d = ds["d_star_nm"].values
    summary = {"unrolling": dict(un) if isinstance(un, dict) else un.to_dict(),
               "n_agglomerates": int(len(ag)),
               "n_above_threshold": int(ag["above_threshold"].sum()) if len(ag) else 0,
               "d_star_median_nm": float(np.nanmedian(d)) if np.isfinite(d).any() else None}
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4))
    rgb = sc.composite(ds[[f"map_{k}" for k in ("graphite", "lic6", "lic12")]].rename(
        {f"map_{k}": k for k in ("graphite", "lic6", "lic12")}), kind="anode")
    axes[0].imshow(rgb.values)
    axes[0].set_title("anode: LiC6 green, LiC12 blue, graphite red")
    axes[1].imshow(ds["saxs_intensity"].values, cmap="magma")
    axes[1].set_title("SAXS 0.025-0.1 1/A")
    im = axes[2].imshow(d, cmap="viridis", vmin=9, vmax=16)
    axes[2].set_title("d* (nm)")
    fig.colorbar(im, ax=axes[2])
    axes[3].hist(ag["d_eq_um"] if len(ag) else [], bins=20)
    axes[3].axvline(params["size_threshold_um"], color="r")
    axes[3].set_xlabel("equivalent diameter (um)")
    axes[3].set_title("agglomerates")
    fig.tight_layout()
    return summary, {"maps": fig}, {"agglomerates": ag}
