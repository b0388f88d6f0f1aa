"""Global reductions of chunked arrays that never rechunk them.

``da.bincount`` and ``da.histogram2d`` take 1D arrays, and the ravel of a 3D chunk grid
rechunks it into whole-slab chunks (``c x ny x nx`` voxels: gigabytes for a 2048^2
lateral field), far beyond a small worker's memory. These reduce each block on its own
and add the small per-block results (DESIGN.md, rules of chunked operations).
"""

from __future__ import annotations

import numpy as np

__all__ = ["blockwise_bincount", "blockwise_histogram2d", "blockwise_value_counts"]


def _sparse_counts(block, minlength):
    # A block of n voxels has at most n distinct values: its counts travel as (value,
    # count) pairs, not as a dense minlength vector (8 MiB for a 1024 x 1024 histogram,
    # times the number of blocks a worker holds before they are added up).
    v = np.asarray(block).ravel()
    c = np.bincount(v[v >= 0] if v.dtype.kind == "i" else v, minlength=minlength)
    nz = np.flatnonzero(c)
    return nz, c[nz]


def _merge_counts(parts, minlength, dense=False):
    idx = np.concatenate([p[0] for p in parts])
    cnt = np.concatenate([p[1] for p in parts])
    order = np.argsort(idx, kind="stable")
    idx, cnt = idx[order], cnt[order]
    start = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if len(idx) else idx
    idx, cnt = idx[start], np.add.reduceat(cnt, start) if len(cnt) else cnt
    if not dense:
        return idx, cnt
    out = np.zeros(minlength, dtype=np.int64)
    out[idx] = cnt
    return out


def _tree_counts(x, minlength, split_every):
    from dask import delayed

    parts = [delayed(_sparse_counts)(b, minlength) for b in x.to_delayed().ravel()]
    while len(parts) > 1:
        parts = [delayed(_merge_counts)(parts[i:i + split_every], minlength)
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def blockwise_bincount(x, minlength, split_every=8):
    """``bincount`` of all values of the integer dask array ``x``.

    Values must be below ``minlength``; negative ones are not counted. Each block is counted on its own and the sparse
    per-block counts are added in a tree of ``split_every`` at a time, so no task holds
    more than ``split_every`` blocks' worth of distinct values.
    """
    import dask.array as da
    from dask import delayed

    minlength = int(minlength)
    total = delayed(_merge_counts)([_tree_counts(x, minlength, split_every)], minlength,
                                   dense=True)
    return da.from_delayed(total, (minlength,), dtype=np.int64)


def _sparse_unique(block):
    v, c = np.unique(np.asarray(block).ravel(), return_counts=True)
    return v.astype(np.int64), c.astype(np.int64)


def blockwise_value_counts(x, split_every=8):
    """Distinct values of the integer dask array ``x`` and how often each occurs.

    Like :func:`blockwise_bincount` for keys from a range far larger than the number of
    distinct values (joint codes of several segmentations, say): only the values that
    occur travel. Returns a ``dask.delayed`` of ``(values, counts)``, values ascending.
    """
    from dask import delayed

    parts = [delayed(_sparse_unique)(b) for b in x.to_delayed().ravel()]
    while len(parts) > 1:
        parts = [delayed(_merge_counts)(parts[i:i + split_every], 0)
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _bin_index(block, lo, hi, bins):
    # numpy.histogram's convention: half-open bins, the last one closed at ``hi``.
    i = np.floor((block.astype(np.float64) - lo) * (bins / (hi - lo)))
    return np.clip(i, 0, bins - 1).astype(np.int64)


def _pair_key_block(a, b, ranges, bins):
    (alo, ahi), (blo, bhi) = ranges
    return _bin_index(a, alo, ahi, bins) * bins + _bin_index(b, blo, bhi, bins)


def blockwise_histogram2d(a, b, bins, range, mask=None):
    """Joint histogram of two equally chunked dask arrays of any shape.

    Parameters
    ----------
    a, b : dask.array.Array
        Values, clipped to ``range`` beforehand (values outside fall in the edge bins).
    bins : int
        Bins per axis.
    range : ((float, float), (float, float))
        The limits of ``a`` and of ``b``.
    mask : dask.array.Array, optional
        Boolean, equally chunked: only the elements where it holds are counted.

    Returns
    -------
    counts : dask.array.Array
        ``(bins, bins)`` counts, ``counts[i, j]`` for ``a`` in bin ``i`` and ``b`` in ``j``.
    edges_a, edges_b : numpy.ndarray
        The ``bins + 1`` bin edges of each axis.
    """
    import dask.array as da

    bins = int(bins)
    ranges = tuple((float(lo), float(hi)) for lo, hi in range)
    key = da.map_blocks(_pair_key_block, a, b, ranges=ranges, bins=bins, dtype=np.int64)
    if mask is not None:
        key = da.where(mask, key, -1)
    counts = blockwise_bincount(key, bins * bins).reshape(bins, bins)
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in ranges]
    return counts, edges[0], edges[1]
