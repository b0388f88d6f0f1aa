"""Weighted k-means trinarization calibrated to target volume fractions (seed 002, sec. 3.2).

Seed 002 classifies each voxel by a 27-value feature vector from its 3x3x3 neighbourhood:
its own grey value, then the grey values of its 6 face neighbours (distance 1), of its 12
edge neighbours (distance sqrt 2) and of its 8 corner neighbours (distance sqrt 3), each
group sorted in ascending order so that rotating or flipping the neighbourhood leaves the
vector unchanged. Voxel j joins cluster

    argmin_l  w_l * sum_m x_m (f_j^(m) - mu_l^(m))**2                    (eq. 1)

with phase weights ``w`` (``w_AM = 1`` as reference) and feature weights ``x`` equal within
a distance group (``x_1 = 1``): five free weights, fitted by a derivative-free optimiser
(the paper: Powell's BOBYQA; here scipy's Nelder-Mead on the logarithms of the weights,
which keeps them positive) to minimise ``sum_l (eps_l,exp - eps_l)**2``. Each cost
evaluation reruns k-means (Lloyd) from the paper's initialisation: the AM centroid is the
feature vector of the brightest voxel, the pore centroid that of the darkest, the CBD
centroid the feature vector most similar to the mean of those two.

Scaling: the clustering and the weight fit run on a sample (a central sub-volume of at
most ``sample_voxels`` voxels, the whole image when it is smaller); the fitted centroids
and weights then label the full volume block by block (``map_overlap`` with a one-voxel
overlap and mirrored faces at the volume boundary), so the labels do not depend on the
chunking. The realised fractions on the sample are in ``attrs["sample_fractions"]``; on the
full volume they differ from the sample's by the sample's representativeness.
"""

from __future__ import annotations

import numpy as np

from ..core.arrays import as_volume
from ..core.errors import ConvergenceError, InputError
from ..core.progress import compute
from ..core.reduce import blockwise_histogram2d
from ._common import CODES3, PHASES3, check_fractions3, window_mask

__all__ = ["kmeans", "kmeans_features"]

# Cluster order inside this module: AM first (w_1 = 1 is the reference, as in the paper).
_ORDER = ("am", "cbd", "pore")


def _offsets():
    groups = {1: [], 2: [], 3: []}
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                n = abs(dz) + abs(dy) + abs(dx)
                if n:
                    groups[n].append((dz, dy, dx))
    return groups


_GROUPS = _offsets()  # 6 face, 12 edge, 8 corner neighbours


def _features_padded(p):
    """27 features of the interior of a block padded by one voxel: (27, *interior)."""
    p = np.asarray(p, dtype=np.float32)
    inner = tuple(n - 2 for n in p.shape)

    def shifted(d):
        return p[tuple(slice(1 + o, 1 + o + n) for o, n in zip(d, inner))]

    parts = [shifted((0, 0, 0))[None]]
    for g in (1, 2, 3):
        stack = np.stack([shifted(d) for d in _GROUPS[g]], axis=0)
        stack.sort(axis=0)
        parts.append(stack)
    return np.concatenate(parts, axis=0)


def _feature_weights(x_face, x_edge, x_corner):
    return np.array([1.0] + [x_face] * 6 + [x_edge] * 12 + [x_corner] * 8)


def _distances(F, mu, w, xm):
    """Weighted squared distances (N, 3) of features F (N, 27) to centroids mu (3, 27)."""
    s = np.sqrt(xm)
    Fs = F * s
    ms = mu * s
    d = (Fs * Fs).sum(1)[:, None] - 2.0 * Fs @ ms.T + (ms * ms).sum(1)[None, :]
    return np.maximum(d, 0.0) * w[None, :]


def _initial_centroids(F, xm):
    bright = F[int(np.argmax(F[:, 0]))]
    dark = F[int(np.argmin(F[:, 0]))]
    mid = 0.5 * (bright + dark)
    d = (((F - mid) ** 2) * xm).sum(1)
    return np.stack([bright, F[int(np.argmin(d))], dark]).astype(np.float64)


