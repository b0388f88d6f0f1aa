"""Correlative synthetic data: a coarse "synchrotron" tomogram and, per coarse voxel, its
true material composition from a fine "FIB-SEM" truth (seed 002, section 3.3).

Seed 002 trains its neural network on one cutout imaged twice: by synchrotron
tomography (coarse voxels, low CBD/pore contrast) and by FIB-SEM (voxels 128 times
finer per axis), whose three-phase segmentation gives for every synchrotron voxel the
volume fractions of active material (AM), carbon-binder domain (CBD) and pores. Here the
fine truth is a :func:`synth.electrode` volume; every coarse voxel is the mean of
``factor**3`` fine voxels:

- composition: the fraction of each phase among those fine voxels (exact partial-volume
  averaging);
- grey value: the composition weighted by per-phase grey values (partial-volume effect),
  then a Gaussian point-spread function and additive Gaussian noise drawn from the global
  voxel index (:mod:`core.random`), so the result does not depend on the chunking.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from ..core.arrays import as_volume, default_chunks
from ..core.errors import InputError
from ..core.random import block_offsets, normal_block
from .electrode import PHASES, electrode

__all__ = ["correlative"]

#: Grey values per phase for the coarse tomogram: AM bright, CBD only slightly brighter
#: than pore (the low CBD/pore contrast seed 002 works against).
CORRELATIVE_CONTRAST = {"pore": 0.10, "cbd": 0.25, "am": 0.80}


def _coarsen_onehot(block, code, factor):
    s = tuple(n // factor for n in block.shape)
    hit = (block == code).reshape(s[0], factor, s[1], factor, s[2], factor)
    return hit.mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def _noise(block, sigma, seed, global_shape, block_info=None):
    off = block_offsets(None, block_info)
    return (block + sigma * normal_block(block.shape, off, global_shape, seed, stream=3)
            ).astype(np.float32)


def correlative(shape, factor=4, voxel_size=0.5, fractions=None, particle_radius_um=(2.0, 0.5),
                contrast=None, blur_um=0.4, noise=0.03, cbd_gradient=0.0, seed=0,
                chunks="auto"):
    """Coarse grey-value tomogram with the true per-voxel composition from a fine truth.

    Parameters
    ----------
    shape : tuple of 3 int
        Shape of the coarse volume (voxels).
    factor : int
        Fine voxels per coarse voxel along each axis (seed 002: 128; 3 to 8 keeps the
        fine truth small). The fine truth has ``shape * factor`` voxels.
    voxel_size : float
        Coarse voxel size in um (fine voxels are ``voxel_size / factor``).
    fractions : dict, optional
        Phase volume fractions of the fine truth, ``{"pore", "cbd", "am"}``, summing to 1
        (default 0.30 / 0.15 / 0.55).
    particle_radius_um : (float, float)
        Mean and standard deviation of the AM particle radii, in um.
    contrast : dict, optional
        Grey value per phase; default AM 0.80, CBD 0.25, pore 0.10.
    blur_um : float
        Standard deviation of the Gaussian point-spread function of the coarse image, um.
    noise : float
        Standard deviation of the additive Gaussian noise (grey-value units).
    cbd_gradient : float
        Relative CBD gradient through the thickness (see :func:`synth.electrode`).
    seed : int
        Seed of the structure and of the noise.
    chunks : "auto" or tuple
        Chunks of the coarse volume; the fine truth uses ``factor`` times these.

    Returns
    -------
    xarray.Dataset
        ``grey`` (float32 coarse tomogram, dims z, y, x), ``composition`` (float32, dims
        phase, z, y, x, the true pore / cbd / am fractions per coarse voxel, summing to 1)
        and ``truth`` (uint8 segmentation, the phase with the largest fraction in each
        coarse voxel, ``attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}``). All lazy and
        independent of ``chunks``; ``attrs["fractions"]`` holds the target fractions of the
        fine truth (its realised fractions, the mean of ``composition``, differ from them
        by the calibration error of :func:`synth.electrode`).

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> ds = synth.correlative((16, 16, 16), factor=3, voxel_size=0.5, seed=0)
    >>> ds["composition"].sizes["phase"]
    3
    """
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise InputError("shape", f"a tuple of 3 positive ints, got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("shape", f"a tuple of 3 positive ints, got {shape!r}")
    if int(factor) != factor or factor < 1:
        raise InputError("factor", f"a positive integer, got {factor!r}")
    factor = int(factor)
    if not np.isscalar(voxel_size) or voxel_size <= 0:
        raise InputError("voxel_size", f"a positive number of um, got {voxel_size!r}")
    contrast = dict(CORRELATIVE_CONTRAST, **(contrast or {}))
    if blur_um < 0 or noise < 0:
        raise InputError("blur_um" if blur_um < 0 else "noise", "a non-negative value")
    if chunks == "auto":
        chunks = default_chunks(shape, np.float32)
    coarse_chunks = da.core.normalize_chunks(chunks, shape=shape)
    fine_chunks = tuple(tuple(c * factor for c in cs) for cs in coarse_chunks)
    fine = electrode(tuple(s * factor for s in shape), voxel_size / factor, fractions=fractions,
                     particle_radius_um=particle_radius_um, seed=seed, chunks=fine_chunks,
                     cbd_gradient=cbd_gradient)
    fp = fine["phases"].data
    if fp.chunks != fine_chunks:
        fp = fp.rechunk(fine_chunks)
    codes = {name: code for code, name in PHASES.items()}
    order = ("pore", "cbd", "am")
    comps = [fp.map_blocks(_coarsen_onehot, codes[n], factor, dtype=np.float32,
                           chunks=coarse_chunks) for n in order]
    comp = da.stack(comps, axis=0)
    grey = sum(c * np.float32(contrast[n]) for c, n in zip(comps, order))
    # A coarse voxel is the block of factor**3 fine ones: its centre lies (factor - 1) / 2
    # fine voxels beyond the first fine centre, so both grids share one physical frame.
    template = as_volume(da.zeros(shape, dtype=np.float32, chunks=coarse_chunks),
                         voxel_size=voxel_size, origin=(factor - 1) / 2 * voxel_size / factor)
    img = template.copy(data=grey)
    if blur_um > 0:
        from ..filters import gaussian  # filters sits beside synth in the same layer

        img = gaussian(img, sigma_um=blur_um)
    data = img.data
    if noise > 0:
        data = data.map_blocks(_noise, float(noise), int(seed), shape, dtype=np.float32)
    truth = da.argmax(comp, axis=0).astype(np.uint8)
    coords = {d: template.coords[d] for d in template.dims}
    ds = xr.Dataset(
        {"grey": (template.dims, data, {"units": "um", "long_name": "grey value (synthetic)",
                                        "contrast": contrast, "blur_um": blur_um,
                                        "noise": noise}),
         "composition": (("phase",) + template.dims, comp,
                         {"long_name": "true volume fraction per coarse voxel"}),
         "truth": (template.dims, truth, {"units": "um", "phases": dict(PHASES),
                                          "long_name": "majority phase of the fine truth"})},
        coords=dict(coords, phase=list(order)))
    ds.attrs = {"factor": factor, "fine_voxel_size_um": voxel_size / factor, "seed": seed,
                "fractions": dict(fine.attrs["parameters"].get("fractions") or {})}
    return ds
