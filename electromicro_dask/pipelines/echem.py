"""Electrochemistry on a segmented cathode (issue 11): the scenario study of seed 001 and the
CBD-transport study of seed 002, as one pipeline with a ``study`` parameter.

``study: seed001`` (seed 001, section "Gradient of CEI thickness and ununiform SOD", Figs. 4-5)
    segmentation -> CEI film resistivity calibrated to the seed's 43.8 mV mean voltage penalty
    (:func:`~electromicro_dask.echem.calibrate_film_resistivity`) -> the five scenarios
    (pristine, CEI, thick CEI, CBD clogging, full clogging) discharged at C/2 to 3.5 V ->
    discharge curves, lithiation (state of discharge) profile against the distance to the
    collector, salt-concentration profile along z (Fig. 5A), a z-y slice of the final state
    of discharge per scenario, and the scenario table beside the seed's numbers.
``study: seed002`` (seed 002, section 4, Fig. 11, Table 3)
    segmentation with a CBD phase -> capacity at 6 mA/cm^2 over the CBD transport parameter
    gamma (``scenario("homogenised_cbd", cbd_gamma=g)``) -> the six currents 1-12 mA/cm^2 at
    one gamma -> the blocking symmetric-cell impedance at that gamma -> the tau_CBD table in
    the form of seed 002 Table 3 (gamma, tau = 0.5 / gamma, the Table's "1/tau" = 2 gamma).
``study: thickness`` (seed 001, Fig. S9)
    segmentation -> its pore tortuosity factor through the thickness and its phase fractions
    -> stochastic electrodes (:func:`~electromicro_dask.synth.electrode`) with those
    fractions, the particle radius chosen among ``radius_factors`` times the stand-in's so
    that their pore tortuosity factor is nearest the segmentation's -> one such electrode per
    thickness in ``thicknesses_um`` (seed 001: 80, 160 and 240 um) discharged at
    ``thickness_c_rate`` (C/3) -> capacity and areal capacity over the thickness, curves.

The segmentation is a store variable (``input_variable``: z through the thickness, collector at
z = 0, phases named am/nmc, cbd, pore, crack, used whole: each discharge solves the whole
volume in memory on one device) or, by default, a synthetic stand-in: seed 001's NMC811
sub-volume (33 x 33 x 71.5 um, 58 / 9 / 29 / 4 % NMC / CBD / pore / crack,
:func:`~electromicro_dask.synth.pfib_electrode`) or a seed-002-like cut-out
(:func:`~electromicro_dask.synth.electrode`, AM / CBD / pore 0.5 / 0.2 / 0.3).

One study is one pipeline (not two) because both share the input, the solver settings and the
report, as the ``tofsims`` pipeline serves its anode and cathode recipes with one ``kind``
parameter; study-specific parameters are ignored by the other study.

Stages split what is expensive from what depends on it, so a changed parameter recomputes
only its own part: the calibration (which keeps its pristine and CEI runs, reused by the
scenario stage) does not depend on the scenario list; the gamma sweep, the current sweep and
the impedance are separate stages. Every discharge goes through
:func:`electromicro_dask.transport.sweep`: on a distributed client the independent runs
spread over the workers (annotated ``resources={"GPU": 1}`` where workers offer GPUs), the
calibration (sequential by nature) and the impedance run as one task each there.

Raw results are JSON tables (``film_calibration``, ``discharges``, ``gamma_sweep``,
``current_sweep``, ``impedance``: per run its scalars, curve, profiles and final z-y slice);
derived tables (``scenario_table``, ``discharge_curves``, ``tau_cbd``, ``current_table``,
``impedance_spectrum``) and, for seed 001, variables on the segmentation's grid
(``sod_profile_<scenario>`` and ``c_e_profile_<scenario>`` along z, ``sod_slice_<scenario>``
over (z, y); micrometre coordinates, the distance to the collector of layer k is
``z_k - z_0 + dz / 2``) are made from them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..core.errors import InputError
from ..core.store import open_store, open_table
from .stage import Stage

_SCENARIOS = ("pristine", "cei", "thick_cei", "cbd_clogging", "full_clogging")
_FILM = ("cei", "thick_cei", "cbd_clogging", "full_clogging")
_PARAMETER_SETS = ("nmc811_seed001", "chen2020")

PARAMETERS = {
    "study": "seed001",               # "seed001" (CEI / clogging scenarios) or "seed002" (gamma)
    "input_variable": "",             # 3D segmentation in the store; "" = synthetic stand-in
    # synthetic stand-in ([] / {} / 0: the study's default, see _DEFAULTS)
    "voxel_size_um": 2.0,
    "size_um": [],                    # [z, y, x] extent in um
    "fractions": {},                  # am (or nmc), cbd, pore and optionally crack; sum 1
    "particle_radius_um": [],         # mean and sd of the (secondary) particle radius
    "seed": 1,
    # solver and cell
    "parameter_set": "",              # "nmc811_seed001" or "chen2020"
    "separator_um": 25.0,
    "cutoff_V": 0.0,
    "device": "auto",                 # "auto" (CUDA where available), "cpu", "cuda"
    # seed001
    "c_rate": 0.5,
    "scenarios": list(_SCENARIOS),    # must include "pristine" (the penalties' reference)
    "film_resistivity_ohm_m": 0.0,    # 0: calibrate to target_penalty_mV
    "target_penalty_mV": 43.8,
    "calibration_rtol": 0.02,
    "calibration_max_evaluations": 8,
    "film_seed": 0,
    # seed002
    "gammas": [0.01, 0.015, 0.045, 0.06, 0.09, 0.12, 0.25],
    "gamma_current_mA_cm2": 6.0,
    "currents_mA_cm2": [1.0, 3.0, 6.0, 8.0, 10.0, 12.0],
    "gamma": 0.12,                    # of the current sweep and the impedance
    "t_max_s": 20000.0,
    # thickness
    "thicknesses_um": [80.0, 160.0, 240.0],
    "thickness_c_rate": 1.0 / 3.0,
    "radius_factors": [0.8, 1.0, 1.5],  # candidate radii, times particle_radius_um
    # measured curves laid over the simulated discharges: {label: CSV path} or {label:
    # {path, capacity, voltage, capacity_scale}} (io.read_curve)
    "measured_curves": {},
}

_DEFAULTS = {
    "seed001": {"size_um": [71.5, 33.0, 33.0],
                "fractions": {"am": 0.58, "cbd": 0.09, "pore": 0.29, "crack": 0.04},
                "particle_radius_um": [4.0, 1.0], "parameter_set": "nmc811_seed001",
                "cutoff_V": 3.5},
    "seed002": {"size_um": [60.0, 20.0, 20.0],
                "fractions": {"am": 0.5, "cbd": 0.2, "pore": 0.3},
                "particle_radius_um": [3.0, 0.6], "parameter_set": "chen2020",
                "cutoff_V": 3.0},
    "thickness": {"size_um": [40.0, 50.0, 50.0],
                  "fractions": {"am": 0.6, "cbd": 0.1, "pore": 0.3},
                  "particle_radius_um": [5.0, 1.2], "parameter_set": "nmc811_seed001",
                  "cutoff_V": 3.5},
}

#: Seed 001 (section "Gradient of CEI thickness and ununiform SOD", Figs. 4B and 5A):
#: capacity at C/2 [mAh/g], mean voltage penalty against pristine [mV], salt concentration
#: difference between the top and the bottom of the electrode at the end [%].
SEED001 = {
    "pristine": {"capacity_mAh_g": 120.0, "penalty_mV": 0.0, "c_e_top_bottom_pct": 8.0},
    "cei": {"capacity_mAh_g": 100.0, "penalty_mV": 43.8, "c_e_top_bottom_pct": 8.0},
    "thick_cei": {"capacity_mAh_g": 92.7, "penalty_mV": 79.4, "c_e_top_bottom_pct": 8.0},
    "cbd_clogging": {"capacity_mAh_g": 100.0, "penalty_mV": None, "c_e_top_bottom_pct": 15.0},
    "full_clogging": {"capacity_mAh_g": 100.0, "penalty_mV": None, "c_e_top_bottom_pct": 50.0},
}
SEED001_NOTE = (
    "Seed 001 numbers: 120 (pristine) and 92.7 (thick CEI) mAh/g are quoted, the CEI and both "
    "clogging cases 'around 100 mAh/g'; 43.8 and 79.4 mV mean penalties; 'ca. 8 %' top-bottom "
    "salt difference for the cases without clogging, 15 % and 'around 50 %' with. Absolute "
    "capacities depend on parameters seed 001 does not print (its Tables S2/S3: solid "
    "diffusivity, film resistivity, C-rate basis); the ordering of the scenarios and the "
    "ratios are what the comparison can test. The CEI resistivity is calibrated here to the "
    "seed's 43.8 mV, so that penalty is matched by construction. With the CBD clogged, no "
    "Li+ passes through the CBD (notes/echem.md 1.4): its AM faces fall silent and pores "
    "reached only through it drop out ('electrolyte_cut_off_voxels'). The clogging cases "
    "therefore test the pore network on its own: a coarse cut-out whose pores percolate "
    "mainly through the CBD (pore tortuosity far above the seed's) loses most of its "
    "capacity there, a property of the cut-out, not of the seed's electrode.")

#: Seed 002 Table 3: the "1/tau" (= 2 gamma) of the best match per trinarization, single-layer
#: (SL) and two-layer (TL) electrode.
TABLE3 = {
    "k-means": (0.02, 0.12), "EDX-Closing": (0.18, 0.24), "Thresholding": (0.02, 0.12),
    "NN-AM-CBD-P": (0.09, 0.18), "NN-AM-Cond": (0.09, 0.18), "NN-AM-P-CBD": (0.03, 0.18),
    "NN-CBD-AM-P": (0.09, 0.18), "NN-CBD-Cond": (0.09, 0.18), "NN-P-AM-CBD": (0.03, 0.18),
    "NN-P-Cond": (0.03, 0.18),
}


# --------------------------------------------------------------------------- parameters


def resolved(params):
    """The parameters with the study's defaults filled in for ``[]``, ``{}`` and 0 values."""
    p = dict(params)
    for k, v in _DEFAULTS.get(p["study"], {}).items():
        if not p[k]:
            p[k] = v
    return p


