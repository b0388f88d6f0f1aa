"""Synthetic PFIB-SEM data with known truth: cracked secondary particles and a serial-section
renderer with the pore-back artefact (seed 001, PFIB-SEM experimental section).

Structure (:func:`pfib_electrode`): :func:`electrode` gives particles, CBD and pores. Each
secondary particle is made of primary grains: a Voronoi tessellation of a jittered lattice
of grain seeds (spacing ``grain_size_um``, jitter from the counter-based generator of
:mod:`electromicro_dask.core.random`, so every voxel is a pure function of its global
position). An intergranular crack is a slab of width ``crack_width_um`` around the Voronoi
face between two grains, at least ``crack_margin_um`` inside the particles (so a crack
is a void enclosed by its secondary particle), kept when a seeded hash of the grain pair says the face is open
(probability ``open_share``) and the voxel lies in a particle. The open share is
calibrated on a fixed random sample of voxel centres so the crack volume per particle volume
matches ``crack_fraction * (1 + cycling)`` (seed 001 reports +9 % and +24 % after cycling
to 4.4 V and 4.7 V: ``cycling=0.09`` and ``0.24``).

Rendering (:func:`pfib_stack`): serial sections along the milling axis z (voxels usually
anisotropic, e.g. 15 x 15 x 100 nm). Solid voxels get their phase grey value times a
per-voxel material texture; a void voxel (pore or crack) shows the grey value of the first
solid voxel behind it along +z (the pore back, as seen through the open pore), scaled by
``pore_back_gain`` and attenuated by ``pore_back_attenuation ** (d - 1)`` with the depth
``d`` in slices, up to ``pore_back_depth_voxels``; beyond that it shows the pore grey
value. This needs a look-ahead along z only: ``map_overlap`` with depth along z. Curtaining
stripes (constant along y and z, varying along x) and acquisition noise are added.
"""

from __future__ import annotations

import math

from dask.array.overlap import ensure_minimum_chunksize
import numpy as np
import xarray as xr
from scipy import ndimage

from ..core.arrays import as_segmentation, voxel_size
from ..core.errors import InputError
from ..core.progress import compute
from ..core.random import block_offsets, normal_block, uniform_block
from .electrode import electrode

__all__ = ["pfib_electrode", "pfib_stack", "detach_cbd", "PFIB_PHASES", "PFIB_CONTRAST"]

#: Phase codes of :func:`pfib_electrode`.
PFIB_PHASES = {0: "pore", 1: "cbd", 2: "am", 3: "crack"}
#: Mean grey values of the SEM section image per phase (NMC bright, CBD mid, voids dark).
PFIB_CONTRAST = {"pore": 0.10, "crack": 0.10, "cbd": 0.45, "am": 0.80}

_SAMPLE = 100_000


