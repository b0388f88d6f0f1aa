"""Synthetic electrodes with known truth, generated lazily block by block.

The structure is a pointwise function of one global list of spherical particles, so any
block can be generated on its own and the result does not depend on the chunking:

- Particles: log-normal radii, centres placed uniformly (also just outside the box, so
  particles cross the faces) and pushed apart until no pair overlaps by more than
  ``overlap`` of the sum of radii (a force-biased relaxation in the spirit of Mościński,
  Bargieł, Rycerz and Jacobs, Mol. Simul. 3 (1989) 201). Particles are added until the
  active-material (AM) fraction is reached, then all radii are scaled by one factor found
  by bisection so the realised voxel fraction matches the target.
- Each voxel belongs to the particle it is deepest inside (largest ``r_i - |p - c_i|``),
  which splits overlapping particles along a plane-like neck as a watershed would.
- Carbon-binder domain (CBD): pore voxels near two particle surfaces at once (bridges,
  ``d1 + d2 < b``) or close to one (film, ``d1 < film * b``), where ``d1 <= d2`` are the
  distances to the nearest particle surfaces. This is a closing-like bridge between
  particles (as seed 002's EDX closing builds CBD) with a film on free surfaces. ``b`` is
  found by bisection to match the CBD fraction; it can vary linearly through the
  thickness (``cbd_gradient``).

Fractions are calibrated on the voxel grid itself (all voxels of small volumes, a random
sample of 200 000 voxel centres of large ones), so realised fractions match the targets.
"""

from __future__ import annotations

import math

import dask
import dask.array as da
import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from ..core.arrays import _voxel_tuple, as_volume, default_chunks
from ..core.errors import InputError
from ..core.random import block_offsets

__all__ = ["electrode"]

PHASES = {0: "pore", 1: "cbd", 2: "am"}
_CBD_MARK = np.uint32(np.iinfo(np.uint32).max)
_SAMPLE = 200_000