def _lloyd(F, w, xm, max_iter=50):
    mu = _initial_centroids(F, xm)
    labels = None
    for _ in range(max_iter):
        new = np.argmin(_distances(F, mu, w, xm), axis=1)
        # Stop when (almost) no voxel changes cluster: the last moves change the
        # fractions by less than 1e-5.
        if labels is not None and np.count_nonzero(new != labels) <= 1e-5 * len(new):
            labels = new
            break
        labels = new
        counts = np.bincount(labels, minlength=3)
        for c in range(3):
            if counts[c]:
                mu[c] = F[labels == c].mean(0)
    return mu, labels


def _unpack(theta):
    e = np.exp(np.clip(theta, -30, 30))
    w = np.array([1.0, e[0], e[1]])
    xm = _feature_weights(e[2], e[3], e[4])
    return w, xm


def _fit(F, targets, maxfev, seed, tolerance):
    from scipy.optimize import minimize

    target = np.array([targets[n] for n in _ORDER])

    def realised(theta):
        w, xm = _unpack(theta)
        _, labels = _lloyd(F, w, xm)
        return np.bincount(labels, minlength=3) / len(labels)

    calls = [0]

    def cost(theta):
        calls[0] += 1
        return float(((realised(theta) - target) ** 2).sum())

    # The cost is piecewise constant in the weights (a finite sample); a wide initial
    # simplex lets Nelder-Mead see across the steps, and restarts from the best point
    # with a smaller simplex refine it.
    rng = np.random.default_rng(seed)
    best_x, best_f = np.zeros(5), cost(np.zeros(5))
    evals = 1
    scale = 1.5
    # Good enough: every fraction within a fifth of the tolerance.
    stop = (tolerance / 5.0) ** 2

    class _Done(Exception):
        pass

    def cost_stop(theta):
        nonlocal best_x, best_f
        f = cost(theta)
        if f < best_f:
            best_x, best_f = np.array(theta, dtype=float), f
        if f <= stop:
            raise _Done
        return f

    while evals < maxfev and best_f > stop:
        simplex = np.vstack([best_x] + [best_x + scale * rng.choice([-1.0, 1.0]) * e
                                         for e in np.eye(5)])
        n0 = calls[0]
        try:
            minimize(cost_stop, best_x, method="Nelder-Mead",
                     options={"initial_simplex": simplex, "maxfev": maxfev - evals,
                              "xatol": 1e-4, "fatol": 1e-10})
        except _Done:
            pass
        evals += calls[0] - n0
        scale *= 0.5
        if scale < 0.01:
            break
    w, xm = _unpack(best_x)
    mu, labels = _lloyd(F, w, xm)
    return w, xm, mu, np.bincount(labels, minlength=3) / len(labels), best_f, evals


_SLAB_VOXELS = 1 << 14


