"""Agreement between two segmentations: fraction of equal voxels and Jaccard indices
(seed 002 Fig. 4)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd

from ..core.arrays import as_segmentation, check_same_grid
from ..core.errors import InputError
from ..core.progress import compute
from ..core.reduce import blockwise_bincount, blockwise_value_counts

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


def _scores(cm):
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
    return _scores(confusion(seg_a, seg_b))


def _joint_confusions(segs):
    """All pairwise confusion matrices from one pass: every voxel's codes in all the
    segmentations form one joint key, whose distinct values are counted block by block
    (a few thousand for segmentations that mostly agree), then marginalised per pair."""
    tables = [s.attrs["phases"] for s in segs]
    bases = [max(t) + 2 for t in tables]
    mult = np.cumprod([1] + bases[:-1])
    chunks = segs[0].data.chunks
    key = None
    for s, b, m in zip(segs, bases, mult):
        term = da.minimum(s.data.rechunk(chunks).astype(np.int64), b - 1) * int(m)
        key = term if key is None else key + term
    (vc,) = compute(blockwise_value_counts(key), label="confusions")
    values, counts = vc
    codes = [(values // int(m)) % b for b, m in zip(bases, mult)]
    out = {}
    for i in range(len(segs)):
        for j in range(i, len(segs)):
            na, nb = bases[i], bases[j]
            c = np.bincount(codes[i] * nb + codes[j], weights=counts, minlength=na * nb)
            c = np.rint(c).astype(np.int64).reshape(na, nb)
            ta, tb = tables[i], tables[j]
            out[i, j] = pd.DataFrame(c[np.ix_(list(ta), list(tb))], index=list(ta.values()),
                                     columns=list(tb.values()))
    return out


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

    Notes
    -----
    One pass over the data for all pairs: the joint codes of all segmentations are
    counted once (as long as they fit in 63 bits; pair by pair otherwise).
    """
    if not hasattr(segmentations, "items") or len(segmentations) < 2:
        raise InputError("segmentations", "a mapping of 2+ names to segmentations")
    keys = list(segmentations)
    segs = [as_segmentation(segmentations[k], argument=f"segmentations[{k!r}]") for k in keys]
    for k, s in zip(keys[1:], segs[1:]):
        check_same_grid(segs[0], s, f"segmentations[{k!r}]")
    if np.sum(np.log2([max(s.attrs["phases"]) + 2 for s in segs])) < 62:
        cms = _joint_confusions(segs)
    else:
        cms = {(i, j): confusion(segs[i], segs[j])
               for i in range(len(segs)) for j in range(i, len(segs))}
    rows = []
    for (i, j), cm in cms.items():
        r = _scores(cm)
        row = {"a": keys[i], "b": keys[j], "fraction_equal": r["fraction_equal"]}
        row.update({f"jaccard_{p}": v for p, v in r["jaccard"].items()})
        rows.append(row)
    return pd.DataFrame(rows)