class _Particles:
    """The global particle list and CBD law, evaluated exactly at points or on grid blocks.

    A point's label depends only on the particles within ``r_i + reach`` of it, where
    ``reach`` bounds the CBD bridge length: a particle farther away can neither own the
    point nor make it CBD (``d1 + d2 < b`` and ``d1 < film * b`` both need a surface
    within ``b``). Both evaluation paths (scattered points, grid blocks) use exactly the
    same floating-point expressions, so they give identical labels.
    """

    def __init__(self, centers, radii, bridge, film, gradient, length_z, reach=None):
        self.centers = np.ascontiguousarray(centers, dtype=np.float64)
        self.radii = np.ascontiguousarray(radii, dtype=np.float64)
        self.bridge = float(bridge)
        self.film = float(film)
        self.gradient = float(gradient)
        self.length_z = float(length_z)
        self.extra = self.bridge_max if reach is None else float(reach)
        self.tree = cKDTree(self.centers) if len(self.centers) else None

    @property
    def bridge_max(self):
        return self.bridge * (1.0 + abs(self.gradient) / 2.0)

    def bridge_at(self, z, bridge=None):
        # Linear through the thickness, mean `bridge`, from (1 - g/2) at the collector
        # (z = 0) to (1 + g/2) at the separator.
        b = self.bridge if bridge is None else bridge
        if self.gradient == 0.0 or z is None:
            return b
        return b * np.clip(1.0 + self.gradient * (z / self.length_z - 0.5), 0.0, None)

    @property
    def reach(self):
        return (float(self.radii.max()) if len(self.radii) else 0.0) + self.extra

    def pairs(self, points, radii=None):
        """(point index, particle index, distance) for every particle within reach."""
        radii = self.radii if radii is None else radii
        ptree = cKDTree(points)
        lists = ptree.query_ball_point(self.centers, r=radii + self.extra)
        counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        if counts.sum() == 0:
            e = np.empty(0, dtype=np.int64)
            return e, e, np.empty(0)
        pidx = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists if len(x)])
        cidx = np.repeat(np.arange(len(lists), dtype=np.int64), counts)
        diff = points[pidx] - self.centers[cidx]
        sq = diff[:, 0] ** 2
        for a in range(1, diff.shape[1]):
            sq = sq + diff[:, a] ** 2
        return pidx, cidx, np.sqrt(sq)

    def label_pairs(self, n, pidx, cidx, dist, zcoord, radii=None, bridge=None):
        """Raw labels of ``n`` points from their candidate pairs."""
        d1, d2, i1 = self.nearest_two(n, pidx, cidx, dist, radii)
        return self._classify(d1, d2, i1, self.bridge_at(zcoord, bridge))

    def nearest_two(self, n, pidx, cidx, dist, radii=None):
        """Depths of the two nearest surfaces and the deepest particle, per point."""
        radii = self.radii if radii is None else radii
        depth = dist - radii[cidx]  # signed distance to each sphere's surface
        order = np.lexsort((cidx, depth, pidx))  # per point by depth, ties: lowest index
        p, d, c = pidx[order], depth[order], cidx[order]
        first = np.ones(len(p), dtype=bool)
        first[1:] = p[1:] != p[:-1]
        second = np.zeros(len(p), dtype=bool)
        second[1:] = (~first[1:]) & first[:-1]
        d1 = np.full(n, np.inf)
        d2 = np.full(n, np.inf)
        i1 = np.zeros(n, dtype=np.int64)
        d1[p[first]] = d[first]
        i1[p[first]] = c[first]
        d2[p[second]] = d[second]
        return d1, d2, i1

    def _classify(self, d1, d2, i1, b):
        am = d1 < 0
        cbd = ~am & ((d1 + d2 < b) | (d1 < self.film * b))
        out = np.zeros(d1.shape, dtype=np.uint32)
        out[am] = (i1[am] + 1).astype(np.uint32)
        out[cbd] = _CBD_MARK
        return out

    def evaluate(self, points, zcoord=None):
        """Raw labels at points (um): particle index + 1 in AM, _CBD_MARK in CBD, 0 pore."""
        if self.tree is None or len(points) == 0:
            return np.zeros(len(points), dtype=np.uint32)
        pidx, cidx, dist = self.pairs(points)
        return self.label_pairs(len(points), pidx, cidx, dist, zcoord)

    def grid(self, offset, shape, spacing):
        """Raw labels of the voxel block at ``offset`` (voxels) of a grid with ``spacing``."""
        ndim = len(shape)
        axes = [np.arange(o, o + n) * sp for o, n, sp in zip(offset, shape, spacing)]
        d1 = np.full(shape, np.inf)
        d2 = np.full(shape, np.inf)
        i1 = np.zeros(shape, dtype=np.int64)
        if self.tree is not None:
            lo = np.array([a[0] for a in axes])
            hi = np.array([a[-1] for a in axes])
            cand = self.tree.query_ball_point((lo + hi) / 2.0,
                                              np.linalg.norm(hi - lo) / 2.0 + self.reach + 1e-9)
            for i in sorted(cand):
                c, r = self.centers[i], self.radii[i]
                sl = []
                for ax in range(ndim):
                    a0 = int(np.searchsorted(axes[ax], c[ax] - r - self.extra, side="left"))
                    a1 = int(np.searchsorted(axes[ax], c[ax] + r + self.extra, side="right"))
                    sl.append(slice(a0, a1))
                if any(x.stop <= x.start for x in sl):
                    continue
                parts = [(axes[ax][sl[ax]] - c[ax]) ** 2 for ax in range(ndim)]
                sq = parts[0].reshape((-1,) + (1,) * (ndim - 1))
                for ax in range(1, ndim):
                    shp = [1] * ndim
                    shp[ax] = -1
                    sq = sq + parts[ax].reshape(shp)
                dd = np.sqrt(sq) - r
                sl = tuple(sl)
                s1, s2, si = d1[sl], d2[sl], i1[sl]
                better = dd < s1
                s2[...] = np.where(better, s1, np.minimum(s2, dd))
                s1[...] = np.where(better, dd, s1)
                si[better] = i
        z = axes[0].reshape((-1,) + (1,) * (ndim - 1)) if ndim == 3 else None
        return self._classify(d1, d2, i1, self.bridge_at(z))


def _lognormal(rng, mean, sd, n):
    if sd <= 0:
        return np.full(n, float(mean))
    s2 = math.log(1.0 + (sd / mean) ** 2)
    return rng.lognormal(math.log(mean) - s2 / 2.0, math.sqrt(s2), n)