def _bad(key, expected):
    raise InputError(f"parameters.{key}", expected)


def _positive(p, key):
    v = p[key]
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0):
        _bad(key, f"a positive number, got {v!r}")


def _positive_list(p, key, n=None, at_least=1):
    v = p[key]
    ok = isinstance(v, (list, tuple)) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0
        for x in v)
    if not ok or (n is not None and len(v) != n) or len(v) < at_least:
        size = f"{n}" if n is not None else f"{at_least} or more"
        _bad(key, f"a list of {size} positive numbers, got {v!r}")


def _measured(params):
    """{label: DataFrame} of the recipe's measured curves (InputError naming the entry)."""
    from ..io import read_curve

    out = {}
    for label, spec in (params.get("measured_curves") or {}).items():
        spec = {"path": spec} if isinstance(spec, str) else dict(spec or {})
        if "path" not in spec:
            _bad(f"measured_curves.{label}", "a CSV path or a mapping with 'path'")
        try:
            out[label] = read_curve(**spec)
        except InputError as exc:
            _bad(f"measured_curves.{label}", str(exc))
        except TypeError as exc:
            _bad(f"measured_curves.{label}", f"keys among path, capacity, voltage, "
                 f"capacity_scale ({exc})")
    return out


def _overlay_measured(ax, measured):
    for label, c in measured.items():
        ax.plot(c["capacity"].values, c["voltage"].values, ls="--", color="k", lw=1.2,
                label=f"measured: {label}")
    if measured:
        ax.legend(fontsize="small")


