"""Tortuosity factor and effective conductivity of segmented volumes (steady diffusion).

The tortuosity factor follows TauFactor's definition (Cooper et al., SoftwareX 5 (2016) 203,
eq. 1): ``D_eff = D_bulk * eps / tau`` with ``eps`` the volume fraction of the conducting
phase (isolated pockets included, as TauFactor counts them) and ``D_eff`` from the steady flux
between two faces held at fixed concentrations. The multi-phase form with a homogenised CBD,
``sigma_CBD = gamma * sigma_bulk`` with ``gamma = eps_CBD / tau_CBD``, is seed 002's
(equations 2 to 4).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import xarray as xr

from ..core.errors import InputError
from . import _fv
from ._common import (check_memory, codes_for, compute_oriented, load_segmentation,
                      oriented_spacing, percolating, resolve_device, resolve_dtype)

__all__ = ["TortuosityResult", "ConductivityResult", "tortuosity_factor",
           "effective_conductivity"]


class _Scalars:
    def scalars(self):
        """The scalar results as a dict (one row of a sweep table)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (bool, int, float, str, np.floating, np.integer, np.bool_)):
                out[f.name] = v.item() if isinstance(v, np.generic) else v
        return out


@dataclass
class TortuosityResult(_Scalars):
    """Result of :func:`tortuosity_factor`.

    Attributes
    ----------
    tau : float
        Tortuosity factor, ``eps / d_eff`` (``inf`` when the phase does not percolate).
    eps : float
        Volume fraction of the phase (all of it, isolated pockets included).
    d_eff : float
        ``D_eff / D_bulk = eps / tau``.
    eps_percolating : float
        Volume fraction of the voxels in clusters touching both faces (those solved for).
    n_pockets_excluded : int
        Clusters of the phase that do not connect the two faces (excluded from the solve).
    flux_per_slice : numpy.ndarray
        Flux through the inlet face, every internal plane and the outlet face, relative to
        the mean (1 everywhere at convergence).
    flux_spread : float
        ``(max - min) / mean`` of the flux per slice: the convergence evidence.
    iterations, converged, residual, time_s, device, axis, message
        Solver record; ``message`` says why a result is not a plain converged number.
    field : xarray.DataArray or None
        The concentration field (1 at the inlet face, 0 at the outlet) when asked for.
    """

    tau: float
    eps: float
    d_eff: float
    eps_percolating: float
    n_pockets_excluded: int
    flux_per_slice: np.ndarray
    flux_spread: float
    iterations: int
    converged: bool
    residual: float
    time_s: float
    device: str
    axis: str
    message: str = ""
    field: xr.DataArray | None = field(default=None, repr=False)


@dataclass
class ConductivityResult(_Scalars):
    """Result of :func:`effective_conductivity`.

    Attributes
    ----------
    sigma_eff : float
        Effective conductivity along ``axis``, in the units of the conductivities given.
    sigma_mean : float
        Volume average of the conductivity map (the no-tortuosity bound).
    tau : float
        ``sigma_mean / sigma_eff``, the multi-phase tortuosity factor TauFactor's
        ``MultiPhaseSolver`` reports (``inf`` when nothing conducts through).
    flux_per_slice, flux_spread, iterations, converged, residual, time_s, device, axis,
    message, field
        As for :class:`TortuosityResult`.
    """

    sigma_eff: float
    sigma_mean: float
    tau: float
    eps_percolating: float
    n_pockets_excluded: int
    flux_per_slice: np.ndarray
    flux_spread: float
    iterations: int
    converged: bool
    residual: float
    time_s: float
    device: str
    axis: str
    message: str = ""
    field: xr.DataArray | None = field(default=None, repr=False)


def _check_solver_args(tol, max_iter, preconditioner):
    if preconditioner not in ("multigrid", "jacobi"):
        raise InputError("preconditioner", f'"multigrid" or "jacobi", got {preconditioner!r}')
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and 0 < tol < 1):
        raise InputError("tol", f"a relative residual in (0, 1), got {tol!r}")
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise InputError("max_iter", f"a positive integer, got {max_iter!r}")