def _mix(x):
    # SplitMix64 finaliser (Steele, Lea and Flood 2014), as in core.random.
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class _Grains:
    """Jittered-lattice Voronoi grains, evaluated at arbitrary points (um)."""

    def __init__(self, extent_um, grain_um, seed):
        self.g = float(grain_um)
        self.seed = int(seed)
        # One spare cell on each side, so every point's 27 neighbour cells exist.
        self.ncell = tuple(int(math.ceil(e / self.g)) + 3 for e in extent_um)
        self.jitter = np.stack([uniform_block(self.ncell, (0, 0, 0), self.ncell, seed, 100 + a)
                                for a in range(3)], axis=-1)

    def seeds(self, cell):
        """Seed position (um) of integer cells (..., 3) in lattice coordinates from -1."""
        j = self.jitter[cell[..., 0] + 1, cell[..., 1] + 1, cell[..., 2] + 1]
        return (cell + j) * self.g

    def boundary_distance(self, pts):
        """Distance to the nearest Voronoi face and the ids of the two grains sharing it."""
        base = np.floor(pts / self.g).astype(np.int64)
        offs = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
        cells = base[:, None, :] + offs[None, :, :]
        s = self.seeds(cells)
        d2 = ((pts[:, None, :] - s) ** 2).sum(-1)
        order = np.argsort(d2, axis=1)[:, :2]
        r = np.arange(len(pts))
        i1, i2 = order[:, 0], order[:, 1]
        sep = np.sqrt(((s[r, i1] - s[r, i2]) ** 2).sum(-1))
        # Distance from p to the bisector plane of seeds s1, s2: (|p-s2|^2 - |p-s1|^2) / 2|s1-s2|.
        dist = (d2[r, i2] - d2[r, i1]) / (2.0 * np.maximum(sep, 1e-12))
        nz, ny, nx = self.ncell
        c1, c2 = cells[r, i1] + 1, cells[r, i2] + 1
        id1 = (c1[:, 0] * ny + c1[:, 1]) * nx + c1[:, 2]
        id2 = (c2[:, 0] * ny + c2[:, 1]) * nx + c2[:, 2]
        return dist, np.minimum(id1, id2), np.maximum(id1, id2)

    def open_hash(self, a, b):
        with np.errstate(over="ignore"):
            key = _mix(np.uint64(self.seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(7))
            h = _mix(_mix(a.astype(np.uint64) ^ key) + b.astype(np.uint64))
        return (h >> np.uint64(11)).astype(np.float64) / 9007199254740992.0


def _ellipsoid(radii):
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radii)]
    return sum((g / r) ** 2 if r > 0 else (g != 0) * 2.0 for g, r in zip(grids, radii)) <= 1.0


def _inner(phases, foot):
    # Solid voxels at least the margin away from pore and CBD (erosion of the particles).
    solid = (phases == 2).view(np.uint8)
    return ndimage.grey_erosion(solid, footprint=foot, mode="nearest").astype(bool)


def _crack_block(phases, grains, spacing, width, open_share, foot, src_chunks, pad,
                 block_info=None):
    loc = block_info[None]["chunk-location"]
    off = [int(sum(c[:i])) - (p if i > 0 else 0) for c, i, p in zip(src_chunks, loc, pad)]
    out = phases.copy()
    inner = _inner(phases, foot)
    if not inner.any() or width <= 0:
        return out
    idx = np.nonzero(inner)
    pts = np.stack([(i + o) * s for i, o, s in zip(idx, off, spacing)], -1)
    dist, a, b = grains.boundary_distance(pts)
    crack = (dist < width / 2.0) & (grains.open_hash(a, b) < open_share)
    out[tuple(i[crack] for i in idx)] = 3
    return out


