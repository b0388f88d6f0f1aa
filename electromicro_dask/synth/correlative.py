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
from ..core.geometry import rotation_zyx
from ..core.random import block_offsets, normal_block
from .electrode import PHASES, electrode

__all__ = ["correlative", "correlative_fibsem", "correlative_surface", "FIBSEM_CONTRAST"]

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


#: FIB-SEM grey values per phase: unlike the tomogram, CBD and pores differ clearly.
FIBSEM_CONTRAST = {"pore": 0.10, "cbd": 0.45, "am": 0.85}


def _centre(shape, factor, voxel_size):
    """The tomogram's centre (z, y, x) in um; its first voxel centre lies (factor - 1) / 2
    fine voxels from 0 (see :func:`correlative`)."""
    return np.array([(factor - 1) / 2 * voxel_size / factor + (k - 1) * voxel_size / 2
                     for k in shape])


def correlative_fibsem(shape, factor=4, voxel_size=0.5, fractions=None,
                       particle_radius_um=(2.0, 0.5), cbd_gradient=0.0, seed=0,
                       edge_voxels=64, rotation_deg=(3.0, -2.0, 1.0),
                       offset_um=(0.4, -0.3, 0.2), scale=1.02, contrast=None, noise=0.03):
    """The fine truth behind :func:`correlative` imaged by a FIB-SEM in its own frame.

    Seed 002 (section 2.2) images a small region of the same electrode by FIB-SEM and
    registers it into the synchrotron tomogram; the two frames differ by a rotation, an
    offset and a scale known only to a few percent. Here the fine truth of
    ``correlative(shape, factor, voxel_size, ..., seed)`` is sampled (nearest voxel) on a
    cube of ``edge_voxels`` FIB-SEM voxels around the tomogram's centre, seen through a
    known similarity transform, and rendered with FIB-SEM contrast.

    Parameters
    ----------
    shape, factor, voxel_size, fractions, particle_radius_um, cbd_gradient, seed
        As for :func:`correlative` (the same values give the same electrode).
    edge_voxels : int
        FIB-SEM voxels per edge of the imaged cube (true voxel size ``voxel_size / factor``).
    rotation_deg : 3 floats
        Rotation of the FIB-SEM frame about z, then y, then x (degrees).
    offset_um : 3 floats
        Shift of the imaged cube's centre from the tomogram's centre, (z, y, x) um.
    scale : float
        Stated FIB-SEM voxel size over the true one (seed 002 knows its ratio of 64 to
        about 2 %).
    contrast : dict, optional
        Grey value per phase (default :data:`FIBSEM_CONTRAST`).
    noise : float
        Standard deviation of additive Gaussian noise.

    Returns
    -------
    xarray.Dataset
        ``grey`` (float32) and ``truth`` (uint8, ``{0: pore, 1: cbd, 2: am}``), dims
        (z, y, x) with the FIB-SEM's stated coordinates in um (voxel size
        ``scale * voxel_size / factor``); ``attrs`` hold the true transform: a point ``q``
        of this frame is the tomogram point ``R (q / scale - c') + c + t`` with
        ``c = attrs["center_um"]``, ``R = attrs["rotation"]``, ``t = offset_um`` and
        ``c' = c``, so ``attrs["fixed_to_moving"]`` (4 x 4, tomogram -> FIB-SEM frame) is
        what :func:`electromicro_dask.register.register` with ``scale=True`` should find.
        The fine truth is computed only over the imaged region.

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> fib = synth.correlative_fibsem((16, 16, 16), factor=4, edge_voxels=24, seed=0)
    >>> fib["grey"].shape
    (24, 24, 24)
    """
    from scipy import ndimage

    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise InputError("shape", f"a tuple of 3 positive ints, got {shape!r}") from None
    if int(edge_voxels) != edge_voxels or edge_voxels < 4:
        raise InputError("edge_voxels", f"an integer of at least 4, got {edge_voxels!r}")
    if not float(scale) > 0:
        raise InputError("scale", f"a positive ratio, got {scale!r}")
    if len(tuple(rotation_deg)) != 3 or len(tuple(offset_um)) != 3:
        raise InputError("rotation_deg", "three angles (degrees) and three offsets (um)")
    contrast = dict(FIBSEM_CONTRAST, **(contrast or {}))
    n, s, h = int(edge_voxels), float(scale), voxel_size / factor
    c = _centre(shape, factor, voxel_size)
    R = rotation_zyx(*np.radians(np.asarray(rotation_deg, dtype=float)))
    t = np.asarray(offset_um, dtype=float)
    # stated coordinates: the cube's centre q0 = s c maps to c + t
    q_origin = s * (c - h * (n - 1) / 2)
    idx = np.arange(n)
    q = q_origin + s * h * np.stack(np.meshgrid(idx, idx, idx, indexing="ij"), -1)
    p = (q / s - c) @ R.T + c + t
    extent = np.array(shape) * voxel_size
    if p.min() < 0 or np.any(p.reshape(-1, 3).max(0) > extent):
        raise InputError("edge_voxels", f"a FIB-SEM cube inside the {extent.tolist()} um "
                         f"tomogram; {n} voxels of {h:g} um with offset "
                         f"{[float(v) for v in t]} um reach outside it")
    lo = np.floor((p.reshape(-1, 3).min(0)) / h).astype(int) - 1
    hi = np.ceil((p.reshape(-1, 3).max(0)) / h).astype(int) + 2
    fine = electrode(tuple(k * factor for k in shape), h, fractions=fractions,
                     particle_radius_um=particle_radius_um, seed=seed,
                     cbd_gradient=cbd_gradient)["phases"]
    box = fine.isel(z=slice(lo[0], hi[0]), y=slice(lo[1], hi[1]), x=slice(lo[2], hi[2]))
    first = np.array([float(box[d].values[0]) for d in ("z", "y", "x")])
    lab = ndimage.map_coordinates(np.asarray(box.values), np.moveaxis((p - first) / h, -1, 0),
                                  order=0, mode="nearest").astype(np.uint8)
    codes = {name: code for code, name in PHASES.items()}
    lut = np.zeros(max(PHASES) + 1, np.float32)
    for name, v in contrast.items():
        lut[codes[name]] = v
    grey = lut[lab] + np.random.default_rng(seed).normal(0, noise, lab.shape).astype(np.float32)
    coords = dict(voxel_size=s * h, origin=tuple(q_origin))
    truth = as_volume(lab, **coords)
    truth.attrs.update(phases=dict(PHASES), long_name="FIB-SEM truth")
    ds = xr.Dataset({"grey": as_volume(grey.astype(np.float32), **coords), "truth": truth})
    ds["grey"].attrs.update(long_name="FIB-SEM grey value (synthetic)", contrast=contrast)
    # fixed (tomogram) -> moving (FIB frame): q = s R^T (p - c - t) + s c
    M_inv = np.eye(4)
    M_inv[:3, :3] = s * R.T
    M_inv[:3, 3] = s * c - s * R.T @ (c + t)
    ds.attrs = {"rotation": R.tolist(), "center_um": c.tolist(), "offset_um": t.tolist(),
                "scale": s, "fixed_to_moving": M_inv.tolist(), "seed": seed,
                "true_voxel_size_um": h}
    return ds


