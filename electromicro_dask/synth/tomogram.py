"""Grey-value rendering of a segmentation, like an X-ray tomogram, with known truth."""

from __future__ import annotations

import numpy as np

from ..core.arrays import as_segmentation, voxel_size
from ..core.errors import InputError
from ..core.halo import map_halo
from ..core.random import block_offsets, normal_block

__all__ = ["tomogram", "DEFAULT_CONTRAST"]

#: Mean grey values per phase: bright AM, CBD barely above pore (the low CBD/pore
#: contrast of synchrotron tomograms of cathodes, seed 002 section 3).
DEFAULT_CONTRAST = {"pore": 0.10, "cbd": 0.30, "am": 0.80, "crack": 0.12, "graphite": 0.35,
                    "silicon": 0.55, "sei": 0.25, "cei": 0.25, "separator": 0.2}


def _noise(block, sigma, seed, global_shape, block_info=None):
    off = block_offsets(None, block_info)
    return (block + sigma * normal_block(block.shape, off, global_shape, seed)).astype(np.float32)


def tomogram(phases, contrast=None, blur_um=0.5, noise=0.05, seed=0):
    """Render a grey-value image of a segmentation: contrast, Gaussian blur, noise.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``attrs["phases"]``.
    contrast : dict, optional
        Mean grey value per phase name (default :data:`DEFAULT_CONTRAST`).
    blur_um : float
        Standard deviation of the Gaussian point-spread function, in um.
    noise : float
        Standard deviation of additive Gaussian noise (grey-value units).
    seed : int
        Noise seed; the noise is a function of the global voxel index, so the image is
        identical for any chunking.

    Returns
    -------
    xarray.DataArray
        float32 image on the same grid, lazy.

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> ds = synth.electrode((32, 32, 32), voxel_size=0.5, seed=0)
    >>> img = synth.tomogram(ds["phases"], noise=0.02)
    >>> img.dtype
    dtype('float32')
    """
    # filters sits beside synth in the same layer
    from ..filters import gaussian, gaussian_block, gaussian_depth

    seg = as_segmentation(phases)
    table = seg.attrs["phases"]
    contrast = dict(DEFAULT_CONTRAST, **(contrast or {}))
    missing = [n for n in table.values() if n not in contrast]
    if missing:
        raise InputError("contrast", f"a grey value for every phase, missing {missing}")
    if blur_um < 0 or noise < 0:
        raise InputError("blur_um" if blur_um < 0 else "noise", "a non-negative value")
    lut = np.zeros(max(table) + 1, dtype=np.float32)
    for code, name in table.items():
        lut[code] = contrast[name]
    sigma = tuple(blur_um / v for v in voxel_size(seg))
    # A segmentation read from the store: contrast and blur in one task per block that
    # reads its own halo from zarr (bounded memory, see core.halo).
    blurred = None
    if blur_um > 0:
        blurred = map_halo(seg.data, gaussian_block, gaussian_depth(sigma), np.float32,
                           sigma=sigma, truncate=4.0, lut=lut)
    if blurred is not None:
        img = seg.copy(data=blurred)
        img.attrs = {"units": "um", "long_name": "grey value (synthetic)"}
    else:
        img = seg.copy(data=seg.data.map_blocks(lambda b: lut[b], dtype=np.float32))
        img.attrs = {"units": "um", "long_name": "grey value (synthetic)"}
        if blur_um > 0:
            img = gaussian(img, sigma_voxels=sigma)
    if noise > 0:
        data = img.data.map_blocks(_noise, noise, int(seed), img.shape, dtype=np.float32)
        img = img.copy(data=data)
    img.name = "tomogram"
    img.attrs.update({"units": "um", "long_name": "grey value (synthetic)",
                      "contrast": {n: contrast[n] for n in table.values()},
                      "blur_um": blur_um, "noise": noise, "seed": seed})
    return img