def _relax(centers, radii, overlap, lo, hi, iterations=25):
    """Push overlapping pairs apart toward an overlap within ``overlap`` (a soft limit:
    a fixed number of sweeps, each moving both partners of every violating pair half-way)."""
    rmax = radii.max()
    for _ in range(iterations):
        tree = cKDTree(centers)
        pairs = tree.query_pairs(2.0 * rmax * (1.0 - overlap), output_type="ndarray")
        if len(pairs) == 0:
            break
        i, j = pairs[:, 0], pairs[:, 1]
        vec = centers[j] - centers[i]
        dist = np.linalg.norm(vec, axis=1)
        need = (radii[i] + radii[j]) * (1.0 - overlap)
        bad = dist < need * 0.999
        if not bad.any():
            break
        i, j, vec, dist, need = i[bad], j[bad], vec[bad], dist[bad], need[bad]
        unit = vec / np.maximum(dist, 1e-12)[:, None]
        push = 0.5 * (need - dist)[:, None] * unit
        n = len(centers)
        disp = np.stack([np.bincount(j, push[:, a], minlength=n) -
                         np.bincount(i, push[:, a], minlength=n)
                         for a in range(centers.shape[1])], axis=1)
        centers = np.clip(centers + disp, lo, hi)
    return centers


def _sample_points(shape, spacing, rng):
    n = int(np.prod(shape))
    if n <= _SAMPLE:
        grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
        idx = np.stack([g.ravel() for g in grids], axis=1)
    else:
        idx = np.stack([rng.integers(0, s, _SAMPLE) for s in shape], axis=1)
    return idx * np.asarray(spacing)


def _fractions(raw):
    n = raw.size
    cbd = np.count_nonzero(raw == _CBD_MARK) / n
    am = np.count_nonzero((raw > 0) & (raw != _CBD_MARK)) / n
    return am, cbd


def _bisect(f, lo, hi, target, tol, iters=40):
    """Root of increasing f(x) = target on [lo, hi]."""
    flo, fhi = f(lo), f(hi)
    if not (flo - tol <= target <= fhi + tol):
        return None
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        if abs(fm - target) <= tol / 4:
            return mid
        lo, hi = (mid, hi) if fm < target else (lo, mid)
    return 0.5 * (lo + hi)


def _build(shape, spacing, fractions, radius, overlap, film, gradient, two_layer,
           layer_radius_ratio, seed):
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    length = np.asarray(shape) * np.asarray(spacing)
    mean_r, sd_r = radius
    lo = -np.full(ndim, 1.5 * mean_r)
    hi = length + 1.5 * mean_r
    points = _sample_points(shape, spacing, np.random.default_rng([seed, 1]))
    zcoord = points[:, 0] if ndim == 3 else None
    target_am, target_cbd = fractions["am"], fractions.get("cbd", 0.0)
    unit_volume = (4.0 / 3.0 * math.pi) if ndim == 3 else math.pi

    def radii_for(c, n):
        r = _lognormal(rng, mean_r, sd_r, n)
        if two_layer and ndim == 3:
            r = np.where(c[:, 0] > length[0] / 2.0, r * layer_radius_ratio, r)
        return np.clip(r, 0.25 * mean_r, None)

    box = float(np.prod(hi - lo))
    n = max(1, int(target_am * box / (unit_volume * mean_r**ndim)))
    centers = rng.uniform(lo, hi, size=(n, ndim))
    radii = radii_for(centers, n)
    am = 0.0
    bridge_cap = 1.5 * mean_r
    for _ in range(12):
        centers = _relax(centers, radii, overlap, lo, hi)
        probe = _Particles(centers, radii, 0.0, 0.0, 0.0, length[0], reach=0.0)
        am, _c = _fractions(probe.evaluate(points, zcoord))
        if am >= target_am + 0.02:
            break
        add = max(1, int(n * max(0.05, (target_am + 0.03 - am) / max(am, 0.05))))
        new = rng.uniform(lo, hi, size=(add, ndim))
        centers = np.concatenate([centers, new])
        radii = np.concatenate([radii, radii_for(new, add)])
        n = len(centers)
    # Candidate pairs once, with the largest reach the bisections can ask for; labels for
    # any radius scale <= 1 and bridge <= bridge_cap follow from them exactly.
    model = _Particles(centers, radii, 0.0, film, gradient, length[0],
                       reach=bridge_cap * (1.0 + abs(gradient) / 2.0))
    pidx, cidx, dist = model.pairs(points)
    npts = len(points)
    inside = dist < radii[cidx]  # AM needs only the particles containing the point
    pa, ca, da_ = pidx[inside], cidx[inside], dist[inside]
    scale = _bisect(lambda s: _fractions(model.label_pairs(npts, pa, ca, da_, zcoord,
                                                           radii=radii * s, bridge=0.0))[0],
                    0.5, 1.0, target_am, 0.002)
    if scale is None:
        raise InputError("fractions", f"an AM fraction this generator can pack with "
                         f"overlap={overlap} (reached {am:.3f}, asked {target_am:.3f}); "
                         "raise `overlap` or lower fractions['am']")
    radii = radii * scale
    bridge = 0.0
    if target_cbd > 0:
        # The two nearest surfaces per point do not depend on the bridge: find them once.
        d1, d2, i1 = model.nearest_two(npts, pidx, cidx, dist, radii)

        def cbd_of(b):
            return _fractions(model._classify(d1, d2, i1, model.bridge_at(zcoord, b)))[1]
        bridge = _bisect(cbd_of, 0.0, bridge_cap, target_cbd, 0.002)
        if bridge is None:
            raise InputError("fractions", f"a CBD fraction reachable around the particles "
                             f"(at most {cbd_of(bridge_cap):.3f} here), got {target_cbd}")
    return _Particles(centers, radii, bridge, film, gradient, length[0])


