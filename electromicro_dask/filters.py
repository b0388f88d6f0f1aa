"""Lazy neighbourhood filters for images and volumes (2D and 3D).

Each filter runs a whole-array kernel (scipy / scikit-image) on overlapping blocks with
``map_overlap`` and a depth derived from the kernel's reach, with no padding at the
volume's outer faces (``boundary="none"``): a block on the border then sees exactly what
the kernel sees on the whole array, so results equal the whole-array call for any
chunking (DESIGN.md rule 2).

An image read unchanged from the store (:func:`~electromicro_dask.open_store`) is filtered
without ``map_overlap``: each output block reads its own block plus the halo from zarr
(:mod:`electromicro_dask.core.halo`), so tasks are independent and memory stays one padded
block per task however large the volume; the result is the same.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import scipy.ndimage as ndi
from dask_image import ndfilters

from .core.arrays import as_volume, spatial_dims
from .core.arrays import voxel_size as _voxel_size_of
from .core.errors import InputError
from .core.halo import map_halo

__all__ = ["median", "gaussian", "nl_means", "resample"]


def _per_axis(value, ndim, argument):
    vals = (value,) * ndim if np.ndim(value) == 0 else tuple(value)
    if len(vals) != ndim:
        raise InputError(argument, f"one value or {ndim} values, got {value!r}")
    return vals


def _spatial(image):
    image = as_volume(image, argument="image")
    if len(spatial_dims(image)) != image.ndim:
        raise InputError("image", f"an image with spatial dims (z, y, x) only, got {image.dims}; "
                         "select or reduce the other dims first")
    return image


def _wrap(image, data, name, params):
    out = image.copy(data=data)
    out.attrs = dict(image.attrs)
    out.attrs["filter"] = {"name": name, **params}
    return out


def _median_block(block, size):
    return ndi.median_filter(block, size=size, mode="reflect")


def gaussian_depth(sigma, truncate=4.0):
    """Halo (voxels per axis) of a Gaussian filter: scipy's kernel radius."""
    return [int(truncate * float(s) + 0.5) for s in sigma]


def gaussian_block(block, sigma, truncate=4.0, lut=None):
    """The Gaussian filter of one padded block (float32 unless float64), optionally of
    ``lut[block]`` (a look-up table applied first, as synth.tomogram does)."""
    if lut is not None:
        block = lut[block]
    if block.dtype != np.float64:
        block = block.astype(np.float32, copy=False)
    return ndi.gaussian_filter(block, sigma=sigma, mode="reflect", truncate=truncate)


