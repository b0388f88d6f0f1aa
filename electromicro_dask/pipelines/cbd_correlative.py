"""Seed 002's correlative chain for two electrodes, from the recipe to the paper's tables.

For each electrode (seed 002: a single-layer and a two-layer cathode):

1. ``recipe``: the target volume fractions from the weight fractions and the electrode
   density (section 2.1, :func:`segment.fractions_from_recipe`); every trinarization is
   calibrated to them.
2. ``sample``: the synchrotron tomogram (synthetic: :func:`synth.correlative`, generated
   to the recipe's fractions, with its truth; measured: ``tomogram``, a file).
3. ``surface_site``: an SEM surface scan around the FIB-SEM site (synthetic:
   :func:`synth.correlative_surface`; measured: ``surface_scan`` with its pixel size, the
   tomogram plane it shows and the site's position in it) is located in that tomogram
   slice by SIFT and RANSAC (section 2.2, :func:`register.locate`), which gives the site.
   ``compositions``: a FIB-SEM volume of a small region in its own frame (synthetic:
   :func:`synth.correlative_fibsem`, the same electrode seen through a known rotation,
   offset and scale; measured: ``fibsem`` with ``fibsem_voxel_um``, placed at the
   located site or at a rough ``fibsem_center_um``) is trinarized (Otsu AM, a 2D U-Net
   trained on the ``annotations`` for pores vs CBD, slice-wise filling; section 3.3,
   :func:`segment.trinarize_fibsem`), registered into the tomogram (similarity, mutual
   information) and its phases are averaged into every tomogram voxel it covers
   (:func:`register.composition`).
4. ``mlp_model``: the correlative network trained on those compositions inside the
   fully covered box (section 3.3).
5. The twelve trinarizations of :mod:`.cbd_trinarization` (Thresholding, k-means, nine
   network conversions, EDX-Closing with the line fitted to an EDX fluorine map, section
   3.4, Fig. 3; measured: ``edx_map``, a 2D TIFF).
6. ``descriptors``: seed 002's Table 2 quantities per method, as mean and spread over
   three non-overlapping full-thickness cut-outs; ``agreement`` (Fig. 4) and, with a
   truth, ``accuracy``.

7. With ``table3``: ``discharge_curve``, the electrode's measured lithiation at 6 mA/cm^2
   (a CSV; synthetic: the truth's own resolved discharge at a known ``true_gamma`` on
   columns held out from the methods' ones), and
   ``table3``: per method, the gamma of the homogenised CBD whose resolved lithiation on
   full-thickness columns best matches it, from seed 002's grid of gammas (section 5.2,
   Table 3, Fig. 11). A volume thinner than the electrode (``thickness_um``, default
   loading / density) stands for it as a thickness-similar slab
   (:func:`echem.thickness_similar`). Each row reports the share of its columns'
   electrolyte that no path connects to the separator: a column narrower than a few
   particles is walled off by single particles, and its capacity then hardly moves with
   gamma (a warning says so).

The report puts the electrodes side by side: recipe fractions beside every method's
realised fractions, Table 2 per electrode, the agreement matrices with the first electrode
below and the second above the diagonal (Fig. 4), one slice per method (Fig. 2), the
registration against the known transform and the EDX profiles; with ``table3``, Table 3
beside seed 002's values and the measured curves overlaid with each method's best match.

Every variable carries its electrode's name as a prefix. The store holds one (z, y, x)
grid (DESIGN.md), so the electrodes' tomograms share it; the FIB-SEM volumes and EDX
maps, on grids of their own, are inputs of the stages that reduce them to the tomogram
grid (compositions) or to a table (the EDX line), and are not stored.
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from .. import measure, register, segment
from ..core.errors import ConvergenceError, InputError
from ..core.store import open_store, open_table
from ..core.store import tables as store_tables
from ..filters import gaussian
from ..synth.correlative import correlative_fibsem, correlative_surface
from . import cbd_trinarization as trin
from .stage import Stage, check_groups

log = logging.getLogger(__name__)

# Seed 002 Table 1: suspension A (single layer, 51 mg/cm^2) and, for the two-layer
# electrode, suspension D (53 mg/cm^2); both calendered to 3.1 g/cm^3.
_SUSP_A = {"nmc622": 93.5, "carbon_black": 2.0, "graphite": 1.0, "pvdf": 3.5}
_SUSP_D = {"nmc622": 93.0, "carbon_black": 2.0, "graphite": 1.0, "pvdf": 4.0}

PARAMETERS = {
    # electrode name -> its settings (any key below may be overridden per electrode)
    "electrodes": {
        "single_layer": {"solid_wt": _SUSP_A, "loading_mg_cm2": 51.0, "seed": 0,
                         "cbd_gradient": 0.0, "true_gamma": 0.045},
        "two_layer": {"solid_wt": _SUSP_D, "loading_mg_cm2": 53.0, "seed": 1,
                      "cbd_gradient": 0.6, "true_gamma": 0.09},
    },
    "electrode_density_g_cm3": 3.1,   # seed 002 section 2.1
    "cbd_inner_porosity": 0.5,        # seed 002 section 3: half of the CBD domain is pore
    "densities": None,                # component -> g/cm^3 (default DENSITIES_G_CM3)
    "shape": [32, 32, 96],            # coarse voxels (z = thickness, y, x)
    "factor": 4,                      # fine (FIB-SEM truth) voxels per coarse voxel
    "voxel_size_um": 0.5,
    "particle_radius_um": [2.0, 0.5],
    "blur_um": 0.4,
    "noise": 0.03,
    "fib_edge_voxels": 64,            # FIB-SEM cube edge (fine voxels)
    "fib_rotation_deg": [3.0, -2.0, 1.0],
    "fib_offset_um": [0.4, -0.3, 0.2],
    "fib_scale": 1.02,                # stated / true FIB-SEM voxel size
    "annotated_slices": 3,            # FIB-SEM slices a person labels for the U-Net
    "unet_steps": 300,
    "unet_batch_size": 16,            # 64 x 64 crops per U-Net step
    "register_iterations": 1000,
    "register_margin_um": 1.0,        # tomogram region: FIB-SEM extent plus this margin
    "register_smooth_um": 0.4,        # Gaussian sigma on the FIB-SEM grey before registering
    # below this shared information the fit is rejected: aligned synthetic pairs share
    # 0.35 to 0.5, a FIB-SEM volume fitted 8 um from its true place 0.12
    "register_min_shared": 0.2,
    "surface_scan_um": [13.0, 30.0],  # synthetic SEM surface scan (y, x); SIFT needs ~30 particles
    "surface_min_inliers": 8,
    "composition_samples": 4,         # sub-samples per tomogram voxel and axis
    "edx_noise": 0.05,                # synthetic EDX map noise (fraction units)
    "mlp_size_voxels": 5,
    "mlp_max_epochs": 100,
    "mlp_patience": 10,
    "mlp_max_samples": 20000,
    "kmeans_sample_voxels": 30000,
    "max_radius_voxels": 6.0,
    "n_cutouts": 3,
    # Table 3 (section 5.2): the CBD parameter gamma whose resolved lithiation at 6 mA/cm^2
    # matches the electrode's measured curve, per method. 6 gammas x 11 segmentations x
    # 3 columns x 2 electrodes are ~400 discharges of 32k voxels each: GPU workers' work
    # (a 4 um column of 2k voxels takes ~1 min on a CPU core, 32k voxels far longer);
    # off unless asked for.
    "table3": False,
    "table3_methods": [],             # [] = the ten methods of seed 002 Table 3
    "table3_gammas": [0.01, 0.015, 0.045, 0.06, 0.09, 0.12],   # seed 002's values
    "table3_current_mA_cm2": 6.0,
    # Lateral edge of each simulated full-thickness column (None: the widest that fits
    # table3_columns times; twice for a synthetic electrode, whose 'measured' curve comes
    # from columns between the methods' ones). Columns narrower than a few particles are
    # walled off by single particles; each row reports the share of electrolyte cut off
    # from the separator.
    "table3_width_um": None,
    "table3_columns": 3,              # columns per method (seed 002: three cut-outs)
    "table3_cutoff_V": 3.0,
    "device": "auto",                 # of the discharges: "auto" (CUDA where present), "cpu"
    "chunk": 0,
}

#: Synthetic stand-in of the measured curve: the truth discharged at this gamma.
_TRUE_GAMMA = 0.06

_ORDER = trin._ORDER
_ELECTRODE_KEYS = ("solid_wt", "loading_mg_cm2", "seed", "cbd_gradient", "active",
                   # measured data instead of the synthetic stand-ins
                   "tomogram", "tomogram_voxel_um", "fibsem", "fibsem_voxel_um",
                   "fibsem_center_um", "annotations", "label_names", "edx_map",
                   "edx_pixel_um", "edx_dims", "surface_scan", "surface_scan_pixel_um",
                   "surface_scan_z_um", "fibsem_site_um",
                   # Table 3: the measured discharge (CSV path or {path, capacity, voltage,
                   # capacity_scale}), the electrode's thickness (default: loading /
                   # density), the gamma of the synthetic stand-in measurement
                   "discharge_curve", "thickness_um", "true_gamma")


def validate(params):
    el = params["electrodes"]
    check_groups(el, "parameters.electrodes", _ELECTRODE_KEYS, what="electrodes")
    if len(el) > 2:
        raise InputError("parameters.electrodes", f"one or two electrodes, got {len(el)}")
    for name, cfg in el.items():
        if "solid_wt" not in (cfg or {}) or "loading_mg_cm2" not in cfg:
            raise InputError(f"parameters.electrodes.{name}", "solid_wt and loading_mg_cm2")
        measured = [k for k in ("tomogram", "fibsem", "annotations", "edx_map") if cfg.get(k)]
        if measured and len(measured) < 4:
            missing = sorted({"tomogram", "fibsem", "annotations", "edx_map"} - set(measured))
            raise InputError(f"parameters.electrodes.{name}", "for measured data all of "
                             f"tomogram, fibsem, annotations and edx_map; missing {missing}")
        if cfg.get("surface_scan"):
            missing = [k for k in ("surface_scan_z_um", "fibsem_site_um") if cfg.get(k) is None]
            if missing:
                raise InputError(f"parameters.electrodes.{name}", "with a surface_scan also "
                                 "surface_scan_z_um (the tomogram plane it shows) and "
                                 f"fibsem_site_um (y, x of the FIB-SEM site in the scan); "
                                 f"missing {missing}")
    if len(params["shape"]) != 3 or min(params["shape"]) < 8:
        raise InputError("parameters.shape", f"three sizes of at least 8, got {params['shape']}")
    if params["n_cutouts"] < 1:
        raise InputError("parameters.n_cutouts", f"at least 1, got {params['n_cutouts']}")
    if params["table3"]:
        _validate_table3(params)


def _validate_table3(params):
    from pathlib import Path

    g = params["table3_gammas"]
    if not isinstance(g, list) or not g or not all(
            isinstance(v, (int, float)) and v > 0 for v in g):
        raise InputError("parameters.table3_gammas", f"a list of positive gammas, got {g!r}")
    for k in ("table3_current_mA_cm2", "table3_width_um"):
        if k == "table3_width_um" and params[k] is None:
            continue
        if not (isinstance(params[k], (int, float)) and params[k] > 0):
            raise InputError(f"parameters.{k}", f"a positive number, got {params[k]!r}")
    if not (isinstance(params["table3_columns"], int) and params["table3_columns"] >= 1):
        raise InputError("parameters.table3_columns",
                         f"a positive integer, got {params['table3_columns']!r}")
    unknown = set(params["table3_methods"] or ()) - set(trin.METHODS.values())
    if unknown:
        raise InputError("parameters.table3_methods", f"names among "
                         f"{list(trin.METHODS.values())}, got {sorted(unknown)}")
    for name, cfg in params["electrodes"].items():
        where = f"parameters.electrodes.{name}"
        curve = cfg.get("discharge_curve")
        if curve is None:
            if cfg.get("tomogram"):
                raise InputError(f"{where}.discharge_curve", "the measured discharge at "
                                 "table3_current_mA_cm2 (a CSV) for Table 3 of a measured "
                                 "electrode")
        else:
            path = curve if isinstance(curve, str) else (curve or {}).get("path")
            if not path or not Path(path).is_file():
                raise InputError(f"{where}.discharge_curve",
                                 f"an existing CSV file (or {{path: ...}}), got {curve!r}")
        for k in ("thickness_um", "true_gamma"):
            v = cfg.get(k)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise InputError(f"{where}.{k}", f"a positive number, got {v!r}")
    if not all(cfg.get("tomogram") for cfg in params["electrodes"].values()):
        _check_columns_fit(params)


def _check_columns_fit(params):
    """A synthetic electrode's 2 x table3_columns places (the methods' and the held-out
    ones) must fit side by side in its lateral field, checked before any stage runs."""
    v = float(params["voxel_size_um"])
    n_long, n_short = sorted((int(params["shape"][1]), int(params["shape"][2])), reverse=True)
    slots = 2 * params["table3_columns"]
    widest = min(n_long // slots, n_short) * v
    width = params["table3_width_um"]
    if widest < v:
        raise InputError("parameters.table3_columns", f"at most {n_long // 2} columns for a "
                         f"{n_long * v:g} um wide synthetic electrode (each beside a held-out "
                         f"one), got {params['table3_columns']}")
    if width is not None and int(width / v + 1e-9) * v > widest:
        raise InputError("parameters.table3_width_um", f"at most {widest:g} um: "
                         f"{params['table3_columns']} columns per method and as many held "
                         f"out side by side in the {n_long * v:g} x {n_short * v:g} um "
                         f"lateral field, got {width}")


def _vars(ds, frame):
    return ds.rename({v: f"{frame}_{v}" for v in ds.data_vars})


# ------------------------------------------------------------------ stages

def recipe_fractions(solid_wt, loading_mg_cm2, electrode_density_g_cm3, cbd_inner_porosity,
                     densities=None, active=("nmc622",)):
    """Target fractions from the recipe (seed 002 section 2.1)."""
    f = segment.fractions_from_recipe(solid_wt, active=tuple(active), densities=densities,
                                      electrode_density_g_cm3=electrode_density_g_cm3,
                                      cbd_inner_porosity=cbd_inner_porosity)
    return f


def read_tomogram(path, voxel_um, frame, chunk):
    """The electrode's synchrotron tomogram from a file (z through the thickness)."""
    from ..io import read

    grey = read(path, voxel_size=voxel_um, chunks=(int(chunk),) * 3 if chunk else "auto")
    if grey.dims != ("z", "y", "x"):
        raise InputError(f"parameters.electrodes.{frame}.tomogram",
                         f"a 3D volume (z, y, x), got dims {grey.dims}")
    return xr.Dataset({f"{frame}_grey": grey.astype(np.float32).assign_attrs(units="um")})


