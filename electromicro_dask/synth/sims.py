"""Synthetic ToF-SIMS cross-sections and spectral cubes with known truth (seed 000).

Two lazy, chunk-invariant generators:

- :func:`sims_section`: a 2D phase map of an electrode cross-section. Anode: a
  graphite + carbon matrix, silicon agglomerates (ellipses that may touch, so that a
  watershed is needed to separate them, seed 000 Fig. 2), pores, and an SEI shell of given
  thickness covering a random angular part (0-80 %, seed 000 Fig. 3B) of each
  agglomerate's surface. Cathode: NMC particles, CBD matrix, pores and a CEI shell.
- :func:`sims_cube`: the ``("y", "x", "mz")`` cube a ToF-SIMS raster would record on that
  section: per-phase spectra (peak lists with m/z, relative intensities and isotopes),
  lateral blur of the primary beam, Poisson counting statistics and the sub-surface
  artefact of long-lived ions with high ionisation probability (PO3- detected above pores
  from particles below them, seed 000 section 2.1, Fig. 4B).

Both are pointwise functions of global object lists (drawn once from ``seed``) and of
counter-based random numbers of the global pixel index (:mod:`electromicro_dask.core.random`),
so any block is generated on its own and the result does not depend on the chunking.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import xarray as xr
from scipy.special import erf

from ..core.arrays import _voxel_tuple, as_volume
from ..core.errors import InputError
from ..core.phases import phase_table
from ..core.random import uniform_block

__all__ = ["sims_section", "sims_cube", "SIMS_SPECTRA", "SIMS_PHASES"]

#: Phase tables of the two section kinds.
SIMS_PHASES = {
    "anode": {0: "pore", 1: "graphite", 2: "silicon", 3: "sei"},
    "cathode": {0: "pore", 1: "cbd", 2: "nmc", 3: "cei"},
}

#: Per-phase negative-ion spectra: ``(species, m/z, relative intensity, sub-surface yield)``.
#: Species follow seed 000: graphite + carbon from C_n^- fragments, silicon from Si^- and
#: its oxides, SEI from LiO^- and LiCO2^- (section 2.1), NMC from metal oxides, CBD from
#: carbon and PVdF fluorine fragments, CEI from LiCO3^-, CO3^- and phosphates. The
#: sub-surface yield (relative to the surface yield) models ions with high ionisation
#: probability and lifetime that are also detected from particles below pores: PO3^- has
#: one; its isotope P18OO2^- is formed so rarely that its sub-surface signal falls below the
#: detection limit, which is why seed 000 uses it as the CEI reference (Fig. 4C).
SIMS_SPECTRA = {
    "pore": [],
    "graphite": [("C2-", 24.000, 1.0, 0.0), ("C2H-", 25.008, 0.35, 0.0),
                 ("C3-", 36.000, 0.5, 0.0), ("C4-", 48.000, 0.3, 0.0),
                 ("13CC-", 25.003, 0.02, 0.0)],
    "silicon": [("Si-", 27.977, 1.0, 0.0), ("29Si-", 28.976, 0.05, 0.0),
                ("SiO2-", 59.967, 0.6, 0.0), ("SiO3-", 75.962, 0.3, 0.0)],
    "sei": [("LiO-", 23.009, 1.0, 0.0), ("LiCO2-", 51.006, 0.6, 0.0),
            ("F-", 18.998, 0.4, 0.0), ("C2-", 24.000, 0.1, 0.0)],
    "cbd": [("C2-", 24.000, 1.0, 0.0), ("C3-", 36.000, 0.5, 0.0),
            ("CF-", 30.998, 0.4, 0.0), ("F-", 18.998, 0.5, 0.0)],
    "nmc": [("NiO-", 73.930, 1.0, 0.0), ("MnO-", 70.933, 0.4, 0.0),
            ("CoO2-", 90.923, 0.3, 0.0), ("O-", 15.995, 0.6, 0.0)],
    "cei": [("LiCO3-", 67.001, 0.6, 0.0), ("CO3-", 59.985, 0.5, 0.0),
            ("PO3-", 78.959, 1.0, 1.0), ("P18OO2-", 80.963, 0.12, 0.0),
            ("LiF2-", 45.013, 0.3, 0.0)],
}

#: Mean counts per pixel (all peaks) of each phase, of the order a 2048^2 raster at
#: 150-250 scans gives (seed 000, experimental section); pores only give background.
_COUNTS = {"pore": 0.0, "graphite": 60.0, "silicon": 60.0, "sei": 40.0, "cbd": 50.0,
           "nmc": 60.0, "cei": 40.0}


# --------------------------------------------------------------------------- section


def _place_ellipses(rng, field, target, radius, aspect, overlap, max_tries=200_000):
    """Random sequential addition of ellipses until their area fraction reaches ``target``.

    Bounding circles (radius = semi-major axis) of two ellipses may overlap by at most
    ``overlap`` of the sum of their radii, so some agglomerates touch (seed 000 needs a
    watershed to separate them) but none swallows another.
    """
    (ly, lx), area = field, field[0] * field[1]
    mean, sd = radius
    sigma2 = math.log(1 + (sd / mean) ** 2)
    mu = math.log(mean) - sigma2 / 2
    out, filled, tries = [], 0.0, 0
    cy = np.empty(0)
    cx = np.empty(0)
    ca = np.empty(0)
    while filled < target * area and tries < max_tries:
        tries += 1
        r = float(rng.lognormal(mu, math.sqrt(sigma2)))
        ar = float(rng.uniform(aspect[0], aspect[1]))
        a, b = r * math.sqrt(ar), r / math.sqrt(ar)  # equal-area ellipse of radius r
        y, x = float(rng.uniform(-a, ly + a)), float(rng.uniform(-a, lx + a))
        if ca.size:
            d = np.hypot(cy - y, cx - x)
            if np.any(d < (1.0 - overlap) * (ca + a)):
                continue
        theta = float(rng.uniform(0, np.pi))
        out.append((y, x, a, b, theta))
        cy, cx, ca = np.append(cy, y), np.append(cx, x), np.append(ca, a)
        # Area inside the field (clipped bounding box estimate is enough for the target).
        fy = max(0.0, min(ly, y + b) - max(0.0, y - b)) / (2 * b)
        fx = max(0.0, min(lx, x + b) - max(0.0, x - b)) / (2 * b)
        filled += math.pi * a * b * fy * fx
    return np.array(out, dtype=np.float64).reshape(-1, 5)


def _window(y, x, cy, cx, r):
    """Index ranges of the block pixels within ``r`` of a centre (bounding box)."""
    y0, y1 = np.searchsorted(y, cy - r), np.searchsorted(y, cy + r, side="right")
    x0, x1 = np.searchsorted(x, cx - r), np.searchsorted(x, cx + r, side="right")
    return slice(y0, y1), slice(x0, x1)


def _section_block(iy, ix, voxel, objects, pores, shell, coverage, codes):
    """Phases and agglomerate ids of one block from the global object lists.

    Each object is evaluated only on the block pixels inside its bounding box, with the
    same floating-point expressions whatever the block, so results are chunk-invariant.
    """
    y = (iy.astype(np.float64) + 0.5) * voxel[0]
    x = (ix.astype(np.float64) + 0.5) * voxel[1]
    shape = (y.size, x.size)
    phases = np.full(shape, codes["matrix"], np.uint8)
    # Pores: a Boolean model of discs (overlap allowed).
    for py, px, pr in pores:
        sy, sx = _window(y, x, py, px, pr)
        if sy.start >= sy.stop or sx.start >= sx.stop:
            continue
        d2 = (y[sy, None] - py) ** 2 + (x[None, sx] - px) ** 2
        phases[sy, sx][d2 <= pr * pr] = codes["pore"]
    ids = np.zeros(shape, np.uint32)
    best = np.full(shape, np.inf)
    shell_owner = np.zeros(shape, np.uint32)
    shell_best = np.full(shape, np.inf)
    for i in range(len(objects)):
        oy, ox, a, b, th = objects[i]
        sy, sx = _window(y, x, oy, ox, a + shell)
        if sy.start >= sy.stop or sx.start >= sx.stop:
            continue
        Y, X = y[sy, None], x[None, sx]
        c, s = math.cos(th), math.sin(th)
        u = (X - ox) * c + (Y - oy) * s
        v = -(X - ox) * s + (Y - oy) * c
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        # Each pixel belongs to the ellipse it is relatively deepest in.
        bw, iw = best[sy, sx], ids[sy, sx]
        inside = (rho <= 1.0) & (rho < bw)
        iw[inside] = i + 1
        bw[inside] = rho[inside]
        if shell > 0:
            rs = np.sqrt((u / (a + shell)) ** 2 + (v / (b + shell)) ** 2)
            ang = np.mod(np.arctan2(v, u) - coverage[i, 0], 2 * np.pi)
            sbw, sow = shell_best[sy, sx], shell_owner[sy, sx]
            ins = (rs <= 1.0) & (rs < sbw) & (ang <= 2 * np.pi * coverage[i, 1])
            sow[ins] = i + 1
            sbw[ins] = rs[ins]
    solid = ids > 0
    if shell > 0:
        phases[(shell_owner > 0) & ~solid] = codes["shell"]
    phases[solid] = codes["object"]
    return phases, ids


def sims_section(shape, voxel_size_um=0.125, kind="anode", fractions=None,
                 agglomerate_radius_um=(1.5, 0.4), aspect_ratio=(1.0, 1.6),
                 pore_radius_um=1.0, interphase_thickness_um=0.25,
                 interphase_coverage=(0.0, 0.8), overlap=0.1, seed=0, chunks=None):
    """A synthetic electrode cross-section with its true phases and agglomerates.

    Parameters
    ----------
    shape : tuple of 2 int
        Pixels ``(y, x)``; any size up to 2048 x 2048 and beyond (lazy).
    voxel_size_um : float
        Pixel size in micrometres (seed 000: about 0.125 um).
    kind : {"anode", "cathode"}
        Graphite + carbon / silicon / pore / SEI, or CBD / NMC / pore / CEI.
    fractions : dict, optional
        Target area fractions of the agglomerate phase (``"silicon"`` or ``"nmc"``) and
        of ``"pore"`` (defaults 0.2 / 0.15 for anodes, 0.4 / 0.2 for cathodes); the
        matrix phase takes the rest, the shell is carved out of matrix and pores.
    agglomerate_radius_um : (float, float)
        Mean and standard deviation of the log-normal equal-area radius of the
        agglomerates (ellipses).
    aspect_ratio : (float, float)
        Range of the ellipses' axis ratio (uniform).
    pore_radius_um : float
        Radius of the discs whose union is the pore space.
    interphase_thickness_um : float
        Thickness of the SEI / CEI shell around the agglomerates (0: none, a pristine
        electrode).
    interphase_coverage : (float, float)
        Range of the fraction of each agglomerate's perimeter the shell covers (uniform;
        seed 000 Fig. 3B finds 0-80 % after cycling).
    overlap : float
        Largest overlap of two agglomerates' bounding circles, as a fraction of the sum
        of their radii (touching agglomerates must be separated by a watershed).
    seed : int
        Seed of the object lists.
    chunks : int or tuple, optional
        Chunk shape (default 512 x 512).

    Returns
    -------
    xarray.Dataset
        ``phases`` (uint8 with ``attrs["phases"]``) and ``agglomerates`` (uint32 true ids,
        0 = none, consecutive from 1), lazy; coordinates in um. attrs: ``kind``,
        ``n_agglomerates``, ``interphase_thickness_um``.

    Examples
    --------
    >>> from electromicro_dask.synth import sims_section
    >>> ds = sims_section((128, 128), 0.25, seed=1)
    >>> ds.phases.attrs["phases"]
    {0: 'pore', 1: 'graphite', 2: 'silicon', 3: 'sei'}
    """
    if kind not in SIMS_PHASES:
        raise InputError("kind", f"one of {sorted(SIMS_PHASES)}, got {kind!r}")
    if len(tuple(shape)) != 2 or any(int(s) < 8 for s in shape):
        raise InputError("shape", f"two sizes of at least 8 pixels, got {shape!r}")
    shape = tuple(int(s) for s in shape)
    voxel = _voxel_tuple(voxel_size_um, ("y", "x"), "voxel_size_um")
    table = SIMS_PHASES[kind]
    obj_name, matrix = ("silicon", "graphite") if kind == "anode" else ("nmc", "cbd")
    fr = {obj_name: 0.2, "pore": 0.15} if kind == "anode" else {obj_name: 0.4, "pore": 0.2}
    if fractions:
        unknown = set(fractions) - {obj_name, "pore"}
        if unknown:
            raise InputError("fractions", f"fractions of {obj_name!r} and 'pore', got {sorted(unknown)}")
        fr.update({k: float(v) for k, v in fractions.items()})
    if not (0 <= fr[obj_name] < 0.6 and 0 <= fr["pore"] and fr[obj_name] + fr["pore"] < 1):
        raise InputError("fractions", f"{obj_name} < 0.6 and a sum below 1, got {fr}")
    mean, sd = (float(v) for v in agglomerate_radius_um)
    if not (mean > 0 and sd >= 0):
        raise InputError("agglomerate_radius_um", f"(mean > 0, sd >= 0), got {agglomerate_radius_um!r}")
    lo, hi = (float(v) for v in aspect_ratio)
    if not 1.0 <= lo <= hi:
        raise InputError("aspect_ratio", f"1 <= min <= max, got {aspect_ratio!r}")
    shell = float(interphase_thickness_um)
    if shell < 0:
        raise InputError("interphase_thickness_um", f"a thickness >= 0, got {shell}")

    rng = np.random.default_rng(seed)
    field = (shape[0] * voxel[0], shape[1] * voxel[1])
    objects = _place_ellipses(rng, field, fr[obj_name], (mean, sd), (lo, hi), float(overlap))
    # Pores: Boolean model of discs, 1 - exp(-lambda pi r^2) of the space left by objects.
    left = max(1e-9, 1.0 - fr[obj_name])
    target = min(0.95, fr["pore"] / left)
    pr = float(pore_radius_um)
    n_pores = rng.poisson(-math.log(1 - target) / (math.pi * pr * pr)
                          * (field[0] + 2 * pr) * (field[1] + 2 * pr)) if target > 0 else 0
    pores = np.column_stack([rng.uniform(-pr, field[0] + pr, n_pores),
                             rng.uniform(-pr, field[1] + pr, n_pores),
                             np.full(n_pores, pr)]) if n_pores else np.zeros((0, 3))
    c0, c1 = (float(v) for v in interphase_coverage)
    coverage = np.column_stack([rng.uniform(0, 2 * np.pi, len(objects)),
                                rng.uniform(c0, c1, len(objects))])
    inv = {v: k for k, v in table.items()}
    codes = {"matrix": inv[matrix], "pore": inv["pore"], "object": inv[obj_name],
             "shell": inv["sei" if kind == "anode" else "cei"]}

    if chunks is None:
        chunks = (512, 512)
    chunks = da.core.normalize_chunks(chunks, shape=shape)
    iy = da.arange(shape[0], chunks=chunks[0])
    ix = da.arange(shape[1], chunks=chunks[1])

    def block(ay, ax, which):
        p, i = _section_block(ay, ax, voxel, objects, pores, shell, coverage, codes)
        return p if which == 0 else i

    phases = da.blockwise(block, "yx", iy, "y", ix, "x", dtype=np.uint8, which=0)
    raw_ids = da.blockwise(block, "yx", iy, "y", ix, "x", dtype=np.uint32, which=1)
    # Consecutive ids from 1 over the objects that appear on the raster: the present set
    # is exact from the object list only up to pixel sampling, so take it from the raster
    # (one small global computation, a bincount).
    present = np.nonzero(np.bincount(np.asarray(da.unique(raw_ids).compute()).astype(np.int64),
                                     minlength=len(objects) + 1))[0]
    present = present[present > 0]
    lut = np.zeros(len(objects) + 1, np.uint32)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint32)
    ids = raw_ids.map_blocks(lambda b: lut[b], dtype=np.uint32)

    ph = as_volume(phases, voxel_size=voxel, dims=("y", "x"), name="phases")
    ph.attrs["phases"] = dict(table)
    ag = as_volume(ids, voxel_size=voxel, dims=("y", "x"), name="agglomerates")
    ag.attrs["n_labels"] = int(len(present))
    ds = xr.Dataset({"phases": ph, "agglomerates": ag})
    ds.attrs.update(kind=kind, n_agglomerates=int(len(present)),
                    interphase_thickness_um=shell, agglomerate_phase=obj_name)
    return ds


# --------------------------------------------------------------------------- cube


def _peak_matrix(names, spectra, counts, edges, resolution):
    """Expected counts per m/z bin of each phase (rows) and of the sub-surface artefact.

    A peak is a Gaussian of FWHM ``m / resolution`` (seed 000: m/dm > 5000 at m/z 60)
    integrated over each bin.
    """
    rows = np.zeros((len(names) + 1, len(edges) - 1), np.float64)
    for k, name in enumerate(names):
        peaks = spectra.get(name, [])
        total = sum(p[2] for p in peaks)
        for peak in peaks:
            mz, rel = float(peak[1]), float(peak[2])
            sub = float(peak[3]) if len(peak) > 3 else 0.0
            sigma = mz / resolution / 2.3548
            cdf = 0.5 * (1 + erf((edges - mz) / (math.sqrt(2) * sigma)))
            prof = np.diff(cdf) * counts.get(name, 0.0) * rel / total
            rows[k] += prof
            rows[-1] += sub * prof
    return rows


def _poisson(lam, u):
    """Poisson variates by inverse transform of uniforms ``u`` (chunk-invariant draws).

    Work is proportional to the number of elements plus the total count: only elements
    whose uniform lies beyond the running CDF stay in the loop.
    """
    shape = lam.shape
    lam = lam.ravel()
    u = u.ravel()
    out = np.zeros(lam.size, np.uint16)
    p = np.exp(-lam)
    F = p.copy()
    idx = np.nonzero(u > F)[0]
    li, ui, pi, Fi = lam[idx], u[idx], p[idx], F[idx]
    k = 0
    while idx.size and k < 65535:
        k += 1
        pi = pi * li / k
        Fi = Fi + pi
        out[idx] = k
        keep = (ui > Fi) & (pi > 0)
        idx, li, ui, pi, Fi = idx[keep], li[keep], ui[keep], pi[keep], Fi[keep]
    return out.reshape(shape)


def _cube_block(frac, rows, iy, ix, im, global_shape, seed):
    lam = np.tensordot(frac.astype(np.float64), rows, axes=([2], [0]))
    u = uniform_block(lam.shape, (int(iy[0]), int(ix[0]), int(im[0])), global_shape, seed,
                      stream=7)
    return _poisson(lam, u)


def sims_cube(section, spectra=None, counts_per_pixel=None, background_counts=2.0,
              blur_um=0.1, artefact_range_um=1.0, mz_range=(15.0, 95.0), n_channels=256,
              resolution=5000.0, seed=0, chunks=None):
    """A Poisson-counted ToF-SIMS spectral cube of a phase map.

    Expected counts at pixel p and bin m are ``sum_k f_k(p) S_k(m) + A(p) S_sub(m) + b/M``,
    where ``f_k`` is phase ``k``'s indicator blurred by a Gaussian of ``blur_um`` (lateral
    resolution of the primary beam), ``S_k`` the phase's spectrum (peaks of FWHM
    ``m / resolution`` scaled to ``counts_per_pixel``), ``b`` a flat chemical background
    over the ``M`` channels, and ``A`` the sub-surface artefact: pore pixels see the
    particles below them (the agglomerate phase blurred over ``artefact_range_um``) through
    the peaks' sub-surface yields (seed 000 section 2.1: PO3- seen above pores).

    Parameters
    ----------
    section : xarray.Dataset or xarray.DataArray
        The output of :func:`sims_section` or a 2D segmentation with ``attrs["phases"]``.
    spectra : dict, optional
        ``{phase: [(species, mz, relative_intensity[, subsurface_yield]), ...]}``; default
        :data:`SIMS_SPECTRA`. Phases without an entry give background only.
    counts_per_pixel : dict, optional
        Mean counts per pixel of each phase, all peaks together (defaults of order 50).
    background_counts : float
        Mean background counts per pixel spread evenly over all channels.
    blur_um : float
        Standard deviation of the lateral blur in um (0: none).
    artefact_range_um : float
        Standard deviation in um of the reach of sub-surface particles below pores
        (0: no artefact).
    mz_range : (float, float)
        m/z of the first and last bin edge.
    n_channels : int
        Number of m/z bins.
    resolution : float
        Mass resolution m / dm (FWHM).
    seed : int
        Seed of the counting noise.
    chunks : tuple, optional
        Chunks ``(y, x, mz)``; default ``(256, 256, 64)`` (8 MiB of uint16).

    Returns
    -------
    xarray.DataArray
        uint16 counts, dims ``("y", "x", "mz")``, ``mz`` coordinate of bin centres, lazy.
        attrs: ``mz_edges``, ``species`` (the peak table used).

    Examples
    --------
    >>> from electromicro_dask.synth import sims_section, sims_cube
    >>> cube = sims_cube(sims_section((64, 64), 0.25), n_channels=32)
    >>> cube.dims, cube.shape
    (('y', 'x', 'mz'), (64, 64, 32))
    """
    from ..filters import gaussian

    phases = section["phases"] if isinstance(section, xr.Dataset) else section
    phases = as_volume(phases, argument="section")
    if phases.dims != ("y", "x"):
        raise InputError("section", f"a 2D phase map with dims ('y', 'x'), got {phases.dims}")
    table = phase_table(phases.attrs.get("phases"), "section")
    names = [table[c] for c in sorted(table)]
    spectra = SIMS_SPECTRA if spectra is None else dict(spectra)
    counts = dict(_COUNTS)
    if counts_per_pixel is not None:
        if np.ndim(counts_per_pixel) == 0:
            counts.update({n: float(counts_per_pixel) for n in names if n != "pore"})
        else:
            counts.update({k: float(v) for k, v in counts_per_pixel.items()})
    n_channels = int(n_channels)
    lo, hi = (float(v) for v in mz_range)
    if n_channels < 1 or not hi > lo:
        raise InputError("mz_range", f"lo < hi and n_channels >= 1, got {mz_range}, {n_channels}")
    edges = np.linspace(lo, hi, n_channels + 1)
    mz = 0.5 * (edges[:-1] + edges[1:])
    rows = _peak_matrix(names, spectra, counts, edges, float(resolution))
    rows[:-1] += float(background_counts) / n_channels

    fracs = []
    for code in sorted(table):
        ind = (phases == code).astype(np.float32)
        fracs.append(gaussian(ind, sigma_um=blur_um).data if blur_um > 0 else ind.data)
    agg = "silicon" if "silicon" in names else ("nmc" if "nmc" in names else None)
    if artefact_range_um > 0 and agg is not None and "pore" in names and rows[-1].any():
        inv = {v: k for k, v in table.items()}
        below = gaussian((phases == inv[agg]).astype(np.float32),
                         sigma_um=artefact_range_um).data
        pore = (phases.data == inv["pore"]).astype(np.float32)
        # Particles below a pore: the blurred particle indicator, scaled so a pore pixel
        # at a particle's edge sees about half of a surface signal.
        fracs.append(np.minimum(1.0, 2.0 * below) * pore)
    else:
        fracs.append(da.zeros_like(fracs[0]))
    if chunks is None:
        chunks = (256, 256, 64)
    chunks = da.core.normalize_chunks(chunks, shape=phases.shape + (n_channels,))
    F = da.stack(fracs, axis=-1).rechunk((chunks[0], chunks[1], len(fracs)))
    R = da.from_array(rows, chunks=(rows.shape[0], chunks[2]))
    iy = da.arange(phases.shape[0], chunks=chunks[0])
    ix = da.arange(phases.shape[1], chunks=chunks[1])
    im = da.arange(n_channels, chunks=chunks[2])
    gshape = phases.shape + (n_channels,)
    cube = da.blockwise(_cube_block, "yxm", F, "yxp", R, "pm", iy, "y", ix, "x", im, "m",
                        concatenate=True, dtype=np.uint16, global_shape=gshape, seed=int(seed))
    out = xr.DataArray(cube, dims=("y", "x", "mz"),
                       coords={"y": phases.y, "x": phases.x,
                               "mz": xr.Variable("mz", mz, attrs={"units": "m/z"})},
                       name="cube")
    out.attrs.update(units="counts", mz_edges=edges.tolist(),
                     species={n: [list(p) for p in spectra.get(n, [])] for n in names})
    return out
