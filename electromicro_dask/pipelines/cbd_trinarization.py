"""The CBD trinarization comparison of seed 002 (sections 3 and 5.1).

A (synthetic correlative) sample is segmented into AM, CBD and pore in twelve ways, all
calibrated to the known volume fractions: Thresholding (§3.1), k-means (§3.2), the nine
conversions of the correlative neural network's output (§3.3: NN-P1-P2-P3 for the six
orderings and NN-P1-Cond for the three conditional variants) and EDX-Closing (§3.4).
(Seed 002 speaks of "ten trinarizations" in its Table 3, which lists ten of these twelve;
its section 3.3 defines all nine network conversions, so all twelve are run here.) The
report gives the fraction of equally assigned voxels and the per-phase Jaccard matrices
(Fig. 4), a descriptor table per method (Table 2) and, since the synthetic sample comes
with its truth, each method's accuracy against the truth, ranked.

Stages: sample -> targets -> mlp_model -> thresholding, kmeans, nn_probabilities ->
nine nn_* conversions -> edx_closing -> agreement, descriptors, accuracy.
"""

from __future__ import annotations

import numpy as np

from .. import measure, segment
from ..core.errors import InputError
from ..core.store import open_store, open_table
from ..synth.correlative import correlative
from .stage import Stage

PARAMETERS = {
    "size": 48,                       # coarse voxels per edge of the sample
    "factor": 4,                      # fine (truth) voxels per coarse voxel per axis
    "voxel_size_um": 0.5,             # coarse voxel size
    "fractions": {"pore": 0.30, "cbd": 0.15, "am": 0.55},
    "particle_radius_um": [2.0, 0.5],
    "cbd_gradient": 0.5,
    "blur_um": 0.4,
    "noise": 0.03,
    "seed": 0,
    "train_size": 24,                 # coarse edge of the correlative training cutout
    "mlp_size_voxels": 5,
    "mlp_max_epochs": 200,
    "mlp_patience": 10,
    "mlp_max_samples": 20000,
    "kmeans_sample_voxels": 30000,    # fit sample; phase weights then calibrated on all
    "max_radius_voxels": 6.0,
    "chunk": 0,                       # coarse chunk edge (0: the package's default)
}

#: Store variable -> method name as in seed 002.
METHODS = {"thresholding": "Thresholding", "kmeans": "k-means"}
METHODS.update({"nn_" + m[3:].lower().replace("-", "_"): m for m in segment.CONVERSIONS})
METHODS["edx_closing"] = "EDX-Closing"
_ORDER = ("pore", "cbd", "am")


def validate(params):
    if params["size"] < 8:
        raise InputError("parameters.size", f"at least 8 voxels, got {params['size']}")
    if params["train_size"] < 8:
        raise InputError("parameters.train_size", f"at least 8, got {params['train_size']}")
    if set(params["fractions"]) != set(_ORDER):
        raise InputError("parameters.fractions", "fractions for exactly pore, cbd and am, "
                         f"got {sorted(params['fractions'])}")


_GEN_CHUNK = 32  # coarse edge of a generation block (the fine truth is factor**3 larger)


def _chunks(chunk):
    return "auto" if not chunk else (int(chunk),) * 3


def make_sample(size, factor, voxel_size_um, fractions, particle_radius_um, cbd_gradient,
                blur_um, noise, seed, chunk):
    """Synthetic correlative cube of ``size`` coarse voxels (see :func:`synthetic_sample`)."""
    return synthetic_sample((int(size),) * 3, factor, voxel_size_um, fractions,
                            particle_radius_um, cbd_gradient, blur_um, noise, seed, chunk)


def synthetic_sample(shape, factor, voxel_size_um, fractions, particle_radius_um,
                     cbd_gradient, blur_um, noise, seed, chunk):
    """Synthetic correlative sample: coarse grey values, truth, per-voxel composition.

    The fine truth behind a coarse block has ``factor**3`` times its voxels, so it is
    generated in blocks of at most 32 coarse voxels a side and only the coarse result is
    put together into the store's chunks.
    """
    gen = _chunks(min(int(chunk), _GEN_CHUNK)) if chunk else _chunks(chunk)
    ds = correlative(tuple(shape), factor=factor, voxel_size=voxel_size_um, fractions=fractions,
                     particle_radius_um=tuple(particle_radius_um), cbd_gradient=cbd_gradient,
                     blur_um=blur_um, noise=noise, seed=seed, chunks=gen)
    if chunk and int(chunk) > _GEN_CHUNK:
        ds = ds.chunk({d: int(chunk) for d in ("z", "y", "x")})
    out = ds[["grey", "truth"]].copy()
    for p in _ORDER:
        v = ds["composition"].sel(phase=p, drop=True)
        v.attrs = {"units": "um", "long_name": f"true {p} fraction per voxel"}
        out[f"composition_{p}"] = v
    return out