def correlative_surface(shape, factor=4, voxel_size=0.5, fractions=None,
                        particle_radius_um=(2.0, 0.5), cbd_gradient=0.0, seed=0,
                        offset_um=(0.4, -0.3, 0.2), extent_um=(13.0, 30.0), rotation_deg=3.0,
                        contrast=None, noise=0.03):
    """An SEM image of one plane of the fine truth behind :func:`correlative`, in its own frame.

    Seed 002 (section 2.2) finds the FIB-SEM region in the synchrotron tomogram with an SEM
    surface scan around the milling site, located in a tomogram slice by SIFT features
    (:func:`electromicro_dask.register.locate`). Here the fine truth's plane through the
    FIB-SEM site (the tomogram's centre shifted by ``offset_um``) is sampled (nearest fine
    voxel) on a rectangle of ``extent_um`` centred on the tomogram's in-plane centre and
    turned by ``rotation_deg`` about z, at the fine voxel size, with FIB-SEM contrast and
    noise.

    Parameters
    ----------
    shape, factor, voxel_size, fractions, particle_radius_um, cbd_gradient, seed
        As for :func:`correlative` (the same values give the same electrode).
    offset_um : 3 floats
        Shift (z, y, x) of the FIB-SEM site from the tomogram's centre in um (as for
        :func:`correlative_fibsem`: the same value puts the scan over its cube).
    extent_um : (float, float)
        Size of the scan (y, x) in um. SIFT needs a few tens of particles in view: on
        0.5 um tomogram voxels about 13 x 30 um.
    rotation_deg : float
        Rotation of the scan's frame about z (degrees).
    contrast : dict, optional
        Grey value per phase (default :data:`FIBSEM_CONTRAST`).
    noise : float
        Standard deviation of additive Gaussian noise.

    Returns
    -------
    xarray.DataArray
        float32 image, dims (y, x), coordinates from 0 in um (a plain SEM image);
        ``attrs``: ``z_um`` (the plane), ``site_in_scan_um`` (the FIB-SEM site in the
        scan's coordinates, what a user reads off the image), and the truth:
        ``site_um``, ``center_um`` (tomogram y, x of the scan's centre), ``angle_deg``.

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> scan = synth.correlative_surface((16, 32, 64), extent_um=(12.0, 24.0), seed=0)
    >>> scan.dims, scan.attrs["z_um"]
    (('y', 'x'), 4.375)
    """
    from scipy import ndimage

    try:
        shape = tuple(int(s) for s in shape)
        ey, ex = (float(e) for e in extent_um)
    except (TypeError, ValueError):
        raise InputError("extent_um", f"two sizes (y, x) in um, got {extent_um!r}") from None
    h = voxel_size / factor
    c = _centre(shape, factor, voxel_size)
    site = c + np.asarray(offset_um, dtype=float)
    a = np.radians(float(rotation_deg))
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    ny, nx = int(round(ey / h)), int(round(ex / h))
    q = np.stack(np.meshgrid(h * np.arange(ny), h * np.arange(nx), indexing="ij"), -1)
    q_c = h * (np.array([ny, nx]) - 1) / 2
    p = (q - q_c) @ R.T + c[1:]
    extent = np.array(shape) * voxel_size
    if p.min() < 0 or np.any(p.reshape(-1, 2).max(0) > extent[1:]):
        raise InputError("extent_um", f"a scan inside the tomogram's {extent[1:].tolist()} um "
                         f"plane (turned by {rotation_deg} deg), got {[ey, ex]}")
    if not 0 <= site[0] <= extent[0]:
        raise InputError("offset_um", f"a site inside the tomogram's {extent[0]} um depth, "
                         f"got {site[0]}")
    fine = electrode(tuple(k * factor for k in shape), h, fractions=fractions,
                     particle_radius_um=particle_radius_um, seed=seed,
                     cbd_gradient=cbd_gradient)["phases"]
    first = np.array([float(fine[d].values[0]) for d in ("z", "y", "x")])
    zi = int(np.clip(round((site[0] - first[0]) / h), 0, shape[0] * factor - 1))
    plane = np.asarray(fine.isel(z=zi).values)
    lab = ndimage.map_coordinates(plane, np.moveaxis((p - first[1:]) / h, -1, 0), order=0,
                                  mode="nearest").astype(np.uint8)
    contrast = dict(FIBSEM_CONTRAST, **(contrast or {}))
    lut = np.zeros(max(PHASES) + 1, np.float32)
    for code, name in PHASES.items():
        lut[code] = contrast[name]
    rng = np.random.default_rng([seed, 7])
    img = lut[lab] + rng.normal(0, noise, lab.shape).astype(np.float32)
    out = xr.DataArray(img.astype(np.float32), dims=("y", "x"),
                       coords={"y": h * np.arange(ny), "x": h * np.arange(nx)},
                       attrs={"units": "um", "long_name": "SEM surface scan (synthetic)"})
    for d in ("y", "x"):
        out[d].attrs["units"] = "um"
    # tomogram (y, x) -> scan coordinates: q = R^T (p - c) + q_c
    site_in_scan = R.T @ (site[1:] - c[1:]) + q_c
    out.attrs.update(z_um=float(first[0] + zi * h), site_in_scan_um=site_in_scan.tolist(),
                     site_um=site.tolist(), center_um=c[1:].tolist(),
                     angle_deg=float(rotation_deg), seed=seed)
    return out
