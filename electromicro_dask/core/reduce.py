"""Global reductions of chunked arrays that never rechunk them.

``da.bincount`` and ``da.histogram2d`` take 1D arrays, and the ravel of a 3D chunk grid
rechunks it into whole-slab chunks (``c x ny x nx`` voxels: gigabytes for a 2048^2
lateral field), far beyond a small worker's memory. These reduce each block on its own
and add the small per-block results (DESIGN.md, rules of chunked operations).
"""

from __future__ import annotations

import numpy as np

__all__ = ["blockwise_bincount", "blockwise_histogram2d"]


def _bincount_block(block, minlength):
    counts = np.bincount(block.ravel(), minlength=minlength)
    return counts.reshape((1,) * block.ndim + (-1,))


def blockwise_bincount(x, minlength):
    """``bincount`` of all values of the non-negative integer dask array ``x``.

    Values must be below ``minlength``; one count per block, then summed.
    """
    minlength = int(minlength)
    per_block = x.map_blocks(_bincount_block, minlength, new_axis=x.ndim, dtype=np.int64,
                             chunks=tuple((1,) * len(c) for c in x.chunks) + ((minlength,),),
                             meta=np.empty((0,) * (x.ndim + 1), np.int64))
    return per_block.sum(axis=tuple(range(x.ndim)))


def _bin_index(block, lo, hi, bins):
    # numpy.histogram's convention: half-open bins, the last one closed at ``hi``.
    i = np.floor((block.astype(np.float64) - lo) * (bins / (hi - lo)))
    return np.clip(i, 0, bins - 1).astype(np.int64)


def _pair_key_block(a, b, ranges, bins):
    (alo, ahi), (blo, bhi) = ranges
    return _bin_index(a, alo, ahi, bins) * bins + _bin_index(b, blo, bhi, bins)


def blockwise_histogram2d(a, b, bins, range):
    """Joint histogram of two equally chunked dask arrays of any shape.

    Parameters
    ----------
    a, b : dask.array.Array
        Values, clipped to ``range`` beforehand (values outside fall in the edge bins).
    bins : int
        Bins per axis.
    range : ((float, float), (float, float))
        The limits of ``a`` and of ``b``.

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
    counts = blockwise_bincount(key, bins * bins).reshape(bins, bins)
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in ranges]
    return counts, edges[0], edges[1]