def target_fractions(composition_pore, composition_cbd, composition_am):
    """The "experimentally known" fractions: the mean true composition of the sample."""
    from ..core.progress import compute

    vals = compute(*(c.data.mean() for c in (composition_pore, composition_cbd,
                                              composition_am)), label="target fractions")
    f = {p: float(v) for p, v in zip(_ORDER, vals)}
    s = sum(f.values())
    return {p: v / s for p, v in f.items()}


def train_model(train_size, factor, voxel_size_um, fractions, particle_radius_um,
                cbd_gradient, blur_um, noise, seed, mlp_size_voxels, mlp_max_epochs,
                mlp_patience, mlp_max_samples):
    """Train the network on a separate correlative cutout (another seed), as seed 002
    trains on a third electrode; returns the model as a JSON-able table."""
    tr = correlative((train_size,) * 3, factor=factor, voxel_size=voxel_size_um,
                     fractions=fractions, particle_radius_um=tuple(particle_radius_um),
                     cbd_gradient=cbd_gradient, blur_um=blur_um, noise=noise,
                     seed=seed + 1000)
    model = segment.train_mlp(tr["grey"], tr["composition"], size_voxels=mlp_size_voxels,
                              max_epochs=mlp_max_epochs, patience=mlp_patience,
                              max_samples=mlp_max_samples or None, seed=seed)
    return model.to_dict()


def run_threshold(grey, targets):
    out = segment.threshold(grey, fractions={p: targets[p] for p in _ORDER})
    out.attrs["method"] = "Thresholding"
    return out


def run_kmeans(grey, targets, sample_voxels, seed):
    return segment.kmeans(grey, targets, sample_voxels=sample_voxels, seed=seed)


def predict(grey, model, size_voxels):
    """Network output per voxel, one variable per phase (the store has no phase dim)."""
    import xarray as xr

    prob = segment.mlp(grey, segment.MLPModel.from_dict(model), size_voxels=size_voxels)
    return xr.Dataset({f"nn_prob_{p}": prob.sel(phase=p, drop=True) for p in _ORDER})


def run_conversion(nn_prob_pore, nn_prob_cbd, nn_prob_am, targets, method):
    import xarray as xr

    prob = xr.concat([nn_prob_pore, nn_prob_cbd, nn_prob_am], dim="phase")
    prob = prob.assign_coords(phase=list(_ORDER))
    out = segment.convert(prob, targets, method=method)
    return out


def run_edx_closing(kmeans, composition_cbd, targets, max_radius_voxels):
    """EDX-Closing on the k-means AM; the synthetic "EDX profile" is the true CBD
    fraction per slice (what a fluorine map of a cross-section measures)."""
    from ..core.progress import compute

    (profile,) = compute(composition_cbd.mean(("y", "x")).data, label="EDX profile")
    return segment.edx_closing(kmeans, targets, cbd_profile=profile,
                               max_radius_voxels=max_radius_voxels)


def _named(segs, names):
    return {METHODS[n]: s for n, s in zip(names, segs)}


def agreement(*segs, names):
    """Pairwise fraction of equal voxels and Jaccard indices (seed 002 Fig. 4)."""
    return measure.compare_many(_named(segs, names))


def descriptors(*segs, names):
    """Descriptor table per method (seed 002 Table 2: fractions, specific surface area per
    phase and S_Int)."""
    import pandas as pd

    rows = {}
    for method, s in _named(segs, names).items():
        row = {f"fraction_{p}": float(v) for p, v in measure.volume_fractions(s).items()}
        sa = measure.surface_area(s, s_int=True)  # seed 002's S_Int as well
        row.update({f"S_{p} (1/um)": float(v) for p, v in sa.items()})
        rows[method] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


def accuracy(truth, *segs, names):
    """Agreement of every method with the truth, best first."""
    named = _named(segs, names)
    key = "truth"
    while key in named:
        key = "_" + key
    # one pass over all of them (compare_many), of which the pairs with the truth are kept
    many = measure.compare_many({key: truth, **named})
    df = many[(many["a"] == key) & (many["b"] != key)].rename(columns={"b": "method"})
    df = df[["method", "fraction_equal"] + [f"jaccard_{p}" for p in _ORDER]]
    df = df.sort_values("fraction_equal", ascending=False)
    df.insert(1, "rank", np.arange(1, len(df) + 1))
    return df.set_index("method")