def make_sample(recipe, frame, shape, factor, voxel_size_um, particle_radius_um,
                cbd_gradient, blur_um, noise, seed, chunk):
    """Synthetic tomogram of an electrode made to its recipe's fractions, with its truth."""
    out = trin.synthetic_sample(shape, factor, voxel_size_um, {p: recipe[p] for p in _ORDER},
                                particle_radius_um, cbd_gradient, blur_um, noise, seed, chunk)
    return _vars(out, frame)


def _fib_phases(grey, annotations, label_names, steps, batch_size, seed):
    """FIB-SEM trinarization (section 3.3): Otsu AM, a U-Net for pores vs CBD trained on
    the annotated slices, slice-wise filling of inclusions."""
    model = segment.train_unet(grey, annotations, label_names=label_names, steps=int(steps),
                               batch_size=int(batch_size), seed=int(seed))
    seg = segment.trinarize_fibsem(grey, model)
    info = {"annotated_slices": sorted(int(z) for z in annotations),
            "unet_final_loss": float((model.history.get("loss") or [np.nan])[-1])}
    return seg, info


def _fibsem_input(recipe, fibsem, fibsem_voxel_um, annotations, label_names, synthetic):
    """(grey, truth or None, annotations, label names, true transform or None)."""
    if fibsem:
        from ..io import read

        grey = read(fibsem, voxel_size=fibsem_voxel_um).astype(np.float32).compute()
        if grey.dims != ("z", "y", "x"):
            raise InputError("fibsem", f"a 3D FIB-SEM volume, got dims {grey.dims}")
        if not annotations:
            raise InputError("annotations", "label images of a few FIB-SEM slices "
                             "({slice index: TIFF path}) to train the U-Net on")
        ann = {int(z): path for z, path in annotations.items()}
        names = {int(k): v for k, v in (label_names or {0: "pore", 1: "cbd", 2: "am"}).items()}
        return grey, None, ann, names, None
    fib = correlative_fibsem(fractions={p: recipe[p] for p in _ORDER},
                             **{k: tuple(v) if isinstance(v, list) else v
                                for k, v in synthetic.items() if k != "annotated_slices"})
    fib = fib.compute()
    n = fib.sizes["z"]
    # the slices a person would label, drawn here from the truth
    zs = np.linspace(0, n - 1, int(synthetic["annotated_slices"]) + 2)[1:-1].round()
    ann = {int(z): np.asarray(fib["truth"].isel(z=int(z)).values) for z in zs}
    return fib["grey"], fib["truth"], ann, {0: "pore", 1: "cbd", 2: "am"}, dict(fib.attrs)


