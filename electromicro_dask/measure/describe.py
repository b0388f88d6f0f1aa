"""Every microstructure descriptor of a segmentation in one call, as tables for reports
(seed 002 Figs. 6 to 10, seed 001 Fig. 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..core.phases import phase_table
from .connectivity import connectivity as _connectivity
from .correlation import two_point_correlation
from .fractions import profile, volume_fractions
from .geodesic import geodesic_tortuosity
from .sizes import phase_size_distribution, porosimetry
from .surface import _axis_index, _interface_matrix, _segmentation

__all__ = ["describe"]

_ALL = ("sizes", "porosimetry", "correlation", "geodesic", "connectivity")


def describe(phases, axis="z", inlet=None, r_max_um=None, include=_ALL, phase_names=None):
    """Scalar descriptors and curves of every phase of a segmentation.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (2D or 3D) with ``attrs["phases"]``.
    axis : str
        Transport direction (through the electrode thickness by default) for the
        profile, geodesic tortuosity and connectivity.
    inlet : str, optional
        Intrusion face for porosimetry (default ``f"{axis}1"``, the separator side).
    r_max_um : float, optional
        Largest lag of the two-point correlations (see :func:`two_point_correlation`).
    include : sequence of str
        Which of the costlier descriptors to compute: ``"sizes"`` (phase size
        distribution), ``"porosimetry"`` (and constrictivity), ``"correlation"``,
        ``"geodesic"``, ``"connectivity"``. Fractions, profile, surface and interface
        areas are always computed.
    phase_names : sequence of str, optional
        Phases to describe (default: every phase in the table).

    Returns
    -------
    dict of pandas.DataFrame
        ``"scalars"`` (one row per phase: ``volume_fraction``, ``surface_area_um-1``,
        ``r_max_um``, ``r_min_um``, ``constrictivity``, ``geodesic_tortuosity``,
        ``n_clusters``, ``largest_cluster_fraction``, ``percolating_fraction``,
        ``dead_end_fraction``, ``isolated_fraction``, where computed); ``"interfaces"``
        (um^2/um^3 per phase pair); ``"profile"`` (fractions per slice along ``axis``);
        long tables ``"size_distribution"`` and ``"porosimetry"`` (``phase``,
        ``radius_um``, ``fraction``), ``"correlation"`` (``phase_a``, ``phase_b``,
        ``r_um``, ``s2``, ``c``: every pair of described phases, radially averaged) and
        ``"geodesic"`` (``phase``, ``tortuosity`` per outlet voxel).

    Notes
    -----
    Runs the global reductions of each descriptor in turn (see their docstrings).

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> im = np.zeros((20, 12, 12), "uint8"); im[:, 3:9, 3:9] = 1
    >>> seg = emd.as_volume(im, voxel_size=1.0); seg.attrs["phases"] = {0: "am", 1: "pore"}
    >>> t = measure.describe(seg, include=("geodesic",))
    >>> float(t["scalars"].loc["pore", "geodesic_tortuosity"])
    1.0
    """
    seg = _segmentation(phases)
    _axis_index(seg, axis)
    table = phase_table(seg)
    names = list(table.values()) if phase_names is None else list(phase_names)
    bad = [n for n in names if n not in table.values()]
    if bad or not names:
        raise InputError("phase_names", f"names from {list(table.values())}, got {phase_names!r}")
    if isinstance(include, str):
        include = (include,)
    unknown = [i for i in include if i not in _ALL]
    if unknown:
        raise InputError("include", f"names from {_ALL}, got {unknown}")
    inlet = f"{axis}1" if inlet is None else inlet

    frac = volume_fractions(seg)
    mat, _ = _interface_matrix(seg, "surface area")
    codes = {name: code for code, name in table.items()}
    rows = {n: {"volume_fraction": float(frac[n]),
                "surface_area_um-1": float(mat[codes[n]].sum() - mat[codes[n], codes[n]])}
            for n in names}
    all_codes = list(table)
    sub = mat[np.ix_(all_codes, all_codes)].copy()
    np.fill_diagonal(sub, 0.0)
    inter = pd.DataFrame(sub, index=list(table.values()), columns=list(table.values()))
    inter.attrs["units"] = "um^2/um^3"
    out = {"interfaces": inter, "profile": profile(seg, axis=axis)}

    psd_rows, mip_rows, corr_rows, geo_rows = [], [], [], []
    for n in names:
        r = rows[n]
        if frac[n] == 0:
            continue
        if "sizes" in include:
            psd = phase_size_distribution(seg, n)
            r["r_max_um"] = psd.r_max
            psd_rows.append(psd.curve.assign(phase=n))
        if "porosimetry" in include:
            mip = porosimetry(seg, n, inlet=inlet)
            r["r_min_um"] = mip.r_min
            mip_rows.append(mip.curve.assign(phase=n))
            if "r_max_um" in r and r["r_max_um"] > 0:
                r["constrictivity"] = (mip.r_min / r["r_max_um"]) ** 2
        if "geodesic" in include:
            g = geodesic_tortuosity(seg, n, axis=axis)
            r["geodesic_tortuosity"] = g.mean
            geo_rows.append(pd.DataFrame({"phase": n, "tortuosity": g.distribution.tortuosity}))
        if "connectivity" in include:
            r.update(_connectivity(seg, n, axis=axis).as_dict())
    if "correlation" in include:
        present = [n for n in names if frac[n] > 0]
        for i, a in enumerate(present):
            for b in present[i:]:
                t = two_point_correlation(seg, a, b, r_max_um=r_max_um)
                corr_rows.append(t.radial[["r_um", "s2", "c"]].assign(phase_a=a, phase_b=b))

    scalars = pd.DataFrame.from_dict(rows, orient="index")
    scalars.index.name = "phase"
    out["scalars"] = scalars
    cols = ["phase", "radius_um", "fraction"]
    if psd_rows:
        out["size_distribution"] = pd.concat(psd_rows, ignore_index=True)[cols]
    if mip_rows:
        out["porosimetry"] = pd.concat(mip_rows, ignore_index=True)[cols]
    if corr_rows:
        out["correlation"] = pd.concat(corr_rows, ignore_index=True)[
            ["phase_a", "phase_b", "r_um", "s2", "c"]]
    if geo_rows:
        out["geodesic"] = pd.concat(geo_rows, ignore_index=True)
    return out
