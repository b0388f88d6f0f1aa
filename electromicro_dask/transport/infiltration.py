"""Electrolyte wetting of an electrode's pore space by two-phase lattice Boltzmann.

Seed 001 (its Fig. S7) runs the impregnation model of Shodiev et al. (Energy Storage Mater.
38 (2021) 80) on the PFIB-SEM volume and finds the electrolyte fills over 97 % of the pores.
Here the liquid electrolyte and the gas it displaces are the liquid and vapour of the
single-component Shan-Chen model (:mod:`._shan_chen`: D3Q19, density ratio about 22, the gas
22 times less viscous than the liquid). The electrolyte enters from a reservoir held at the
liquid density beyond the separator face; the gas leaves through a vapour reservoir beyond
the current-collector face (``outlet=True``) or stays in the cell (``outlet=False``).

Units. At micrometre scales the filling is viscous-capillary (inertia is negligible), so
its time scale is ``mu L / sigma``: one lattice step is
``(mu / sigma) / (mu_lu / sigma_lu) * dx`` seconds, with the electrolyte's viscosity ``mu``
and surface tension ``sigma`` and the voxel size ``dx``. The lattice fluid's inertia is not
matched (its Ohnesorge number is smaller), which does not matter in that regime.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..core.errors import ConvergenceError, InputError
from . import _shan_chen as sc
from ._common import (_threads, check_memory, clusters, codes_for, compute_oriented, cubic,
                      oriented_spacing, resolve_device, resolve_dtype)
from .diffusion import _Scalars

__all__ = ["WettingResult", "wetting"]

#: Reservoir layers beyond the separator face (the outermost held at the liquid density).
_RESERVOIR = 3
#: Vapour layers beyond the current-collector face when the gas can leave.
_OUTLET = 3
#: Gas density relative to the saturated vapour's. A saturated vapour condenses at once in
#: narrow wetting pores (capillary condensation, Kelvin); held below saturation it cannot
#: in pores down to about two voxels at 30 deg (liquid under the capillary suction of such a
#: pore has a higher chemical potential than this vapour), so pores fill from the front.
_UNDERSATURATION = 0.75
#: Consecutive records without change that end a run.
_PATIENCE = 5


@dataclass
class WettingResult(_Scalars):
    """Result of :func:`wetting`.

    Attributes
    ----------
    wetted_fraction : float
        Share of the pore voxels filled with electrolyte at the end of the run.
    t97_s : float
        First time [s] at which 97 % of the pore voxels were wetted (``nan`` if never).
    trapped_fraction : float
        Share of the pore voxels in gas pockets cut off from the gas outlet at the end.
    n_trapped : int
        Number of those pockets.
    duration_s : float
        Simulated time [s].
    step_s : float
        Physical time of one lattice step [s].
    contact_angle : float
        The contact angle used [deg] (the mean when several were given).
    steps, converged, wall_time_s, device, axis, message
        Run record: ``converged`` when the wetted fraction stopped changing (by less than
        ``tol`` over five records in a row) before ``max_steps`` or ``duration``.
    history : xarray.Dataset
        Over ``time`` [s]: ``wetted_fraction`` and ``profile`` (wetted share of the pore
        voxels of each slice along ``axis``).
    saturation : xarray.DataArray
        Electrolyte saturation per voxel at the end (0 gas, 1 liquid; NaN outside the pore
        phase), dask-backed on the input's grid.
    trapped : xarray.DataArray
        Labels (uint32, consecutive from 1) of the trapped gas pockets, 0 elsewhere.
    """

    wetted_fraction: float
    t97_s: float
    trapped_fraction: float
    n_trapped: int
    duration_s: float
    step_s: float
    contact_angle: float
    steps: int
    converged: bool
    wall_time_s: float
    device: str
    axis: str
    message: str = ""
    history: xr.Dataset | None = field(default=None, repr=False)
    saturation: xr.DataArray | None = field(default=None, repr=False)
    trapped: xr.DataArray | None = field(default=None, repr=False)


def _positive(value, argument, what):
    if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
        raise InputError(argument, f"{what}, got {value!r}")
    return float(value)


def _angles(contact_angle, table):
    """``{code: angle}`` for every phase of ``table`` (solid phases); one value for all, or
    a mapping by phase name (phases not named get the mean of those named)."""
    lo, hi = sc.angle_range()
    if isinstance(contact_angle, dict):
        named = {}
        by_name = {v: k for k, v in table.items()}
        for name, a in contact_angle.items():
            if name not in by_name:
                raise InputError("contact_angle", f"phase names of the segmentation "
                                 f"{sorted(by_name)}, got {name!r}")
            named[by_name[name]] = a
        values = list(named.values())
    else:
        named, values = {}, [contact_angle]
    for a in values:
        if not (isinstance(a, (int, float, np.number)) and lo <= a <= hi):
            raise InputError("contact_angle", f"angles in degrees within the calibrated "
                             f"range [{lo:g}, {hi:g}], got {a!r}")
    default = float(np.mean(values))
    return {code: float(named.get(code, default)) for code in table}, default


def wetting(phases, phase="pore", axis="z", inlet="max", contact_angle=45.0, outlet=True,
            periodic=False, surface_tension=0.035, viscosity=2.5e-3, duration=None,
            max_steps=50000, record_every=100, tol=1e-4, device="auto", dtype="float32",
            max_memory_gib=None):
    """Fill a pore space with electrolyte from one face: wetted fraction against time.

    Two-phase lattice Boltzmann (single-component Shan-Chen, D3Q19; the model and its
    checks are in :mod:`electromicro_dask.transport._shan_chen`): electrolyte enters from a
    liquid reservoir beyond the ``inlet`` face of ``axis`` (by default the separator face,
    the largest ``z``) and displaces the gas, which leaves through the opposite face when
    ``outlet`` is true. No pressure is applied; the electrolyte is drawn in by capillarity.
    The run stops when the wetted fraction no longer changes, after ``duration`` seconds,
    or at ``max_steps``. Side faces are walls of 90 deg contact angle, or periodic.

    This is a global computation on one device: the segmentation is computed and the run
    keeps about ``2 x 19`` values of ``dtype`` and 37 int64 indices per voxel (about
    500 bytes per voxel in float32: 128^3 voxels need about 1 GiB). Volumes with
    anisotropic voxels are resampled (nearest phase) to cubic voxels of the smallest size
    first, with a warning.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (z, y, x) or (y, x) with ``attrs["phases"]``, coordinates in um.
    phase : str or list of str
        The phase(s) the electrolyte may fill (e.g. ``["pore", "crack"]``; add ``"cbd"``
        to treat the CBD's micro-porosity as open).
    axis : str
        Filling direction.
    inlet : {"max", "min"}
        The face of ``axis`` the electrolyte comes from (``"max"``: separator side).
    contact_angle : float or dict
        Electrolyte contact angle on the solid [deg], or ``{phase: angle}``; within the
        calibrated range (about 25 to 130 deg). Below about 40 deg, pores of one or two
        voxels can make the run unstable (it then stops with ``ConvergenceError``).
    outlet : bool
        Let the gas leave through the face opposite the inlet (else it is trapped).
    periodic : bool
        Periodic side faces instead of walls.
    surface_tension : float
        Electrolyte surface tension [N/m] (default 0.035, typical of 1 M LiPF6 in
        carbonate solvents).
    viscosity : float
        Electrolyte dynamic viscosity [Pa s] (default 2.5e-3, likewise).
    duration : float, optional
        Simulated time to stop at [s].
    max_steps : int
        Step limit.
    record_every : int
        Steps between records of the history.
    tol : float
        Change of the wetted fraction over a record below which the filling counts as
        stopped (five records in a row).
    device : {"auto", "cpu", "cuda"}
    dtype : {"float32", "float64"}
    max_memory_gib : float, optional
        Refuse volumes whose run would need more.

    Returns
    -------
    WettingResult

    Raises
    ------
    ConvergenceError
        When the run becomes unstable (non-finite densities).

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> a = np.ones((12, 8, 8), "uint8"); a[:, 2:6, 2:6] = 0      # a square tube
    >>> seg = as_segmentation(a, phases={0: "pore", 1: "am"}, voxel_size=0.1)
    >>> r = wetting(seg, contact_angle=40, device="cpu", max_steps=3000)
    >>> r.wetted_fraction > 0.95, r.t97_s < 1e-5
    (True, True)
    """
    seg, table, spacing, order = cubic(phases, axis, "wetting")
    codes = codes_for(table, phase, "phase")
    if inlet not in ("max", "min"):
        raise InputError("inlet", f'"max" or "min" (the face of {axis!r} the electrolyte '
                         f"enters from), got {inlet!r}")
    angles, mean_angle = _angles(contact_angle, table)
    sigma = _positive(surface_tension, "surface_tension", "a surface tension in N/m > 0")
    mu = _positive(viscosity, "viscosity", "a dynamic viscosity in Pa s > 0")
    if duration is not None:
        duration = _positive(duration, "duration", "a simulated time in s > 0")
    for name, v in (("max_steps", max_steps), ("record_every", record_every)):
        if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
            raise InputError(name, f"a positive integer, got {v!r}")
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise InputError("tol", f"a fraction in (0, 1), got {tol!r}")
    h = oriented_spacing(seg, order, spacing)
    dev = resolve_device(device)
    tdtype = resolve_dtype(dtype)
    n = int(np.prod(seg.shape))
    check_memory(n, sc.bytes_per_voxel(tdtype.itemsize), max_memory_gib, "wetting run")

    arr = compute_oriented(seg, order, label="wetting: load segmentation")
    if inlet == "min":
        arr = arr[::-1]
    pore = np.isin(arr, codes)
    if not pore.any():
        raise InputError("phase", f"a phase present in the volume; {phase!r} has no voxels")
    rho_l, rho_sat = sc.coexistence()
    rho_v = _UNDERSATURATION * rho_sat
    neutral = sc.wall_density(90.0)
    rho_wall = np.zeros(arr.shape)
    for code, a in angles.items():
        rho_wall[arr == code] = sc.wall_density(a)

    # Pores the electrolyte cannot reach stay gas; leaving them out of the lattice also
    # spares it isolated one-voxel pockets, where the wall force on a dilute node is stiff.
    reach = _reachable(pore, periodic)
    # Lattice: [outlet vapour layers | sample | reservoir], side walls unless periodic.
    lo = _OUTLET if outlet else 1
    solid = np.pad(~reach, ((lo, _RESERVOIR), (0, 0), (0, 0)), constant_values=False)
    rw = np.pad(rho_wall, ((lo, _RESERVOIR), (0, 0), (0, 0)), constant_values=neutral)
    if not outlet:
        solid[0] = True
    side = 0 if periodic else 1
    if side:
        solid = np.pad(solid, ((0, 0), (1, 1), (1, 1)), constant_values=True)
        rw = np.pad(rw, ((0, 0), (1, 1), (1, 1)), constant_values=neutral)
    rho0 = np.full(solid.shape, rho_v)
    rho0[-_RESERVOIR:] = rho_l
    fixed = [(solid.shape[0] - 1, rho_l)] + ([(0, rho_v)] if outlet else [])

    dx_m = h[0] * 1e-6
    step_s = (mu / sigma) / (rho_l * (sc.TAU - 0.5) / 3.0 / sc.SIGMA) * dx_m
    steps = max_steps
    if duration is not None:
        steps = min(max_steps, max(1, math.ceil(duration / step_s)))
    msg = []
    if not reach.any():
        steps = 0
        msg.append(f"no {phase!r} voxel is connected to the inlet face: nothing can be wetted")

    torch = sc._torch()
    interior = (slice(lo, lo + arr.shape[0]), slice(side, side + arr.shape[1]),
                slice(side, side + arr.shape[2]))
    pore_t = torch.as_tensor(pore, device=dev)
    n_pore = float(pore.sum())
    per_slice = torch.as_tensor(pore.sum(axis=(1, 2)).clip(min=1), device=dev,
                                dtype=torch.float64)
    mid = 0.5 * (rho_l + rho_sat)
    rec_steps, rec_frac, rec_prof = [0], [0.0], [np.zeros(arr.shape[0])]
    state = {"still": 0}

    def record(step, rho):
        if not bool(torch.isfinite(rho).all()):
            state["blown"] = step
            return True
        wet = (rho.view(solid.shape)[interior] > mid) & pore_t
        prof = wet.sum(dim=(1, 2)).to(torch.float64) / per_slice
        frac = float(wet.sum()) / n_pore
        # the count starts once the electrolyte is in: before, nothing changes either
        still = abs(frac - rec_frac[-1]) < tol and frac > 0
        state["still"] = state["still"] + 1 if still else 0
        rec_steps.append(step)
        rec_frac.append(frac)
        rec_prof.append(prof.cpu().numpy())
        return state["still"] >= _PATIENCE

    t0 = time.perf_counter()
    with _threads(solid.size, dev):
        rho = sc.run(solid, rho0, rw, steps, fixed=fixed, device=dev, dtype=tdtype,
                     every=record_every, callback=record)
    wall = time.perf_counter() - t0
    if "blown" in state:
        raise ConvergenceError(
            f"wetting: the lattice Boltzmann run became unstable by step {state['blown']} "
            f"(non-finite densities) at contact angle {mean_angle:g} deg. Strongly wetting "
            "walls around pores of one or two voxels pull the liquid past its spinodal; use a "
            "larger contact angle or finer voxels.")
    converged = state["still"] >= _PATIENCE
    if rec_steps[-1] != steps and not converged:
        record(steps, torch.as_tensor(rho.ravel(), device=dev))
    rho = np.where(reach, rho[interior], rho_v)

    sat = np.clip((rho - rho_sat) / (rho_l - rho_sat), 0.0, 1.0).astype(np.float32)
    sat[~pore] = np.nan
    gas = pore & (rho <= mid)
    trapped, n_trapped = _trapped(gas, outlet)
    frac = np.asarray(rec_frac)
    times = np.asarray(rec_steps, dtype=float) * step_s
    reached = np.nonzero(frac >= 0.97)[0]
    t97 = float(times[reached[0]]) if reached.size else math.nan

    if inlet == "min":
        sat, trapped = sat[::-1], trapped[::-1]
        profiles = np.asarray(rec_prof)[:, ::-1]
    else:
        profiles = np.asarray(rec_prof)
    if steps and not converged:
        msg.append(f"filling still changing after {rec_steps[-1]} steps "
                   f"({times[-1]:.3g} s); wetted fraction {frac[-1]:.4f}")
    result_dims = seg.dims
    inv = np.argsort(order)

    def back(a):
        a = a[:, :, 0] if seg.ndim == 2 else a
        return np.ascontiguousarray(np.transpose(a, inv))

    coords = {d: seg.coords[d] for d in result_dims}
    saturation = xr.DataArray(back(sat), dims=result_dims, coords=coords,
                              attrs={"units": "1", "long_name": "electrolyte saturation"}).chunk()
    trapped_da = xr.DataArray(back(trapped), dims=result_dims, coords=coords,
                              attrs={"long_name": "trapped gas pockets"}).chunk()
    history = xr.Dataset(
        {"wetted_fraction": ("time", frac),
         "profile": (("time", axis), profiles)},
        coords={"time": ("time", times, {"units": "s"}),
                "step": ("time", np.asarray(rec_steps)),
                axis: seg.coords[axis].values})
    history.attrs.update(step_s=step_s, contact_angle=mean_angle, inlet=inlet,
                         surface_tension=sigma, viscosity=mu)
    return WettingResult(
        wetted_fraction=float(frac[-1]), t97_s=t97,
        trapped_fraction=float((trapped > 0).sum() / n_pore), n_trapped=int(n_trapped),
        duration_s=float(times[-1]), step_s=float(step_s), contact_angle=mean_angle,
        steps=int(rec_steps[-1]), converged=bool(converged), wall_time_s=wall,
        device=str(dev), axis=axis, message="; ".join(msg), history=history,
        saturation=saturation, trapped=trapped_da)


def _reachable(pore, periodic):
    """Pore voxels connected (6-connectivity) to the inlet face, the last along axis 0."""
    labels, root = clusters(pore, periodic)
    face = np.unique(labels[-1])
    keep = np.isin(root, root[face[face > 0]])
    keep[0] = False
    return keep[labels]


def _trapped(gas, outlet):
    """Gas pockets not connected to the outlet face (axis 0, index 0): consecutive labels."""
    import cc3d

    labels, n = cc3d.connected_components(gas, connectivity=6, return_N=True)
    if n == 0:
        return np.zeros(gas.shape, np.uint32), 0
    keep = np.ones(n + 1, bool)
    keep[0] = False
    if outlet:
        keep[np.unique(labels[0])] = False
    new = np.zeros(n + 1, np.uint32)
    new[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    return new[labels], int(keep.sum())