def _run(sigma, spacing, axis, periodic, device, dtype, tol, max_iter, max_memory_gib,
         preconditioner):
    dev = resolve_device(device)
    tdtype = resolve_dtype(dtype)
    check_memory(sigma.size, _fv.bytes_per_voxel(tdtype.itemsize), max_memory_gib,
                 "diffusion solve")
    keep, n_clusters, n_excluded = percolating(sigma > 0, periodic)
    sig = np.where(keep, sigma, 0.0)
    eps_perc = float(keep.mean())
    out = {"eps_percolating": eps_perc, "n_pockets_excluded": n_excluded, "device": str(dev),
           "axis": axis}
    if not keep.any():
        out.update(current=0.0, flux_per_slice=np.zeros(sigma.shape[0] + 1), flux_spread=0.0,
                   iterations=0, converged=True, residual=0.0, time_s=0.0, x=None)
        return out
    x, info = _fv.solve(sig, spacing, periodic, dev, tdtype, tol, max_iter,
                        preconditioner=preconditioner)
    flux = info["flux_per_slice"]
    mean = float(flux.mean())
    spread = float((flux.max() - flux.min()) / mean) if mean > 0 else float("inf")
    out.update(current=mean, flux_per_slice=flux / mean if mean > 0 else flux,
               flux_spread=spread, iterations=info["iterations"],
               converged=info["converged"], residual=info["residual"],
               time_s=info["time_s"], x=x)
    return out


def _field(x, seg, order):
    if x is None:
        return None
    arr = x[..., 0] if seg.ndim == 2 else x
    arr = np.transpose(arr, np.argsort(order))
    return xr.DataArray(arr.astype(np.float32), dims=seg.dims,
                        coords={d: seg.coords[d] for d in seg.dims},
                        name="concentration", attrs={"units": "1"}).chunk()


def _geometry(shape, spacing):
    """Length along the flow axis and cross-section area, in um and um^2."""
    return shape[0] * spacing[0], shape[1] * spacing[1] * shape[2] * spacing[2]


