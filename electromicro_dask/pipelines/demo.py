"""The demo pipeline: a synthetic electrode from raw grey values to scored phases.

generate an electrode and its tomogram -> median filter -> global thresholds matching
the known fractions (seed 002 section 3.1) -> fractions and through-thickness profiles
-> agreement with the truth.
"""

from __future__ import annotations

import numpy as np

from .. import filters, label, measure, segment, synth
from ..core.errors import InputError
from ..core.store import open_store, open_table
from .stage import Stage

PARAMETERS = {
    "size": 128,                      # voxels per edge of the cubic sample
    "voxel_size_um": 0.5,
    "fractions": {"pore": 0.30, "cbd": 0.15, "am": 0.55},   # dark to bright
    "particle_radius_um": [4.0, 1.0],
    "cbd_gradient": 0.3,
    "blur_um": 0.5,
    "noise": 0.08,
    "median_size_voxels": 3,
    "seed": 0,
}


def validate(params):
    if params["size"] < 16:
        raise InputError("parameters.size", f"at least 16 voxels, got {params['size']}")
    if set(params["fractions"]) != {"pore", "cbd", "am"}:
        raise InputError("parameters.fractions", "fractions for exactly pore, cbd and am, "
                         f"got {sorted(params['fractions'])}")


def make_truth(size, voxel_size_um, fractions, particle_radius_um, cbd_gradient, seed):
    """Synthetic electrode truth: phases and particle ids."""
    ds = synth.electrode((size,) * 3, voxel_size_um, fractions=fractions,
                         particle_radius_um=tuple(particle_radius_um),
                         cbd_gradient=cbd_gradient, seed=seed)
    return ds.rename({"phases": "truth_phases", "particles": "truth_particles"})


def make_raw(truth_phases, blur_um, noise, seed):
    """Grey-value tomogram of the truth."""
    return synth.tomogram(truth_phases, blur_um=blur_um, noise=noise, seed=seed + 1)


def fraction_table(phases, truth_phases, fractions):
    """Target, segmented and true volume fractions side by side."""
    import pandas as pd

    return pd.DataFrame({"target": pd.Series(fractions),
                         "segmented": measure.volume_fractions(phases),
                         "truth": measure.volume_fractions(truth_phases)}).rename_axis("phase")


def agreement(phases, truth_phases):
    """Voxel agreement and Jaccard per phase against the truth."""
    return measure.compare(phases, truth_phases)


def stages(p):
    return [
        Stage("truth", make_truth, params=dict(
            size=p["size"], voxel_size_um=p["voxel_size_um"], fractions=p["fractions"],
            particle_radius_um=p["particle_radius_um"], cbd_gradient=p["cbd_gradient"],
            seed=p["seed"]), outputs=("truth_phases", "truth_particles")),
        Stage("raw", make_raw, inputs=("truth_phases",),
              params=dict(blur_um=p["blur_um"], noise=p["noise"], seed=p["seed"])),
        Stage("filtered", filters.median, inputs=("raw",),
              params=dict(size_voxels=p["median_size_voxels"])),
        Stage("phases", _threshold, inputs=("filtered",), params=dict(fractions=p["fractions"])),
        Stage("fractions", fraction_table, inputs=("phases", "truth_phases"),
              params=dict(fractions=p["fractions"])),
        Stage("profile", measure.profile, inputs=("phases",), params=dict(axis="z")),
        Stage("profile_truth", _profile_truth, inputs=("truth_phases",)),
        Stage("agreement", agreement, inputs=("phases", "truth_phases")),
        Stage("particles", _watershed, inputs=("phases",)),
        Stage("particle_props", _props, inputs=("particles",)),
        Stage("particles_of_truth_phases", _watershed, inputs=("truth_phases",)),
        Stage("particle_props_truth_phases", _props, inputs=("particles_of_truth_phases",)),
        Stage("particle_props_truth", _props, inputs=("truth_particles",)),
    ]


def _watershed(phases):
    """Particles split by the chunked watershed of the active material (seed 000)."""
    return label.watershed(phases, phase="am")


def _props(particles):
    return label.regionprops(particles)