def surface_site(like, recipe, synthetic, extent_um, min_inliers, seed, surface_scan=None,
                 surface_scan_pixel_um=None, surface_scan_z_um=None, fibsem_site_um=None):
    """The FIB-SEM site in the tomogram from an SEM surface scan (seed 002 section 2.2).

    The scan (a 2D file, ``surface_scan`` with ``surface_scan_pixel_um``, showing the
    tomogram plane at ``surface_scan_z_um``, the site at ``fibsem_site_um`` (y, x) in the
    scan's own coordinates; or synthetic: :func:`synth.correlative_surface` around the
    FIB-SEM cube of ``synthetic``) is located in that tomogram slice by SIFT features and
    RANSAC (:func:`register.locate`); the site's position follows from the found
    similarity.
    """
    if surface_scan:
        from ..io import read_tiff

        scan = read_tiff(surface_scan, voxel_size=surface_scan_pixel_um, dims=("y", "x"))
        scan = scan.compute()
        z, site_in_scan, truth = float(surface_scan_z_um), fibsem_site_um, None
    else:
        fractions = {p: recipe[p] for p in _ORDER}
        geo = {k: tuple(v) if isinstance(v, list) else v for k, v in synthetic.items()
               if k in ("shape", "factor", "voxel_size", "particle_radius_um", "cbd_gradient",
                        "seed")}
        scan = correlative_surface(offset_um=tuple(synthetic["offset_um"]),
                                   extent_um=tuple(extent_um), fractions=fractions, **geo)
        truth = np.asarray(scan.attrs["site_um"])
        z, site_in_scan = scan.attrs["z_um"], scan.attrs["site_in_scan_um"]
    ref = like.sel(z=z, method="nearest").compute()
    loc = register.locate(scan, ref, min_inliers=int(min_inliers), seed=int(seed))
    yx = loc.matrix @ np.array([float(site_in_scan[0]), float(site_in_scan[1]), 1.0])
    out = {"site_um": [float(z), float(yx[0]), float(yx[1])],
           "angle_deg": loc.angle_deg, "scale": loc.scale, "residual_um": loc.residual_um,
           "inliers": loc.inliers, "matches": loc.matches}
    if truth is not None:
        step = min(float(abs(like[d].values[1] - like[d].values[0])) for d in ("y", "x"))
        out.update(true_site_um=[float(v) for v in truth],
                   true_angle_deg=float(scan.attrs["angle_deg"]),
                   site_error_coarse_voxels=float(np.hypot(*(yx[:2] - truth[1:])) / step))
    return out