def tortuosity_factor(phases, phase="pore", axis="z", device="auto", tol=1e-6,
                      max_iter=20000, periodic=False, dtype="float32", max_memory_gib=None,
                      return_field=False, preconditioner="multigrid"):
    """Tortuosity factor of a phase from steady diffusion between two opposite faces.

    The concentration is 1 on the face at the start of ``axis`` and 0 on the face at its
    end (on the voxel faces, TauFactor's convention), with no flux through the side faces
    (or periodic side faces). The finite-volume system on the voxel grid (anisotropic voxel
    sizes from the coordinates) is solved matrix-free by conjugate gradients preconditioned
    with an aggregation multigrid V-cycle (or Jacobi) in torch, on CUDA when available.
    Clusters of the phase that do not connect the two faces carry no flux; they are
    excluded from the solve and counted.

    This is a global computation: the segmentation is computed and the solve runs on the
    whole volume in memory, about 13 values of ``dtype`` plus 48 bytes of float64 set-up per
    voxel (100 bytes in float32: 256^3 voxels need about 1.6 GiB, 512^3 about 12.5 GiB;
    152 bytes in float64). ``max_memory_gib`` refuses volumes over the cap up front.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (2D or 3D) with ``attrs["phases"] = {code: name}``.
    phase : str or list of str
        The conducting phase(s), by name.
    axis : str
        Flow direction, a dim of ``phases``.
    device : {"auto", "cpu", "cuda"}
        Where to solve; "auto" takes CUDA when available.
    tol : float
        Relative residual (in the preconditioner's norm) at which CG stops; 1e-6 gives a
        flux spread of about 1e-4 and tau to about 1e-5.
    max_iter : int
        Iteration limit; reaching it returns ``converged=False`` with a message.
    periodic : bool
        Periodic side faces instead of no-flux ones.
    dtype : {"float64", "float32"}
        Precision of the solve. float32 (default) is several times faster on CPU and
        agrees with float64 to about 1e-6 in tau (tested); use float64 for tol < 1e-6.
    max_memory_gib : float, optional
        Refuse volumes whose solve would need more (default: dask config
        ``electromicro.transport.max-memory-gib``, else 16).
    return_field : bool
        Also return the concentration field as a DataArray (``result.field``).
    preconditioner : {"multigrid", "jacobi"}
        Multigrid (default) needs 10-30 CG iterations where Jacobi needs hundreds; it keeps
        about 1/7 extra of the fine-level arrays for its coarse levels.

    Returns
    -------
    TortuosityResult
        ``tau``, ``eps``, ``d_eff`` (= eps / tau), flux per slice and its spread, solver record.

    Raises
    ------
    InputError
        Unknown phase or axis, a phase absent from the volume, a volume over the memory cap.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> a = np.zeros((16, 8, 8), "uint8"); a[:, 2:6, 2:6] = 1
    >>> seg = as_segmentation(a, phases={0: "pore", 1: "am"}, voxel_size=0.5)
    >>> r = tortuosity_factor(seg, phase="pore", axis="z", device="cpu")
    >>> round(r.tau, 6), round(r.eps, 4)
    (1.0, 0.75)
    """
    seg, table, spacing_map, order = load_segmentation(phases, axis)
    codes = codes_for(table, phase, "phase")
    _check_solver_args(tol, max_iter, preconditioner)
    resolve_device(device)
    resolve_dtype(dtype)
    arr = compute_oriented(seg, order, label="tortuosity_factor: load segmentation")
    mask = np.isin(arr, codes)
    del arr
    eps = float(mask.mean())
    if eps == 0:
        raise InputError("phase", f"a phase present in the volume; {phase!r} has no voxels")
    spacing = oriented_spacing(seg, order, spacing_map)
    res = _run(mask.astype(np.float64), spacing, axis, periodic, device, dtype, tol,
               max_iter, max_memory_gib, preconditioner)
    length, area = _geometry(mask.shape, spacing)
    d_eff = res["current"] * length / area
    msg = []
    if d_eff == 0:
        tau = math.inf
        msg.append(f"phase {phase!r} does not percolate along {axis!r}: no cluster connects "
                   "the two faces, tau = inf")
    else:
        tau = eps / d_eff
    if res["n_pockets_excluded"]:
        msg.append(f"{res['n_pockets_excluded']} cluster(s) not connected to both faces "
                   f"excluded ({eps - res['eps_percolating']:.4g} of the volume)")
    if not res["converged"]:
        msg.append(f"did not converge in {max_iter} iterations (relative residual "
                   f"{res['residual']:.2e} > tol {tol:g}); tau is approximate")
        warnings.warn("tortuosity_factor: " + msg[-1], RuntimeWarning, stacklevel=2)
    return TortuosityResult(
        tau=float(tau), eps=eps, d_eff=float(d_eff), eps_percolating=res["eps_percolating"],
        n_pockets_excluded=res["n_pockets_excluded"], flux_per_slice=res["flux_per_slice"],
        flux_spread=res["flux_spread"], iterations=res["iterations"],
        converged=res["converged"], residual=res["residual"], time_s=res["time_s"],
        device=res["device"], axis=axis, message="; ".join(msg),
        field=_field(res["x"], seg, order) if return_field else None)