def validate(params):
    """Check the parameters before anything is computed (InputError naming the key)."""
    if params["study"] not in _DEFAULTS:
        _bad("study", f"one of {sorted(_DEFAULTS)}, got {params['study']!r}")
    _measured(params)
    p = resolved(params)
    _positive(p, "voxel_size_um")
    h = float(p["voxel_size_um"])
    if not p["input_variable"]:
        _positive_list(p, "size_um", n=3)
        small = [s for s in p["size_um"] if s / h < 2]
        if small:
            _bad("size_um", f"extents of at least 2 voxels ({2 * h:g} um), got {p['size_um']}")
        fr = p["fractions"]
        names = {"nmc": "am"}
        keys = [names.get(k, k) for k in fr]
        if (len(set(keys)) != len(keys) or not {"am", "cbd", "pore"} <= set(keys)
                or not set(keys) <= {"am", "cbd", "pore", "crack"}):
            _bad("fractions", f"fractions of am (or nmc), cbd, pore and optionally crack, got "
                 f"{sorted(fr)}")
        vals = list(fr.values())
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                   for v in vals) or abs(sum(vals) - 1.0) > 0.01:
            _bad("fractions", f"non-negative fractions summing to 1, got {fr}")
        if fr.get("am", fr.get("nmc", 0)) <= 0:
            _bad("fractions", f"a positive active-material fraction, got {fr}")
        _positive_list(p, "particle_radius_um", n=2)
        if p["particle_radius_um"][0] < 1.5 * h:
            _bad("particle_radius_um", f"a mean radius of at least 1.5 voxels "
                 f"({1.5 * h:g} um at voxel_size_um {h:g}), got {p['particle_radius_um'][0]}")
    if p["parameter_set"] not in _PARAMETER_SETS:
        _bad("parameter_set", f"one of {list(_PARAMETER_SETS)}, got {p['parameter_set']!r}")
    sep = p["separator_um"]
    if not (isinstance(sep, (int, float)) and math.isfinite(sep) and sep >= 0):
        _bad("separator_um", f"a thickness >= 0 um, got {sep!r}")
    dev = p["device"]
    if not isinstance(dev, str) or not (dev in ("auto", "cpu") or dev.startswith("cuda")):
        _bad("device", f"'auto', 'cpu' or 'cuda[:N]', got {dev!r}")
    _positive(p, "cutoff_V")
    u0 = _open_circuit_start(p["parameter_set"])
    if p["cutoff_V"] >= u0:
        _bad("cutoff_V", f"a voltage below the open-circuit voltage at the start of the "
             f"discharge ({u0:.3f} V for {p['parameter_set']}), got {p['cutoff_V']}")
    if p["study"] == "seed001":
        _positive(p, "c_rate")
        sc = p["scenarios"]
        if (not isinstance(sc, (list, tuple)) or not sc or len(set(sc)) != len(sc)
                or not set(sc) <= set(_SCENARIOS)):
            _bad("scenarios", f"distinct names from {list(_SCENARIOS)}, got {sc!r}")
        if "pristine" not in sc:
            _bad("scenarios", "a list including 'pristine', the reference of the voltage "
                 f"penalties, got {sc!r}")
        rho = p["film_resistivity_ohm_m"]
        if not (isinstance(rho, (int, float)) and math.isfinite(rho) and rho >= 0):
            _bad("film_resistivity_ohm_m", f"0 (calibrate) or a resistivity > 0, got {rho!r}")
        _positive(p, "target_penalty_mV")
        _positive(p, "calibration_rtol")
        if p["calibration_max_evaluations"] < 1:
            _bad("calibration_max_evaluations",
                 f"a positive integer, got {p['calibration_max_evaluations']}")
    elif p["study"] == "thickness":
        _positive_list(p, "thicknesses_um")
        thin = [t for t in p["thicknesses_um"] if t / h < 2]
        if thin:
            _bad("thicknesses_um", f"thicknesses of at least 2 voxels ({2 * h:g} um), got "
                 f"{p['thicknesses_um']}")
        _positive(p, "thickness_c_rate")
        _positive_list(p, "radius_factors")
        _positive_list(p, "particle_radius_um", n=2)
        r0 = p["particle_radius_um"][0]
        # Every candidate electrode is generated, so every candidate radius must resolve.
        small = [k for k in p["radius_factors"] if k * r0 < 1.5 * h]
        if small:
            _bad("radius_factors", f"factors giving mean radii of at least 1.5 voxels "
                 f"({1.5 * h:g} um at voxel_size_um {h:g}) from particle_radius_um {r0:g}; "
                 f"{small} give less")
    else:
        _positive_list(p, "gammas")
        _positive_list(p, "currents_mA_cm2")
        _positive(p, "gamma_current_mA_cm2")
        _positive(p, "gamma")
        _positive(p, "t_max_s")


def _open_circuit_start(name):
    p = _parameter_set(name)
    return float(p.ocv(p.sto_init))


def _parameter_set(name):
    from .. import echem

    return {"nmc811_seed001": echem.nmc811_seed001, "chen2020": echem.chen2020}[name]()


# --------------------------------------------------------------------------- serialising