def stages(p):
    names = list(METHODS)
    sample_params = dict(factor=p["factor"], voxel_size_um=p["voxel_size_um"],
                         fractions=p["fractions"], particle_radius_um=p["particle_radius_um"],
                         cbd_gradient=p["cbd_gradient"], blur_um=p["blur_um"],
                         noise=p["noise"], seed=p["seed"])
    comp = ("composition_pore", "composition_cbd", "composition_am")
    probs = ("nn_prob_pore", "nn_prob_cbd", "nn_prob_am")
    out = [
        Stage("sample", make_sample, params=dict(size=p["size"], chunk=p["chunk"],
                                                 **sample_params),
              outputs=("grey", "truth") + comp),
        Stage("targets", target_fractions, inputs=comp),
        Stage("mlp_model", train_model, params=dict(
            train_size=p["train_size"], mlp_size_voxels=p["mlp_size_voxels"],
            mlp_max_epochs=p["mlp_max_epochs"], mlp_patience=p["mlp_patience"],
            mlp_max_samples=p["mlp_max_samples"], **sample_params)),
        Stage("thresholding", run_threshold, inputs=("grey", "targets")),
        Stage("kmeans", run_kmeans, inputs=("grey", "targets"),
              params=dict(sample_voxels=p["kmeans_sample_voxels"], seed=p["seed"])),
        Stage("nn_probabilities", predict, inputs=("grey", "mlp_model"),
              params=dict(size_voxels=p["mlp_size_voxels"]), outputs=probs),
    ]
    for var, method in METHODS.items():
        if method.startswith("NN-"):
            out.append(Stage(var, run_conversion, inputs=probs + ("targets",),
                             params=dict(method=method)))
    out += [
        Stage("edx_closing", run_edx_closing, inputs=("kmeans", "composition_cbd", "targets"),
              params=dict(max_radius_voxels=p["max_radius_voxels"])),
        Stage("agreement", agreement, inputs=tuple(names), params=dict(names=names)),
        Stage("descriptors", descriptors, inputs=tuple(names), params=dict(names=names)),
        Stage("accuracy", accuracy, inputs=("truth",) + tuple(names), params=dict(names=names)),
    ]
    return out


def _matrix(long, column):
    import pandas as pd

    keys = list(dict.fromkeys(list(long["a"]) + list(long["b"])))
    m = pd.DataFrame(np.nan, index=keys, columns=keys)
    for _, r in long.iterrows():
        m.loc[r["a"], r["b"]] = m.loc[r["b"], r["a"]] = r[column]
    return m


def summarize(store, params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = open_store(store)
    targets = open_table(store, "targets")
    ag = open_table(store, "agreement")
    desc = open_table(store, "descriptors")
    acc = open_table(store, "accuracy")
    model = open_table(store, "mlp_model")
    frac_cols = [f"fraction_{p}" for p in _ORDER]
    err = (desc[frac_cols] - np.array([targets[p] for p in _ORDER])).abs().max(axis=1)
    summary = {
        "sample": {"shape": list(ds["grey"].shape), "voxel_size_um": params["voxel_size_um"],
                   "factor": params["factor"]},
        "target_fractions": targets,
        "max_fraction_error_per_method": err.round(6).to_dict(),
        "accuracy_ranking": list(acc.index),
        "accuracy": acc.round(4).to_dict(orient="index"),
        "mlp": {k: model["history"].get(k) for k in ("epochs", "test_loss", "n_train")},
    }
    figures = {}
    cols = ["fraction_equal"] + [f"jaccard_{p}" for p in ("am", "cbd", "pore")]
    fig, axes = plt.subplots(2, 2, figsize=(13, 12))
    for ax, c in zip(axes.ravel(), cols):
        m = _matrix(ag, c)
        im = ax.imshow(m.values, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(m)), m.columns, rotation=90, fontsize=7)
        ax.set_yticks(range(len(m)), m.index, fontsize=7)
        ax.set_title(c.replace("_", " "))
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    figures["agreement_matrices"] = fig

    mid = ds.sizes["z"] // 2
    show = ["truth", "thresholding", "kmeans", "nn_am_cond", "nn_cbd_cond", "nn_p_cond",
            "edx_closing"]
    fig2, axes2 = plt.subplots(2, 4, figsize=(16, 8))
    axes2 = axes2.ravel()
    axes2[0].imshow(ds["grey"].isel(z=mid).values, cmap="gray")
    axes2[0].set_title("grey (coarse)")
    for ax, n in zip(axes2[1:], show):
        ax.imshow(ds[n].isel(z=mid).values, cmap="viridis", vmin=0, vmax=2)
        ax.set_title(METHODS.get(n, n))
    for ax in axes2:
        ax.set_axis_off()
    fig2.tight_layout()
    figures["slices"] = fig2
    tables = {"accuracy against truth (ranked)": acc, "descriptors": desc,
              "fraction of equal voxels": _matrix(ag, "fraction_equal"),
              "Jaccard CBD": _matrix(ag, "jaccard_cbd")}
    return summary, figures, tables