def effective_conductivity(phases, conductivities, axis="z", device="auto", tol=1e-6,
                           max_iter=20000, periodic=False, dtype="float32",
                           max_memory_gib=None, return_field=False,
                           preconditioner="multigrid"):
    """Effective conductivity of a multi-phase volume with one conductivity per phase.

    The same finite-volume solve as :func:`tortuosity_factor`, with each voxel's
    conductivity taken from its phase and face conductances from the harmonic mean of the
    two voxels (a face touching a non-conducting voxel carries nothing). With
    ``{"pore": 1, "cbd": gamma, "am": 0}`` it is seed 002's electrolyte transport through
    pores and homogenised CBD (``gamma = eps_CBD / tau_CBD``, its equations 2 to 4); with
    ``{"am": s_am, "cbd": s_cbd}`` the electronic transport. Phases not named conduct nothing.

    This is a global computation: the segmentation is computed and solved in memory
    (memory need as for :func:`tortuosity_factor`).

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``attrs["phases"]``.
    conductivities : mapping
        ``{phase name: conductivity}``, non-negative, in any unit (the result is in the same).
    axis, device, tol, max_iter, periodic, dtype, max_memory_gib, return_field, preconditioner
        As for :func:`tortuosity_factor`.

    Returns
    -------
    ConductivityResult
        ``sigma_eff`` (units of ``conductivities``), ``sigma_mean``, ``tau = sigma_mean /
        sigma_eff``, flux per slice, solver record.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask.core import as_segmentation
    >>> a = np.zeros((8, 8, 8), "uint8"); a[:, :, 4:] = 1     # layers parallel to z
    >>> seg = as_segmentation(a, phases={0: "pore", 1: "cbd"}, voxel_size=1.0)
    >>> r = effective_conductivity(seg, {"pore": 1.0, "cbd": 0.2}, axis="z", device="cpu")
    >>> round(r.sigma_eff, 6)
    0.6
    """
    seg, table, spacing_map, order = load_segmentation(phases, axis)
    if not isinstance(conductivities, Mapping) or not conductivities:
        raise InputError("conductivities", f"a non-empty mapping {{phase name: conductivity}}, "
                         f"got {conductivities!r}")
    values = {}
    for name, value in conductivities.items():
        (code,) = codes_for(table, name, "conductivities")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputError("conductivities", f"numbers, got {name!r}: {value!r}") from None
        if not math.isfinite(v) or v < 0:
            raise InputError("conductivities", f"finite non-negative values, got {name!r}: "
                             f"{value!r}")
        values[code] = v
    _check_solver_args(tol, max_iter, preconditioner)
    resolve_device(device)
    resolve_dtype(dtype)
    arr = compute_oriented(seg, order, label="effective_conductivity: load segmentation")
    lut = np.zeros(int(arr.max()) + 1 if arr.size else 1, dtype=np.float64)
    for code, v in values.items():
        if code < lut.size:
            lut[code] = v
    sigma = lut[arr]
    del arr
    sigma_mean = float(sigma.mean())
    if sigma_mean == 0:
        raise InputError("conductivities", "a positive conductivity for a phase present in "
                         f"the volume; all voxels have conductivity 0 with {conductivities!r}")
    spacing = oriented_spacing(seg, order, spacing_map)
    res = _run(sigma, spacing, axis, periodic, device, dtype, tol, max_iter, max_memory_gib,
               preconditioner)
    length, area = _geometry(sigma.shape, spacing)
    sigma_eff = res["current"] * length / area
    msg = []
    if sigma_eff == 0:
        tau = math.inf
        msg.append(f"no conducting path connects the two faces along {axis!r}: sigma_eff = 0")
    else:
        tau = sigma_mean / sigma_eff
    if res["n_pockets_excluded"]:
        msg.append(f"{res['n_pockets_excluded']} conducting cluster(s) not connected to both "
                   "faces excluded")
    if not res["converged"]:
        msg.append(f"did not converge in {max_iter} iterations (relative residual "
                   f"{res['residual']:.2e} > tol {tol:g}); sigma_eff is approximate")
        warnings.warn("effective_conductivity: " + msg[-1], RuntimeWarning, stacklevel=2)
    return ConductivityResult(
        sigma_eff=float(sigma_eff), sigma_mean=sigma_mean, tau=float(tau),
        eps_percolating=res["eps_percolating"], n_pockets_excluded=res["n_pockets_excluded"],
        flux_per_slice=res["flux_per_slice"], flux_spread=res["flux_spread"],
        iterations=res["iterations"], converged=res["converged"], residual=res["residual"],
        time_s=res["time_s"], device=res["device"], axis=axis, message="; ".join(msg),
        field=_field(res["x"], seg, order) if return_field else None)
