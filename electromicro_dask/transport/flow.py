"""Stokes flow in the pore space by lattice Boltzmann: permeability and flow tortuosity.

D3Q19 lattice with the two-relaxation-time (TRT) collision of Ginzburg et al. (Commun.
Comput. Phys. 3 (2008) 427) and the "magic" parameter Lambda = (tau+ - 1/2)(tau- - 1/2) =
3/16, for which half-way bounce-back puts the no-slip wall midway between a fluid and a solid
voxel whatever the viscosity, so the permeability does not depend on the relaxation time
(Pan, Luo & Miller, Comput. Fluids 35 (2006) 898). The equilibrium is the linear
(Stokes) one, ``f_eq = w_i (rho + 3 c_i . j)``, so the steady state solves the Stokes
equations exactly in the lattice sense, whatever the forcing amplitude. The flow is driven by
a uniform body force along ``axis`` (equivalent to a pressure gradient) with periodic
boundaries along the axis; the forcing enters the antisymmetric part with Guo's factor
(1 - 1/(2 tau-)). Flow tortuosity: Koponen et al., Phys. Rev. E 56 (1997) 3319,
``tau_v = sum |u| / sum u_axis`` (seed 001).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..core.errors import InputError
from ._common import (_threads, _torch, check_memory, codes_for, compute_oriented, cubic,
                      oriented_spacing, percolating, resolve_device,
                      resolve_dtype)
from ._d3q19 import C as _C
from ._d3q19 import OPP as _OPP
from ._d3q19 import W as _W
from .diffusion import _Scalars

__all__ = ["FlowResult", "permeability", "flow_tortuosity"]

_LAMBDA = 3.0 / 16.0


@dataclass
class FlowResult(_Scalars):
    """Result of :func:`permeability` / :func:`flow_tortuosity`.

    Attributes
    ----------
    permeability : float
        Darcy permeability along ``axis`` in um^2 (``k = mu q / G`` with ``q`` the mean
        velocity over the whole volume, solid included, and ``G`` the pressure gradient).
    tau : float
        Flow tortuosity ``sum |u| / sum u_axis`` over the pore voxels (Koponen).
    porosity : float
        Volume fraction of the flowing phase (all of it).
    velocity : xarray.Dataset
        ``u_z``, ``u_y``, ``u_x`` (the dims of the input), the velocity per unit driving
        gradient, ``u mu / G`` in um^2: its volume mean along ``axis`` is ``permeability``.
        Dask-backed DataArrays on the input's grid, ready for ``core.store.save``.
    iterations, converged, change, time_s, device, axis, message
        Solver record: ``change`` is the last relative change of the velocity field over
        ``check_every`` steps.
    """

    permeability: float
    tau: float
    porosity: float
    n_pockets_excluded: int
    iterations: int
    converged: bool
    change: float
    time_s: float
    device: str
    axis: str
    message: str = ""
    velocity: xr.Dataset | None = field(default=None, repr=False)


def _lbm(fluid, device, dtype, tol, max_steps, tau_plus, check_every, walls):
    """Run D3Q19 TRT to steady state; returns (u (3, ...) numpy in lattice units per unit
    force over viscosity, steps, converged, change)."""
    torch = _torch()
    if walls:
        # No-slip side walls: one solid layer around the sample on the side faces.
        fluid = np.pad(fluid, ((0, 0), (1, 1), (1, 1)), constant_values=False)
    solid = torch.as_tensor(~fluid, device=device)
    shape = fluid.shape
    c = torch.as_tensor(_C, device=device)
    cf = c.to(dtype)
    w = torch.as_tensor(_W, device=device, dtype=dtype).view(19, 1, 1, 1)
    opp = torch.as_tensor(_OPP, device=device)
    tau_minus = 0.5 + _LAMBDA / (tau_plus - 0.5)
    nu = (tau_plus - 0.5) / 3.0
    force = 1e-5
    fvec = torch.zeros(3, dtype=dtype, device=device)
    fvec[0] = force
    # Forcing term (antisymmetric, Guo's factor for the antisymmetric relaxation).
    src = (1.0 - 0.5 / tau_minus) * 3.0 * w.view(19) * (cf @ fvec)
    src = src.view(19, 1, 1, 1) * (~solid).to(dtype)
    # Which populations arrive from a solid voxel: those bounce back instead.
    from_solid = torch.stack([torch.roll(solid, shifts=tuple(int(s) for s in _C[i]),
                                         dims=(0, 1, 2)) for i in range(19)])
    f = w * torch.ones((19,) + shape, dtype=dtype, device=device)
    fluid_t = (~solid).to(dtype)
    u_old = None
    change = math.inf
    converged = False
    steps = 0
    om_p, om_m = 1.0 / tau_plus, 1.0 / tau_minus
    with torch.no_grad(), _threads(f.numel() // 19, device):
        while steps < max_steps:
            rho = f.sum(0)
            j = torch.tensordot(cf.t(), f, dims=1)
            j.add_(0.5 * fvec.view(3, 1, 1, 1))
            # In place, four population-sized arrays: f, f_opp, the symmetric and the
            # antisymmetric non-equilibrium parts (TRT: Ginzburg et al. 2008, eq. 8).
            feq_m = torch.tensordot(cf, j, dims=1).mul_(3.0 * w)
            f_opp = f[opp]
            post = torch.add(f, f_opp).mul_(0.5).addcmul_(w, rho.unsqueeze(0), value=-1.0)
            f_opp.sub_(f).mul_(-0.5).sub_(feq_m)             # f- - feq-
            del feq_m
            post.mul_(-om_p).add_(f).add_(f_opp, alpha=-om_m).add_(src)
            del f_opp
            for i in range(19):
                moved = torch.roll(post[i], shifts=tuple(int(s) for s in _C[i]), dims=(0, 1, 2))
                f[i] = torch.where(from_solid[i], post[_OPP[i]], moved)
            steps += 1
            if steps % check_every == 0:
                u = (torch.tensordot(cf.t(), f, dims=1) + 0.5 * fvec.view(3, 1, 1, 1)) * fluid_t
                if u_old is not None:
                    scale = float(u.abs().max())
                    change = float((u - u_old).abs().max()) / scale if scale > 0 else 0.0
                    if change < tol:
                        converged = True
                        break
                u_old = u
    u = (torch.tensordot(cf.t(), f, dims=1) + 0.5 * fvec.view(3, 1, 1, 1)) * fluid_t
    u = (u * (nu / force)).to(torch.float64).cpu().numpy()
    if walls:
        u = u[:, :, 1:-1, 1:-1]
    return u, steps, converged, change


def _flow(phases, phase, axis, device, tol, max_steps, periodic, mirror, dtype, tau_plus,
          check_every, max_memory_gib):
    seg, table, spacing_map, order = cubic(phases, axis, "permeability")
    codes = codes_for(table, phase, "phase")
    if seg.ndim != 3:
        raise InputError("phases", f"a 3D (z, y, x) segmentation for flow, got dims {seg.ndim}")
    h = oriented_spacing(seg, order, spacing_map)
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise InputError("tol", f"a relative change in (0, 1), got {tol!r}")
    if not (isinstance(max_steps, (int, np.integer)) and max_steps >= 1):
        raise InputError("max_steps", f"a positive integer, got {max_steps!r}")
    if not (isinstance(tau_plus, (int, float)) and 0.5 < tau_plus <= 5):
        raise InputError("tau_plus", f"a relaxation time in (0.5, 5], got {tau_plus!r}")
    dev = resolve_device(device)
    tdtype = resolve_dtype(dtype)
    n = int(np.prod(seg.shape)) * (2 if mirror else 1)
    # f, post-collision populations and two temporaries (4 x 19 values), the bounce-back
    # masks (19 bytes) and the float64 velocity output and set-up (~64 bytes).
    check_memory(n, 4 * 19 * tdtype.itemsize + 19 + 64, max_memory_gib,
                 "lattice Boltzmann run")
    arr = compute_oriented(seg, order, label="permeability: load segmentation")
    fluid_all = np.isin(arr, codes)
    del arr
    porosity = float(fluid_all.mean())
    if porosity == 0:
        raise InputError("phase", f"a phase present in the volume; {phase!r} has no voxels")
    fluid = np.concatenate([fluid_all, fluid_all[::-1]]) if mirror else fluid_all
    # Only clusters that connect through the periodic axis can carry a steady flow.
    # The periodic join along the axis is done by labelling two stacked copies.
    keep, _, n_excl = percolating(fluid, periodic)
    msg = []
    t0 = time.perf_counter()
    if not keep.any():
        u = np.zeros((3,) + fluid.shape)
        steps, converged, change = 0, True, 0.0
        msg.append(f"phase {phase!r} does not percolate along {axis!r}: permeability 0, "
                   "tau = inf")
    else:
        u, steps, converged, change = _lbm(keep, dev, tdtype, tol, max_steps, tau_plus,
                                           check_every, walls=not periodic)
    elapsed = time.perf_counter() - t0
    if mirror:
        u = u[:, : fluid_all.shape[0]]
    u = u * h[0] ** 2  # lattice units (voxel^2) to um^2
    k = float(u[0].mean())
    flow_sum = float(u[0].sum())
    tau = float(np.sqrt((u ** 2).sum(0)).sum() / flow_sum) if flow_sum > 0 else math.inf
    if n_excl:
        msg.append(f"{n_excl} pore cluster(s) not connected to both faces excluded (no flow)")
    if not converged:
        msg.append(f"did not reach steady state in {max_steps} steps (relative change "
                   f"{change:.2e} > tol {tol:g}); results are approximate")
        warnings.warn("permeability: " + msg[-1], RuntimeWarning, stacklevel=3)
    dims = seg.dims
    inv = np.argsort(order)
    comp = {}
    for k_ax, src_ax in enumerate(order):
        arr_c = np.transpose(u[k_ax], inv).astype(np.float32)
        comp[f"u_{dims[src_ax]}"] = xr.DataArray(
            arr_c, dims=dims, coords={d: seg.coords[d] for d in dims},
            attrs={"units": "um^2", "long_name": f"velocity along {dims[src_ax]} x mu / G"}
        ).chunk()
    vel = xr.Dataset({f"u_{d}": comp[f"u_{d}"] for d in dims})
    return FlowResult(permeability=k, tau=tau, porosity=porosity, n_pockets_excluded=n_excl,
                      iterations=steps, converged=converged, change=change, time_s=elapsed,
                      device=str(dev), axis=axis, message="; ".join(msg), velocity=vel)


def permeability(phases, phase="pore", axis="z", device="auto", tol=1e-6, max_steps=50000,
                 periodic=False, mirror=False, dtype="float64", tau_plus=2.0, check_every=100,
                 max_memory_gib=None):
    """Permeability and velocity field of Stokes flow through a phase (lattice Boltzmann).

    D3Q19 TRT lattice Boltzmann with half-way bounce-back at the walls, driven by a body
    force along ``axis`` with periodic boundaries along it (the sample is treated as one
    period; ``mirror=True`` stacks it with its mirror image first, for samples whose two
    faces do not match). Side faces are no-slip walls, or periodic. Runs to steady state:
    it stops when the velocity field changes by less than ``tol`` (relative, max norm) over
    ``check_every`` steps, or at ``max_steps`` with ``converged=False`` and a message.

    This is a global computation: the segmentation is computed and the run keeps about
    ``4 x 19`` values of ``dtype`` per voxel in memory (about 690 bytes per voxel in float64,
    390 in float32: 128^3 voxels need about 1.4 GiB in float64, 256^3 about 11 GiB).

    Parameters
    ----------
    phases : xarray.DataArray
        3D segmentation with ``attrs["phases"]``; anisotropic voxels are resampled (nearest
        phase) to cubic voxels of the smallest size first, with a warning, and the velocity
        is returned on that grid.
    phase : str or list of str
        The pore phase(s) the fluid fills.
    axis : str
        Flow direction.
    device : {"auto", "cpu", "cuda"}
    tol : float
        Steady-state criterion (relative change of the velocity field per check).
    max_steps : int
        Step limit.
    periodic : bool
        Periodic side faces instead of no-slip walls.
    mirror : bool
        Mirror the sample along ``axis`` before making it periodic.
    dtype : {"float64", "float32"}
    tau_plus : float
        Symmetric relaxation time (viscosity ``(tau_plus - 1/2) / 3``); with Lambda = 3/16
        the permeability does not depend on it, it only changes how fast the flow settles.
    check_every : int
        Steps between steady-state checks.
    max_memory_gib : float, optional
        Refuse volumes whose run would need more.

    Returns
    -------
    FlowResult
        ``permeability`` (um^2), ``tau`` (flow tortuosity), ``velocity`` (Dataset), record.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> a = np.ones((4, 12, 12), "uint8"); a[:, 1:-1, 1:-1] = 0      # a square duct
    >>> seg = as_segmentation(a, phases={0: "pore", 1: "am"}, voxel_size=0.5)
    >>> r = permeability(seg, axis="z", device="cpu")
    >>> round(r.tau, 6)
    1.0
    """
    return _flow(phases, phase, axis, device, tol, max_steps, periodic, mirror, dtype,
                 tau_plus, check_every, max_memory_gib)


def flow_tortuosity(phases, phase="pore", axis="z", device="auto", tol=1e-6,
                    max_steps=50000, periodic=False, mirror=False, dtype="float64",
                    tau_plus=2.0, check_every=100, max_memory_gib=None):
    """Flow tortuosity ``tau_v = sum |u| / sum u_axis`` (Koponen) from the Stokes velocity.

    Runs :func:`permeability` (same parameters, same global in-memory computation) and
    returns its :class:`FlowResult`, whose ``tau`` is the flow tortuosity (about 1.5 for the
    NMC811 electrode of seed 001).

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> a = np.ones((4, 10, 10), "uint8"); a[:, 2:8, 2:8] = 0
    >>> seg = as_segmentation(a, phases={0: "pore", 1: "am"}, voxel_size=1.0)
    >>> round(flow_tortuosity(seg, device="cpu").tau, 6)
    1.0
    """
    return _flow(phases, phase, axis, device, tol, max_steps, periodic, mirror, dtype,
                 tau_plus, check_every, max_memory_gib)