def _present(model, shape, spacing):
    """Indices of particles owning at least one voxel, checked exactly.

    A particle whose centre voxel it owns is present; the rest (centres outside the box,
    or small particles squeezed by a larger neighbour) are checked over their bounding box.
    """
    spacing = np.asarray(spacing)
    n = len(model.radii)
    present = np.zeros(n, dtype=bool)
    vox = np.round(model.centers / spacing).astype(np.int64)
    inside = np.all((vox >= 0) & (vox < np.asarray(shape)), axis=1)
    idx = np.flatnonzero(inside)
    if len(idx):
        z = vox[idx, 0] * spacing[0] if len(shape) == 3 else None
        raw = model.evaluate(vox[idx] * spacing, z)
        present[idx[raw == idx + 1]] = True
    for i in np.flatnonzero(~present):
        r = model.radii[i]
        lo = np.maximum(np.floor((model.centers[i] - r) / spacing), 0).astype(int)
        hi = np.minimum(np.ceil((model.centers[i] + r) / spacing) + 1, shape).astype(int)
        if np.any(hi <= lo):
            continue
        raw = model.grid(tuple(lo), tuple(hi - lo), spacing)
        present[i] = np.any(raw == i + 1)
    return np.flatnonzero(present)


def _block(model, spacing, block_info=None):
    info = block_info[None]
    return model.grid(block_offsets(None, block_info), info["chunk-shape"], spacing)


def _phases_block(raw):
    out = np.zeros(raw.shape, dtype=np.uint8)
    out[raw == _CBD_MARK] = 1
    out[(raw > 0) & (raw != _CBD_MARK)] = 2
    return out


def _particles_block(raw, lookup):
    ids = np.where(raw == _CBD_MARK, 0, raw)
    return lookup[ids]


