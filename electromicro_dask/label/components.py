"""Connected-component labeling of chunked masks, with a global merge across chunk borders.

The algorithm is the classic two-pass block labeling used for out-of-core images (see e.g.
dask-image's ``ndmeasure.label`` and the block-merge scheme of Wu, Otoo and Suzuki,
"Optimizing two-pass connected-component labeling algorithms", Pattern Anal. Appl. 12
(2009) 117): every block is labeled on its own with a fast kernel (cc3d, Silversmith),
the block labels are made globally unique by per-block offsets, and the labels that touch
across a chunk border are linked.  Links are found on the thin slabs where two blocks meet
(faces, and for connectivity 2 and 3 also edges and corners) and merged with a sparse
graph connected-components pass (scipy.sparse.csgraph).  A lookup table then maps every
block's local ids to consecutive global ids ``1..N``, applied lazily block by block.

Only the per-block label counts and the linked pairs come back to the client; the volume
itself is never gathered (DESIGN.md rule 3).
"""

from __future__ import annotations

import itertools

import cc3d
import dask
import dask.array as da
import numpy as np
import xarray as xr
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as _csgraph_components

from ..core.arrays import as_volume, spatial_dims
from ..core.errors import InputError
from ..core.phases import phase_codes
from ..core.progress import compute

__all__ = ["connected_components", "mask_of"]

# cc3d's neighbourhood size for (ndim, connectivity): faces, +edges, +corners.
_CC3D = {(2, 1): 4, (2, 2): 8, (3, 1): 6, (3, 2): 18, (3, 3): 26}


def mask_of(data, phase=None, argument="mask_or_phases"):
    """Boolean dask-backed DataArray from a mask, or from a segmentation and phase name(s).

    Without ``phase`` a boolean array is taken as is and an integer array as ``data != 0``.
    """
    if not isinstance(data, xr.DataArray):
        data = as_volume(data, voxel_size=1.0, argument=argument)
    else:
        data = as_volume(data, argument=argument)
    if len(spatial_dims(data)) != data.ndim or data.ndim not in (2, 3):
        raise InputError(argument, f"a 2D (y, x) or 3D (z, y, x) array, got dims {data.dims}")
    if phase is not None:
        codes = phase_codes(data, phase, "phase")
        if data.dtype.kind not in "ui":
            raise InputError(argument, f"an integer segmentation, got dtype {data.dtype}")
        mask = data.isin(codes) if len(codes) > 1 else data == codes[0]
    elif data.dtype == bool:
        mask = data
    elif data.dtype.kind in "uif":
        mask = data != 0
    else:
        raise InputError(argument, f"a boolean mask or an integer segmentation, got {data.dtype}")
    mask.attrs = {k: v for k, v in data.attrs.items() if k != "phases"}
    return mask


def _check_connectivity(connectivity, ndim):
    if isinstance(connectivity, bool) or not isinstance(connectivity, (int, np.integer)) \
            or not 1 <= int(connectivity) <= ndim:
        raise InputError("connectivity", f"an integer in 1..{ndim} for {ndim}D data "
                         f"(1 faces, 2 +edges{', 3 +corners' if ndim == 3 else ''}), "
                         f"got {connectivity!r}")
    return int(connectivity)


def _label_block(block, connectivity):
    """Local labels 1..n of one block (uint32) and n."""
    block = np.ascontiguousarray(block, dtype=bool)
    # Blocks that are one voxel thick along some axes are labeled in fewer dims (cc3d
    # fails on e.g. 1x1xn blocks with 26-connectivity); no neighbour exists along them.
    squeezed = block.reshape([s for s in block.shape if s > 1])
    nd = squeezed.ndim
    if nd == 0:
        n = int(squeezed)
        labels = np.full(block.shape, n, dtype=np.uint32)
        return labels, n
    if nd == 1:
        starts = squeezed & ~np.concatenate([[False], squeezed[:-1]])
        labels = (np.cumsum(starts, dtype=np.uint32) * squeezed).astype(np.uint32)
        return labels.reshape(block.shape), int(starts.sum())
    # uint8, not bool: cc3d 4.1's binary-image path mislabels background in 2D with
    # 8-connectivity (found by the property test).
    labels, n = cc3d.connected_components(squeezed.view(np.uint8),
                                          connectivity=_CC3D[nd, min(connectivity, nd)],
                                          return_N=True, out_dtype=np.uint32)
    return labels.reshape(block.shape), int(n)


