"""Shared input handling for the transport solvers: device, axis, memory cap, percolation.

A transport solve is a global computation (every voxel couples to every other through
the field), so the solvers work on the whole volume in memory; the public functions say
so in their docstrings and refuse volumes over a configurable memory cap.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..core.arrays import as_segmentation, spatial_dims, voxel_size
from ..core.errors import InputError
from ..core.phases import phase_codes, phase_table
from ..core.progress import compute

__all__ = []

#: Default cap on the memory a solve may use, in GiB (dask config
#: ``electromicro.transport.max-memory-gib`` overrides it).
DEFAULT_MAX_MEMORY_GIB = 16.0


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional dependency
        raise ImportError("electromicro_dask.transport needs PyTorch: pip install "
                          "'electromicro-dask[ml]' (CPU: install the CPU wheel first)") from None
    return torch


@contextlib.contextmanager
def _threads(n, device):
    """One intra-op thread for small CPU solves: a thread pool's sync per stencil op costs
    more than it saves below ~10^6 voxels, and much more on a loaded machine."""
    torch = _torch()
    if device.type != "cpu" or n >= 2**20:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device):
    """``"auto"`` -> CUDA when available, else CPU; a CUDA request without CUDA is an error."""
    torch = _torch()
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError("device", f'"auto", "cpu" or "cuda", got {device!r}') from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device", '"cuda" needs a CUDA GPU; none is available (use "auto")')
    if dev.type not in ("cpu", "cuda"):
        raise InputError("device", f'"auto", "cpu" or "cuda", got {device!r}')
    return dev


def resolve_dtype(dtype):
    torch = _torch()
    table = {"float64": torch.float64, "float32": torch.float32}
    key = str(dtype).replace("torch.", "")
    if key not in table:
        raise InputError("dtype", f'"float32" or "float64", got {dtype!r}')
    return table[key]


def max_memory_bytes(max_memory_gib):
    import dask

    if max_memory_gib is None:
        max_memory_gib = dask.config.get("electromicro.transport.max-memory-gib",
                                         DEFAULT_MAX_MEMORY_GIB)
    try:
        value = float(max_memory_gib)
    except (TypeError, ValueError):
        raise InputError("max_memory_gib", f"a number of GiB, got {max_memory_gib!r}") from None
    if not value > 0:
        raise InputError("max_memory_gib", f"a positive number of GiB, got {max_memory_gib!r}")
    return value * 2**30


def check_memory(n_voxels, bytes_per_voxel, max_memory_gib, what):
    need = n_voxels * bytes_per_voxel
    cap = max_memory_bytes(max_memory_gib)
    if need > cap:
        raise InputError("phases", f"a volume whose {what} fits in max_memory_gib="
                         f"{cap / 2**30:.3g} GiB; {n_voxels} voxels need about "
                         f"{need / 2**30:.3g} GiB ({bytes_per_voxel} bytes per voxel): crop it, "
                         "or raise max_memory_gib / electromicro.transport.max-memory-gib")
    return need


def load_segmentation(phases, axis):
    """Validate a segmentation and the flow axis (nothing is computed here).

    Returns ``(seg, table, spacing, order)``: the validated DataArray, its phase table,
    ``{dim: voxel size in um}`` and the permutation of ``seg.dims`` that puts the flow
    axis first (see :func:`compute_oriented`).
    """
    seg = as_segmentation(phases, argument="phases")
    dims = spatial_dims(seg)
    if len(dims) != seg.ndim or seg.ndim not in (2, 3):
        raise InputError("phases", f"a 2D (y, x) or 3D (z, y, x) segmentation, got dims {seg.dims}")
    if axis not in dims:
        raise InputError("axis", f"one of {dims}, got {axis!r}")
    for d in dims:
        if seg.sizes[d] < 2:
            raise InputError("phases", f"at least 2 voxels along every dim, got {dict(seg.sizes)}")
    spacing = dict(zip(dims, voxel_size(seg)))
    order = [dims.index(axis)] + [i for i, d in enumerate(dims) if d != axis]
    return seg, phase_table(seg), spacing, order


def cubic(seg, axis, what):
    """Lattice Boltzmann needs cubic voxels: a segmentation with anisotropic ones is
    resampled (nearest phase, lazily) to cubic voxels of its smallest size, with a warning.
    Returns ``load_segmentation``'s tuple for the (possibly resampled) segmentation."""
    import warnings

    seg, table, spacing, order = load_segmentation(seg, axis)
    h = oriented_spacing(seg, order, spacing)[:seg.ndim]
    if np.allclose(h, h[0], rtol=1e-6):
        return seg, table, spacing, order
    from ..filters import resample

    target = min(h)
    warnings.warn(f"{what}: lattice Boltzmann needs cubic voxels; resampling the segmentation "
                  f"from {h} um to {target:g} um (nearest phase)", UserWarning, stacklevel=3)
    return load_segmentation(resample(seg, target, method="nearest"), axis)


def compute_oriented(seg, order, label):
    (arr,) = compute(seg.data, label=label)
    arr = np.asarray(arr)
    arr = np.ascontiguousarray(np.transpose(arr, order))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def oriented_spacing(seg, order, spacing):
    dims = spatial_dims(seg)
    h = [spacing[dims[i]] for i in order]
    if len(h) == 2:
        h.append(1.0)
    return tuple(float(v) for v in h)


def codes_for(table, names, argument):
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise InputError(argument, f"a phase name or a list of names, got {names!r}") from None
    if not names or not all(isinstance(n, str) for n in names):
        raise InputError(argument, f"a phase name or a non-empty list of names, got {names!r}")
    return phase_codes(table, names, argument)


def clusters(mask, periodic):
    """6-connected clusters of ``mask``: ``(labels, root)`` with ``root[labels]`` one id per
    cluster, clusters joined across the side faces (axes 1 and 2) when ``periodic``."""
    import cc3d
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, n = cc3d.connected_components(mask, connectivity=6, return_N=True)
    root = np.arange(n + 1)
    if periodic and n:
        pairs = []
        for ax in (1, 2):
            if labels.shape[ax] > 1:
                a = np.take(labels, 0, axis=ax).ravel()
                b = np.take(labels, -1, axis=ax).ravel()
                both = (a > 0) & (b > 0)
                pairs.append(np.stack([a[both], b[both]]))
        if pairs:
            p = np.concatenate(pairs, axis=1)
            graph = coo_matrix((np.ones(p.shape[1]), (p[0], p[1])), shape=(n + 1, n + 1))
            _, root = connected_components(graph, directed=False)
            root = root.astype(np.int64)
    return labels, root


def percolating(mask, periodic):
    """Voxels of ``mask`` in 6-connected clusters that touch both faces normal to axis 0.

    With ``periodic`` the clusters are joined across the side faces (axes 1 and 2) too.
    Returns ``(keep, n_clusters, n_excluded_clusters)``.
    """
    labels, root = clusters(mask, periodic)
    if root.size == 1:
        return np.zeros_like(mask, dtype=bool), 0, 0
    first = np.unique(root[_present(labels[0])])
    last = np.unique(root[_present(labels[-1])])
    through = np.intersect1d(first, last)
    n_clusters = np.unique(root[1:]).size
    keep_label = np.isin(root, through)
    keep_label[0] = False
    keep = keep_label[labels]
    return keep, int(n_clusters), int(n_clusters - through.size)


def _present(face):
    ids = np.unique(face)
    return ids[ids > 0]