def median(image, size_voxels=3):
    """Median filter (seed 000 removes salt-and-pepper noise of SI images with it).

    Parameters
    ----------
    image : xarray.DataArray
        2D or 3D image (spatial dims only).
    size_voxels : int or tuple of int
        Edge length of the cubic (square) footprint, in voxels, odd (default 3).

    Returns
    -------
    xarray.DataArray
        Lazy, same dtype and grid; equals ``scipy.ndimage.median_filter(image, size)``
        (mode ``"reflect"``) for any chunking.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, filters
    >>> img = as_volume(np.random.default_rng(0).random((32, 32, 32)), voxel_size=1.0)
    >>> filters.median(img, size_voxels=3).shape
    (32, 32, 32)
    """
    image = _spatial(image)
    sizes = _per_axis(size_voxels, image.ndim, "size_voxels")
    if any(int(s) != s or s < 1 or s % 2 == 0 for s in sizes):
        raise InputError("size_voxels", f"odd positive integers, got {size_voxels!r}")
    sizes = tuple(int(s) for s in sizes)
    # Read straight from the store, each block reads its own halo (core.halo): no
    # in-memory halo exchange, so memory stays one block per task.
    data = map_halo(image.data, _median_block, [s // 2 for s in sizes], image.dtype,
                    size=sizes)
    if data is None:
        data = ndfilters.median_filter(image.data, size=sizes, mode="reflect")
    return _wrap(image, data, "median", {"size_voxels": list(sizes)})


def gaussian(image, sigma_um=None, sigma_voxels=None, truncate=4.0):
    """Gaussian filter with its standard deviation in um (or voxels).

    Parameters
    ----------
    image : xarray.DataArray
        2D or 3D image.
    sigma_um : float or tuple, optional
        Standard deviation in micrometres (converted per axis, anisotropic voxels
        allowed).
    sigma_voxels : float or tuple, optional
        Standard deviation in voxels, instead of ``sigma_um``.
    truncate : float
        Kernel radius in standard deviations; the block overlap is
        ``ceil(truncate * sigma)`` voxels.

    Returns
    -------
    xarray.DataArray
        float32 for integer or float32 input (float64 stays float64); equals
        ``scipy.ndimage.gaussian_filter`` (mode ``"reflect"``) for any chunking.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, filters
    >>> img = as_volume(np.zeros((16, 16)), voxel_size=0.5)
    >>> float(filters.gaussian(img, sigma_um=1.0).max())
    0.0
    """
    image = _spatial(image)
    if (sigma_um is None) == (sigma_voxels is None):
        raise InputError("sigma_um", "exactly one of sigma_um or sigma_voxels")
    if sigma_um is not None:
        s = _per_axis(sigma_um, image.ndim, "sigma_um")
        vs = _voxel_size_of(image, image.dims)
        sig = tuple(float(a) / v for a, v in zip(s, vs))
        argname = "sigma_um"
    else:
        sig = tuple(float(a) for a in _per_axis(sigma_voxels, image.ndim, "sigma_voxels"))
        argname = "sigma_voxels"
    if any(not (math.isfinite(v) and v >= 0) for v in sig):
        raise InputError(argname, f"non-negative values, got {sigma_um or sigma_voxels!r}")
    data = image.data
    out_dtype = np.float64 if data.dtype == np.float64 else np.float32
    halo = map_halo(data, gaussian_block, gaussian_depth(sig, truncate), out_dtype,
                    sigma=sig, truncate=truncate)
    if halo is not None:
        data = halo
    else:
        data = data.astype(out_dtype) if data.dtype != out_dtype else data
        data = ndfilters.gaussian_filter(data, sigma=sig, mode="reflect", truncate=truncate)
    return _wrap(image, data, "gaussian", {"sigma_voxels": list(sig), "truncate": truncate})


def _nlm_block(block, patch_size, patch_distance, h, sigma):
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(block, patch_size=patch_size, patch_distance=patch_distance,
                            h=h, sigma=sigma, fast_mode=True,
                            channel_axis=None).astype(np.float32)


def nl_means(image, patch_size_voxels=5, patch_distance_voxels=6, h=None, sigma=None):
    """Non-local means denoising (Buades, Coll and Morel 2005), as seed 000 applies to
    its secondary-ion images after the median filter.

    Runs :func:`skimage.restoration.denoise_nl_means` (fast mode) on blocks with an
    overlap of ``patch_size // 2 + patch_distance`` voxels, the farthest voxel that can
    influence a result.

    Parameters
    ----------
    image : xarray.DataArray
        2D or 3D grey-value image.
    patch_size_voxels : int
        Patch edge length in voxels.
    patch_distance_voxels : int
        Search radius in voxels.
    h : float, optional
        Cut-off distance of patch weights in grey values. Default ``0.8 * sigma``
        (scikit-image's recommendation for fast mode).
    sigma : float, optional
        Noise standard deviation. Default: estimated with
        :func:`skimage.restoration.estimate_sigma` on the central chunk (one small global
        computation, so the estimate is the same for every block and every chunking).

    Returns
    -------
    xarray.DataArray
        float32, lazy, same grid.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, filters
    >>> img = as_volume(np.random.default_rng(0).random((48, 48)), voxel_size=1.0)
    >>> filters.nl_means(img, sigma=0.3).dtype
    dtype('float32')
    """
    image = _spatial(image)
    ps, pd = int(patch_size_voxels), int(patch_distance_voxels)
    if ps < 1 or pd < 1:
        raise InputError("patch_size_voxels", "positive integers for patch size and distance")
    data = image.data.astype(np.float32)
    if sigma is None:
        from skimage.restoration import estimate_sigma

        centre = tuple(slice(max(0, n // 2 - 32), n // 2 + 32) for n in data.shape)
        sigma = float(estimate_sigma(np.asarray(data[centre].compute(), dtype=np.float64)))
    if h is None:
        h = 0.8 * sigma
    depth = ps // 2 + pd
    out = data.map_overlap(_nlm_block, depth=depth, boundary="none", dtype=np.float32,
                           patch_size=ps, patch_distance=pd, h=float(h), sigma=float(sigma))
    return _wrap(image, out, "nl_means", {"patch_size_voxels": ps, "patch_distance_voxels": pd,
                                          "h": float(h), "sigma": float(sigma)})


def _out_grid(coord, step_in, step_out):
    """Output coordinates covering the same extent as the input voxels (centres)."""
    n_in = len(coord)
    lo = float(coord[0]) - step_in / 2.0
    n_out = max(1, int(round(n_in * step_in / step_out)))
    return lo + step_out / 2.0 + step_out * np.arange(n_out)


def _resample_block(sub, starts, axes_out, steps_in, steps_out, origin_in, order, method, codes,
                    ks):
    import itertools

    from scipy import ndimage as ndi

    # Fractional input index of every output position, relative to the fetched sub-array.
    rel = [((ax - o) / s) - st for ax, o, s, st in zip(axes_out, origin_in, steps_in, starts)]

    def nearest(positions):
        idx = [np.clip(np.floor(p + 0.5).astype(np.int64), 0, n - 1)
               for p, n in zip(positions, sub.shape)]
        return sub[np.ix_(*idx)]

    if method in ("majority", "fractions"):
        # ks[a] sample points along axis a inside each output voxel; one pass per offset
        # combination keeps memory at (number of phases) x (output block).
        counts = np.zeros((len(codes),) + tuple(len(r) for r in rel), dtype=np.int32)
        offsets = [((np.arange(k) + 0.5) / k - 0.5) * (so / si)
                   for k, so, si in zip(ks, steps_out, steps_in)]
        for combo in itertools.product(*offsets):
            vals = nearest([r + o for r, o in zip(rel, combo)])
            for i, c in enumerate(codes):
                counts[i] += vals == c
        if method == "fractions":
            return (counts / float(np.prod(ks))).astype(np.float32)
        return np.asarray(codes, dtype=sub.dtype)[np.argmax(counts, axis=0)]
    if order == 0:
        return nearest(rel).astype(sub.dtype)
    grid = np.meshgrid(*rel, indexing="ij")
    return ndi.map_coordinates(sub, grid, order=order, mode="nearest").astype(sub.dtype)


def resample(data, voxel_size, method=None, antialias=True):
    """Resample an image or segmentation to another voxel size, lazily and chunk-exactly.

    The output covers the input's extent (voxel faces, not centres) with voxels of
    ``voxel_size``; e.g. seed 001's 15.2 x 15.2 x 100 nm PFIB-SEM voxels to cubic
    100 nm voxels for its flow simulation. Every output block reads only the input region
    it needs, so the result does not depend on the chunking.

    Parameters
    ----------
    data : xarray.DataArray
        Grey-value image or segmentation (``attrs["phases"]``), 2D or 3D.
    voxel_size : float or tuple
        Target voxel size in um (one value, or one per spatial dim).
    method : str, optional
        Grey values: ``"linear"`` (default) or ``"cubic"`` spline interpolation, or
        ``"nearest"``. Segmentations: ``"nearest"`` (default; keeps phase fractions in
        expectation), ``"majority"`` (most frequent phase within each output voxel,
        by supersampling) or ``"fractions"`` (partial-volume fraction of each phase,
        a float32 DataArray with a leading ``phase`` dim).
    antialias : bool
        For grey values, smooth with a Gaussian of ``sigma = (factor - 1) / 2`` voxels
        along each axis that is downsampled by ``factor`` first (as
        :func:`skimage.transform.resize` does).

    Returns
    -------
    xarray.DataArray
        Lazy, on the new grid, attrs kept.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, filters
    >>> img = as_volume(np.random.default_rng(0).random((10, 40, 40)), voxel_size=(0.1, 0.025, 0.025))
    >>> filters.resample(img, 0.1).shape
    (10, 10, 10)
    """
    import itertools

    import xarray as xr

    data = as_volume(data, argument="data")
    dims = data.dims
    if len(spatial_dims(data)) != data.ndim:
        raise InputError("data", f"an image with spatial dims only, got {dims}")
    try:
        vs_out = _per_axis(voxel_size, data.ndim, "voxel_size")
        vs_out = tuple(float(v) for v in vs_out)
    except (TypeError, ValueError):
        raise InputError("voxel_size", f"numbers in um, got {voxel_size!r}") from None
    if not all(math.isfinite(v) and v > 0 for v in vs_out):
        raise InputError("voxel_size", f"positive voxel sizes in um, got {voxel_size!r}")
    is_seg = "phases" in data.attrs
    allowed = ("nearest", "majority", "fractions") if is_seg else ("linear", "cubic", "nearest")
    method = method or allowed[0]
    if method not in allowed:
        raise InputError("method", f"one of {allowed} for a {'segmentation' if is_seg else 'grey image'}, "
                         f"got {method!r}")
    vs_in = _voxel_size_of(data)
    factors = [o / i for o, i in zip(vs_out, vs_in)]
    src = data
    if not is_seg and antialias and any(f > 1 for f in factors):
        src = gaussian(data, sigma_voxels=[max(0.0, (f - 1) / 2.0) for f in factors])
        if data.dtype != src.dtype:
            src = src.astype(data.dtype) if data.dtype.kind == "f" else src
    order = {"nearest": 0, "linear": 1, "cubic": 3}.get(method, 0)
    codes = sorted(data.attrs["phases"]) if is_seg else None
    if method in ("majority", "fractions"):
        ks = tuple(min(8, max(1, int(math.ceil(f - 1e-9)))) for f in factors)
    else:
        ks = (1,) * data.ndim
    k = max(ks)
    axes_out = [_out_grid(data[d].values, i, o) for d, i, o in zip(dims, vs_in, vs_out)]
    origin = [float(data[d].values[0]) for d in dims]
    out_dtype = np.float32 if method == "fractions" else src.dtype
    out_shape = tuple(len(a) for a in axes_out)
    from .core.arrays import default_chunks

    out_chunks = default_chunks(out_shape, out_dtype)
    margin = 2 if order == 3 else 1
    blocks = np.empty(tuple(len(c) for c in out_chunks), dtype=object)
    bounds = [np.cumsum((0,) + c) for c in out_chunks]
    for idx in itertools.product(*[range(len(c)) for c in out_chunks]):
        sl_in, starts, axs = [], [], []
        for ax, i in enumerate(idx):
            a = axes_out[ax][bounds[ax][i]:bounds[ax][i + 1]]
            half = (vs_out[ax] / 2.0) if k > 1 else 0.0
            lo = (a[0] - half - origin[ax]) / vs_in[ax]
            hi = (a[-1] + half - origin[ax]) / vs_in[ax]
            s0 = max(0, int(math.floor(lo)) - margin)
            s1 = min(data.shape[ax], int(math.ceil(hi)) + margin + 1)
            sl_in.append(slice(s0, s1))
            starts.append(s0)
            axs.append(a)
        sub = src.data[tuple(sl_in)]
        sub = sub.rechunk(sub.shape)
        shape = tuple(len(a) for a in axs)
        if method == "fractions":
            shape = (len(codes),) + shape
        blocks[idx] = sub.map_blocks(_resample_block, starts, axs, vs_in, vs_out, origin, order,
                                     method, codes, ks, chunks=shape, dtype=out_dtype,
                                     meta=np.empty((0,) * len(shape), out_dtype))
    out = _block_with_phase(blocks) if method == "fractions" else da.block(blocks.tolist())
    coords = {d: xr.Variable(d, a, attrs={"units": "um"}) for d, a in zip(dims, axes_out)}
    out_dims = dims if method != "fractions" else ("phase",) + dims
    if method == "fractions":
        coords["phase"] = [data.attrs["phases"][c] for c in codes]
    res = xr.DataArray(out, dims=out_dims, coords=coords, attrs=dict(data.attrs))
    if method == "fractions":
        res.attrs.pop("phases", None)
    res.attrs["resampled"] = {"from_voxel_size": list(vs_in), "method": method,
                              "antialias": bool(antialias and not is_seg)}
    return res


def _block_with_phase(blocks):
    """Assemble blocks that carry a leading phase axis (not chunked) into one array."""
    nd = blocks.ndim

    def build(b, depth):
        if depth == nd:
            return b
        return da.concatenate([build(x, depth + 1) for x in b], axis=depth + 1)

    return build(blocks.tolist(), 0)