def compositions(like, recipe, site=None, *, frame, synthetic, unet_steps, unet_batch_size,
                 iterations, samples, margin_um, smooth_um, min_shared, seed, fibsem=None,
                 fibsem_voxel_um=None, fibsem_center_um=None, annotations=None,
                 label_names=None):
    """The FIB-SEM side of the chain, reduced to the tomogram's grid.

    The FIB-SEM volume (a file, ``fibsem``, with label images of a few slices,
    ``annotations``; or synthetic: :func:`synth.correlative_fibsem` with the parameters
    ``synthetic``, a known transform) is trinarized (:func:`_fib_phases`), registered into
    the tomogram region around ``fibsem_center_um`` (default: the site found by the SEM
    surface scan, :func:`surface_site`, or, without a scan, where the FIB-SEM volume's
    stated coordinates put it) as a similarity (its voxel size is known to a few percent),
    and its phases are averaged into the tomogram voxels it covers.
    """
    grey, truth, ann, names, true_transform = _fibsem_input(
        recipe, fibsem, fibsem_voxel_um, annotations, label_names, synthetic)
    seg, info = _fib_phases(grey, ann, names, unet_steps, unet_batch_size, seed)
    seg = seg.compute()
    if truth is not None:
        t = truth.values
        info["fib_jaccard"] = {p: float(((seg.values == k) & (t == k)).sum()
                                        / max(1, ((seg.values == k) | (t == k)).sum()))
                               for k, p in enumerate(_ORDER)}
    stated = np.array([float(grey[d].mean()) for d in ("z", "y", "x")])
    if fibsem_center_um is not None:
        center = np.asarray(fibsem_center_um, float)
    elif site:
        center = np.asarray(site["site_um"], float)
    else:
        center = stated
    half = np.array([float(grey[d].max() - grey[d].min()) / 2 for d in ("z", "y", "x")])
    # only the tomogram region around the FIB-SEM volume: in the whole tomogram it would
    # be too small a share to judge the fit by
    box = {d: slice(c - h - margin_um, c + h + margin_um)
           for d, c, h in zip(("z", "y", "x"), center, half)}
    # the FIB-SEM grey values blurred to about the tomogram's resolution: MI between a sharp
    # and a blurred image of one structure peaks less precisely (halves the position
    # error on the synthetic pair)
    moving = gaussian(grey, sigma_um=smooth_um).compute() if smooth_um else grey
    fixed = like.sel(box)
    fixed_center = np.array([float(fixed[d].mean()) for d in ("z", "y", "x")])
    reg = register.register(fixed, moving, initial=((0.0, 0.0, 0.0), stated - fixed_center),
                            scale=True, max_iterations=int(iterations), sampling=1.0, bins=32,
                            min_shared=float(min_shared), seed=int(seed))
    if not reg.converged:
        raise ConvergenceError(f"registration of {frame}'s FIB-SEM volume into its tomogram "
                               f"did not converge: {reg.reason}")
    comp = register.composition(seg, reg, like=like, samples=int(samples))
    info.update(matrix=reg.matrix.tolist(), scale=reg.scale, angle_deg=reg.angle_deg,
                shared_information=reg.shared_information, overlap=reg.overlap,
                iterations=reg.iterations, true_transform=true_transform)
    out = xr.Dataset({f"reg_{p}": comp["composition"].sel(phase=p, drop=True)
                      .assign_attrs(units="um", long_name=f"registered FIB-SEM {p} fraction")
                      for p in _ORDER})
    out["coverage"] = comp["coverage"].assign_attrs(units="um")
    for v in out.data_vars:  # the store keeps variable attrs, not the Dataset's
        out[v].attrs["correlative"] = info
    return _vars(out, frame)


def _covered_box(coverage):
    """The largest centred box (slices) of fully covered voxels."""
    full = np.asarray(coverage) >= 1.0
    if not full.any():
        raise ConvergenceError("the registered FIB-SEM volume covers no tomogram voxel fully")
    lo = [int(np.flatnonzero(full.any(axis=tuple(j for j in range(3) if j != i))).min())
          for i in range(3)]
    hi = [int(np.flatnonzero(full.any(axis=tuple(j for j in range(3) if j != i))).max()) + 1
          for i in range(3)]
    while not full[tuple(slice(a, b) for a, b in zip(lo, hi))].all():
        lo = [a + 1 for a in lo]
        hi = [b - 1 for b in hi]
        if any(b - a < 1 for a, b in zip(lo, hi)):
            raise ConvergenceError("no box of fully covered voxels in the registered region")
    return dict(zip(("z", "y", "x"), (slice(a, b) for a, b in zip(lo, hi))))


def train_model(grey, reg_pore, reg_cbd, reg_am, coverage, size_voxels, max_epochs,
                patience, max_samples, seed):
    """The correlative network trained on the registered compositions (section 3.3)."""
    box = _covered_box(coverage.values)
    comp = xr.concat([c.isel(box) for c in (reg_pore, reg_cbd, reg_am)],
                     dim="phase").assign_coords(phase=list(_ORDER))
    model = segment.train_mlp(grey.isel(box), comp, size_voxels=size_voxels,
                              max_epochs=max_epochs, patience=patience,
                              max_samples=max_samples or None, seed=seed)
    d = model.to_dict()
    d["training_box"] = {k: [s.start, s.stop] for k, s in box.items()}
    return d


def predict(grey, model, frame, size_voxels):
    """Network output per voxel, one variable per phase, named for the electrode."""
    return _vars(trin.predict(grey, model, size_voxels), frame)


def _synthetic_edx_map(composition_cbd, noise, seed):
    """EDX fluorine map (z, x) of the sample: the CBD fraction averaged through y (an EDX
    map integrates over its interaction volume and seed 002 averages a wide section; one
    tomogram slice of a small synthetic sample would be dominated by single particles)
    plus noise, with the tomogram's coordinates in um."""
    m = composition_cbd.mean("y").compute()
    rng = np.random.default_rng(int(seed) + 7)
    return m + rng.normal(0.0, noise, m.shape).astype(np.float32)


def edx_line(composition_cbd=None, noise=0.0, seed=0, edx_map=None, edx_pixel_um=None,
             edx_dims=("z", "x")):
    """Seed 002 Fig. 3: the EDX signal through the thickness (z) and its straight line, from
    an EDX map file (``edx_map``, a 2D image with pixel size ``edx_pixel_um``; z in the
    tomogram's frame, from the current collector) or, synthetic, from the true CBD
    composition (whose own line it is compared with)."""
    out = {}
    if edx_map:
        from ..io import read_tiff

        m = read_tiff(edx_map, voxel_size=edx_pixel_um, dims=tuple(edx_dims)).compute()
        if "z" not in m.dims:
            raise InputError("edx_dims", f"two dim names, one of them 'z', got {edx_dims!r}")
    else:
        m = _synthetic_edx_map(composition_cbd, noise, seed)
        # the line of the true CBD profile, which the map's line should recover
        true = composition_cbd.mean(("y", "x")).compute()
        slope, _ = np.polyfit(true["z"].values, true.values, 1)
        out["true_relative_gradient_per_um"] = float(slope / true.values.mean())
    prof = segment.edx_profile(m, axis="z")
    return {**out,"slope_per_um": prof.slope_per_um, "intercept": prof.intercept,
            "relative_gradient_per_um": prof.relative_gradient_per_um,
            "z_um": prof.profile.index.tolist(), "signal": prof.profile.tolist()}


def closing(kmeans, edx, targets, max_radius_voxels):
    """EDX-Closing of the k-means AM with the fitted EDX line as CBD profile (section 3.4)."""
    prof = edx["intercept"] + edx["slope_per_um"] * kmeans["z"].values
    return segment.edx_closing(kmeans, {p: targets[p] for p in _ORDER}, cbd_profile=prof,
                               max_radius_voxels=max_radius_voxels)