def pfib_electrode(shape, voxel_size, fractions=None, particle_radius_um=(4.0, 1.0),
                   crack_fraction=0.04, cycling=0.0, grain_size_um=None, crack_width_um=None,
                   crack_margin_um=None, seed=0, chunks="auto", **electrode_kwargs):
    """Synthetic electrode with cracked secondary particles: am, crack, cbd, pore.

    Parameters
    ----------
    shape : tuple of int
        ``(nz, ny, nx)`` voxels; z is the milling axis of :func:`pfib_stack`.
    voxel_size : float or tuple
        Voxel size in um (anisotropic allowed, e.g. ``(0.1, 0.05, 0.05)``).
    fractions : dict, optional
        Target fractions of :func:`electrode` (``am`` includes the cracks).
    particle_radius_um : (float, float)
        Mean and standard deviation of the secondary-particle radius, in um.
    crack_fraction : float
        Crack volume per particle volume (cracks included) of the pristine state.
    cycling : float
        Relative crack growth: the target is ``crack_fraction * (1 + cycling)``.
    grain_size_um : float, optional
        Spacing of the primary-grain lattice, in um (default half the mean radius).
    crack_width_um : float, optional
        Crack width in um (default twice the largest voxel size, so cracks are
        resolved on the voxel grid); the share of cracked grain faces is calibrated.
    crack_margin_um : float, optional
        Cracks stay at least this far (um) inside the particles (default: the crack
        width), so every crack is a void enclosed by its secondary particle.
    seed : int
        Random seed; identical result for any chunking.
    chunks : "auto" or tuple
        Output chunks.
    **electrode_kwargs
        Passed to :func:`electrode` (``overlap``, ``cbd_film``, ...).

    Returns
    -------
    xarray.Dataset
        ``phases`` (uint8, :data:`PFIB_PHASES`) and ``particles`` (uint32, ids of the
        secondary particles, cracks included), lazy. ``attrs["open_share"]`` is the
        calibrated share of cracked grain faces.

    Notes
    -----
    The open share is calibrated on 100 000 random voxel centres (independent of the
    chunking); reading the particle interior at those points evaluates the blocks that
    hold them (for large volumes, one pass over the electrode, block by block). The grain
    seed table (3 floats per grain) travels with every task: keep ``grain_size_um``
    large enough that the volume holds at most a few million grains.

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> ds = synth.pfib_electrode((24, 48, 48), voxel_size=(0.1, 0.05, 0.05),
    ...                           particle_radius_um=(0.6, 0.1), seed=1)
    >>> ds["phases"].attrs["phases"][3]
    'crack'
    """
    target = float(crack_fraction) * (1.0 + float(cycling))
    if not 0.0 <= target < 0.5:
        raise InputError("crack_fraction", f"crack_fraction * (1 + cycling) in [0, 0.5), got {target}")
    if len(tuple(shape)) != 3:
        raise InputError("shape", f"a 3D shape (nz, ny, nx), got {shape!r}")
    ds = electrode(shape, voxel_size, fractions=fractions, particle_radius_um=particle_radius_um,
                   seed=seed, chunks=chunks, **electrode_kwargs)
    spacing = tuple(float(v) for v in _spacing(ds["phases"]))
    grain = float(grain_size_um) if grain_size_um else float(particle_radius_um[0]) / 2.0
    if grain <= 0:
        raise InputError("grain_size_um", f"a positive length, got {grain_size_um!r}")
    extent = tuple(n * s for n, s in zip(ds["phases"].shape, spacing))
    grains = _Grains(extent, grain, seed + 7919)
    width = float(crack_width_um) if crack_width_um is not None else 2.0 * max(spacing)
    if width <= 0:
        raise InputError("crack_width_um", f"a positive length, got {crack_width_um!r}")
    margin = width if crack_margin_um is None else float(crack_margin_um)
    if margin < 0:
        raise InputError("crack_margin_um", f"a non-negative length, got {crack_margin_um!r}")
    radii = [int(np.floor(margin / v + 1e-9)) for v in spacing]
    foot = _ellipsoid(radii)
    src = ds["phases"].data
    need = [max(r, 1) for r in radii]
    src = src.rechunk(tuple(ensure_minimum_chunksize(min(n, s), c)
                            for n, s, c in zip(need, src.shape, src.chunks)))
    depth = {a: min(radii[a], src.shape[a]) for a in range(3)}
    pad = [depth[a] if src.numblocks[a] > 1 else 0 for a in range(3)]
    # Particle interior (at least the margin from pore and CBD), sampled for calibration.
    inner = src.map_overlap(_inner, foot=foot, depth=depth, boundary="none", trim=True,
                            dtype=bool)
    open_share = _calibrate_open_share(grains, (inner, src == 2), spacing, target, width, seed)
    data = src.map_overlap(_crack_block, grains=grains, spacing=spacing, width=width,
                           open_share=open_share, foot=foot, src_chunks=src.chunks, pad=pad,
                           depth=depth, boundary="none", trim=True, dtype=np.uint8)
    phases = ds["phases"].copy(data=data)
    phases.attrs = dict(ds["phases"].attrs, phases=dict(PFIB_PHASES))
    phases.name = "phases"
    out = xr.Dataset({"phases": phases, "particles": ds["particles"]}, attrs=dict(ds.attrs))
    out.attrs.update({"crack_fraction_target": target, "cycling": float(cycling),
                      "grain_size_um": grain, "open_share": open_share,
                      "crack_width_um": width, "crack_margin_um": margin})
    return out


