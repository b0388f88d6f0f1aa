"""Sinogram assembly: interlaced subsets, I0 drift and the centre of rotation (seed 004,
SWAXS-CT scan of 300 interlaced angles; the seed describes no assembly, see
../shared/notes/swaxs.md, section 2.2).

Sinograms are ``("angle", "t", "q")`` DataArrays whose ``angle`` coordinate holds the
rotation positioner (degrees) and ``t`` the translation positioner (um). Rows are ordered
by the positioner, never by frame order: interlaced subsets are not monotonic in time.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError
from ..core.progress import compute

__all__ = ["to_sinogram", "merge_subsets", "normalize_i0", "find_center", "shift_center",
           "assemble"]


def _check_sino(sino, argument="sinogram"):
    if not isinstance(sino, xr.DataArray) or sino.dims[:2] != ("angle", "t"):
        raise InputError(argument, "a DataArray with dims ('angle', 't', ...)")
    for d in ("angle", "t"):
        if d not in sino.coords:
            raise InputError(argument, f"a {d!r} positioner coordinate (frames without "
                             "positioners cannot be placed)")


def to_sinogram(profiles, decimals=6):
    """Place per-frame data on the ``(angle, t)`` grid given by their positioners.

    Parameters
    ----------
    profiles : xarray.DataArray
        Dims ``("frame", ...)`` (e.g. :func:`~electromicro_dask.io.read_frames` integrated
        by :func:`~electromicro_dask.scattering.integrate`) with ``angle`` (degrees) and ``t``
        (um) coordinates along ``frame``, in any order (interlaced subsets, snake scans).
    decimals : int
        Positioner readings are rounded to this many decimals to find the grid.

    Returns
    -------
    xarray.DataArray
        ``("angle", "t", ...)`` sorted by both positioners (lazy); other per-frame
        coordinates (a monitor, ...) become ``("angle", "t")`` coordinates.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> p = xr.DataArray(np.arange(4.0)[:, None], dims=("frame", "q"),
    ...                  coords={"angle": ("frame", [90.0, 90.0, 0.0, 0.0]),
    ...                          "t": ("frame", [0.0, 5.0, 5.0, 0.0])})
    >>> to_sinogram(p)[:, :, 0].values.tolist()
    [[3.0, 2.0], [0.0, 1.0]]
    """
    if not isinstance(profiles, xr.DataArray) or "frame" not in profiles.dims:
        raise InputError("profiles", "a DataArray with a 'frame' dim")
    for d in ("angle", "t"):
        if d not in profiles.coords or profiles.coords[d].dims != ("frame",):
            raise InputError("profiles", f"a {d!r} positioner coordinate along 'frame' (frames "
                             "without positioners cannot be placed)")
    prof = profiles.transpose("frame", ...)
    a = np.round(prof.coords["angle"].values.astype(float), decimals)
    t = np.round(prof.coords["t"].values.astype(float), decimals)
    ua, ia = np.unique(a, return_inverse=True)
    ut, it = np.unique(t, return_inverse=True)
    key = ia * len(ut) + it
    n = key.size
    if n != len(ua) * len(ut) or np.unique(key).size != n:
        raise InputError("profiles", f"one frame per (angle, t) pair of a full grid: {n} "
                         f"frames for {len(ua)} angles x {len(ut)} positions")
    order = np.argsort(key)
    data = prof.data[order] if isinstance(prof.data, da.Array) else np.asarray(prof.data)[order]
    rest = prof.shape[1:]
    data = data.reshape((len(ua), len(ut)) + rest)
    coords = {"angle": ua, "t": ut}
    for name, c in prof.coords.items():
        if name in ("angle", "t", "frame"):
            continue
        if c.dims == ("frame",):
            coords[name] = (("angle", "t"), c.values[order].reshape(len(ua), len(ut)))
        elif "frame" not in c.dims:
            coords[name] = c
    out = xr.DataArray(data, dims=("angle", "t") + prof.dims[1:], coords=coords,
                       name=profiles.name, attrs=dict(profiles.attrs))
    out["angle"].attrs["units"] = "deg"
    out["t"].attrs["units"] = "um"
    return out


def merge_subsets(*subsets):
    """Merge interlaced angle subsets and sort the rows by the rotation positioner.

    Parameters
    ----------
    *subsets : xarray.DataArray
        One or more sinograms (dims ``("angle", "t", ...)``) with ``angle`` (degrees) and
        ``t`` (um) positioner coordinates; the same ``t`` positions in each.

    Returns
    -------
    xarray.DataArray
        Concatenated along ``angle`` and sorted by its coordinate (lazy); duplicates raise.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros((2, 3)), dims=("angle", "t"),
    ...                  coords={"angle": [0.0, 90.0], "t": [0.0, 1.0, 2.0]})
    >>> b = a.assign_coords(angle=[45.0, 135.0])
    >>> merge_subsets(b, a)["angle"].values.tolist()
    [0.0, 45.0, 90.0, 135.0]
    """
    if not subsets:
        raise InputError("subsets", "at least one sinogram")
    for i, s in enumerate(subsets):
        _check_sino(s, f"subsets[{i}]")
        if not np.allclose(s["t"].values, subsets[0]["t"].values):
            raise InputError(f"subsets[{i}]", "the same translation positions as subsets[0]")
    merged = xr.concat(subsets, dim="angle") if len(subsets) > 1 else subsets[0]
    ang = merged["angle"].values
    order = np.argsort(ang, kind="stable")
    if np.any(np.diff(ang[order]) == 0):
        raise InputError("subsets", "distinct rotation angles (duplicates found)")
    return merged.isel(angle=order)


def normalize_i0(sinogram, monitor=None):
    """Divide out the incident-flux (I0) drift.

    Parameters
    ----------
    sinogram : xarray.DataArray
        ``("angle", "t", ...)`` intensities.
    monitor : xarray.DataArray, optional
        I0 per frame, dims ``("angle", "t")`` (or ``("angle",)``). Without it, each
        projection is scaled so that its total over ``t`` and the other dims equals the
        mean total over all projections: for a parallel beam the integral of a projection
        does not depend on the angle (mass conservation of the Radon transform), so the
        ratio measures the flux per projection (one global reduction, computed).

    Returns
    -------
    xarray.DataArray
        The normalised sinogram, lazy, same dims.
    """
    _check_sino(sinogram)
    if monitor is not None:
        if not isinstance(monitor, xr.DataArray) or not set(monitor.dims) <= {"angle", "t"}:
            raise InputError("monitor", "a DataArray with dims ('angle', 't') or ('angle',)")
        mon = monitor.sel(angle=sinogram["angle"]) if "angle" in monitor.coords else monitor
        if "angle" in mon.coords:
            mon = mon.drop_vars([c for c in mon.coords if c != "angle" and c != "t"])
        out = sinogram / mon
    else:
        other = [d for d in sinogram.dims if d != "angle"]
        tot = sinogram.sum(other)
        (tot,) = compute(tot.data, label="I0 per projection")
        tot = np.asarray(tot, dtype=np.float64)
        if np.any(tot <= 0):
            raise InputError("sinogram", "positive totals per projection for I0 estimation")
        scale = xr.DataArray(tot / tot.mean(), dims="angle")
        out = sinogram / scale.values[(slice(None),) + (None,) * (sinogram.ndim - 1)]
    out.attrs = dict(sinogram.attrs, i0_normalized=True)
    return out.astype(sinogram.dtype)


def find_center(sinogram):
    """Offset of the rotation axis from the centre of the ``t`` axis, in pixels.

    For a parallel beam the centre of mass of the projection at angle theta is
    ``c(theta) = c0 + a cos(theta) + b sin(theta)`` (the projected centre of mass of the
    object); a least-squares fit over all angles gives ``c0`` (one global reduction,
    computed). Subpixel, independent of the flux scale and of a symmetric beam profile.
    The same as the "centre of mass" method of tomography packages (e.g. algotom).

    Parameters
    ----------
    sinogram : xarray.DataArray
        ``("angle", "t", ...)`` with positioners; any further dims are summed.

    Returns
    -------
    float
        ``c0 - n_t // 2`` in pixels of ``t`` (positive: axis towards larger ``t``); the
        reference ``n_t // 2`` is the rotation centre of scikit-image's ``radon`` and
        ``iradon``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from skimage.transform import radon
    >>> img = np.zeros((64, 64)); img[20:30, 35:45] = 1
    >>> ang = np.linspace(0, 180, 60, endpoint=False)
    >>> s = xr.DataArray(radon(img, ang).T, dims=("angle", "t"),
    ...                  coords={"angle": ang, "t": np.arange(64.0)})
    >>> abs(find_center(s)) < 0.1
    True
    """
    _check_sino(sinogram)
    other = [d for d in sinogram.dims if d not in ("angle", "t")]
    prof = sinogram.sum(other) if other else sinogram
    (p,) = compute(prof.data, label="centre of rotation")
    p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
    n_t = p.shape[1]
    w = p.sum(axis=1)
    ok = w > 0
    if ok.sum() < 3:
        raise InputError("sinogram", "at least 3 projections with signal")
    c = (p[ok] * np.arange(n_t)).sum(axis=1) / w[ok]
    th = np.deg2rad(np.asarray(sinogram["angle"].values, dtype=np.float64))[ok]
    a = np.stack([np.ones_like(th), np.cos(th), np.sin(th)], axis=1)
    coef, *_ = np.linalg.lstsq(a, c, rcond=None)
    return float(coef[0] - n_t // 2)


def _shift_block(block, shift):
    from scipy import ndimage

    return ndimage.shift(block, (0, -shift) + (0,) * (block.ndim - 2), order=3,
                         mode="constant").astype(block.dtype)


def shift_center(sinogram, offset_px):
    """Shift every projection by ``-offset_px`` along ``t`` (cubic spline, zero outside) so
    that the rotation axis sits at the centre of the ``t`` axis; lazy, blockwise (the
    whole ``t`` axis is one chunk)."""
    _check_sino(sinogram)
    data = sinogram.data if isinstance(sinogram.data, da.Array) else da.from_array(sinogram.data)
    data = data.rechunk({1: -1})
    out = data.map_blocks(_shift_block, float(offset_px), dtype=data.dtype)
    res = sinogram.copy(data=out)
    res.attrs = dict(sinogram.attrs, center_offset_px=float(offset_px))
    return res


def assemble(sinogram, monitor=None, center="auto", normalize=True):
    """Sort by the rotation positioner, normalise I0 and centre the rotation axis.

    Parameters
    ----------
    sinogram : xarray.DataArray or sequence of them
        Interlaced subsets or one sinogram in acquisition order.
    monitor : xarray.DataArray, optional
        I0 per frame (see :func:`normalize_i0`); None estimates the flux per projection.
    center : "auto", float or None
        Rotation-axis offset in pixels; "auto" uses :func:`find_center`, None keeps ``t``.
    normalize : bool
        Apply :func:`normalize_i0`.

    Returns
    -------
    xarray.DataArray
        Sorted, normalised and centred sinogram (lazy), ``attrs["center_offset_px"]``.
    """
    subs = list(sinogram) if isinstance(sinogram, (list, tuple)) else [sinogram]
    out = merge_subsets(*subs)
    if normalize:
        out = normalize_i0(out, monitor)
    if center is not None:
        off = find_center(out) if isinstance(center, str) and center == "auto" else float(center)
        out = shift_center(out, off)
    return out
