"""SAXS characteristic size d* per voxel profile (seed 004, "SAXS analysis and silicon
nanodomain characteristics"; Fig. 4).

The seed's rule, applied to every reconstructed profile I(q): drop points with
I < 1e-9; take the longest remaining continuous segment at high q; fit a power law
q^-x skipping the first 30 % and the last 20 % of the segment; q* is where the data depart
from the fit by more than 3 %; d* = 2 pi / q*. Segments shorter than 150 points, slopes
outside 2.5 to 4.3 and profiles without a departure give NaN.

Where the seed is silent (see ../shared/notes/swaxs.md, section 2.6) this module takes:
a least-squares line in log-log; q ascending, so the fit window holds indices
floor(0.3 m) .. ceil(0.8 m) of the segment; the departure searched from the fit window
towards lower q, the first point with |I / I_fit - 1| > 3 % (or the first of
``consecutive`` such points in a row, an option for noisy data, default 1 = the seed's
literal rule); ties between equally long segments go to the higher-q one. The rule needs
linearly spaced q bins (on log-spaced bins the fit window falls on the knee).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.errors import InputError

__all__ = ["d_star", "d_star_profile"]


def _segments(valid):
    """(start, stop) of runs of True, in order."""
    v = np.concatenate([[False], valid, [False]]).astype(np.int8)
    d = np.diff(v)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def d_star_profile(q, intensity, floor=1e-9, min_points=150, fit_window=(0.3, 0.8),
                   tolerance=0.03, slope_range=(2.5, 4.3), consecutive=1):
    """d* (in the reciprocal unit of ``q``: q in 1/A gives d* in A) of one profile.

    Returns ``(d_star, slope, q_star)``; NaNs where the rule gives no value.
    """
    q = np.asarray(q, dtype=np.float64)
    i = np.asarray(intensity, dtype=np.float64)
    nan = (np.nan, np.nan, np.nan)
    segs = _segments(np.isfinite(i) & (i >= floor) & (q > 0))
    if not segs:
        return nan
    longest = max(b - a for a, b in segs)
    a, b = [s for s in segs if s[1] - s[0] == longest][-1]  # ties: the higher-q segment
    m = b - a
    if m < min_points:
        return nan
    lo = a + int(np.floor(fit_window[0] * m))
    hi = a + int(np.ceil(fit_window[1] * m))
    lq, li = np.log(q[lo:hi]), np.log(i[lo:hi])
    slope, icpt = np.polyfit(lq, li, 1)
    x = -slope
    if not (slope_range[0] <= x <= slope_range[1]):
        return (np.nan, x, np.nan)
    fit = np.exp(icpt + slope * np.log(q[a:lo]))
    dev = np.abs(i[a:lo] / fit - 1.0) > tolerance
    # Walk from the fit window down in q: first run of `consecutive` departing points.
    run = 0
    for j in range(lo - a - 1, -1, -1):
        run = run + 1 if dev[j] else 0
        if run >= consecutive:
            start = j + consecutive - 1  # the highest-q point of the run
            qs = q[a + start]
            return (2.0 * np.pi / qs, x, qs)
    return (np.nan, x, np.nan)


def _block(block, q, kw):
    flat = block.reshape(-1, block.shape[-1])
    out = np.empty((flat.shape[0], 3))
    for n, prof in enumerate(flat):
        out[n] = d_star_profile(q, prof, **kw)
    return out.reshape(block.shape[:-1] + (3,))


def d_star(profiles, q_dim="q", floor=1e-9, min_points=150, tolerance=0.03,
           slope_range=(2.5, 4.3), consecutive=1):
    """Map of the SAXS characteristic size d* from reconstructed profiles.

    Parameters
    ----------
    profiles : xarray.DataArray
        Intensities with a ``q`` dimension (coordinate in 1/A, linearly spaced,
        ascending), e.g. a ``("y", "x", "q")`` reconstruction; other dims are mapped.
    floor, min_points, tolerance, slope_range
        The seed's constants (1e-9, 150 points, 3 %, 2.5 to 4.3).
    consecutive : int
        Departing points required in a row (1 = the seed's literal rule; 3 is robust
        at about 1 % noise per bin).

    Returns
    -------
    xarray.Dataset
        ``d_star_nm`` (d* in nm), ``slope`` (the fitted power-law exponent x) and
        ``q_star`` (1/A), lazily, one value per profile.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> q = np.linspace(0.01, 0.6, 1000)
    >>> prof = xr.DataArray(q ** -3.5, dims="q", coords={"q": q})
    >>> float(d_star(prof)["d_star_nm"])   # a pure power law has no departure
    nan
    """
    if not isinstance(profiles, xr.DataArray) or q_dim not in profiles.dims:
        raise InputError("profiles", f"a DataArray with a {q_dim!r} dimension")
    if q_dim not in profiles.coords:
        raise InputError("profiles", f"a {q_dim!r} coordinate in 1/A")
    q = np.asarray(profiles[q_dim].values, dtype=np.float64)
    dq = np.diff(q)
    if q.size < 2 or np.any(dq <= 0):
        raise InputError("profiles", f"ascending {q_dim!r} values")
    if not np.allclose(dq, dq.mean(), rtol=1e-3):
        raise InputError("profiles", f"linearly spaced {q_dim!r} bins (the d* rule fails on "
                         "log-spaced bins)")
    if int(consecutive) < 1:
        raise InputError("consecutive", f"a positive integer, got {consecutive!r}")
    kw = dict(floor=floor, min_points=int(min_points), tolerance=float(tolerance),
              slope_range=tuple(slope_range), consecutive=int(consecutive))
    arr = profiles.transpose(..., q_dim)
    data = arr.data
    if hasattr(data, "rechunk"):
        data = data.rechunk({data.ndim - 1: -1})
        res = data.map_blocks(_block, q, kw, dtype=np.float64,
                              chunks=data.chunks[:-1] + ((3,),))
    else:
        res = _block(np.asarray(data), q, kw)
    dims = arr.dims[:-1]
    coords = {k: v for k, v in arr.coords.items() if q_dim not in v.dims}
    ds = xr.Dataset({"d_star_nm": (dims, res[..., 0] / 10.0), "slope": (dims, res[..., 1]),
                     "q_star": (dims, res[..., 2])}, coords=coords)
    ds["d_star_nm"].attrs.update(units="nm", long_name="SAXS characteristic size d*")
    ds["q_star"].attrs.update(units="1/A")
    ds.attrs["rule"] = dict(kw, fit_window=[0.3, 0.8], source="seed 004, SAXS analysis")
    return ds