def _plain(obj):
    """JSON-able copy: arrays to lists, NaN and inf to None (read back by :func:`_arr`).

    Unlike :func:`~electromicro_dask.core.store.jsonable`, which writes non-finite floats
    as strings, NaN becomes null so the SOD slices (NaN outside the AM) read back as float
    arrays."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _arr(values):
    """A stored list (None for NaN) as a float array."""
    return np.array(values, dtype=float)


def _entry(r, seg, **labels):
    """One discharge as a JSON-able dict: scalars, curve, final profiles and a z-y slice."""
    snap = r.snapshots.isel(snapshot=-1)
    nz = seg.sizes["z"]
    sod = np.asarray(snap["sod"].values[:nz], float)     # the electrode layers
    ce = np.asarray(snap["c_e"].values[:nz], float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # layers without AM / electrolyte
        sod_profile = np.nanmean(sod, axis=(1, 2))
        ce_profile = np.nanmean(ce, axis=(1, 2))
    ix = seg.sizes["x"] // 2
    z = np.asarray(seg.z.values, float)
    dz = float(z[1] - z[0]) if z.size > 1 else float(seg.z.attrs.get("voxel_size", 1.0))
    curve = {k: np.asarray(r.curve[k].values) for k in r.curve.data_vars}
    curve["time"] = np.asarray(r.curve.time.values)
    out = {**labels, "scalars": r.scalars(), "curve": curve, "sod_profile": sod_profile,
           "c_e_profile": ce_profile, "sod_slice": sod[:, :, ix], "x_slice_um": float(seg.x[ix]),
           "z_um": z, "distance_um": z - z[0] + dz / 2, "y_um": np.asarray(seg.y.values, float)}
    return _plain(out)


def _settings(p):
    """What every discharge of a study shares (part of each stage's provenance)."""
    s = {"parameter_set": p["parameter_set"], "separator_um": float(p["separator_um"]),
         "cutoff_V": float(p["cutoff_V"]), "device": p["device"]}
    if p["study"] == "seed001":
        s.update(c_rate=float(p["c_rate"]), film_seed=int(p["film_seed"]))
    elif p["study"] == "thickness":
        s.update(c_rate=float(p["thickness_c_rate"]))
    else:
        s.update(t_max_s=float(p["t_max_s"]))
    return s


def _discharge_kwargs(settings):
    kw = dict(parameters=_parameter_set(settings["parameter_set"]),
              separator=settings["separator_um"], cutoff=settings["cutoff_V"],
              device=settings["device"])
    if "t_max_s" in settings:
        kw["t_max"] = settings["t_max_s"]
    return kw


# --------------------------------------------------------------------------- tasks


def _run_discharge(phases, name, settings, film_resistivity=None, gamma=None, current=None,
                   label=None):
    """One discharge (a task of :func:`~electromicro_dask.transport.sweep`)."""
    from ..echem import discharge, scenario

    sc = scenario(name, phases, film_resistivity=film_resistivity,
                  seed=settings.get("film_seed", 0), cbd_gamma=gamma)
    kw = _discharge_kwargs(settings)
    if current is None:
        kw["c_rate"] = settings["c_rate"]
    else:
        kw["current"] = current
    r = discharge(phases, scenario=sc, **kw)
    return {"result": _entry(r, phases, label=label or name, scenario=name, gamma=gamma,
                             current_mA_cm2=r.current)}


def _run_calibration(phases, settings, target_mV, rtol, max_evaluations):
    """The film calibration (one task: its runs depend on each other)."""
    from ..echem import calibrate_film_resistivity

    kw = _discharge_kwargs(settings)
    cal = calibrate_film_resistivity(phases, target=target_mV * 1e-3, c_rate=settings["c_rate"],
                                     seed=settings["film_seed"], rtol=rtol,
                                     max_evaluations=max_evaluations, **kw)
    runs = {"pristine": _entry(cal.pristine, phases, label="pristine", scenario="pristine",
                               gamma=None, current_mA_cm2=cal.pristine.current),
            "cei": _entry(cal.cei, phases, label="cei", scenario="cei", gamma=None,
                          current_mA_cm2=cal.cei.current)}
    return {"result": _plain({
        "calibrated": True, "resistivity_ohm_m": cal.resistivity,
        "penalty_mV": 1e3 * cal.penalty, "target_mV": 1e3 * cal.target,
        "converged": abs(cal.penalty / cal.target - 1) <= rtol,
        "evaluations": [{"resistivity_ohm_m": e["resistivity"], "penalty_mV": 1e3 * e["penalty"],
                         "capacity_mAh_g": e["capacity"]} for e in cal.evaluations],
        "runs": runs})}


def _run_impedance(phases, settings, gamma):
    from ..echem import impedance, scenario

    r = impedance(phases, parameters=_parameter_set(settings["parameter_set"]),
                  scenario=scenario("homogenised_cbd", cbd_gamma=gamma),
                  separator=settings["separator_um"], device=settings["device"])
    s = r.spectrum
    return {"result": _plain({**r.scalars(), "gamma": gamma, "excluded": r.excluded,
                              "frequency_Hz": s.frequency.values, "z_real_ohm_cm2": s.z_real.values,
                              "z_imag_ohm_cm2": s.z_imag.values})}


def _sweep(fn, cases):
    """``fn`` over ``cases`` through transport.sweep; the ``result`` of each, in order."""
    from ..transport import sweep

    if not cases:
        return []
    return list(sweep(fn, cases)["result"])


def _segmentation(phases):
    from ..core.arrays import as_segmentation

    seg = as_segmentation(phases, argument="phases").compute()
    if seg.dims != ("z", "y", "x"):
        raise InputError("phases", f"a 3D segmentation (z, y, x), got dims {seg.dims}")
    return seg


# --------------------------------------------------------------------------- stages


def make_electrode(size_um, voxel_size_um, fractions, particle_radius_um, seed):
    """The synthetic stand-in: :func:`~electromicro_dask.synth.pfib_electrode` when the
    fractions include cracks (seed 001: cracks inside the NMC particles), else
    :func:`~electromicro_dask.synth.electrode` (AM / CBD / pore)."""
    from ..synth import electrode, pfib_electrode

    h = float(voxel_size_um)
    shape = tuple(max(2, int(round(v / h))) for v in size_um)
    fr = {("am" if k == "nmc" else k): float(v) for k, v in fractions.items()}
    crack = fr.pop("crack", 0.0)
    radius = tuple(float(r) for r in particle_radius_um)
    if crack > 0:
        am = fr["am"] + crack
        ds = pfib_electrode(shape, h, fractions={"am": am, "cbd": fr["cbd"], "pore": fr["pore"]},
                            particle_radius_um=radius, crack_fraction=crack / am,
                            crack_width_um=h, crack_margin_um=h, seed=seed)
    else:
        ds = electrode(shape, h, fractions=fr, particle_radius_um=radius, seed=seed)
    out = ds["phases"]
    out.attrs["long_name"] = "synthetic stand-in electrode (collector at z = 0)"
    return out


def film_calibration(phases, needed, resistivity, target_mV, rtol, max_evaluations, settings):
    """CEI resistivity [Ohm m] giving seed 001's mean voltage penalty of the CEI case.

    Keeps the pristine and CEI runs of the calibration (the scenario stage reuses them)."""
    if not needed:
        return {"calibrated": False, "resistivity_ohm_m": None, "runs": {},
                "reason": "no film scenario in the list"}
    if resistivity > 0:
        return {"calibrated": False, "resistivity_ohm_m": float(resistivity), "runs": {},
                "reason": "film_resistivity_ohm_m given"}
    seg = _segmentation(phases)
    (res,) = _sweep(_run_calibration, [dict(phases=seg, settings=settings, target_mV=target_mV,
                                            rtol=rtol, max_evaluations=max_evaluations)])
    return res


def run_scenarios(phases, film_calibration, scenarios, settings):
    """The seed-001 scenarios; the runs the calibration made are taken from it."""
    seg = _segmentation(phases)
    reuse = film_calibration.get("runs") or {}
    rho = film_calibration.get("resistivity_ohm_m")
    todo = [s for s in scenarios if s not in reuse]
    done = dict(zip(todo, _sweep(_run_discharge, [
        dict(phases=seg, name=s, settings=settings, film_resistivity=rho) for s in todo])))
    return {"scenarios": list(scenarios), "film_resistivity_ohm_m": rho,
            "reused_from_calibration": [s for s in scenarios if s in reuse],
            "runs": {s: reuse[s] if s in reuse else done[s] for s in scenarios}}


def _penalty_mV(reference, run):
    from ..echem import mean_voltage_penalty

    ok = [np.isfinite(_arr(c["curve"]["capacity"])).all() and len(c["curve"]["capacity"]) >= 2
          for c in (reference, run)]
    if not all(ok):
        return np.nan
    return 1e3 * mean_voltage_penalty((_arr(reference["curve"]["capacity"]),
                                       _arr(reference["curve"]["voltage"])),
                                      (_arr(run["curve"]["capacity"]),
                                       _arr(run["curve"]["voltage"])))


def _top_bottom_pct(run):
    """Salt concentration difference separator side - collector side at the end [%]."""
    c = run["curve"]
    top, bottom = _arr(c["c_e_separator"])[-1], _arr(c["c_e_collector"])[-1]
    return float(100.0 * (top - bottom) / top)


def _scalar(run, key):
    v = run["scalars"].get(key)
    return np.nan if v is None else v


def scenario_table(discharges, film_calibration):
    """Per scenario: our numbers beside seed 001's (capacities, penalties, salt gradient),
    and the run's steps and conservation errors."""
    import pandas as pd

    runs = discharges["runs"]
    ref = runs["pristine"]
    rows = []
    for s in discharges["scenarios"]:
        r = runs[s]
        seed = SEED001[s]
        rows.append({
            "scenario": s,
            "capacity_mAh_g": _scalar(r, "capacity"),
            "seed001_capacity_mAh_g": seed["capacity_mAh_g"],
            "areal_capacity_mAh_cm2": _scalar(r, "areal_capacity"),
            "penalty_mV": _penalty_mV(ref, r),
            "seed001_penalty_mV": np.nan if seed["penalty_mV"] is None else seed["penalty_mV"],
            "c_e_top_bottom_pct": _top_bottom_pct(r),
            "seed001_c_e_top_bottom_pct": seed["c_e_top_bottom_pct"],
            "pores_fed_through_cbd_only_pct": 100 * _scalar(r, "migration_only_share"),
            "electrolyte_cut_off_voxels": _scalar(r, "electrolyte_cut_off_voxels"),
            "status": r["scalars"].get("status"),
            "steps": _scalar(r, "steps"),
            "rejected_steps": _scalar(r, "rejected_steps"),
            "lithium_error": _scalar(r, "max_lithium_error"),
            "salt_error": _scalar(r, "salt_error"),
            "plane_current_error": _scalar(r, "max_plane_current_error"),
            "film_mean_nm": _scalar(r, "film_mean_nm"),
            "film_resistivity_ohm_m": _scalar(r, "film_resistivity_ohm_m"),
            "current_mA_cm2": _scalar(r, "current"),
            "wall_time_s": _scalar(r, "wall_time_s"),
        })
    return pd.DataFrame(rows).set_index("scenario")


def _curve_rows(run, **labels):
    import pandas as pd

    c = run["curve"]
    cols = {"time": "time_s", "voltage": "voltage_V", "capacity": "capacity_mAh_g",
            "areal_capacity": "areal_capacity_mAh_cm2", "mean_overpotential": "overpotential_V",
            "c_e_min": "c_e_min_mol_m3", "c_e_max": "c_e_max_mol_m3",
            "c_e_collector": "c_e_collector_mol_m3", "c_e_separator": "c_e_separator_mol_m3",
            "sto_mean": "sto_mean", "lithium_error": "lithium_error",
            "salt_error": "salt_error", "plane_current_error": "plane_current_error"}
    df = pd.DataFrame({new: _arr(c[old]) for old, new in cols.items() if old in c})
    for i, (k, v) in enumerate(labels.items()):
        df.insert(i, k, v)
    return df


def discharge_curves(discharges):
    """All seed-001 discharge curves, one row per recorded time."""
    import pandas as pd

    return pd.concat([_curve_rows(discharges["runs"][s], scenario=s)
                      for s in discharges["scenarios"]], ignore_index=True)


def profiles(phases, discharges):
    """Per scenario: the final state of discharge and salt concentration per layer along z
    and the final state of discharge over a z-y slice, on the segmentation's grid."""
    import xarray as xr

    z, y = phases.z, phases.y
    out = {}
    for s in discharges["scenarios"]:
        r = discharges["runs"][s]
        dist = (f"distance to the collector = z - {float(z[0]):g} + dz / 2 um "
                "(voxel centres)")
        out[f"sod_profile_{s}"] = xr.DataArray(
            _arr(r["sod_profile"]), dims=("z",), coords={"z": z},
            attrs={"units": "1", "long_name": f"mean state of discharge c_s / c_s_max per layer "
                   f"at the end, {s}", "scenario": s, "distance": dist})
        out[f"c_e_profile_{s}"] = xr.DataArray(
            _arr(r["c_e_profile"]), dims=("z",), coords={"z": z},
            attrs={"units": "mol/m^3", "long_name": f"mean salt concentration per layer at "
                   f"the end, {s}", "scenario": s, "distance": dist})
        out[f"sod_slice_{s}"] = xr.DataArray(
            _arr(r["sod_slice"]).astype("float32"), dims=("z", "y"), coords={"z": z, "y": y},
            attrs={"units": "1", "long_name": f"state of discharge at the end, z-y slice at "
                   f"x = {r['x_slice_um']:g} um (NaN outside the AM), {s}", "scenario": s,
                   "x_um": r["x_slice_um"]})
    return xr.Dataset(out)


def gamma_sweep(phases, gammas, current, settings):
    """Capacity at one current over the CBD transport parameter gamma (seed 002 Fig. 11a)."""
    seg = _segmentation(phases)
    runs = _sweep(_run_discharge, [
        dict(phases=seg, name="homogenised_cbd", settings=settings, gamma=float(g),
             current=float(current), label=f"gamma {g:g}") for g in gammas])
    return {"gammas": [float(g) for g in gammas], "current_mA_cm2": float(current),
            "runs": runs}


def current_sweep(phases, currents, gamma, settings):
    """The currents of seed 002 (1-12 mA/cm^2) at one gamma (Fig. 11b)."""
    seg = _segmentation(phases)
    runs = _sweep(_run_discharge, [
        dict(phases=seg, name="homogenised_cbd", settings=settings, gamma=float(gamma),
             current=float(i), label=f"{i:g} mA/cm2") for i in currents])
    return {"currents_mA_cm2": [float(i) for i in currents], "gamma": float(gamma),
            "runs": runs}


def run_impedance(phases, gamma, settings):
    """Blocking symmetric-cell impedance at one gamma (seed 002 section 4, Fig. S6)."""
    seg = _segmentation(phases)
    (res,) = _sweep(_run_impedance, [dict(phases=seg, settings=settings, gamma=float(gamma))])
    return res


def tau_cbd(gamma_sweep):
    """Seed 002 Table 3 form: gamma, tau_CBD = 0.5 / gamma, the Table's "1/tau" = 2 gamma,
    with the capacity at the sweep's current and the Table 3 trinarizations whose best match
    had this 1/tau (SL single-layer, TL two-layer electrode)."""
    import pandas as pd

    rows = []
    for g, r in zip(gamma_sweep["gammas"], gamma_sweep["runs"]):
        inv = 2.0 * g
        seed = [f"{m} ({lay})" for m, vals in TABLE3.items()
                for lay, v in zip(("SL", "TL"), vals) if abs(v - inv) < 1e-9]
        rows.append({"gamma": g, "tau_CBD": 0.5 / g, "one_over_tau_table3": inv,
                     "current_mA_cm2": gamma_sweep["current_mA_cm2"],
                     "capacity_mAh_g": _scalar(r, "capacity"),
                     "areal_capacity_mAh_cm2": _scalar(r, "areal_capacity"),
                     "status": r["scalars"].get("status"), "steps": _scalar(r, "steps"),
                     "lithium_error": _scalar(r, "max_lithium_error"),
                     "seed002_table3": ", ".join(seed)})
    return pd.DataFrame(rows)


def current_table(current_sweep):
    """Capacity over the current at one gamma."""
    import pandas as pd

    return pd.DataFrame([{
        "current_mA_cm2": i, "c_rate": _scalar(r, "c_rate"), "gamma": current_sweep["gamma"],
        "capacity_mAh_g": _scalar(r, "capacity"),
        "areal_capacity_mAh_cm2": _scalar(r, "areal_capacity"),
        "status": r["scalars"].get("status"), "steps": _scalar(r, "steps"),
        "lithium_error": _scalar(r, "max_lithium_error"),
        "c_e_top_bottom_pct": _top_bottom_pct(r)}
        for i, r in zip(current_sweep["currents_mA_cm2"], current_sweep["runs"])])


def sweep_curves(gamma_sweep, current_sweep):
    """All seed-002 discharge curves, one row per recorded time."""
    import pandas as pd

    parts = [_curve_rows(r, sweep="gamma", gamma=g, current_mA_cm2=gamma_sweep["current_mA_cm2"])
             for g, r in zip(gamma_sweep["gammas"], gamma_sweep["runs"])]
    parts += [_curve_rows(r, sweep="current", gamma=current_sweep["gamma"], current_mA_cm2=i)
              for i, r in zip(current_sweep["currents_mA_cm2"], current_sweep["runs"])]
    return pd.concat(parts, ignore_index=True)


def impedance_spectrum(impedance):
    import pandas as pd

    return pd.DataFrame({k: _arr(impedance[k]) for k in
                         ("frequency_Hz", "z_real_ohm_cm2", "z_imag_ohm_cm2")})


def _fractions(seg):
    """am / cbd / pore fractions of a segmentation (nmc counts as am, cracks as pore),
    normalised over those phases."""
    v = np.asarray(seg.values)
    out = {"am": 0.0, "cbd": 0.0, "pore": 0.0}
    for code, name in seg.attrs["phases"].items():
        key = {"nmc": "am", "crack": "pore"}.get(name, name)
        if key in out:
            out[key] += float((v == code).mean())
    total = sum(out.values())
    return {k: x / total for k, x in out.items()}


def _pore_tau(seg, settings):
    from ..transport import tortuosity_factor

    # tortuosity_factor takes "cpu" or "auto" (a discharge's "cuda:N" picks CUDA there too)
    device = "cpu" if settings["device"] == "cpu" else "auto"

    return float(tortuosity_factor(seg, phase=[n for n in ("pore", "crack")
                                               if n in seg.attrs["phases"].values()],
                                   axis="z", device=device).tau)


def thickness_match(phases, radius_um, radius_factors, voxel_size_um, seed, settings):
    """The stochastic electrodes' particle radius: among ``radius_factors`` times
    ``radius_um`` (mean, sd), the one whose electrode (the segmentation's size and phase
    fractions) has the pore tortuosity factor through the thickness nearest the
    segmentation's (compared in log)."""
    from ..core.arrays import voxel_size

    seg = _segmentation(phases)
    fr = _fractions(seg)
    size = [n * h for n, h in zip(seg.shape, voxel_size(seg))]
    tau = _pore_tau(seg, settings)
    if not (np.isfinite(tau) and tau > 0):
        raise InputError("input_variable", "an electrode whose pore space percolates through "
                         f"the thickness (z) to match, got a pore tortuosity factor of {tau}")
    cands = []
    for k in radius_factors:
        r = [float(radius_um[0] * k), float(radius_um[1] * k)]
        e = make_electrode(size, voxel_size_um, fr, r, seed).compute()
        cands.append({"radius_factor": float(k), "radius_um": r, "pore_tau": _pore_tau(e, settings),
                      "fractions": _fractions(e)})
    best = min(cands, key=lambda c: abs(math.log(c["pore_tau"] / tau))
               if np.isfinite(c["pore_tau"]) and c["pore_tau"] > 0 else math.inf)
    return _plain({"pore_tau": tau, "fractions": fr, "size_um": size, "candidates": cands,
                   "radius_um": best["radius_um"], "matched_pore_tau": best["pore_tau"]})


def thickness_discharges(thickness_match, thicknesses, voxel_size_um, seed, settings):
    """One stochastic electrode per thickness (the matched radius, the segmentation's
    fractions and cross-section) discharged at the study's C-rate."""
    m = thickness_match
    electrodes, taus = [], []
    for t in thicknesses:
        e = make_electrode([float(t)] + m["size_um"][1:], voxel_size_um, m["fractions"],
                           m["radius_um"], seed).compute()
        electrodes.append(e)
        taus.append(_pore_tau(e, settings))
    runs = _sweep(_run_discharge, [dict(phases=e, name="pristine", settings=settings,
                                        label=f"{t:g} um") for t, e in zip(thicknesses, electrodes)])
    return _plain({"thicknesses_um": [float(t) for t in thicknesses], "pore_tau": taus,
                   "fractions": [_fractions(e) for e in electrodes], "runs": runs})


def thickness_table(thickness_discharges, thickness_match):
    """Capacity and areal capacity over the thickness, with each electrode's pore
    tortuosity factor beside the measured one."""
    import pandas as pd

    d = thickness_discharges
    return pd.DataFrame([{
        "thickness_um": t, "pore_tau": tau, "measured_pore_tau": thickness_match["pore_tau"],
        "am_fraction": fr.get("am"), "capacity_mAh_g": _scalar(r, "capacity"),
        "areal_capacity_mAh_cm2": _scalar(r, "areal_capacity"),
        "current_mA_cm2": _scalar(r, "current"), "c_e_top_bottom_pct": _top_bottom_pct(r),
        "status": r["scalars"].get("status"), "steps": _scalar(r, "steps"),
        "lithium_error": _scalar(r, "max_lithium_error")}
        for t, tau, fr, r in zip(d["thicknesses_um"], d["pore_tau"], d["fractions"], d["runs"])])


def thickness_curves(thickness_discharges):
    import pandas as pd

    d = thickness_discharges
    return pd.concat([_curve_rows(r, thickness_um=t) for t, r in
                      zip(d["thicknesses_um"], d["runs"])], ignore_index=True)


def stages(params):
    p = resolved(params)
    src = p["input_variable"] or "synthetic_phases"
    settings = _settings(p)
    out = []
    if not p["input_variable"]:
        out.append(Stage("synthetic_phases", make_electrode, params=dict(
            size_um=[float(v) for v in p["size_um"]], voxel_size_um=float(p["voxel_size_um"]),
            fractions=p["fractions"], particle_radius_um=[float(v) for v in
                                                          p["particle_radius_um"]],
            seed=p["seed"])))
    if p["study"] == "seed001":
        sc = list(p["scenarios"])
        out += [
            Stage("film_calibration", film_calibration, inputs=(src,), params=dict(
                needed=any(s in _FILM for s in sc),
                resistivity=float(p["film_resistivity_ohm_m"]),
                target_mV=float(p["target_penalty_mV"]), rtol=float(p["calibration_rtol"]),
                max_evaluations=int(p["calibration_max_evaluations"]), settings=settings)),
            Stage("discharges", run_scenarios, inputs=(src, "film_calibration"),
                  params=dict(scenarios=sc, settings=settings)),
            Stage("scenario_table", scenario_table, inputs=("discharges", "film_calibration")),
            Stage("discharge_curves", discharge_curves, inputs=("discharges",)),
            Stage("profiles", profiles, inputs=(src, "discharges"),
                  outputs=tuple(f"{k}_{s}" for s in sc
                                for k in ("sod_profile", "c_e_profile", "sod_slice"))),
        ]
    elif p["study"] == "thickness":
        h = float(p["voxel_size_um"])
        out += [
            Stage("thickness_match", thickness_match, inputs=(src,), params=dict(
                radius_um=[float(v) for v in p["particle_radius_um"]],
                radius_factors=[float(k) for k in p["radius_factors"]], voxel_size_um=h,
                seed=p["seed"], settings=settings)),
            Stage("thickness_discharges", thickness_discharges, inputs=("thickness_match",),
                  params=dict(thicknesses=[float(t) for t in p["thicknesses_um"]],
                              voxel_size_um=h, seed=p["seed"], settings=settings)),
            Stage("thickness_table", thickness_table,
                  inputs=("thickness_discharges", "thickness_match")),
            Stage("discharge_curves", thickness_curves, inputs=("thickness_discharges",)),
        ]
    else:
        out += [
            Stage("gamma_sweep", gamma_sweep, inputs=(src,), params=dict(
                gammas=[float(g) for g in p["gammas"]],
                current=float(p["gamma_current_mA_cm2"]), settings=settings)),
            Stage("current_sweep", current_sweep, inputs=(src,), params=dict(
                currents=[float(i) for i in p["currents_mA_cm2"]], gamma=float(p["gamma"]),
                settings=settings)),
            Stage("impedance", run_impedance, inputs=(src,), params=dict(
                gamma=float(p["gamma"]), settings={k: settings[k] for k in
                                                   ("parameter_set", "separator_um", "device")})),
            Stage("tau_cbd", tau_cbd, inputs=("gamma_sweep",)),
            Stage("current_table", current_table, inputs=("current_sweep",)),
            Stage("discharge_curves", sweep_curves, inputs=("gamma_sweep", "current_sweep")),
            Stage("impedance_spectrum", impedance_spectrum, inputs=("impedance",)),
        ]
    return out


# --------------------------------------------------------------------------- report


_KINDS = {
    "discharge_curves": ("capacity [mAh/g]", "voltage [V]"),
    "lithiation_profile": ("distance to the collector [um]", "state of discharge at the end"),
    "electrolyte_profile": ("distance to the collector [um]",
                            "salt concentration at the end [mol/m$^3$]"),
}


def _plot(ax, kind, runs, labels):
    """One kind of figure (:data:`_KINDS`) for several runs on ``ax``."""
    for lab, r in zip(labels, runs):
        if kind == "discharge_curves":
            x, y, kw = _arr(r["curve"]["capacity"]), _arr(r["curve"]["voltage"]), {}
        else:
            key = "sod_profile" if kind == "lithiation_profile" else "c_e_profile"
            x, y, kw = _arr(r["distance_um"]), _arr(r[key]), {"marker": "."}
        ax.plot(x, y, label=lab, **kw)
    ax.set(xlabel=_KINDS[kind][0], ylabel=_KINDS[kind][1])
    ax.legend(fontsize="small")


def _fig(n=1, w=6.0, h=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(w * n, h), squeeze=False)
    return fig, list(axes[0])


_ERRORS = ("max_lithium_error", "salt_error", "max_plane_current_error")


def _status_note(runs, labels):
    bad = {lab: f"{r['scalars'].get('status')}: {r['scalars'].get('reason')}"
           for lab, r in zip(labels, runs) if r["scalars"].get("status") != "cutoff"}
    return bad


def _summarize_seed001(store, params):
    disc = open_table(store, "discharges")
    cal = open_table(store, "film_calibration")
    table = open_table(store, "scenario_table")
    sc = disc["scenarios"]
    runs = [disc["runs"][s] for s in sc]
    figures = {}
    rate = f"C/{1 / params['c_rate']:g}" if params["c_rate"] < 1 else f"{params['c_rate']:g}C"
    titles = {"discharge_curves": f"{rate} lithiation to {params['cutoff_V']:g} V "
                                  "(seed 001 Fig. 4B)",
              "lithiation_profile": "lithiation at the cutoff (seed 001 Fig. 4C)",
              "electrolyte_profile": "mean salt concentration per layer at the end "
                                     "(seed 001 Fig. 5A)"}
    measured = _measured(params)
    for kind, title in titles.items():
        fig, (ax,) = _fig()
        _plot(ax, kind, runs, sc)
        if kind == "discharge_curves":
            _overlay_measured(ax, measured)
        ax.set_title(title, fontsize="small")
        figures[kind] = fig
    ds = open_store(store)
    fig, axes = _fig(len(sc), w=2.6, h=4.2)
    for ax, s in zip(axes, sc):
        v = ds[f"sod_slice_{s}"]
        z, y = v.z.values, v.y.values
        dz = (z[-1] - z[0]) / max(len(z) - 1, 1) / 2
        dy = (y[-1] - y[0]) / max(len(y) - 1, 1) / 2
        im = ax.imshow(v.values, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="equal",
                       extent=(y[0] - dy, y[-1] + dy, z[0] - dz, z[-1] + dz))
        ax.set_title(s, fontsize="small")
        ax.set_xlabel("y [um]")
    axes[0].set_ylabel("z [um] (collector at the bottom)")
    fig.colorbar(im, ax=axes, label="state of discharge at the end", shrink=0.8)
    figures["sod_slices"] = fig

    cap = table["capacity_mAh_g"]
    pen = table["penalty_mV"]
    grad = table["c_e_top_bottom_pct"]
    checks = {}
    if len(cap) > 1:
        checks["pristine highest capacity"] = bool(cap.idxmax() == "pristine")
    if "thick_cei" in cap and len(cap) > 2:
        checks["thick CEI lowest capacity"] = bool(cap.idxmin() == "thick_cei")
    if {"cei", "thick_cei"} <= set(pen.index) and pen["cei"] > 0:
        checks["penalty ratio thick / CEI (seed 1.81)"] = round(float(pen["thick_cei"] /
                                                                     pen["cei"]), 3)
    middle = [s for s in ("cei", "cbd_clogging", "full_clogging") if s in cap]
    if len(middle) == 3:
        checks["CEI and the two clogging cases within 5 % of each other"] = bool(
            cap[middle].max() / cap[middle].min() - 1 <= 0.05)
    if {"pristine", "cbd_clogging", "full_clogging"} <= set(grad.index):
        checks["salt gradient pristine < CBD clogging < full clogging"] = bool(
            grad["pristine"] < grad["cbd_clogging"] < grad["full_clogging"])
    summary = {
        "study": "seed001",
        "electrode": {"variable": params["input_variable"] or "synthetic_phases",
                      "shape": list(ds[params["input_variable"] or "synthetic_phases"].shape)},
        "film_resistivity_ohm_m": cal.get("resistivity_ohm_m"),
        "calibration": {k: cal.get(k) for k in ("calibrated", "penalty_mV", "target_mV",
                                                "converged", "reason") if k in cal},
        "capacity_mAh_g": {s: float(cap[s]) for s in sc},
        "penalty_mV": {s: (None if not np.isfinite(pen[s]) else float(pen[s])) for s in sc},
        "c_e_top_bottom_pct": {s: float(grad[s]) for s in sc},
        "checks": checks,
        "not_at_cutoff": _status_note(runs, sc),
        # Full precision here: the DataFrame tables keep 10 decimals only.
        "conservation_errors": {s: {k: r["scalars"].get(k) for k in _ERRORS}
                                for s, r in zip(sc, runs)},
        "note": SEED001_NOTE,
    }
    import pandas as pd

    tables = {"scenarios beside seed 001 (absolute capacities depend on parameters seed 001 "
              "does not print; see the note in the summary)": table}
    if cal.get("evaluations"):
        tables["CEI resistivity calibration (target "
               f"{cal.get('target_mV', 0):.1f} mV)"] = pd.DataFrame(cal["evaluations"])
    return summary, figures, tables


def _summarize_seed002(store, params):
    gs = open_table(store, "gamma_sweep")
    cs = open_table(store, "current_sweep")
    imp = open_table(store, "impedance")
    tau = open_table(store, "tau_cbd")
    cur = open_table(store, "current_table")
    figures = {}
    g_lab = [f"gamma {g:g} (tau {0.5 / g:.3g})" for g in gs["gammas"]]
    i_lab = [f"{i:g} mA/cm2" for i in cs["currents_mA_cm2"]]
    titles = (f"{gs['current_mA_cm2']:g} mA/cm$^2$ over gamma (seed 002 Fig. 11a)",
              f"gamma {cs['gamma']:g} over the current (seed 002 Fig. 11b)")
    measured = _measured(params)
    for kind in _KINDS:
        fig, axes = _fig(2)
        for ax, src, labels, title in zip(axes, (gs, cs), (g_lab, i_lab), titles):
            _plot(ax, kind, src["runs"], labels)
            if kind == "discharge_curves":
                _overlay_measured(ax, measured)
            ax.set_title(title, fontsize="small")
        figures[kind] = fig
    fig, (ax,) = _fig(w=5.5, h=4.5)
    zr, zi = _arr(imp["z_real_ohm_cm2"]), _arr(imp["z_imag_ohm_cm2"])
    ax.plot(zr, -zi, marker=".")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(r"Re $Z$ [$\Omega$ cm$^2$]")
    ax.set_ylabel(r"$-$Im $Z$ [$\Omega$ cm$^2$]")
    ax.set_title(f"blocking symmetric cell, gamma {imp['gamma']:g}: R_ion = "
                 f"{imp['pore_resistance']:.3g} Ohm cm2, tau = {imp['tortuosity']:.3g}",
                 fontsize="small")
    figures["nyquist"] = fig

    import pandas as pd

    caps_g = tau["capacity_mAh_g"].to_numpy()
    caps_i = cur["capacity_mAh_g"].to_numpy()
    src = params["input_variable"] or "synthetic_phases"
    summary = {
        "study": "seed002",
        "electrode": {"variable": src, "shape": list(open_store(store)[src].shape)},
        "capacity_over_gamma_mAh_g": dict(zip([f"{g:g}" for g in gs["gammas"]],
                                              map(float, caps_g))),
        "capacity_over_current_mAh_g": dict(zip([f"{i:g}" for i in cs["currents_mA_cm2"]],
                                                map(float, caps_i))),
        "checks": {  # monotonic within 0.1 % of the largest capacity
            "capacity does not fall with gamma": bool(np.all(np.diff(caps_g[np.argsort(
                tau["gamma"].to_numpy())]) >= -1e-3 * np.nanmax(caps_g))),
            "capacity does not rise with current": bool(np.all(np.diff(caps_i[np.argsort(
                cur["current_mA_cm2"].to_numpy())]) <= 1e-3 * np.nanmax(caps_i))),
        },
        "impedance": {k: imp.get(k) for k in ("gamma", "pore_resistance", "tortuosity",
                                              "macmullin", "porosity", "thickness",
                                              "separator_resistance", "capacitance")},
        "not_at_cutoff": {**_status_note(gs["runs"], g_lab), **_status_note(cs["runs"], i_lab)},
        "max_conservation_errors": {k: max((r["scalars"].get(k) or 0.0)
                                           for r in gs["runs"] + cs["runs"]) for k in _ERRORS},
        "note": "gamma = eps / tau of the CBD's electrolyte at the inner porosity 0.5 "
                "(seed 002 eqs. 3-4): tau_CBD = 0.5 / gamma; seed 002 Table 3's '1/tau' "
                "column is 2 gamma. Seed 002's fitted values: gamma 0.12 (tau 4.2, two-layer, "
                "EDX-Closing), 0.06 (tau 8.3, k-means).",
    }
    imp_row = pd.DataFrame([{k: imp.get(k) for k in (
        "gamma", "pore_resistance", "tortuosity", "macmullin", "porosity", "thickness",
        "separator_resistance", "electronic_resistance", "low_frequency_resistance",
        "capacitance", "steps", "wall_time_s")}])
    tables = {"tau_CBD (seed 002 Table 3 form)": tau, "capacity over the current": cur,
              "blocking symmetric-cell impedance (Ohm cm2, um, F/cm2)": imp_row}
    return summary, figures, tables


def _summarize_thickness(store, params):
    match = open_table(store, "thickness_match")
    disc = open_table(store, "thickness_discharges")
    table = open_table(store, "thickness_table")
    labels = [f"{t:g} um" for t in disc["thicknesses_um"]]
    fig, (ax,) = _fig()
    _plot(ax, "discharge_curves", disc["runs"], labels)
    _overlay_measured(ax, _measured(params))
    rate = params["thickness_c_rate"]
    ax.set_title(f"C/{1 / rate:.3g} to {params['cutoff_V']:g} V, stochastic electrodes "
                 "(seed 001 Fig. S9)", fontsize="small")
    areal = table["areal_capacity_mAh_cm2"].to_numpy()
    grav = table["capacity_mAh_g"].to_numpy()
    taus = np.asarray([np.nan if t is None else t for t in disc["pore_tau"]], float)
    summary = {
        "study": "thickness",
        "measured_pore_tau": match["pore_tau"], "matched_pore_tau": match["matched_pore_tau"],
        "radius_um": match["radius_um"], "fractions": match["fractions"],
        "capacity_mAh_g": dict(zip(labels, map(float, grav))),
        "areal_capacity_mAh_cm2": dict(zip(labels, map(float, areal))),
        "checks": {"areal capacity rises with thickness": bool(np.all(np.diff(areal) > 0)),
                   "capacity per gram falls with thickness": bool(np.all(np.diff(grav) <= 0)),
                   "every electrode's pores percolate through the thickness": bool(
                       np.all(np.isfinite(taus)))},
        "not_at_cutoff": _status_note(disc["runs"], labels),
    }
    blocked = [lab for lab, tau in zip(labels, taus) if not np.isfinite(tau)]
    if blocked:
        # A stand-in whose pores do not span the thickness conducts through its CBD only:
        # its capacity says more about the cross-section than about the thickness.
        summary["pores_not_percolating"] = (
            f"the pores of the {', '.join(blocked)} electrode(s) do not connect the separator "
            "to the collector; widen size_um's cross-section (y, x) or refine voxel_size_um")
    import pandas as pd

    tables = {"capacity over the thickness": table,
              "particle radius chosen by the pore tortuosity factor": pd.DataFrame(
                  [{"radius_um": c["radius_um"][0], "pore_tau": c["pore_tau"]}
                   for c in match["candidates"]])}
    return summary, {"discharge_curves": fig}, tables


def summarize(store, params):
    p = resolved(params)
    if p["study"] == "seed001":
        return _summarize_seed001(store, p)
    if p["study"] == "thickness":
        return _summarize_thickness(store, p)
    return _summarize_seed002(store, p)
