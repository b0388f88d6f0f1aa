"""Galvanostatic discharge (lithiation) of a segmented cathode in a lithium half cell."""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import resource
import time

import numpy as np
import xarray as xr

from ..core.errors import InputError
from ..core.phases import phase_table
from ..core.arrays import as_segmentation, voxel_size
from ..transport._common import _threads, _torch, check_memory, resolve_device
from . import _cell
from ._solver import FARADAY, BelowCutoff, Solver, StepFailed
from .parameters import Parameters, chen2020
from .scenarios import Scenario

__all__ = ["DischargeResult", "discharge", "one_c_current"]

log = logging.getLogger(__name__)

#: Bytes per voxel of a solve: ~60 float64 fields (state, coefficients, 6 face-current
#: and conductance sets, CG work vectors for the two potentials).
BYTES_PER_VOXEL = 60 * 8


@dataclasses.dataclass
class DischargeResult:
    """Result of :func:`discharge`.

    Attributes
    ----------
    curve : xarray.Dataset
        Over ``time`` [s]: ``voltage`` [V], ``capacity`` [mAh/g], ``areal_capacity``
        [mAh/cm^2], ``mean_overpotential`` [V], ``c_e_min``/``c_e_max`` [mol/m^3],
        ``c_e_collector``/``c_e_separator`` (mean salt concentration in the first and last
        electrode layer), ``sto_mean``, ``lithium_error`` (cumulative, relative to I t / F),
        ``plane_current_error`` (worst plane, relative to I), ``sweeps``.
    capacity : float
        Specific capacity at the end [mAh/g of AM].
    areal_capacity : float
        [mAh/cm^2].
    current : float
        Applied current density [mA/cm^2]; ``c_rate`` the same as a C-rate and
        ``one_c`` the 1C current density [mA/cm^2] (``specific_capacity`` x AM mass).
    status : str
        ``"cutoff"`` (reached the cutoff voltage), ``"time limit"`` or ``"failed"``;
        ``reason`` says why a run stopped early.
    snapshots : xarray.Dataset or None
        ``sod`` (c_s / c_s_max), ``c_e`` [mol/m^3] and ``reaction`` [A/m^3] at the requested
        times, dims (snapshot, z, y, x) with micrometre coordinates.
    profile : xarray.DataArray
        Final state of discharge of the AM against distance to the collector [um].
    migration_only_share : float
        With the CBD clogged (``scenario.cbd_diffusion`` False): the share of the pore and
        crack electrolyte that reaches the separator only through the CBD, so gets current
        by migration but no salt by diffusion (0 otherwise). Near 1 the whole cut-out is one
        such pocket and its salt runs out within minutes at C/2.
    """

    curve: xr.Dataset
    capacity: float
    areal_capacity: float
    current: float
    c_rate: float
    one_c: float
    cutoff: float
    status: str
    reason: str
    mean_overpotential: float
    max_lithium_error: float
    max_plane_current_error: float
    salt_error: float
    steps: int
    rejected_steps: int
    newton_iterations: int
    pcg_iterations: int
    mean_pcg_iterations: float
    wall_time_s: float
    peak_memory_mb: float
    device: str
    voxels: int
    am_mass_g: float
    excluded: dict
    parameters: dict
    scenario: dict
    migration_only_share: float = 0.0
    snapshots: xr.Dataset | None = None
    profile: xr.DataArray | None = None

    def scalars(self):
        """Scalar results as a dict (one row of a sweep table)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (bool, int, float, str, np.generic)):
                out[f.name] = v.item() if isinstance(v, np.generic) else v
        out["electrolyte_cut_off_voxels"] = int(
            self.excluded.get("electrolyte not connected to the separator", 0))
        out.update({k: v for k, v in self.scenario.items() if k != "scenario"})
        out["scenario"] = self.scenario.get("scenario")
        return out


def _parse_c_rate(c_rate):
    if isinstance(c_rate, str):
        m = re.fullmatch(r"\s*(\d*\.?\d*)\s*C\s*(?:/\s*(\d*\.?\d+))?\s*", c_rate)
        if not m or (not m.group(1) and not m.group(2)):
            raise InputError("c_rate", f'a number or a string like "C/2" or "2C", got {c_rate!r}')
        num = float(m.group(1)) if m.group(1) else 1.0
        den = float(m.group(2)) if m.group(2) else 1.0
        return num / den
    try:
        return float(c_rate)
    except (TypeError, ValueError):
        raise InputError("c_rate", f'a number or a string like "C/2", got {c_rate!r}') from None


def one_c_current(phases, parameters=None):
    """The 1C current density [mA/cm^2] of a segmented electrode.

    1C is ``parameters.specific_capacity`` [mAh/g] (280 by default, seed 001) times the AM
    mass in the volume (``am_density`` x AM volume), per cross-section normal to z.
    """
    p = parameters or chen2020()
    seg, table, spacing = _load(phases)
    codes = [c for c, n in table.items() if n in _cell.AM_NAMES]
    n_am = int(np.isin(np.asarray(seg.values), codes).sum())
    return _one_c(n_am, tuple(spacing[d] for d in ("z", "y", "x")), seg.shape, p)[0]


def _load(phases):
    seg = as_segmentation(phases, argument="phases")
    if seg.ndim != 3 or tuple(seg.dims) != ("z", "y", "x"):
        raise InputError("phases", f"a 3D segmentation with dims (z, y, x) (z through the "
                         f"thickness, collector at z = 0), got dims {seg.dims}")
    if seg.sizes["z"] < 2:
        raise InputError("phases", f"at least 2 layers along z, got {dict(seg.sizes)}")
    return seg, phase_table(seg.attrs["phases"]), dict(zip(seg.dims, voxel_size(seg)))


def _one_c(n_am, spacing_um, shape, p):
    vol = np.prod(spacing_um) * 1e-18  # m^3 per voxel
    mass_g = n_am * vol * p.am_density * 1e3
    area_cm2 = spacing_um[1] * spacing_um[2] * shape[1] * shape[2] * 1e-8
    return p.specific_capacity * mass_g / area_cm2, mass_g, area_cm2


def _model(parameters, scenario):
    """The parameter set and scenario of a run (defaults: Chen2020, pristine)."""
    p = parameters if parameters is not None else chen2020()
    if not isinstance(p, Parameters):
        raise InputError("parameters", f"a Parameters set (see chen2020()), got "
                         f"{type(p).__name__}")
    sc = scenario if scenario is not None else Scenario()
    if not isinstance(sc, Scenario):
        raise InputError("scenario", f"a Scenario (see scenario()), got {type(sc).__name__}")
    return p, sc


def _validate_number(value, name, positive=True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(name, f"a number, got {value!r}") from None
    if not math.isfinite(v) or (positive and not v > 0):
        raise InputError(name, f"a positive number, got {value!r}")
    return v


def discharge(phases, current=None, c_rate=None, cutoff=3.5, parameters=None, scenario=None,
              separator=None, snapshots=(), t_max=None, area_factor=2.0 / 3.0, particles=None,
              device="auto", max_memory_gib=None, surface_extrapolation=True,
              max_steps=5000, min_step=1e-4, tol=1e-9, _boundaries=("collector", "lithium")):
    """Discharge (lithiate) a segmented cathode at constant current to a cutoff voltage.

    The electrode is the segmentation with z through the thickness: the aluminium current
    collector lies on the z = 0 face, a homogenised separator and the lithium-metal counter
    electrode lie beyond the last layer. Phases are named ``am`` (or ``nmc``), ``cbd``,
    ``pore``, ``crack`` (and optionally ``separator``). The model and its numerics are
    described in :mod:`electromicro_dask.echem`; the whole volume is solved in memory on
    one device (CUDA when available).

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (z, y, x) with ``attrs["phases"]`` and micrometre coordinates.
    current : float, optional
        Applied current density [mA/cm^2] of the electrode's cross-section.
    c_rate : float or str, optional
        The current as a C-rate (``0.5`` or ``"C/2"``); 1C is
        ``parameters.specific_capacity`` (default 280 mAh/g, seed 001) times the AM mass in
        the volume. Give exactly one of ``current`` and ``c_rate``.
    cutoff : float
        Lower cutoff voltage [V] (seed 001: 3.5 V); found to 0.1 mV.
    parameters : Parameters, optional
        Default :func:`~electromicro_dask.echem.chen2020`.
    scenario : Scenario, optional
        Model switches (film, clogging, CBD parameter); default pristine.
    separator : float, optional
        Separator thickness [um] (default ``parameters.separator_thickness``), rounded to
        whole voxels of the z spacing; 0 puts the lithium metal on the last layer.
    snapshots : sequence of float
        Times [s] at which to keep the state of discharge, salt concentration and reaction
        current fields (the final state is always kept).
    t_max : float, optional
        Time limit [s] (default 1.5 x the time to fill the AM at this current).
    area_factor : float
        Reactive area per voxel face, relative to the face area. Voxel faces overestimate a
        smooth surface by ~1.5 (6 pi r^2 vs 4 pi r^2 for a sphere; notes/echem.md 5), hence
        2/3 by default; use 1 for axis-aligned structures.
    particles : array, optional
        Particle labels (z, y, x); lithium then diffuses only within a particle.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    max_memory_gib : float, optional
        Cap on the memory of the solve (default: the transport cap, 16 GiB).
    surface_extrapolation : bool
        Extrapolate the surface concentration half a voxel with the face flux.
    max_steps : int
        Limit on accepted time steps.
    min_step : float
        Smallest time step [s]: a step that does not converge is halved down to this, then
        the run stops with ``status="failed"``, the reason and the curve so far.
    tol : float
        Nonlinear tolerance: the summed charge residual relative to the applied current.

    Returns
    -------
    DischargeResult

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> a = np.zeros((8, 2, 2), "uint8"); a[:, :, 0] = 2  # AM plates in electrolyte
    >>> seg = as_segmentation(a, phases={0: "pore", 2: "am"}, voxel_size=2.0)
    >>> r = discharge(seg, c_rate="1C", area_factor=1.0, device="cpu")  # doctest: +SKIP
    >>> r.status
    'cutoff'
    """
    torch = _torch()
    p, sc = _model(parameters, scenario)
    seg, table, spacing = _load(phases)
    if (current is None) == (c_rate is None):
        raise InputError("current", "exactly one of current (mA/cm^2) and c_rate")
    cutoff = _validate_number(cutoff, "cutoff")
    area_factor = _validate_number(area_factor, "area_factor")
    dev = resolve_device(device)
    h_um = tuple(spacing[d] for d in ("z", "y", "x"))
    check_memory(int(np.prod(seg.shape)), BYTES_PER_VOXEL, max_memory_gib, "discharge solve")
    codes = np.ascontiguousarray(np.asarray(seg.values))
    am_codes = [c for c, n in table.items() if n in _cell.AM_NAMES]
    n_am = int(np.isin(codes, am_codes).sum())
    if n_am == 0:
        raise InputError("phases", "a segmentation with active material (a phase named 'am')")
    one_c, mass_g, area_cm2 = _one_c(n_am, h_um, seg.shape, p)
    if current is not None:
        try:
            i_mA = float(current)
        except (TypeError, ValueError):
            i_mA = math.nan
        if not (math.isfinite(i_mA) and i_mA > 0):
            raise InputError("current", f"a positive current density in mA/cm^2 (discharge), "
                             f"got {current!r}")
    else:
        rate = _parse_c_rate(c_rate)
        if not (math.isfinite(rate) and rate > 0):
            raise InputError("c_rate", f"a positive C-rate, got {c_rate!r}")
        i_mA = rate * one_c
    sep_um = p.separator_thickness * 1e6 if separator is None else \
        _validate_number(separator, "separator", positive=False)
    if sep_um < 0:
        raise InputError("separator", f"a thickness >= 0 um, got {separator!r}")
    n_sep = int(round(sep_um / h_um[0]))
    if sep_um > 0 and n_sep == 0:
        n_sep = 1
    u0 = float(p.ocv(p.sto_init))
    if _boundaries == ("collector", "lithium") and cutoff >= u0:
        raise InputError("cutoff", f"a voltage below the open-circuit voltage at the start "
                         f"({u0:.4f} V at sto {p.sto_init}), got {cutoff}")
    if particles is not None:
        particles = np.asarray(getattr(particles, "values", particles))
        if particles.shape != seg.shape:
            raise InputError("particles", f"labels of the segmentation's shape {seg.shape}, "
                             f"got {particles.shape}")
    snap_times = sorted(_validate_number(t, "snapshots") for t in snapshots)
    cell = _cell.build(codes, table, h_um, p, sc, n_sep, area_factor, particles,
                       bottom=_boundaries[0], top=_boundaries[1])
    _check_cell(cell, _boundaries)
    if cell.migration_only > 0.5:
        log.warning("%.0f %% of the pore electrolyte reaches the separator only through the "
                    "clogged CBD: its salt is not replenished by diffusion and will run out",
                    100 * cell.migration_only)
    i_app = i_mA * 10.0 * cell.cross_section()  # A
    solver = Solver(cell, p, i_app, torch, dev, tol=tol,
                    surface_extrapolation=surface_extrapolation)
    with torch.no_grad(), _threads(int(np.prod(cell.shape)), dev):
        return _integrate(solver, cell, seg, p, sc, i_mA, one_c, mass_g, area_cm2, cutoff,
                          snap_times, t_max, max_steps, dev, h_um,
                          _validate_number(min_step, "min_step"))


def _check_cell(cell, boundaries):
    if boundaries != ("collector", "lithium"):
        return
    if not cell.am.any():
        raise InputError("phases", "active material connected to the current collector "
                         "(z = 0) through AM or CBD; none is")
    if not cell.elec.any():
        raise InputError("phases", "an electrolyte path (pore, crack or CBD) from the "
                         "separator into the electrode; none percolates")
    if not any(w.any() for w in cell.faces.values()):
        raise InputError("phases", "active material touching electrolyte that reaches the "
                         "separator; no such face exists, so no discharge is possible")


def _state_fields(solver, state):
    torch = solver.torch
    p = solver.p
    sod = torch.where(solver.am, state["c_s"] / p.c_s_max, float("nan"))
    ce = torch.where(solver.elec, state["c_e"], float("nan"))
    react = torch.where(solver.am, solver.reaction_density(state), float("nan"))
    return [a.cpu().numpy() for a in (sod, ce, react)]


def _integrate(solver, cell, seg, p, sc, i_mA, one_c, mass_g, area_cm2, cutoff, snap_times,
               t_max, max_steps, dev, h_um, min_step=1e-4):
    torch = solver.torch
    t0 = time.perf_counter()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    i_app = solver.current
    c_s0 = torch.where(solver.am, p.sto_init * p.c_s_max, 0.0).to(torch.float64)
    c_e0 = torch.where(solver.elec, torch.tensor(p.c_e_init, dtype=torch.float64,
                                                 device=dev), 0.0)
    li0, salt0 = solver.lithium(c_s0), solver.salt(c_e0)
    fill_time = FARADAY * p.c_s_max * (1 - p.sto_init) * float(solver.am.sum()) * \
        solver.vol / i_app
    t_max = 1.5 * fill_time if t_max is None else _validate_number(t_max, "t_max")
    rate = i_mA / one_c
    dt = min(max(1e-3 * 3600.0 / rate, 1e-3), 10.0)
    dt_max = 3600.0 / rate / 60.0
    rows, snaps, snap_t = [], [], []
    status, reason = "time limit", f"reached t_max = {t_max:.4g} s"
    n_el = cell.n_electrode
    try:
        state = solver.initial(c_s0, c_e0)
    except StepFailed as e:
        raise InputError("phases", f"no consistent initial state at this current: {e}") from None
    solver.cutoff = cutoff

    def record(t, st):
        plane = solver.plane_currents(st)
        ce = st["c_e_used"]
        el = solver.elec
        layer_mean = []
        for k in (0, n_el - 1):
            m = el[k]
            layer_mean.append(float(ce[k][m].mean()) if bool(m.any()) else float("nan"))
        li = solver.lithium(st["c_s"])
        it_f = i_app * t / FARADAY
        rows.append({
            "time": t, "voltage": st["V"],
            "capacity": i_app * t / 3.6 / mass_g,
            "areal_capacity": i_mA * t / 3600.0,
            "mean_overpotential": solver.mean_overpotential(st),
            "c_e_min": float(ce[el].min()), "c_e_max": float(ce[el].max()),
            "c_e_collector": layer_mean[0], "c_e_separator": layer_mean[1],
            "sto_mean": float(st["c_s"][solver.am].mean()) / p.c_s_max,
            "lithium_error": abs((li - li0) - it_f) / it_f if t > 0 else 0.0,
            "salt_error": abs(solver.salt(st["c_e"]) - salt0) / it_f if t > 0 else 0.0,
            "plane_current_error": float(np.abs(plane + i_app).max()) / i_app,
            "sweeps": st["sweeps"],
        })

    record(0.0, state)
    t, steps, rejected, pinned, dv_pinned = 0.0, 0, 0, 0, 0.0
    next_snaps = list(snap_times)
    while True:
        if t >= t_max * (1 - 1e-12):
            break
        if steps >= max_steps:
            status, reason = "failed", f"max_steps = {max_steps} reached"
            break
        dt_try = min(dt, t_max - t)
        if next_snaps:
            dt_try = min(dt_try, next_snaps[0] - t)
        try:
            new = solver.step(state, dt_try)
        except BelowCutoff:
            new = None
        except StepFailed as e:
            rejected += 1
            dt = dt_try / 2.0
            if dt < min_step:
                status, reason = "failed", f"at t = {t:.4g} s the solver failed at the " \
                    f"minimum step: {e}"
                break
            continue
        if new is None or new["V"] < cutoff:
            new, dt_hit = _hit_cutoff(solver, state, new, dt_try, cutoff)
            if dt_hit > 0:
                t += dt_hit
                steps += 1
                state = new
                record(t, state)
            status, reason = "cutoff", f"voltage reached {cutoff} V"
            if abs(state["V"] - cutoff) > 1e-4:
                reason = (f"the voltage collapsed from {state['V']:.4f} V to below {cutoff} V "
                          f"within a nanosecond: no voltage delivers the applied current "
                          f"any more (active-material surfaces full, fullest voxel at "
                          f"sto {_max_sto(solver, state):.4f}, or the salt run out, lowest "
                          f"c_e {float(state['c_e'][solver.elec].min()):.3g} mol/m^3)")
            break
        t += dt_try
        steps += 1
        dv = abs(new["V"] - state["V"])
        dsto = float((new["c_s"] - state["c_s"]).abs().max()) / p.c_s_max
        state = new
        record(t, state)
        if next_snaps and t >= next_snaps[0] - 1e-9:
            snaps.append(_state_fields(solver, state))
            snap_t.append(next_snaps.pop(0))
        if dsto < 0.01 and dv < 0.005 and dt_try >= dt * 0.999:
            # Grow more gently while the sweeps work harder (salt running out somewhere):
            # without growth there, every rejection would lower the step for good and a
            # run that approaches local depletion would crawl at a fraction of a second.
            if new["sweeps"] <= 12:
                dt = min(dt_try * 1.5, dt_max)
            elif new["sweeps"] <= 25:
                dt = min(dt_try * 1.2, dt_max)
        elif dv > 0.02 or dsto > 0.03:
            # never below min_step: a run that needs shorter steps stops there, as
            # documented, instead of crawling toward a singular point
            dt = max(dt_try / 1.5, min_step)
        # A run pinned at the minimum step makes no progress: stop instead of running
        # into max_steps (what a voltage that alternates from step to step would do).
        pinned = pinned + 1 if dt_try <= min_step * (1 + 1e-9) else 0
        dv_pinned = max(dv_pinned, dv) if pinned else 0.0
        if pinned >= 200:
            status, reason = "failed", (
                f"at t = {t:.4g} s the run made no progress: 200 steps in a row at the "
                f"minimum step ({min_step:g} s), the voltage moving by up to "
                f"{1e3 * dv_pinned:.3g} mV per step")
            break
        if steps % 50 == 0:
            log.info("t = %.1f s, V = %.4f V, dt = %.3g s", t, state["V"], dt)
    snaps.append(_state_fields(solver, state))
    snap_t.append(t)
    wall = time.perf_counter() - t0
    curve = xr.Dataset({k: ("time", np.array([r[k] for r in rows])) for k in rows[0]
                        if k != "time"}, coords={"time": [r["time"] for r in rows]})
    units = {"voltage": "V", "capacity": "mAh/g", "areal_capacity": "mAh/cm^2",
             "mean_overpotential": "V", "c_e_min": "mol/m^3", "c_e_max": "mol/m^3",
             "c_e_collector": "mol/m^3", "c_e_separator": "mol/m^3", "time": "s"}
    for k, u in units.items():
        curve[k].attrs["units"] = u
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    snapshots = _snapshot_dataset(snaps, snap_t, seg, cell, h_um)
    sod_final = snapshots["sod"].isel(snapshot=-1).sel(z=seg.z)
    profile = sod_final.mean(dim=("y", "x"), skipna=True)
    profile = profile.assign_coords(distance=("z", (seg.z.values - float(seg.z[0]))
                                              + h_um[0] / 2)).swap_dims({"z": "distance"})
    profile.name = "sod"
    profile.attrs.update({"long_name": "state of discharge (c_s / c_s_max)",
                          "units": "1"})
    profile.distance.attrs["units"] = "um"
    stats = solver.stats
    mean_eta = float(np.trapezoid(curve.mean_overpotential.values, curve.time.values) /
                     max(t, 1e-300)) if t > 0 else float(curve.mean_overpotential[0])
    return DischargeResult(
        curve=curve, capacity=float(curve.capacity[-1]),
        areal_capacity=float(curve.areal_capacity[-1]), current=i_mA, c_rate=i_mA / one_c,
        one_c=one_c, cutoff=cutoff, status=status, reason=reason, mean_overpotential=mean_eta,
        max_lithium_error=float(curve.lithium_error.max()),
        max_plane_current_error=float(curve.plane_current_error.max()),
        salt_error=float(curve.salt_error.max()), steps=steps, rejected_steps=rejected,
        newton_iterations=stats["newton"], pcg_iterations=stats["pcg_iterations"],
        mean_pcg_iterations=stats["pcg_iterations"] / max(stats["pcg_solves"], 1),
        wall_time_s=wall, peak_memory_mb=peak, device=str(dev), voxels=int(np.prod(cell.shape)),
        am_mass_g=mass_g, excluded=dict(cell.excluded), parameters=p.summary(),
        scenario=sc.describe(), migration_only_share=cell.migration_only, snapshots=snapshots,
        profile=profile)


def _max_sto(solver, state):
    """Highest state of discharge of the AM voxels."""
    return float(state["c_s"][solver.am].max()) / solver.p.c_s_max


def _hit_cutoff(solver, state, below, dt_below, cutoff, tol=1e-4):
    """Re-take the last step with the step length that ends on the cutoff (Illinois regula
    falsi on V(dt), which falls monotonically).

    ``below`` is the state that ended below the cutoff, or None where the voltage ran
    away (:class:`~._solver.BelowCutoff`). Returns the state and step length that end
    within ``tol`` of the cutoff, or, where the voltage collapses within the bracket's
    round-off, the last state above it."""
    lo_dt, lo_v, lo_state = 0.0, state["V"], state
    hi_dt, hi_state = dt_below, below
    hi_v = below["V"] if below is not None else cutoff - 1.0  # nominal: ran away below
    side = 0
    for _ in range(60):
        if hi_state is not None and abs(hi_v - cutoff) <= tol:
            return hi_state, hi_dt
        guess = lo_dt + (hi_dt - lo_dt) * (lo_v - cutoff) / (lo_v - hi_v)
        span = hi_dt - lo_dt
        guess = min(max(guess, lo_dt + 1e-6 * span), hi_dt - 1e-6 * span)
        try:
            s = solver.step(state, guess)
        except StepFailed:
            hi_dt, hi_state = guess, None
            continue
        if abs(s["V"] - cutoff) <= tol:
            return s, guess
        if s["V"] > cutoff:
            lo_dt, lo_v, lo_state = guess, s["V"], s
            if side == 1:
                hi_v = cutoff + (hi_v - cutoff) / 2.0
            side = 1
        else:
            hi_dt, hi_v, hi_state = guess, s["V"], s
            if side == -1:
                lo_v = cutoff + (lo_v - cutoff) / 2.0
            side = -1
        if span < 1e-9:
            break
    if hi_state is not None:
        return hi_state, hi_dt
    return lo_state, lo_dt


def _snapshot_dataset(snaps, times, seg, cell, h_um):
    nz = cell.shape[0]
    z0 = float(seg.z[0])
    z = z0 + np.arange(nz) * h_um[0]
    coords = {"snapshot": np.asarray(times, float), "z": z, "y": seg.y.values,
              "x": seg.x.values}
    names = ("sod", "c_e", "reaction")
    data = {n: (("snapshot", "z", "y", "x"), np.stack([s[i] for s in snaps]).astype("float32"))
            for i, n in enumerate(names)}
    ds = xr.Dataset(data, coords=coords)
    ds["sod"].attrs.update(units="1", long_name="state of discharge c_s / c_s_max")
    ds["c_e"].attrs.update(units="mol/m^3", long_name="salt concentration")
    ds["reaction"].attrs.update(units="A/m^3", long_name="reaction current per AM voxel "
                                "volume (anodic positive)")
    for d in ("z", "y", "x"):
        ds[d].attrs["units"] = "um"
    ds["snapshot"].attrs["units"] = "s"
    ds.attrs["separator_from_z"] = float(z0 + cell.n_electrode * h_um[0])
    return ds


def _instant(phases, current, parameters=None, scenario=None, separator=0.0, area_factor=1.0,
             boundaries=("collector", "lithium"), device="cpu", surface_extrapolation=True):
    """Cell voltage [V] at t = 0+ under ``current`` [mA/cm^2], before any concentration
    changes: the resistive response the analytic checks (ohmic slabs, Newman-Tobias)
    are about. ``boundaries`` ("collector" or "lithium" for the z = 0 and the far face)
    allows the symmetric cells of those checks."""
    torch = _torch()
    p = parameters if parameters is not None else chen2020()
    sc = scenario if scenario is not None else Scenario()
    seg, table, spacing = _load(phases)
    h_um = tuple(spacing[d] for d in ("z", "y", "x"))
    n_sep = int(round(separator / h_um[0]))
    cell = _cell.build(np.asarray(seg.values), table, h_um, p, sc, n_sep, area_factor,
                       bottom=boundaries[0], top=boundaries[1])
    dev = resolve_device(device)
    solver = Solver(cell, p, current * 10.0 * cell.cross_section(), torch, dev,
                    surface_extrapolation=surface_extrapolation)
    c_s0 = torch.where(solver.am, p.sto_init * p.c_s_max, 0.0).to(torch.float64)
    c_e0 = torch.where(solver.elec, p.c_e_init, 0.0).to(torch.float64)
    with torch.no_grad(), _threads(int(np.prod(cell.shape)), dev):
        state = solver.initial(c_s0, c_e0)
    return state["V"], solver, state