def _directions(ndim, connectivity):
    """Offsets o in {-1,0,1}^ndim to neighbouring blocks, one of each +-pair, that can hold
    a neighbour under ``connectivity`` (an offset changing m block indices needs m <= c)."""
    out = []
    for o in itertools.product((-1, 0, 1), repeat=ndim):
        nz = [v for v in o if v]
        if nz and nz[0] == 1 and len(nz) <= connectivity:
            out.append(o)
    return out


def _slab_index(o):
    """Index of the voxels of a block that face the neighbouring block at offset ``o``."""
    return tuple(slice(None) if v == 0 else (-1 if v > 0 else 0) for v in o)


def _block_stage(block, connectivity, directions):
    """Label one block; keep only the count and the boundary slabs its neighbours need."""
    labels, n = _label_block(block, connectivity)
    slabs = {}
    for o in directions:
        slabs[o] = np.ascontiguousarray(labels[_slab_index(o)])
        neg = tuple(-v for v in o)
        slabs[neg] = np.ascontiguousarray(labels[_slab_index(neg)])
    return n, slabs


def _get_count(stage):
    return stage[0]


def _pairs(stage_a, stage_b, o, connectivity):
    """Unique (local id in a, local id in b) linked across the border at offset ``o``.

    ``a``'s slab facing ``b`` and ``b``'s slab facing ``a`` have the same shape (the block
    extents along the unchanged axes are equal).  Voxels a[p] and b[p + t] are neighbours
    when t, over the unchanged axes, moves in at most ``connectivity - m`` of them.
    """
    sa = stage_a[1][o]
    sb = stage_b[1][tuple(-v for v in o)]
    m = sum(1 for v in o if v)
    free = sa.ndim
    found = []
    for t in itertools.product((-1, 0, 1), repeat=free):
        if sum(1 for v in t if v) > connectivity - m:
            continue
        ia = tuple(slice(max(0, -v), n - max(0, v)) for v, n in zip(t, sa.shape))
        ib = tuple(slice(max(0, v), n - max(0, -v)) for v, n in zip(t, sa.shape))
        a = sa[ia].ravel()
        b = sb[ib].ravel()
        keep = (a != 0) & (b != 0)
        if keep.any():
            found.append(np.stack([a[keep], b[keep]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.uint32)
    return np.unique(np.concatenate(found), axis=0)


def _relabel_block(block, lut, connectivity):
    labels, _ = _label_block(block, connectivity)
    return lut[labels]


def _equivalences(mask, connectivity):
    """Per-block label counts and linked label pairs (global ids), one small computation."""
    arr = mask.data
    ndim = arr.ndim
    directions = _directions(ndim, connectivity)
    blocks = arr.to_delayed()
    stage = np.empty(blocks.shape, dtype=object)
    block_stage = dask.delayed(_block_stage, pure=True)
    for idx in np.ndindex(blocks.shape):
        stage[idx] = block_stage(blocks[idx], connectivity, directions)
    counts = [dask.delayed(_get_count, pure=True)(stage[idx]) for idx in np.ndindex(blocks.shape)]
    pair_tasks, pair_keys = [], []
    for idx in np.ndindex(blocks.shape):
        for o in directions:
            jdx = tuple(i + v for i, v in zip(idx, o))
            if all(0 <= j < n for j, n in zip(jdx, blocks.shape)):
                pair_tasks.append(dask.delayed(_pairs, pure=True)(stage[idx], stage[jdx], o,
                                                                   connectivity))
                pair_keys.append((idx, jdx))
    counts, pairs = compute(counts, pair_tasks, label="connected components: block borders")
    counts = np.asarray(counts, dtype=np.int64).reshape(blocks.shape)
    offsets = np.zeros(blocks.shape, dtype=np.int64)
    offsets.flat[1:] = np.cumsum(counts.ravel())[:-1]
    edges = [np.zeros((0, 2), dtype=np.int64)]
    for (idx, jdx), p in zip(pair_keys, pairs):
        if len(p):
            edges.append(np.stack([p[:, 0].astype(np.int64) + offsets[idx],
                                   p[:, 1].astype(np.int64) + offsets[jdx]], axis=1))
    return counts, offsets, np.concatenate(edges)


def _global_lut(counts, edges):
    """Map provisional ids 0..T to consecutive component ids (0 stays background)."""
    total = int(counts.sum())
    n_nodes = total + 1
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])),
                       shape=(n_nodes, n_nodes))
    # Components are numbered in order of their smallest node, so node 0 (background, never
    # linked) gets 0 and the others 1..N in block-raster order of first appearance.
    n_comp, comp = _csgraph_components(graph, directed=False)
    n_labels = int(n_comp) - 1
    dtype = np.uint32 if n_labels < 2**32 else np.uint64
    return comp.astype(dtype), n_labels


