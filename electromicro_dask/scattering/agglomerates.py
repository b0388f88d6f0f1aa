"""Silicon agglomerates in the SAXS intensity map and the 50 um threshold (seed 004, Fig. 6,
Fig. 7, "Correlating defect size", Conclusions).

The seed segments the bright spots of excess SAXS intensity by hand. Here: a half-contrast
threshold between the anode level (median of the signal-bearing pixels) and the agglomerate
level (a high percentile), connected components (scipy.ndimage.label on the 2D map, which
fits in memory), equivalent diameter ``D_eq = 2 sqrt(A / pi)`` and radius, and the
classification against the threshold size. "Around 50 um equivalent diameter" (Conclusions)
is the default quantity; the seed's histogram uses the radius (median 20 um), so the quantity
is a parameter and named in the output (../shared/notes/swaxs.md, section 2.9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..core.errors import InputError

__all__ = ["agglomerates", "size_distribution"]

_QUANTITIES = ("d_eq_um", "r_eq_um")


def agglomerates(saxs_map, threshold=None, contrast=0.5, peak_percentile=99.9,
                 signal_fraction=0.05, min_area_voxels=2, size_threshold_um=50.0,
                 quantity="d_eq_um", mask=None):
    """Detect, label and size agglomerates in a SAXS intensity map.

    Parameters
    ----------
    saxs_map : xarray.DataArray
        ``("y", "x")`` SAXS integrated intensity with coordinates in um (computed here).
    threshold : float, optional
        Absolute intensity threshold; default ``anode + contrast * (peak - anode)`` with
        ``anode`` the median of pixels above ``signal_fraction`` of the maximum and
        ``peak`` the ``peak_percentile`` of the map.
    min_area_voxels : int
        Smaller components are dropped.
    size_threshold_um : float
        The threshold size (50 um in the seed).
    quantity : {"d_eq_um", "r_eq_um"}
        The size compared with ``size_threshold_um``.
    mask : xarray.DataArray, optional
        Boolean ``("y", "x")`` region searched (e.g. inside the casing).

    Returns
    -------
    (xarray.DataArray, pandas.DataFrame)
        Labels (uint32, 0 = background, consecutive from 1) and one row per agglomerate:
        ``label``, ``area_um2``, ``d_eq_um``, ``r_eq_um``, ``y_um``, ``x_um`` (centroid),
        ``mean_intensity``, ``above_threshold``; ``attrs`` name the threshold quantity.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> yy, xx = np.mgrid[:100, :100]
    >>> m = 1.0 + 2.0 * (np.hypot(yy - 50, xx - 50) <= 15)
    >>> img = xr.DataArray(m, dims=("y", "x"), coords={"y": np.arange(100) * 2.0,
    ...                                                "x": np.arange(100) * 2.0})
    >>> lab, table = agglomerates(img)
    >>> bool(table["above_threshold"][0])   # D_eq about 60 um
    True
    """
    from scipy import ndimage

    if not isinstance(saxs_map, xr.DataArray) or saxs_map.dims != ("y", "x"):
        raise InputError("saxs_map", "a ('y', 'x') DataArray with coordinates in um")
    if quantity not in _QUANTITIES:
        raise InputError("quantity", f"one of {_QUANTITIES}, got {quantity!r}")
    y = np.asarray(saxs_map["y"].values, dtype=np.float64)
    x = np.asarray(saxs_map["x"].values, dtype=np.float64)
    dy, dx = float(np.mean(np.diff(y))), float(np.mean(np.diff(x)))
    img = np.nan_to_num(np.asarray(saxs_map.values, dtype=np.float64))
    region = np.ones(img.shape, bool) if mask is None else np.asarray(mask.values, bool)
    if threshold is None:
        vals = img[region]
        sig = vals[vals > signal_fraction * vals.max()]
        if sig.size == 0:
            raise InputError("saxs_map", "a map with signal")
        anode = float(np.median(sig))
        peak = float(np.percentile(vals, peak_percentile))
        threshold = anode + float(contrast) * (peak - anode)
    fg = (img > threshold) & region
    lab, n = ndimage.label(fg)
    idx = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(img), lab, idx)
    keep = area >= int(min_area_voxels)
    remap = np.zeros(n + 1, np.uint32)
    remap[idx[keep]] = np.arange(1, keep.sum() + 1, dtype=np.uint32)
    lab = remap[lab]
    idx2 = np.arange(1, keep.sum() + 1)
    area_um2 = ndimage.sum_labels(np.ones_like(img), lab, idx2) * abs(dy * dx)
    cy, cx = (np.array(c) for c in zip(*ndimage.center_of_mass(np.ones_like(img), lab, idx2))) \
        if idx2.size else (np.array([]), np.array([]))
    d_eq = 2 * np.sqrt(area_um2 / np.pi)
    table = pd.DataFrame({
        "label": idx2, "area_um2": area_um2, "d_eq_um": d_eq, "r_eq_um": d_eq / 2,
        "y_um": y[0] + cy * dy if idx2.size else cy, "x_um": x[0] + cx * dx if idx2.size else cx,
        "mean_intensity": ndimage.mean(img, lab, idx2) if idx2.size else np.array([]),
    })
    table["above_threshold"] = table[quantity] >= float(size_threshold_um)
    table.attrs.update(threshold_quantity=quantity, size_threshold_um=float(size_threshold_um),
                       intensity_threshold=float(threshold))
    out = xr.DataArray(lab, dims=("y", "x"), coords=saxs_map.coords, name="agglomerates")
    out.attrs.update(threshold_quantity=quantity, intensity_threshold=float(threshold))
    return out, table


def size_distribution(table, quantity="r_eq_um", bins=20, range_um=None):
    """Histogram and summary of agglomerate sizes.

    Returns
    -------
    dict
        ``quantity``, ``median``, ``mean``, ``count``, ``counts`` and ``edges`` (um).
    """
    if quantity not in _QUANTITIES or quantity not in table:
        raise InputError("quantity", f"one of {_QUANTITIES}, got {quantity!r}")
    v = np.asarray(table[quantity], dtype=np.float64)
    counts, edges = np.histogram(v, bins=bins, range=range_um)
    return {"quantity": quantity, "median": float(np.median(v)) if v.size else float("nan"),
            "mean": float(v.mean()) if v.size else float("nan"), "count": int(v.size),
            "counts": counts.tolist(), "edges": edges.tolist()}
