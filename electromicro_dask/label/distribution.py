"""Size distributions of labelled particles and cluster statistics of a phase.

Seed 000 reports number- and volume-weighted distributions of agglomerate equivalent
diameters; seed 001 (Fig. 6E/F) the number of connected CBD clusters and the share of
the CBD in its largest cluster (23.6 % slurry vs 57 % dry).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import InputError
from .components import connected_components
from .props import regionprops

__all__ = ["size_distribution", "cluster_stats", "largest_cluster_fraction"]


def size_distribution(props, weight="number", bins=20, column="equivalent_diameter_um",
                      log=False):
    """Histogram of a particle size column, weighted by number or by volume.

    Parameters
    ----------
    props : pandas.DataFrame
        The table of :func:`regionprops` (needs ``column`` and, for ``weight="volume"``,
        ``volume_um3`` or ``area_um2``).
    weight : {"number", "volume"}
        Share of particles (number) or share of the particles' volume (area in 2D) per bin.
    bins : int or sequence of float
        Number of bins over the data range, or bin edges in the column's unit (um).
    column : str
        The size to histogram (default ``equivalent_diameter_um``).
    log : bool
        With an integer ``bins``, space the edges logarithmically.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``lower_um``, ``upper_um``, ``centre_um``, ``count`` and ``share``
        (summing to 1 over the bins), plus ``cumulative`` share. ``attrs["d50_um"]`` is the
        weighted median size, ``attrs["weight"]`` the weighting.

    Examples
    --------
    >>> import pandas as pd
    >>> props = pd.DataFrame({"equivalent_diameter_um": [1.0, 2.0, 2.0, 4.0],
    ...                       "volume_um3": [0.5, 4.2, 4.2, 33.5]})
    >>> size_distribution(props, bins=[0, 3, 6])["share"].tolist()
    [0.75, 0.25]
    """
    if not isinstance(props, pd.DataFrame) or column not in props:
        raise InputError("props", f"a regionprops DataFrame with a {column!r} column")
    if weight not in ("number", "volume"):
        raise InputError("weight", f"'number' or 'volume', got {weight!r}")
    size = props[column].to_numpy(dtype=np.float64)
    if weight == "volume":
        vcol = "volume_um3" if "volume_um3" in props else "area_um2"
        if vcol not in props:
            raise InputError("props", "a volume_um3 (or area_um2) column for weight='volume'")
        w = props[vcol].to_numpy(dtype=np.float64)
    else:
        w = np.ones_like(size)
    ok = np.isfinite(size)
    size, w = size[ok], w[ok]
    if np.ndim(bins) == 0:
        if int(bins) < 1:
            raise InputError("bins", f"a positive number of bins or edges, got {bins!r}")
        lo, hi = (float(size.min()), float(size.max())) if len(size) else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        if log and lo > 0:
            edges = np.geomspace(lo, hi, int(bins) + 1)
        else:
            edges = np.linspace(lo, hi, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise InputError("bins", "increasing bin edges in um")
    count, _ = np.histogram(size, edges)
    mass, _ = np.histogram(size, edges, weights=w)
    total = mass.sum()
    share = mass / total if total > 0 else np.zeros_like(mass)
    out = pd.DataFrame({"lower_um": edges[:-1], "upper_um": edges[1:],
                        "centre_um": 0.5 * (edges[:-1] + edges[1:]), "count": count,
                        "share": share, "cumulative": np.cumsum(share)})
    if len(size) and w.sum() > 0:
        order = np.argsort(size)
        cw = np.cumsum(w[order]) / w.sum()
        out.attrs["d50_um"] = float(size[order][np.searchsorted(cw, 0.5)])
    else:
        out.attrs["d50_um"] = float("nan")
    out.attrs["weight"] = weight
    out.attrs["column"] = column
    return out


def cluster_stats(mask_or_phases, phase=None, connectivity=1):
    """Number of connected clusters of a phase and the share of it in the largest.

    Parameters
    ----------
    mask_or_phases : xarray.DataArray
        A mask, or a segmentation together with ``phase``.
    phase : str or list of str, optional
        The phase (e.g. ``"cbd"``).
    connectivity : int
        As :func:`connected_components`.

    Returns
    -------
    dict
        ``n_clusters``, ``largest_fraction`` (voxels of the largest cluster / voxels of
        the phase; seed 001 Fig. 6F), ``largest_volume_um3`` (``_um2`` in 2D),
        ``phase_volume_um3``, and ``percolating_fraction``: the share of the phase in
        clusters touching the volume border.

    Notes
    -----
    Computes the labels (by :func:`connected_components`) and their per-block sums.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> m = emd.as_volume(np.array([[1, 1, 0, 1], [1, 0, 0, 0]], bool), voxel_size=1.0)
    >>> cluster_stats(m)["largest_fraction"]
    0.75
    """
    labels = connected_components(mask_or_phases, connectivity=connectivity, phase=phase)
    props = regionprops(labels)
    size = "volume_um3" if labels.ndim == 3 else "area_um2"
    unit = size.split("_")[1]
    total = float(props[size].sum()) if len(props) else 0.0
    largest = float(props[size].max()) if len(props) else 0.0
    border = float(props.loc[props["touches_border"], size].sum()) if len(props) else 0.0
    return {"n_clusters": int(labels.attrs["n_labels"]),
            "largest_fraction": largest / total if total else float("nan"),
            f"largest_volume_{unit}": largest, f"phase_volume_{unit}": total,
            "percolating_fraction": border / total if total else float("nan")}


def largest_cluster_fraction(mask_or_phases, phase=None, connectivity=1):
    """Share of a phase in its largest connected cluster (seed 001 Fig. 6F)."""
    return cluster_stats(mask_or_phases, phase=phase, connectivity=connectivity)["largest_fraction"]