def _slabs(p, halo=1, voxels=_SLAB_VOXELS):
    """Split a padded block into z-slabs (with their halo) of about ``voxels`` voxels,
    so per-voxel feature matrices (27 or 125 values a voxel) never exist for a whole
    block: memory stays a small multiple of the chunk size."""
    nz = p.shape[0] - 2 * halo
    plane = max(1, int(np.prod([n - 2 * halo for n in p.shape[1:]])))
    step = max(1, voxels // plane)
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        yield z0, z1, p[z0:z1 + 2 * halo]


def _assign_block(p, mu, w, xm, codes):
    out = np.empty(tuple(n - 2 for n in p.shape), dtype=np.uint8)
    for z0, z1, slab in _slabs(p):
        F = _features_padded(slab)
        shape = F.shape[1:]
        F = F.reshape(27, -1).T.astype(np.float64)
        lab = np.argmin(_distances(F, mu, w, xm), axis=1)
        out[z0:z1] = codes[lab].reshape(shape)
    return out


_EPS = 1e-12


def _logratio_block(p, mu, w, xm):
    """(2, *interior): log of the weighted CBD and pore distances over the AM distance."""
    out = np.empty((2,) + tuple(n - 2 for n in p.shape), dtype=np.float32)
    for z0, z1, slab in _slabs(p):
        F = _features_padded(slab)
        shape = F.shape[1:]
        d = _distances(F.reshape(27, -1).T.astype(np.float64), mu, w, xm) + _EPS
        ld = np.log(d)
        out[0, z0:z1] = (ld[:, 1] - ld[:, 0]).reshape(shape)
        out[1, z0:z1] = (ld[:, 2] - ld[:, 0]).reshape(shape)
    return out


class _Tables:
    """Full-volume fractions as a function of the log phase-weight offsets (u, v).

    With a = log(d_cbd / d_am), b = log(d_pore / d_am) and c = a - b, eq. (1) with log
    weights (0, u, v) gives AM where a >= -u and b >= -v (a quadrant in (a, b)) and CBD
    where a < -u and c <= v - u (a quadrant in (a, c)); two cumulative 2D histograms
    answer both in O(1), to within one bin row.
    """

    def __init__(self, h_ab, h_ac, ea, eb, ec):
        self.n = float(h_ab.sum())
        self.am = np.zeros((h_ab.shape[0] + 1, h_ab.shape[1] + 1))
        self.am[:-1, :-1] = h_ab[::-1, ::-1].cumsum(0).cumsum(1)[::-1, ::-1]
        self.cbd = np.zeros((h_ac.shape[0] + 1, h_ac.shape[1] + 1))
        self.cbd[1:, 1:] = h_ac.cumsum(0).cumsum(1)
        self.ea, self.eb, self.ec = ea, eb, ec

    def __call__(self, u, v):
        ia = int(np.searchsorted(self.ea[:-1], -u, side="left"))  # bins with a >= -u
        ib = int(np.searchsorted(self.eb[:-1], -v, side="left"))
        ic = int(np.searchsorted(self.ec[1:], v - u, side="right"))  # bins with c <= v - u
        fa = self.am[ia, ib] / self.n
        fc = self.cbd[ia, ic] / self.n
        return np.array([fa, fc, 1.0 - fa - fc])


def _calibrate(data, mu, w, xm, targets, sample_ratios, bins=1024, mask=None):
    """Refit the two phase weights on the whole volume (global 2D histograms).

    The five weights are fitted on a sample; a sample that is not representative
    leaves the full-volume fractions off target. With centroids and feature weights
    fixed, the phase weights enter eq. (1) only as additive offsets of the log distances,
    so the full-volume fractions for any (w_cbd, w_pore) follow from joint histograms of
    the log-distance ratios: small global quantities, computed in one pass.
    """
    import dask.array as da

    sr = np.column_stack([sample_ratios, sample_ratios[:, 0] - sample_ratios[:, 1]])
    lo = np.percentile(sr, 0.1, axis=0) - 1.0
    hi = np.percentile(sr, 99.9, axis=0) + 1.0
    r = data.map_overlap(_logratio_block, depth=1, boundary="reflect", trim=False, mu=mu,
                         w=np.ones(3), xm=xm, new_axis=0, chunks=((2,),) + data.chunks,
                         dtype=np.float32)
    a = da.clip(r[0], lo[0], hi[0])
    b = da.clip(r[1], lo[1], hi[1])
    c = da.clip(r[0] - r[1], lo[2], hi[2])
    h_ab, ea, eb = blockwise_histogram2d(a, b, bins, [[lo[0], hi[0]], [lo[1], hi[1]]], mask)
    h_ac, _, ec = blockwise_histogram2d(a, c, bins, [[lo[0], hi[0]], [lo[2], hi[2]]], mask)
    h_ab, h_ac = compute(h_ab, h_ac, label="k-means calibration histograms")
    frac = _Tables(np.asarray(h_ab), np.asarray(h_ac), np.asarray(ea), np.asarray(eb),
                   np.asarray(ec))
    # Nested bisection (the fractions are monotone in the offsets): for a CBD offset u,
    # the pore offset v that gives the pore target; then u such that the CBD target holds.
    span = float((hi - lo).max()) + 2.0

    def v_for(u):
        x0, x1 = -span - abs(u), span + abs(u)
        for _ in range(60):
            m = 0.5 * (x0 + x1)
            if frac(u, m)[2] > targets["pore"]:
                x0 = m  # too much pore: raise its offset
            else:
                x1 = m
        return 0.5 * (x0 + x1)

    u0, u1 = -span, span
    for _ in range(60):
        u = 0.5 * (u0 + u1)
        if frac(u, v_for(u))[1] > targets["cbd"]:
            u0 = u
        else:
            u1 = u
    u = 0.5 * (u0 + u1)
    v = v_for(u)
    return np.array([1.0, np.exp(u), np.exp(v)]), frac(u, v)


def _features_block(p):
    return _features_padded(p)


def kmeans_features(image):
    """The 27 sorted neighbourhood features of seed 002 section 3.2, lazily.

    Parameters
    ----------
    image : xarray.DataArray
        3D grey-value volume.

    Returns
    -------
    xarray.DataArray
        float32, dims ``("feature", z, y, x)``: own grey value, sorted 6 face, 12 edge and
        8 corner neighbours; mirrored at the volume faces. 27 times the image's memory.

    Examples
    --------
    >>> import numpy as np
    >>> from electromicro_dask import as_volume, segment
    >>> img = as_volume(np.arange(27.0).reshape(3, 3, 3), voxel_size=1.0)
    >>> float(segment.kmeans_features(img)[:, 1, 1, 1].max())
    26.0
    """
    image = _check_image(image)
    data = image.data.astype(np.float32)
    out = data.map_overlap(lambda b: _features_block(b), depth=1, boundary="reflect",
                           trim=False, new_axis=0,
                           chunks=((27,),) + data.chunks, dtype=np.float32)
    import xarray as xr

    return xr.DataArray(out, dims=("feature",) + image.dims,
                        coords={d: image.coords[d] for d in image.dims},
                        attrs={"units": "um"})


def _check_image(image):
    image = as_volume(image, argument="image")
    if image.ndim != 3 or image.dims != ("z", "y", "x"):
        raise InputError("image", f"a 3D volume with dims (z, y, x), got dims {image.dims}")
    if image.dtype.kind not in "iuf":
        raise InputError("image", f"a numeric grey-value volume, got dtype {image.dtype}")
    if min(image.shape) < 3:
        raise InputError("image", f"at least 3 voxels along every axis, got {image.shape}")
    return image


def _bounds(mask):
    """Index range (start, stop) per axis of the voxels inside a boolean dask mask."""
    axes = range(mask.ndim)
    proj = compute(*(mask.any(axis=tuple(a for a in axes if a != i)) for i in axes),
                   label="window extent")
    out = []
    for p in proj:
        idx = np.flatnonzero(np.asarray(p))
        out.append((int(idx[0]), int(idx[-1]) + 1))
    return out


def _sample(image, sample_voxels, mask=None):
    shape = image.shape
    bounds = [(0, n) for n in shape] if mask is None else _bounds(mask)
    side = max(3, int(round(sample_voxels ** (1.0 / 3.0))))
    sl, pads, inner = [], [], []
    for n, (b0, b1) in zip(shape, bounds):
        s = min(b1 - b0, side)
        a = b0 + (b1 - b0 - s) // 2
        b = a + s
        lo, hi = max(a - 1, 0), min(b + 1, n)
        sl.append(slice(lo, hi))
        pads.append((1 if a == 0 else 0, 1 if b == n else 0))
        inner.append(slice(a, b))
    (block,) = compute(image.data[tuple(sl)], label="k-means sample")
    # Mirrored like dask's boundary="reflect" (numpy "symmetric"), so a sample that is the
    # whole volume has exactly the features the lazy application sees.
    block = np.pad(np.asarray(block, dtype=np.float32), pads, mode="symmetric")
    F = _features_padded(block).reshape(27, -1).T.astype(np.float64)
    if mask is not None:
        (m,) = compute(mask[tuple(inner)], label="k-means sample window")
        F = F[np.asarray(m).ravel()]
        if len(F) < 27:
            raise InputError("window", f"at least 27 voxels inside the window's central "
                             f"sample, got {len(F)}")
    return F


def kmeans(image, fractions, sample_voxels=100_000, maxfev=600, tolerance=0.005,
           calibrate=True, seed=0, window=None):
    """Three-phase k-means with weights fitted to target volume fractions (seed 002 §3.2).

    Parameters
    ----------
    image : xarray.DataArray
        3D grey-value volume (dims z, y, x).
    fractions : dict
        Target volume fractions ``{"pore": .., "cbd": .., "am": ..}`` summing to 1.
    sample_voxels : int
        Size of the central sub-volume the clustering and weight fit run on (the whole
        volume when smaller). Computed once: a small global quantity.
    maxfev : int
        Budget of cost evaluations (each a full k-means run on the sample).
    tolerance : float
        Largest accepted deviation of a fraction from its target; the fit raises
        :class:`ConvergenceError` beyond it.
    calibrate : bool
        After the fit on the sample, refit the two phase weights ``w_cbd, w_pore`` on the
        whole volume from one global 2D histogram of log-distance ratios (two of 1024 x 1024 bins),
        so the full-volume fractions match the targets even when the sample is not
        representative. This step is this package's addition to the paper (which fits
        on the whole sampling window); ``False`` keeps the sample fit only.
    seed : int
        Seed of the optimiser's restart directions.
    window : dict or xarray.DataArray, optional
        Sampling window (a box ``{dim: (start_um, stop_um)}`` or a boolean mask on the
        image's grid): the sample is taken from the middle of the window, only voxels
        inside it enter the fit and the calibration, and their fractions match the
        targets; the whole volume is labelled.

    Returns
    -------
    xarray.DataArray
        uint8 segmentation ``{0: "pore", 1: "cbd", 2: "am"}``, lazy (map_overlap, depth
        1). ``attrs`` hold the fitted ``weights`` (w for am, cbd, pore; x for the own,
        face, edge and corner groups), the ``centroids`` (3 x 27, order am, cbd, pore) and
        the ``sample_fractions`` reached.

    Raises
    ------
    InputError
        Not a 3D volume, fractions not for pore/cbd/am or not summing to 1.
    ConvergenceError
        No weights bring the sample fractions within ``tolerance`` of the targets.

    Examples
    --------
    >>> from electromicro_dask import segment, synth
    >>> ds = synth.electrode((32, 32, 32), voxel_size=0.5, seed=0)
    >>> img = synth.tomogram(ds["phases"], noise=0.05)
    >>> seg = segment.kmeans(img, {"pore": 0.3, "cbd": 0.15, "am": 0.55})  # doctest: +SKIP
    """
    image = _check_image(image)
    targets = check_fractions3(fractions)
    if int(sample_voxels) < 27:
        raise InputError("sample_voxels", f"at least 27, got {sample_voxels!r}")
    if tolerance <= 0:
        raise InputError("tolerance", f"a positive fraction, got {tolerance!r}")
    mask, record = window_mask(image, window)
    F = _sample(image, int(sample_voxels), mask)
    w, xm, mu, realised, cost, evals = _fit(F, targets, int(maxfev), seed, float(tolerance))
    err = {n: float(realised[i] - targets[n]) for i, n in enumerate(_ORDER)}
    if not calibrate and max(abs(v) for v in err.values()) > tolerance:
        raise ConvergenceError(
            f"k-means weights fitted in {evals} evaluations reach fractions "
            f"{dict(zip(_ORDER, realised.round(4)))} on the sample, targets {targets} "
            f"(tolerance {tolerance}); raise maxfev or check the contrast")
    codes = np.array([CODES3[n] for n in _ORDER], dtype=np.uint8)
    data = image.data.astype(np.float32)
    volume_fractions = None
    if calibrate:
        d = _distances(F, mu, np.ones(3), xm) + _EPS
        ratios = np.stack([np.log(d[:, 1] / d[:, 0]), np.log(d[:, 2] / d[:, 0])], axis=1)
        w, vf = _calibrate(data, mu, w, xm, targets, ratios, mask=mask)
        volume_fractions = {n: float(vf[i]) for i, n in enumerate(_ORDER)}
        if max(abs(volume_fractions[n] - targets[n]) for n in _ORDER) > tolerance:
            raise ConvergenceError(
                f"k-means phase weights calibrated on the whole volume reach fractions "
                f"{volume_fractions}, targets {targets} (tolerance {tolerance})")
    seg = data.map_overlap(_assign_block, depth=1, boundary="reflect", trim=False, mu=mu,
                           w=w, xm=xm, codes=codes, dtype=np.uint8)
    out = image.copy(data=seg)
    out.name = "phases"
    out.attrs = {"units": "um", "phases": dict(PHASES3), "method": "k-means",
                 "target_fractions": targets,
                 "weights": {"w_am": 1.0, "w_cbd": float(w[1]), "w_pore": float(w[2]),
                             "x_own": 1.0, "x_face": float(xm[1]), "x_edge": float(xm[7]),
                             "x_corner": float(xm[19])},
                 "centroids": mu.tolist(), "sample_voxels": int(F.shape[0]),
                 "sample_fractions": {n: float(realised[i]) for i, n in enumerate(_ORDER)},
                 "cost_evaluations": int(evals)}
    if volume_fractions is not None:
        out.attrs["calibrated_fractions"] = volume_fractions
    if record is not None:
        out.attrs["window"] = record
    return out
