"""Agreement between two segmentations: fraction of equal voxels and Jaccard indices
(seed 002 Fig. 4)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd

from ..core.arrays import as_segmentation, check_same_grid
from ..core.errors import InputError
from ..core.progress import compute
from ..core.reduce import blockwise_bincount

__all__ = ["compare", "compare_many", "confusion"]


def confusion(seg_a, seg_b):
    """Confusion matrix (voxel counts) of two segmentations, rows ``a``, columns ``b``,
    indexed by phase name; phases are matched by name, not by code."""
    a = as_segmentation(seg_a, argument="seg_a")
    b = as_segmentation(seg_b, argument="seg_b")
    check_same_grid(a, b, "seg_b")
    ta, tb = a.attrs["phases"], b.attrs["phases"]
    # Codes outside a table go to an overflow row/column, never into another phase's cell.
    na, nb = max(ta) + 2, max(tb) + 2
    pair = (da.minimum(a.data.astype(np.int64), na - 1) * nb
            + da.minimum(b.data.astype(np.int64), nb - 1))
    (counts,) = compute(blockwise_bincount(pair, na * nb), label="confusion")
    counts = counts[: na * nb].reshape(na, nb)
    return pd.DataFrame(counts[np.ix_(list(ta), list(tb))], index=list(ta.values()),
                        columns=list(tb.values()))


def compare(seg_a, seg_b):
    """Voxel agreement of two segmentations on the same grid.

    Parameters
    ----------
    seg_a, seg_b : xarray.DataArray
        Segmentations with ``attrs["phases"]``; phases are matched by name.

    Returns
    -------
    dict
        ``{"fraction_equal": float, "jaccard": {phase: float}}``: the share of voxels
        given the same phase, and per phase |A and B| / |A or B| (NaN if the phase is in
        neither).

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, measure
    >>> a = as_volume(np.array([[0, 1], [1, 1]], "uint8"), voxel_size=1.0)
    >>> a.attrs["phases"] = {0: "pore", 1: "am"}
    >>> measure.compare(a, a)["fraction_equal"]
    1.0
    """
    cm = confusion(seg_a, seg_b)
    names = list(dict.fromkeys(list(cm.index) + list(cm.columns)))
    full = cm.reindex(index=names, columns=names, fill_value=0)
    total = full.values.sum()
    eq = float(np.trace(full.values) / total)
    jac = {}
    for n in names:
        inter = full.loc[n, n]
        union = full.loc[n, :].sum() + full.loc[:, n].sum() - inter
        jac[n] = float(inter / union) if union else float("nan")
    return {"fraction_equal": eq, "jaccard": jac}


def compare_many(segmentations):
    """Pairwise agreement of several segmentations (seed 002 Fig. 4).

    Parameters
    ----------
    segmentations : dict
        ``{method name: segmentation}``, all on one grid.

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``a``, ``b``, ``fraction_equal`` and one
        ``jaccard_<phase>`` column per phase.
    """
    if not hasattr(segmentations, "items") or len(segmentations) < 2:
        raise InputError("segmentations", "a mapping of 2+ names to segmentations")
    rows = []
    keys = list(segmentations)
    for i, ka in enumerate(keys):
        for kb in keys[i:]:
            r = compare(segmentations[ka], segmentations[kb])
            row = {"a": ka, "b": kb, "fraction_equal": r["fraction_equal"]}
            row.update({f"jaccard_{p}": v for p, v in r["jaccard"].items()})
            rows.append(row)
    return pd.DataFrame(rows)