def _spacing(arr):
    return voxel_size(arr)


def _calibrate_open_share(grains, masks, spacing, target, width, seed):
    """Share of open grain faces giving ``target`` crack volume per particle volume.

    Evaluated on a fixed random sample of voxel centres (independent of the chunking):
    the open share is the quantile of the face hashes of the sampled particle-interior
    voxels near a face, at the target count (target x sampled particle voxels).
    """
    if target == 0:
        return 0.0
    inner, am = masks
    shape = inner.shape
    rng = np.random.default_rng(int(seed) + 104729)
    n = min(_SAMPLE, int(np.prod(shape)))
    idx = np.stack([rng.integers(0, s, n) for s in shape], -1)
    inside, is_am = compute(inner.vindex[tuple(idx.T)], am.vindex[tuple(idx.T)],
                            label="crack calibration")
    n_am = int(is_am.sum())
    pts = idx[inside] * np.asarray(spacing)
    dist, a, b = grains.boundary_distance(pts)
    h = np.sort(grains.open_hash(a, b)[dist < width / 2.0])
    want = int(round(target * n_am))
    if n_am == 0 or want >= len(h):
        raise InputError("crack_width_um", f"wider cracks, smaller grains or a smaller margin: "
                         f"faces within {width} um of the particle interior cover only "
                         f"{len(h) / max(n_am, 1):.3f} of the particles, below the target "
                         f"crack fraction {target}")
    if want == 0:
        return 0.0
    return float(0.5 * (h[want - 1] + h[want]))


