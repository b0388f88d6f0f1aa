"""Per-label properties aggregated exactly across chunks.

Each block contributes partial sums per label (voxel count, sum of coordinates, sum of
outer products of coordinates, bounding box, and border crossings per direction and
neighbouring phase); the partial sums of all blocks are added per label on the client,
so the result is that of the whole array whatever the chunking.

Surface areas use the discrete Crofton formula with the 13 lattice directions of the
3x3x3 neighbourhood in 3D (4 in 2D): Legland, Kieu and Devaux, "Computation of Minkowski
measures on 2D and 3D binary images", Image Anal. Stereol. 26 (2007) 83, eqs. 9-10 and
Table 2; the direction weights are the spherical Voronoi cells of the directions, here
computed numerically so anisotropic voxels are handled too.  For a voxelised sphere of
radius 20 voxels the estimate is within 0.2 % of 4 pi r^2 (tests/label).  The same count,
split by the phase of the voxel across each crossing, gives the contact area of a label
with each phase and so the coverage of its surface (seed 000, Fig. 3B).
"""

from __future__ import annotations

import functools
import itertools
import math

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.ndimage as ndi
import xarray as xr

from ..core.arrays import as_volume, check_same_grid, spatial_dims, voxel_size
from ..core.errors import InputError
from ..core.phases import phase_table
from ..core.progress import compute

__all__ = ["regionprops", "crofton_weights"]


def _half_directions(ndim):
    """Lattice directions of the 3**ndim neighbourhood, one of each +- pair."""
    return [o for o in itertools.product((-1, 0, 1), repeat=ndim)
            if any(o) and [v for v in o if v][0] == 1]


@functools.lru_cache(maxsize=16)
def crofton_weights(vectors, samples=200_000):
    """Solid-angle (3D) or angle (2D) share of the directions closest to each vector.

    ``vectors`` are physical direction vectors (um); the shares sum to one. In 3D the
    directions are sampled on a Fibonacci sphere (deterministic), in 2D on a half circle.
    For cubic voxels this gives Legland et al.'s (2007) weights 0.0916/0.0740/0.0704.
    """
    vec = np.asarray(vectors, dtype=np.float64)
    unit = vec / np.linalg.norm(vec, axis=1)[:, None]
    if vec.shape[1] == 2:
        t = (np.arange(samples) + 0.5) / samples * np.pi
        pts = np.stack([np.sin(t), np.cos(t)], axis=1)
    else:
        i = np.arange(samples) + 0.5
        phi = np.arccos(1.0 - 2.0 * i / samples)
        theta = np.pi * (1.0 + 5.0**0.5) * i
        pts = np.stack([np.cos(phi), np.sin(phi) * np.sin(theta),
                        np.sin(phi) * np.cos(theta)], axis=1)
    nearest = np.argmax(np.abs(pts @ unit.T), axis=1)
    return np.bincount(nearest, minlength=len(unit)) / samples


