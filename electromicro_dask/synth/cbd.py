"""Carbon-binder morphologies with known connectivity (seed 001, Fig. 6: slurry-cast
electrodes hold a fragmented CBD, its largest aggregate 23.6 % of the CBD; dry-coated ones
a fibrillar PTFE/carbon web, 57 %).

The CBD of an electrode is replaced in its pore space by either small spheres (fragmented)
or long thin cylinders in random directions (fibrillar, the fibrils of dry coating). The
objects are drawn once for the whole volume from the seed; each block rasterises the ones
that reach it, so the result is lazy, any size and the same for any chunking.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from ..core.arrays import as_segmentation, voxel_size
from ..core.errors import InputError

__all__ = ["cbd_morphology"]

_KINDS = ("fragmented", "fibrillar")


def _objects(kind, extent, target, size_um, length_um, rng):
    """Sphere centres (n, 3) or segment end points (n, 2, 3), um, and their radius."""
    volume = float(np.prod(extent))
    r = size_um / 2
    if kind == "fragmented":
        one = 4.0 / 3.0 * np.pi * r**3
        n = int(np.ceil(target * volume / one))
        return rng.uniform(0, 1, (n, 3)) * extent, r
    one = np.pi * r**2 * length_um
    n = int(np.ceil(target * volume / one))
    mid = rng.uniform(0, 1, (n, 3)) * extent
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    half = 0.5 * length_um * d
    return np.stack([mid - half, mid + half], axis=1), r


def _block(phases, objects, radius, kind, spacing, codes, block_info=None):
    loc = block_info[0]["array-location"]
    axes = [(np.arange(a, b) + 0.0) * h for (a, b), h in zip(loc, spacing)]
    lo = np.array([ax[0] for ax in axes]) - radius
    hi = np.array([ax[-1] for ax in axes]) + radius
    if kind == "fragmented":
        keep = np.all((objects >= lo) & (objects <= hi), axis=1)
    else:
        blo, bhi = objects.min(axis=1), objects.max(axis=1)
        keep = np.all((bhi >= lo) & (blo <= hi), axis=1)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    hit = np.zeros(phases.shape, bool)
    for obj in objects[keep]:
        if kind == "fragmented":
            d2 = ((grid - obj) ** 2).sum(-1)
        else:
            a, b = obj
            ab = b - a
            t = np.clip(((grid - a) @ ab) / (ab @ ab), 0.0, 1.0)
            d2 = ((grid - (a + t[..., None] * ab)) ** 2).sum(-1)
        hit |= d2 <= radius**2
    out = np.where(phases == codes["cbd"], codes["pore"], phases).astype(phases.dtype)
    out[hit & (out == codes["pore"])] = codes["cbd"]
    return out


def cbd_morphology(phases, kind="fragmented", cbd_fraction=0.25, size_um=None,
                   length_um=None, seed=0):
    """Replace an electrode's CBD by a fragmented or a fibrillar one (seed 001, Fig. 6).

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with pore, cbd and am (e.g. :func:`electrode`), dims (z, y, x).
    kind : {"fragmented", "fibrillar"}
        Slurry-like isolated CBD spheres, or dry-coating-like fibrils (cylinders in random
        directions) that join into a web.
    cbd_fraction : float
        Volume the objects would fill in empty space, as a fraction of the volume; only
        their parts in the pore space become CBD, so the realised fraction is about this
        times the pore share, less the overlaps.
    size_um : float, optional
        Sphere diameter, or fibril diameter (default: 4 voxels, or 2 voxels for fibrils).
    length_um : float, optional
        Fibril length (default: a quarter of the largest extent).
    seed : int

    Returns
    -------
    xarray.DataArray
        The segmentation with the new CBD, lazy, chunk-invariant; ``attrs["cbd_kind"]``.

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> e = synth.electrode((32, 32, 32), 0.25, particle_radius_um=(1.5, 0.3), seed=1)
    >>> web = synth.cbd_morphology(e["phases"], "fibrillar")
    >>> web.attrs["cbd_kind"]
    'fibrillar'
    """
    seg = as_segmentation(phases)
    if seg.dims != ("z", "y", "x"):
        raise InputError("phases", f"dims ('z', 'y', 'x'), got {seg.dims}")
    codes = {name: code for code, name in seg.attrs["phases"].items()}
    if not {"pore", "cbd"} <= set(codes):
        raise InputError("phases", f"a segmentation with pore and cbd phases, got "
                         f"{sorted(codes)}")
    if kind not in _KINDS:
        raise InputError("kind", f"one of {_KINDS}, got {kind!r}")
    if not 0 < float(cbd_fraction) < 0.5:
        raise InputError("cbd_fraction", f"a fraction in (0, 0.5), got {cbd_fraction!r}")
    spacing = np.asarray(voxel_size(seg), dtype=np.float64)
    extent = spacing * np.asarray(seg.shape)
    size = float(size_um) if size_um else float((4 if kind == "fragmented" else 2) * spacing.max())
    length = float(length_um) if length_um else float(extent.max() / 4)
    if size <= 0 or length <= 0:
        raise InputError("size_um" if size <= 0 else "length_um", "a positive length in um")
    data = seg.data if isinstance(seg.data, da.Array) else da.from_array(seg.data)
    rng = np.random.default_rng(int(seed))
    objects, radius = _objects(kind, extent, float(cbd_fraction), size, length, rng)
    out = data.map_blocks(_block, objects=objects, radius=radius, kind=kind,
                          spacing=tuple(spacing), codes=codes, dtype=data.dtype)
    res = seg.copy(data=out)
    res.attrs = dict(seg.attrs, cbd_kind=kind, cbd_object_size_um=size)
    if kind == "fibrillar":
        res.attrs["cbd_fibril_length_um"] = length
    return res