def _texture(shape, off, global_shape, seed, cell):
    # Material texture: constant on cell x cell patches in-plane (grain-like contrast),
    # independent from slice to slice (a slice is thicker than the texture's correlation).
    lo = [off[0], off[1] // cell, off[2] // cell]
    hi = [off[0] + shape[0], (off[1] + shape[1] - 1) // cell + 1, (off[2] + shape[2] - 1) // cell + 1]
    gshape = (global_shape[0], -(-global_shape[1] // cell), -(-global_shape[2] // cell))
    coarse = normal_block(tuple(h - l for h, l in zip(hi, lo)), tuple(lo), gshape, seed, stream=1)
    iy = np.arange(off[1], off[1] + shape[1]) // cell - lo[1]
    ix = np.arange(off[2], off[2] + shape[2]) // cell - lo[2]
    return coarse[:, iy][:, :, ix]


def _render_block(phases, texture_sd, lut, pore_value, gain, atten, depth, noise, curtain,
                  seed, global_shape, chunks, pad, cell, block_info=None):
    # Block padded along z only (map_overlap, boundary "none": no pad before the first
    # block); global offsets from the block index and the unpadded chunks.
    loc = block_info[None]["chunk-location"]
    off = [int(sum(c[:i])) for c, i in zip(chunks, loc)]
    if loc[0] > 0:
        off[0] -= pad
    solid = lut[1][phases]
    base = lut[0][phases] + texture_sd * (_texture(phases.shape, off, global_shape,
                                                          seed, cell))
    img = np.where(solid, base, pore_value)
    nz = phases.shape[0]
    # Look ahead along +z: distance to and grey value of the first solid voxel behind.
    seen = np.full(phases.shape[1:], np.nan)
    dist = np.zeros(phases.shape[1:])
    back = np.empty(phases.shape, dtype=np.float64)
    bdist = np.empty(phases.shape, dtype=np.float64)
    for k in range(nz - 1, -1, -1):
        back[k] = seen
        bdist[k] = dist + 1
        s = solid[k]
        seen = np.where(s, base[k], seen)
        dist = np.where(s, 0, dist + 1)
    pb = (~solid) & (bdist <= depth) & ~np.isnan(back)
    val = pore_value + gain * (back - pore_value) * atten ** (bdist - 1)
    img = np.where(pb, val, img)
    stripes = curtain * normal_block((1, 1, phases.shape[2]), (0, 0, off[2]),
                                     (1, 1, global_shape[2]), seed, stream=3)
    img = img + stripes + noise * normal_block(phases.shape, off, global_shape, seed, stream=2)
    return img.astype(np.float32)


def pfib_stack(phases, contrast=None, texture=0.06, texture_cell_voxels=4,
               pore_back_depth_voxels=8, pore_back_gain=0.5, pore_back_attenuation=0.97,
               curtaining=0.02, noise=0.02, seed=0):
    """Render PFIB-SEM serial sections (milling axis z) of a segmentation, with pore back.

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with dims ``("z", "y", "x")`` and ``attrs["phases"]`` naming pore,
        cbd, am and optionally crack (voids: pore and crack).
    contrast : dict, optional
        Mean grey value per phase name (default :data:`PFIB_CONTRAST`).
    texture : float
        Standard deviation (grey-value units) of the material texture of solid phases.
        The pore back copies the texture of the solid behind it, so it stays the same from
        slice to slice while sectioned material changes.
    texture_cell_voxels : int
        In-plane size (voxels) of the texture patches.
    pore_back_depth_voxels : int
        Largest depth (slices) at which the solid behind a void is still seen.
    pore_back_gain : float
        Share of the back wall's contrast (above the pore value) seen through the void.
    pore_back_attenuation : float
        Attenuation per slice of depth, in (0, 1].
    curtaining : float
        Amplitude of curtaining stripes (constant along y and z, varying along x).
    noise : float
        Standard deviation of acquisition noise.
    seed : int
        Seed of texture, stripes and noise (chunk-invariant).

    Returns
    -------
    xarray.DataArray
        float32 image on the same grid, lazy.

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> ds = synth.pfib_electrode((24, 48, 48), voxel_size=(0.1, 0.05, 0.05),
    ...                           particle_radius_um=(0.6, 0.1), seed=1)
    >>> img = synth.pfib_stack(ds["phases"])
    >>> img.dims
    ('z', 'y', 'x')
    """
    seg = as_segmentation(phases)
    if seg.dims != ("z", "y", "x"):
        raise InputError("phases", f"a volume with dims ('z', 'y', 'x'), got {seg.dims}")
    table = seg.attrs["phases"]
    contrast = dict(PFIB_CONTRAST, **(contrast or {}))
    missing = [n for n in table.values() if n not in contrast]
    if missing:
        raise InputError("contrast", f"a grey value for every phase, missing {missing}")
    depth = int(pore_back_depth_voxels)
    if depth < 0:
        raise InputError("pore_back_depth_voxels", f"a non-negative int, got {pore_back_depth_voxels!r}")
    if not 0 < pore_back_attenuation <= 1:
        raise InputError("pore_back_attenuation", f"a value in (0, 1], got {pore_back_attenuation!r}")
    for name, v in (("texture", texture), ("noise", noise), ("curtaining", curtaining),
                    ("pore_back_gain", pore_back_gain)):
        if v < 0:
            raise InputError(name, f"a non-negative value, got {v!r}")
    cell = int(texture_cell_voxels)
    if cell < 1:
        raise InputError("texture_cell_voxels", f"a positive int, got {texture_cell_voxels!r}")
    n = max(table) + 1
    grey = np.zeros(n)
    solid = np.zeros(n, dtype=bool)
    for code, name in table.items():
        grey[code] = contrast[name]
        solid[code] = name not in ("pore", "crack")
    pore_value = float(contrast["pore"])
    data = seg.data
    d = min(depth, data.shape[0])
    if d > 0:
        data = data.rechunk({0: ensure_minimum_chunksize(d, data.chunks[0])})
    pad = d if (d > 0 and data.numblocks[0] > 1) else 0
    func = lambda b, block_info=None: _render_block(  # noqa: E731
        b, float(texture), (grey, solid), pore_value, float(pore_back_gain),
        float(pore_back_attenuation), depth, float(noise), float(curtaining), int(seed),
        data.shape, data.chunks, pad, cell, block_info=block_info)
    if pad:
        # Look-ahead only along +z, but map_overlap pads both sides; texture and noise are
        # functions of the global index, so the padded block reproduces its neighbours.
        out = data.map_overlap(func, depth={0: d, 1: 0, 2: 0}, boundary="none",
                               dtype=np.float32, trim=True)
    else:
        out = data.map_blocks(func, dtype=np.float32)
    img = seg.copy(data=out)
    img.name = "pfib"
    img.attrs = {"units": "um", "long_name": "grey value (synthetic PFIB-SEM)",
                 "milling_axis": "z", "pore_back_depth_voxels": depth, "seed": seed}
    return img


def _cell_uniform(block, cell, global_shape, seed, block_info=None):
    """One uniform number per ``cell``-voxel cube of the global grid, for every voxel."""
    off = block_offsets(None, block_info)
    lo = [o // cell for o in off]
    hi = [(o + n - 1) // cell + 1 for o, n in zip(off, block.shape)]
    cells = tuple(-(-g // cell) for g in global_shape)
    u = uniform_block(tuple(h - l for l, h in zip(lo, hi)), tuple(lo), cells, seed, stream=11)
    idx = np.ix_(*[(o + np.arange(n)) // cell - l for o, n, l in zip(off, block.shape, lo)])
    return u[idx]


def _dilate(block, gap):
    return ndimage.binary_dilation(block, iterations=gap)


def detach_cbd(phases, loss, gap_voxels=2, cell_voxels=6, seed=0):
    """Detach the CBD from the particles in patches: a known loss of NMC-CBD contact.

    Seed 001 (Fig. 2D) measures the NMC-CBD contact area per particle surface falling by
    10 % and 20 % after cycling to 4.4 V and 4.7 V. Here the contact is cut patch by patch:
    the grid is divided into cubes of ``cell_voxels`` voxels, a share ``loss`` of them is
    drawn, and inside those the CBD voxels within ``gap_voxels`` of an AM voxel become pore
    (a gap that a PFIB-SEM resolves). The expected share of contact removed is ``loss``;
    the realised one is measured on the result (:func:`measure.contact_area`).

    Parameters
    ----------
    phases : xarray.DataArray
        Segmentation with ``am``, ``cbd`` and ``pore`` in ``attrs["phases"]``.
    loss : float
        Share of the contact patches to detach, in [0, 1].
    gap_voxels : int
        Thickness of the gap (voxels, face-connected dilation of the AM).
    cell_voxels : int
        Edge of the patches (voxels).
    seed : int
        Patch draw; identical for any chunking.

    Returns
    -------
    xarray.DataArray
        The segmentation with the gaps, lazy.

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> seg = synth.pfib_electrode((16, 32, 32), (0.1, 0.05, 0.05),
    ...                            particle_radius_um=(0.6, 0.1), seed=1)["phases"]
    >>> cycled = synth.detach_cbd(seg, loss=0.2)
    """
    seg = as_segmentation(phases, argument="phases")
    codes = {v: k for k, v in seg.attrs["phases"].items()}
    missing = [p for p in ("am", "cbd", "pore") if p not in codes]
    if missing:
        raise InputError("phases", f"a segmentation with phases am, cbd and pore; missing "
                         f"{missing}")
    if not 0.0 <= float(loss) <= 1.0:
        raise InputError("loss", f"a share in [0, 1], got {loss!r}")
    if int(gap_voxels) < 1 or int(cell_voxels) < 1:
        raise InputError("gap_voxels", "gap_voxels and cell_voxels of at least 1")
    data = seg.data
    gap = int(gap_voxels)
    near = (data == codes["am"]).map_overlap(_dilate, depth=gap, boundary=False, gap=gap,
                                            dtype=bool)
    u = data.map_blocks(_cell_uniform, int(cell_voxels), data.shape, int(seed),
                        dtype=np.float64)
    cut = (data == codes["cbd"]) & near & (u < float(loss))
    out = seg.copy(data=np.where(cut, np.asarray(codes["pore"], data.dtype), data))
    out.attrs = dict(seg.attrs, contact_loss=float(loss))
    return out