def _block_props(ext, ext_phases, core, origin, directions, n_codes):
    """Partial sums for the labels of one block.

    ``ext`` is the block with a one-voxel overlap (none at the volume border); ``core``
    the slices of the block itself inside it; ``origin`` its global voxel index.
    """
    ndim = ext.ndim
    lab = ext[core]
    fg = lab != 0
    ids, inv = np.unique(lab[fg], return_inverse=True)
    res = {}
    if len(ids):
        n = np.bincount(inv, minlength=len(ids)).astype(np.float64)
        pos = np.nonzero(fg)
        sums, outer = [], {}
        for a in range(ndim):
            sums.append(np.bincount(inv, weights=pos[a], minlength=len(ids)))
        for a in range(ndim):
            for b in range(a, ndim):
                outer[a, b] = np.bincount(inv, weights=pos[a].astype(np.float64) * pos[b],
                                          minlength=len(ids))
        local = np.zeros(lab.shape, dtype=np.int64)
        local[fg] = inv + 1
        boxes = ndi.find_objects(local)
        res["count"] = n
        for a in range(ndim):
            # Coordinates relative to the block keep the squares small; shifted to global
            # indices here, where the products are formed from the block means.
            mean = sums[a] / n
            res[f"s{a}"] = n * (mean + origin[a])
        for a in range(ndim):
            for b in range(a, ndim):
                ma, mb = sums[a] / n, sums[b] / n
                centred = outer[a, b] - n * ma * mb
                res[f"q{a}{b}"] = centred + n * (ma + origin[a]) * (mb + origin[b])
        for a in range(ndim):
            res[f"lo{a}"] = np.array([s[a].start for s in boxes]) + origin[a]
            res[f"hi{a}"] = np.array([s[a].stop for s in boxes]) + origin[a]
    table = pd.DataFrame(res, index=pd.Index(ids.astype(np.int64), name="label"))

    # Border crossings: pairs (p, p + d) with p in the block, d a half direction; each
    # unordered voxel pair of the volume is seen by exactly one block.
    cross = []
    for k, d in enumerate(directions):
        sa = tuple(slice(c.start + max(0, -v) * (c.start == 0), c.stop - max(0, v) * (c.stop == n))
                   for c, v, n in zip(core, d, ext.shape))
        sb = tuple(slice(s.start + v, s.stop + v) for s, v in zip(sa, d))
        a = ext[sa]
        b = ext[sb]
        diff = a != b
        if not diff.any():
            continue
        la, lb = a[diff], b[diff]
        if ext_phases is not None:
            pa, pb = ext_phases[sa][diff], ext_phases[sb][diff]
        else:
            pa = pb = np.zeros(len(la), dtype=np.int64)
        # Label of p sees the phase at p + d, and vice versa.
        for lab_, ph in ((la, pb), (lb, pa)):
            keep = lab_ != 0
            if keep.any():
                key = (lab_[keep].astype(np.int64) * len(directions) + k) * n_codes \
                    + ph[keep].astype(np.int64)
                cross.append(key)
    if cross:
        keys, counts = np.unique(np.concatenate(cross), return_counts=True)
    else:
        keys, counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
    return table, keys, counts


def _core_slices(chunks, idx, depth_lo):
    return tuple(slice(lo, lo + c[i]) for c, i, lo in zip(chunks, idx, depth_lo))


