"""Geodesic tortuosity through one phase (seed 002 sec. 5.1; Neumann et al., J. Microsc.
278 (2020) 154 for the definition; Dijkstra, Numer. Math. 1 (1959) 269 for the algorithm).

For every phase voxel on the outlet face, the length of the shortest path through the
phase from the inlet face, divided by the distance between the faces. Paths run on the
26-neighbour voxel graph with Euclidean step lengths (physical, so anisotropic voxels
are handled), the metric of ``skimage.graph.MCP_Geometric`` with unit costs.

Chunking: a shortest path may wind through any number of blocks, so the distances are
found by block-wise Dijkstra iterated with boundary exchange (:mod:`._exchange`): each
block is solved with a virtual source linked to its voxels by the best known distance
over its one-voxel halo (and by 0 on the inlet face). Distances only decrease, so the
rounds stop, and at the fixed point every distance equals the whole-volume shortest
path. Only block shells travel to the client, never the volume.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from ..core.arrays import voxel_size
from ..core.errors import InputError
from ..core.phases import phase_code
from ..core.progress import compute, current_client
from ._exchange import _offsets, extend, iterate
from .surface import _axis_index, _segmentation

__all__ = ["geodesic_tortuosity", "GeodesicTortuosity"]

#: Largest block edge for the per-block graph (memory ~ 26 edges per voxel).
_MAX_BLOCK = 64
#: Peak bytes per voxel of one block solve (graph, Dijkstra, distances; measured 131 MiB
#: for a 64^3 block of a porous phase), with a margin.
_BYTES_PER_VOXEL = 600


def _block_edge():
    """Block edge for the block solves: ``_MAX_BLOCK``, or less where the smallest worker
    of the current distributed cluster would hold one solve in more than an eighth of its
    memory limit (the rest is the worker's own imports, its other data and headroom below
    the pause threshold)."""
    client = current_client()
    if client is None:
        return _MAX_BLOCK
    workers = client.scheduler_info()["workers"].values()
    limits = [w.get("memory_limit") or 0 for w in workers]
    limits = [m for m in limits if m > 0]
    if not limits:
        return _MAX_BLOCK
    edge = int((min(limits) / 8 / _BYTES_PER_VOXEL) ** (1.0 / 3.0))
    return max(16, min(_MAX_BLOCK, edge))


@dataclass
class GeodesicTortuosity:
    """Result of :func:`geodesic_tortuosity`.

    Attributes
    ----------
    phase, axis : str
    mean : float
        Mean geodesic tortuosity over the reached outlet voxels (NaN if none).
    reached_fraction : float
        Share of the phase voxels on the outlet face that are connected to the inlet.
    distribution : pandas.DataFrame
        One row per reached outlet voxel: its coordinates (um) on the face,
        ``length_um`` (shortest path length) and ``tortuosity``.
    thickness_um : float
        Distance between the inlet and outlet faces (voxel centres).
    """

    phase: str
    axis: str
    mean: float
    reached_fraction: float
    thickness_um: float
    distribution: pd.DataFrame = field(repr=False)


def _solve_block(block, halo, code, spacing, inlet_axis, at_inlet):
    """Shortest distances in one block given distances on its one-voxel halo.

    ``halo`` is the block extended by one voxel on each side, inf where unknown; its
    interior is ignored. Returns the block's distances (inf where unreached).

    The graph holds the phase voxels only, with int32 ids, and is written straight into
    preallocated edge arrays (both directions of the 13 undirected neighbour offsets plus
    one edge from a virtual source per start voxel): about 30 bytes per edge, so a 64^3
    block of a porous phase needs about 110 MB where separate per-offset lists and their
    concatenations needed about 300 MB.
    """
    mask = block == code
    shape = block.shape
    nd = block.ndim
    # Virtual source: best distance offered by the halo (plus the step), 0 on the inlet.
    init = np.full(shape, np.inf)
    for o in _offsets(nd):
        sl = tuple(slice(1 + c, 1 + c + shape[i]) for i, c in enumerate(o))
        length = float(np.sqrt(sum((c * s) ** 2 for c, s in zip(o, spacing))))
        np.minimum(init, halo[sl] + length, out=init)
    if at_inlet:
        face = [slice(None)] * nd
        face[inlet_axis] = 0
        init[tuple(face)] = 0.0
    init[~mask] = np.inf
    start = np.isfinite(init)
    if not start.any():
        return np.full(shape, np.inf)
    n = int(mask.sum())
    ids = np.full(shape, -1, np.int32)
    ids[mask] = np.arange(n, dtype=np.int32)
    forward = [o for o in _offsets(nd) if [c for c in o if c][0] > 0]
    pairs = []
    for o in forward:
        src = tuple(slice(max(0, -c), shape[i] - max(0, c)) for i, c in enumerate(o))
        dst = tuple(slice(max(0, c), shape[i] - max(0, -c)) for i, c in enumerate(o))
        pairs.append((src, dst, int((mask[src] & mask[dst]).sum()),
                      float(np.sqrt(sum((c * s) ** 2 for c, s in zip(o, spacing))))))
    n_start = int(start.sum())
    m = 2 * sum(k for _, _, k, _ in pairs) + n_start
    rows = np.empty(m, np.int32)
    cols = np.empty(m, np.int32)
    wts = np.empty(m, np.float64)
    pos = 0
    for src, dst, k, length in pairs:
        if not k:
            continue
        both = mask[src] & mask[dst]
        a, b = ids[src][both], ids[dst][both]
        rows[pos:pos + k], cols[pos:pos + k] = a, b
        rows[pos + k:pos + 2 * k], cols[pos + k:pos + 2 * k] = b, a
        wts[pos:pos + 2 * k] = length
        pos += 2 * k
    # A constant shift keeps zero offsets as stored edges of the sparse graph.
    shift = 1.0
    rows[pos:] = n
    cols[pos:] = ids[start]
    wts[pos:] = init[start] + shift
    graph = csr_matrix((wts, (rows, cols)), shape=(n + 1, n + 1))
    del rows, cols, wts
    dist = dijkstra(graph, directed=True, indices=n)[:n] - shift
    out = np.full(shape, np.inf)
    out[mask] = dist
    return out


def geodesic_tortuosity(phases, phase, axis="z", max_rounds=10000):
    """Geodesic tortuosity of a phase along an axis, voxel by voxel on the outlet face.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation (2D or 3D) with ``attrs["phases"]``; anisotropic voxels allowed.
    phase : str
        The transporting phase (e.g. ``"pore"``).
    axis : str
        Transport direction; the inlet is the first slice along it, the outlet the last.
    max_rounds : int
        Limit on the boundary-exchange rounds (a path crossing k block borders needs
        about k rounds); :class:`ConvergenceError` beyond it.

    Returns
    -------
    GeodesicTortuosity
        ``mean``, ``reached_fraction``, ``distribution`` (DataFrame) and ``thickness_um``.

    Notes
    -----
    Shortest paths on the 26-neighbour graph (8 in 2D) with Euclidean step lengths, equal
    to ``skimage.graph.MCP_Geometric`` with unit cost on the phase. Iterative global
    computation (module docstring); each round computes the blocks whose halo changed
    and brings back their outer shells. Blocks are at most 64 voxels along each axis
    (the per-block graph holds about 26 edges per voxel).

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask import measure
    >>> im = np.zeros((20, 10, 10), "uint8"); im[:, 3:6, 3:6] = 1   # straight channel
    >>> seg = emd.as_volume(im, voxel_size=0.5); seg.attrs["phases"] = {0: "am", 1: "pore"}
    >>> measure.geodesic_tortuosity(seg, "pore", axis="z").mean
    1.0
    """
    seg = _segmentation(phases)
    code = phase_code(seg, phase, "phase")
    ax = _axis_index(seg, axis)
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, (int, np.integer)) \
            or max_rounds < 1:
        raise InputError("max_rounds", f"a positive integer, got {max_rounds!r}")
    if seg.shape[ax] < 2:
        raise InputError("phases", f"at least 2 voxels along {axis!r}")
    spacing = voxel_size(seg)
    data = seg.data
    edge = _block_edge()
    if any(max(cs) > edge for cs in data.chunks):
        data = data.rechunk(tuple(min(max(cs), edge) for cs in data.chunks))
    nblocks = data.numblocks

    def solve(block, parts, idx):
        halo = extend(block.shape, parts, np.inf, float)
        return _solve_block(block, halo, code, spacing, ax, idx[ax] == 0)

    shells, _ = iterate([data], solve, np.inf, "geodesic distances", max_rounds,
                        sources=lambda idx: idx[ax] == 0)

    # Outlet face: the last slice along the axis, from the last row of blocks.
    other = [i for i in range(data.ndim) if i != ax]
    last = nblocks[ax] - 1
    face_parts = {}
    for idx in itertools.product(*[range(m) for m in nblocks]):
        if idx[ax] == last:
            shape = tuple(data.chunks[i][idx[i]] for i in other)
            # a block never reached keeps no shell: unreached throughout
            face = shells[idx][(ax, 1)] if idx in shells else np.full(shape, np.inf)
            face_parts[tuple(idx[i] for i in other)] = face
    grid = [[face_parts[k] for k in sorted(face_parts) if k[0] == j]
            for j in range(nblocks[other[0]])]
    face = np.block(grid) if len(other) == 2 else np.concatenate(
        [face_parts[(j,)] for j in range(nblocks[other[0]])])
    # which outlet voxels are phase (a small global quantity)
    sl = [slice(None)] * data.ndim
    sl[ax] = -1
    (is_phase,) = compute(data[tuple(sl)] == code, label="geodesic: outlet face")
    thickness = (seg.shape[ax] - 1) * spacing[ax]
    reached = np.isfinite(face) & is_phase
    coords = np.nonzero(reached)
    table = {f"{seg.dims[o]}_um": seg.coords[seg.dims[o]].values[c]
             for o, c in zip(other, coords)}
    table["length_um"] = face[reached]
    table["tortuosity"] = face[reached] / thickness
    df = pd.DataFrame(table)
    n_face = int(is_phase.sum())
    mean = float(df["tortuosity"].mean()) if len(df) else float("nan")
    return GeodesicTortuosity(phase, axis, mean, len(df) / n_face if n_face else float("nan"),
                              float(thickness), df)