def electrode(shape, voxel_size, fractions=None, particle_radius_um=(4.0, 1.0), seed=0,
              chunks="auto", overlap=0.15, cbd_film=0.15, cbd_gradient=0.0,
              two_layer=False, layer_radius_ratio=0.6):
    """Generate a synthetic electrode with known phases and particle ids.

    Parameters
    ----------
    shape : tuple of int
        ``(nz, ny, nx)`` voxels (or ``(ny, nx)`` for a 2D section); z is the
        through-thickness axis, current collector at z = 0.
    voxel_size : float or tuple
        Voxel size in micrometres (one value or one per dim).
    fractions : dict, optional
        Target volume fractions ``{"am": ..., "cbd": ..., "pore": ...}`` summing to 1
        (default 0.55 / 0.15 / 0.30). Realised voxel fractions are within about 0.005.
    particle_radius_um : (float, float)
        Mean and standard deviation of the (log-normal) particle radius, in um.
    seed : int
        Random seed; the result is identical for any chunking and any scheduler.
    chunks : "auto" or tuple
        Output chunks (default: the package's chunk policy).
    overlap : float
        Largest allowed overlap of two particles as a share of the sum of their radii.
    cbd_film : float
        Thickness of the CBD film on free particle surfaces, as a share of the bridge
        length ``b``.
    cbd_gradient : float
        Relative change of the CBD bridge length from collector (z = 0) to separator:
        0.5 makes CBD richer toward the separator (seed 002 Fig. 10).
    two_layer : bool
        Two-layer electrode (seed 002): particles in the upper half (toward the
        separator) have radii scaled by ``layer_radius_ratio``.

    Returns
    -------
    xarray.Dataset
        ``phases`` (uint8, ``attrs["phases"] = {0: "pore", 1: "cbd", 2: "am"}``) and
        ``particles`` (uint32, 0 outside AM, consecutive ids from 1), lazy; the
        dataset attrs hold the parameters and ``n_particles``.

    Raises
    ------
    InputError
        Bad shape, voxel size or fractions (unknown phase, not summing to 1, or not
        reachable).

    Examples
    --------
    >>> from electromicro_dask import synth
    >>> ds = synth.electrode((64, 64, 64), voxel_size=0.5, seed=1)
    >>> sorted(ds.data_vars)
    ['particles', 'phases']
    """
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError("shape", f"a tuple of 2 or 3 positive ints, got {shape!r}") from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise InputError("shape", f"a tuple of 2 or 3 positive ints, got {shape!r}")
    dims = ("z", "y", "x")[-len(shape):]
    spacing = _voxel_tuple(voxel_size, dims)
    fractions = _check_fractions(fractions)
    try:
        mean_r, sd_r = (float(v) for v in particle_radius_um)
    except (TypeError, ValueError):
        raise InputError("particle_radius_um", "(mean, sd) in um") from None
    if not (mean_r > 0 and sd_r >= 0):
        raise InputError("particle_radius_um", f"mean > 0 and sd >= 0, got {particle_radius_um}")
    if not 0.0 <= overlap < 0.9:
        raise InputError("overlap", f"a share in [0, 0.9), got {overlap}")
    if mean_r < 1.5 * max(spacing):
        raise InputError("particle_radius_um", f"a mean radius of at least 1.5 voxels "
                         f"({1.5 * max(spacing)} um), got {mean_r}")

    model = _build(shape, spacing, fractions, (mean_r, sd_r), overlap, cbd_film,
                   cbd_gradient, two_layer, layer_radius_ratio, seed)
    present = _present(model, shape, spacing)
    lookup = np.zeros(len(model.radii) + 1, dtype=np.uint32)
    lookup[present + 1] = np.arange(1, len(present) + 1, dtype=np.uint32)

    chunks = default_chunks(shape, np.uint32) if chunks == "auto" else chunks
    chunks = da.core.normalize_chunks(chunks, shape=shape, dtype=np.uint32)
    model_d = dask.delayed(model, pure=True, traverse=False)
    raw = da.map_blocks(_block, model_d, spacing, chunks=chunks, dtype=np.uint32,
                        meta=np.empty((0,) * len(shape), np.uint32))
    phases = raw.map_blocks(_phases_block, dtype=np.uint8,
                            meta=np.empty((0,) * len(shape), np.uint8))
    particles = raw.map_blocks(_particles_block, dask.delayed(lookup, pure=True),
                               dtype=np.uint32, meta=np.empty((0,) * len(shape), np.uint32))
    params = {"shape": list(shape), "voxel_size": list(spacing), "fractions": fractions,
              "particle_radius_um": [mean_r, sd_r], "seed": seed, "overlap": overlap,
              "cbd_film": cbd_film, "cbd_gradient": cbd_gradient, "two_layer": two_layer,
              "layer_radius_ratio": layer_radius_ratio}
    ph = as_volume(phases, voxel_size=spacing, dims=dims, name="phases")
    ph.attrs.update({"phases": dict(PHASES), "long_name": "phase (truth)"})
    pa = as_volume(particles, voxel_size=spacing, dims=dims, name="particles")
    pa.attrs.update({"long_name": "particle id (truth)", "n_labels": int(len(present))})
    ds = xr.Dataset({"phases": ph, "particles": pa})
    ds.attrs.update({"generator": "electromicro_dask.synth.electrode", "parameters": params,
                     "n_particles": int(len(present)),
                     "particle_radii_um": model.radii[present].tolist()})
    return ds


def _check_fractions(fractions):
    if fractions is None:
        return {"am": 0.55, "cbd": 0.15, "pore": 0.30}
    if not hasattr(fractions, "items"):
        raise InputError("fractions", f"a mapping of phase name to fraction, got {fractions!r}")
    unknown = set(fractions) - {"am", "cbd", "pore"}
    if unknown:
        raise InputError("fractions", f"keys from ['am', 'cbd', 'pore'], got unknown {sorted(unknown)}")
    try:
        f = {k: float(v) for k, v in fractions.items()}
    except (TypeError, ValueError):
        raise InputError("fractions", f"numbers, got {fractions!r}") from None
    if any(not (0.0 <= v <= 1.0) for v in f.values()):
        raise InputError("fractions", f"values in [0, 1], got {f}")
    if abs(sum(f.values()) - 1.0) > 1e-6:
        raise InputError("fractions", f"values summing to 1, got {sum(f.values()):.6g}")
    if f.get("am", 0.0) <= 0.0:
        raise InputError("fractions", "a positive 'am' fraction")
    f.setdefault("cbd", 0.0)
    f.setdefault("pore", 1.0 - f["am"] - f["cbd"])
    return f