def regionprops(labels, phases=None):
    """Properties of every labelled region, exact across chunks.

    Parameters
    ----------
    labels : xarray.DataArray
        Integer labels (0 = background), 2D ``(y, x)`` or 3D ``(z, y, x)``, e.g. from
        :func:`connected_components` or :func:`watershed`. Ids need not be consecutive.
    phases : xarray.DataArray, optional
        A segmentation on the same grid (``attrs["phases"]``). Adds, per label, the contact
        area with each phase across its surface and the share of its surface each phase
        covers (seed 000, Fig. 3B). A neighbouring label of the same phase counts as contact
        with that phase (e.g. ``contact_am_um2`` between touching particles).

    Returns
    -------
    pandas.DataFrame
        One row per label present, sorted by ``label``, with columns

        - ``label``; ``n_voxels``;
        - ``volume_um3`` (3D) or ``area_um2`` (2D);
        - ``equivalent_diameter_um``: of the sphere (3D) or circle (2D) of that volume/area;
        - ``centroid_<dim>_um``;
        - ``bbox_min_<dim>``, ``bbox_max_<dim>`` (voxel indices, max exclusive, as
          skimage) and ``bbox_min_<dim>_um``, ``bbox_max_<dim>_um`` (voxel edges, um);
        - ``major_axis_um``, ``minor_axis_um``: principal axis lengths as
          ``skimage.measure.regionprops`` defines them from the eigenvalues ``l`` of the
          covariance of the voxel centres (``4 sqrt(l)`` in 2D, ``sqrt(20 l)`` in 3D,
          the axes of the ellipse/ellipsoid with the same second moments);
        - ``aspect_ratio``: major / minor (longest / shortest axis, seed 000); NaN when
          the region is flat (minor axis 0);
        - ``surface_area_um2`` (3D) or ``perimeter_um`` (2D): Crofton estimate of the
          boundary with anything that is not this label, inside the volume (faces on the
          volume border are not counted: what lies beyond is unknown);
        - ``touches_border``: whether the region reaches the volume border;
        - with ``phases``: ``contact_<phase>_um2`` (``_um`` in 2D) and ``coverage_<phase>``
          (contact / surface; the shares sum to 1 for a region with a surface).

    Notes
    -----
    Computes the per-block partial sums (a table per block, not the volume) and returns
    a pandas object: this function is eager.

    Examples
    --------
    >>> import numpy as np
    >>> import electromicro_dask as emd
    >>> from electromicro_dask.label import connected_components, regionprops
    >>> m = emd.as_volume(np.pad(np.ones((4, 4), bool), 2), voxel_size=0.5)
    >>> regionprops(connected_components(m))[["label", "area_um2"]].to_dict("records")
    [{'label': 1, 'area_um2': 4.0}]
    """
    if not isinstance(labels, xr.DataArray):
        raise InputError("labels", f"an xarray.DataArray of integer labels, got {type(labels)}")
    labels = as_volume(labels, argument="labels")
    dims = spatial_dims(labels)
    if len(dims) != labels.ndim or labels.ndim not in (2, 3):
        raise InputError("labels", f"a 2D (y, x) or 3D (z, y, x) array, got dims {labels.dims}")
    if labels.dtype.kind not in "ui":
        raise InputError("labels", f"integer labels, got dtype {labels.dtype}")
    ndim = labels.ndim
    vs = np.array(voxel_size(labels), dtype=np.float64)
    table = None
    ph_data = None
    if phases is not None:
        table = phase_table(phases, "phases")
        phases = as_volume(phases, argument="phases")
        check_same_grid(labels, phases, "phases")
        ph_data = phases.data.rechunk(labels.data.chunks)
    n_codes = (max(table) + 1) if table else 1

    directions = _half_directions(ndim)
    arr = labels.data
    depth = {a: 1 for a in range(ndim)}
    ext = da.overlap.overlap(arr, depth=depth, boundary="none")
    ext_blocks = ext.to_delayed()
    ph_blocks = (da.overlap.overlap(ph_data, depth=depth, boundary="none").to_delayed()
                 if ph_data is not None else None)
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in arr.chunks]
    task = dask.delayed(_block_props, pure=True, nout=3)
    parts = []
    for idx in np.ndindex(ext_blocks.shape):
        core = _core_slices(arr.chunks, idx, [0 if i == 0 else 1 for i in idx])
        origin = tuple(int(s[i]) for s, i in zip(starts, idx))
        pb = ph_blocks[idx] if ph_blocks is not None else None
        parts.append(task(ext_blocks[idx], pb, core, origin, directions, n_codes))
    (parts,) = compute(parts, label="regionprops: per-block sums")
    return _assemble(parts, ndim, dims, vs, labels, directions, table, n_codes)


