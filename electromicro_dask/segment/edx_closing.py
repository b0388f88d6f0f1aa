"""CBD by a location-dependent morphological closing of the AM, following an EDX profile
(seed 002, section 3.4, after Hein et al., ref. [13] there).

Seed 002 takes the active material (AM) of the k-means trinarization and inserts the
carbon-binder domain (CBD) by a morphological closing of the AM with a ball whose radius
depends on the distance to the separator, such that the CBD amount per slice follows a
linear fit of the CBD (fluorine) profile measured by EDX; the EDX intensities are scaled
by a constant, found by bisection, so the total CBD fraction matches its target.
Everything else is pore.

Implementation:

- Closings by balls of radius ``r`` (``x**2 + y**2 + z**2 <= r**2``) on a grid of radii
  ``0.5, 1.0, ... max_radius_voxels`` are computed exactly with Euclidean distance
  transforms: dilation = ``{d(., AM) <= r}``, erosion of that = ``{d(., not dilated) > r}``.
  Outside the volume counts as "not AM" for the dilation and as "dilated" for the
  erosion, so the volume faces do not erode the closing. One pass (``map_overlap`` with a
  depth of ``2 * max_radius_voxels``, enough for both steps, so the result does not
  depend on the chunking) stores, per voxel, the smallest radius level whose closing
  covers it (the union of closings up to a radius, which for balls equals the closing
  with that radius up to discretisation).
- A per-slice table of those levels (a small global quantity) gives the CBD fraction of
  every slice for every radius. For a scale ``s`` each slice takes the radius whose CBD
  fraction is nearest ``s * fit(z)``; ``s`` is found by bisection so the total CBD
  fraction matches its target. The radius per slice is thus a function of the distance
  to the separator, as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..core.arrays import as_volume, spatial_dims
from ..core.errors import ConvergenceError, InputError
from ..core.progress import compute
from ..core.reduce import blockwise_bincount
from ._common import CODES3, PHASES3, check_fractions3

__all__ = ["edx_closing", "edx_profile", "EDXProfile"]

_NONE = np.uint8(255)


def _levels_block(am, radii):
    from scipy.ndimage import distance_transform_edt

    am = am.astype(bool)
    out = np.full(am.shape, _NONE, dtype=np.uint8)
    out[am] = 0
    if not am.any():
        return out
    d_am = distance_transform_edt(~am)
    for k, r in enumerate(radii, start=1):
        dil = d_am <= r + 1e-9
        if dil.all():
            closed = dil
        else:
            closed = distance_transform_edt(dil) > r + 1e-9
        out[(out == _NONE) & closed] = k
    return out


def _slice_key_block(levels, axis, nlev, block_info=None):
    lo = block_info[0]["array-location"][axis][0]
    n = levels.shape[axis]
    shape = [1] * levels.ndim
    shape[axis] = n
    zi = (np.arange(lo, lo + n, dtype=np.int64)).reshape(shape)
    lev = np.where(levels == _NONE, nlev + 1, levels).astype(np.int64)
    return zi * (nlev + 2) + lev


def _label_block(levels, kz, axis, block_info=None):
    lo = block_info[0]["array-location"][axis][0]
    n = levels.shape[axis]
    shape = [1] * levels.ndim
    shape[axis] = n
    k = kz[lo:lo + n].reshape(shape)
    out = np.full(levels.shape, CODES3["pore"], dtype=np.uint8)
    out[(levels >= 1) & (levels != _NONE) & (levels <= k)] = CODES3["cbd"]
    out[levels == 0] = CODES3["am"]
    return out


def _choose(frac, target):
    """Per slice, the level whose CBD fraction is nearest the slice target."""
    return np.argmin(np.abs(frac - target[:, None]), axis=1)


def edx_closing(image_or_am, fractions, cbd_profile, axis="z", max_radius_voxels=6.0,
                kmeans_kwargs=None):
    """Three phases from the AM and an EDX CBD profile by local closing (seed 002 §3.4).

    Parameters
    ----------
    image_or_am : xarray.DataArray
        Either a segmentation with an ``"am"`` phase (e.g. :func:`segment.kmeans`'s
        output; only its AM is used) or a grey-value volume, which is first segmented by
        :func:`segment.kmeans` with ``fractions``.
    fractions : dict
        Target fractions ``{"pore": .., "cbd": .., "am": ..}`` summing to 1; the CBD
        fraction is matched, the pore is what remains.
    cbd_profile : array-like
        CBD (EDX fluorine) intensity per slice along ``axis``, one value per slice from
        the first slice (current collector) to the last (separator side); only its
        least-squares linear fit is used.
    axis : str
        Through-thickness dim.
    max_radius_voxels : float
        Largest closing radius (voxels); radii are tried in steps of 0.5 voxels. The
        block overlap is ``ceil(2 * max_radius_voxels)``.
    kmeans_kwargs : dict, optional
        Passed to :func:`segment.kmeans` when a grey-value volume is given.

    Returns
    -------
    xarray.DataArray
        uint8 segmentation ``{0: "pore", 1: "cbd", 2: "am"}``, lazy. ``attrs`` hold the
        per-slice closing radius (``radius_voxels``), the EDX fit (``profile_fit``:
        intercept and slope per slice) and the ``scale``. Computes two small global
        quantities: the per-slice table of CBD amount per radius and the AM fraction.

    Raises
    ------
    InputError
        ``cbd_profile`` not one finite value per slice along ``axis``, bad fractions,
        unknown axis, no AM phase.
    ConvergenceError
        Closings up to ``max_radius_voxels`` cannot hold the target CBD fraction.

    Examples
    --------
    >>> seg = segment.edx_closing(km, fractions, cbd_profile=edx)     # doctest: +SKIP
    """
    targets = check_fractions3(fractions)
    vol = as_volume(image_or_am, argument="image_or_am")
    if axis not in spatial_dims(vol):
        raise InputError("axis", f"one of {spatial_dims(vol)}, got {axis!r}")
    if not (np.isscalar(max_radius_voxels) and 0.5 <= max_radius_voxels <= 60):
        raise InputError("max_radius_voxels", f"a radius in [0.5, 60] voxels, got "
                         f"{max_radius_voxels!r}")
    ax = vol.dims.index(axis)
    nz = vol.shape[ax]
    try:
        prof = np.asarray(cbd_profile, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("cbd_profile", "a 1D array of numbers") from None
    if prof.ndim != 1 or len(prof) != nz:
        raise InputError("cbd_profile", f"one value per slice along {axis!r} ({nz} values), "
                         f"got shape {prof.shape}")
    if not np.isfinite(prof).all():
        raise InputError("cbd_profile", "finite values")

    phases = vol.attrs.get("phases")
    if phases:
        names = {str(v): int(k) for k, v in dict(phases).items()}
        if "am" not in names:
            raise InputError("image_or_am", f"a segmentation with an 'am' phase, got "
                             f"{sorted(names)}")
        am = vol.data == names["am"]
        source = "segmentation"
    else:
        from .kmeans import kmeans

        km = kmeans(vol, targets, **(kmeans_kwargs or {}))
        am = km.data == CODES3["am"]
        source = "k-means"

    radii = np.arange(0.5, float(max_radius_voxels) + 1e-9, 0.5)
    nlev = len(radii)
    depth = int(math.ceil(2 * radii[-1]))
    chunks = am.chunks
    if any(min(c) < depth for c in chunks if len(c) > 1):
        am = am.rechunk(tuple(c if len(c) == 1 else max(depth, max(c)) for c in chunks))
    levels = am.map_overlap(_levels_block, depth=depth, boundary="none", radii=radii,
                            dtype=np.uint8)
    key = levels.map_blocks(_slice_key_block, axis=ax, nlev=nlev, dtype=np.int64)
    counts = blockwise_bincount(key, nz * (nlev + 2))
    (counts,) = compute(counts, label="closing levels per slice")
    counts = counts[: nz * (nlev + 2)].reshape(nz, nlev + 2)
    per_slice = counts.sum(1).astype(np.float64)
    total = per_slice.sum()
    # frac[z, k]: CBD fraction of slice z when it is closed with radius level k (0: none)
    cum = np.concatenate([np.zeros((nz, 1)), np.cumsum(counts[:, 1:nlev + 1], axis=1)], axis=1)
    frac = cum / per_slice[:, None]
    pos = np.arange(nz, dtype=np.float64)
    slope, intercept = np.polyfit(pos, prof, 1)
    fit = np.clip(intercept + slope * pos, 0.0, None)
    if not (fit > 0).any():
        raise InputError("cbd_profile", "a profile whose linear fit is positive somewhere")
    target = targets["cbd"] * total

    def cbd_count(s):
        k = _choose(frac, s * fit)
        return cum[np.arange(nz), k].sum(), k

    hi = 1.0 / fit.max()
    while cbd_count(hi)[0] < target:
        hi *= 2.0
        if hi * fit.max() > 1e3:
            raise ConvergenceError(
                f"closings up to {max_radius_voxels} voxels hold a CBD fraction of "
                f"{cum[:, -1].sum() / total:.4f} at most, target {targets['cbd']:.4f}: raise "
                "max_radius_voxels")
    lo = 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if cbd_count(mid)[0] < target:
            lo = mid
        else:
            hi = mid
    # Of the two bracketing scales, the one whose CBD count is nearer the target.
    (n_lo, k_lo), (n_hi, k_hi) = cbd_count(lo), cbd_count(hi)
    scale, kz = (lo, k_lo) if abs(n_lo - target) < abs(n_hi - target) else (hi, k_hi)
    kz = kz.astype(np.int64)
    seg = levels.map_blocks(_label_block, kz=kz, axis=ax, dtype=np.uint8)
    out = vol.copy(data=seg)
    out.name = "phases"
    rz = np.where(kz > 0, radii[np.maximum(kz - 1, 0)], 0.0)
    out.attrs = {"units": "um", "phases": dict(PHASES3), "method": "EDX-Closing",
                 "target_fractions": targets, "am_from": source, "axis": axis,
                 "radius_voxels": rz.tolist(), "profile_fit": [float(intercept), float(slope)],
                 "scale": float(scale),
                 "cbd_fraction": float(cum[np.arange(nz), kz].sum() / total),
                 "am_fraction": float(counts[:, 0].sum() / total)}
    return out


@dataclass
class EDXProfile:
    """Result of :func:`edx_profile`: the CBD signal through the thickness and its line."""

    axis: str
    profile: pd.Series  # mean signal per position (index: position in um)
    slope_per_um: float
    intercept: float

    @property
    def relative_gradient_per_um(self):
        """Slope over the mean signal: the share by which the CBD grows per um."""
        return self.slope_per_um / float(self.profile.mean())

    def sample(self, positions_um):
        """The fitted line at ``positions_um`` (e.g. a tomogram's ``z`` coordinate), the
        ``cbd_profile`` :func:`edx_closing` takes."""
        x = np.asarray(getattr(positions_um, "values", positions_um), dtype=np.float64)
        return self.intercept + self.slope_per_um * x


def edx_profile(edx_map, axis="z", mask=None):
    """CBD (fluorine or carbon) signal of an EDX map through the thickness, and its line.

    Seed 002 (section 3.4, Fig. 3) averages the EDX fluorine signal of a cross-section
    along the electrode's width, position by position through its thickness, and fits a
    straight line, which then sets the CBD amount per slice of :func:`edx_closing`.

    Parameters
    ----------
    edx_map : xarray.DataArray
        2D map with coordinates in um (e.g. from :func:`electromicro_dask.io.read_tiff`
        with its pixel size); one dim is the thickness.
    axis : str
        The thickness dim (positions of the profile).
    mask : array-like of bool, optional
        Pixels to use (e.g. inside the electrode); default all finite pixels.

    Returns
    -------
    EDXProfile
        ``profile`` (pandas Series, mean signal per position in um), ``slope_per_um``,
        ``intercept``, ``relative_gradient_per_um`` and ``sample(positions)``.

    Examples
    --------
    >>> prof = edx_profile(fluorine_map, axis="z")                     # doctest: +SKIP
    >>> seg = edx_closing(km, targets, cbd_profile=prof.sample(tomogram.z))   # doctest: +SKIP
    """
    if not isinstance(edx_map, xr.DataArray) or edx_map.ndim != 2:
        raise InputError("edx_map", "a 2D DataArray with coordinates in um (an EDX map and "
                         "its pixel size)")
    if axis not in edx_map.dims:
        raise InputError("axis", f"one of {edx_map.dims}, got {axis!r}")
    if axis not in edx_map.coords:
        raise InputError("edx_map", f"a coordinate in um along {axis!r}")
    other = next(d for d in edx_map.dims if d != axis)
    vals = np.asarray(edx_map.transpose(axis, other).values, dtype=np.float64)
    ok = np.isfinite(vals)
    if mask is not None:
        m = np.asarray(getattr(mask, "values", mask), dtype=bool)
        if m.shape != edx_map.shape:
            raise InputError("mask", f"a boolean map of shape {edx_map.shape}, got {m.shape}")
        ok &= m.T if edx_map.dims[0] != axis else m
    n = ok.sum(axis=1)
    if (n > 0).sum() < 2:
        raise InputError("edx_map", "valid pixels at two or more positions through the "
                         "thickness")
    with np.errstate(invalid="ignore"):
        mean = np.where(ok, vals, 0.0).sum(axis=1) / n
    pos = np.asarray(edx_map.coords[axis].values, dtype=np.float64)
    keep = n > 0
    slope, intercept = np.polyfit(pos[keep], mean[keep], 1)
    prof = pd.Series(mean[keep], index=pd.Index(pos[keep], name=f"{axis}_um"), name="signal")
    return EDXProfile(axis, prof, float(slope), float(intercept))