def connected_components(mask_or_phases, connectivity=1, phase=None):
    """Label the connected components of a mask (or of one phase) on chunked data.

    Parameters
    ----------
    mask_or_phases : xarray.DataArray
        A boolean mask, or a segmentation (unsigned integers with ``attrs["phases"]``)
        together with ``phase``. 2D ``(y, x)`` or 3D ``(z, y, x)``, dask-backed or numpy
        (numpy is chunked by the package's chunk policy). Without ``phase`` a non-boolean
        array is read as ``array != 0``.
    connectivity : {1, 2, 3}
        Which neighbours touch: 1 shares a face (6 in 3D, 4 in 2D), 2 also an edge (18 in
        3D, 8 in 2D), 3 also a corner (26, 3D only). As ``scipy.ndimage.label`` with
        ``generate_binary_structure(ndim, connectivity)``.
    phase : str or list of str, optional
        Label the voxels of this phase (or the union of these phases) of a segmentation.

    Returns
    -------
    xarray.DataArray
        Lazy labels, 0 for background and consecutive ids ``1..N`` for the components
        (uint32, uint64 beyond 2**32 - 1 labels), on the grid and chunks of the input.
        ``attrs["n_labels"]`` holds N.

    Notes
    -----
    Calling this function runs one small global computation: each block is labeled once
    to find its label count and the labels on its borders; only the counts and the linked
    label pairs come back. The returned array labels each block again when computed (the
    labeling kernel is fast; keeping the block labels would cost a volume of memory).
    Ids are ordered by the block (C order) in which a component first appears and, within
    a block, by cc3d's raster order; they equal ``scipy.ndimage.label``'s up to a
    permutation.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask.label import connected_components
    >>> m = emd.as_volume(np.eye(6, dtype=bool), voxel_size=1.0, chunks=(4, 4))
    >>> connected_components(m, connectivity=2).attrs["n_labels"]
    1
    >>> connected_components(m, connectivity=1).attrs["n_labels"]
    6
    """
    mask = mask_of(mask_or_phases, phase)
    connectivity = _check_connectivity(connectivity, mask.ndim)
    counts, offsets, edges = _equivalences(mask, connectivity)
    lut, n_labels = _global_lut(counts, edges)

    arr = mask.data
    blocks = arr.to_delayed()
    relabel = dask.delayed(_relabel_block, pure=True)
    pieces = np.empty(blocks.shape, dtype=object)
    for idx in np.ndindex(blocks.shape):
        start = int(offsets[idx])
        piece = np.concatenate([lut[:1], lut[start + 1:start + 1 + int(counts[idx])]])
        shape = tuple(c[i] for c, i in zip(arr.chunks, idx))
        pieces[idx] = da.from_delayed(relabel(blocks[idx], piece, connectivity), shape=shape,
                                      dtype=lut.dtype)
    labels = da.block(pieces.tolist())
    out = xr.DataArray(labels, dims=mask.dims, coords=mask.coords, name="labels")
    out.attrs = {"units": mask.attrs.get("units", "um"), "n_labels": n_labels,
                 "connectivity": connectivity}
    if phase is not None:
        out.attrs["phase"] = phase
    return out