def _assemble(parts, ndim, dims, vs, labels, directions, table, n_codes):
    tables = [p[0] for p in parts if len(p[0])]
    if not tables:
        return _empty_frame(ndim, dims, table)
    parts_df = pd.concat(tables)
    g = parts_df.groupby(level=0)
    lo = g[[f"lo{a}" for a in range(ndim)]].min()
    hi = g[[f"hi{a}" for a in range(ndim)]].max()
    sums = g[[c for c in parts_df.columns if c[0] in "csq"]].sum()
    ids = sums.index.to_numpy()
    n = sums["count"].to_numpy()
    mean = np.stack([sums[f"s{a}"].to_numpy() / n for a in range(ndim)], axis=1)
    cov = np.zeros((len(ids), ndim, ndim))
    for a in range(ndim):
        for b in range(a, ndim):
            c = sums[f"q{a}{b}"].to_numpy() / n - mean[:, a] * mean[:, b]
            cov[:, a, b] = cov[:, b, a] = c * vs[a] * vs[b]
    eig = np.clip(np.linalg.eigvalsh(cov), 0.0, None)  # ascending
    factor = 4.0 if ndim == 2 else math.sqrt(20.0)
    # skimage: 4 sqrt(l) in 2D; sqrt(10 (I0 + I1 - I2)) = sqrt(20 l) in 3D, from the
    # inertia tensor eigenvalues I = trace(C) - l of the covariance C.
    major = factor * np.sqrt(eig[:, -1])
    minor = factor * np.sqrt(eig[:, 0])
    voxel = float(np.prod(vs))
    size = n * voxel
    out = {"label": ids.astype(np.int64), "n_voxels": n.astype(np.int64)}
    if ndim == 3:
        out["volume_um3"] = size
        out["equivalent_diameter_um"] = np.cbrt(6.0 * size / np.pi)
    else:
        out["area_um2"] = size
        out["equivalent_diameter_um"] = np.sqrt(4.0 * size / np.pi)
    origin = [float(labels.coords[d].values[0]) for d in dims]
    for a, d in enumerate(dims):
        out[f"centroid_{d}_um"] = origin[a] + mean[:, a] * vs[a]
    for a, d in enumerate(dims):
        out[f"bbox_min_{d}"] = lo[f"lo{a}"].to_numpy()
        out[f"bbox_max_{d}"] = hi[f"hi{a}"].to_numpy()
    for a, d in enumerate(dims):
        out[f"bbox_min_{d}_um"] = origin[a] + (out[f"bbox_min_{d}"] - 0.5) * vs[a]
        out[f"bbox_max_{d}_um"] = origin[a] + (out[f"bbox_max_{d}"] - 0.5) * vs[a]
    out["major_axis_um"] = major
    out["minor_axis_um"] = minor
    with np.errstate(divide="ignore", invalid="ignore"):
        out["aspect_ratio"] = np.where(minor > 0, major / np.where(minor > 0, minor, 1.0), np.nan)

    # Crofton: S = 2 sum_i c_i N_i v / |d_i| (3D), P = pi/2 sum_i c_i N_i a / |d_i| (2D),
    # N_i the number of crossings along direction i (Legland et al. 2007, eqs. 9-10).
    vectors = np.array(directions, dtype=np.float64) * vs
    w = crofton_weights(tuple(map(tuple, vectors)))
    per_dir = (2.0 if ndim == 3 else np.pi / 2.0) * w * voxel / np.linalg.norm(vectors, axis=1)
    keys = np.concatenate([p[1] for p in parts])
    counts = np.concatenate([p[2] for p in parts]).astype(np.float64)
    code = keys % n_codes
    k = (keys // n_codes) % len(directions)
    lab = keys // (n_codes * len(directions))
    measure = counts * per_dir[k]
    pos = np.searchsorted(ids, lab)
    surface = np.bincount(pos, weights=measure, minlength=len(ids))
    sname, cunit = ("surface_area_um2", "um2") if ndim == 3 else ("perimeter_um", "um")
    out[sname] = surface
    shape = labels.shape
    touches = np.zeros(len(ids), dtype=bool)
    for a in range(ndim):
        touches |= (out[f"bbox_min_{dims[a]}"] == 0) | (out[f"bbox_max_{dims[a]}"] == shape[a])
    out["touches_border"] = touches
    if table is not None:
        for c, name in table.items():
            sel = code == c
            contact = np.bincount(pos[sel], weights=measure[sel], minlength=len(ids))
            out[f"contact_{name}_{cunit}"] = contact
        with np.errstate(divide="ignore", invalid="ignore"):
            for c, name in table.items():
                out[f"coverage_{name}"] = np.where(surface > 0, out[f"contact_{name}_{cunit}"]
                                                   / np.where(surface > 0, surface, 1), np.nan)
    frame = pd.DataFrame(out)
    frame.attrs["voxel_size_um"] = tuple(float(v) for v in vs)
    frame.attrs["dims"] = dims
    return frame.sort_values("label").reset_index(drop=True)


def _empty_frame(ndim, dims, table):
    cols = ["label", "n_voxels", "volume_um3" if ndim == 3 else "area_um2", "equivalent_diameter_um"]
    cols += [f"centroid_{d}_um" for d in dims]
    cols += [f"bbox_{m}_{d}" for m in ("min", "max") for d in dims]
    cols += [f"bbox_{m}_{d}_um" for m in ("min", "max") for d in dims]
    cols += ["major_axis_um", "minor_axis_um", "aspect_ratio",
             "surface_area_um2" if ndim == 3 else "perimeter_um", "touches_border"]
    if table is not None:
        unit = "um2" if ndim == 3 else "um"
        cols += [f"contact_{n}_{unit}" for n in table.values()]
        cols += [f"coverage_{n}" for n in table.values()]
    return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
