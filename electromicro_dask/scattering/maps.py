"""WAXS window maps, dominant-window labels, SAXS intensity map and RGB composites
(seed 004, Table 1 and the text under it; Figs 1d, 2, 3, 5).

"By integrating the corresponding peak in the selected regions we are able to label the NMC
as delithiated or lithiated without the need for refinement": maps are plain window
integrals (sum of I dq over the bins whose centre lies in the window), labels the dominant
window; background subtraction (a straight line between the window edges) is optional
and ours. Window integrals are linear, so they may be taken before or after reconstruction
(notes 2.2).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.errors import InputError

__all__ = ["TABLE1_WINDOWS", "SAXS_WINDOW", "window_sums", "dominant_window",
           "saxs_intensity", "composite"]

#: The seed's Table 1 q windows in 1/A. The graphite (x < 0.2) upper bound is 1.90 in
#: Table 1 and 1.92 in Fig. 1d: pass another dict to change it.
TABLE1_WINDOWS = {
    "nmc_lithiated": (4.57, 4.62),
    "nmc_delithiated": (4.45, 4.50),
    "lic6": (1.67, 1.73),
    "lic12": (1.78, 1.82),
    "graphite": (1.82, 1.90),
}

#: SAXS integrated-intensity window (1/A), seed Figs 1d, 2d.
SAXS_WINDOW = (0.025, 0.1)


def _window_index(q, lo, hi, name):
    step = np.median(np.diff(q)) if q.size > 1 else 0
    if not (lo < hi) or lo < q[0] - step / 2 or hi > q[-1] + step / 2:
        raise InputError("windows", f"window {name!r} = ({lo}, {hi}) inside the integrated q "
                         f"range {q[0]:.4g} to {q[-1]:.4g}")
    sel = np.flatnonzero((q >= lo) & (q <= hi))
    if sel.size == 0:
        raise InputError("windows", f"window {name!r} = ({lo}, {hi}) to hold at least one q bin")
    return sel


def window_sums(profiles, windows=None, background=False, q_dim="q"):
    """Integrals of I(q) over q windows, one map (or sinogram) per window.

    Parameters
    ----------
    profiles : xarray.DataArray
        Anything with a ``q`` dimension and coordinate in 1/A (a ``("y", "x", "q")``
        reconstruction or an ``("angle", "t", "q")`` sinogram).
    windows : dict, optional
        ``{name: (q_lo, q_hi)}`` in 1/A; default :data:`TABLE1_WINDOWS`.
    background : bool
        Subtract a straight line through the window's first and last bins.

    Returns
    -------
    xarray.Dataset
        One lazy variable per window (sum of I dq over the bins in the window).

    Raises
    ------
    InputError
        A window outside the integrated q range.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> q = np.linspace(1.5, 5.0, 701)
    >>> p = xr.DataArray(np.exp(-0.5 * ((q - 1.70) / 0.006) ** 2), dims="q", coords={"q": q})
    >>> s = window_sums(p)
    >>> str(max(s.data_vars, key=lambda k: float(s[k])))
    'lic6'
    """
    if not isinstance(profiles, xr.DataArray) or q_dim not in profiles.dims \
            or q_dim not in profiles.coords:
        raise InputError("profiles", f"a DataArray with a {q_dim!r} dimension and coordinate")
    windows = TABLE1_WINDOWS if windows is None else dict(windows)
    q = np.asarray(profiles[q_dim].values, dtype=np.float64)
    out = {}
    for name, (lo, hi) in windows.items():
        sel = _window_index(q, float(lo), float(hi), name)
        dq = np.gradient(q)[sel]
        part = profiles.isel({q_dim: sel})
        if background and sel.size >= 2:
            qq = q[sel]
            a, b = part.isel({q_dim: 0}), part.isel({q_dim: -1})
            frac = xr.DataArray((qq - qq[0]) / (qq[-1] - qq[0]), dims=q_dim)
            part = part - (a + (b - a) * frac)
        w = xr.DataArray(dq, dims=q_dim)
        v = (part * w).sum(q_dim)
        v.attrs.update(q_window=(float(lo), float(hi)), units="a.u. * 1/A")
        out[name] = v.drop_vars([c for c in v.coords if q_dim in v[c].dims], errors="ignore")
    ds = xr.Dataset(out)
    ds.attrs["windows"] = {k: list(map(float, v)) for k, v in windows.items()}
    return ds


def dominant_window(sums, names=None, min_signal=0.0):
    """Label of the dominant window per voxel.

    Parameters
    ----------
    sums : xarray.Dataset
        Window maps from :func:`window_sums`.
    names : sequence of str, optional
        Windows competing for the label (default all, in order); e.g.
        ``("lic6", "lic12", "graphite")`` for the anode, the two NMC windows for the cathode.
    min_signal : float
        Voxels whose largest window sum is at most this get label 0.

    Returns
    -------
    xarray.DataArray
        uint8 labels, 0 = no signal, ``i + 1`` for ``names[i]``; ``attrs["phases"]``.
    """
    if not isinstance(sums, xr.Dataset):
        raise InputError("sums", "a Dataset of window maps (window_sums)")
    names = list(sums.data_vars) if names is None else list(names)
    for n in names:
        if n not in sums:
            raise InputError("names", f"windows among {list(sums.data_vars)}, got {n!r}")
    stack = xr.concat([sums[n] for n in names], dim="window")
    arg = stack.argmax("window") + 1
    lab = arg.where(stack.max("window") > min_signal, 0).astype(np.uint8)
    lab.attrs["phases"] = {0: "none", **{i + 1: n for i, n in enumerate(names)}}
    return lab.rename("labels")


def saxs_intensity(profiles, q_range=SAXS_WINDOW, q_dim="q"):
    """SAXS integrated intensity map over ``q_range`` (default 0.025 to 0.1 1/A), read by
    the seed as silicon fraction times a lithiation-dependent contrast; lazy."""
    lo, hi = q_range
    return window_sums(profiles, {"saxs": (lo, hi)}, q_dim=q_dim)["saxs"].rename("saxs_intensity")


#: Seed colours: NMC lithiated green, delithiated red; LiC6 green, LiC12 blue,
#: graphite (x < 0.2) red (Figs 2b-c, 3c, 5).
SEED_COLOURS = {"nmc": {"nmc_delithiated": 0, "nmc_lithiated": 1},
                "anode": {"graphite": 0, "lic6": 1, "lic12": 2}}


def composite(sums, kind="anode", percentile=99.5):
    """RGB composite (``("y", "x", "rgb")`` float in 0..1) of window maps in the seed's
    colours; each channel scaled by its ``percentile`` (channel normalisation is not given
    by the seed). Computes the maps (an image for display)."""
    if kind not in SEED_COLOURS:
        raise InputError("kind", f"one of {list(SEED_COLOURS)}, got {kind!r}")
    first = sums[next(iter(SEED_COLOURS[kind]))]
    rgb = np.zeros(first.shape + (3,), np.float32)
    for name, ch in SEED_COLOURS[kind].items():
        if name not in sums:
            raise InputError("sums", f"a window map named {name!r}")
        v = np.asarray(sums[name].values, dtype=np.float64)
        top = np.nanpercentile(v, percentile) if np.any(v > 0) else 1.0
        rgb[..., ch] = np.clip(v / (top if top > 0 else 1.0), 0, 1)
    return xr.DataArray(rgb, dims=first.dims + ("rgb",), coords=first.coords)
