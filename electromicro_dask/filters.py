"""Lazy neighbourhood filters for images and volumes (2D and 3D).

Each filter runs a whole-array kernel (scipy / scikit-image) on overlapping blocks with
``map_overlap`` and a depth derived from the kernel's reach, with no padding at the
volume's outer faces (``boundary="none"``): a block on the border then sees exactly what
the kernel sees on the whole array, so results equal the whole-array call for any
chunking (DESIGN.md rule 2).
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
from dask_image import ndfilters

from .core.arrays import as_volume, spatial_dims, voxel_size
from .core.errors import InputError

__all__ = ["median", "gaussian", "nl_means"]


def _per_axis(value, ndim, argument):
    vals = (value,) * ndim if np.ndim(value) == 0 else tuple(value)
    if len(vals) != ndim:
        raise InputError(argument, f"one value or {ndim} values, got {value!r}")
    return vals


def _wrap(image, data, name, params):
    out = image.copy(data=data)
    out.attrs = dict(image.attrs)
    out.attrs["filter"] = {"name": name, **params}
    return out


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
    image = as_volume(image, argument="image")
    sizes = _per_axis(size_voxels, image.ndim, "size_voxels")
    if any(int(s) != s or s < 1 or s % 2 == 0 for s in sizes):
        raise InputError("size_voxels", f"odd positive integers, got {size_voxels!r}")
    sizes = tuple(int(s) for s in sizes)
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
    image = as_volume(image, argument="image")
    if (sigma_um is None) == (sigma_voxels is None):
        raise InputError("sigma_um", "exactly one of sigma_um or sigma_voxels")
    if sigma_um is not None:
        s = _per_axis(sigma_um, image.ndim, "sigma_um")
        vs = voxel_size(image, image.dims)
        sig = tuple(float(a) / v for a, v in zip(s, vs))
        argname = "sigma_um"
    else:
        sig = tuple(float(a) for a in _per_axis(sigma_voxels, image.ndim, "sigma_voxels"))
        argname = "sigma_voxels"
    if any(not (math.isfinite(v) and v >= 0) for v in sig):
        raise InputError(argname, f"non-negative values, got {sigma_um or sigma_voxels!r}")
    data = image.data
    if data.dtype != np.float64:
        data = data.astype(np.float32)
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
    image = as_volume(image, argument="image")
    if image.ndim not in (2, 3):
        raise InputError("image", f"a 2D or 3D image, got dims {image.dims}")
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
