"""Phase volume fractions and their profiles through the electrode."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd

from ..core.arrays import as_segmentation
from ..core.errors import InputError
from ..core.progress import compute
from ..core.reduce import blockwise_bincount

__all__ = ["volume_fractions", "profile"]


def _counts_block(block, n, axis):
    # Per-slice counts of each code along `axis`: shape (n_slices, n_codes), summed
    # over blocks later. Codes beyond the table are counted in an overflow column.
    b = np.moveaxis(block, axis, 0).reshape(block.shape[axis], -1).astype(np.int64)
    b = np.minimum(b, n)
    rows = np.repeat(np.arange(b.shape[0]), b.shape[1])
    out = np.bincount(rows * (n + 1) + b.ravel(), minlength=b.shape[0] * (n + 1))
    return out.reshape(b.shape[0], n + 1)


def _slice_counts(seg, axis_index, n):
    data = seg.data
    ax = axis_index
    # One (slices-in-block, codes) table per block, summed over the other axes' blocks.
    def f(block):
        c = _counts_block(block, n, ax)
        shape = [1] * block.ndim + [n + 1]
        shape[ax] = c.shape[0]
        return c.reshape(shape)

    per_block = data.map_blocks(f, new_axis=data.ndim, dtype=np.int64,
                                chunks=tuple((1,) * len(c) if i != ax else c
                                             for i, c in enumerate(data.chunks)) + ((n + 1,),))
    other = tuple(i for i in range(data.ndim) if i != ax)
    return per_block.sum(axis=other)


def volume_fractions(phases):
    """Volume fraction of each phase.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``attrs["phases"]``.

    Returns
    -------
    pandas.Series
        Fractions indexed by phase name (summing to 1 when every code is in the table).

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, measure
    >>> seg = as_volume(np.array([[0, 1], [1, 1]], "uint8"), voxel_size=1.0)
    >>> seg.attrs["phases"] = {0: "pore", 1: "am"}
    >>> measure.volume_fractions(seg).to_dict()
    {'pore': 0.25, 'am': 0.75}
    """
    seg = as_segmentation(phases)
    table = seg.attrs["phases"]
    n = max(table) + 1
    counts = blockwise_bincount(da.minimum(seg.data, n).astype(np.int64), n + 1)
    (counts,) = compute(counts, label="volume fractions")
    total = counts.sum()
    s = pd.Series({name: counts[code] / total for code, name in table.items()}, name="fraction")
    s.index.name = "phase"
    return s


def profile(phases, axis="z"):
    """Fraction of each phase in every slice normal to ``axis`` (seed 001 Fig. 1D,
    seed 002 Fig. 10).

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``attrs["phases"]``.
    axis : str
        Dimension along which to profile (``"z"``, through the thickness, by default).

    Returns
    -------
    pandas.DataFrame
        One row per slice, indexed by the slice position ``<axis>_um``, one column per
        phase name.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, measure
    >>> seg = as_volume(np.array([[0, 0], [1, 0]], "uint8"), voxel_size=2.0)
    >>> seg.attrs["phases"] = {0: "pore", 1: "am"}
    >>> measure.profile(seg, axis="y")["am"].tolist()
    [0.0, 0.5]
    """
    seg = as_segmentation(phases)
    if axis not in seg.dims:
        raise InputError("axis", f"one of {seg.dims}, got {axis!r}")
    table = seg.attrs["phases"]
    n = max(table) + 1
    counts = _slice_counts(seg, seg.dims.index(axis), n)
    (counts,) = compute(counts, label=f"profile along {axis}")
    frac = counts / counts.sum(axis=1, keepdims=True)
    df = pd.DataFrame({name: frac[:, code] for code, name in table.items()},
                      index=pd.Index(np.asarray(seg[axis].values, dtype=float), name=f"{axis}_um"))
    return df
