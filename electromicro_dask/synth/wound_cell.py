"""Synthetic wound (cylindrical) cell for SWAXS-CT with known truth (seed 004; design in
../shared/notes/swaxs.md, section 6, tier T2).

A slice of a jelly roll: an Archimedean spiral ``r = r0 + p theta / 2 pi`` of
separator | anode | Cu | anode | separator | cathode | Al | cathode layers (pitch 255 um)
inside a steel casing, lithiation state per turn (inner turns LiC12, outer turns LiC6), a
poorly lithiated (graphite, x < 0.2) ellipse with lithiated cathode around the first large
agglomerate, silicon agglomerates of known diameters plus a log-normal population. Every
phase ``k`` has an amount map ``c_k`` (area fraction per pixel, from 4x supersampling) and a
1D scattering signature ``I_k(q)``: Gaussian Bragg peaks centred in the seed's Table 1
windows (WAXS) and, for silicon-bearing anode phases, ``I = B q^-3.5 + G exp(-q^2 Rg^2 / 3)``
with ``Rg = 3.5 / q*`` and ``G`` set so that the 3 % departure falls at the known d*
(notes 2.6, "model guard").

Pencil-beam sinograms follow from linearity (notes section 6):
``S(theta, t, q) = i0(theta, t) * sum_k [Radon(c_k) * beam](theta, t) * I_k(q) + noise``,
with Radon from scikit-image (``radon``, same convention as ``iradon``), a Gaussian beam
profile along ``t``, interlaced angle subsets in acquisition order, an optional
centre-of-rotation offset and an optional known I0 drift. Absorption of the scattered
signal is not modelled (the seed does not correct for it either); the attenuation line
integral is returned as its own channel.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import InputError
from ..core.random import normal_block

__all__ = ["wound_cell", "WOUND_CELL_PHASES", "wound_cell_profiles", "WAXS_PEAKS", "wound_cell_ct",
           "CT_CONTRAST"]

#: Phase channels of the synthetic cell, in the order of the integer truth labels (0 = void).
WOUND_CELL_PHASES = ("void", "casing", "separator", "graphite", "lic12", "lic6", "cu",
                     "nmc_lithiated", "nmc_delithiated", "al", "si_agglomerate")

#: Bragg peaks in 1/A (notes section 6 table; centred in the seed's Table 1 windows).
WAXS_PEAKS = {
    "graphite": [1.865], "lic12": [1.800], "lic6": [1.700],
    "nmc_lithiated": [4.595, 1.33], "nmc_delithiated": [4.475, 1.30],
    "cu": [3.01], "al": [2.69], "casing": [3.10],
}

#: Layer stack of one turn, outward, thicknesses in um (notes section 6): pitch 255 um.
_STACK = (("separator", 20.0), ("anode", 45.0), ("cu", 10.0), ("anode", 45.0),
          ("separator", 20.0), ("cathode", 50.0), ("al", 15.0), ("cathode", 50.0))

_AGGLOMERATE_D_UM = (20, 30, 40, 50, 60, 80, 100, 120)


def _saxs(q, d_star_nm, amplitude, slope=3.5):
    """Power law with a Guinier knee whose 3 % departure lies at q* = 2 pi / d*."""
    b = 1e-3 * amplitude
    out = b * q ** -slope
    if d_star_nm is not None:
        qs = 2 * np.pi / (10.0 * d_star_nm)
        rg = 3.5 / qs
        g = 0.03 * b * qs ** -slope / np.exp(-(qs * rg) ** 2 / 3)
        out = out + g * np.exp(-(q * rg) ** 2 / 3)
    return out


def wound_cell_profiles(q, saxs_amplitude=1.0, d_star_nm=(14.0, 11.0), agglomerate_gain=3.0,
                        fwhm=0.015):
    """1D signatures ``I_k(q)`` of the phases (dict name -> array), q in 1/A.

    WAXS: unit-area Gaussian peaks (FWHM ``fwhm``) at :data:`WAXS_PEAKS` plus a broad
    amorphous hump at 1.5 1/A in the separator; only for q > 1 1/A. SAXS (q < 1 1/A):
    lithiated anode (LiC6, LiC12) with d* = ``d_star_nm[0]``, agglomerates with
    d* = ``d_star_nm[1]`` at ``agglomerate_gain`` times the amplitude, the poorly lithiated
    anode a pure power law (d* undefined).
    """
    q = np.asarray(q, dtype=np.float64)
    s = fwhm / 2.3548
    waxs = q > 1.0
    saxs = ~waxs

    def peaks(centres, height=0.01):
        out = np.zeros_like(q)
        for c in centres:
            out += height * np.exp(-0.5 * ((q - c) / s) ** 2) / (s * np.sqrt(2 * np.pi))
        return np.where(waxs, out, 0.0)

    prof = {name: np.zeros_like(q) for name in WOUND_CELL_PHASES}
    for name, cs in WAXS_PEAKS.items():
        prof[name] = prof[name] + peaks(cs)
    prof["separator"] = np.where(waxs, 0.002 * np.exp(-0.5 * ((q - 1.5) / 0.255) ** 2), 0.0)
    a = float(saxs_amplitude)
    for name in ("lic6", "lic12"):
        prof[name] = prof[name] + np.where(saxs, _saxs(q, d_star_nm[0], a), 0.0)
    prof["graphite"] = prof["graphite"] + np.where(saxs, _saxs(q, None, a), 0.0)
    prof["si_agglomerate"] = np.where(saxs, _saxs(q, d_star_nm[1], a * agglomerate_gain), 0.0)
    return prof


def _place_agglomerates(rng, anode_centres, diameters, populations, margin_um=5.0):
    placed = []
    for d, pop in zip(diameters, populations):
        for _ in range(400):
            y, x = anode_centres[rng.integers(len(anode_centres))]
            if all(np.hypot(y - p["y_um"], x - p["x_um"]) > (d + p["d_um"]) / 2 + margin_um
                   for p in placed):
                placed.append({"y_um": float(y), "x_um": float(x), "d_um": float(d),
                               "population": pop})
                break
    return placed


def _geometry(n, pixel_um, radius_um, wall_um, mandrel_um, pitch_um, ss):
    """Fine-grid coordinates (um, centred), polar radius and spiral turn coordinates."""
    m = n * ss
    c = (np.arange(m) + 0.5) * pixel_um / ss - n * pixel_um / 2
    yy, xx = np.meshgrid(c, c, indexing="ij")
    r = np.hypot(yy, xx)
    th = np.mod(np.arctan2(yy, xx), 2 * np.pi)
    s = (r - mandrel_um) / pitch_um - th / (2 * np.pi)
    turn = np.floor(s)
    u = (s - turn) * pitch_um
    return yy, xx, r, turn, u


def wound_cell(size=128, pixel_um=20.0, n_angles=60, subsets=3, radius_um=1200.0,
               wall_um=60.0, mandrel_um=250.0, pitch_um=255.0, agglomerates=_AGGLOMERATE_D_UM,
               n_each=1, n_lognormal=0, lognormal_median_radius_um=20.0, lognormal_sigma=0.25,
               saxs_amplitude=1.0, d_star_nm=(14.0, 11.0), beam_fwhm_um=20.0,
               center_offset_px=0.0, i0_drift=0.0, noise=0.0, n_saxs=300, n_waxs=600,
               saxs_range=(0.01, 0.6), waxs_range=(1.5, 5.0), lic6_fraction=0.5, seed=0,
               chunks=None):
    """Synthetic SWAXS-CT slice of a wound Si-graphite / NMC cell with known truth.

    Parameters
    ----------
    size : int
        Pixels along y and x of the truth maps and translations ``t`` per projection.
    pixel_um : float
        Pixel size and translation step in um.
    n_angles, subsets : int
        Projections over 0..180 degrees, acquired as ``subsets`` interlaced subsets (each
        offset by step / subsets); ``n_angles`` must be a multiple of ``subsets``.
    radius_um, wall_um, mandrel_um, pitch_um : float
        Casing outer radius and wall, mandrel (first-turn) radius, spiral pitch in um.
    agglomerates : sequence of float
        Diameters in um of the agglomerates of known size (``n_each`` of each) placed
        without overlap centred in anode coatings; the first one of 100 um or more (else the
        largest) carries the poorly lithiated ellipse.
    n_lognormal, lognormal_median_radius_um, lognormal_sigma
        A log-normal population of agglomerate radii (median in um, sigma of ln r).
    saxs_amplitude : float
        Power-law amplitude of the silicon SAXS (the SAXS map scales linearly with it).
    d_star_nm : (float, float)
        d* of the regular lithiated anode and of the agglomerates, in nm.
    beam_fwhm_um : float
        Gaussian beam profile along ``t`` (FWHM, um).
    center_offset_px : float
        Offset of the rotation axis from the centre of the ``t`` axis, in pixels.
    i0_drift : float
        Relative amplitude of a smooth incident-flux drift over the acquisition
        (``i0 = 1 + i0_drift * sin(2 pi time / total)``); recorded in ``monitor``.
    noise : float
        Relative Gaussian noise (standard deviation as a fraction of each value),
        chunk-invariant.
    n_saxs, n_waxs, saxs_range, waxs_range
        Linear q bins (1/A) of the SAXS and WAXS parts of the ``q`` axis.
    lic6_fraction : float
        Fraction of the turns, counted from the outermost, whose anode is LiC6; the inner
        ones are LiC12. The seed's charged fresh cell is "mostly LiC6", its charged aged
        cell "LiC12 almost everywhere" (notes section 3).
    seed : int
    chunks : int, optional
        Angles per chunk of the sinogram (default: about 2 MiB per chunk).

    Returns
    -------
    xarray.Dataset
        ``sinogram`` (``("angle", "t", "q")``, float32, lazy; rows in acquisition order,
        coordinate ``angle`` = positioner angle in degrees, not monotonic; ``t`` = beam
        translation positioner in um; ``subset`` per angle), ``monitor`` (``("angle", "t")``
        I0), ``attenuation`` (line integral of mu, ``("angle", "t")``), truth ``amount``
        (``("phase", "y", "x")`` area fractions), ``labels`` (``("y", "x")``, dominant phase
        code, ``attrs["phases"]``), ``profiles`` (``("phase", "q")`` signatures), ``y``/``x``
        in um. ``attrs``: ``agglomerates`` (list of dicts y_um, x_um, d_um, population; y/x
        in the map's coordinates), ``center_um`` (casing centre), ``radius_um``,
        ``pitch_um``, ``center_offset_px``, ``poor_region`` (ellipse).

    Examples
    --------
    >>> cell = wound_cell(size=64, pixel_um=40.0, n_angles=30, n_saxs=50, n_waxs=60)
    >>> cell["sinogram"].dims
    ('angle', 't', 'q')
    """
    from scipy import ndimage
    from skimage.transform import radon

    n = int(size)
    if n < 16:
        raise InputError("size", f"an integer >= 16, got {size!r}")
    if not 0.0 <= float(lic6_fraction) <= 1.0:
        raise InputError("lic6_fraction", f"a fraction in [0, 1], got {lic6_fraction!r}")
    if int(n_angles) % int(subsets) or int(n_angles) < int(subsets):
        raise InputError("n_angles", f"a multiple of subsets={subsets}, got {n_angles!r}")
    # radon's reconstruction circle: radius n // 2 pixels around pixel n // 2 (not the
    # field centre), so keep half a pixel of margin beyond the partial-volume edge.
    if radius_um > (n / 2 - 1.5) * pixel_um:
        raise InputError("radius_um", f"at most {(n / 2 - 1.5) * pixel_um:.0f} um (half the "
                         f"field less 1.5 pixels), got {radius_um}")
    rng = np.random.default_rng(seed)
    ss = 4
    yy, xx, r, turn, u = _geometry(n, pixel_um, radius_um, wall_um, mandrel_um, pitch_um, ss)
    code = {p: i for i, p in enumerate(WOUND_CELL_PHASES)}
    lab = np.zeros(yy.shape, np.uint8)
    lab[(r >= radius_um - wall_um) & (r < radius_um)] = code["casing"]
    inner = radius_um - wall_um
    n_turns = int(np.floor((inner - mandrel_um) / pitch_um))
    roll = (r >= mandrel_um) & (r < inner) & (turn >= 0) & (turn < n_turns)
    edges = np.cumsum([0.0] + [t for _, t in _STACK])
    layer = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(_STACK) - 1)
    kinds = np.array([k for k, _ in _STACK])
    kind = kinds[layer]
    anode_state = np.where(turn < n_turns * (1.0 - float(lic6_fraction)), code["lic12"],
                           code["lic6"])
    for k, c in (("separator", code["separator"]), ("cu", code["cu"]), ("al", code["al"])):
        lab[roll & (kind == k)] = c
    an = roll & (kind == "anode")
    lab[an] = anode_state[an]
    lab[roll & (kind == "cathode")] = code["nmc_delithiated"]

    # Agglomerates centred in anode coatings (centres of both anode layers of every turn).
    thq = rng.uniform(0, 2 * np.pi, 4000)
    tk = rng.integers(0, max(n_turns, 1), 4000)
    which = rng.integers(0, 2, 4000)
    u_c = np.where(which == 0, edges[1] + 22.5, edges[3] + 22.5)
    rc = mandrel_um + pitch_um * (tk + thq / (2 * np.pi)) + u_c
    cands = np.stack([rc * np.sin(thq), rc * np.cos(thq)], axis=1)
    diam = [float(d) for d in agglomerates for _ in range(int(n_each))]
    pops = ["known"] * len(diam)
    if n_lognormal:
        radii = lognormal_median_radius_um * np.exp(lognormal_sigma * rng.standard_normal(
            int(n_lognormal)))
        diam += list(2 * radii)
        pops += ["lognormal"] * int(n_lognormal)
    placed = _place_agglomerates(rng, cands, diam, pops)
    poor = None
    if placed:
        big = [p for p in placed if p["d_um"] >= 100] or [max(placed, key=lambda p: p["d_um"])]
        p0 = big[0]
        ang = np.arctan2(p0["y_um"], p0["x_um"])
        # Ellipse elongated along the winding (tangential) direction, radial half-width
        # within the turn: the bend region of Figs 3 and 5.
        a_t, a_r = 3.0 * p0["d_um"], 1.2 * p0["d_um"]
        dy, dx = yy - p0["y_um"], xx - p0["x_um"]
        rad = dy * np.sin(ang) + dx * np.cos(ang)
        tan = -dy * np.cos(ang) + dx * np.sin(ang)
        ell = (rad / a_r) ** 2 + (tan / a_t) ** 2 <= 1
        lab[ell & an] = code["graphite"]
        lab[ell & roll & (kind == "cathode")] = code["nmc_lithiated"]
        poor = {"y_um": p0["y_um"], "x_um": p0["x_um"], "radial_um": a_r, "tangential_um": a_t}
    for p in placed:
        lab[np.hypot(yy - p["y_um"], xx - p["x_um"]) <= p["d_um"] / 2] = code["si_agglomerate"]

    nph = len(WOUND_CELL_PHASES)
    amount = np.stack([(lab == i).reshape(n, ss, n, ss).mean(axis=(1, 3))
                       for i in range(nph)]).astype(np.float32)
    labels = amount.argmax(axis=0).astype(np.uint8)

    q = np.concatenate([np.linspace(*saxs_range, int(n_saxs)),
                        np.linspace(*waxs_range, int(n_waxs))])
    prof = wound_cell_profiles(q, saxs_amplitude=saxs_amplitude, d_star_nm=d_star_nm)
    prof_arr = np.stack([prof[p] for p in WOUND_CELL_PHASES]).astype(np.float64)

    # Interlaced acquisition: subset s holds angles s*step/S + j*step.
    ns = int(subsets)
    per = int(n_angles) // ns
    step = 180.0 / per
    ang_acq = np.concatenate([s * step / ns + np.arange(per) * step for s in range(ns)])
    subset = np.repeat(np.arange(ns), per)
    # The void channel has no signal (and is non-zero outside the reconstruction circle).
    proj = np.stack([radon(amount[i], theta=ang_acq, circle=True) if i else
                     np.zeros((n, ang_acq.size)) for i in range(nph)])
    mu = np.array([0, 5, 0.2, 0.3, 0.3, 0.3, 3, 1, 1, 0.5, 0.4]) * pixel_um * 1e-3
    atten = radon(np.tensordot(mu, amount, axes=1), theta=ang_acq, circle=True).T
    # radon returns (t, angle); move to (phase, angle, t) and blur by the beam profile.
    proj = np.transpose(proj, (0, 2, 1))
    sigma = beam_fwhm_um / 2.3548 / pixel_um
    if sigma > 0:
        proj = ndimage.gaussian_filter1d(proj, sigma, axis=2, mode="constant")
        atten = ndimage.gaussian_filter1d(atten, sigma, axis=1, mode="constant")
    if center_offset_px:
        proj = ndimage.shift(proj, (0, 0, center_offset_px), order=3, mode="constant")
        atten = ndimage.shift(atten, (0, center_offset_px), order=3, mode="constant")
    proj = np.clip(proj, 0, None)
    time = np.arange(int(n_angles) * n).reshape(int(n_angles), n) / (int(n_angles) * n)
    mon = (1.0 + float(i0_drift) * np.sin(2 * np.pi * time)).astype(np.float32)

    nq = q.size
    if chunks is None:
        chunks = max(1, min(int(n_angles), (2 << 20) // (4 * n * nq)))
    pj = da.from_array(proj, chunks=(nph, int(chunks), n))
    mj = da.from_array(mon, chunks=(int(chunks), n))
    gshape = (int(n_angles), n, nq)

    def _block(p, m, block_info=None):
        s = np.einsum("kat,kq->atq", p, prof_arr) * m[..., None]
        if noise:
            loc = block_info[0]["array-location"] if block_info else None
            off = (loc[1][0], 0, 0) if loc else (0, 0, 0)
            s = s * (1.0 + float(noise) * normal_block(s.shape, off, gshape, seed, stream=7))
        return s.astype(np.float32)

    sino = da.map_blocks(_block, pj, mj, dtype=np.float32, drop_axis=0, new_axis=2,
                         chunks=(pj.chunks[1], (n,), (nq,)))
    t = (np.arange(n) - n // 2) * pixel_um  # 0 on the rotation axis (radon's n // 2)
    xy = np.arange(n) * pixel_um
    half = n * pixel_um / 2
    # Agglomerate positions in map coordinates (origin at the first pixel's centre).
    for p in placed:
        p["y_um"] = p["y_um"] + half - pixel_um / 2
        p["x_um"] = p["x_um"] + half - pixel_um / 2
    if poor:
        poor["y_um"] += half - pixel_um / 2
        poor["x_um"] += half - pixel_um / 2
    ds = xr.Dataset(
        {
            "sinogram": (("angle", "t", "q"), sino),
            "monitor": (("angle", "t"), mon),
            "attenuation": (("angle", "t"), atten.astype(np.float32)),
            "amount": (("phase", "y", "x"), amount),
            "labels": (("y", "x"), labels),
            "profiles": (("phase", "q"), prof_arr.astype(np.float32)),
        },
        coords={"angle": ("angle", ang_acq, {"units": "deg"}),
                "subset": ("angle", subset), "t": ("t", t, {"units": "um"}),
                "q": ("q", q, {"units": "1/A"}), "phase": list(WOUND_CELL_PHASES),
                "y": ("y", xy, {"units": "um"}), "x": ("x", xy, {"units": "um"})},
    )
    ds["labels"].attrs["phases"] = dict(enumerate(WOUND_CELL_PHASES))
    ds.attrs.update(agglomerates=placed, center_um=(half - pixel_um / 2, half - pixel_um / 2),
                    radius_um=float(radius_um), wall_um=float(wall_um),
                    pitch_um=float(pitch_um), mandrel_um=float(mandrel_um),
                    n_turns=n_turns, center_offset_px=float(center_offset_px),
                    i0_drift=float(i0_drift), poor_region=poor, pixel_um=float(pixel_um),
                    d_star_nm=list(d_star_nm), saxs_amplitude=float(saxs_amplitude))
    return ds


#: Relative attenuation per phase: X-rays see the metals, neutrons the lithium and hydrogen
#: (LiC6, the electrolyte-soaked separator), so the two contrasts are nearly inverted (seed
#: 004, "Multimodal datasets alignments"). Illustrative values, not tabulated ones.
CT_CONTRAST = {
    "xray": {"void": 0.0, "casing": 1.0, "separator": 0.05, "graphite": 0.15, "lic12": 0.15,
             "lic6": 0.15, "cu": 0.9, "nmc_lithiated": 0.55, "nmc_delithiated": 0.55,
             "al": 0.3, "si_agglomerate": 0.25},
    "neutron": {"void": 0.0, "casing": 0.15, "separator": 0.8, "graphite": 0.3, "lic12": 0.6,
                "lic6": 0.9, "cu": 0.1, "nmc_lithiated": 0.45, "nmc_delithiated": 0.35,
                "al": 0.05, "si_agglomerate": 0.5},
}


def _agglomerates_3d(cell, n_extra):
    """The slice's agglomerates at z = 0 and ``n_extra`` more at other heights (within half
    the casing radius): copies of them moved along the winding (angle a, radius + pitch a /
    2 pi keeps them in the same layer of the spiral). They depend on the cell alone, so
    every modality and grid sees the same ones."""
    placed = [dict(a, z_um=0.0) for a in cell.attrs.get("agglomerates", [])]
    if not placed or not n_extra:
        return placed
    rng = np.random.default_rng(len(placed))
    cy, cx = cell.attrs["center_um"]
    inner = cell.attrs["radius_um"] - cell.attrs["wall_um"]
    out = list(placed)
    zmax = cell.attrs["radius_um"] / 2
    for _ in range(50 * int(n_extra)):
        if len(out) >= len(placed) + int(n_extra):
            break
        a = placed[rng.integers(len(placed))]
        alpha = rng.uniform(-np.pi, np.pi)
        r = np.hypot(a["y_um"] - cy, a["x_um"] - cx) + cell.attrs["pitch_um"] * alpha / (2 * np.pi)
        th = np.arctan2(a["y_um"] - cy, a["x_um"] - cx) + alpha
        z = rng.uniform(-zmax, zmax)
        if abs(z) < a["d_um"] or not cell.attrs["mandrel_um"] + a["d_um"] < r < inner - a["d_um"]:
            continue
        out.append(dict(a, y_um=cy + r * np.sin(th), x_um=cx + r * np.cos(th), z_um=z))
    return out


def wound_cell_ct(cell, modality="xray", n_slices=24, voxel_um=None, twist_deg_per_um=0.02,
                  rotation_deg=(0.0, 0.0, 0.0), shift_um=(0.0, 0.0, 0.0), noise=0.02,
                  extra_agglomerates=40, seed=0):
    """An X-ray or neutron CT volume of a synthetic wound cell (seed 004's other modalities).

    The cell's truth map is extruded along ``z`` with a slow twist about the casing centre
    (so that no two heights look alike and the slice-height search has an answer), its
    agglomerates made spheres centred on the scattering slice, seen
    with the phase contrast of :data:`CT_CONTRAST`, and sampled on a grid of its own voxel
    size, rotated and shifted by a known rigid transform:
    ``p_cell = R (p_grid - c) + c + t`` with ``c`` the centre of the grid's field of view.
    The scattering slice is the middle height (``z = 0`` of the cell frame).

    Parameters
    ----------
    cell : xarray.Dataset
        From :func:`wound_cell` (its ``amount`` maps and ``center_um``).
    modality : {"xray", "neutron"}
    n_slices : int
        Slices along ``z``.
    voxel_um : float, optional
        Voxel size (default the cell's pixel size).
    twist_deg_per_um : float
        Rotation of the structure per um of height.
    rotation_deg : (float, float, float)
        Rotation of the grid, degrees about z, then y, then x.
    shift_um : (float, float, float)
        Translation ``t`` in um, ``(z, y, x)``.
    noise : float
        Gaussian noise, relative to the largest attenuation.
    extra_agglomerates : int
        Agglomerates at other heights than the scattering slice (copies of the slice's
        ones moved along the winding), the same for both modalities.
    seed : int
        Seed of the noise.

    Returns
    -------
    xarray.DataArray
        float32 ``(z, y, x)`` with coordinates in um (z centred on the scattering slice when
        the transform is the identity); ``attrs``: modality, rotation_deg, shift_um and
        ``grid_to_cell`` (the 4 x 4 matrix of the transform, the registration's truth).

    Examples
    --------
    >>> cell = wound_cell(size=64, pixel_um=40.0, n_angles=6, n_saxs=4, n_waxs=4)
    >>> wound_cell_ct(cell, "neutron", n_slices=8).dims
    ('z', 'y', 'x')
    """
    from scipy import ndimage
    from scipy.spatial.transform import Rotation

    if modality not in CT_CONTRAST:
        raise InputError("modality", f"one of {sorted(CT_CONTRAST)}, got {modality!r}")
    if int(n_slices) < 1:
        raise InputError("n_slices", f"a positive integer, got {n_slices!r}")
    y = np.asarray(cell["y"].values, dtype=np.float64)
    step = float(y[1] - y[0])
    h = step if voxel_um is None else float(voxel_um)
    ny = int(round(len(y) * step / h))
    nz = int(n_slices)
    zc = (np.arange(nz) - (nz - 1) / 2) * h
    yc = y[0] - step / 2 + (np.arange(ny) + 0.5) * h
    zz, yy, xx = np.meshgrid(zc, yc, yc, indexing="ij")
    p = np.stack([zz, yy, xx], axis=-1)
    c = np.array([0.0, (yc[0] + yc[-1]) / 2, (yc[0] + yc[-1]) / 2])
    R = Rotation.from_euler("ZYX", rotation_deg, degrees=True).as_matrix()
    # scipy's "ZYX" acts on (x, y, z) vectors; ours are (z, y, x): reverse both ways.
    R = R[::-1, ::-1]
    q = (p - c) @ R.T + c + np.asarray(shift_um, dtype=np.float64)
    cy, cx = cell.attrs["center_um"]
    ang = np.radians(twist_deg_per_um * q[..., 0])
    dy, dx = q[..., 1] - cy, q[..., 2] - cx
    sy = cy + dy * np.cos(ang) - dx * np.sin(ang)
    sx = cx + dy * np.sin(ang) + dx * np.cos(ang)
    iy, ix = (sy - y[0]) / step, (sx - y[0]) / step
    mu = CT_CONTRAST[modality]
    # The agglomerates are spheres centred on the scattering slice: in the extruded map
    # their discs are anode; the spheres are added in 3D (the volume's z landmarks).
    host = "lic6"
    att = sum(float(mu[host if ph == "si_agglomerate" else str(ph)])
              * cell["amount"].sel(phase=ph).values.astype(np.float64)
              for ph in cell["phase"].values)
    vol = ndimage.map_coordinates(att, [iy, ix], order=1, mode="constant", cval=0.0)
    soft = 0.5 * h
    for a in _agglomerates_3d(cell, extra_agglomerates):
        d = np.sqrt((q[..., 0] - a["z_um"]) ** 2 + (sy - a["y_um"]) ** 2
                    + (sx - a["x_um"]) ** 2)
        inside = np.clip((a["d_um"] / 2 - d) / soft + 0.5, 0.0, 1.0)
        vol += inside * (float(mu["si_agglomerate"]) - float(mu[host]))
    rng = np.random.default_rng(seed)
    vol = vol + float(noise) * max(mu.values()) * rng.standard_normal(vol.shape)
    coords = {d: (d, v, {"units": "um"}) for d, v in zip(("z", "y", "x"), (zc, yc, yc))}
    return xr.DataArray(vol.astype(np.float32), dims=("z", "y", "x"), coords=coords,
                        name=f"{modality}_ct",
                        attrs={"units": "um", "modality": modality,
                               "rotation_deg": list(map(float, rotation_deg)),
                               "shift_um": list(map(float, shift_um)),
                               "grid_to_cell": _homogeneous(R, c, shift_um).tolist()})


def _homogeneous(R, c, t):
    """4 x 4 matrix of p -> R (p - c) + c + t on (z, y, x)."""
    m = np.eye(4)
    m[:3, :3] = R
    m[:3, 3] = np.asarray(c, dtype=np.float64) - R @ np.asarray(c, dtype=np.float64) \
        + np.asarray(t, dtype=np.float64)
    return m
