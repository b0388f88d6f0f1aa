"""Neighbourhood operations that read their halo straight from the store.

``dask.array.map_overlap`` exchanges halos in memory: every input chunk is cut into up to
3**ndim pieces that wait for the neighbouring blocks' tasks. On a 3D chunk grid the
scheduler must then hold about one slab of chunks at once (and the pieces are numpy views
that keep their whole chunk alive while the worker counts only the piece, so it shows up
as *unmanaged* memory). A volume several times a worker's memory then pauses the worker
for good.

Arrays opened with :func:`~electromicro_dask.core.store.open_store` are registered here
(by their dask name, so any change to the array drops the registration). For them a
filter can instead read each output block plus its halo from zarr in one task
(:func:`map_halo`): the blocks are independent and each task needs the memory of one
padded block. The result equals ``map_overlap(..., boundary="none")``: a block on the
volume's faces is not padded on that side.
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np

__all__ = ["register_source", "store_source", "map_halo"]

_SOURCES: dict[str, str] = {}


def register_source(data, path):
    """Record that the dask array ``data`` is exactly the zarr array at ``path``."""
    if isinstance(data, da.Array):
        _SOURCES[data.name] = str(Path(path))


def store_source(data):
    """Path of the zarr array behind ``data`` if it was read unchanged from a store."""
    if not isinstance(data, da.Array):
        return None
    return _SOURCES.get(data.name)


def _halo_block(path, depth, func, kwargs, block_info=None):
    import zarr

    info = block_info[None]
    loc, shape = info["array-location"], info["shape"]
    lo = [max(0, a - d) for (a, _), d in zip(loc, depth)]
    hi = [min(n, b + d) for (_, b), d, n in zip(loc, depth, shape)]
    arr = zarr.open_array(path, mode="r")
    block = arr[tuple(slice(a, b) for a, b in zip(lo, hi))]
    out = func(block, **kwargs)
    trim = tuple(slice(a - l, b - l) for (a, b), l in zip(loc, lo))
    return np.ascontiguousarray(out[trim])


def map_halo(data, func, depth, dtype, **kwargs):
    """``func(padded_block, **kwargs)`` on every block of the store-backed ``data``.

    ``depth`` is the halo per axis (voxels); the output has ``data``'s chunks and
    ``dtype``. Returns ``None`` when ``data`` is not read unchanged from a store (then
    use ``map_overlap``).
    """
    path = store_source(data)
    if path is None:
        return None
    depth = tuple(int(d) for d in depth)
    dtype = np.dtype(dtype)
    return da.map_blocks(_halo_block, path, depth, func, kwargs, chunks=data.chunks,
                         dtype=dtype, meta=np.empty((0,) * data.ndim, dtype),
                         name=f"halo-{func.__name__}-" + da.core.tokenize(path, data.name, depth,
                                                                          func, kwargs))