def _threshold(filtered, fractions):
    # threshold() reads the mapping dark to bright; tomograms show pore < cbd < am.
    return segment.threshold(filtered, fractions={p: fractions[p] for p in ("pore", "cbd", "am")})


def _profile_truth(truth_phases):
    return measure.profile(truth_phases, axis="z")


def summarize(store, params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = open_store(store)
    fr = open_table(store, "fractions")
    ag = open_table(store, "agreement")
    prof = open_table(store, "profile")
    prof_t = open_table(store, "profile_truth")
    props_t = open_table(store, "particle_props_truth")
    n_t = len(props_t)
    d50_t = float(props_t["equivalent_diameter_um"].median())
    particles = {"count_truth": n_t, "median_equivalent_diameter_um_truth": d50_t}
    # The watershed on the true phases checks the splitting itself; on the segmented
    # phases it shows what segmentation errors (bridges at necks) add.
    for key, table in [("watershed_of_truth_phases", "particle_props_truth_phases"),
                       ("watershed_of_segmented_phases", "particle_props")]:
        pr = open_table(store, table)
        d50 = float(pr["equivalent_diameter_um"].median())
        particles[key] = {"count": len(pr), "count_error": (len(pr) - n_t) / n_t,
                          "median_equivalent_diameter_um": d50,
                          "median_diameter_error": (d50 - d50_t) / d50_t}
    props = open_table(store, "particle_props")
    summary = {
        "particles": particles,
        "sample": {"shape": list(ds["raw"].shape), "voxel_size_um": params["voxel_size_um"],
                   "n_particles_truth": int(ds["truth_particles"].attrs.get("n_labels", 0))},
        "volume_fractions": fr.to_dict(orient="index"),
        "max_fraction_error_vs_target": float((fr["segmented"] - fr["target"]).abs().max()),
        "voxel_agreement_with_truth": ag["fraction_equal"],
        "jaccard_with_truth": ag["jaccard"],
        "thresholds": ds["phases"].attrs.get("thresholds"),
    }

    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    mid = ds.sizes["z"] // 2
    names = ds["phases"].attrs["phases"]
    colours = {"pore": "#1b1b3a", "cbd": "#2a9d8f", "am": "#f4d35e"}
    cmap = ListedColormap([colours.get(names[c], "grey") for c in sorted(names)])
    fig_s, axes = plt.subplots(1, 4, figsize=(16, 4.6))
    extent = [float(ds.x[0]), float(ds.x[-1]), float(ds.y[-1]), float(ds.y[0])]
    for ax, (title, arr, kw) in zip(axes, [
            ("raw", ds["raw"], {"cmap": "gray"}),
            ("median filtered", ds["filtered"], {"cmap": "gray"}),
            ("segmented", ds["phases"], {"cmap": cmap, "vmin": 0, "vmax": len(names) - 1,
                                         "interpolation": "nearest"}),
            ("truth", ds["truth_phases"], {"cmap": cmap, "vmin": 0, "vmax": len(names) - 1,
                                           "interpolation": "nearest"})]):
        ax.imshow(np.asarray(arr.isel(z=mid).values), extent=extent, **kw)
        ax.set_title(f"{title} (z = {float(ds.z[mid]):.1f} um)")
        ax.set_xlabel("x (um)")
    axes[0].set_ylabel("y (um)")
    fig_s.legend(handles=[Patch(color=colours.get(n, "grey"), label=n) for n in names.values()],
                 loc="lower center", ncol=len(names), frameon=False)
    fig_s.tight_layout(rect=(0, 0.06, 1, 1))

    fig_p, ax = plt.subplots(figsize=(7, 4.2))
    for i, name in enumerate(prof.columns):
        ax.plot(prof.index, prof[name], color=f"C{i}", label=f"{name} (segmented)")
        ax.plot(prof_t.index, prof_t[name], color=f"C{i}", ls="--", label=f"{name} (truth)")
    ax.set_xlabel("distance from current collector z (um)")
    ax.set_ylabel("volume fraction")
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("phase fractions through the thickness")
    fig_p.tight_layout()
    fig_d = label.plot_size_distribution(props)
    fig_d.suptitle("watershed particles of the segmented volume")
    return summary, {"slices": fig_s, "profile": fig_p, "particle sizes": fig_d}, \
        {"volume fractions": fr}