def _table2_row(seg):
    row = {f"fraction_{p}": float(v) for p, v in measure.volume_fractions(seg).items()}
    row.update({f"S_{p} (1/um)": float(v)
                for p, v in measure.surface_area(seg, s_int=True).items()})
    return row


def descriptors(*segs, names, n_cutouts):
    """Seed 002 Table 2 per method: mean and spread (sample std) over ``n_cutouts``
    non-overlapping full-thickness cut-outs."""
    import pandas as pd

    rows = []
    for name, s in zip(names, segs):
        df = measure.over_cutouts(_table2_row, measure.cutouts(s, n=n_cutouts))
        for q, r in df.iterrows():
            rows.append({"method": trin.METHODS[name], "quantity": q, "mean": r["mean"],
                         "std": r["std"]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ Table 3

def _thickness_ratio(seg, thickness_um):
    """Volume thickness over electrode thickness (at most 1): the slab of
    :func:`echem.thickness_similar`."""
    z = np.asarray(seg["z"].values, float)
    dz = float(z[1] - z[0]) if z.size > 1 else 1.0
    return min(1.0, (z[-1] - z[0] + dz) / float(thickness_um))


# A column with more of its electrolyte than this walled off from the separator measures
# the wall, not the CBD: its capacity hardly moves with gamma.
_CUT_OFF_WARN = 0.25


def _columns(seg, n, width_um, held_out=None):
    """``n`` full-thickness columns of the segmentation, in memory (seed 002's cut-outs).

    With ``held_out`` given (a synthetic electrode), ``2 n`` places are laid out side by
    side: the methods are simulated on every other one (False), the truth's 'measured'
    curve comes from the ones between (True). The truth row then tests whether a column
    stands for the electrode, not only the search."""
    width = None if width_um is None else float(width_um)
    if held_out is None:
        cuts = measure.cutouts(seg, n=int(n), width_um=width)
    else:
        cuts = measure.cutouts(seg, n=2 * int(n), width_um=width)[int(held_out)::2]
    return [c.compute() for c in cuts]


def _gamma_run(phases, gamma, current, ratio, cutoff, device):
    """One lithiation at ``gamma`` (a task of :func:`transport.sweep`)."""
    from ..echem import chen2020, discharge, scenario, thickness_similar

    r = discharge(phases, current=current * ratio, cutoff=cutoff, device=device,
                  parameters=thickness_similar(chen2020(), ratio),
                  scenario=scenario("homogenised_cbd", cbd_gamma=gamma))
    return {"result": {"capacity": float(r.capacity), "status": r.status,
                       "electrolyte_cut_off": _electrolyte_cut_off(phases, r.excluded),
                       "q": r.curve["capacity"].values.tolist(),
                       "v": r.curve["voltage"].values.tolist()}}


def _electrolyte_cut_off(phases, excluded):
    """Share of a column's electrolyte (pore, crack, CBD) that no path connects to the
    separator, from a discharge result's ``excluded`` counts."""
    codes = [c for c, n in phases.attrs["phases"].items() if n in ("pore", "crack", "cbd")]
    n = int(np.isin(phases.values, codes).sum())
    return excluded.get("electrolyte not connected to the separator", 0) / n if n else 0.0


def _run_grid(segs, gammas, columns, width_um, current, ratio, cutoff, device, held_out=None):
    """Every (segmentation, column, gamma) discharge, spread over the cluster."""
    from ..transport import sweep

    cases, keys = [], []
    for name, seg in segs.items():
        for j, col in enumerate(_columns(seg, columns, width_um, held_out)):
            for g in gammas:
                cases.append(dict(phases=col, gamma=float(g), current=float(current),
                                  ratio=float(ratio), cutoff=float(cutoff), device=device))
                keys.append((name, j, float(g)))
    results = list(sweep(_gamma_run, cases)["result"])
    return [dict(zip(("method", "column", "gamma"), k), **r) for k, r in zip(keys, results)]


def _mean_curve(runs):
    """Capacity averaged at equal voltage over the columns' curves."""
    lo = max(min(r["v"]) for r in runs)
    hi = min(max(r["v"]) for r in runs)
    v = np.linspace(hi, lo, 200)
    from ..echem.fitting import capacity_at

    return np.mean([capacity_at(r["q"], r["v"], v) for r in runs], axis=0), v


def discharge_curve(truth=None, *, thickness_um, true_gamma=None, path=None, capacity=None,
                    voltage=None, capacity_scale=1.0, current, columns, width_um, cutoff,
                    device):
    """The electrode's measured lithiation at the Table 3 current: a CSV export
    (:func:`io.read_curve`, ``path``) or, for a synthetic electrode, the truth's own
    resolved discharge at a known ``true_gamma``, averaged over columns between the ones
    the methods are simulated on (held out), so the Table 3 search has a known answer."""
    if path:
        from ..io import read_curve

        c = read_curve(path, capacity=capacity, voltage=voltage, capacity_scale=capacity_scale)
        return {"source": str(path), "capacity": c["capacity"].tolist(),
                "voltage": c["voltage"].tolist(), "true_gamma": None}
    ratio = _thickness_ratio(truth, thickness_um)
    runs = _run_grid({"truth": truth}, [true_gamma], columns, width_um, current, ratio,
                     cutoff, device, held_out=True)
    q, v = _mean_curve(runs)
    return {"source": f"synthetic: the truth at gamma {true_gamma:g}",
            "capacity": q.tolist(), "voltage": v.tolist(), "true_gamma": float(true_gamma),
            "thickness_ratio": ratio,
            "electrolyte_cut_off": max(r["electrolyte_cut_off"] for r in runs)}


def tau_cbd(measured, *segs, names, gammas, thickness_um, current, columns, width_um, cutoff,
            device):
    """Seed 002 Table 3 (section 5.2): per segmentation, the gamma of the homogenised CBD
    whose resolved lithiation best matches the measured curve.

    Every segmentation's full-thickness columns are discharged at ``current`` for every
    gamma of the grid (the paper's way: a family of curves per method, Fig. 11a, S8); the
    best match minimises the mean :func:`echem.curve_distance` to the measurement (RMS
    capacity difference at equal voltage). A volume thinner than the electrode (``ratio``
    = volume / electrode thickness) is simulated with :func:`echem.thickness_similar`.
    Rows give gamma, the Table's ``1/tau`` (= 2 gamma at the CBD's inner porosity 0.5,
    eq. 4) and tau_CBD = 0.5 / gamma.
    """
    from ..echem import curve_distance

    meas = (np.asarray(measured["capacity"], float), np.asarray(measured["voltage"], float))
    ratio = _thickness_ratio(segs[0], thickness_um)
    synthetic = measured.get("true_gamma") is not None
    runs = _run_grid(dict(zip(names, segs)), gammas, columns, width_um, current, ratio,
                     cutoff, device, held_out=False if synthetic else None)
    for r in runs:
        r["rms"] = curve_distance(meas, (r["q"], r["v"]))
    rows = []
    for name in names:
        mine = [r for r in runs if r["method"] == name]
        by_g = {g: [r for r in mine if r["gamma"] == float(g)] for g in gammas}
        score = {g: float(np.mean([r["rms"] for r in rs])) for g, rs in by_g.items()}
        best = min(score, key=score.get)
        label = trin.METHODS.get(name, name)
        cut = max(r["electrolyte_cut_off"] for r in mine)
        if cut > _CUT_OFF_WARN:
            log.warning("Table 3, %s: %.0f %% of a column's electrolyte cannot reach the "
                        "separator (walled off by solid layers); its gamma is not meaningful. "
                        "Use wider columns (table3_width_um).", label, 100 * cut)
        rows.append({"method": label, "gamma": float(best), "one_over_tau": 2.0 * best,
                     "tau_CBD": 0.5 / best, "rms_mAh_g": score[best],
                     "capacity_mAh_g": float(np.mean([r["capacity"] for r in by_g[best]])),
                     "at_grid_edge": best in (min(gammas), max(gammas)),
                     "electrolyte_cut_off": cut})
    return {"rows": rows, "thickness_ratio": ratio, "current_mA_cm2": float(current),
            "gammas": [float(g) for g in gammas],
            "runs": [{k: r[k] for k in ("method", "column", "gamma", "capacity", "status",
                                        "electrolyte_cut_off", "rms", "q", "v")}
                     for r in runs]}


def _electrode(p, name):
    e = dict(p["electrodes"][name] or {})
    e.setdefault("active", ["nmc622"])
    return e


def stages(p):
    names = list(trin.METHODS)
    out = []
    for e in p["electrodes"]:
        cfg = _electrode(p, e)
        real = bool(cfg.get("tomogram"))
        pre = f"{e}_"
        seed = cfg.get("seed", 0)
        geo = dict(shape=list(p["shape"]), factor=p["factor"], voxel_size=p["voxel_size_um"],
                   particle_radius_um=list(p["particle_radius_um"]),
                   cbd_gradient=cfg.get("cbd_gradient", 0.0), seed=seed)
        comp = tuple(f"{pre}composition_{q}" for q in _ORDER)
        reg = tuple(f"{pre}reg_{q}" for q in _ORDER)
        probs = tuple(f"{pre}nn_prob_{q}" for q in _ORDER)
        out.append(Stage(f"{pre}recipe", recipe_fractions, params=dict(
            solid_wt=cfg["solid_wt"], loading_mg_cm2=cfg["loading_mg_cm2"],
            electrode_density_g_cm3=p["electrode_density_g_cm3"],
            cbd_inner_porosity=p["cbd_inner_porosity"], densities=p["densities"],
            active=list(cfg["active"]))))
        if real:
            out.append(Stage(f"{pre}sample", read_tomogram, params=dict(
                path=str(cfg["tomogram"]), voxel_um=cfg.get("tomogram_voxel_um"), frame=e,
                chunk=p["chunk"]), outputs=(f"{pre}grey",)))
        else:
            out.append(Stage(f"{pre}sample", make_sample, inputs=(f"{pre}recipe",),
                             params=dict(frame=e, shape=geo["shape"], factor=geo["factor"],
                                         voxel_size_um=geo["voxel_size"],
                                         particle_radius_um=geo["particle_radius_um"],
                                         cbd_gradient=geo["cbd_gradient"], seed=seed,
                                         blur_um=p["blur_um"], noise=p["noise"],
                                         chunk=p["chunk"]),
                             outputs=(f"{pre}grey", f"{pre}truth") + comp))
        synthetic = dict(geo, edge_voxels=p["fib_edge_voxels"],
                         rotation_deg=list(p["fib_rotation_deg"]),
                         offset_um=list(p["fib_offset_um"]), scale=p["fib_scale"],
                         noise=p["noise"], annotated_slices=p["annotated_slices"])
        files = {k: cfg[k] for k in ("fibsem", "fibsem_voxel_um", "fibsem_center_um",
                                     "annotations", "label_names") if cfg.get(k) is not None}
        if files.get("fibsem"):
            files["fibsem"] = str(files["fibsem"])
            files["annotations"] = {str(k): str(v) for k, v in files.get("annotations", {}).items()}
        scan = {k: cfg[k] for k in ("surface_scan", "surface_scan_pixel_um",
                                    "surface_scan_z_um", "fibsem_site_um")
                if cfg.get(k) is not None}
        site = ()
        if scan or not real:
            if scan:
                scan["surface_scan"] = str(scan["surface_scan"])
            out.append(Stage(f"{pre}surface_site", surface_site,
                             inputs=(f"{pre}grey", f"{pre}recipe"),
                             params=dict(synthetic=synthetic, extent_um=list(p["surface_scan_um"]),
                                         min_inliers=p["surface_min_inliers"], seed=seed, **scan)))
            site = (f"{pre}surface_site",)
        out += [
            Stage(f"{pre}compositions", compositions,
                  inputs=(f"{pre}grey", f"{pre}recipe") + site,
                  params=dict(frame=e, synthetic=synthetic, unet_steps=p["unet_steps"],
                              unet_batch_size=p["unet_batch_size"],
                              iterations=p["register_iterations"],
                              samples=p["composition_samples"],
                              margin_um=p["register_margin_um"],
                              smooth_um=p["register_smooth_um"],
                              min_shared=p["register_min_shared"], seed=seed, **files),
                  outputs=reg + (f"{pre}coverage",)),
            Stage(f"{pre}mlp_model", train_model,
                  inputs=(f"{pre}grey",) + reg + (f"{pre}coverage",),
                  params=dict(size_voxels=p["mlp_size_voxels"],
                              max_epochs=p["mlp_max_epochs"], patience=p["mlp_patience"],
                              max_samples=p["mlp_max_samples"], seed=seed)),
            Stage(f"{pre}thresholding", trin.run_threshold,
                  inputs=(f"{pre}grey", f"{pre}recipe")),
            Stage(f"{pre}kmeans", trin.run_kmeans, inputs=(f"{pre}grey", f"{pre}recipe"),
                  params=dict(sample_voxels=p["kmeans_sample_voxels"], seed=seed)),
            Stage(f"{pre}nn_probabilities", predict, inputs=(f"{pre}grey", f"{pre}mlp_model"),
                  params=dict(frame=e, size_voxels=p["mlp_size_voxels"]), outputs=probs),
        ]
        for var, method in trin.METHODS.items():
            if method.startswith("NN-"):
                out.append(Stage(f"{pre}{var}", trin.run_conversion,
                                 inputs=probs + (f"{pre}recipe",), params=dict(method=method)))
        segs = tuple(f"{pre}{n}" for n in names)
        if cfg.get("edx_map"):
            edx = Stage(f"{pre}edx_line", edx_line, params=dict(
                edx_map=str(cfg["edx_map"]), edx_pixel_um=cfg.get("edx_pixel_um"),
                edx_dims=list(cfg.get("edx_dims", ["z", "x"]))))
        elif real:
            raise InputError(f"parameters.electrodes.{e}.edx_map",
                             "an EDX map (2D TIFF) for the EDX-Closing of a measured tomogram")
        else:
            edx = Stage(f"{pre}edx_line", edx_line, inputs=(f"{pre}composition_cbd",),
                        params=dict(noise=p["edx_noise"], seed=seed))
        out += [
            edx,
            Stage(f"{pre}edx_closing", closing,
                  inputs=(f"{pre}kmeans", f"{pre}edx_line", f"{pre}recipe"),
                  params=dict(max_radius_voxels=p["max_radius_voxels"])),
            Stage(f"{pre}agreement", trin.agreement, inputs=segs, params=dict(names=names)),
            Stage(f"{pre}descriptors", descriptors, inputs=segs,
                  params=dict(names=names, n_cutouts=p["n_cutouts"])),
        ]
        if not real:
            out.append(Stage(f"{pre}accuracy", trin.accuracy, inputs=(f"{pre}truth",) + segs,
                             params=dict(names=names)))
        if p["table3"]:
            out += _table3_stages(p, e, cfg, real)
    return out


def _table3_stages(p, e, cfg, real):
    from .echem import TABLE3

    pre = f"{e}_"
    methods = p["table3_methods"] or list(TABLE3)
    names = [v for v, m in trin.METHODS.items() if m in methods] + ([] if real else ["truth"])
    common = dict(thickness_um=float(cfg.get("thickness_um") or 10.0 * cfg["loading_mg_cm2"]
                                     / p["electrode_density_g_cm3"]),
                  current=p["table3_current_mA_cm2"], columns=p["table3_columns"],
                  width_um=p["table3_width_um"], cutoff=p["table3_cutoff_V"],
                  device=p["device"])
    curve = cfg.get("discharge_curve")
    if curve:
        spec = {"path": curve} if isinstance(curve, str) else dict(curve)
        spec["path"] = str(spec["path"])
        measured = Stage(f"{pre}discharge_curve", discharge_curve, params=dict(common, **spec))
    else:
        measured = Stage(f"{pre}discharge_curve", discharge_curve, inputs=(f"{pre}truth",),
                         params=dict(common, true_gamma=float(cfg.get("true_gamma")
                                                              or _TRUE_GAMMA)))
    return [measured,
            Stage(f"{pre}table3", tau_cbd,
                  inputs=(f"{pre}discharge_curve",) + tuple(f"{pre}{n}" for n in names),
                  params=dict(common, names=names, gammas=list(p["table3_gammas"])))]


# ------------------------------------------------------------------ report

def _registration_check(info, params):
    """Found vs true transform at the FIB-SEM cube's corners, in coarse voxels."""
    true = info["true_transform"]
    M, T = np.asarray(info["matrix"]), np.asarray(true["fixed_to_moving"])
    c = np.asarray(true["center_um"])
    half = params["fib_edge_voxels"] * true["true_voxel_size_um"] / 2
    corners = c + half * np.array([[a, b, g] for a in (-1, 1) for b in (-1, 1) for g in (-1, 1)])
    err = np.abs(corners @ M[:3, :3].T + M[:3, 3] - (corners @ T[:3, :3].T + T[:3, 3]))
    R_found = M[:3, :3] / info["scale"]
    R_true = np.asarray(true["rotation"]).T   # fixed -> moving rotates by R^T
    cos = (np.trace(R_found.T @ R_true) - 1) / 2
    return {"scale_found": info["scale"], "scale_true": true["scale"],
            "rotation_error_deg": float(np.degrees(np.arccos(np.clip(cos, -1, 1)))),
            "max_position_error_coarse_voxels":
                float(err.max() / true["scale"] / params["voxel_size_um"]),
            "shared_information": info["shared_information"]}


def _composition_error(ds, e):
    from ..core.progress import compute

    cov = ds[f"{e}_coverage"]
    full = (cov >= 1.0).data
    errs = compute(*(abs(ds[f"{e}_reg_{p}"] - ds[f"{e}_composition_{p}"]).data[full].mean()
                     for p in _ORDER), label="composition error")
    return float(np.mean(errs))


def _two_electrode_matrix(ag_lower, ag_upper, column):
    m_lo, m_up = trin._matrix(ag_lower, column), trin._matrix(ag_upper, column)
    m_up = m_up.loc[m_lo.index, m_lo.columns]
    n = len(m_lo)
    out = m_lo.copy()
    iu = np.triu_indices(n, 1)
    vals = out.values.copy()
    vals[iu] = m_up.values[iu]
    np.fill_diagonal(vals, np.nan)
    out.loc[:, :] = vals
    return out


def summarize(store, params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    ds = open_store(store)
    tables_in_store = set(store_tables(store))
    electrodes = list(params["electrodes"])
    summary, tables, figures = {"electrodes": {}}, {}, {}
    for e in electrodes:
        recipe = open_table(store, f"{e}_recipe")
        desc = open_table(store, f"{e}_descriptors")
        edx = open_table(store, f"{e}_edx_line")
        synthetic = f"{e}_truth" in ds
        fr = {"recipe": {p: recipe[p] for p in _ORDER}}
        if synthetic:
            truth = measure.volume_fractions(ds[f"{e}_truth"])
            fr["truth (realised)"] = {p: float(truth[p]) for p in _ORDER}
        order = [m for m in trin.METHODS.values() if m in set(desc["method"])]
        mean = desc.pivot(index="method", columns="quantity", values="mean").loc[order]
        std = desc.pivot(index="method", columns="quantity", values="std").loc[order]
        for m in mean.index:
            fr[m] = {p: float(mean.loc[m, f"fraction_{p}"]) for p in _ORDER}
        frac = pd.DataFrame.from_dict(fr, orient="index")
        tables[f"{e}: volume fractions, recipe vs realised (mean over cut-outs)"] = frac.round(4)
        t2 = mean.round(4).astype(str) + " ± " + std.round(4).astype(str)
        tables[f"{e}: Table 2 (mean ± std over {params['n_cutouts']} cut-outs)"] = t2
        info = ds[f"{e}_reg_am"].attrs["correlative"]
        reg = {k: info[k] for k in ("scale", "angle_deg", "shared_information", "overlap",
                                    "iterations")}
        if f"{e}_surface_site" in tables_in_store:
            site = open_table(store, f"{e}_surface_site")
            reg.update({f"surface_scan_{k}": site[k] for k in ("inliers", "residual_um")})
            if "site_error_coarse_voxels" in site:
                reg["surface_scan_site_error_coarse_voxels"] = site["site_error_coarse_voxels"]
        if info.get("true_transform"):
            reg.update(_registration_check(info, params))
        if synthetic:
            reg["composition_mae"] = _composition_error(ds, e)
            reg["fib_jaccard_min"] = min(info["fib_jaccard"].values())
        thick = float(ds["z"].values[-1] - ds["z"].values[0])
        summary["electrodes"][e] = {
            "recipe_fractions": fr["recipe"],
            "thickness_um_from_loading": 10.0 * params["electrodes"][e]["loading_mg_cm2"]
            / params["electrode_density_g_cm3"],
            "max_fraction_error_vs_recipe": float(
                (frac.drop(index=[k for k in ("recipe", "truth (realised)") if k in frac.index])
                 - frac.loc["recipe"]).abs().max().max()),
            "registration": reg,
            "edx": {"relative_gradient_per_um": edx["relative_gradient_per_um"],
                    "true_relative_gradient_per_um": edx.get("true_relative_gradient_per_um"),
                    "relative_gradient_over_thickness": edx["relative_gradient_per_um"] * thick},
        }
        if synthetic:
            acc = open_table(store, f"{e}_accuracy")
            tables[f"{e}: accuracy against truth (ranked)"] = acc
            summary["electrodes"][e]["accuracy_ranking"] = list(acc.index)
    # Fig. 4: one matrix per quantity, first electrode below, second above the diagonal
    ags = [open_table(store, f"{e}_agreement") for e in electrodes]
    lower, upper = ags[0], ags[-1]
    cols = ["fraction_equal"] + [f"jaccard_{q}" for q in ("am", "cbd", "pore")]
    fig, axes = plt.subplots(2, 2, figsize=(13, 12))
    for ax, c in zip(axes.ravel(), cols):
        m = _two_electrode_matrix(lower, upper, c)
        im = ax.imshow(m.values.astype(float), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(m)), m.columns, rotation=90, fontsize=7)
        ax.set_yticks(range(len(m)), m.index, fontsize=7)
        ax.set_title(f"{c.replace('_', ' ')}: {electrodes[0]} below, {electrodes[-1]} above")
        fig.colorbar(im, ax=ax, fraction=0.046)
        if c == "fraction_equal":
            tables["fraction of equal voxels (Fig. 4; lower: "
                   f"{electrodes[0]}, upper: {electrodes[-1]})"] = m.astype(float).round(3)
    fig.tight_layout()
    figures["agreement_matrices"] = fig
    # Fig. 2: one slice per method, electrodes in rows
    show = ["grey"] + (["truth"] if f"{electrodes[0]}_truth" in ds else []) + list(trin.METHODS)
    fig2, axes2 = plt.subplots(len(electrodes), len(show),
                               figsize=(1.6 * len(show), 1.9 * len(electrodes)), squeeze=False)
    for row, e in zip(axes2, electrodes):
        for ax, n in zip(row, show):
            if f"{e}_{n}" not in ds:
                ax.set_axis_off()
                continue
            v = ds[f"{e}_{n}"]
            img = v.isel(y=v.sizes["y"] // 2).values
            kw = dict(cmap="gray") if n == "grey" else dict(cmap="viridis", vmin=0, vmax=2)
            ax.imshow(img, aspect="auto", **kw)
            ax.set_title(trin.METHODS.get(n, n), fontsize=6)
            ax.set_axis_off()
        row[0].text(-0.1, 0.5, e, transform=row[0].transAxes, rotation=90, ha="right",
                    va="center", fontsize=8)
    fig2.tight_layout()
    figures["slices"] = fig2
    # Fig. 3: EDX profiles and their lines
    fig3, ax3 = plt.subplots(figsize=(6, 4))
    for e in electrodes:
        edx = open_table(store, f"{e}_edx_line")
        z = np.asarray(edx["z_um"])
        ax3.plot(z, edx["signal"], ".", label=f"{e} EDX signal")
        ax3.plot(z, edx["intercept"] + edx["slope_per_um"] * z, "-", label=f"{e} line")
    ax3.set_xlabel("z (um, through the thickness)")
    ax3.set_ylabel("CBD signal")
    ax3.legend(fontsize=7)
    fig3.tight_layout()
    figures["edx_profiles"] = fig3
    tables["registration of the FIB-SEM volume (against the known transform)"] = \
        pd.DataFrame({e: summary["electrodes"][e]["registration"] for e in electrodes}).T
    t3 = {e: open_table(store, f"{e}_table3") for e in electrodes
          if f"{e}_table3" in tables_in_store}
    if t3:
        _report_table3(store, t3, summary, figures, tables)
    return summary, figures, tables


def _report_table3(store, t3, summary, figures, tables):
    """Table 3 with seed 002's values beside it, and the measured curves overlaid with each
    method's best match (Fig. 11)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from .echem import TABLE3

    rows = {}
    for e, t in t3.items():
        for r in t["rows"]:
            rows.setdefault(r["method"], {}).update(
                {f"{e} 1/tau": r["one_over_tau"], f"{e} tau": r["tau_CBD"],
                 f"{e} rms (mAh/g)": r["rms_mAh_g"],
                 f"{e} electrolyte cut off": r["electrolyte_cut_off"]})
    df = pd.DataFrame.from_dict(rows, orient="index")
    df["seed 002 1/tau SL"] = [TABLE3.get(m, (np.nan, np.nan))[0] for m in df.index]
    df["seed 002 1/tau TL"] = [TABLE3.get(m, (np.nan, np.nan))[1] for m in df.index]
    ratio = {e: t["thickness_ratio"] for e, t in t3.items()}
    tables["Table 3: best-matching CBD transport, 1/tau = 2 gamma (seed 002 eq. 4), "
           f"lithiation at {next(iter(t3.values()))['current_mA_cm2']:g} mA/cm^2 "
           f"(volume / electrode thickness {ratio})"] = df.round(3)
    fig, axes = plt.subplots(1, len(t3), figsize=(6.5 * len(t3), 4.5), squeeze=False)
    for ax, (e, t) in zip(axes[0], t3.items()):
        meas = open_table(store, f"{e}_discharge_curve")
        best = {r["method"]: r["gamma"] for r in t["rows"]}
        summary["electrodes"][e]["table3"] = {
            "gamma": best, "measured": meas["source"], "thickness_ratio": t["thickness_ratio"],
            "at_grid_edge": [r["method"] for r in t["rows"] if r["at_grid_edge"]],
            "walled_off": [r["method"] for r in t["rows"]
                           if r["electrolyte_cut_off"] > _CUT_OFF_WARN]}
        if meas.get("true_gamma") is not None and "truth" in best:
            summary["electrodes"][e]["table3"]["truth_recovers_true_gamma"] = \
                best["truth"] == meas["true_gamma"]
        for run in t["runs"]:
            label = trin.METHODS.get(run["method"], run["method"])
            if run["column"] == 0 and run["gamma"] == best[label]:
                ax.plot(run["q"], run["v"], lw=1, label=f"{label} (gamma {run['gamma']:g})")
        ax.plot(meas["capacity"], meas["voltage"], "k--", lw=2, label="measured")
        ax.set_xlabel("capacity (mAh/g)")
        ax.set_ylabel("cell voltage (V)")
        ax.set_title(f"{e}: best match per method")
        ax.legend(fontsize=6)
    fig.tight_layout()
    figures["discharge_curves"] = fig
