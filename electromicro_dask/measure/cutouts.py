"""Non-overlapping full-thickness cut-outs and descriptors reported over them (seed 002
section 5: every result is given as mean and spread over three cut-outs of each electrode)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from ..core.arrays import spatial_dims, voxel_size
from ..core.errors import InputError

__all__ = ["cutouts", "over_cutouts"]


def cutouts(volume, n=3, width_um=None, through="z"):
    """``n`` non-overlapping square cut-outs spanning the whole thickness.

    Parameters
    ----------
    volume : xarray.DataArray
        3D volume or segmentation with coordinates in um.
    n : int
        Number of cut-outs.
    width_um : float, optional
        Lateral edge of each cut-out in um (default: the largest that fits ``n`` times).
    through : str
        The thickness dim, kept whole (default ``"z"``).

    Returns
    -------
    list of xarray.DataArray
        Lazy views of ``volume``, side by side along the longer lateral dim with equal gaps,
        centred on the other one.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> v = emd.as_volume(np.zeros((10, 40, 100), "uint8"), voxel_size=1.0)
    >>> [c.shape for c in cutouts(v, n=3, width_um=30)]
    [(10, 30, 30), (10, 30, 30), (10, 30, 30)]
    """
    if not isinstance(volume, xr.DataArray) or volume.ndim != 3:
        raise InputError("volume", "a 3D DataArray with coordinates in um")
    if through not in volume.dims:
        raise InputError("through", f"one of {volume.dims}, got {through!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError("n", f"a positive integer, got {n!r}")
    lateral = [d for d in spatial_dims(volume) if d != through]
    vs = dict(zip(spatial_dims(volume), voxel_size(volume)))
    long_d, short_d = sorted(lateral, key=lambda d: volume.sizes[d] * vs[d], reverse=True)
    n_long, n_short = volume.sizes[long_d], volume.sizes[short_d]
    if width_um is None:
        w_long = n_long // n
        width_um = min(w_long * vs[long_d], n_short * vs[short_d])
    if not float(width_um) > 0:
        raise InputError("width_um", f"a positive width, got {width_um!r}")
    w_l = int(math.floor(float(width_um) / vs[long_d] + 1e-9))
    w_s = int(math.floor(float(width_um) / vs[short_d] + 1e-9))
    if w_l < 1 or w_s < 1 or n * w_l > n_long or w_s > n_short:
        raise InputError("width_um", f"{n} cut-outs of {width_um} um fit side by side in the "
                         f"{n_long * vs[long_d]:g} x {n_short * vs[short_d]:g} um lateral field "
                         f"only up to {min(n_long // n * vs[long_d], n_short * vs[short_d]):g} um")
    gap = (n_long - n * w_l) // (n + 1)
    s0 = (n_short - w_s) // 2
    out = []
    for k in range(n):
        a = gap + k * (w_l + gap)
        out.append(volume.isel({long_d: slice(a, a + w_l), short_d: slice(s0, s0 + w_s)}))
    return out


def over_cutouts(func, parts, **kwargs):
    """Mean and spread of a descriptor over cut-outs.

    Parameters
    ----------
    func : callable
        ``func(part, **kwargs)`` returning a scalar, a mapping or a pandas Series.
    parts : sequence of xarray.DataArray
        The cut-outs (:func:`cutouts`).

    Returns
    -------
    pandas.DataFrame
        One row per quantity: each cut-out's value (``cutout_0`` ...), ``mean`` and ``std``
        (sample standard deviation, ``ddof=1``; NaN for one cut-out).

    Examples
    --------
    >>> from electromicro_dask import measure
    >>> table = over_cutouts(measure.volume_fractions, cutouts(seg))   # doctest: +SKIP
    """
    if not callable(func):
        raise InputError("func", f"a callable, got {func!r}")
    parts = list(parts)
    if not parts:
        raise InputError("parts", "at least one cut-out")
    cols = {}
    for i, p in enumerate(parts):
        v = func(p, **kwargs)
        if isinstance(v, pd.Series):
            v = v.to_dict()
        elif not hasattr(v, "items"):
            v = {getattr(func, "__name__", "value"): v}
        cols[f"cutout_{i}"] = {str(k): float(x) for k, x in v.items()}
    df = pd.DataFrame(cols)
    vals = df.to_numpy(dtype=float)
    df["mean"] = vals.mean(axis=1)
    df["std"] = vals.std(axis=1, ddof=1) if vals.shape[1] > 1 else np.nan
    return df
